//! `import`: messages from a tar of Maildir trees, a Maildir directory or an mbox file, each
//! streamed into a spool file (bare LF line ends become CRLF, as IMAP wants) and stored
//! through `Store::append_all` in batches: the same path as IMAP APPEND, so the size limit,
//! the free-space check and the IMAP index apply as they do to any client.
//!
//! Runs on a blocking thread; the store's async calls are driven with `Handle::block_on`.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use tokio::runtime::Handle;

use super::maildir::{self, FolderKeywords};
use super::mbox::{MboxParser, Piece};
use super::{ExportError, ImportSummary};
use crate::limits::{BODY_CHUNK, IMPORT_BATCH, IMPORT_LINE, IMPORT_SMALL_FILE};
use crate::store::{AppendItem, Flags, INBOX, Keywords, SpoolFile, SpoolWriter, Store, StoreError};

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Every message goes to this account; without it, a tar's or directory's layout names
    /// the account (`<account>/cur/...`, as `export` writes it).
    pub account: Option<String>,
    /// Messages larger than this are left out (and counted).
    pub max_message_size: u64,
}

/// Imports `path`. Blocking: see the module comment.
pub fn import(
    store: &Store,
    runtime: &Handle,
    path: &Path,
    options: &ImportOptions,
) -> Result<ImportSummary, ExportError> {
    let mut importer = Importer {
        store,
        runtime,
        options,
        accounts: runtime
            .block_on(store.accounts())?
            .into_iter()
            .map(|a| a.address)
            .collect(),
        folders: HashSet::new(),
        keywords: HashMap::new(),
        batch: Vec::new(),
        batch_target: None,
        summary: ImportSummary::default(),
    };
    if path.is_dir() {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        importer.directory(path, &name.into_iter().collect::<Vec<_>>())?;
    } else {
        let mut head = [0u8; 512];
        let filled = std::fs::File::open(path)
            .and_then(|mut file| read_up_to(&mut file, &mut head))
            .map_err(|error| {
                ExportError::File(format!("cannot read {}: {error}", path.display()))
            })?;
        if filled == 512 && &head[257..262] == b"ustar" {
            importer.tar(path)?;
        } else if head[..filled].starts_with(b"From ") {
            importer.mbox(path)?;
        } else {
            return Err(ExportError::File(format!(
                "{} is neither a tar, a Maildir directory nor an mbox file",
                path.display()
            )));
        }
    }
    importer.flush()?;
    importer.summary.folders = importer.folders.len();
    Ok(importer.summary)
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Target {
    account: String,
    folder: String,
}

struct Importer<'a> {
    store: &'a Store,
    runtime: &'a Handle,
    options: &'a ImportOptions,
    accounts: HashSet<String>,
    /// Folders known to exist.
    folders: HashSet<Target>,
    /// Each account's keywords as last defined.
    keywords: HashMap<String, Keywords>,
    /// Spooled messages waiting for one commit, all for `batch_target`.
    batch: Vec<AppendItem>,
    batch_target: Option<Target>,
    summary: ImportSummary,
}

/// A message file's place in a Maildir tree: the directories above `cur`/`new`.
struct Place {
    /// The path of the folder's directory (the key of its `dovecot-keywords`).
    folder_dir: String,
    target: Target,
}

impl Importer<'_> {
    /// The account and folder of a Maildir directory given as path components (`root` is the
    /// imported directory's own name, used when it is the account's tree itself).
    fn place(&self, components: &[String]) -> Result<Place, ExportError> {
        let (folder, root) = match components.split_last() {
            Some((last, rest)) if maildir::folder_name(last).is_some() => {
                (maildir::folder_name(last).unwrap_or_default(), rest)
            }
            _ => (INBOX.to_string(), components),
        };
        let account = match &self.options.account {
            Some(account) => account.to_ascii_lowercase(),
            None => root
                .iter()
                .rev()
                .find(|c| c.contains('@'))
                .map(|c| c.to_ascii_lowercase())
                .ok_or_else(|| {
                    ExportError::File(
                        "the Maildir tree does not name an account: say which with --account"
                            .into(),
                    )
                })?,
        };
        if !self.accounts.contains(&account) {
            return Err(ExportError::NoAccount(format!(
                "{account} (add it with `letterbox user add` first)"
            )));
        }
        Ok(Place {
            folder_dir: components.join("/"),
            target: Target { account, folder },
        })
    }

    fn tar(&mut self, path: &Path) -> Result<(), ExportError> {
        // First pass: the keyword files, so that a message's letters can be read whatever the
        // order of the entries.
        let mut keyword_files: HashMap<String, FolderKeywords> = HashMap::new();
        let mut archive = tar::Archive::new(BufReader::new(std::fs::File::open(path)?));
        for entry in archive.entries()? {
            let mut entry = entry?;
            let components = components(&entry.path()?);
            if components.last().map(String::as_str) == Some("dovecot-keywords")
                && entry.size() <= IMPORT_SMALL_FILE
            {
                let mut text = String::new();
                entry.read_to_string(&mut text)?;
                let dir = components[..components.len() - 1].join("/");
                keyword_files.insert(dir, FolderKeywords::parse(&text));
            }
        }
        let mut archive = tar::Archive::new(BufReader::new(std::fs::File::open(path)?));
        for entry in archive.entries()? {
            let entry = entry?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let components = components(&entry.path()?);
            let Some((name, dirs)) = message_file(&components) else {
                continue;
            };
            let place = self.place(dirs)?;
            let folder_keywords = keyword_files
                .get(&place.folder_dir)
                .cloned()
                .unwrap_or_default();
            let info = maildir::parse_name(&name, &folder_keywords);
            let mtime = entry
                .header()
                .mtime()
                .ok()
                .and_then(|t| i64::try_from(t).ok());
            let date = pick_date(mtime, info.time);
            let size = entry.size();
            self.message(place.target, entry, size, date, info.system, &info.keywords)?;
        }
        Ok(())
    }

    /// A Maildir directory: the tree of one account, or a directory of such trees.
    fn directory(&mut self, top: &Path, top_name: &[String]) -> Result<(), ExportError> {
        let mut pending: Vec<(PathBuf, Vec<String>)> = vec![(top.to_path_buf(), top_name.to_vec())];
        while let Some((dir, components)) = pending.pop() {
            let mut children = Vec::new();
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    children.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
            children.sort();
            if children.iter().any(|c| c == "cur") {
                self.maildir(&dir, &components)?;
            }
            for child in children {
                if !matches!(child.as_str(), "cur" | "new" | "tmp") {
                    let mut below = components.clone();
                    below.push(child.clone());
                    pending.push((dir.join(child), below));
                }
            }
        }
        Ok(())
    }

    fn maildir(&mut self, dir: &Path, components: &[String]) -> Result<(), ExportError> {
        let place = self.place(components)?;
        let keywords_file = dir.join("dovecot-keywords");
        let folder_keywords = match std::fs::metadata(&keywords_file) {
            Ok(meta) if meta.len() <= IMPORT_SMALL_FILE => {
                FolderKeywords::parse(&std::fs::read_to_string(&keywords_file)?)
            }
            _ => FolderKeywords::default(),
        };
        for sub in ["cur", "new"] {
            let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
                continue;
            };
            let mut names = Vec::new();
            for entry in entries {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    names.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
            // Oldest first (the time the name starts with), so UIDs follow arrival.
            names.sort_by_key(|n| (maildir::parse_name(n, &folder_keywords).time, n.clone()));
            for name in names {
                let file_path = dir.join(sub).join(&name);
                let file = std::fs::File::open(&file_path)?;
                let meta = file.metadata()?;
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .and_then(|d| i64::try_from(d.as_secs()).ok());
                let info = maildir::parse_name(&name, &folder_keywords);
                let date = pick_date(mtime, info.time);
                self.message(
                    place.target.clone(),
                    file,
                    meta.len(),
                    date,
                    info.system,
                    &info.keywords,
                )?;
            }
        }
        Ok(())
    }

    fn mbox(&mut self, path: &Path) -> Result<(), ExportError> {
        let place = self.place(&[])?;
        let mut reader = BufReader::with_capacity(BODY_CHUNK, std::fs::File::open(path)?);
        let mut parser = MboxParser::default();
        let mut current: Option<(SpoolSink, i64)> = None;
        let mut line = Vec::with_capacity(IMPORT_LINE);
        let mut continued = false;
        loop {
            line.clear();
            let complete = read_line_capped(&mut reader, &mut line, IMPORT_LINE)?;
            if line.is_empty() {
                break;
            }
            let mut error = None;
            let mut started = None;
            let mut ended = None;
            parser.line(&line, continued, &mut |piece| match piece {
                Piece::Start(date) => started = Some(date),
                Piece::End(system, keywords) => ended = Some((system, keywords)),
                Piece::Bytes(bytes) => {
                    if let Some((sink, _)) = current.as_mut()
                        && let Err(e) = sink.write(bytes)
                    {
                        error = Some(e);
                    }
                }
            });
            if let Some(error) = error {
                return Err(error);
            }
            if let Some(flags) = ended
                && let Some((sink, date)) = current.take()
            {
                self.store_spooled(&place.target, sink, date, &flags)?;
            }
            if let Some(date) = started {
                current = Some((
                    SpoolSink::new(self.store, self.runtime, self.options.max_message_size)?,
                    date.unwrap_or_else(crate::store::now_unix),
                ));
            }
            continued = !complete;
        }
        if let Some(flags) = parser.finish()
            && let Some((sink, date)) = current.take()
        {
            self.store_spooled(&place.target, sink, date, &flags)?;
        }
        Ok(())
    }

    fn message(
        &mut self,
        target: Target,
        mut body: impl Read,
        size: u64,
        date: i64,
        system: u32,
        keywords: &[String],
    ) -> Result<(), ExportError> {
        if size > self.options.max_message_size {
            self.summary.too_large += 1;
            return Ok(());
        }
        let mut sink = SpoolSink::new(self.store, self.runtime, self.options.max_message_size)?;
        let mut buffer = vec![0u8; BODY_CHUNK];
        loop {
            let n = body.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            sink.write(&buffer[..n])?;
        }
        self.store_spooled(&target, sink, date, &(system, keywords.to_vec()))
    }

    fn store_spooled(
        &mut self,
        target: &Target,
        sink: SpoolSink,
        date: i64,
        (system, keywords): &(u32, Vec<String>),
    ) -> Result<(), ExportError> {
        let Some(spool) = sink.finish()? else {
            self.summary.too_large += 1;
            return Ok(());
        };
        if self.batch_target.as_ref() != Some(target) || self.batch.len() >= IMPORT_BATCH {
            self.flush()?;
        }
        self.ensure_folder(target)?;
        let mut message_flags = Flags::from(*system);
        for bit in self.keyword_bits(&target.account, keywords)? {
            message_flags.insert(bit);
        }
        self.summary.bytes += spool.size();
        self.batch.push(AppendItem {
            message: spool,
            flags: message_flags,
            internal_date: date,
        });
        self.batch_target = Some(target.clone());
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ExportError> {
        let (Some(target), false) = (self.batch_target.take(), self.batch.is_empty()) else {
            return Ok(());
        };
        let items = std::mem::take(&mut self.batch);
        let count = items.len() as u64;
        self.runtime.block_on(
            self.store
                .append_all(items, &target.account, &target.folder),
        )?;
        self.summary.messages += count;
        Ok(())
    }

    fn ensure_folder(&mut self, target: &Target) -> Result<(), ExportError> {
        if self.folders.contains(target) {
            return Ok(());
        }
        match self
            .runtime
            .block_on(self.store.create_mailbox(&target.account, &target.folder))
        {
            Ok(()) | Err(StoreError::Exists(_)) => {}
            Err(error) => return Err(error.into()),
        }
        self.folders.insert(target.clone());
        Ok(())
    }

    /// The flag bits of `names` in `account`, defining the keywords it does not have yet.
    fn keyword_bits(&mut self, account: &str, names: &[String]) -> Result<Vec<u8>, ExportError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let known = self.keywords.get(account);
        if known.is_none_or(|k| names.iter().any(|n| k.bit(n).is_none())) {
            let defined = self
                .runtime
                .block_on(self.store.define_keywords(account, names.to_vec()))?;
            self.keywords.insert(account.to_string(), defined);
        }
        let known = self.keywords.get(account);
        // A keyword beyond the account's limit has no bit and is left off.
        Ok(names
            .iter()
            .filter_map(|n| known.and_then(|k| k.bit(n)))
            .collect())
    }
}

/// The internal date: the file's mtime (what Dovecot uses), else the time its name starts
/// with, else now.
fn pick_date(mtime: Option<i64>, name_time: Option<i64>) -> i64 {
    mtime
        .filter(|t| *t > 0)
        .or(name_time)
        .unwrap_or_else(crate::store::now_unix)
}

fn components(path: &Path) -> Vec<String> {
    path.components()
        .filter_map(|c| match c {
            std::path::Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

/// A file in a `cur` or `new` directory: its name and the directories above that one.
fn message_file(components: &[String]) -> Option<(String, &[String])> {
    let (name, dirs) = components.split_last()?;
    let (sub, above) = dirs.split_last()?;
    matches!(sub.as_str(), "cur" | "new").then(|| (name.clone(), above))
}

fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Reads up to and including `\n`, or `cap` octets of a longer line. True if the line ended.
fn read_line_capped(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<bool> {
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(true);
        }
        let room = cap - line.len();
        let take = available.len().min(room);
        if let Some(end) = memchr::memchr(b'\n', &available[..take]) {
            line.extend_from_slice(&available[..=end]);
            reader.consume(end + 1);
            return Ok(true);
        }
        line.extend_from_slice(&available[..take]);
        reader.consume(take);
        if line.len() >= cap {
            return Ok(false);
        }
    }
}

/// A message on its way into a spool file: bare LF line ends become CRLF, and a message that
/// grows past the limit is dropped (its spool file goes with it).
struct SpoolSink<'a> {
    runtime: &'a Handle,
    writer: SpoolWriter,
    buffer: Vec<u8>,
    last_was_cr: bool,
    limit: u64,
    written: u64,
    too_large: bool,
}

impl<'a> SpoolSink<'a> {
    fn new(store: &Store, runtime: &'a Handle, limit: u64) -> Result<Self, ExportError> {
        Ok(SpoolSink {
            runtime,
            writer: runtime.block_on(store.spool())?,
            buffer: Vec::with_capacity(BODY_CHUNK + BODY_CHUNK / 8),
            last_was_cr: false,
            limit,
            written: 0,
            too_large: false,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        if self.too_large {
            return Ok(());
        }
        for &byte in bytes {
            if byte == b'\n' && !self.last_was_cr {
                self.buffer.push(b'\r');
            }
            self.buffer.push(byte);
            self.last_was_cr = byte == b'\r';
        }
        if self.buffer.len() >= BODY_CHUNK {
            self.drain()?;
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<(), ExportError> {
        self.written += self.buffer.len() as u64;
        if self.written > self.limit {
            self.too_large = true;
            self.buffer.clear();
            return Ok(());
        }
        self.runtime.block_on(self.writer.write(&self.buffer))?;
        self.buffer.clear();
        Ok(())
    }

    /// The spool file, or `None` if the message was too large.
    fn finish(mut self) -> Result<Option<SpoolFile>, ExportError> {
        self.drain()?;
        let spool = self.runtime.block_on(self.writer.finish())?;
        Ok((!self.too_large).then_some(spool))
    }
}
