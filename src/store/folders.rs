//! Mailboxes of an account, beyond INBOX: the special-use set every account gets (RFC 6154),
//! CREATE / DELETE / RENAME, subscriptions, and the counts STATUS reports. Names are UTF-8 with
//! "/" as the hierarchy delimiter; every operation is keyed by the account, so no name reaches
//! another account's mailboxes.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::index::Messages;
use super::schema::*;
use super::{INBOX, Store, StoreError, mailbox_not_found, next_id, next_modseq, now_unix};
use crate::limits::IMAP_MAX_MAILBOXES;

/// Created for every account, with their RFC 6154 attribute, and subscribed.
pub const DEFAULT_MAILBOXES: [(&str, &str); 5] = [
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    (super::JUNK, "\\Junk"),
    ("Archive", "\\Archive"),
];

/// The account's mailboxes and subscriptions, sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxEntry {
    pub name: String,
    pub exists: bool,
    pub subscribed: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    pub messages: u32,
    pub unseen: u32,
    pub deleted: u32,
    pub size: u64,
    pub uidnext: u32,
    pub uidvalidity: u32,
    pub highest_modseq: u64,
    /// Messages no session has been told about yet (RFC 3501 STATUS RECENT).
    pub recent: u32,
}

/// Adds a mailbox row with a fresh UIDVALIDITY: the clock, but always above the last one
/// handed out, so a mailbox deleted and re-created within a second still gets a new one.
pub(super) fn insert_mailbox(
    txn: &WriteTransaction,
    account: &str,
    name: &str,
) -> Result<(), StoreError> {
    let mut meta = txn.open_table(META)?;
    let mut mailboxes = txn.open_table(MAILBOXES)?;
    let id = next_id(&mut meta, "next_mailbox_id")?;
    let last = meta
        .get("last_uidvalidity")?
        .map(|v| v.value())
        .unwrap_or(0);
    let clock = u64::try_from(now_unix()).unwrap_or(1);
    let uidvalidity = clock.max(last + 1).min(u64::from(u32::MAX));
    meta.insert("last_uidvalidity", uidvalidity)?;
    let uidvalidity = u32::try_from(uidvalidity).unwrap_or(u32::MAX);
    mailboxes.insert((account, name), (id, uidvalidity, 1, 0))?;
    // Nothing claimed yet: UID 1 on are `\Recent` for the first session to see them.
    txn.open_table(RECENT)?.insert(id, 1)?;
    Ok(())
}

/// INBOX and the special-use mailboxes, those missing, subscribed when created.
pub(super) fn create_defaults(txn: &WriteTransaction, account: &str) -> Result<bool, StoreError> {
    let mut created = false;
    let names = std::iter::once(INBOX).chain(DEFAULT_MAILBOXES.iter().map(|(n, _)| *n));
    for name in names {
        let exists = txn.open_table(MAILBOXES)?.get((account, name))?.is_some();
        if !exists {
            insert_mailbox(txn, account, name)?;
            txn.open_table(SUBSCRIPTIONS)?.insert((account, name), ())?;
            created = true;
        }
    }
    Ok(created)
}

/// Names of `account`'s mailboxes (in key order).
fn names(txn: &WriteTransaction, account: &str) -> Result<Vec<String>, StoreError> {
    let mailboxes = txn.open_table(MAILBOXES)?;
    let mut names = Vec::new();
    for entry in mailboxes.range((account, "")..)? {
        let (key, _) = entry?;
        let (owner, name) = key.value();
        if owner != account {
            break;
        }
        names.push(name.to_string());
    }
    Ok(names)
}

impl Store {
    /// Gives an account created before the special-use set existed its missing mailboxes.
    pub async fn ensure_default_mailboxes(&self, account: &str) -> Result<(), StoreError> {
        let account = account.to_ascii_lowercase();
        let complete = {
            let account = account.clone();
            self.blocking(move |db| {
                let txn = db.begin_read()?;
                let mailboxes = txn.open_table(MAILBOXES)?;
                for (name, _) in DEFAULT_MAILBOXES {
                    if mailboxes.get((account.as_str(), name))?.is_none() {
                        return Ok(false);
                    }
                }
                Ok(true)
            })
            .await?
        };
        if complete {
            return Ok(());
        }
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            let accounts_exists = txn.open_table(ACCOUNTS)?.get(account.as_str())?.is_some();
            if accounts_exists && create_defaults(&txn, &account)? {
                txn.commit()?;
            }
            Ok(())
        })
        .await
    }

    pub async fn list_mailboxes(&self, account: &str) -> Result<Vec<MailboxEntry>, StoreError> {
        let account = account.to_ascii_lowercase();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let mut entries: std::collections::BTreeMap<String, MailboxEntry> = Default::default();
            let mailboxes = txn.open_table(MAILBOXES)?;
            for entry in mailboxes.range((account.as_str(), "")..)? {
                let (key, _) = entry?;
                let (owner, name) = key.value();
                if owner != account {
                    break;
                }
                entries.entry(name.to_string()).or_default().exists = true;
            }
            let subscriptions = txn.open_table(SUBSCRIPTIONS)?;
            for entry in subscriptions.range((account.as_str(), "")..)? {
                let (key, _) = entry?;
                let (owner, name) = key.value();
                if owner != account {
                    break;
                }
                entries.entry(name.to_string()).or_default().subscribed = true;
            }
            Ok(entries
                .into_iter()
                .map(|(name, entry)| MailboxEntry { name, ..entry })
                .collect())
        })
        .await
    }

    /// CREATE (RFC 9051 §6.3.4): missing superior levels are created too.
    pub async fn create_mailbox(&self, account: &str, name: &str) -> Result<(), StoreError> {
        let account = account.to_ascii_lowercase();
        let name = name.to_string();
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            let existing = names(&txn, &account)?;
            if existing.contains(&name) {
                return Err(StoreError::Exists(name));
            }
            create_levels(&txn, &account, &name, &existing)?;
            txn.commit()?;
            Ok(())
        })
        .await?;
        self.changed();
        Ok(())
    }

    /// DELETE: the mailbox and its messages. INBOX cannot be deleted; a mailbox with
    /// children is refused (RFC 9051 §7.1 HASCHILDREN) rather than left as \Noselect.
    pub async fn delete_mailbox(&self, account: &str, name: &str) -> Result<(), StoreError> {
        let account = account.to_ascii_lowercase();
        let name = name.to_string();
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            if name == INBOX {
                return Err(StoreError::Invalid("INBOX cannot be deleted".into()));
            }
            let prefix = format!("{name}/");
            if names(&txn, &account)?
                .iter()
                .any(|n| n.starts_with(&prefix))
            {
                return Err(StoreError::Invalid(
                    "[HASCHILDREN] delete the mailboxes inside it first".into(),
                ));
            }
            let id = txn
                .open_table(MAILBOXES)?
                .remove((account.as_str(), name.as_str()))?
                .map(|v| v.value().0)
                .ok_or_else(|| mailbox_not_found(&account, &name))?;
            super::mailbox::remove_all_messages(&txn, id)?;
            txn.commit()?;
            Ok(())
        })
        .await?;
        self.changed();
        self.publish_totals_async().await;
        Ok(())
    }

    /// RENAME (RFC 9051 §6.3.6): the mailbox and everything below it keep their ids,
    /// UIDVALIDITY and UIDs. Renaming INBOX moves its messages to a new mailbox and leaves
    /// INBOX empty. Missing superior levels of the new name are created, as by CREATE:
    /// without them a client that walks the tree with `LIST "" "%"` never reaches it.
    pub async fn rename_mailbox(
        &self,
        account: &str,
        from: &str,
        to: &str,
    ) -> Result<(), StoreError> {
        let account = account.to_ascii_lowercase();
        let (from, to) = (from.to_string(), to.to_string());
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            let existing = names(&txn, &account)?;
            if !existing.contains(&from) {
                return Err(mailbox_not_found(&account, &from));
            }
            if existing.contains(&to) || to == INBOX {
                return Err(StoreError::Exists(to));
            }
            if to.starts_with(&format!("{from}/")) {
                return Err(StoreError::Invalid(
                    "cannot move a mailbox into itself".into(),
                ));
            }
            if from == INBOX {
                rename_inbox(&txn, &account, &to)?;
            } else {
                let prefix = format!("{from}/");
                let mut mailboxes = txn.open_table(MAILBOXES)?;
                for old in existing
                    .iter()
                    .filter(|n| **n == from || n.starts_with(&prefix))
                {
                    let new = format!("{to}{}", &old[from.len()..]);
                    if existing.contains(&new) {
                        return Err(StoreError::Exists(new));
                    }
                    let row = mailboxes
                        .remove((account.as_str(), old.as_str()))?
                        .map(|v| v.value())
                        .ok_or_else(|| mailbox_not_found(&account, old))?;
                    mailboxes.insert((account.as_str(), new.as_str()), row)?;
                }
            }
            if let Some((superior, _)) = to.rsplit_once('/') {
                create_levels(&txn, &account, superior, &names(&txn, &account)?)?;
            }
            txn.commit()?;
            Ok(())
        })
        .await?;
        self.changed();
        Ok(())
    }

    pub async fn set_subscribed(
        &self,
        account: &str,
        name: &str,
        subscribed: bool,
    ) -> Result<(), StoreError> {
        let account = account.to_ascii_lowercase();
        let name = name.to_string();
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            {
                let mut subscriptions = txn.open_table(SUBSCRIPTIONS)?;
                if subscribed {
                    subscriptions.insert((account.as_str(), name.as_str()), ())?;
                } else {
                    subscriptions.remove((account.as_str(), name.as_str()))?;
                }
            }
            txn.commit()?;
            Ok(())
        })
        .await
    }

    /// STATUS counts, from one read transaction.
    pub async fn mailbox_status(
        &self,
        account: &str,
        name: &str,
    ) -> Result<MailboxStatus, StoreError> {
        let account = account.to_ascii_lowercase();
        let name = name.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let (id, uidvalidity, uidnext, highest_modseq) = txn
                .open_table(MAILBOXES)?
                .get((account.as_str(), name.as_str()))?
                .map(|v| v.value())
                .ok_or_else(|| mailbox_not_found(&account, &name))?;
            let mut status = MailboxStatus {
                uidnext,
                uidvalidity,
                highest_modseq,
                ..MailboxStatus::default()
            };
            let recent_mark = txn.open_table(RECENT)?.get(id)?.map_or(0, |v| v.value());
            let messages = txn.open_table(MESSAGES)?;
            for entry in messages.range((id, 0)..=(id, u32::MAX))? {
                let (key, row) = entry?;
                let (_, flags, _, size, _) = row.value();
                if key.value().1 >= recent_mark {
                    status.recent += 1;
                }
                status.messages += 1;
                status.size += size;
                if flags & flags::SEEN == 0 {
                    status.unseen += 1;
                }
                if flags & flags::DELETED != 0 {
                    status.deleted += 1;
                }
            }
            Ok(status)
        })
        .await
    }
}

/// Creates `name` and each of its superior levels that is not among `existing`.
fn create_levels(
    txn: &WriteTransaction,
    account: &str,
    name: &str,
    existing: &[String],
) -> Result<(), StoreError> {
    let mut level = String::new();
    for part in name.split('/') {
        if !level.is_empty() {
            level.push('/');
        }
        level.push_str(part);
        if !existing.contains(&level) {
            if existing.len() >= IMAP_MAX_MAILBOXES {
                return Err(StoreError::Invalid("[LIMIT] too many mailboxes".into()));
            }
            insert_mailbox(txn, account, &level)?;
        }
    }
    Ok(())
}

/// RENAME of INBOX (RFC 9051 §6.3.6): a new mailbox `to` takes INBOX's messages with their
/// UIDs, flags, MODSEQs and `\Recent` claims; INBOX stays, empty, with a tombstone for each
/// message that left, under one new HIGHESTMODSEQ.
fn rename_inbox(txn: &WriteTransaction, account: &str, to: &str) -> Result<(), StoreError> {
    insert_mailbox(txn, account, to)?;
    let mut mailboxes = txn.open_table(MAILBOXES)?;
    let (inbox, inbox_validity, inbox_next, inbox_modseq) = mailboxes
        .get((account, INBOX))?
        .map(|v| v.value())
        .ok_or_else(|| mailbox_not_found(account, INBOX))?;
    let (target, validity, _, _) = mailboxes
        .get((account, to))?
        .map(|v| v.value())
        .ok_or_else(|| mailbox_not_found(account, to))?;
    let modseq = next_modseq(inbox_modseq);
    let mut messages = Messages::open(txn)?;
    for uid in messages.uids(inbox)? {
        let Some(row) = messages.get(inbox, uid)? else {
            continue;
        };
        let flags = messages.flags(inbox, uid, row.1)?;
        messages.remove(inbox, uid, modseq)?;
        messages.insert(target, uid, row, flags.more())?;
    }
    mailboxes.insert((account, to), (target, validity, inbox_next, modseq))?;
    mailboxes.insert(
        (account, INBOX),
        (inbox, inbox_validity, inbox_next, modseq),
    )?;
    let mut recent = txn.open_table(RECENT)?;
    let claimed = recent.get(inbox)?.map(|v| v.value()).unwrap_or(1);
    recent.insert(target, claimed)?;
    Ok(())
}
