//! The store: the only owner of durable state. One redb file, `<data_dir>/letterbox.redb`.
//!
//! - Accounts, aliases, mailboxes, messages, bodies and the outbound queue live in typed tables
//!   (`schema`).
//! - Bodies are stored once per delivery, in chunks, and referenced by every mailbox that
//!   holds them (`BLOBS` keeps the reference count).
//! - Every change to a message row goes through `index`, which keeps the MODSEQ index and the
//!   tombstones of expunged UIDs beside it (`changes` reads them).
//! - Deliveries go through one writer thread that batches whatever is waiting into one durable
//!   commit (group commit, `writer`). A delivery is acknowledged only after that commit.
//! - Everything else runs redb on tokio's blocking pool; redb itself serializes writers.

mod accounts;
mod batch;
mod changes;
mod ends;
mod flag_set;
mod folders;
mod greylist;
mod handle;
mod index;
mod keywords;
mod mailbox;
mod messages;
mod migrate;
mod pieces;
mod queue;
mod quota;
mod read_view;
mod recovery;
pub mod schema;
mod snapshot;
mod space;
mod spam;
mod spool;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use tokio::sync::{mpsc, oneshot, watch};

pub use accounts::{AccountSummary, Recipient};
pub use batch::Detail;
pub use changes::MailboxChanges;
pub use flag_set::Flags;
pub use folders::{DEFAULT_MAILBOXES, MailboxEntry, MailboxStatus};
pub use greylist::{GreylistPolicy, Greylisted};
pub use keywords::Keywords;
pub use mailbox::{BodyReader, MailboxSnapshot, MessageInfo};
pub use messages::{FlagChange, FlagOp, MailboxState, StoreOutcome};
pub use queue::{QueuedMessage, QueuedRecipient, RecipientUpdate, queue_flags};
pub use quota::QuotaUse;
pub use read_view::{ReadView, ViewBodyReader};
pub use snapshot::{Snapshot, SnapshotBody, SnapshotMailbox};
pub use spam::{LearnOutcome, Lesson, LessonSource, SpamCounts};
pub use spool::{SpoolFile, SpoolWriter};
pub use writer::AppendItem;
use writer::Quotas;

use crate::limits::Limits;
use crate::status::Status;
use schema::*;

pub const INBOX: &str = "INBOX";
/// The `\Junk` special-use mailbox (RFC 6154) every account gets (`DEFAULT_MAILBOXES`).
pub const JUNK: &str = "Junk";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage is full")]
    Full,
    #[error("storage I/O error: {0}")]
    Io(std::io::Error),
    #[error("database error: {0}")]
    Db(redb::Error),
    #[error(
        "the store was written by a newer Letterbox (schema {found}, this build knows {known}); upgrade Letterbox"
    )]
    SchemaTooNew { found: u64, known: u64 },
    #[error("the store has no schema version; it was not written by Letterbox")]
    SchemaMissing,
    #[error(
        "the store is in use by another process (is `letterbox run` running without its control socket?)"
    )]
    Locked,
    #[error("{0} already exists")]
    Exists(String),
    #[error("no such {kind}: {name}")]
    NotFound { kind: &'static str, name: String },
    #[error("{0}")]
    Invalid(String),
    #[error("the store is shutting down")]
    Closed,
    #[error("the store had an I/O error and is being reopened")]
    NeedsReopen,
    /// Filing the message would pass an account's quota; `larger_than_quota`: the message
    /// alone is larger than the whole quota, so waiting will not help.
    #[error("{account} is over its quota")]
    OverQuota {
        account: String,
        larger_than_quota: bool,
    },
}

impl StoreError {
    pub fn io(error: std::io::Error) -> Self {
        if error.raw_os_error() == Some(libc::ENOSPC) {
            StoreError::Full
        } else {
            StoreError::Io(error)
        }
    }

    /// Worth retrying later (SMTP 4xx) rather than a permanent failure.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            StoreError::Full
                | StoreError::Io(_)
                | StoreError::Db(_)
                | StoreError::Closed
                | StoreError::NeedsReopen
                | StoreError::OverQuota {
                    larger_than_quota: false,
                    ..
                }
        )
    }
}

impl From<redb::Error> for StoreError {
    fn from(error: redb::Error) -> Self {
        match error {
            redb::Error::Io(io) => StoreError::io(io),
            redb::Error::DatabaseAlreadyOpen => StoreError::Locked,
            redb::Error::PreviousIo => StoreError::NeedsReopen,
            other => StoreError::Db(other),
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(error: $t) -> Self {
                StoreError::from(redb::Error::from(error))
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// A cheap handle; clone it into every session.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<handle::DbHandle>,
    data_dir: PathBuf,
    spool_slots: Arc<spool::SpoolSlots>,
    /// `None` only while dropping.
    deliveries: Option<mpsc::Sender<writer::Delivery>>,
    writer: Option<std::thread::JoinHandle<()>>,
    commits: Arc<std::sync::atomic::AtomicU64>,
    status: watch::Sender<Status>,
    /// Wakes the outbound worker when the queue changes.
    queue_wake: tokio::sync::Notify,
    /// Counts commits that changed any mailbox; IMAP sessions (IDLE, NOOP) watch it.
    changes: watch::Sender<u64>,
}

impl Drop for Inner {
    /// Closes the delivery channel and waits for the writer to finish its last commit, so the
    /// database file is released when the last handle goes.
    fn drop(&mut self) {
        self.deliveries = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Totals for `status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub messages: u64,
    pub queue_depth: u64,
    pub oldest_queued: Option<i64>,
    /// Octets of the bodies stored (a body filed in several mailboxes counts once).
    pub mail_bytes: u64,
    /// Octets of disk the store's file takes.
    pub store_bytes: u64,
}

/// The store's file in the data directory.
const STORE_FILE: &str = "letterbox.redb";

/// The data directory holds password hashes and everyone's mail: only the daemon's user may
/// enter it, whatever the umask was when it was made (issue #16 defect 6).
fn private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(StoreError::io)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(StoreError::io)
}

/// The store file is created 0600 before redb opens it (redb initialises an empty file), and
/// one left more open by an older version is narrowed.
fn private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(StoreError::io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(StoreError::io)
}

impl Store {
    /// Opens (or creates) `<data_dir>/letterbox.redb`, checks the schema and starts the writer.
    /// `status` receives message and queue counts after every change.
    pub fn open(
        data_dir: &Path,
        limits: &Limits,
        status: watch::Sender<Status>,
    ) -> Result<Store, StoreError> {
        private_dir(data_dir)?;
        let path = data_dir.join(STORE_FILE);
        private_file(&path)?;
        let db = Arc::new(handle::DbHandle::open(
            path,
            usize::try_from(limits.store_cache_size.0).unwrap_or(usize::MAX),
        )?);
        let spool_slots = spool::SpoolSlots::open(data_dir.join("spool"))?;
        migrate::migrate(&*db.get()?)?;
        let commits = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (changes, _) = watch::channel(0u64);
        let (deliveries, writer) = writer::start(
            db.clone(),
            writer::Settings {
                backlog: limits.delivery_backlog,
                batch_max: limits.group_commit_max,
                wait: std::time::Duration::from_millis(limits.group_commit_wait_ms),
                spool: spool_slots.clone(),
                data_dir: data_dir.to_path_buf(),
                min_free_space: limits.min_free_space.0,
                commits: commits.clone(),
                changes: changes.clone(),
                status: status.clone(),
            },
        )?;
        let store = Store {
            inner: Arc::new(Inner {
                db,
                data_dir: data_dir.to_path_buf(),
                spool_slots,
                deliveries: Some(deliveries),
                writer: Some(writer),
                commits,
                status,
                queue_wake: tokio::sync::Notify::new(),
                changes,
            }),
        };
        store.publish_totals()?;
        Ok(store)
    }

    /// Runs redb work on the blocking pool.
    async fn blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let handle = self.inner.db.clone();
        tokio::task::spawn_blocking(move || {
            let db = handle.get()?;
            let result = work(&db);
            drop(db);
            if let Err(error) = &result {
                handle.after_error(error);
            }
            result
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// Starts a spool file for a message being received (a slot of the spool directory,
    /// created on disk by its first write when it is new).
    pub async fn spool(&self) -> Result<SpoolWriter, StoreError> {
        Ok(SpoolWriter::create(&self.inner.spool_slots))
    }

    /// Stores a spooled message once and files it in the INBOX of every account in
    /// `accounts`. Returns after the commit that holds it is durable.
    pub async fn deliver(
        &self,
        message: SpoolFile,
        accounts: Vec<String>,
        internal_date: i64,
    ) -> Result<(), StoreError> {
        self.deliver_to(message, accounts, INBOX, internal_date)
            .await
    }

    /// Like `deliver`, into `mailbox` of each account (an account without it receives
    /// nothing: give it the mailbox first).
    pub async fn deliver_to(
        &self,
        message: SpoolFile,
        accounts: Vec<String>,
        mailbox: &str,
        internal_date: i64,
    ) -> Result<(), StoreError> {
        self.deliver_one(message, accounts, mailbox, internal_date, Quotas::Apply)
            .await
    }

    /// Files a notice from the box itself (a bounce or delay notice for mail an account
    /// sent) in the INBOX of each account, past their quotas: the notice is small (its
    /// original header section is cut at 64 KiB), and refusing it would lose the only word
    /// the sender gets that their message did not arrive (RFC 5321 §6.1).
    pub async fn deliver_notice(
        &self,
        message: SpoolFile,
        accounts: Vec<String>,
        internal_date: i64,
    ) -> Result<(), StoreError> {
        self.deliver_one(message, accounts, INBOX, internal_date, Quotas::Pass)
            .await
    }

    async fn deliver_one(
        &self,
        message: SpoolFile,
        accounts: Vec<String>,
        mailbox: &str,
        internal_date: i64,
        quotas: Quotas,
    ) -> Result<(), StoreError> {
        let item = AppendItem {
            message,
            flags: Flags::default(),
            internal_date,
        };
        self.write_messages(vec![item], accounts, mailbox.to_string(), quotas)
            .await
            .map(|_| ())
    }

    /// IMAP APPEND and MULTIAPPEND (RFC 3502): stores the messages in one mailbox of one
    /// account in one commit, so either all of them are there or none is. Returns
    /// (UIDVALIDITY, their UIDs in order) after the commit is durable.
    pub async fn append_all(
        &self,
        items: Vec<AppendItem>,
        account: &str,
        mailbox: &str,
    ) -> Result<(u32, Vec<u32>), StoreError> {
        let account = account.to_ascii_lowercase();
        let filed = self
            .write_messages(items, vec![account], mailbox.to_string(), Quotas::Apply)
            .await?;
        filed.ok_or_else(|| StoreError::NotFound {
            kind: "mailbox",
            name: mailbox.to_string(),
        })
    }

    async fn write_messages(
        &self,
        items: Vec<AppendItem>,
        accounts: Vec<String>,
        mailbox: String,
        quotas: Quotas,
    ) -> Result<Option<writer::Filed>, StoreError> {
        let (reply, done) = oneshot::channel();
        let deliveries = self.inner.deliveries.as_ref().ok_or(StoreError::Closed)?;
        deliveries
            .send(writer::Delivery {
                items,
                accounts,
                mailbox,
                quotas,
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        done.await.map_err(|_| StoreError::Closed)?
    }

    /// A receiver that changes after every commit that changed a mailbox.
    pub fn watch_changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    fn changed(&self) {
        self.inner.changes.send_modify(|c| *c = c.wrapping_add(1));
    }

    /// Durable delivery commits since the store was opened.
    pub fn delivery_commits(&self) -> u64 {
        self.inner
            .commits
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn totals(&self) -> Result<Totals, StoreError> {
        totals(&*self.inner.db.get()?, self.inner.db.path())
    }

    /// Called after a commit: the change is made, so failing to count it is logged, not
    /// returned (an error would tell the client its EXPUNGE or COPY failed, inviting a retry).
    async fn publish_totals_async(&self) {
        let store = self.clone();
        if let Err(error) = self.blocking(move |_| store.publish_totals()).await {
            tracing::warn!(%error, "cannot count the store's totals");
        }
    }

    fn publish_totals(&self) -> Result<(), StoreError> {
        publish_totals(
            &*self.inner.db.get()?,
            self.inner.db.path(),
            &self.inner.status,
        )
    }
}

/// Sends the store's totals to `status`.
fn publish_totals(
    db: &Database,
    path: &Path,
    status: &watch::Sender<Status>,
) -> Result<(), StoreError> {
    let totals = totals(db, path)?;
    status.send_modify(|status| {
        status.messages_stored = totals.messages;
        status.mail_bytes = totals.mail_bytes;
        status.store_bytes = totals.store_bytes;
        status.queue_depth = totals.queue_depth;
        status.queue_oldest = totals.oldest_queued;
    });
    Ok(())
}

fn totals(db: &Database, path: &Path) -> Result<Totals, StoreError> {
    use std::os::unix::fs::MetadataExt;
    let txn = db.begin_read()?;
    let messages = txn.open_table(MESSAGES)?.len()?;
    let mail_bytes = txn
        .open_table(META)?
        .get(MAIL_BYTES)?
        .map(|v| v.value())
        .unwrap_or(0);
    // Blocks in use, not the file's length: redb grows its file ahead of use, sparsely.
    let store_bytes = std::fs::metadata(path)
        .map(|m| m.blocks() * 512)
        .map_err(StoreError::io)?;
    let queue = txn.open_table(QUEUE)?;
    let queue_depth = queue.len()?;
    let mut oldest_queued: Option<i64> = None;
    for entry in queue.iter()? {
        let (_, value) = entry?;
        let queued = value.value().2;
        oldest_queued = Some(oldest_queued.map_or(queued, |o| o.min(queued)));
    }
    Ok(Totals {
        messages,
        queue_depth,
        oldest_queued,
        mail_bytes,
        store_bytes,
    })
}

/// `META` key: the first blob cut as `pieces::Layout::Paged`.
const FIRST_PAGED_BLOB: &str = "first_paged_blob";

/// `META` key: octets of all the bodies stored, each once, kept up to date as bodies are
/// stored and deleted (`letterbox status` shows it beside the store's size).
const MAIL_BYTES: &str = "mail_bytes";

/// Counts a body of `size` octets stored (`added`) or deleted in `MAIL_BYTES`.
fn count_mail(meta: &mut redb::Table<&str, u64>, size: u64, added: bool) -> Result<(), StoreError> {
    let total = meta.get(MAIL_BYTES)?.map(|v| v.value()).unwrap_or(0);
    let total = if added {
        total.saturating_add(size)
    } else {
        total.saturating_sub(size)
    };
    meta.insert(MAIL_BYTES, total)?;
    Ok(())
}

/// How blob `blob`'s body is cut into pieces.
fn layout_of(
    meta: &impl ReadableTable<&'static str, u64>,
    blob: u64,
) -> Result<pieces::Layout, StoreError> {
    let first_paged = meta.get(FIRST_PAGED_BLOB)?.map(|v| v.value()).unwrap_or(0);
    Ok(pieces::Layout::of(blob, first_paged))
}

/// The error for a mailbox that `account` does not have.
pub(crate) fn mailbox_not_found(account: &str, name: &str) -> StoreError {
    StoreError::NotFound {
        kind: "mailbox",
        name: format!("{account}/{name}"),
    }
}

/// The mod-sequence of a change to a mailbox whose highest is `highest`. A new mailbox stores
/// 0 and IMAP reports it as HIGHESTMODSEQ 1 (RFC 7162 has no 0), so its first change is 2: a
/// client that saw 1 must find that change with `CHANGEDSINCE 1` or `STATUS (HIGHESTMODSEQ)`.
pub(crate) fn next_modseq(highest: u64) -> u64 {
    highest.max(1) + 1
}

/// Takes the next value of a counter in `META`.
fn next_id(meta: &mut redb::Table<&str, u64>, counter: &str) -> Result<u64, StoreError> {
    let id = meta.get(counter)?.map(|v| v.value()).unwrap_or(1);
    meta.insert(counter, id + 1)?;
    Ok(id)
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod folder_tests;
#[cfg(test)]
mod index_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod upgrade_tests;
