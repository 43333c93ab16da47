//! Messages inside a mailbox as IMAP changes them: flags with MODSEQ (RFC 7162), COPY/MOVE
//! that share bodies, EXPUNGE of `\Deleted` messages, and the stored structure of a body.
//! Every change commits durably, bumps the mailbox's HIGHESTMODSEQ and wakes the sessions
//! that watch for changes.

use redb::{ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};

use super::index::Messages;
use super::schema::*;
use super::{Flags, MessageInfo, Store, StoreError, mailbox_not_found, next_modseq};
use crate::mime::Part;

/// The per-mailbox counters, read cheaply to see whether anything changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxState {
    pub id: u64,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highest_modseq: u64,
}

/// A message whose flags are now `flags`, as of `modseq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    pub uid: u32,
    pub flags: Flags,
    pub modseq: u64,
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Add,
    Remove,
    Replace,
}

/// What STORE did: the messages changed, and (UNCHANGEDSINCE) those left alone because they
/// changed after the given MODSEQ.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOutcome {
    pub changed: Vec<FlagChange>,
    pub modified: Vec<u32>,
    /// HIGHESTMODSEQ before and after: a session that knew `before` knows `after` now.
    pub before: u64,
    pub after: u64,
}

/// A mailbox's row, or the missing-mailbox error.
pub(super) fn find_state(
    mailboxes: &impl ReadableTable<(&'static str, &'static str), (u64, u32, u32, u64)>,
    account: &str,
    name: &str,
) -> Result<MailboxState, StoreError> {
    mailboxes
        .get((account, name))?
        .map(|v| state_of(v.value()))
        .ok_or_else(|| mailbox_not_found(account, name))
}

fn state_of(row: (u64, u32, u32, u64)) -> MailboxState {
    MailboxState {
        id: row.0,
        uidvalidity: row.1,
        uidnext: row.2,
        highest_modseq: row.3,
    }
}

pub(super) fn info(uid: u32, row: MessageRow, more: Option<&[u8]>) -> MessageInfo {
    let (blob, bits, internal_date, size, modseq) = row;
    MessageInfo {
        uid,
        blob,
        flags: Flags::from_parts(bits, more.unwrap_or_default()),
        internal_date,
        size,
        modseq,
    }
}

/// The rows of `uids` in `mailbox` that exist in `txn`, in the order asked, with their
/// keywords past bit 31. Ascending UIDs that lie close together (a batch of `1:*`) are read as
/// one range, which costs a fraction of a B-tree lookup per UID.
pub(super) fn rows_by_uid(
    txn: &ReadTransaction,
    mailbox: u64,
    uids: &[u32],
) -> Result<Vec<MessageInfo>, StoreError> {
    let messages = txn.open_table(MESSAGES)?;
    let more_flags = txn.open_table(MORE_FLAGS)?;
    let with_more = |uid: u32, row: MessageRow| -> Result<MessageInfo, StoreError> {
        let more = more_flags.get((mailbox, uid))?;
        Ok(info(uid, row, more.as_ref().map(|m| m.value())))
    };
    let mut found = Vec::with_capacity(uids.len());
    let ascending = uids.windows(2).all(|w| w[0] < w[1]);
    if let (true, Some(&first), Some(&last)) = (ascending, uids.first(), uids.last())
        && (last - first) as usize / 2 < uids.len()
    {
        let mut wanted = uids.iter().peekable();
        for entry in messages.range((mailbox, first)..=(mailbox, last))? {
            let (key, row) = entry?;
            let uid = key.value().1;
            while wanted.next_if(|&&w| w < uid).is_some() {}
            if wanted.next_if_eq(&&uid).is_some() {
                found.push(with_more(uid, row.value())?);
            }
        }
        return Ok(found);
    }
    for &uid in uids {
        if let Some(row) = messages.get((mailbox, uid))? {
            found.push(with_more(uid, row.value())?);
        }
    }
    Ok(found)
}

pub(super) fn put_meta(txn: &WriteTransaction, blob: u64, part: &Part) -> Result<(), StoreError> {
    let json = serde_json::to_vec(part).map_err(|e| StoreError::Invalid(e.to_string()))?;
    txn.open_table(BLOB_META)?.insert(blob, json.as_slice())?;
    Ok(())
}

impl Store {
    pub async fn mailbox_state(
        &self,
        account: &str,
        name: &str,
    ) -> Result<MailboxState, StoreError> {
        let account = account.to_ascii_lowercase();
        let name = name.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            find_state(&txn.open_table(MAILBOXES)?, &account, &name)
        })
        .await
    }

    /// The mailbox's counters and its UIDs in order, from one read transaction (SELECT, and
    /// resynchronising a selected mailbox). 4 octets per message.
    pub async fn mailbox_uids(
        &self,
        account: &str,
        name: &str,
    ) -> Result<(MailboxState, Vec<u32>), StoreError> {
        let (state, uids, _) = self.mailbox_view(account, name).await?;
        Ok((state, uids))
    }

    /// `mailbox_uids` and the UID of the first message without `\Seen` (RFC 3501 §6.3.1
    /// `[UNSEEN n]`), found in the same pass over the rows.
    pub async fn mailbox_view(
        &self,
        account: &str,
        name: &str,
    ) -> Result<(MailboxState, Vec<u32>, Option<u32>), StoreError> {
        let account = account.to_ascii_lowercase();
        let name = name.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let state = find_state(&txn.open_table(MAILBOXES)?, &account, &name)?;
            let messages = txn.open_table(MESSAGES)?;
            let mut uids = Vec::new();
            let mut first_unseen = None;
            for entry in messages.range((state.id, 0)..=(state.id, u32::MAX))? {
                let (key, row) = entry?;
                let uid = key.value().1;
                if first_unseen.is_none() && row.value().1 & flags::SEEN == 0 {
                    first_unseen = Some(uid);
                }
                uids.push(uid);
            }
            Ok((state, uids, first_unseen))
        })
        .await
    }

    /// The rows of the given UIDs that still exist, in the order asked.
    pub async fn messages_by_uid(
        &self,
        mailbox: u64,
        uids: Vec<u32>,
    ) -> Result<Vec<MessageInfo>, StoreError> {
        self.blocking(move |db| rows_by_uid(&db.begin_read()?, mailbox, &uids))
            .await
    }

    /// STORE: changes the flags of `uids`; one new MODSEQ for all changed messages.
    pub async fn store_flags(
        &self,
        account: &str,
        name: &str,
        uids: Vec<u32>,
        op: FlagOp,
        flags: impl Into<Flags>,
        unchanged_since: Option<u64>,
    ) -> Result<StoreOutcome, StoreError> {
        let given: Flags = flags.into();
        let account = account.to_ascii_lowercase();
        let name = name.to_string();
        let outcome = self
            .blocking(move |db| {
                let txn = db.begin_write()?;
                let mut outcome = StoreOutcome::default();
                {
                    let mut mailboxes = txn.open_table(MAILBOXES)?;
                    let state = find_state(&mailboxes, &account, &name)?;
                    let modseq = next_modseq(state.highest_modseq);
                    outcome.before = state.highest_modseq;
                    outcome.after = state.highest_modseq;
                    let mut messages = Messages::open(&txn)?;
                    for uid in uids {
                        let Some((_, bits, _, _, message_modseq)) = messages.get(state.id, uid)?
                        else {
                            continue;
                        };
                        if unchanged_since.is_some_and(|since| message_modseq > since) {
                            outcome.modified.push(uid);
                            continue;
                        }
                        let flags = messages.flags(state.id, uid, bits)?;
                        let new = match op {
                            FlagOp::Add => flags.union(&given),
                            FlagOp::Remove => flags.minus(&given),
                            FlagOp::Replace => given.clone(),
                        };
                        if new != flags {
                            messages.set_flags(state.id, uid, &new, modseq)?;
                            outcome.changed.push(FlagChange {
                                uid,
                                flags: new,
                                modseq,
                            });
                        }
                    }
                    if !outcome.changed.is_empty() {
                        outcome.after = modseq;
                        mailboxes.insert(
                            (account.as_str(), name.as_str()),
                            (state.id, state.uidvalidity, state.uidnext, modseq),
                        )?;
                    }
                }
                if !outcome.changed.is_empty() {
                    txn.commit()?;
                }
                Ok(outcome)
            })
            .await?;
        if !outcome.changed.is_empty() {
            self.changed();
        }
        Ok(outcome)
    }

    /// COPY or MOVE (RFC 9051 §6.4.7, RFC 6851): the copies share the bodies (reference
    /// counts). Returns the target's UIDVALIDITY and (source UID, new UID) pairs.
    pub async fn copy_messages(
        &self,
        account: &str,
        from: &str,
        uids: Vec<u32>,
        to: &str,
        moving: bool,
    ) -> Result<(u32, Vec<(u32, u32)>), StoreError> {
        let account = account.to_ascii_lowercase();
        let (from, to) = (from.to_string(), to.to_string());
        let result = self
            .blocking(move |db| {
                let txn = db.begin_write()?;
                let mut pairs = Vec::with_capacity(uids.len());
                let validity;
                {
                    let mut mailboxes = txn.open_table(MAILBOXES)?;
                    let source = find_state(&mailboxes, &account, &from)?;
                    let target = find_state(&mailboxes, &account, &to)?;
                    validity = target.uidvalidity;
                    let mut messages = Messages::open(&txn)?;
                    let mut blobs = txn.open_table(BLOBS)?;
                    let target_modseq = next_modseq(target.highest_modseq);
                    // A MOVE within one mailbox is one change; otherwise the source has its own.
                    let source_modseq = if source.id == target.id {
                        target_modseq
                    } else {
                        next_modseq(source.highest_modseq)
                    };
                    let mut next = target.uidnext;
                    for uid in uids {
                        // No message has a UID at or above UIDNEXT; skipping them also keeps a
                        // MOVE within one mailbox from moving its own copies again.
                        if uid >= source.uidnext {
                            continue;
                        }
                        let Some((blob, bits, date, size, _)) = messages.get(source.id, uid)?
                        else {
                            continue;
                        };
                        let flags = messages.flags(source.id, uid, bits)?;
                        messages.insert(
                            target.id,
                            next,
                            (blob, bits, date, size, target_modseq),
                            flags.more(),
                        )?;
                        if moving {
                            messages.remove(source.id, uid, source_modseq)?;
                        } else {
                            let counted = blobs.get(blob)?.map(|v| v.value());
                            if let Some((blob_size, refs)) = counted {
                                blobs.insert(blob, (blob_size, refs.saturating_add(1)))?;
                            }
                        }
                        pairs.push((uid, next));
                        next += 1;
                    }
                    if !pairs.is_empty() {
                        mailboxes.insert(
                            (account.as_str(), to.as_str()),
                            (target.id, target.uidvalidity, next, target_modseq),
                        )?;
                        if moving && source.id != target.id {
                            mailboxes.insert(
                                (account.as_str(), from.as_str()),
                                (source.id, source.uidvalidity, source.uidnext, source_modseq),
                            )?;
                        }
                    }
                }
                if !pairs.is_empty() {
                    txn.commit()?;
                }
                Ok((validity, pairs))
            })
            .await?;
        if !result.1.is_empty() {
            self.changed();
            self.publish_totals_async().await;
        }
        Ok(result)
    }

    /// EXPUNGE / UID EXPUNGE / CLOSE: removes the `\Deleted` messages (of `only`, when given).
    /// Returns the UIDs removed.
    pub async fn expunge_deleted(
        &self,
        account: &str,
        name: &str,
        only: Option<Vec<u32>>,
    ) -> Result<Vec<u32>, StoreError> {
        let account = account.to_ascii_lowercase();
        let name = name.to_string();
        let removed = {
            let (account, name) = (account.clone(), name.clone());
            self.blocking(move |db| {
                let txn = db.begin_read()?;
                let state = find_state(&txn.open_table(MAILBOXES)?, &account, &name)?;
                let messages = txn.open_table(MESSAGES)?;
                let mut deleted = Vec::new();
                for entry in messages.range((state.id, 0)..=(state.id, u32::MAX))? {
                    let (key, row) = entry?;
                    let uid = key.value().1;
                    if row.value().1 & flags::DELETED != 0
                        && only
                            .as_ref()
                            .is_none_or(|only| only.binary_search(&uid).is_ok())
                    {
                        deleted.push(uid);
                    }
                }
                Ok(deleted)
            })
            .await?
        };
        if !removed.is_empty() {
            self.expunge(&account, &name, removed.clone()).await?;
        }
        Ok(removed)
    }

    /// The stored structure of a body; computed (streaming, bounded) and stored now if the
    /// body was stored without one.
    pub async fn message_structure(&self, blob: u64) -> Result<Part, StoreError> {
        self.read_view().await?.structure(blob).await
    }

    /// Stores the structure scanned from a body that was kept without one, if the body is
    /// still there.
    pub(super) async fn keep_structure(&self, blob: u64, part: Part) -> Result<(), StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            if txn.open_table(BLOBS)?.get(blob)?.is_some() {
                put_meta(&txn, blob, &part)?;
                txn.commit()?;
            }
            Ok(())
        })
        .await
    }
}
