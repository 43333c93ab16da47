//! The outbound queue: messages waiting to leave, with one row per recipient that records
//! its attempts, its next attempt and the last error. A queued body is a blob like any
//! other (`BLOBS` counts the queue entry as one reference), written in chunks.
//!
//! Durability: `enqueue` returns after a durable commit (the submission client gets 250 only
//! then); a recipient is removed only after the remote server accepted it (or it failed for
//! good), so a crash between those two moments repeats a delivery rather than losing one.

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::mailbox::release_blob;
use super::schema::*;
use super::{SpoolFile, Store, StoreError, next_id};

/// Bits of a queue entry's flags.
pub mod queue_flags {
    /// The sender has been told that delivery is delayed.
    pub const DELAY_NOTIFIED: u32 = 1;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMessage {
    pub id: u64,
    /// Envelope sender; empty for the null reverse-path.
    pub sender: String,
    pub blob: u64,
    pub size: u64,
    pub queued_at: i64,
    /// A DKIM-Signature header field (with CRLF) sent in front of the body; may be empty.
    #[serde(skip)]
    pub dkim: String,
    pub flags: u32,
    pub recipients: Vec<QueuedRecipient>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRecipient {
    pub address: String,
    pub attempts: u32,
    pub next_attempt: i64,
    pub last_error: String,
}

/// What became of one recipient after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientUpdate {
    /// Accepted by the next hop, or failed for good (the caller has sent the DSN): removed.
    Done,
    /// Try again at `next_attempt`.
    Retry {
        attempts: u32,
        next_attempt: i64,
        error: String,
    },
}

impl Store {
    /// Queues a spooled message for `recipients`. Durable when this returns.
    pub async fn enqueue(
        &self,
        message: &SpoolFile,
        sender: &str,
        recipients: Vec<String>,
        dkim: String,
        now: i64,
    ) -> Result<u64, StoreError> {
        let message = message.clone();
        let sender = sender.to_string();
        let store_path = self.inner.db.path().to_path_buf();
        let status = self.inner.status.clone();
        let id = self
            .blocking(move |db| {
                let txn = db.begin_write()?;
                let id = {
                    let mut meta = txn.open_table(META)?;
                    let id = next_id(&mut meta, "next_queue_id")?;
                    let blob = next_id(&mut meta, "next_blob_id")?;
                    let size = super::writer::write_chunks(&txn, blob, &message)?;
                    txn.open_table(BLOBS)?.insert(blob, (size, 1))?;
                    super::count_mail(&mut meta, size, true)?;
                    txn.open_table(QUEUE)?
                        .insert(id, (sender.as_str(), blob, now, dkim.as_str(), 0u32))?;
                    let mut rows = txn.open_table(QUEUE_RECIPIENTS)?;
                    for recipient in &recipients {
                        rows.insert((id, recipient.as_str()), (0u32, now, ""))?;
                    }
                    id
                };
                txn.commit()?;
                // Counted in the same trip to the blocking pool; the message is queued
                // whether or not counting works.
                if let Err(error) = super::publish_totals(db, &store_path, &status) {
                    tracing::warn!(%error, "cannot count the store's totals");
                }
                Ok(id)
            })
            .await?;
        self.inner.queue_wake.notify_one();
        Ok(id)
    }

    /// Every queued message with its remaining recipients, oldest first.
    pub async fn queue_list(&self) -> Result<Vec<QueuedMessage>, StoreError> {
        self.blocking(|db| {
            let txn = db.begin_read()?;
            let tables = QueueTables::open(&txn)?;
            let mut list = Vec::new();
            for entry in tables.queue.iter()? {
                let (id, value) = entry?;
                list.push(tables.message(id.value(), value.value())?);
            }
            Ok(list)
        })
        .await
    }

    /// One queued message as it is now (`None` once it has left the queue): a delivery
    /// reads it again when it starts, since the list it was picked from may be older than
    /// the last attempt's results.
    pub async fn queue_message(&self, id: u64) -> Result<Option<QueuedMessage>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let tables = QueueTables::open(&txn)?;
            let Some(value) = tables.queue.get(id)? else {
                return Ok(None);
            };
            tables.message(id, value.value()).map(Some)
        })
        .await
    }

    /// Records the outcome of an attempt; the entry and its body go when no recipient is
    /// left. Returns true if the message left the queue.
    pub async fn queue_record(
        &self,
        id: u64,
        updates: Vec<(String, RecipientUpdate)>,
        set_flags: u32,
    ) -> Result<bool, StoreError> {
        let removed = self
            .blocking(move |db| {
                let txn = db.begin_write()?;
                let removed = {
                    let mut queue = txn.open_table(QUEUE)?;
                    let Some(row) = queue.get(id)?.map(|v| {
                        let (sender, blob, queued, dkim, flags) = v.value();
                        (sender.to_string(), blob, queued, dkim.to_string(), flags)
                    }) else {
                        // Deleted by the operator meanwhile.
                        return Ok(true);
                    };
                    let mut rows = txn.open_table(QUEUE_RECIPIENTS)?;
                    for (address, update) in &updates {
                        let key = (id, address.as_str());
                        match update {
                            RecipientUpdate::Done => {
                                rows.remove(key)?;
                            }
                            RecipientUpdate::Retry {
                                attempts,
                                next_attempt,
                                error,
                            } => {
                                if rows.get(key)?.is_some() {
                                    rows.insert(key, (*attempts, *next_attempt, error.as_str()))?;
                                }
                            }
                        }
                    }
                    let left = rows
                        .range((id, "")..)?
                        .next()
                        .transpose()?
                        .is_some_and(|(key, _)| key.value().0 == id);
                    let (sender, blob, queued, dkim, flags) = row;
                    if left {
                        queue.insert(
                            id,
                            (
                                sender.as_str(),
                                blob,
                                queued,
                                dkim.as_str(),
                                flags | set_flags,
                            ),
                        )?;
                    } else {
                        queue.remove(id)?;
                    }
                    drop((queue, rows));
                    if !left {
                        release_blob(&txn, blob)?;
                    }
                    !left
                };
                txn.commit()?;
                Ok(removed)
            })
            .await?;
        self.publish_totals_async().await;
        Ok(removed)
    }

    /// Makes every queued recipient due now. Returns how many there are.
    pub async fn queue_flush(&self) -> Result<u64, StoreError> {
        self.queue_retry(None).await
    }

    /// Makes the recipients of message `only` (or of every message) due now. Returns how
    /// many there are.
    pub async fn queue_retry(&self, only: Option<u64>) -> Result<u64, StoreError> {
        let count = self
            .blocking(move |db| {
                let txn = db.begin_write()?;
                let mut count = 0;
                {
                    let mut rows = txn.open_table(QUEUE_RECIPIENTS)?;
                    let mut due = Vec::new();
                    for row in rows.iter()? {
                        let (key, value) = row?;
                        let (id, address) = key.value();
                        if only.is_some_and(|only| only != id) {
                            continue;
                        }
                        let (attempts, _, error) = value.value();
                        due.push((id, address.to_string(), attempts, error.to_string()));
                    }
                    for (id, address, attempts, error) in due {
                        rows.insert((id, address.as_str()), (attempts, 0, error.as_str()))?;
                        count += 1;
                    }
                }
                txn.commit()?;
                Ok(count)
            })
            .await?;
        self.inner.queue_wake.notify_one();
        Ok(count)
    }

    /// Removes a message from the queue without delivering it (and without a DSN).
    pub async fn queue_delete(&self, id: u64) -> Result<(), StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            {
                let mut queue = txn.open_table(QUEUE)?;
                let blob =
                    queue
                        .remove(id)?
                        .map(|v| v.value().1)
                        .ok_or_else(|| StoreError::NotFound {
                            kind: "queued message",
                            name: id.to_string(),
                        })?;
                drop(queue);
                let mut rows = txn.open_table(QUEUE_RECIPIENTS)?;
                rows.retain_in((id, "")..(id + 1, ""), |_, _| false)?;
                drop(rows);
                release_blob(&txn, blob)?;
            }
            txn.commit()?;
            Ok(())
        })
        .await?;
        self.publish_totals_async().await;
        Ok(())
    }

    /// Woken whenever a message is queued or the queue is flushed.
    pub async fn queue_changed(&self) {
        self.inner.queue_wake.notified().await;
    }
}

/// The tables a queued message is read from, in one read transaction.
struct QueueTables {
    queue: redb::ReadOnlyTable<u64, (&'static str, u64, i64, &'static str, u32)>,
    rows: redb::ReadOnlyTable<(u64, &'static str), (u32, i64, &'static str)>,
    blobs: redb::ReadOnlyTable<u64, (u64, u32)>,
}

impl QueueTables {
    fn open(txn: &redb::ReadTransaction) -> Result<Self, StoreError> {
        Ok(QueueTables {
            queue: txn.open_table(QUEUE)?,
            rows: txn.open_table(QUEUE_RECIPIENTS)?,
            blobs: txn.open_table(BLOBS)?,
        })
    }

    fn message(
        &self,
        id: u64,
        (sender, blob, queued_at, dkim, flags): (&str, u64, i64, &str, u32),
    ) -> Result<QueuedMessage, StoreError> {
        let size = self.blobs.get(blob)?.map(|v| v.value().0).unwrap_or(0);
        let mut recipients = Vec::new();
        for row in self.rows.range((id, "")..)? {
            let (key, value) = row?;
            let (row_id, address) = key.value();
            if row_id != id {
                break;
            }
            let (attempts, next_attempt, last_error) = value.value();
            recipients.push(QueuedRecipient {
                address: address.to_string(),
                attempts,
                next_attempt,
                last_error: last_error.to_string(),
            });
        }
        Ok(QueuedMessage {
            id,
            sender: sender.to_string(),
            blob,
            size,
            queued_at,
            dkim: dkim.to_string(),
            flags,
            recipients,
        })
    }
}
