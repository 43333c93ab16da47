//! The selected state: SELECT/EXAMINE, keeping the client's view of the mailbox (sequence
//! numbers → UIDs) in step with the store, and the commands that change messages: STORE,
//! COPY/MOVE, EXPUNGE, CLOSE, UNSELECT, CHECK, IDLE.
//!
//! The view holds only the UIDs (4 octets per message). Other sessions' changes (and new
//! deliveries) are found by comparing the mailbox's HIGHESTMODSEQ/UIDNEXT, and announced as
//! EXISTS, EXPUNGE and FETCH FLAGS when a command allows it (RFC 9051 §7.4.1: no EXPUNGE
//! during FETCH, STORE or SEARCH by sequence number).

use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::imap::proto::sequence::{SequenceSet, compact};
use crate::imap::proto::{CommandKind, StoreMode};
use crate::net::Interrupted;
use crate::store::schema::flags;
use crate::store::{FlagOp, Keywords, StoreError};

pub const SYSTEM_FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

/// The selected mailbox as this client knows it.
pub struct Selected {
    pub name: String,
    pub read_only: bool,
    pub id: u64,
    pub uidnext: u32,
    /// UIDs by sequence number (index + 1), ascending.
    pub uids: Vec<u32>,
    /// HIGHESTMODSEQ of the last state the client was told about.
    pub modseq: u64,
}

impl Selected {
    /// (sequence number, UID) pairs a set names, in ascending order.
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<(u32, u32)> {
        let count = u32::try_from(self.uids.len()).unwrap_or(u32::MAX);
        if uid {
            let largest = self.uids.last().copied().unwrap_or(0);
            let mut found: Vec<(u32, u32)> = Vec::new();
            for (low, high) in set.ranges(largest) {
                let start = self.uids.partition_point(|&u| u < low);
                let end = self.uids.partition_point(|&u| u <= high);
                for index in start..end {
                    found.push((index as u32 + 1, self.uids[index]));
                }
            }
            found.sort_unstable();
            found.dedup();
            found
        } else {
            let mut found: Vec<(u32, u32)> = Vec::new();
            for (low, high) in set.ranges(count) {
                for seq in low.max(1)..=high.min(count) {
                    found.push((seq, self.uids[seq as usize - 1]));
                }
            }
            found.sort_unstable();
            found.dedup();
            found
        }
    }
}

/// Flag bits as IMAP names: the system flags, then the account's keywords.
pub fn flag_names(bits: u32, keywords: &Keywords) -> String {
    let names = [
        (flags::ANSWERED, "\\Answered"),
        (flags::FLAGGED, "\\Flagged"),
        (flags::DELETED, "\\Deleted"),
        (flags::SEEN, "\\Seen"),
        (flags::DRAFT, "\\Draft"),
    ];
    names
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| *name)
        .chain(keywords.names(bits))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The bit of one system flag or keyword name.
pub fn flag_bit(name: &str, keywords: &Keywords) -> Option<u32> {
    Some(match name.to_ascii_lowercase().as_str() {
        "\\seen" => flags::SEEN,
        "\\answered" => flags::ANSWERED,
        "\\flagged" => flags::FLAGGED,
        "\\deleted" => flags::DELETED,
        "\\draft" => flags::DRAFT,
        _ => return keywords.bit(name),
    })
}

/// IMAP flag names as bits; names the account has no keyword for (yet) count for nothing.
pub fn flag_bits(names: &[String], keywords: &Keywords) -> u32 {
    names
        .iter()
        .filter_map(|name| flag_bit(name, keywords))
        .fold(0, |bits, bit| bits | bit)
}

/// The FLAGS list of a selected mailbox.
fn all_flags(keywords: &Keywords) -> String {
    std::iter::once(SYSTEM_FLAGS)
        .chain(keywords.all())
        .collect::<Vec<_>>()
        .join(" ")
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Flag names as bits, defining the keywords among them that the account lacks; a
    /// selected session is told the new FLAGS list (RFC 9051 §7.3.5).
    pub(super) async fn resolve_flags(&mut self, names: &[String]) -> Result<u32, Interrupted> {
        let unknown: Vec<String> = names
            .iter()
            .filter(|name| flag_bit(name, &self.keywords).is_none() && !name.starts_with('\\'))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            let account = self.account().to_string();
            match self.ctx.store.define_keywords(&account, unknown).await {
                Ok(keywords) if keywords != self.keywords => {
                    self.keywords = keywords;
                    if self.selected.is_some() {
                        let flags = all_flags(&self.keywords);
                        self.untagged(&format!("FLAGS ({flags})")).await?;
                        self.untagged(&format!(
                            "OK [PERMANENTFLAGS ({flags} \\*)] Flags permitted"
                        ))
                        .await?;
                    }
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "cannot define IMAP keywords"),
            }
        }
        Ok(flag_bits(names, &self.keywords))
    }

    pub(super) async fn select(
        &mut self,
        tag: &str,
        name: &str,
        read_only: bool,
    ) -> Result<(), Interrupted> {
        self.selected = None;
        let account = self.account().to_string();
        let (state, uids) = match self.ctx.store.mailbox_uids(&account, name).await {
            Ok(found) => found,
            Err(e) => {
                self.store_no(tag, &e);
                return Ok(());
            }
        };
        self.keywords = match self.ctx.store.keywords(&account).await {
            Ok(keywords) => keywords,
            Err(e) => {
                self.store_no(tag, &e);
                return Ok(());
            }
        };
        let flags = all_flags(&self.keywords);
        self.untagged(&format!("FLAGS ({flags})")).await?;
        // `\*`: clients may make new keywords (up to the free flag bits).
        let permanent = if read_only {
            String::new()
        } else {
            format!("{flags} \\*")
        };
        self.untagged(&format!(
            "OK [PERMANENTFLAGS ({permanent})] Flags permitted"
        ))
        .await?;
        self.untagged(&format!("{} EXISTS", uids.len())).await?;
        self.untagged("0 RECENT").await?;
        self.untagged(&format!(
            "OK [UIDVALIDITY {}] UIDs valid",
            state.uidvalidity
        ))
        .await?;
        self.untagged(&format!(
            "OK [UIDNEXT {}] Predicted next UID",
            state.uidnext
        ))
        .await?;
        self.untagged(&format!(
            "OK [HIGHESTMODSEQ {}] Highest",
            state.highest_modseq.max(1)
        ))
        .await?;
        self.selected = Some(Selected {
            name: name.to_string(),
            read_only,
            id: state.id,
            uidnext: state.uidnext,
            uids,
            modseq: state.highest_modseq,
        });
        let mode = if read_only { "READ-ONLY" } else { "READ-WRITE" };
        self.ok(
            tag,
            &format!(
                "[{mode}] {} completed",
                if read_only { "EXAMINE" } else { "SELECT" }
            ),
        );
        Ok(())
    }

    /// Tells the client what changed in the selected mailbox since it last heard: expunged
    /// messages (when `expunges` is allowed), new ones, and flag changes.
    pub(super) async fn sync(&mut self, expunges: bool) -> Result<(), Interrupted> {
        self.changes.borrow_and_update();
        let Some(selected) = &self.selected else {
            return Ok(());
        };
        let account = self.account().to_string();
        let store = self.ctx.store.clone();
        let state = match store.mailbox_state(&account, &selected.name).await {
            Ok(state) => state,
            Err(StoreError::NotFound { .. }) => {
                self.selected = None;
                self.untagged("OK [CLOSED] The mailbox was deleted or renamed")
                    .await?;
                return Ok(());
            }
            Err(_) => return Ok(()),
        };
        if state.highest_modseq == selected.modseq && state.uidnext == selected.uidnext {
            return Ok(());
        }
        let Ok((state, current)) = store.mailbox_uids(&account, &selected.name).await else {
            return Ok(());
        };
        let Ok(changed) = store.changed_since(state.id, selected.modseq).await else {
            return Ok(());
        };
        let condstore = self.condstore;
        let Some(selected) = &mut self.selected else {
            return Ok(());
        };
        let mut lines = Vec::new();
        let mut complete = true;
        if expunges {
            let mut index = selected.uids.len();
            while index > 0 {
                index -= 1;
                if current.binary_search(&selected.uids[index]).is_err() {
                    lines.push(format!("{} EXPUNGE", index + 1));
                    selected.uids.remove(index);
                }
            }
        } else if selected
            .uids
            .iter()
            .any(|uid| current.binary_search(uid).is_err())
        {
            complete = false;
        }
        let last = selected.uids.last().copied().unwrap_or(0);
        let before = selected.uids.len();
        selected
            .uids
            .extend(current.iter().filter(|&&uid| uid > last));
        if selected.uids.len() != before {
            lines.push(format!("{} EXISTS", selected.uids.len()));
        }
        // New messages were just announced by EXISTS; their flags come with their FETCH.
        for change in changed.into_iter().filter(|c| c.uid <= last) {
            if let Ok(index) = selected.uids.binary_search(&change.uid) {
                let modseq = if condstore {
                    format!(" MODSEQ ({})", change.modseq)
                } else {
                    String::new()
                };
                lines.push(format!(
                    "{} FETCH (UID {} FLAGS ({}){modseq})",
                    index + 1,
                    change.uid,
                    flag_names(change.flags, &self.keywords)
                ));
            }
        }
        selected.uidnext = state.uidnext;
        if complete {
            selected.modseq = state.highest_modseq;
        }
        for line in lines {
            self.untagged(&line).await?;
        }
        Ok(())
    }

    pub(super) async fn selected_command(
        &mut self,
        tag: &str,
        kind: CommandKind,
    ) -> Result<(), Interrupted> {
        if matches!(kind, CommandKind::Idle) {
            return self.idle(tag).await;
        }
        let Some(selected) = &self.selected else {
            self.bad(Some(tag), "No mailbox selected");
            return Ok(());
        };
        let (name, read_only) = (selected.name.clone(), selected.read_only);
        let account = self.account().to_string();
        let store = self.ctx.store.clone();
        match kind {
            CommandKind::Check => self.ok(tag, "CHECK completed"),
            CommandKind::Close | CommandKind::Unselect => {
                if matches!(kind, CommandKind::Close)
                    && !read_only
                    && let Err(e) = store.expunge_deleted(&account, &name, None).await
                {
                    self.store_no(tag, &e);
                    return Ok(());
                }
                self.selected = None;
                self.ok(tag, "Mailbox closed");
            }
            CommandKind::Expunge { uids } => {
                if read_only {
                    self.no(tag, "[READ-ONLY] Mailbox is read-only");
                    return Ok(());
                }
                let only = uids.map(|set| {
                    let mut uids: Vec<u32> = self
                        .selected
                        .as_ref()
                        .map(|s| s.resolve(&set, true).into_iter().map(|(_, u)| u).collect())
                        .unwrap_or_default();
                    uids.sort_unstable();
                    uids
                });
                match store.expunge_deleted(&account, &name, only).await {
                    Ok(_) => {
                        self.sync(true).await?;
                        self.ok(tag, "EXPUNGE completed");
                    }
                    Err(e) => self.store_no(tag, &e),
                }
            }
            CommandKind::Fetch {
                uid,
                set,
                attrs,
                changed_since,
            } => self.fetch(tag, uid, &set, &attrs, changed_since).await?,
            CommandKind::Search { uid, key, esearch } => {
                self.search(tag, uid, &key, esearch).await?
            }
            CommandKind::Store {
                uid,
                set,
                unchanged_since,
                mode,
                silent,
                flags,
            } => {
                if read_only {
                    self.no(tag, "[READ-ONLY] Mailbox is read-only");
                    return Ok(());
                }
                self.store_command(tag, uid, &set, unchanged_since, mode, silent, &flags)
                    .await?;
            }
            CommandKind::Copy {
                uid,
                set,
                mailbox,
                moving,
            } => {
                if moving && read_only {
                    self.no(tag, "[READ-ONLY] Mailbox is read-only");
                    return Ok(());
                }
                let pairs = self
                    .selected
                    .as_ref()
                    .map(|s| s.resolve(&set, uid))
                    .unwrap_or_default();
                let uids: Vec<u32> = pairs.iter().map(|&(_, u)| u).collect();
                if uids.is_empty() {
                    self.ok(tag, "Nothing to copy");
                    return Ok(());
                }
                match store
                    .copy_messages(&account, &name, uids, &mailbox, moving)
                    .await
                {
                    Ok((validity, copied)) => {
                        let source: Vec<u32> = copied.iter().map(|&(s, _)| s).collect();
                        let target: Vec<u32> = copied.iter().map(|&(_, t)| t).collect();
                        let code = format!(
                            "[COPYUID {validity} {} {}]",
                            compact(&source),
                            compact(&target)
                        );
                        if moving {
                            self.untagged(&format!("OK {code} Moved")).await?;
                            self.sync(true).await?;
                            self.ok(tag, "MOVE completed");
                        } else {
                            self.ok(tag, &format!("{code} COPY completed"));
                        }
                    }
                    Err(StoreError::NotFound { .. }) => {
                        self.no(tag, "[TRYCREATE] No such mailbox");
                    }
                    Err(e) => self.store_no(tag, &e),
                }
            }
            _ => self.bad(Some(tag), "Unexpected command"),
        }
        Ok(())
    }

    /// After this session's own flag change: if it was up to date before, it is now (its
    /// FETCH responses told the client), so the change is not announced again.
    pub(super) fn saw_own_change(&mut self, before: u64, after: u64) {
        if let Some(selected) = &mut self.selected
            && selected.modseq == before
        {
            selected.modseq = after;
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn store_command(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SequenceSet,
        unchanged_since: Option<u64>,
        mode: StoreMode,
        silent: bool,
        names: &[String],
    ) -> Result<(), Interrupted> {
        let Some(selected) = &self.selected else {
            return Ok(());
        };
        let pairs = selected.resolve(set, uid);
        let (name, id) = (selected.name.clone(), selected.id);
        let op = match mode {
            StoreMode::Add => FlagOp::Add,
            StoreMode::Remove => FlagOp::Remove,
            StoreMode::Replace => FlagOp::Replace,
        };
        let bits = self.resolve_flags(names).await?;
        let account = self.account().to_string();
        let store = self.ctx.store.clone();
        let uids: Vec<u32> = pairs.iter().map(|&(_, u)| u).collect();
        let outcome = match store
            .store_flags(&account, &name, uids.clone(), op, bits, unchanged_since)
            .await
        {
            Ok(outcome) => outcome,
            Err(e) => {
                self.store_no(tag, &e);
                return Ok(());
            }
        };
        self.saw_own_change(outcome.before, outcome.after);
        if !silent || self.condstore {
            for batch in pairs.chunks(512) {
                let batch_uids: Vec<u32> = batch.iter().map(|&(_, u)| u).collect();
                let Ok(rows) = store.messages_by_uid(id, batch_uids).await else {
                    break;
                };
                for row in rows {
                    let Some(&(seq, _)) = batch.iter().find(|&&(_, u)| u == row.uid) else {
                        continue;
                    };
                    if outcome.modified.contains(&row.uid) {
                        continue;
                    }
                    let changed = outcome.changed.iter().any(|c| c.uid == row.uid);
                    if silent && !changed {
                        continue;
                    }
                    let mut items = Vec::new();
                    if !silent {
                        items.push(format!("FLAGS ({})", flag_names(row.flags, &self.keywords)));
                    }
                    if uid {
                        items.push(format!("UID {}", row.uid));
                    }
                    if self.condstore {
                        items.push(format!("MODSEQ ({})", row.modseq));
                    }
                    self.untagged(&format!("{seq} FETCH ({})", items.join(" ")))
                        .await?;
                }
            }
        }
        if outcome.modified.is_empty() {
            self.ok(tag, "STORE completed");
        } else {
            let mut modified: Vec<u32> = if uid {
                outcome.modified.clone()
            } else {
                pairs
                    .iter()
                    .filter(|(_, u)| outcome.modified.contains(u))
                    .map(|&(s, _)| s)
                    .collect()
            };
            modified.sort_unstable();
            self.ok(
                tag,
                &format!("[MODIFIED {}] Conditional STORE failed", compact(&modified)),
            );
        }
        Ok(())
    }

    /// IDLE (RFC 2177): changes are announced as they are committed, until DONE.
    async fn idle(&mut self, tag: &str) -> Result<(), Interrupted> {
        self.conn.write(b"+ idling\r\n").await?;
        self.sync(true).await?;
        let mut pending: Vec<u8> = Vec::new();
        loop {
            self.conn.flush().await?;
            let buffered = self.conn.buffered();
            if let Some(end) = buffered.iter().position(|&b| b == b'\n') {
                pending.extend_from_slice(&buffered[..end]);
                self.conn.consume(end + 1);
                let line = pending.strip_suffix(b"\r").unwrap_or(&pending);
                if line.eq_ignore_ascii_case(b"DONE") {
                    self.ok(tag, "IDLE terminated");
                } else {
                    self.bad(Some(tag), "Expected DONE");
                }
                return Ok(());
            }
            let length = buffered.len();
            pending.extend_from_slice(buffered);
            self.conn.consume(length);
            if pending.len() > 64 {
                self.bad(Some(tag), "Expected DONE");
                return Ok(());
            }
            tokio::select! {
                read = self.conn.read_more() => read?,
                changed = self.changes.changed() => {
                    if changed.is_err() {
                        return Err(Interrupted::Shutdown);
                    }
                    self.sync(true).await?;
                }
            }
        }
    }
}
