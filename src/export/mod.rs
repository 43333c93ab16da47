//! Backups and moving out: `letterbox export` writes the store as a tar of Maildir++ trees
//! that Dovecot, mutt and mbsync read; `letterbox import` reads such a tar, a Maildir tree or
//! an mbox file back in.
//!
//! - `maildir`: the names (folders, flags and keywords in file names) — pure.
//! - `mbox`: splitting an mbox file into messages — pure.
//! - `write`: the tar, from one store snapshot, a body one stored chunk at a time.
//! - `read`: the import, through the store's APPEND path (spool file, then one commit per
//!   batch), so size limits, the free-space check and the IMAP index stay right.
//!
//! Both are blocking (tar and files are `std::io`): the daemon and the CLI run them on
//! tokio's blocking pool. While `letterbox run` holds the store, the CLI passes the file's path
//! over the control socket and the daemon reads or writes the file itself.

pub mod maildir;
pub mod mbox;
mod read;
mod write;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError};

pub use read::{ImportOptions, import};
pub use write::write_tar;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no such account: {0}")]
    NoAccount(String),
    #[error(
        "the body of {account}/{mailbox} UID {uid} is shorter than its record; the export stopped"
    )]
    Damaged {
        account: String,
        mailbox: String,
        uid: u32,
    },
    /// A file that cannot be read or written, or is in no format `import` knows.
    #[error("{0}")]
    File(String),
    #[error("the export or import stopped: {0}")]
    Stopped(String),
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportSummary {
    pub accounts: usize,
    pub folders: usize,
    pub messages: u64,
    pub bytes: u64,
    /// Keywords not written because a folder used more than Maildir's 26 letters.
    pub keywords_dropped: usize,
}

/// What an import stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSummary {
    pub messages: u64,
    pub bytes: u64,
    pub folders: usize,
    /// Messages over `max_append_size`, left out.
    pub too_large: u64,
}

/// Writes an export to the file `path`: first to `path.part`, renamed when complete, so a
/// failed export never leaves a file that looks whole.
pub async fn export_file(
    store: &Store,
    account: Option<String>,
    path: &Path,
) -> Result<ExportSummary, ExportError> {
    let store = store.clone();
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut partial = path.clone().into_os_string();
        partial.push(".part");
        let partial = std::path::PathBuf::from(partial);
        let result = std::fs::File::create(&partial)
            .map_err(|error| {
                ExportError::File(format!("cannot write {}: {error}", partial.display()))
            })
            .and_then(|file| {
                let mut out = std::io::BufWriter::with_capacity(crate::limits::BODY_CHUNK, file);
                let summary = write_tar(&store, account.as_deref(), &mut out)?;
                let file = out.into_inner().map_err(|e| e.into_error())?;
                file.sync_all()?;
                Ok(summary)
            })
            .and_then(|summary| {
                std::fs::rename(&partial, &path)?;
                Ok(summary)
            });
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        result
    })
    .await
    .map_err(|error| ExportError::Stopped(error.to_string()))?
}

/// Imports the tar, Maildir directory or mbox file at `path`.
pub async fn import_path(
    store: &Store,
    path: &Path,
    options: ImportOptions,
) -> Result<ImportSummary, ExportError> {
    let store = store.clone();
    let path = path.to_path_buf();
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || import(&store, &runtime, &path, &options))
        .await
        .map_err(|error| ExportError::Stopped(error.to_string()))?
}
