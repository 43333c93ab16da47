//! Reading mailboxes and bodies, and removing messages.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::index::Messages;
use super::schema::*;
use super::{Flags, Store, StoreError, mailbox_not_found, next_modseq};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    pub uid: u32,
    pub blob: u64,
    pub flags: Flags,
    pub internal_date: i64,
    pub size: u64,
    pub modseq: u64,
}

/// A mailbox as it was when read: what POP3 locks in at login, and IMAP at SELECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxSnapshot {
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highest_modseq: u64,
    pub messages: Vec<MessageInfo>,
}

impl Store {
    pub async fn mailbox(&self, account: &str, name: &str) -> Result<MailboxSnapshot, StoreError> {
        let account = account.to_ascii_lowercase();
        let name = name.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let mailboxes = txn.open_table(MAILBOXES)?;
            let (id, uidvalidity, uidnext, highest_modseq) = mailboxes
                .get((account.as_str(), name.as_str()))?
                .map(|v| v.value())
                .ok_or_else(|| mailbox_not_found(&account, &name))?;
            let table = txn.open_table(MESSAGES)?;
            let mut messages = Vec::new();
            for entry in table.range((id, 0)..=(id, u32::MAX))? {
                let (key, value) = entry?;
                let (blob, flags, internal_date, size, modseq) = value.value();
                messages.push(MessageInfo {
                    uid: key.value().1,
                    blob,
                    flags: Flags::from(flags),
                    internal_date,
                    size,
                    modseq,
                });
            }
            // The few messages with keywords past bit 31, by UID like the rows.
            for entry in txn
                .open_table(MORE_FLAGS)?
                .range((id, 0)..=(id, u32::MAX))?
            {
                let (key, more) = entry?;
                let uid = key.value().1;
                if let Ok(index) = messages.binary_search_by_key(&uid, |m| m.uid) {
                    let bits = messages[index].flags.bits;
                    messages[index].flags = Flags::from_parts(bits, more.value());
                }
            }
            Ok(MailboxSnapshot {
                uidvalidity,
                uidnext,
                highest_modseq,
                messages,
            })
        })
        .await
    }

    /// Streams a message body chunk by chunk.
    pub fn body(&self, blob: u64) -> BodyReader {
        BodyReader {
            store: self.clone(),
            blob,
            next: 0,
        }
    }

    /// Removes messages by UID from a mailbox (POP3 QUIT after DELE, IMAP EXPUNGE); a body
    /// goes when its last reference does. The removal is one change: one new HIGHESTMODSEQ,
    /// which the tombstones of the removed UIDs carry (RFC 7162 §3.2). Durable when this
    /// returns.
    pub async fn expunge(
        &self,
        account: &str,
        name: &str,
        uids: Vec<u32>,
    ) -> Result<(), StoreError> {
        let account = account.to_ascii_lowercase();
        let name = name.to_string();
        let removed = self
            .blocking(move |db| {
                let txn = db.begin_write()?;
                let mut blobs = Vec::new();
                {
                    let mut mailboxes = txn.open_table(MAILBOXES)?;
                    let (id, uidvalidity, uidnext, modseq) = mailboxes
                        .get((account.as_str(), name.as_str()))?
                        .map(|v| v.value())
                        .ok_or_else(|| mailbox_not_found(&account, &name))?;
                    let modseq = next_modseq(modseq);
                    let mut messages = Messages::open(&txn)?;
                    for uid in uids {
                        if let Some(row) = messages.remove(id, uid, modseq)? {
                            blobs.push(row.0);
                        }
                    }
                    if !blobs.is_empty() {
                        mailboxes.insert(
                            (account.as_str(), name.as_str()),
                            (id, uidvalidity, uidnext, modseq),
                        )?;
                    }
                }
                if blobs.is_empty() {
                    return Ok(false);
                }
                for &blob in &blobs {
                    release_blob(&txn, blob)?;
                }
                txn.commit()?;
                Ok(true)
            })
            .await?;
        if removed {
            self.changed();
            self.publish_totals_async().await;
        }
        Ok(())
    }
}

/// Drops one reference to a body (a mailbox's or the outbound queue's), deleting it with its
/// chunks and structure when none is left.
pub(super) fn release_blob(txn: &WriteTransaction, blob: u64) -> Result<(), StoreError> {
    let mut blobs = txn.open_table(BLOBS)?;
    let Some((size, references)) = blobs.get(blob)?.map(|v| v.value()) else {
        return Ok(());
    };
    if references > 1 {
        blobs.insert(blob, (size, references - 1))?;
        return Ok(());
    }
    blobs.remove(blob)?;
    super::count_mail(&mut txn.open_table(META)?, size, false)?;
    txn.open_table(BLOB_META)?.remove(blob)?;
    let mut chunks = txn.open_table(BLOB_CHUNKS)?;
    chunks.retain_in((blob, 0)..=(blob, u32::MAX), |_, _| false)?;
    txn.open_table(BLOB_TAILS)?.remove(blob)?;
    txn.open_table(BLOB_ENDS)?.remove(blob)?;
    Ok(())
}

/// Empties a mailbox that is being deleted (alone or with its account): its messages, their
/// index and tombstones, and its `\Recent` mark. The caller removes its `MAILBOXES` row.
pub(super) fn remove_all_messages(txn: &WriteTransaction, mailbox: u64) -> Result<(), StoreError> {
    let blobs = Messages::open(txn)?.remove_mailbox(mailbox)?;
    txn.open_table(RECENT)?.remove(mailbox)?;
    for blob in blobs {
        release_blob(txn, blob)?;
    }
    Ok(())
}

/// Reads a body one stored piece at a time.
pub struct BodyReader {
    store: Store,
    blob: u64,
    next: u32,
}

impl BodyReader {
    /// The next chunk, or `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        let key = (self.blob, self.next);
        let chunk = self
            .store
            .blocking(move |db| {
                let txn = db.begin_read()?;
                let chunks = txn.open_table(BLOB_CHUNKS)?;
                let tails = txn.open_table(BLOB_TAILS)?;
                super::pieces::read(&chunks, &tails, &txn.open_table(BLOB_ENDS)?, key.0, key.1)
            })
            .await?;
        if chunk.is_some() {
            self.next += 1;
        }
        Ok(chunk)
    }
}
