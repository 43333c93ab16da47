//! The one way to change `MESSAGES`: every insert, flag change and removal of a message row goes
//! through `Messages`, which keeps `MORE_FLAGS` (keywords past bit 31), `MODSEQS` (each message
//! under its current MODSEQ) and `EXPUNGED` (tombstones) in step with it in the same
//! transaction, so neither the index nor the flags can drift from the rows.
//!
//! The reads that use the index (changes since a MODSEQ, UIDs vanished since a MODSEQ) are here
//! too; `\Recent` marks (`RECENT`) live beside them.

use redb::{ReadableTable, Table, WriteTransaction};

use super::schema::*;
use super::{Flags, StoreError};

/// The message tables of one write transaction, opened together. While it is alive, no other
/// code of the transaction can open `MESSAGES`, `MORE_FLAGS`, `MODSEQS` or `EXPUNGED`.
pub(super) struct Messages<'txn> {
    rows: Table<'txn, MessageKey, MessageRow>,
    more_flags: Table<'txn, MessageKey, &'static [u8]>,
    modseqs: Table<'txn, (u64, u64, u32), ()>,
    expunged: Table<'txn, (u64, u64, u32), ()>,
}

impl<'txn> Messages<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Messages {
            rows: txn.open_table(MESSAGES)?,
            more_flags: txn.open_table(MORE_FLAGS)?,
            modseqs: txn.open_table(MODSEQS)?,
            expunged: txn.open_table(EXPUNGED)?,
        })
    }

    pub fn get(&self, mailbox: u64, uid: u32) -> Result<Option<MessageRow>, StoreError> {
        Ok(self.rows.get((mailbox, uid))?.map(|v| v.value()))
    }

    /// A message's whole flags: `bits` from its row, and its `MORE_FLAGS`.
    pub fn flags(&self, mailbox: u64, uid: u32, bits: u32) -> Result<Flags, StoreError> {
        Ok(match self.more_flags.get((mailbox, uid))? {
            Some(more) => Flags::from_parts(bits, more.value()),
            None => Flags::from(bits),
        })
    }

    fn set_more(&mut self, mailbox: u64, uid: u32, more: &[u8]) -> Result<(), StoreError> {
        if more.is_empty() {
            self.more_flags.remove((mailbox, uid))?;
        } else {
            self.more_flags.insert((mailbox, uid), more)?;
        }
        Ok(())
    }

    /// The UIDs of `mailbox`'s messages, ascending (4 octets per message).
    pub fn uids(&self, mailbox: u64) -> Result<Vec<u32>, StoreError> {
        let mut uids = Vec::new();
        for entry in self.rows.range((mailbox, 0)..=(mailbox, u32::MAX))? {
            uids.push(entry?.0.value().1);
        }
        Ok(uids)
    }

    /// Files a message at `uid` with the MODSEQ in `row`; `more` is its `Flags::more`. (A row
    /// already at that UID, which the callers never have, would be replaced and its index
    /// entry with it.)
    pub fn insert(
        &mut self,
        mailbox: u64,
        uid: u32,
        row: MessageRow,
        more: &[u8],
    ) -> Result<(), StoreError> {
        self.set_more(mailbox, uid, more)?;
        let old = self.rows.insert((mailbox, uid), row)?.map(|v| v.value());
        if let Some(old) = old {
            self.modseqs.remove((mailbox, old.4, uid))?;
        }
        self.modseqs.insert((mailbox, row.4, uid), ())?;
        Ok(())
    }

    /// Gives an existing message new flags as of `modseq`. Returns false (and changes nothing)
    /// if there is no such message.
    pub fn set_flags(
        &mut self,
        mailbox: u64,
        uid: u32,
        flags: &Flags,
        modseq: u64,
    ) -> Result<bool, StoreError> {
        let Some((blob, _, date, size, old_modseq)) = self.get(mailbox, uid)? else {
            return Ok(false);
        };
        self.set_more(mailbox, uid, flags.more())?;
        self.rows
            .insert((mailbox, uid), (blob, flags.bits, date, size, modseq))?;
        self.modseqs.remove((mailbox, old_modseq, uid))?;
        self.modseqs.insert((mailbox, modseq, uid), ())?;
        Ok(true)
    }

    /// Takes a message out of its mailbox, leaving a tombstone at `modseq` (the MODSEQ of the
    /// change that removes it, which the caller also makes the mailbox's HIGHESTMODSEQ).
    /// Returns the removed row (its body reference is the caller's to release).
    pub fn remove(
        &mut self,
        mailbox: u64,
        uid: u32,
        modseq: u64,
    ) -> Result<Option<MessageRow>, StoreError> {
        let Some(row) = self.rows.remove((mailbox, uid))?.map(|v| v.value()) else {
            return Ok(None);
        };
        self.more_flags.remove((mailbox, uid))?;
        self.modseqs.remove((mailbox, row.4, uid))?;
        self.expunged.insert((mailbox, modseq, uid), ())?;
        Ok(Some(row))
    }

    /// Empties a mailbox that is going away as a whole (DELETE, or its account deleted): its
    /// rows, index entries and tombstones go, and no tombstone is left. Returns the bodies the
    /// rows referenced, one entry per row, for the caller to release.
    pub fn remove_mailbox(&mut self, mailbox: u64) -> Result<Vec<u64>, StoreError> {
        let mut blobs = Vec::new();
        for entry in self
            .rows
            .extract_from_if((mailbox, 0)..=(mailbox, u32::MAX), |_, _| true)?
        {
            blobs.push(entry?.1.value().0);
        }
        self.more_flags
            .retain_in((mailbox, 0)..=(mailbox, u32::MAX), |_, _| false)?;
        let all = (mailbox, 0, 0)..=(mailbox, u64::MAX, u32::MAX);
        self.modseqs.retain_in(all.clone(), |_, _| false)?;
        self.expunged.retain_in(all, |_, _| false)?;
        Ok(blobs)
    }
}

/// Keys of a `MODSEQS` or `EXPUNGED` range: `mailbox`'s entries with a MODSEQ above `modseq`.
/// `None` when there can be none (`modseq` is the largest there is).
pub(super) fn after(
    mailbox: u64,
    modseq: u64,
) -> Option<std::ops::RangeInclusive<(u64, u64, u32)>> {
    let first = modseq.checked_add(1)?;
    Some((mailbox, first, 0)..=(mailbox, u64::MAX, u32::MAX))
}

/// The UIDs of `mailbox`'s messages changed after `modseq`, with their MODSEQ, in UID order.
pub(super) fn changed_after(
    modseqs: &impl ReadableTable<(u64, u64, u32), ()>,
    mailbox: u64,
    modseq: u64,
) -> Result<Vec<(u32, u64)>, StoreError> {
    let mut changed = Vec::new();
    if let Some(range) = after(mailbox, modseq) {
        for entry in modseqs.range(range)? {
            let (_, modseq, uid) = entry?.0.value();
            changed.push((uid, modseq));
        }
    }
    changed.sort_unstable();
    Ok(changed)
}

/// The UIDs expunged from `mailbox` after `modseq` that `keep` accepts, ascending.
pub(super) fn expunged_after(
    expunged: &impl ReadableTable<(u64, u64, u32), ()>,
    mailbox: u64,
    modseq: u64,
    mut keep: impl FnMut(u32) -> bool,
) -> Result<Vec<u32>, StoreError> {
    let mut uids = Vec::new();
    if let Some(range) = after(mailbox, modseq) {
        for entry in expunged.range(range)? {
            let uid = entry?.0.value().2;
            if keep(uid) {
                uids.push(uid);
            }
        }
    }
    uids.sort_unstable();
    uids.dedup();
    Ok(uids)
}

/// Builds `MODSEQS` from `MESSAGES` (the upgrade from schema 1).
pub(super) fn rebuild(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let rows = txn.open_table(MESSAGES)?;
    let mut modseqs = txn.open_table(MODSEQS)?;
    modseqs.retain(|_, _| false)?;
    let mut indexed = 0;
    for entry in rows.iter()? {
        let (key, row) = entry?;
        let (mailbox, uid) = key.value();
        modseqs.insert((mailbox, row.value().4, uid), ())?;
        indexed += 1;
    }
    Ok(indexed)
}
