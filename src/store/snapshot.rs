//! A consistent snapshot of the whole store for a long synchronous walk (`export`): accounts,
//! their mailboxes, message rows and body chunks all come from one redb read transaction, so
//! an export taken while mail arrives and sessions expunge is still a picture of one moment.
//!
//! Unlike `ReadView`, whose reads hop onto the blocking pool one at a time, a snapshot is
//! used on the thread that made it: the caller runs the whole walk in one `spawn_blocking`
//! (or a plain thread), which is what a tar writer over `std::io::Write` needs.

use std::io::Read;
use std::sync::Arc;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable};

use super::mailbox::MessageInfo;
use super::messages::info;
use super::schema::*;
use super::{Keywords, Store, StoreError};

pub struct Snapshot {
    txn: ReadTransaction,
    /// Held while the snapshot lives, so that a reopen after an I/O error waits for it.
    _db: Arc<Database>,
}

/// A mailbox as the snapshot sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMailbox {
    pub name: String,
    pub id: u64,
    pub uidvalidity: u32,
    pub uidnext: u32,
}

impl Store {
    /// Opens a snapshot. Blocking: call it from `spawn_blocking` or a thread of its own.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let db = self.inner.db.get()?;
        let txn = db.begin_read()?;
        Ok(Snapshot { txn, _db: db })
    }
}

impl Snapshot {
    /// Every account's address, in order.
    pub fn accounts(&self) -> Result<Vec<String>, StoreError> {
        let table = self.txn.open_table(ACCOUNTS)?;
        let mut accounts = Vec::new();
        for entry in table.iter()? {
            accounts.push(entry?.0.value().to_string());
        }
        Ok(accounts)
    }

    pub fn mailboxes(&self, account: &str) -> Result<Vec<SnapshotMailbox>, StoreError> {
        let table = self.txn.open_table(MAILBOXES)?;
        let mut found = Vec::new();
        for entry in table.range((account, "")..)? {
            let (key, value) = entry?;
            let (owner, name) = key.value();
            if owner != account {
                break;
            }
            let (id, uidvalidity, uidnext, _) = value.value();
            found.push(SnapshotMailbox {
                name: name.to_string(),
                id,
                uidvalidity,
                uidnext,
            });
        }
        Ok(found)
    }

    /// Up to `limit` rows of a mailbox from UID `first` on, by UID; bodies are not read. A
    /// walk over a mailbox reads it a page at a time, so it holds no more than a page of rows
    /// however many messages the mailbox has.
    pub fn messages(
        &self,
        mailbox: u64,
        first: u32,
        limit: usize,
    ) -> Result<Vec<MessageInfo>, StoreError> {
        let messages = self.txn.open_table(MESSAGES)?;
        let more_flags = self.txn.open_table(MORE_FLAGS)?;
        let mut rows = Vec::with_capacity(limit.min(1024));
        for entry in messages
            .range((mailbox, first)..=(mailbox, u32::MAX))?
            .take(limit)
        {
            let (key, row) = entry?;
            let uid = key.value().1;
            let more = more_flags.get((mailbox, uid))?;
            rows.push(info(uid, row.value(), more.as_ref().map(|m| m.value())));
        }
        Ok(rows)
    }

    pub fn keywords(&self, account: &str) -> Result<Keywords, StoreError> {
        super::keywords::read(&self.txn.open_table(KEYWORDS)?, account)
    }

    /// A body as a reader that holds one stored piece at a time.
    pub fn body(&self, blob: u64) -> SnapshotBody<'_> {
        SnapshotBody {
            snapshot: self,
            blob,
            next: 0,
            chunk: Vec::new(),
            offset: 0,
        }
    }
}

impl Snapshot {
    fn piece(&self, blob: u64, index: u32) -> Result<Option<Vec<u8>>, StoreError> {
        let chunks = self.txn.open_table(BLOB_CHUNKS)?;
        let tails = self.txn.open_table(BLOB_TAILS)?;
        let ends = self.txn.open_table(BLOB_ENDS)?;
        super::pieces::read(&chunks, &tails, &ends, blob, index)
    }
}

pub struct SnapshotBody<'a> {
    snapshot: &'a Snapshot,
    blob: u64,
    next: u32,
    chunk: Vec<u8>,
    offset: usize,
}

impl Read for SnapshotBody<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.offset == self.chunk.len() {
            let piece = self
                .snapshot
                .piece(self.blob, self.next)
                .map_err(std::io::Error::other)?;
            match piece {
                Some(piece) => {
                    self.chunk = piece;
                    self.offset = 0;
                    self.next += 1;
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.offset);
        out[..n].copy_from_slice(&self.chunk[self.offset..n + self.offset]);
        self.offset += n;
        Ok(n)
    }
}
