//! The maildrop (RFC 1939 §8): one session's lock on an account's INBOX, and the snapshot of
//! it a TRANSACTION works on (numbered 1..=n, DELE marks, the UIDL of each message).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use crate::store::MessageInfo;

/// One maildrop lock per account (RFC 1939 §8): a second session for the same account gets
/// "-ERR [IN-USE] ...". Held by a [`MaildropGuard`] that unlocks when dropped, however the
/// session ends.
#[derive(Clone, Default)]
pub struct MaildropLocks {
    held: Arc<Mutex<HashSet<String>>>,
}

impl MaildropLocks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Locks `account`'s maildrop, or `None` when another session holds it.
    pub fn try_lock(&self, account: &str) -> Option<MaildropGuard> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if !held.insert(account.to_string()) {
            return None;
        }
        Some(MaildropGuard {
            held: self.held.clone(),
            account: account.to_string(),
        })
    }

    pub fn is_locked(&self, account: &str) -> bool {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(account)
    }
}

/// An account's maildrop lock; released on drop.
pub struct MaildropGuard {
    held: Arc<Mutex<HashSet<String>>>,
    account: String,
}

impl Drop for MaildropGuard {
    fn drop(&mut self) {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.account);
    }
}

/// The maildrop of a TRANSACTION: the INBOX as it was at login, numbered 1..=n.
pub(super) struct Maildrop {
    pub(super) account: String,
    uidvalidity: u32,
    messages: Vec<MessageInfo>,
    /// Marked by DELE, parallel to `messages`.
    deleted: Vec<bool>,
    _lock: MaildropGuard,
}

/// Why a message number does not name a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Missing {
    NoSuch,
    Deleted(u32),
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missing::NoSuch => f.write_str("no such message"),
            Missing::Deleted(n) => write!(f, "message {n} is deleted"),
        }
    }
}

impl Maildrop {
    pub(super) fn new(
        account: String,
        lock: MaildropGuard,
        uidvalidity: u32,
        messages: Vec<MessageInfo>,
    ) -> Self {
        Maildrop {
            account,
            uidvalidity,
            deleted: vec![false; messages.len()],
            messages,
            _lock: lock,
        }
    }

    pub(super) fn index(&self, n: u32) -> Result<usize, Missing> {
        let index = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .filter(|&i| i < self.messages.len())
            .ok_or(Missing::NoSuch)?;
        if self.deleted[index] {
            return Err(Missing::Deleted(n));
        }
        Ok(index)
    }

    pub(super) fn get(&self, n: u32) -> Result<&MessageInfo, Missing> {
        self.index(n).map(|i| &self.messages[i])
    }

    pub(super) fn delete(&mut self, n: u32) -> Result<(), Missing> {
        let index = self.index(n)?;
        self.deleted[index] = true;
        Ok(())
    }

    pub(super) fn undelete_all(&mut self) {
        self.deleted.iter_mut().for_each(|d| *d = false);
    }

    /// The messages not marked deleted, with their numbers.
    pub(super) fn live(&self) -> impl Iterator<Item = (u32, &MessageInfo)> {
        (1u32..)
            .zip(&self.messages)
            .zip(&self.deleted)
            .filter(|(_, deleted)| !**deleted)
            .map(|(numbered, _)| numbered)
    }

    /// Count and total size of the messages not marked deleted (RFC 1939 §5 STAT).
    pub(super) fn totals(&self) -> (usize, u64) {
        self.live()
            .fold((0, 0), |(n, size), (_, m)| (n + 1, size + m.size))
    }

    pub(super) fn deleted_uids(&self) -> Vec<u32> {
        self.messages
            .iter()
            .zip(&self.deleted)
            .filter(|(_, deleted)| **deleted)
            .map(|(m, _)| m.uid)
            .collect()
    }

    /// RFC 1939 §7 UIDL: unique and stable across sessions while the mailbox keeps its
    /// UIDVALIDITY.
    pub(super) fn unique_id(&self, message: &MessageInfo) -> String {
        format!("{}.{}", self.uidvalidity, message.uid)
    }
}
