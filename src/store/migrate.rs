//! The schema version's check and the upgrades from older schemas (`schema::SCHEMA_VERSION`
//! lists what each added): all in the one write transaction that opens a store.

use redb::{Database, ReadableTable, ReadableTableMetadata};

use super::schema::*;
use super::{FIRST_PAGED_BLOB, MAIL_BYTES, StoreError, index};

/// Creates the tables of a new store, or checks and upgrades the schema of an existing one,
/// in one write transaction: an upgrade is all done or not at all.
pub(super) fn migrate(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    let found = {
        let meta = txn.open_table(META)?;
        let found = meta.get("schema_version")?.map(|v| v.value());
        if found.is_none() && meta.len()? > 0 {
            return Err(StoreError::SchemaMissing);
        }
        found
    };
    match found {
        Some(SCHEMA_VERSION) => {}
        Some(found) if found > SCHEMA_VERSION => {
            return Err(StoreError::SchemaTooNew {
                found,
                known: SCHEMA_VERSION,
            });
        }
        Some(1) => upgrade_from_1(&txn)?,
        // Schema 2 to 3 adds `MORE_FLAGS`, created empty below: no message of schema 2 could
        // have a flag past bit 31. Schema 3 to 4 adds `ADMINISTRATORS`, created empty below:
        // stores before it had no administrators. Schema 4 to 5 adds the greylisting tables
        // and the content filter's `SPAM_TOKENS` and `SPAM_LEARNED`, created empty below (the
        // filter starts untrained), and cuts new bodies into leaf-sized pieces (see below).
        // Schema 5 to 6 adds `BLOB_ENDS`, created empty below: the bodies already stored keep
        // their tails and structures where they are.
        Some(2..=5) => {}
        // Versions before 1 never existed.
        Some(_) => return Err(StoreError::SchemaMissing),
        None => {}
    }
    if found != Some(SCHEMA_VERSION) {
        txn.open_table(META)?
            .insert("schema_version", SCHEMA_VERSION)?;
    }
    if found.is_none_or(|found| found < 5) {
        let mut meta = txn.open_table(META)?;
        // Schema 5 cuts new bodies into leaf-sized pieces; the bodies already stored keep
        // their 64 KiB pieces rather than be rewritten (which would need their size again in
        // free space, in one transaction).
        let first_paged = match found {
            None => 0,
            Some(_) => meta.get("next_blob_id")?.map(|v| v.value()).unwrap_or(1),
        };
        meta.insert(FIRST_PAGED_BLOB, first_paged)?;
        // Schema 5 also counts the octets of mail stored; an older store counts them now.
        let mut mail_bytes = 0u64;
        for entry in txn.open_table(BLOBS)?.iter()? {
            mail_bytes += entry?.1.value().0;
        }
        meta.insert(MAIL_BYTES, mail_bytes)?;
    }
    // Opening every table creates the missing ones, so readers never meet a missing table.
    txn.open_table(ACCOUNTS)?;
    txn.open_table(ADMINISTRATORS)?;
    txn.open_table(QUOTAS)?;
    txn.open_multimap_table(ALIASES)?;
    txn.open_table(MAILBOXES)?;
    txn.open_table(MESSAGES)?;
    txn.open_table(MORE_FLAGS)?;
    txn.open_table(MODSEQS)?;
    txn.open_table(EXPUNGED)?;
    txn.open_table(RECENT)?;
    txn.open_table(BLOBS)?;
    txn.open_table(BLOB_CHUNKS)?;
    txn.open_table(BLOB_TAILS)?;
    txn.open_table(BLOB_META)?;
    txn.open_table(BLOB_ENDS)?;
    txn.open_table(SUBSCRIPTIONS)?;
    txn.open_table(KEYWORDS)?;
    txn.open_table(QUEUE)?;
    txn.open_table(QUEUE_RECIPIENTS)?;
    txn.open_table(GREYLIST)?;
    txn.open_table(GREYLIST_NETWORKS)?;
    txn.open_table(SPAM_TOKENS)?;
    txn.open_table(SPAM_LEARNED)?;
    txn.commit()?;
    Ok(())
}

/// Schema 1 to 2: `MODSEQS` indexes every message of `MESSAGES`; `EXPUNGED` starts empty
/// (nothing was recorded of earlier expunges); every mailbox gets its `\Recent` mark at its
/// UIDNEXT, since schema 1 announced every message as not recent (`* 0 RECENT`) and the
/// messages already there have been seen by sessions.
fn upgrade_from_1(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let indexed = index::rebuild(txn)?;
    txn.open_table(EXPUNGED)?.retain(|_, _| false)?;
    let mut recent = txn.open_table(RECENT)?;
    recent.retain(|_, _| false)?;
    let mailboxes = txn.open_table(MAILBOXES)?;
    for entry in mailboxes.iter()? {
        let (id, _, uidnext, _) = entry?.1.value();
        recent.insert(id, uidnext)?;
    }
    tracing::info!(messages = indexed, "store upgraded from schema 1 to 2");
    Ok(())
}
