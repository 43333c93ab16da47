//! The selected state: SELECT/EXAMINE, the client's view of the mailbox (sequence numbers →
//! UIDs, `\Recent`, the saved search result), and the commands that change messages: STORE,
//! COPY/MOVE, EXPUNGE, CLOSE, UNSELECT, CHECK. Keeping the view in step (and IDLE) is `sync`.
//!
//! The view holds only the UIDs (4 octets per message).

use std::collections::HashSet;

use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use super::flags::{all_flags, permanent_flags};
use crate::imap::proto::sequence::{SequenceSet, compact};
use crate::imap::proto::{CommandKind, Qresync, StoreMode};
use crate::net::Interrupted;
use crate::store::{FlagOp, StoreError};

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
    /// The UIDs of the last `SEARCH RETURN (SAVE)` (`$`, RFC 5182), as ranges.
    pub saved: Vec<(u32, u32)>,
    /// UID ranges that are `\Recent` in this session (RFC 3501 §2.3.2): the messages it was
    /// the first to be told about.
    pub recent: Vec<(u32, u32)>,
    /// The last sync may have left something untold: expunges held back during a command
    /// that names messages by sequence number, a store that could not be read, or a STORE
    /// that saw a commit whose notice had not come yet.
    pub stale: bool,
}

impl Selected {
    /// (sequence number, UID) pairs a set names, in ascending order. `$` names the saved
    /// search result's messages that still exist, whether or not the command is a UID one.
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<(u32, u32)> {
        let count = u32::try_from(self.uids.len()).unwrap_or(u32::MAX);
        if set.is_saved() {
            return self.resolve_uids(self.saved.iter().copied());
        }
        if uid {
            let largest = self.uids.last().copied().unwrap_or(0);
            self.resolve_uids(set.ranges(largest))
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

    pub fn is_recent(&self, uid: u32) -> bool {
        self.recent
            .iter()
            .any(|&(low, high)| (low..=high).contains(&uid))
    }

    /// How many of the messages are `\Recent` here.
    pub fn recent_count(&self) -> usize {
        self.recent
            .iter()
            .map(|&(low, high)| {
                self.uids.partition_point(|&u| u <= high) - self.uids.partition_point(|&u| u < low)
            })
            .sum()
    }

    /// The UID ranges a UID set names, with `*` as the highest UID the mailbox has given
    /// (so expunged UIDs above the last message still count).
    pub fn uid_ranges(&self, set: &SequenceSet) -> Vec<(u32, u32)> {
        if set.is_saved() {
            return self.saved.clone();
        }
        set.ranges(self.uidnext.saturating_sub(1)).collect()
    }

    fn resolve_uids(&self, ranges: impl Iterator<Item = (u32, u32)>) -> Vec<(u32, u32)> {
        let mut found: Vec<(u32, u32)> = Vec::new();
        for (low, high) in ranges {
            let start = self.uids.partition_point(|&u| u < low);
            let end = self.uids.partition_point(|&u| u <= high);
            for index in start..end {
                found.push((index as u32 + 1, self.uids[index]));
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn select(
        &mut self,
        tag: &str,
        name: &str,
        read_only: bool,
        qresync: Option<Qresync>,
    ) -> Result<(), Interrupted> {
        // RFC 9051 §6.3.2 / RFC 7162 §3.2.11: the client learns where the old mailbox's
        // responses end and the new one's begin.
        if self.selected.take().is_some() {
            self.untagged("OK [CLOSED] Previous mailbox closed").await?;
        }
        let account = self.account().to_string();
        // Commits after this point are told by the next sync; earlier ones are in the state.
        self.changes.borrow_and_update();
        let (state, uids, first_unseen) = match self.ctx.store.mailbox_view(&account, name).await {
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
        // SELECT claims the messages nobody was told about yet as this session's `\Recent`;
        // EXAMINE shows them without claiming them (RFC 3501 §6.3.2).
        let recent_from = if read_only {
            self.ctx.store.recent_mark(state.id).await
        } else {
            self.ctx.store.claim_recent(state.id, state.uidnext).await
        };
        let recent_from = match recent_from {
            Ok(mark) => mark,
            Err(e) => {
                self.store_no(tag, &e);
                return Ok(());
            }
        };
        let flags = all_flags(&self.keywords);
        self.untagged(&format!("FLAGS ({flags})")).await?;
        let permanent = if read_only {
            String::new()
        } else {
            permanent_flags(&self.keywords)
        };
        self.untagged(&format!(
            "OK [PERMANENTFLAGS ({permanent})] Flags permitted"
        ))
        .await?;
        self.untagged(&format!("{} EXISTS", uids.len())).await?;
        if self.enabled.rev2 {
            // IMAP4rev2 names the mailbox (with its attributes) instead of RECENT.
            let attributes = super::mailboxes::special_use(name).unwrap_or_default();
            let line = format!("LIST ({attributes}) \"/\" {}", self.wire_name(name));
            self.untagged(&line).await?;
        } else {
            let recent = uids.len() - uids.partition_point(|&u| u < recent_from);
            self.untagged(&format!("{recent} RECENT")).await?;
            // RFC 3501 §6.3.1: the sequence number of the first unseen message (IMAP4rev2
            // dropped it; such clients ask with SEARCH UNSEEN).
            if let Some(uid) = first_unseen
                && let Ok(index) = uids.binary_search(&uid)
            {
                let line = format!("OK [UNSEEN {}] First unseen", index + 1);
                self.untagged(&line).await?;
            }
        }
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
            saved: Vec::new(),
            recent: if recent_from < state.uidnext {
                vec![(recent_from.max(1), state.uidnext - 1)]
            } else {
                Vec::new()
            },
            stale: false,
        });
        if let Some(qresync) = qresync
            && qresync.uidvalidity == state.uidvalidity
        {
            self.resynchronise(&qresync).await?;
        }
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
            // RFC 3501 §6.4.1: with no housekeeping to do, CHECK is a NOOP (its updates come
            // from `complete`, as every command's do).
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
                        // RFC 7162 §3.2.10: the MODSEQ the client is now up to date with.
                        let highest = self.selected.as_ref().map_or(0, |s| s.modseq);
                        if self.enabled.qresync {
                            self.ok(tag, &format!("[HIGHESTMODSEQ {highest}] EXPUNGE completed"));
                        } else {
                            self.ok(tag, "EXPUNGE completed");
                        }
                    }
                    Err(e) => self.store_no(tag, &e),
                }
            }
            CommandKind::Fetch {
                uid,
                set,
                attrs,
                changed_since,
                vanished,
            } => {
                if vanished {
                    if !self.enabled.qresync {
                        self.bad(Some(tag), "ENABLE QRESYNC first");
                        return Ok(());
                    }
                    let (id, ranges) = match &self.selected {
                        Some(s) => (s.id, s.uid_ranges(&set)),
                        None => return Ok(()),
                    };
                    let since = changed_since.unwrap_or(0);
                    if let Ok(gone) = store.vanished_since(id, since, Some(ranges)).await
                        && !gone.is_empty()
                    {
                        self.untagged(&format!("VANISHED (EARLIER) {}", compact(&gone)))
                            .await?;
                    }
                }
                self.fetch(tag, uid, &set, &attrs, changed_since).await?
            }
            CommandKind::Search { charset: true, .. } if self.enabled.utf8_accept => {
                self.bad(
                    Some(tag),
                    "No CHARSET after ENABLE UTF8=ACCEPT: searches are UTF-8",
                );
            }
            CommandKind::Search {
                uid, key, esearch, ..
            } => self.search(tag, uid, &key, esearch).await?,
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
                    // Every message the client named was expunged meanwhile by another
                    // session: nothing to report in COPYUID (its sets cannot be empty).
                    Ok((_, copied)) if copied.is_empty() => {
                        if uid {
                            self.ok(tag, "Nothing to copy");
                        } else {
                            self.no(
                                tag,
                                "[EXPUNGEISSUED] Some of the requested messages no longer exist",
                            );
                        }
                    }
                    Ok((validity, copied)) => {
                        if let Some(spam) = super::junk::lesson_of_copy(&name, &mailbox)
                            && let Ok(target) = store.mailbox_state(&account, &mailbox).await
                        {
                            let uids = copied.iter().map(|&(_, t)| t).collect();
                            super::junk::learn(&store, target.id, uids, spam).await;
                        }
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
        let bits = match self.resolve_flags(names).await? {
            Ok(bits) => bits,
            Err(refusal) => {
                self.no(tag, refusal);
                return Ok(());
            }
        };
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
        // The store may have seen another session's commit whose notice has not reached this
        // session yet (a MOVE of a message named here: the STORE found it gone). Read the
        // changes before the tagged reply all the same, so that such a message's EXPUNGE
        // comes with the reply instead of a FETCH that looks like this STORE did nothing.
        if let Some(selected) = &mut self.selected {
            selected.stale = true;
        }
        if let Some(spam) = super::junk::lesson_of_store(op, names) {
            let uids = outcome.changed.iter().map(|c| c.uid).collect();
            super::junk::learn(&store, id, uids, spam).await;
        }
        // Looked up once per message answered: sets, so that `STORE 1:*` stays linear.
        let modified: HashSet<u32> = outcome.modified.iter().copied().collect();
        let changed: HashSet<u32> = outcome.changed.iter().map(|c| c.uid).collect();
        if !silent || self.enabled.condstore {
            for batch in pairs.chunks(512) {
                let batch_uids: Vec<u32> = batch.iter().map(|&(_, u)| u).collect();
                let Ok(rows) = store.messages_by_uid(id, batch_uids).await else {
                    break;
                };
                self.learn_keywords(rows.iter().map(|r| &r.flags)).await?;
                for row in rows {
                    // Pairs ascend by sequence number, so by UID too.
                    let Ok(position) = batch.binary_search_by_key(&row.uid, |&(_, u)| u) else {
                        continue;
                    };
                    let seq = batch[position].0;
                    if modified.contains(&row.uid) || (silent && !changed.contains(&row.uid)) {
                        continue;
                    }
                    let mut items = Vec::new();
                    if !silent {
                        items.push(format!(
                            "FLAGS ({})",
                            self.message_flags(row.uid, &row.flags)
                        ));
                    }
                    // After CONDSTORE, every FETCH response carries UID and MODSEQ (RFC 7162
                    // §3.1; QRESYNC clients need the UID to know which message, §3.2.4).
                    if uid || self.enabled.condstore {
                        items.push(format!("UID {}", row.uid));
                    }
                    if self.enabled.condstore {
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
                    .filter(|(_, u)| modified.contains(u))
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
}
