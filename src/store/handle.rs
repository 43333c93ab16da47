//! The open database, replaceable. After an I/O error during a commit (a full disk, a flaky
//! card) redb refuses all further work until the database is opened again; this handle does
//! that reopening, so the appliance recovers by itself once the cause is gone.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redb::Database;

use super::StoreError;

/// How long a reopen waits for operations in flight to let go of the old database.
const DRAIN: Duration = Duration::from_secs(5);

pub(super) struct DbHandle {
    current: RwLock<Option<Arc<Database>>>,
    path: PathBuf,
    cache_size: usize,
}

impl DbHandle {
    pub fn open(path: PathBuf, cache_size: usize) -> Result<Self, StoreError> {
        let db = Self::create(&path, cache_size)?;
        Ok(DbHandle {
            current: RwLock::new(Some(Arc::new(db))),
            path,
            cache_size,
        })
    }

    fn create(path: &Path, cache_size: usize) -> Result<Database, StoreError> {
        super::recovery::open_database(path, cache_size)
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The database for one operation. Callers drop it when the operation ends; nobody keeps
    /// it across operations, so a reopen can wait for them.
    pub fn get(&self) -> Result<Arc<Database>, StoreError> {
        let current = self.current.read().map_err(|_| StoreError::Closed)?.clone();
        match current {
            Some(db) => Ok(db),
            None => {
                self.reopen()?;
                self.current
                    .read()
                    .map_err(|_| StoreError::Closed)?
                    .clone()
                    .ok_or(StoreError::NeedsReopen)
            }
        }
    }

    /// Called with the error an operation ended with: errors that leave redb unusable lead
    /// to a reopen.
    pub fn after_error(&self, error: &StoreError) {
        if matches!(
            error,
            StoreError::Full | StoreError::Io(_) | StoreError::NeedsReopen
        ) && let Err(reopen) = self.reopen()
        {
            tracing::error!(%reopen, "cannot reopen the store");
        }
    }

    fn reopen(&self) -> Result<(), StoreError> {
        let mut guard = self.current.write().map_err(|_| StoreError::Closed)?;
        if let Some(db) = guard.take() {
            let started = Instant::now();
            while Arc::strong_count(&db) > 1 && started.elapsed() < DRAIN {
                std::thread::sleep(Duration::from_millis(5));
            }
            if Arc::strong_count(&db) > 1 {
                *guard = Some(db);
                return Err(StoreError::NeedsReopen);
            }
            drop(db);
        }
        tracing::warn!(path = %self.path.display(), "reopening the store after an I/O error");
        *guard = Some(Arc::new(Self::create(&self.path, self.cache_size)?));
        Ok(())
    }
}
