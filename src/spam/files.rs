//! Messages from files, for `letterbox spam train` (a cold start from folders the family
//! already sorted) and `letterbox spam classify` (the benchmark, and trying the filter):
//! a Maildir folder (its `cur` and `new`), a directory of message files, an mbox file, or
//! one message file. Of each message only the first `SPAM_READ_MAX` octets are read, so
//! a folder of any size is read in bounded memory.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::{Classifier, Score, SpamError, Tokens, read_prefix};
use crate::limits::{SPAM_LEARN_BATCH, SPAM_READ_MAX};
use crate::store::{Lesson, LessonSource, Store};

/// What `train` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TrainSummary {
    pub spam: u64,
    pub ham: u64,
    /// Of those, messages learned before as the same class (left as they were).
    pub unchanged: u64,
    /// Tokens the filter knows now.
    pub tokens: u64,
}

/// One message's score, named by its file (an mbox message by `file#n`, from 1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassifiedFile {
    pub path: String,
    pub probability: f64,
    pub reasons: Vec<String>,
}

/// Learns every message under `spam` as spam and under `ham` as ham, in batches of
/// `SPAM_LEARN_BATCH` per commit. A file learned before is learned once (by its content),
/// so training from the same folders again changes nothing.
pub async fn train(
    store: &Store,
    spam: &[PathBuf],
    ham: &[PathBuf],
) -> Result<TrainSummary, SpamError> {
    let mut summary = TrainSummary::default();
    let mut batch = Vec::with_capacity(SPAM_LEARN_BATCH);
    for (paths, is_spam) in [(spam, true), (ham, false)] {
        let mut messages = MessageFiles::new(paths);
        while let Some((_, message)) = messages.next().await? {
            batch.push(Lesson {
                source: LessonSource::File(super::tokens::hash(&message)),
                spam: is_spam,
                tokens: Tokens::of_message(&message).hashes(),
            });
            if is_spam {
                summary.spam += 1;
            } else {
                summary.ham += 1;
            }
            if batch.len() >= SPAM_LEARN_BATCH {
                let outcome = store.spam_learn(std::mem::take(&mut batch)).await?;
                summary.unchanged += u64::from(outcome.unchanged);
            }
        }
    }
    if !batch.is_empty() {
        let outcome = store.spam_learn(batch).await?;
        summary.unchanged += u64::from(outcome.unchanged);
    }
    summary.tokens = store.spam_token_count().await?;
    Ok(summary)
}

/// Scores every message under `paths`, handing each result to `sink` as it comes (a long
/// list is never held).
pub async fn classify_files(
    classifier: &Classifier,
    paths: &[PathBuf],
    sink: &mut (dyn FnMut(ClassifiedFile) + Send),
) -> Result<(), SpamError> {
    let mut messages = MessageFiles::new(paths);
    while let Some((path, message)) = messages.next().await? {
        let Score {
            probability,
            reasons,
        } = classifier.score_message(&message).await?;
        sink(ClassifiedFile {
            path,
            probability,
            reasons,
        });
    }
    Ok(())
}

/// The messages under some paths, one at a time: (name, first octets), files of a directory
/// in name order.
struct MessageFiles {
    paths: VecDeque<PathBuf>,
    /// The files of the directory being read.
    files: VecDeque<PathBuf>,
    mbox: Option<Mbox>,
}

impl MessageFiles {
    fn new(paths: &[PathBuf]) -> MessageFiles {
        MessageFiles {
            paths: paths.iter().cloned().collect(),
            files: VecDeque::new(),
            mbox: None,
        }
    }

    async fn next(&mut self) -> Result<Option<(String, Vec<u8>)>, SpamError> {
        loop {
            if let Some(mbox) = &mut self.mbox {
                match mbox.next().await? {
                    Some(message) => return Ok(Some(message)),
                    None => self.mbox = None,
                }
            }
            if let Some(file) = self.files.pop_front() {
                let message = read_message_file(&file).await?;
                return Ok(Some((file.display().to_string(), message)));
            }
            let Some(path) = self.paths.pop_front() else {
                return Ok(None);
            };
            let read_error = |error| SpamError::Read {
                path: path.display().to_string(),
                error,
            };
            if tokio::fs::metadata(&path)
                .await
                .map_err(read_error)?
                .is_dir()
            {
                self.files = directory_files(&path).await?.into();
                continue;
            }
            let mut file = BufReader::new(tokio::fs::File::open(&path).await.map_err(read_error)?);
            if file
                .fill_buf()
                .await
                .map_err(read_error)?
                .starts_with(b"From ")
            {
                self.mbox = Some(Mbox {
                    name: path.display().to_string(),
                    file,
                    number: 0,
                    started: false,
                    ended: false,
                    line: Vec::new(),
                    message: Vec::new(),
                });
                continue;
            }
            let message = read_prefix(file).await.map_err(read_error)?;
            return Ok(Some((path.display().to_string(), message)));
        }
    }
}

/// The message files of a Maildir folder (its `cur` and `new`) or of a plain directory.
async fn directory_files(path: &Path) -> Result<Vec<PathBuf>, SpamError> {
    let read_error = |error| SpamError::Read {
        path: path.display().to_string(),
        error,
    };
    let maildir = ["cur", "new"].map(|sub| path.join(sub));
    let folders: Vec<PathBuf> = if maildir.iter().any(|d| d.is_dir()) {
        maildir.into_iter().filter(|d| d.is_dir()).collect()
    } else {
        vec![path.to_path_buf()]
    };
    let mut files = Vec::new();
    for folder in folders {
        let mut names = Vec::new();
        let mut entries = tokio::fs::read_dir(&folder).await.map_err(read_error)?;
        while let Some(entry) = entries.next_entry().await.map_err(read_error)? {
            if entry.file_type().await.map_err(read_error)?.is_file() {
                names.push(entry.path());
            }
        }
        names.sort();
        files.extend(names);
    }
    Ok(files)
}

/// An mbox file being read: messages begin at `From ` lines (RFC 4155); of each, the first
/// `SPAM_READ_MAX` octets are kept and the rest of its lines skipped.
struct Mbox {
    name: String,
    file: BufReader<tokio::fs::File>,
    /// Messages handed out so far.
    number: u32,
    /// The first `From ` line was read.
    started: bool,
    ended: bool,
    line: Vec<u8>,
    message: Vec<u8>,
}

impl Mbox {
    async fn next(&mut self) -> Result<Option<(String, Vec<u8>)>, SpamError> {
        while !self.ended {
            self.line.clear();
            let more = bounded_line(&mut self.file, &mut self.line)
                .await
                .map_err(|error| SpamError::Read {
                    path: self.name.clone(),
                    error,
                })?;
            self.ended = !more;
            let boundary = !more || self.line.starts_with(b"From ");
            if boundary {
                let had_one = std::mem::replace(&mut self.started, true);
                if had_one {
                    self.number += 1;
                    let message = std::mem::take(&mut self.message);
                    return Ok(Some((format!("{}#{}", self.name, self.number), message)));
                }
            } else if self.message.len() < SPAM_READ_MAX {
                let room = SPAM_READ_MAX - self.message.len();
                self.message
                    .extend_from_slice(&self.line[..self.line.len().min(room)]);
            }
        }
        Ok(None)
    }
}

/// One message file's first octets, without the `From ` line an mbox-style file (as the
/// SpamAssassin corpus has them) starts with.
async fn read_message_file(path: &Path) -> Result<Vec<u8>, SpamError> {
    let read_error = |error| SpamError::Read {
        path: path.display().to_string(),
        error,
    };
    let file = tokio::fs::File::open(path).await.map_err(read_error)?;
    let mut message = read_prefix(file).await.map_err(read_error)?;
    if message.starts_with(b"From ")
        && let Some(end) = message.iter().position(|&b| b == b'\n')
    {
        message.drain(..=end);
    }
    Ok(message)
}

/// Reads one line into `line` (with its newline), keeping at most `SPAM_READ_MAX` octets of
/// it and skipping the rest. Returns whether a line was read (false at the end of input).
async fn bounded_line(
    reader: &mut (impl AsyncRead + AsyncBufReadExt + Unpin),
    line: &mut Vec<u8>,
) -> std::io::Result<bool> {
    let mut any = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(any);
        }
        any = true;
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        let room = SPAM_READ_MAX.saturating_sub(line.len());
        line.extend_from_slice(&available[..take.min(room)]);
        reader.consume(take);
        if done {
            return Ok(true);
        }
    }
}
