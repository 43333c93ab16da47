//! Accounts and aliases. Addresses are stored lowercase; the caller checks that they are in a
//! local domain and hashes passwords (see `auth`).

use redb::{ReadTransaction, ReadableDatabase, ReadableMultimapTable, ReadableTable};
use serde::{Deserialize, Serialize};

use super::schema::*;
use super::{Store, StoreError};

/// Who a local address delivers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Account(String),
    Alias(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSummary {
    pub address: String,
    pub messages: u64,
    pub bytes: u64,
    /// May use the admin page.
    #[serde(default)]
    pub administrator: bool,
    /// The most octets of mail it may hold (`letterbox user quota`).
    #[serde(default)]
    pub quota: Option<u64>,
}

impl Store {
    pub async fn create_account(&self, address: &str, hash: &str) -> Result<(), StoreError> {
        self.create_account_as(address, hash, false).await
    }

    /// Creates an account, with the administrator flag when `administrator` (in the same
    /// transaction: the account never exists without the flag it was made with).
    pub async fn create_account_as(
        &self,
        address: &str,
        hash: &str,
        administrator: bool,
    ) -> Result<(), StoreError> {
        let address = address.to_ascii_lowercase();
        let hash = hash.to_string();
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            {
                let mut accounts = txn.open_table(ACCOUNTS)?;
                let aliases = txn.open_multimap_table(ALIASES)?;
                if accounts.get(address.as_str())?.is_some()
                    || !aliases.get(address.as_str())?.is_empty()
                {
                    return Err(StoreError::Exists(address));
                }
                accounts.insert(address.as_str(), hash.as_str())?;
                if administrator {
                    txn.open_table(ADMINISTRATORS)?
                        .insert(address.as_str(), ())?;
                }
            }
            // RFC 3501 §2.3.1.1: UIDVALIDITY from the clock (and above the last one), so a
            // re-created account's mailboxes never repeat an old (UIDVALIDITY, UID) pair.
            super::folders::create_defaults(&txn, &address)?;
            txn.commit()?;
            Ok(())
        })
        .await
    }

    /// Gives or takes the administrator flag of an existing account.
    pub async fn set_administrator(&self, address: &str, on: bool) -> Result<(), StoreError> {
        let address = address.to_ascii_lowercase();
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            {
                if txn.open_table(ACCOUNTS)?.get(address.as_str())?.is_none() {
                    return Err(not_found("account", &address));
                }
                let mut administrators = txn.open_table(ADMINISTRATORS)?;
                if on {
                    administrators.insert(address.as_str(), ())?;
                } else {
                    administrators.remove(address.as_str())?;
                }
            }
            txn.commit()?;
            Ok(())
        })
        .await
    }

    pub async fn is_administrator(&self, address: &str) -> Result<bool, StoreError> {
        let address = address.to_ascii_lowercase();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            Ok(txn
                .open_table(ADMINISTRATORS)?
                .get(address.as_str())?
                .is_some())
        })
        .await
    }

    pub async fn set_password(&self, address: &str, hash: &str) -> Result<(), StoreError> {
        let address = address.to_ascii_lowercase();
        let hash = hash.to_string();
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            {
                let mut accounts = txn.open_table(ACCOUNTS)?;
                if accounts.get(address.as_str())?.is_none() {
                    return Err(not_found("account", &address));
                }
                accounts.insert(address.as_str(), hash.as_str())?;
            }
            txn.commit()?;
            Ok(())
        })
        .await
    }

    /// Deletes an account with all its mail, and removes it from aliases (an alias left with
    /// no target is deleted too).
    pub async fn delete_account(&self, address: &str) -> Result<(), StoreError> {
        let address = address.to_ascii_lowercase();
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            {
                let mut accounts = txn.open_table(ACCOUNTS)?;
                if accounts.remove(address.as_str())?.is_none() {
                    return Err(not_found("account", &address));
                }
                txn.open_table(ADMINISTRATORS)?.remove(address.as_str())?;
                txn.open_table(QUOTAS)?.remove(address.as_str())?;
                let mut mailboxes = txn.open_table(MAILBOXES)?;
                let mut owned = Vec::new();
                for entry in mailboxes.range((address.as_str(), "")..)? {
                    let (key, value) = entry?;
                    let (owner, name) = key.value();
                    if owner != address {
                        break;
                    }
                    owned.push((name.to_string(), value.value().0));
                }
                for (name, id) in owned {
                    super::mailbox::remove_all_messages(&txn, id)?;
                    mailboxes.remove((address.as_str(), name.as_str()))?;
                }
                let mut subscriptions = txn.open_table(SUBSCRIPTIONS)?;
                let mut subscribed = Vec::new();
                for entry in subscriptions.range((address.as_str(), "")..)? {
                    let (key, _) = entry?;
                    let (owner, name) = key.value();
                    if owner != address {
                        break;
                    }
                    subscribed.push(name.to_string());
                }
                for name in subscribed {
                    subscriptions.remove((address.as_str(), name.as_str()))?;
                }
                let mut aliases = txn.open_multimap_table(ALIASES)?;
                let mut pointing = Vec::new();
                for entry in aliases.iter()? {
                    let (alias, targets) = entry?;
                    for target in targets {
                        if target?.value() == address {
                            pointing.push(alias.value().to_string());
                        }
                    }
                }
                for alias in pointing {
                    aliases.remove(alias.as_str(), address.as_str())?;
                }
            }
            txn.commit()?;
            Ok(())
        })
        .await?;
        // Its sessions learn that their mailboxes are gone.
        self.changed();
        self.publish_totals_async().await;
        Ok(())
    }

    /// The stored password hash, if the account exists.
    pub async fn password_hash(&self, address: &str) -> Result<Option<String>, StoreError> {
        let address = address.to_ascii_lowercase();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let accounts = txn.open_table(ACCOUNTS)?;
            Ok(accounts
                .get(address.as_str())?
                .map(|v| v.value().to_string()))
        })
        .await
    }

    pub async fn accounts(&self) -> Result<Vec<AccountSummary>, StoreError> {
        self.blocking(|db| {
            let txn = db.begin_read()?;
            let accounts = txn.open_table(ACCOUNTS)?;
            let administrators = txn.open_table(ADMINISTRATORS)?;
            let quotas = txn.open_table(QUOTAS)?;
            let mailboxes = txn.open_table(MAILBOXES)?;
            let messages = txn.open_table(MESSAGES)?;
            let mut list = Vec::new();
            for entry in accounts.iter()? {
                let (address, _) = entry?;
                let address = address.value().to_string();
                let mut summary = AccountSummary {
                    address: address.clone(),
                    messages: 0,
                    bytes: 0,
                    administrator: administrators.get(address.as_str())?.is_some(),
                    quota: quotas.get(address.as_str())?.map(|v| v.value()),
                };
                for mailbox in mailboxes.range((address.as_str(), "")..)? {
                    let (key, value) = mailbox?;
                    if key.value().0 != address {
                        break;
                    }
                    let id = value.value().0;
                    for message in messages.range((id, 0)..=(id, u32::MAX))? {
                        summary.messages += 1;
                        summary.bytes += message?.1.value().3;
                    }
                }
                list.push(summary);
            }
            Ok(list)
        })
        .await
    }

    /// Creates or replaces an alias. Every target must be an existing account.
    pub async fn set_alias(&self, alias: &str, targets: &[String]) -> Result<(), StoreError> {
        let alias = alias.to_ascii_lowercase();
        let targets: Vec<String> = targets.iter().map(|t| t.to_ascii_lowercase()).collect();
        if targets.is_empty() {
            return Err(StoreError::Invalid(
                "an alias needs at least one target".into(),
            ));
        }
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            {
                let accounts = txn.open_table(ACCOUNTS)?;
                if accounts.get(alias.as_str())?.is_some() {
                    return Err(StoreError::Exists(format!("account {alias}")));
                }
                for target in &targets {
                    if accounts.get(target.as_str())?.is_none() {
                        return Err(not_found("account", target));
                    }
                }
                let mut aliases = txn.open_multimap_table(ALIASES)?;
                aliases.remove_all(alias.as_str())?;
                for target in &targets {
                    aliases.insert(alias.as_str(), target.as_str())?;
                }
            }
            txn.commit()?;
            Ok(())
        })
        .await
    }

    pub async fn delete_alias(&self, alias: &str) -> Result<(), StoreError> {
        let alias = alias.to_ascii_lowercase();
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            {
                let mut aliases = txn.open_multimap_table(ALIASES)?;
                if aliases.remove_all(alias.as_str())?.is_empty() {
                    return Err(not_found("alias", &alias));
                }
            }
            txn.commit()?;
            Ok(())
        })
        .await
    }

    pub async fn aliases(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        self.blocking(|db| {
            let txn = db.begin_read()?;
            let aliases = txn.open_multimap_table(ALIASES)?;
            let mut list = Vec::new();
            for entry in aliases.iter()? {
                let (alias, targets) = entry?;
                let targets = targets
                    .map(|t| t.map(|t| t.value().to_string()))
                    .collect::<Result<Vec<_>, _>>()?;
                list.push((alias.value().to_string(), targets));
            }
            Ok(list)
        })
        .await
    }

    /// What a local address (already lowercased by the caller or not) delivers to.
    pub async fn recipient(&self, address: &str) -> Result<Option<Recipient>, StoreError> {
        let address = address.to_ascii_lowercase();
        self.blocking(move |db| recipient(&db.begin_read()?, address))
            .await
    }

    /// `recipient`, and whether `adding` more octets fit the quota of each account it delivers
    /// to (`StoreError::OverQuota` if not), in one trip to the blocking pool: SMTP asks both
    /// at RCPT, with the size MAIL declared, so a full mailbox is refused before the message
    /// is sent (the check that counts is the one made when the message is filed).
    pub async fn recipient_with_room(
        &self,
        address: &str,
        adding: u64,
    ) -> Result<Option<Recipient>, StoreError> {
        let address = address.to_ascii_lowercase();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let found = recipient(&txn, address)?;
            let accounts = match &found {
                Some(Recipient::Account(account)) => std::slice::from_ref(account),
                Some(Recipient::Alias(targets)) => targets.as_slice(),
                None => &[],
            };
            super::quota::room(&txn, accounts, adding)?;
            Ok(found)
        })
        .await
    }
}

/// What a lowercased local address delivers to.
fn recipient(txn: &ReadTransaction, address: String) -> Result<Option<Recipient>, StoreError> {
    if txn.open_table(ACCOUNTS)?.get(address.as_str())?.is_some() {
        return Ok(Some(Recipient::Account(address)));
    }
    let aliases = txn.open_multimap_table(ALIASES)?;
    let targets = aliases
        .get(address.as_str())?
        .map(|t| t.map(|t| t.value().to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    if !targets.is_empty() {
        return Ok(Some(Recipient::Alias(targets)));
    }
    // RFC 5321 §4.5.1: postmaster@ every local domain must be accepted, alias or not.
    // Without an alias it reaches the first administrator (in address order), or on a
    // box with none yet the first account.
    if address
        .split_once('@')
        .is_some_and(|(local, _)| local == "postmaster")
    {
        let first = match txn.open_table(ADMINISTRATORS)?.first()? {
            Some((admin, _)) => Some(admin.value().to_string()),
            None => txn
                .open_table(ACCOUNTS)?
                .first()?
                .map(|(account, _)| account.value().to_string()),
        };
        return Ok(first.map(|account| Recipient::Alias(vec![account])));
    }
    Ok(None)
}

fn not_found(kind: &'static str, name: &str) -> StoreError {
    StoreError::NotFound {
        kind,
        name: name.to_string(),
    }
}
