//! A quick start after a power cut. redb opens a file that was not closed cleanly by reading
//! all of it (every page's checksum, then every tree to rebuild its allocator's state) unless
//! the last durable commit recorded that state ("quick repair"). The full check took 3.7 s a
//! GiB on the development machine (2.2 of them CPU), so minutes for a household's store on a
//! Pi's SD card, with the panel dark and no mail served meanwhile: a person who pulled the
//! plug would think the box broken.
//!
//! Recording the state with every commit costs each delivery a second `fdatasync` and about
//! 16 KiB more written (bench/RESULTS.md, 7 December: 4 KiB messages from one sender 21.1 →
//! 25.1 octets written per octet). A mail box is idle nearly all the time, so the store
//! records it once the file has gone `QUIET` unwritten after a change instead: a power cut
//! then finds the state recorded, unless it comes within 2–4 s of a write (the file must look
//! unchanged at two looks `QUIET` apart).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use redb::Database;
use tokio_util::sync::CancellationToken;

use super::{Store, StoreError};

/// How long the store file goes unwritten before its allocator state is recorded; also how
/// often the file's modification time is looked at.
const QUIET: Duration = Duration::from_secs(2);

impl Store {
    /// Records redb's allocator state (an empty commit with quick repair) whenever the store
    /// file has not been written for `QUIET` since it last changed, until `shutdown`.
    pub async fn record_allocator_state_when_quiet(&self, shutdown: CancellationToken) {
        let path = self.inner.db.path().to_path_buf();
        let mut seen = modified(&path).await;
        let mut recorded = None;
        loop {
            tokio::select! {
                () = tokio::time::sleep(QUIET) => {}
                () = shutdown.cancelled() => return,
            }
            let now = modified(&path).await;
            if now != seen {
                seen = now;
                continue;
            }
            if now.is_none() || now == recorded {
                continue;
            }
            let result = self.blocking(record_allocator_state).await;
            if let Err(error) = result {
                tracing::warn!(%error, "the store's allocator state was not recorded");
            }
            // After a failure too: the next change tries again, not every `QUIET`.
            recorded = modified(&path).await;
            seen = recorded;
        }
    }
}

/// An empty commit that records redb's allocator state, so that a crash before the next
/// durable commit leaves a file that opens without the check.
fn record_allocator_state(db: &Database) -> Result<(), StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_quick_repair(true);
    txn.commit()?;
    Ok(())
}

async fn modified(path: &Path) -> Option<SystemTime> {
    tokio::fs::metadata(path)
        .await
        .and_then(|m| m.modified())
        .ok()
}

/// Opens (or creates) the redb file; when it was not closed cleanly, says so before redb's
/// check of the whole file and how long the check took after it.
pub(super) fn open_database(path: &Path, cache_size: usize) -> Result<Database, StoreError> {
    let started = Instant::now();
    let checking = Arc::new(AtomicBool::new(false));
    let announced = checking.clone();
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    let shown = path.display().to_string();
    // redb calls this only when the file needs the check, and then more than once.
    let announce = move |_: &mut redb::RepairSession| {
        if !announced.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                path = shown,
                mib = size >> 20,
                "the store was not closed cleanly (a power cut or a crash): checking all of it \
                 before the services start"
            );
        }
    };
    let db = Database::builder()
        .set_cache_size(cache_size)
        .set_repair_callback(announce)
        .create(path)?;
    if checking.load(Ordering::Relaxed) {
        tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            "the store is checked"
        );
    }
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableDatabase, TableDefinition};

    const TABLE: TableDefinition<u64, u64> = TableDefinition::new("numbers");

    /// Whether opening the file at `path` needs redb's check of the whole file.
    fn needs_check(path: &Path) -> bool {
        let checked = Arc::new(AtomicBool::new(false));
        let seen = checked.clone();
        let db = Database::builder()
            .set_repair_callback(move |_| seen.store(true, Ordering::Relaxed))
            .create(path)
            .expect("opens");
        drop(db);
        checked.load(Ordering::Relaxed)
    }

    /// A copy of the file of an open database is what a power cut would leave on the card
    /// (every commit so far is durable in it).
    #[test]
    fn recording_the_allocator_state_spares_a_crashed_store_the_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.redb");
        let crashed = dir.path().join("crashed.redb");
        let db = open_database(&path, 1 << 20).expect("open");
        let txn = db.begin_write().expect("write");
        txn.open_table(TABLE)
            .expect("table")
            .insert(1, 2)
            .expect("insert");
        txn.commit().expect("commit");

        std::fs::copy(&path, &crashed).expect("copy");
        assert!(
            needs_check(&crashed),
            "a plain commit leaves the check to do"
        );

        record_allocator_state(&db).expect("record");
        std::fs::copy(&path, &crashed).expect("copy");
        assert!(!needs_check(&crashed), "the recorded state is used instead");
        {
            let reopened = Database::create(&crashed).expect("reopen");
            let read = reopened.begin_read().expect("read");
            let table = read.open_table(TABLE).expect("table");
            assert_eq!(table.get(1).expect("get").map(|v| v.value()), Some(2));
        }

        // The next plain commit drops the recorded state again.
        let txn = db.begin_write().expect("write");
        txn.open_table(TABLE)
            .expect("table")
            .insert(3, 4)
            .expect("insert");
        txn.commit().expect("commit");
        std::fs::copy(&path, &crashed).expect("copy");
        assert!(needs_check(&crashed));
    }
}
