//! Spool files: a message being received is written here in chunks, then the store writer
//! copies it into redb in chunks, so neither side holds the whole message in memory.
//! A spool file is scratch, not durable state: the message is acknowledged only after the
//! redb commit that holds it.
//!
//! The files are slots, used again and again: a slot's bytes are dropped with a punched hole
//! once the message is in the store, and the next message is written over it from offset 0.
//! Creating and deleting a file for every message changed the inode bitmap, the spool
//! directory's block and the superblock's orphan list each time, and the store's next
//! `fdatasync` had to journal all three: about 3 of the 9 blocks the journal took per
//! delivery (docs/store-design.md, "The spool's own journal blocks"). The data itself never
//! reaches the card either way, when the message is in the store before the kernel writes it
//! back (30 s by default): the punched pages are dropped unwritten, as a deleted file's were.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::StoreError;
use crate::limits::BODY_CHUNK;

/// Free slots kept beyond this many are deleted instead: a burst of parallel deliveries does
/// not leave its files (and their descriptors) behind for good.
const SLOTS_KEPT: usize = 32;

/// The spool directory's slots not in use.
#[derive(Debug)]
pub(super) struct SpoolSlots {
    dir: PathBuf,
    free: Mutex<Vec<(PathBuf, File)>>,
    named: AtomicU64,
    /// Slots taken and not yet given back: messages being received, on their way to the
    /// store or in its writer's hands (the writer waits a little for the others).
    in_use: AtomicUsize,
}

impl SpoolSlots {
    /// Clears what a previous process left (a message it died receiving) and starts empty.
    pub(super) fn open(dir: PathBuf) -> Result<Arc<Self>, StoreError> {
        std::fs::create_dir_all(&dir).map_err(StoreError::io)?;
        for entry in std::fs::read_dir(&dir).map_err(StoreError::io)? {
            let entry = entry.map_err(StoreError::io)?;
            std::fs::remove_file(entry.path()).map_err(StoreError::io)?;
        }
        Ok(Arc::new(SpoolSlots {
            dir,
            free: Mutex::new(Vec::new()),
            named: AtomicU64::new(0),
            in_use: AtomicUsize::new(0),
        }))
    }

    /// Messages in the spool now: being received, or received and not yet stored.
    pub(super) fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    fn take(self: &Arc<Self>) -> Slot {
        self.in_use.fetch_add(1, Ordering::Relaxed);
        let reused = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let (path, file) = match reused {
            Some((path, file)) => (path, OnceLock::from(file)),
            None => {
                let n = self.named.fetch_add(1, Ordering::Relaxed);
                (self.dir.join(format!("slot-{n}.msg")), OnceLock::new())
            }
        };
        Slot {
            path,
            file,
            written: AtomicU64::new(0),
            slots: self.clone(),
        }
    }

    fn give_back(&self, path: PathBuf, file: File) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < SLOTS_KEPT {
            free.push((path, file));
        } else {
            drop(free);
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// One spool file while a message is in it. Given back when the last `SpoolFile` (and the
/// writer) holding it is dropped, so a reader never sees the next message.
#[derive(Debug)]
struct Slot {
    path: PathBuf,
    /// Opened (created) by the first write that reaches the disk.
    file: OnceLock<File>,
    /// Octets written this time, from offset 0: the part to drop.
    written: AtomicU64,
    slots: Arc<SpoolSlots>,
}

impl Slot {
    fn file(&self) -> std::io::Result<&File> {
        if let Some(file) = self.file.get() {
            return Ok(file);
        }
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&self.path)?;
        Ok(self.file.get_or_init(|| file))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.in_use.fetch_sub(1, Ordering::Relaxed);
        let Some(file) = self.file.take() else {
            return;
        };
        let written = *self.written.get_mut();
        if written == 0 || discard(&file, written).is_ok() {
            self.slots.give_back(std::mem::take(&mut self.path), file);
        } else {
            // Best effort: leftovers are also cleared at the next start.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Drops the first `len` octets of `file` without changing its length: the pages not yet
/// written back are cancelled, blocks already written are freed.
fn discard(file: &File, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(len).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    // SAFETY: a valid open descriptor, and the range is within what was written.
    if unsafe { libc::fallocate(file.as_raw_fd(), mode, 0, len) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A message on its way into the store: the first `size` octets of its slot (the file may
/// be longer, holding zeros where an earlier message was). Clones share the slot.
#[derive(Debug, Clone)]
pub struct SpoolFile {
    slot: Arc<Slot>,
    size: u64,
}

impl SpoolFile {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// A reader of the message from its start, with an offset of its own.
    pub fn reader(&self) -> Result<std::io::Take<File>, StoreError> {
        Ok(File::open(&self.slot.path)
            .map_err(StoreError::io)?
            .take(self.size))
    }

    /// `reader` for async code.
    pub async fn async_reader(&self) -> Result<tokio::io::Take<tokio::fs::File>, StoreError> {
        use tokio::io::AsyncReadExt;
        Ok(tokio::fs::File::open(&self.slot.path)
            .await
            .map_err(StoreError::io)?
            .take(self.size))
    }

    /// At most `limit` octets from the start.
    pub async fn head(&self, limit: u64) -> Result<Vec<u8>, StoreError> {
        use tokio::io::AsyncReadExt;
        let mut raw =
            Vec::with_capacity(usize::try_from(limit.min(BODY_CHUNK as u64)).unwrap_or(0));
        self.async_reader()
            .await?
            .take(limit)
            .read_to_end(&mut raw)
            .await
            .map_err(StoreError::io)?;
        Ok(raw)
    }
}

#[cfg(test)]
impl SpoolFile {
    /// A spool file never written, for tests of steps that do not read it.
    pub fn unwritten(size: u64) -> SpoolFile {
        let slots = Arc::new(SpoolSlots {
            dir: PathBuf::from("/nonexistent"),
            free: Mutex::default(),
            named: AtomicU64::new(0),
            in_use: AtomicUsize::new(0),
        });
        SpoolFile {
            slot: Arc::new(slots.take()),
            size,
        }
    }
}

/// Writes a message to a spool slot. The slot's file is created (when new) by the first write
/// that reaches it, and bytes reach it a `BODY_CHUNK` at a time: a small message costs one
/// trip to the blocking pool (at `finish`) instead of one per write and one for the flush.
/// Each trip is two thread wake-ups, which on a busy two-core box cost more than the writing
/// itself.
pub struct SpoolWriter {
    /// `None` after a write failed (a later write must not leave a hole in the message).
    sink: Option<Sink>,
    spool: SpoolFile,
}

/// The bytes not yet in the slot; moved to the blocking pool and back.
struct Sink {
    slot: Arc<Slot>,
    pending: Vec<u8>,
}

impl Sink {
    fn drain(&mut self) -> std::io::Result<()> {
        let offset = self.slot.written.load(Ordering::Relaxed);
        self.slot.file()?.write_all_at(&self.pending, offset)?;
        self.slot
            .written
            .store(offset + self.pending.len() as u64, Ordering::Relaxed);
        self.pending.clear();
        Ok(())
    }
}

impl SpoolWriter {
    pub(super) fn create(slots: &Arc<SpoolSlots>) -> Self {
        let slot = Arc::new(slots.take());
        SpoolWriter {
            sink: Some(Sink {
                slot: slot.clone(),
                pending: Vec::with_capacity(BODY_CHUNK),
            }),
            spool: SpoolFile { slot, size: 0 },
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

#[cfg(test)]
mod tests {
    use super::*;

    fn slots() -> (tempfile::TempDir, Arc<SpoolSlots>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let slots = SpoolSlots::open(dir.path().join("spool")).expect("slots");
        (dir, slots)
    }

    fn read_all(spool: &SpoolFile) -> Vec<u8> {
        let mut bytes = Vec::new();
        spool
            .reader()
            .expect("reader")
            .read_to_end(&mut bytes)
            .expect("read");
        bytes
    }

    #[tokio::test]
    async fn a_spool_file_is_written_a_chunk_at_a_time_and_whole() {
        let (_dir, slots) = slots();
        let mut writer = SpoolWriter::create(&slots);
        let path = writer.spool.slot.path.clone();
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
        assert_eq!(read_all(&spool), expected);
        assert_eq!(spool.size(), expected.len() as u64);
        assert_eq!(spool.head(5).await.expect("head"), b"Subje");
    }

    #[tokio::test]
    async fn a_slot_is_used_again_and_a_shorter_message_reads_as_itself() {
        use std::os::unix::fs::MetadataExt;
        let (_dir, slots) = slots();
        let mut long = SpoolWriter::create(&slots);
        long.write(&vec![b'L'; BODY_CHUNK * 3])
            .await
            .expect("write");
        let long = long.finish().await.expect("finish");
        let path = long.slot.path.clone();
        let reader = long.clone();
        drop(long);
        // A clone (a filter's view of the message) keeps the slot out of the pool.
        let mut other = SpoolWriter::create(&slots);
        other.write(b"other").await.expect("write");
        let other = other.finish().await.expect("finish");
        assert_ne!(other.slot.path, path);
        drop(other);
        assert_eq!(read_all(&reader).len(), BODY_CHUNK * 3);
        drop(reader);
        assert_eq!(
            std::fs::metadata(&path).expect("kept").blocks(),
            0,
            "the given-back slot holds no blocks"
        );
        let mut short = SpoolWriter::create(&slots);
        short.write(b"short message").await.expect("write");
        let short = short.finish().await.expect("finish");
        assert_eq!(
            short.slot.path, path,
            "the slot given back last is used first"
        );
        assert_eq!(read_all(&short), b"short message");
        assert_eq!(short.head(1000).await.expect("head"), b"short message");
    }

    #[tokio::test]
    async fn after_a_failed_write_the_writer_stays_failed() {
        let (dir, slots) = slots();
        std::fs::remove_dir(dir.path().join("spool")).expect("rmdir");
        let mut writer = SpoolWriter::create(&slots);
        assert!(writer.write(&[b'a'; BODY_CHUNK]).await.is_err());
        std::fs::create_dir(dir.path().join("spool")).expect("mkdir");
        // Writing on would leave the chunk that failed out of the message.
        assert!(writer.write(b"b").await.is_err());
        assert!(writer.finish().await.is_err());
    }

    #[test]
    fn a_new_start_clears_what_a_dead_process_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = dir.path().join("spool");
        std::fs::create_dir(&spool).expect("mkdir");
        std::fs::write(spool.join("slot-3.msg"), b"half a message").expect("write");
        SpoolSlots::open(spool.clone()).expect("slots");
        assert_eq!(std::fs::read_dir(&spool).expect("dir").count(), 0);
    }
}
