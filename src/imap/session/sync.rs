//! Keeping a client's view of its selected mailbox in step with the store: what changed since
//! it last heard (read from the store's MODSEQ index, so the cost follows the number of
//! changes), QRESYNC's catch-up at SELECT (RFC 7162 §3.2.5), `\Recent` as this session sees
//! it, and IDLE (RFC 2177), which announces changes as they are committed. Changes are
//! announced as EXISTS, EXPUNGE (VANISHED after ENABLE QRESYNC) and FETCH FLAGS when a command
//! allows it (RFC 9051 §7.4.1: no expunges during FETCH, STORE or SEARCH by sequence number).

use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use super::flags::flag_names;
use crate::imap::proto::Qresync;
use crate::imap::proto::sequence::compact;
use crate::limits::IMAP_RECENT_RANGES;
use crate::net::Interrupted;
use crate::store::{FlagChange, Flags, StoreError};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// SELECT ... (QRESYNC ...) (RFC 7162 §3.2.5.1): what the client missed since the MODSEQ
    /// it knew, among the UIDs it knows: expunged UIDs as VANISHED (EARLIER), then the
    /// messages whose flags changed.
    pub(super) async fn resynchronise(&mut self, qresync: &Qresync) -> Result<(), Interrupted> {
        let Some(selected) = &self.selected else {
            return Ok(());
        };
        let known = qresync
            .known_uids
            .as_ref()
            .map(|set| selected.uid_ranges(set));
        let store = self.ctx.store.clone();
        let (id, name) = (selected.id, selected.name.clone());
        let Ok(vanished) = store
            .vanished_since(id, qresync.modseq, known.clone())
            .await
        else {
            return Ok(());
        };
        if !vanished.is_empty() {
            self.untagged(&format!("VANISHED (EARLIER) {}", compact(&vanished)))
                .await?;
        }
        let account = self.account().to_string();
        let Ok(changes) = store
            .changes_since(&account, &name, id, qresync.modseq)
            .await
        else {
            return Ok(());
        };
        let inside = |uid: u32| {
            known
                .as_ref()
                .is_none_or(|ranges| ranges.iter().any(|&(l, h)| (l..=h).contains(&uid)))
        };
        for change in changes.changed.into_iter().filter(|c| inside(c.uid)) {
            if let Some(line) = self.flags_line(&change) {
                self.untagged(&line).await?;
            }
        }
        Ok(())
    }

    /// A message's flags as this client sees them: with `\Recent` where it is recent in
    /// this session, unless IMAP4rev2 (which has no `\Recent`) is on.
    pub(super) fn message_flags(&self, uid: u32, flags: &Flags) -> String {
        let names = flag_names(flags, &self.keywords);
        let recent = !self.enabled.rev2 && self.selected.as_ref().is_some_and(|s| s.is_recent(uid));
        match (recent, names.is_empty()) {
            (false, _) => names,
            (true, true) => "\\Recent".to_string(),
            (true, false) => format!("{names} \\Recent"),
        }
    }

    /// `* n FETCH (UID u FLAGS (...) [MODSEQ (m)])` for a message the client knows.
    fn flags_line(&self, change: &FlagChange) -> Option<String> {
        let selected = self.selected.as_ref()?;
        let index = selected.uids.binary_search(&change.uid).ok()?;
        let flags = self.message_flags(change.uid, &change.flags);
        let modseq = if self.enabled.condstore {
            format!(" MODSEQ ({})", change.modseq)
        } else {
            String::new()
        };
        Some(format!(
            "{} FETCH (UID {} FLAGS ({flags}){modseq})",
            index + 1,
            change.uid
        ))
    }

    /// Tells the client what changed in the selected mailbox since it last heard: expunged
    /// messages (when `expunges` is allowed; as VANISHED after ENABLE QRESYNC), new ones
    /// (EXISTS, and RECENT for IMAP4rev1), and flag changes. Read from the store's MODSEQ
    /// index: the cost follows the number of changes, not the size of the mailbox.
    pub(super) async fn sync(&mut self, expunges: bool) -> Result<(), Interrupted> {
        // Every commit that changes a mailbox bumps the watch: without one since the last
        // look, and with nothing held back then, there is nothing to tell.
        let committed = self.changes.has_changed().unwrap_or(true);
        self.changes.borrow_and_update();
        let Some(selected) = &mut self.selected else {
            return Ok(());
        };
        if !(committed || selected.stale && expunges) {
            return Ok(());
        }
        selected.stale = false;
        let (name, id, modseq) = (selected.name.clone(), selected.id, selected.modseq);
        let store = self.ctx.store.clone();
        let account = self.account().to_string();
        let changes = match store.changes_since(&account, &name, id, modseq).await {
            Ok(changes) => changes,
            Err(StoreError::NotFound { .. }) => {
                self.selected = None;
                self.untagged("OK [CLOSED] The mailbox was deleted or renamed")
                    .await?;
                return Ok(());
            }
            Err(_) => {
                if let Some(selected) = &mut self.selected {
                    selected.stale = true;
                }
                return Ok(());
            }
        };
        self.learn_keywords(changes.changed.iter().map(|c| &c.flags))
            .await?;
        let state = changes.state;
        let Some(selected) = &self.selected else {
            return Ok(());
        };
        if state.highest_modseq == selected.modseq && state.uidnext == selected.uidnext {
            return Ok(());
        }
        let claim = !selected.read_only && !self.enabled.rev2 && state.uidnext > selected.uidnext;
        let claimed = if claim {
            store.claim_recent(state.id, state.uidnext).await.ok()
        } else {
            None
        };
        let qresync = self.enabled.qresync;
        let rev2 = self.enabled.rev2;
        let Some(selected) = &mut self.selected else {
            return Ok(());
        };
        let mut lines = Vec::new();
        let mut complete = true;
        let gone: Vec<u32> = changes
            .expunged
            .iter()
            .copied()
            .filter(|uid| selected.uids.binary_search(uid).is_ok())
            .collect();
        if !gone.is_empty() {
            if expunges {
                if qresync {
                    lines.push(format!("VANISHED {}", compact(&gone)));
                }
                if !qresync {
                    // From the highest sequence number down: each EXPUNGE leaves the lower
                    // numbers as they were (RFC 9051 §7.5.1).
                    for (index, uid) in selected.uids.iter().enumerate().rev() {
                        if gone.binary_search(uid).is_ok() {
                            lines.push(format!("{} EXPUNGE", index + 1));
                        }
                    }
                }
                selected.uids.retain(|uid| gone.binary_search(uid).is_err());
            } else {
                complete = false;
            }
        }
        let last = selected.uids.last().copied().unwrap_or(0);
        let before = selected.uids.len();
        selected.uids.extend(
            changes
                .changed
                .iter()
                .map(|c| c.uid)
                .filter(|&uid| uid > last && uid < state.uidnext),
        );
        if let Some(from) = claimed
            && from < state.uidnext
        {
            let claim = (from.max(1), state.uidnext - 1);
            // Claims of one session usually follow each other: keep them as one range.
            match selected.recent.last_mut() {
                Some((_, high)) if high.checked_add(1) == Some(claim.0) => *high = claim.1,
                _ => {
                    // Sessions that take turns make many ranges: past the limit the oldest
                    // messages simply stop being \Recent here.
                    if selected.recent.len() >= IMAP_RECENT_RANGES {
                        selected.recent.remove(0);
                    }
                    selected.recent.push(claim);
                }
            }
        }
        if selected.uids.len() != before {
            lines.push(format!("{} EXISTS", selected.uids.len()));
            if !rev2 {
                lines.push(format!("{} RECENT", selected.recent_count()));
            }
        }
        selected.uidnext = state.uidnext;
        if complete {
            selected.modseq = state.highest_modseq;
        } else {
            selected.stale = true;
        }
        // New messages were just announced by EXISTS; their flags come with their FETCH.
        for change in changes.changed.iter().filter(|c| c.uid <= last) {
            lines.extend(self.flags_line(change));
        }
        for line in lines {
            self.untagged(&line).await?;
        }
        Ok(())
    }

    /// IDLE (RFC 2177): changes are announced as they are committed, until DONE.
    pub(super) async fn idle(&mut self, tag: &str) -> Result<(), Interrupted> {
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
                    // `changed()` marked the commit seen; sync must still look at it.
                    self.changes.mark_changed();
                    self.sync(true).await?;
                }
            }
        }
    }
}
