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
                Ok(meta.get(blob)?.map(|v| v.value().to_vec()))
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
        ViewBodyReader {
            view: self.clone(),
            blob,
            next: Next::Piece { index: 0, start: 0 },
        }
    }

    /// Streams a body from the piece that holds octet `offset` on (a byte range that starts
    /// inside the body); `ViewBodyReader::next_piece` says where each piece starts.
    pub fn body_at(&self, blob: u64, offset: u64) -> ViewBodyReader {
        ViewBodyReader {
            view: self.clone(),
            blob,
            next: Next::Seek(offset),
        }
    }
}

/// Reads a body of a view one stored piece at a time.
pub struct ViewBodyReader {
    view: ReadView,
    blob: u64,
    next: Next,
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
        let (blob, next) = (self.blob, self.next);
        let read = self
            .view
            .read(move |txn| {
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
                let piece = pieces::read(&chunks, &tails, blob, index)?;
                Ok(piece.map(|piece| (index, start, piece)))
            })
            .await?;
        Ok(read.map(|(index, start, piece)| {
            self.next = Next::Piece {
                index: index.saturating_add(1),
                start: start + piece.len() as u64,
            };
            (start, piece)
        }))
    }
}
