//! Spool files: a message being received is written here in chunks, then the store writer
//! copies it into redb in chunks, so neither side holds the whole message in memory.
//! A spool file is scratch, not durable state: the message is acknowledged only after the
//! redb commit that holds it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::StoreError;
use crate::limits::BODY_CHUNK;

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

/// Writes a message to a new spool file. The file is created by the first write that reaches
/// it, and bytes reach it a `BODY_CHUNK` at a time: a small message costs one trip to the
/// blocking pool (create and write together, at `finish`) instead of one for the create, one
/// per write and one for the flush. Each trip is two thread wake-ups, which on a busy two-core
/// box cost more than the writing itself.
pub struct SpoolWriter {
    /// `None` after a write failed (a later write must not re-create and truncate the file).
    sink: Option<Sink>,
    spool: SpoolFile,
}

/// The writer's file and the bytes not yet in it; moved to the blocking pool and back.
struct Sink {
    path: PathBuf,
    file: Option<std::fs::File>,
    pending: Vec<u8>,
}

impl Sink {
    fn drain(&mut self) -> std::io::Result<()> {
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(std::fs::File::create(&self.path)?),
        };
        file.write_all(&self.pending)?;
        self.pending.clear();
        Ok(())
    }
}

impl SpoolWriter {
    pub(super) fn create(dir: &Path) -> Self {
        let sequence = SPOOL_SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{}-{sequence}.msg", std::process::id()));
        SpoolWriter {
            sink: Some(Sink {
                path: path.clone(),
                file: None,
                pending: Vec::with_capacity(BODY_CHUNK),
            }),
            spool: SpoolFile { path, size: 0 },
        }
    }

    pub async fn write(&mut self, mut bytes: &[u8]) -> Result<(), StoreError> {
        while !bytes.is_empty() {
            let (taken, full) = self.buffer(bytes)?;
            bytes = &bytes[taken..];
            if full {
                self.drain().await?;
            }
        }
        Ok(())
    }

    /// `write` for code already running on the blocking pool.
    pub fn write_blocking(&mut self, mut bytes: &[u8]) -> Result<(), StoreError> {
        while !bytes.is_empty() {
            let (taken, full) = self.buffer(bytes)?;
            bytes = &bytes[taken..];
            if full {
                self.drain_blocking()?;
            }
        }
        Ok(())
    }

    /// Takes what fits of `bytes` into the pending ones (at most a `BODY_CHUNK` pending):
    /// how many it took, and whether the pending ones are a `BODY_CHUNK` now.
    fn buffer(&mut self, bytes: &[u8]) -> Result<(usize, bool), StoreError> {
        let sink = self.sink.as_mut().ok_or_else(broken)?;
        let taken = bytes.len().min(BODY_CHUNK - sink.pending.len());
        sink.pending.extend_from_slice(&bytes[..taken]);
        self.spool.size += taken as u64;
        Ok((taken, sink.pending.len() == BODY_CHUNK))
    }

    async fn drain(&mut self) -> Result<(), StoreError> {
        let mut sink = self.sink.take().ok_or_else(broken)?;
        let sink = tokio::task::spawn_blocking(move || sink.drain().map(|()| sink))
            .await
            .map_err(|_| StoreError::Closed)?
            .map_err(StoreError::io)?;
        self.sink = Some(sink);
        Ok(())
    }

    fn drain_blocking(&mut self) -> Result<(), StoreError> {
        let sink = self.sink.as_mut().ok_or_else(broken)?;
        if let Err(error) = sink.drain() {
            self.sink = None;
            return Err(StoreError::io(error));
        }
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.spool.size
    }

    /// Writes what is pending (no fsync: durability comes from the redb commit).
    pub async fn finish(mut self) -> Result<SpoolFile, StoreError> {
        self.drain().await?;
        Ok(self.spool)
    }

    /// `finish` for code already running on the blocking pool.
    pub fn finish_blocking(mut self) -> Result<SpoolFile, StoreError> {
        self.drain_blocking()?;
        Ok(self.spool)
    }
}

/// A write after a failed one.
fn broken() -> StoreError {
    StoreError::io(std::io::ErrorKind::BrokenPipe.into())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_spool_file_is_written_a_chunk_at_a_time_and_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut writer = SpoolWriter::create(dir.path());
        let path = writer.spool.path.clone();
        let head = b"Subject: x\r\n\r\n";
        writer.write(head).await.expect("write");
        assert!(!path.exists(), "a small start stays in memory");
        let body: Vec<u8> = (0..BODY_CHUNK * 2 + 17).map(|i| (i % 251) as u8).collect();
        writer.write(&body).await.expect("write");
        let on_disk = std::fs::metadata(&path).expect("created").len();
        assert_eq!(on_disk, 2 * BODY_CHUNK as u64, "whole chunks only");
        let spool = writer.finish().await.expect("finish");
        let mut expected = head.to_vec();
        expected.extend_from_slice(&body);
        assert_eq!(std::fs::read(spool.path()).expect("read"), expected);
        assert_eq!(spool.size(), expected.len() as u64);
    }

    #[tokio::test]
    async fn after_a_failed_write_the_writer_stays_failed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("gone");
        let mut writer = SpoolWriter::create(&missing);
        assert!(writer.write(&[b'a'; BODY_CHUNK]).await.is_err());
        std::fs::create_dir(&missing).expect("mkdir");
        // A new file now would silently lose the chunk that failed.
        assert!(writer.write(b"b").await.is_err());
        assert!(writer.finish().await.is_err());
    }
}
