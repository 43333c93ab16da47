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
use super::pieces::PIECE_MAX;
use super::schema::*;
use super::{Store, StoreError, layout_of, pieces};
use crate::limits::BODY_READ_AHEAD;
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
            ready: std::collections::VecDeque::new(),
            ahead: None,
            done: false,
        }
    }
}

/// A piece as read: its index, the offset it starts at, its octets.
type Piece = (u32, u64, Vec<u8>);

/// Reads a body of a view, stored piece by stored piece, in trips to the blocking pool of up
/// to `BODY_READ_AHEAD` octets. While the caller sends one trip's pieces, the next trip is
/// read (up to the end of the range asked), so sending a large body does not wait for the
/// store; a reader holds at most two trips' worth. One trip per piece made the thread
/// hand-offs (futex waits and wake-ups) a tenth of the CPU time of a large FETCH.
pub struct ViewBodyReader {
    view: ReadView,
    blob: u64,
    next: Next,
    /// The offset the caller needs octets up to; nothing past the piece that holds it is read
    /// ahead.
    end: u64,
    /// Pieces read and not yet returned, in order.
    ready: std::collections::VecDeque<Piece>,
    /// The trip reading the pieces from `next` on, started when `ready` was filled.
    ahead: Option<tokio::task::JoinHandle<Result<Vec<Piece>, StoreError>>>,
    /// No piece lies past the last one read.
    done: bool,
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
        if self.ready.is_empty() {
            if self.done {
                return Ok(None);
            }
            let trip = match self.ahead.take() {
                Some(ahead) => ahead,
                None => self.start_trip(),
            };
            let pieces = trip.await.map_err(|_| StoreError::Closed)??;
            match pieces.last() {
                Some(&(index, start, ref last)) => {
                    let next_start = start + last.len() as u64;
                    self.next = Next::Piece {
                        index: index.saturating_add(1),
                        start: next_start,
                    };
                    if next_start < self.end {
                        self.ahead = Some(self.start_trip());
                    }
                }
                None => self.done = true,
            }
            self.ready.extend(pieces);
        }
        Ok(self
            .ready
            .pop_front()
            .map(|(_, start, piece)| (start, piece)))
    }

    /// Starts reading the pieces from `next` on, up to `BODY_READ_AHEAD` octets or the piece
    /// that holds octet `end - 1`, on the blocking pool. An empty list: no piece there.
    fn start_trip(&self) -> tokio::task::JoinHandle<Result<Vec<Piece>, StoreError>> {
        let (txn, blob, next, end) = (self.view.txn.clone(), self.blob, self.next, self.end);
        tokio::task::spawn_blocking(move || {
            let (mut index, mut start) = match next {
                Next::Piece { index, start } => (index, start),
                Next::Seek(offset) => {
                    let Some((size, _)) = txn.open_table(BLOBS)?.get(blob)?.map(|v| v.value())
                    else {
                        return Ok(Vec::new());
                    };
                    layout_of(&txn.open_table(META)?, blob)?.locate(size, offset)
                }
            };
            let chunks = txn.open_table(BLOB_CHUNKS)?;
            let tails = txn.open_table(BLOB_TAILS)?;
            let ends = txn.open_table(BLOB_ENDS)?;
            let mut pieces = Vec::new();
            let mut octets = 0;
            while let Some(piece) = pieces::read(&chunks, &tails, &ends, blob, index)? {
                let length = piece.len();
                pieces.push((index, start, piece));
                octets += length;
                start += length as u64;
                index = index.saturating_add(1);
                if start >= end || octets + PIECE_MAX > BODY_READ_AHEAD {
                    break;
                }
            }
            Ok(pieces)
        })
    }
}
