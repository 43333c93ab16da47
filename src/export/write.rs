//! `export`: the store as a tar of Maildir++ trees, one per account (`<account>/cur/...`,
//! `<account>/.Sent/cur/...`), written from one snapshot while the daemon goes on working.
//! A body streams from its stored chunks into the tar: one chunk in memory at a time.

use std::io::Write;

use super::maildir::{self, FolderKeywords};
use super::{ExportError, ExportSummary};
use crate::store::{Snapshot, Store};

/// Writes the export of `account` (every account with `None`) as a tar to `out`.
///
/// Blocking (redb reads and `out`'s writes): run it in `tokio::task::spawn_blocking` or a
/// thread of its own. The admin page streams a download by handing this a `Write` that feeds
/// the response body (a pipe or a channel), so nothing is held whole in memory.
pub fn write_tar(
    store: &Store,
    account: Option<&str>,
    out: impl Write,
) -> Result<ExportSummary, ExportError> {
    let snapshot = store.snapshot()?;
    let accounts = match account {
        Some(wanted) => {
            let wanted = wanted.to_ascii_lowercase();
            if !snapshot.accounts()?.contains(&wanted) {
                return Err(ExportError::NoAccount(wanted));
            }
            vec![wanted]
        }
        None => snapshot.accounts()?,
    };
    let mut tar = tar::Builder::new(out);
    let mut summary = ExportSummary::default();
    for account in &accounts {
        write_account(&snapshot, account, &mut tar, &mut summary)?;
        summary.accounts += 1;
    }
    tar.into_inner()?.flush()?;
    Ok(summary)
}

fn write_account<W: Write>(
    snapshot: &Snapshot,
    account: &str,
    tar: &mut tar::Builder<W>,
    summary: &mut ExportSummary,
) -> Result<(), ExportError> {
    let keywords = snapshot.keywords(account)?;
    for mailbox in snapshot.mailboxes(account)? {
        let folder = join(account, &maildir::folder_dir(&mailbox.name));
        let messages = snapshot.messages(mailbox.id)?;
        // Maildir wants all three; `new` and `tmp` stay empty (every message has its flags,
        // so it belongs in `cur`).
        for sub in ["cur", "new", "tmp"] {
            directory(tar, &join(&folder, sub))?;
        }
        // Maildir++ marks a folder (not INBOX, the root) with an empty `maildirfolder` file.
        if folder != account {
            file(tar, &join(&folder, "maildirfolder"), b"", 0)?;
        }
        let (folder_keywords, dropped) =
            FolderKeywords::for_folder(&keywords, messages.iter().map(|m| &m.flags));
        summary.keywords_dropped += dropped;
        if !folder_keywords.is_empty() {
            let text = folder_keywords.file();
            file(tar, &join(&folder, "dovecot-keywords"), text.as_bytes(), 0)?;
        }
        let mut uidlist = maildir::uidlist_header(mailbox.uidvalidity, mailbox.uidnext);
        let mut names = Vec::with_capacity(messages.len());
        for message in &messages {
            let letters = maildir::info_letters(&message.flags, &keywords, &folder_keywords);
            let name =
                maildir::file_name(message.internal_date, message.uid, message.size, &letters);
            uidlist.push_str(&maildir::uidlist_line(message.uid, &name));
            names.push(name);
        }
        file(
            tar,
            &join(&folder, "dovecot-uidlist"),
            uidlist.as_bytes(),
            0,
        )?;
        drop(uidlist);
        for (message, name) in messages.iter().zip(names) {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(message.size);
            header.set_mode(0o600);
            header.set_mtime(u64::try_from(message.internal_date).unwrap_or(0));
            let path = join(&join(&folder, "cur"), &name);
            let mut body = CountingReader {
                inner: snapshot.body(message.blob),
                read: 0,
            };
            tar.append_data(&mut header, &path, &mut body)?;
            if body.read != message.size {
                return Err(ExportError::Damaged {
                    account: account.to_string(),
                    mailbox: mailbox.name.clone(),
                    uid: message.uid,
                });
            }
            summary.messages += 1;
            summary.bytes += message.size;
        }
        summary.folders += 1;
    }
    Ok(())
}

fn join(dir: &str, name: &str) -> String {
    if name.is_empty() {
        dir.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn directory<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> Result<(), ExportError> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_mode(0o700);
    header.set_mtime(u64::try_from(crate::store::now_unix()).unwrap_or(0));
    tar.append_data(&mut header, format!("{path}/"), std::io::empty())?;
    Ok(())
}

fn file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    bytes: &[u8],
    mtime: u64,
) -> Result<(), ExportError> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(bytes.len() as u64);
    header.set_mode(0o600);
    let mtime = if mtime == 0 {
        u64::try_from(crate::store::now_unix()).unwrap_or(0)
    } else {
        mtime
    };
    header.set_mtime(mtime);
    tar.append_data(&mut header, path, bytes)?;
    Ok(())
}

/// Counts what a body gave, so a body shorter than its row says is an error, not a tar
/// whose entry was padded by the tar writer's refusal.
struct CountingReader<R> {
    inner: R,
    read: u64,
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        self.read += n as u64;
        Ok(n)
    }
}
