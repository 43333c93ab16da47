//! What changed in a mailbox since a MODSEQ, read from the index (`MODSEQS`, `EXPUNGED`) at a
//! cost that follows the number of changes, not the size of the mailbox: the news a selected
//! IMAP session has not seen yet, and RFC 7162 QRESYNC's `VANISHED (EARLIER)`. And the
//! RFC 3501 `\Recent` marks: which session is the first to hear of a message.

use redb::{Durability, ReadTransaction, ReadableDatabase, ReadableTable};

use super::messages::find_state;
use super::schema::*;
use super::{FlagChange, Flags, MailboxState, Store, StoreError, index};

/// A mailbox's news since a MODSEQ, all from one read transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxChanges {
    /// The mailbox's counters now.
    pub state: MailboxState,
    /// Messages whose MODSEQ is above the one asked about (flags changed, or new), by UID.
    pub changed: Vec<FlagChange>,
    /// UIDs expunged with a MODSEQ above the one asked about, ascending.
    pub expunged: Vec<u32>,
}

/// The error for a mailbox id that no longer exists.
fn id_not_found(mailbox: u64) -> StoreError {
    StoreError::NotFound {
        kind: "mailbox",
        name: format!("#{mailbox}"),
    }
}

/// Messages of `mailbox` changed after `modseq`, with their flags now, by UID.
fn flag_changes(
    txn: &ReadTransaction,
    mailbox: u64,
    modseq: u64,
) -> Result<Vec<FlagChange>, StoreError> {
    let changed = index::changed_after(&txn.open_table(MODSEQS)?, mailbox, modseq)?;
    let messages = txn.open_table(MESSAGES)?;
    let more_flags = txn.open_table(MORE_FLAGS)?;
    let mut changes = Vec::with_capacity(changed.len());
    for (uid, modseq) in changed {
        // The index and the rows change together; a missing row would be a bug, not news.
        if let Some(row) = messages.get((mailbox, uid))? {
            let more = more_flags.get((mailbox, uid))?;
            let more = more.as_ref().map(|m| m.value()).unwrap_or_default();
            changes.push(FlagChange {
                uid,
                flags: Flags::from_parts(row.value().1, more),
                modseq,
            });
        }
    }
    Ok(changes)
}

/// Whether `uid` lies in one of the inclusive `ranges`.
fn in_ranges(ranges: &[(u32, u32)], uid: u32) -> bool {
    ranges
        .iter()
        .any(|&(a, b)| (a.min(b)..=a.max(b)).contains(&uid))
}

impl Store {
    /// What changed in a mailbox after `modseq`: its counters now, the messages with a higher
    /// MODSEQ (by UID) and the UIDs expunged with a higher MODSEQ (ascending), from one read
    /// transaction. The mailbox is named by `account` and `name` (where its counters live) and
    /// must still be the one with id `mailbox`: if it was deleted, renamed away, or deleted and
    /// created again, this is `StoreError::NotFound`, as for `mailbox_state`.
    pub async fn changes_since(
        &self,
        account: &str,
        name: &str,
        mailbox: u64,
        modseq: u64,
    ) -> Result<MailboxChanges, StoreError> {
        let account = account.to_ascii_lowercase();
        let name = name.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let state = find_state(&txn.open_table(MAILBOXES)?, &account, &name)?;
            if state.id != mailbox {
                return Err(super::mailbox_not_found(&account, &name));
            }
            let changed = flag_changes(&txn, mailbox, modseq)?;
            let expunged =
                index::expunged_after(&txn.open_table(EXPUNGED)?, mailbox, modseq, |_| true)?;
            Ok(MailboxChanges {
                state,
                changed,
                expunged,
            })
        })
        .await
    }

    /// RFC 7162 §3.2 QRESYNC, `VANISHED (EARLIER)`: UIDs expunged from the mailbox after `modseq`,
    /// ascending; with `within`, only those inside one of its inclusive (first, last) UID
    /// ranges. `StoreError::NotFound` if the mailbox id no longer exists.
    pub async fn vanished_since(
        &self,
        mailbox: u64,
        modseq: u64,
        within: Option<Vec<(u32, u32)>>,
    ) -> Result<Vec<u32>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            if txn.open_table(RECENT)?.get(mailbox)?.is_none() {
                return Err(id_not_found(mailbox));
            }
            index::expunged_after(&txn.open_table(EXPUNGED)?, mailbox, modseq, |uid| {
                within
                    .as_deref()
                    .is_none_or(|ranges| in_ranges(ranges, uid))
            })
        })
        .await
    }

    /// RFC 3501 `\Recent`: moves the mailbox's mark forward to `up_to` (exclusive; never
    /// backward) and returns the mark before, atomically. The caller's session is the first to
    /// hear of the UIDs in [returned mark, `up_to`): they are `\Recent` for it and for no other
    /// session. `StoreError::NotFound` if the mailbox id no longer exists.
    pub async fn claim_recent(&self, mailbox: u64, up_to: u32) -> Result<u32, StoreError> {
        self.blocking(move |db| {
            let mut txn = db.begin_write()?;
            // A mark lost to a power cut only shows some messages as \Recent once more: not
            // worth an fsync per SELECT on an SD card. The next durable commit persists it.
            txn.set_durability(Durability::None)?;
            let old = {
                let mut recent = txn.open_table(RECENT)?;
                let old = recent
                    .get(mailbox)?
                    .map(|v| v.value())
                    .ok_or_else(|| id_not_found(mailbox))?;
                if up_to <= old {
                    return Ok(old);
                }
                recent.insert(mailbox, up_to)?;
                old
            };
            txn.commit()?;
            Ok(old)
        })
        .await
    }

    /// The mailbox's `\Recent` mark, read only (EXAMINE, STATUS RECENT): the messages with a
    /// UID at or above it have not been claimed by any session yet. `StoreError::NotFound` if
    /// the mailbox id no longer exists.
    pub async fn recent_mark(&self, mailbox: u64) -> Result<u32, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            txn.open_table(RECENT)?
                .get(mailbox)?
                .map(|v| v.value())
                .ok_or_else(|| id_not_found(mailbox))
        })
        .await
    }
}
