//! Per-account quotas (issue #14): a limit on the octets of mail an account holds, set with
//! `letterbox user add --quota` or `letterbox user quota`. Enforced where mail is filed, inside
//! the write transaction, so deliveries and APPENDs running at once cannot both squeeze past
//! the limit; a message to an alias counts for each member. What an account holds is summed
//! from its message rows when it is needed, and only for accounts that have a quota, so no
//! write path keeps a counter that could drift; on a Pi that is a few milliseconds per 10,000
//! messages.

use redb::{
    ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction,
};

use super::schema::*;
use super::{Store, StoreError};

/// An account's quota and what it uses now, in octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaUse {
    pub used: u64,
    pub limit: u64,
}

impl Store {
    /// Sets (`Some`) or removes (`None`) an account's quota.
    pub async fn set_quota(&self, address: &str, limit: Option<u64>) -> Result<(), StoreError> {
        let address = address.to_ascii_lowercase();
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            {
                if txn.open_table(ACCOUNTS)?.get(address.as_str())?.is_none() {
                    return Err(StoreError::NotFound {
                        kind: "account",
                        name: address,
                    });
                }
                let mut quotas = txn.open_table(QUOTAS)?;
                match limit {
                    Some(limit) => quotas.insert(address.as_str(), limit)?,
                    None => quotas.remove(address.as_str())?,
                };
            }
            txn.commit()?;
            Ok(())
        })
        .await
    }

    /// The octets of mail an account holds, in every folder.
    pub async fn account_usage(&self, address: &str) -> Result<u64, StoreError> {
        let address = address.to_ascii_lowercase();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            usage(
                &txn.open_table(MAILBOXES)?,
                &txn.open_table(MESSAGES)?,
                &address,
            )
        })
        .await
    }

    /// The account's quota and use, or `None` when it has no quota.
    pub async fn quota(&self, address: &str) -> Result<Option<QuotaUse>, StoreError> {
        let address = address.to_ascii_lowercase();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let Some(limit) = txn
                .open_table(QUOTAS)?
                .get(address.as_str())?
                .map(|v| v.value())
            else {
                return Ok(None);
            };
            let used = usage(
                &txn.open_table(MAILBOXES)?,
                &txn.open_table(MESSAGES)?,
                &address,
            )?;
            Ok(Some(QuotaUse { used, limit }))
        })
        .await
    }
}

/// Whether `adding` more octets would fit each account's quota now.
pub(super) fn room(
    txn: &ReadTransaction,
    accounts: &[String],
    adding: u64,
) -> Result<(), StoreError> {
    let quotas = txn.open_table(QUOTAS)?;
    if quotas.is_empty()? {
        return Ok(());
    }
    refuse(
        &quotas,
        &txn.open_table(MAILBOXES)?,
        &txn.open_table(MESSAGES)?,
        accounts.iter().map(String::as_str),
        adding,
    )
}

pub(super) fn usage(
    mailboxes: &impl ReadableTable<(&'static str, &'static str), (u64, u32, u32, u64)>,
    messages: &impl ReadableTable<MessageKey, MessageRow>,
    account: &str,
) -> Result<u64, StoreError> {
    let mut used = 0;
    for mailbox in mailboxes.range((account, "")..)? {
        let (key, value) = mailbox?;
        if key.value().0 != account {
            break;
        }
        let id = value.value().0;
        for message in messages.range((id, 0)..=(id, u32::MAX))? {
            used += message?.1.value().3;
        }
    }
    Ok(used)
}

/// Refuses filing `adding` more octets for each of `accounts` where that would pass the
/// account's quota. Called before the transaction opens the tables it writes (redb opens a
/// table once per transaction); it sees what the same transaction filed before.
pub(super) fn check<'a>(
    txn: &WriteTransaction,
    accounts: impl IntoIterator<Item = &'a str>,
    adding: u64,
) -> Result<(), StoreError> {
    let quotas = txn.open_table(QUOTAS)?;
    if quotas.is_empty()? {
        return Ok(());
    }
    refuse(
        &quotas,
        &txn.open_table(MAILBOXES)?,
        &txn.open_table(MESSAGES)?,
        accounts,
        adding,
    )
}

fn refuse<'a>(
    quotas: &impl ReadableTable<&'static str, u64>,
    mailboxes: &impl ReadableTable<(&'static str, &'static str), (u64, u32, u32, u64)>,
    messages: &impl ReadableTable<MessageKey, MessageRow>,
    accounts: impl IntoIterator<Item = &'a str>,
    adding: u64,
) -> Result<(), StoreError> {
    for account in accounts {
        let Some(limit) = quotas.get(account)?.map(|v| v.value()) else {
            continue;
        };
        let larger_than_quota = adding > limit;
        if larger_than_quota || usage(mailboxes, messages, account)?.saturating_add(adding) > limit
        {
            return Err(StoreError::OverQuota {
                account: account.to_string(),
                larger_than_quota,
            });
        }
    }
    Ok(())
}
