//! A consistent view of the store for answering one request: message rows, stored structures
//! and body chunks all come from one redb read transaction (an MVCC snapshot). A message that
//! another session expunges meanwhile is then either wholly there or wholly absent: its body
//! can never run short after its length was promised, nor its structure come back empty.
//!
//! A view keeps the pages it sees from being reused until it is dropped, so it lives for one
//! batch of a command, not for a session.

use std::sync::Arc;

use redb::{Database, ReadTransaction, ReadableDatabase};

use super::mailbox::MessageInfo;
use super::messages::rows_by_uid;
use super::schema::*;
use super::{Store, StoreError, layout_of, pieces};
use crate::mime::{Part, Scanner};

#[derive(Clone)]
pub struct ReadView {
    store: Store,
    txn: Arc<ReadTransaction>,
    /// Held while the view lives, so that a reopen after an I/O error waits for it rather
    /// than open the file a second time under it.
    _db: Arc<Database>,
}

impl Store {
    /// A view of the store as it is now.
    pub async fn read_view(&self) -> Result<ReadView, StoreError> {
        let handle = self.inner.db.clone();
        let (db, txn) = tokio::task::spawn_blocking(move || {
            let db = handle.get()?;
            let txn = db.begin_read();
            match txn {
                Ok(txn) => Ok((db, txn)),
                Err(error) => {
                    drop(db);
                    let error = StoreError::from(error);
                    handle.after_error(&error);
                    Err(error)
                }
            }
        })
        .await
        .map_err(|_| StoreError::Closed)??;
        Ok(ReadView {
            store: self.clone(),
            txn: Arc::new(txn),
            _db: db,
        })
    }
}

impl ReadView {
    pub(super) async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let txn = self.txn.clone();
        tokio::task::spawn_blocking(move || work(&txn))
            .await
            .map_err(|_| StoreError::Closed)?
    }

    /// The rows of `uids` in `mailbox` that exist in this view, in the order asked.
    pub async fn messages_by_uid(
        &self,
        mailbox: u64,
        uids: Vec<u32>,
    ) -> Result<Vec<MessageInfo>, StoreError> {
        self.read(move |txn| rows_by_uid(txn, mailbox, &uids)).await
    }

    /// The structure stored with a body; scanned from the body (and stored) for a body kept
    /// before structures were. `NotFound` when the body is not in this view.
    pub async fn structure(&self, blob: u64) -> Result<Part, StoreError> {
        let stored = self
            .read(move |txn| {
                if txn.open_table(BLOBS)?.get(blob)?.is_none() {
                    return Err(StoreError::NotFound {
                        kind: "message body",
                        name: blob.to_string(),
                    });
                }
                let meta = txn.open_table(BLOB_META)?;
                let ends = txn.open_table(BLOB_ENDS)?;
                super::ends::with_structure(&meta, &ends, blob, |json| json.to_vec())
            })
            .await?;
        if let Some(json) = stored
            && let Ok(part) = serde_json::from_slice(&json)
        {
            return Ok(part);
        }
        let mut scanner = Scanner::new();
        let mut body = self.body(blob);
        while let Some(chunk) = body.next_chunk().await? {
            scanner.feed(&chunk);
        }
        let part = scanner.finish();
        self.store.keep_structure(blob, part.clone()).await?;
        Ok(part)
    }

    /// Streams a body from its start.
    pub fn body(&self, blob: u64) -> ViewBodyReader {
        self.reader(blob, Next::Piece { index: 0, start: 0 }, u64::MAX)
    }

    /// Streams the octets `start..end` of a body: from the piece that holds octet `start` on
    /// (`ViewBodyReader::next_piece` says where each piece starts), up to the piece that holds
    /// octet `end - 1`, or further if the caller keeps asking.
    pub fn body_range(&self, blob: u64, start: u64, end: u64) -> ViewBodyReader {
        self.reader(blob, Next::Seek(start), end)
    }

    fn reader(&self, blob: u64, next: Next, end: u64) -> ViewBodyReader {
        ViewBodyReader {
            view: self.clone(),
            blob,
            next,
            end,
            ahead: None,
        }
    }
}

/// A piece as read: its index, the offset it starts at, its octets.
type Piece = (u32, u64, Vec<u8>);

/// Reads a body of a view one stored piece at a time. While the caller sends one piece, the
/// next one is read on the blocking pool (up to the end of the range asked), so sending a
/// large body does not wait for the store between pieces; a reader holds at most two pieces.
pub struct ViewBodyReader {
    view: ReadView,
    blob: u64,
    next: Next,
    /// The offset the caller needs octets up to; nothing past the piece that holds it is read
    /// ahead.
    end: u64,
    /// The read of the piece at `next`, started when the previous piece was returned.
    ahead: Option<tokio::task::JoinHandle<Result<Option<Piece>, StoreError>>>,
}

/// The piece a `ViewBodyReader` reads next.
#[derive(Clone, Copy)]
enum Next {
    Piece {
        index: u32,
        start: u64,
    },
    /// The piece that holds this offset, found at the first read (it depends on the body's
    /// size and on how the body was cut, both in the store).
    Seek(u64),
}

impl ViewBodyReader {
    /// The next piece, or `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.next_piece().await?.map(|(_, piece)| piece))
    }

    /// The next piece and the offset in the body it starts at, or `None` at the end.
    pub async fn next_piece(&mut self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let read = match self.ahead.take() {
            Some(ahead) => ahead.await.map_err(|_| StoreError::Closed)??,
            None => self.start_read().await.map_err(|_| StoreError::Closed)??,
        };
        let Some((index, start, piece)) = read else {
            return Ok(None);
        };
        let next_start = start + piece.len() as u64;
        self.next = Next::Piece {
            index: index.saturating_add(1),
            start: next_start,
        };
        if next_start < self.end {
            self.ahead = Some(self.start_read());
        }
        Ok(Some((start, piece)))
    }

    /// Starts reading the piece at `next` on the blocking pool.
    fn start_read(&self) -> tokio::task::JoinHandle<Result<Option<Piece>, StoreError>> {
        let (txn, blob, next) = (self.view.txn.clone(), self.blob, self.next);
        tokio::task::spawn_blocking(move || {
            let (index, start) = match next {
                Next::Piece { index, start } => (index, start),
                Next::Seek(offset) => {
                    let Some((size, _)) = txn.open_table(BLOBS)?.get(blob)?.map(|v| v.value())
                    else {
                        return Ok(None);
                    };
                    layout_of(&txn.open_table(META)?, blob)?.locate(size, offset)
                }
            };
            let chunks = txn.open_table(BLOB_CHUNKS)?;
            let tails = txn.open_table(BLOB_TAILS)?;
            let ends = txn.open_table(BLOB_ENDS)?;
            let piece = pieces::read(&chunks, &tails, &ends, blob, index)?;
            Ok(piece.map(|piece| (index, start, piece)))
        })
    }
}
