//! Group commit: one thread owns delivery writes. It takes every delivery that is waiting (up
//! to `group_commit_max`), writes them all in one transaction and makes that one commit
//! durable, so concurrent deliveries share the cost of the fsync. While more messages are in
//! the spool (being received, or on their way here), it waits for them up to
//! `group_commit_wait_ms` first.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redb::{Database, ReadableTable, WriteTransaction};
use tokio::sync::{mpsc, oneshot, watch};

use super::handle::DbHandle;
use super::index::Messages;
use super::pieces::{self, PIECE_MAX};
use super::schema::*;
use super::spool::SpoolSlots;
use super::{Flags, SpoolFile, StoreError, count_mail, ends, next_id, next_modseq, space};
use crate::mime::Scanner;
use crate::status::Status;

/// One message to store, with the flags and internal date it gets.
pub struct AppendItem {
    pub message: SpoolFile,
    pub flags: Flags,
    pub internal_date: i64,
}

/// Where a delivery went in the first account's mailbox: (UIDVALIDITY, the messages' UIDs).
pub(super) type Filed = (u32, Vec<u32>);

/// Messages for one mailbox name in some accounts; they are all stored in the same commit
/// (MULTIAPPEND's all-or-nothing).
pub(super) struct Delivery {
    pub items: Vec<AppendItem>,
    pub accounts: Vec<String>,
    /// INBOX for deliveries; the APPEND target otherwise.
    pub mailbox: String,
    pub quotas: Quotas,
    /// Where it went in the first account, if that mailbox exists.
    pub reply: oneshot::Sender<Result<Option<Filed>, StoreError>>,
}

/// Whether a delivery is held to the accounts' quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Quotas {
    Apply,
    /// The box's own notices to an account about its mail (`Store::deliver_notice`).
    Pass,
}

pub(super) struct Settings {
    pub backlog: usize,
    pub batch_max: usize,
    /// The longest a commit waits for messages still in the spool.
    pub wait: Duration,
    /// Says how many messages are in the spool.
    pub spool: Arc<SpoolSlots>,
    pub data_dir: PathBuf,
    /// Deliveries are refused (452) rather than let the data device fill up completely.
    pub min_free_space: u64,
    /// Durable commits made so far (group commit makes this smaller than the deliveries).
    pub commits: Arc<AtomicU64>,
    /// Bumped after each commit, for IMAP sessions waiting for news.
    pub changes: watch::Sender<u64>,
    /// Gets the store's totals after each commit, before the deliveries hear of it (here
    /// rather than in each delivering session: one trip less to the blocking pool each).
    pub status: watch::Sender<Status>,
}

pub(super) fn start(
    db: Arc<DbHandle>,
    settings: Settings,
) -> Result<(mpsc::Sender<Delivery>, std::thread::JoinHandle<()>), StoreError> {
    let (sender, receiver) = mpsc::channel(settings.backlog);
    let handle = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || run(&db, receiver, &settings))
        .map_err(StoreError::io)?;
    Ok((sender, handle))
}

fn run(db: &DbHandle, mut receiver: mpsc::Receiver<Delivery>, settings: &Settings) {
    let attempt = |batch: &[Delivery]| {
        // A refusal for room is not an I/O error: the store stays open.
        db.get()
            .and_then(|current| check_space(&current, settings, batch))?;
        let result = db.get().and_then(|current| {
            let filed = commit_batch(&current, batch)?;
            settings.commits.fetch_add(1, Ordering::Relaxed);
            settings.changes.send_modify(|c| *c = c.wrapping_add(1));
            Ok(filed)
        });
        if let Err(error) = &result {
            db.after_error(error);
        }
        result
    };
    let commit_batch = |batch: &[Delivery]| match attempt(batch) {
        // redb refused to start for an earlier operation's I/O error (a write that hit a full
        // disk, say), not for this batch, which it did not write; `after_error` has reopened
        // the store by now, so the batch gets its own answer (stored, or 452 for a full disk
        // itself) instead of a 451 about the past.
        Err(StoreError::NeedsReopen) => attempt(batch),
        result => result,
    };
    // Counted after the replies, which wait for nothing but the commit. The mail is stored:
    // a failure to count it is no failure of the delivery.
    let publish_totals = || {
        let counted = db
            .get()
            .and_then(|current| super::publish_totals(&current, db.path(), &settings.status));
        if let Err(error) = counted {
            tracing::warn!(%error, "cannot count the store's totals");
        }
    };
    let batch_max = settings.batch_max;
    let mut batch = Vec::with_capacity(batch_max);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        gather(&mut receiver, &mut batch, settings);
        match commit_batch(&batch) {
            Ok(filed) => {
                for (delivery, filed) in batch.drain(..).zip(filed) {
                    let _ = delivery.reply.send(Ok(filed));
                }
                publish_totals();
            }
            // One bad delivery must not fail the others: retry each on its own.
            Err(_) if batch.len() > 1 => {
                for delivery in batch.drain(..) {
                    let result = commit_batch(std::slice::from_ref(&delivery))
                        .map(|filed| filed.into_iter().next().flatten());
                    let _ = delivery.reply.send(result);
                }
                publish_totals();
            }
            Err(error) => {
                if let Some(delivery) = batch.pop() {
                    let _ = delivery.reply.send(Err(error));
                }
            }
        }
    }
}

/// How often a commit waiting for more deliveries looks for them.
const GATHER_POLL: Duration = Duration::from_micros(200);

/// Adds the deliveries that are waiting to `batch`, then, while messages beyond the batch's
/// own are in the spool (being received, or checked on their way here), waits for them up
/// to `settings.wait`. A lone delivery does not wait: nothing else is in the spool.
fn gather(receiver: &mut mpsc::Receiver<Delivery>, batch: &mut Vec<Delivery>, settings: &Settings) {
    let deadline = Instant::now() + settings.wait;
    loop {
        while batch.len() < settings.batch_max {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let in_batch: usize = batch.iter().map(|delivery| delivery.items.len()).sum();
        let arriving = settings.spool.in_use().saturating_sub(in_batch);
        if batch.len() >= settings.batch_max || arriving == 0 || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(GATHER_POLL);
    }
}

/// Refuses a batch that would leave less than `min_free_space` on the data device, counting
/// the pages free inside the store file as room (see `space`).
fn check_space(db: &Database, settings: &Settings, batch: &[Delivery]) -> Result<(), StoreError> {
    let bodies: u64 = batch
        .iter()
        .flat_map(|d| &d.items)
        .map(|item| item.message.size())
        .sum();
    let needed = space::needed(bodies, settings.min_free_space);
    let Some(free) = space::device_short(&settings.data_dir, needed) else {
        return Ok(());
    };
    let txn = db.begin_write()?;
    let reusable = space::reusable(&txn, &settings.data_dir)?;
    txn.abort()?;
    if free.saturating_add(reusable) < needed {
        tracing::warn!(
            free,
            reusable,
            needed,
            "no room for a delivery on the data device"
        );
        return Err(StoreError::Full);
    }
    Ok(())
}

fn commit_batch(db: &Database, batch: &[Delivery]) -> Result<Vec<Option<Filed>>, StoreError> {
    let txn = db.begin_write()?;
    let mut filed = Vec::with_capacity(batch.len());
    for delivery in batch {
        filed.push(write_delivery(&txn, delivery)?);
    }
    txn.commit()?;
    Ok(filed)
}

fn write_delivery(
    txn: &WriteTransaction,
    delivery: &Delivery,
) -> Result<Option<Filed>, StoreError> {
    let size: u64 = delivery.items.iter().map(|item| item.message.size()).sum();
    if delivery.quotas == Quotas::Apply {
        super::quota::check(txn, delivery.accounts.iter().map(String::as_str), size)?;
    }
    let mut meta = txn.open_table(META)?;
    let mut mailboxes = txn.open_table(MAILBOXES)?;
    let mut messages = Messages::open(txn)?;
    let mut blobs = txn.open_table(BLOBS)?;

    let mut targets = Vec::with_capacity(delivery.accounts.len());
    for account in &delivery.accounts {
        // An account deleted between RCPT and the end of DATA simply receives nothing.
        if let Some(row) = mailboxes.get((account.as_str(), delivery.mailbox.as_str()))? {
            targets.push((account.as_str(), row.value()));
        }
    }
    if targets.is_empty() {
        return Ok(None);
    }

    let references = u32::try_from(targets.len()).unwrap_or(u32::MAX);
    let mut first: Filed = (targets[0].1.1, Vec::with_capacity(delivery.items.len()));
    for item in &delivery.items {
        let blob = next_id(&mut meta, "next_blob_id")?;
        let size = write_chunks(txn, blob, &item.message)?;
        blobs.insert(blob, (size, references))?;
        count_mail(&mut meta, size, true)?;
        for (index, (_, row)) in targets.iter_mut().enumerate() {
            let (mailbox_id, uidvalidity, uidnext, modseq) = *row;
            let modseq = next_modseq(modseq);
            messages.insert(
                mailbox_id,
                uidnext,
                (blob, item.flags.bits, item.internal_date, size, modseq),
                item.flags.more(),
            )?;
            *row = (mailbox_id, uidvalidity, uidnext + 1, modseq);
            if index == 0 {
                first.1.push(uidnext);
            }
        }
    }
    for (account, row) in targets {
        mailboxes.insert((account, delivery.mailbox.as_str()), row)?;
    }
    Ok(Some(first))
}

/// Copies the spool file into `BLOB_CHUNKS`, cut as `pieces::paged` says, one piece in memory
/// at a time, and the tail with the message's structure (computed from the same pieces) into
/// `BLOB_ENDS`. The outbound queue stores its bodies the same way.
pub(super) fn write_chunks(
    txn: &WriteTransaction,
    blob: u64,
    message: &SpoolFile,
) -> Result<u64, StoreError> {
    let mut chunks = txn.open_table(BLOB_CHUNKS)?;
    let mut file = message.reader()?;
    let length = message.size();
    let mut buffer = vec![0u8; PIECE_MAX];
    let mut size = 0u64;
    let mut scanner = Scanner::new();
    let mut tail_length = 0;
    for (index, piece) in (0u32..).zip(pieces::paged(length)) {
        let filled = read_full(&mut file, &mut buffer[..piece])?;
        if filled < piece {
            return Err(StoreError::io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        scanner.feed(&buffer[..piece]);
        if pieces::is_tail(piece) {
            // The last piece: it waits in the buffer for the structure, which needs every
            // octet.
            tail_length = piece;
        } else {
            chunks.insert((blob, index), &buffer[..piece])?;
        }
        size += piece as u64;
    }
    let end = ends::encode(&scanner.finish(), &buffer[..tail_length])?;
    txn.open_table(BLOB_ENDS)?.insert(blob, end.as_slice())?;
    Ok(size)
}

fn read_full(file: &mut impl Read, buffer: &mut [u8]) -> Result<usize, StoreError> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(StoreError::io(e)),
        }
    }
    Ok(filled)
}
