//! Spool files: a message being received is written here in chunks, then the store writer
//! copies it into redb in chunks, so neither side holds the whole message in memory.
//! A spool file is scratch, not durable state: the message is acknowledged only after the
//! redb commit that holds it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::AsyncWriteExt;

use super::StoreError;

static SPOOL_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A message on its way into the store. Removed from disk when dropped.
#[derive(Debug)]
pub struct SpoolFile {
    path: PathBuf,
    size: u64,
}

impl SpoolFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        // Best effort: leftovers are also cleared at the next start.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes a message to a new spool file.
pub struct SpoolWriter {
    file: tokio::io::BufWriter<tokio::fs::File>,
    spool: SpoolFile,
}

impl SpoolWriter {
    pub(super) async fn create(dir: &Path) -> Result<Self, StoreError> {
        let sequence = SPOOL_SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{}-{sequence}.msg", std::process::id()));
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(StoreError::io)?;
        Ok(SpoolWriter {
            file: tokio::io::BufWriter::with_capacity(crate::limits::BODY_CHUNK, file),
            spool: SpoolFile { path, size: 0 },
        })
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.file.write_all(bytes).await.map_err(StoreError::io)?;
        self.spool.size += bytes.len() as u64;
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.spool.size
    }

    /// Flushes to the file (no fsync: durability comes from the redb commit).
    pub async fn finish(mut self) -> Result<SpoolFile, StoreError> {
        self.file.flush().await.map_err(StoreError::io)?;
        Ok(self.spool)
    }
}

/// Removes spool files left by a process that died mid-message.
pub(super) fn clear(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(StoreError::io)?;
    for entry in std::fs::read_dir(dir).map_err(StoreError::io)? {
        let entry = entry.map_err(StoreError::io)?;
        std::fs::remove_file(entry.path()).map_err(StoreError::io)?;
    }
    Ok(())
}
