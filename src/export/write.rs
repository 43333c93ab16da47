//! `export`: the store as a tar of Maildir++ trees, one per account (`<account>/cur/...`,
//! `<account>/.Sent/cur/...`), written from one snapshot while the daemon goes on working.
//! A body streams from its stored chunks into the tar: one chunk in memory at a time.

use std::io::{Read, Write};

use super::maildir::{self, FolderKeywords};
use super::{ExportError, ExportSummary};
use crate::limits::EXPORT_PAGE;
use crate::store::{Flags, MessageInfo, Snapshot, Store};

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
        // Maildir wants all three; `new` and `tmp` stay empty (every message has its flags,
        // so it belongs in `cur`).
        for sub in ["cur", "new", "tmp"] {
            directory(tar, &join(&folder, sub))?;
        }
        // Maildir++ marks a folder (not INBOX, the root) with an empty `maildirfolder` file.
        if folder != account {
            file(tar, &join(&folder, "maildirfolder"), b"")?;
        }
        // The mailbox is walked a page of rows at a time, three times: the keywords it uses,
        // then `dovecot-uidlist` (whose size the tar header needs first), then the messages.
        let mut used = Flags::default();
        let mut pages = Pages::new(snapshot, mailbox.id);
        while let Some(page) = pages.next_page()? {
            for message in &page {
                used = used.union(&message.flags);
            }
        }
        let (folder_keywords, dropped) =
            FolderKeywords::for_folder(&keywords, std::iter::once(&used));
        summary.keywords_dropped += dropped;
        if !folder_keywords.is_empty() {
            let text = folder_keywords.file();
            file(tar, &join(&folder, "dovecot-keywords"), text.as_bytes())?;
        }
        let name_of = |message: &MessageInfo| {
            let letters = maildir::info_letters(&message.flags, &keywords, &folder_keywords);
            maildir::file_name(message.internal_date, message.uid, message.size, &letters)
        };
        let header = maildir::uidlist_header(mailbox.uidvalidity, mailbox.uidnext);
        let mut uidlist_size = header.len() as u64;
        let mut pages = Pages::new(snapshot, mailbox.id);
        while let Some(page) = pages.next_page()? {
            for message in &page {
                uidlist_size += maildir::uidlist_line(message.uid, &name_of(message)).len() as u64;
            }
        }
        let uidlist = Uidlist {
            pages: Pages::new(snapshot, mailbox.id),
            name_of: &name_of,
            text: header.into_bytes(),
            offset: 0,
        };
        let written = append(
            tar,
            &join(&folder, "dovecot-uidlist"),
            uidlist_size,
            now(),
            uidlist,
        )?;
        if written != uidlist_size {
            return Err(ExportError::Stopped(format!(
                "dovecot-uidlist of {account}/{} came out {written} octets, not {uidlist_size}",
                mailbox.name
            )));
        }
        let mut pages = Pages::new(snapshot, mailbox.id);
        while let Some(page) = pages.next_page()? {
            for message in page {
                let path = join(&join(&folder, "cur"), &name_of(&message));
                let mtime = u64::try_from(message.internal_date).unwrap_or(0);
                let body = snapshot.body(message.blob);
                let written = append(tar, &path, message.size, mtime, body)?;
                if written != message.size {
                    return Err(ExportError::Damaged {
                        account: account.to_string(),
                        mailbox: mailbox.name.clone(),
                        uid: message.uid,
                    });
                }
                summary.messages += 1;
                summary.bytes += message.size;
            }
        }
        summary.folders += 1;
    }
    Ok(())
}

/// Rows of one mailbox a page at a time.
struct Pages<'a> {
    snapshot: &'a Snapshot,
    mailbox: u64,
    size: usize,
    /// The UID the next page starts at; `None` after the last page.
    next: Option<u32>,
}

impl<'a> Pages<'a> {
    fn new(snapshot: &'a Snapshot, mailbox: u64) -> Self {
        Pages {
            snapshot,
            mailbox,
            size: EXPORT_PAGE,
            next: Some(0),
        }
    }

    fn next_page(&mut self) -> Result<Option<Vec<MessageInfo>>, ExportError> {
        let Some(first) = self.next else {
            return Ok(None);
        };
        let page = self.snapshot.messages(self.mailbox, first, self.size)?;
        self.next = match page.last() {
            Some(last) if page.len() == self.size => last.uid.checked_add(1),
            _ => None,
        };
        Ok((!page.is_empty()).then_some(page))
    }
}

/// `dovecot-uidlist`, generated a page of rows at a time as the tar writer reads it.
struct Uidlist<'a, F> {
    pages: Pages<'a>,
    name_of: &'a F,
    text: Vec<u8>,
    offset: usize,
}

impl<F: Fn(&MessageInfo) -> String> Read for Uidlist<'_, F> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.offset == self.text.len() {
            let page = self.pages.next_page().map_err(std::io::Error::other)?;
            let Some(page) = page else {
                return Ok(0);
            };
            self.text.clear();
            self.offset = 0;
            for message in &page {
                let line = maildir::uidlist_line(message.uid, &(self.name_of)(message));
                self.text.extend_from_slice(line.as_bytes());
            }
        }
        let n = out.len().min(self.text.len() - self.offset);
        out[..n].copy_from_slice(&self.text[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

fn now() -> u64 {
    u64::try_from(crate::store::now_unix()).unwrap_or(0)
}

/// Appends a file of `size` octets read from `data`; returns how many `data` gave (the tar
/// writer pads a short entry with zeros, which the caller must not take for a whole file).
fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    mtime: u64,
    data: impl Read,
) -> Result<u64, ExportError> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(mtime);
    let mut counted = CountingReader {
        inner: data,
        read: 0,
    };
    tar.append_data(&mut header, path, &mut counted)?;
    Ok(counted.read)
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
    header.set_mtime(now());
    tar.append_data(&mut header, format!("{path}/"), std::io::empty())?;
    Ok(())
}

fn file<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> Result<(), ExportError> {
    append(tar, path, bytes.len() as u64, now(), bytes)?;
    Ok(())
}

/// Counts what a reader gave.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AppendItem;

    #[tokio::test(flavor = "multi_thread")]
    async fn pages_walk_a_mailbox_whole_and_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(
            dir.path(),
            &crate::limits::Limits::default(),
            tokio::sync::watch::channel(crate::status::Status::default()).0,
        )
        .expect("open");
        store.create_account("a@x", "hash").await.expect("account");
        let mut items = Vec::new();
        for i in 0..5 {
            let mut spool = store.spool().await.expect("spool");
            spool
                .write(format!("Subject: {i}\r\n\r\nbody\r\n").as_bytes())
                .await
                .expect("write");
            items.push(AppendItem {
                message: spool.finish().await.expect("finish"),
                flags: Flags::default(),
                internal_date: 1_000 + i,
            });
        }
        let (_, uids) = store
            .append_all(items, "a@x", "INBOX")
            .await
            .expect("append");
        store
            .expunge("a@x", "INBOX", vec![uids[2]])
            .await
            .expect("expunge");
        let snapshot = store.snapshot().expect("snapshot");
        let id = snapshot
            .mailboxes("a@x")
            .expect("mailboxes")
            .iter()
            .find(|m| m.name == "INBOX")
            .expect("inbox")
            .id;
        for size in [1, 2, 4, 5, 100] {
            let mut pages = Pages {
                size,
                ..Pages::new(&snapshot, id)
            };
            let mut seen = Vec::new();
            while let Some(page) = pages.next_page().expect("page") {
                assert!(page.len() <= size);
                seen.extend(page.iter().map(|m| m.uid));
            }
            assert_eq!(
                seen,
                [uids[0], uids[1], uids[3], uids[4]],
                "pages of {size}"
            );
        }
    }
}
