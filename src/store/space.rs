//! Whether a message fits: on the data device beside `min_free_space`, counting the space
//! freed inside the store file as room too. redb never gives pages back to the file system,
//! so after an EXPUNGE on a full device the device stays full while the store has free pages
//! that its next commits reuse; counting only the device refused every large delivery until a
//! restart (issue #16 defect 5).

use std::path::Path;

use redb::WriteTransaction;

use super::{STORE_FILE, Store, StoreError};
use crate::status::Storage;

/// What admitting `bytes` of mail needs. Bodies stored since schema 5 take about their size
/// (pieces that fill redb's leaves, `pieces`); older ones, kept in 64 KiB chunks, took up to
/// twice it, and redb writes a commit's new pages before it frees the old. Counting twice the
/// body keeps `reserve` free on the device whatever the layout and the commit, for the spool
/// file the next message is written to before the store takes it, at the price of refusing a
/// little early on a nearly full card. (Counting a quarter more than the body with 64 KiB
/// chunks let the store eat the reserve: the device filled up completely and no spool file
/// could be written after EXPUNGE.)
pub(super) fn needed(bytes: u64, reserve: u64) -> u64 {
    bytes.saturating_mul(2).saturating_add(reserve)
}

/// The bytes the store file holds free for reuse *on the device*: the blocks the file
/// occupies on disk less the pages in use. redb grows its file by doubling it, sparsely, so
/// its free pages past what was ever written take no device space and would take it when
/// written; only free pages already backed by blocks are room. It walks every table's tree,
/// so it is only asked when the device alone is too full.
pub(super) fn reusable(txn: &WriteTransaction, data_dir: &Path) -> Result<u64, StoreError> {
    use std::os::unix::fs::MetadataExt;
    let stats = txn.stats()?;
    let in_use = stats
        .allocated_pages()
        .saturating_mul(u64::try_from(stats.page_size()).unwrap_or(u64::MAX));
    let on_disk = std::fs::metadata(data_dir.join(STORE_FILE))
        .map_err(StoreError::io)?
        .blocks()
        .saturating_mul(512);
    Ok(on_disk.saturating_sub(in_use))
}

/// The device's free space when it alone is short of `needed`; `None` when it has room (or
/// cannot be read: the write itself will tell).
pub(super) fn device_short(dir: &Path, needed: u64) -> Option<u64> {
    Storage::of(dir)
        .map(|storage| storage.free_bytes)
        .filter(|free| *free < needed)
}

impl Store {
    /// Whether a message of `bytes` can be taken now, keeping `reserve` free on the device
    /// (RFC 1870 §6.2's "insufficient storage" check for a declared SIZE, IMAP's
    /// [OVERQUOTA]). The writer checks again with the real sizes before it commits.
    pub async fn has_room(&self, bytes: u64, reserve: u64) -> Result<bool, StoreError> {
        let needed = needed(bytes, reserve);
        let data_dir = self.inner.data_dir.clone();
        let Some(free) = device_short(&data_dir, needed) else {
            return Ok(true);
        };
        let reusable = self
            .blocking(move |db| {
                let txn = db.begin_write()?;
                let reusable = reusable(&txn, &data_dir);
                txn.abort()?;
                reusable
            })
            .await?;
        Ok(free.saturating_add(reusable) >= needed)
    }
}
