//! Commands of the authenticated state: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST
//! (with LIST-EXTENDED selection and return options, SPECIAL-USE, LIST-STATUS), LSUB and
//! STATUS. Selected-state commands are passed on to `selected`.

use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::imap::proto::mailbox_name::{self, DELIMITER, check_new, matches};
use crate::imap::proto::{CommandKind, ListCommand, StatusItem};
use crate::net::Interrupted;
use crate::store::{DEFAULT_MAILBOXES, INBOX, MailboxEntry, MailboxStatus};

/// The RFC 6154 attribute of a mailbox, by name.
pub fn special_use(name: &str) -> Option<&'static str> {
    DEFAULT_MAILBOXES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, attribute)| *attribute)
}

pub fn status_items(status: &MailboxStatus, items: &[StatusItem]) -> String {
    let mut parts = Vec::with_capacity(items.len());
    for item in items {
        parts.push(match item {
            StatusItem::Messages => format!("MESSAGES {}", status.messages),
            StatusItem::Recent => format!("RECENT {}", status.recent),
            StatusItem::UidNext => format!("UIDNEXT {}", status.uidnext),
            StatusItem::UidValidity => format!("UIDVALIDITY {}", status.uidvalidity),
            StatusItem::Unseen => format!("UNSEEN {}", status.unseen),
            StatusItem::Deleted => format!("DELETED {}", status.deleted),
            StatusItem::Size => format!("SIZE {}", status.size),
            StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", status.highest_modseq.max(1)),
        });
    }
    parts.join(" ")
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn mailbox_command(
        &mut self,
        tag: &str,
        kind: CommandKind,
    ) -> Result<(), Interrupted> {
        let account = self.account().to_string();
        let store = self.ctx.store.clone();
        match kind {
            CommandKind::Select {
                mailbox,
                read_only,
                condstore,
                qresync,
            } => {
                if qresync.is_some() && !self.enabled.qresync {
                    self.bad(Some(tag), "ENABLE QRESYNC first");
                    return Ok(());
                }
                if condstore {
                    self.enabled.condstore = true;
                }
                self.select(tag, &mailbox, read_only, qresync).await?;
            }
            CommandKind::SelectInvalidName => {
                if self.selected.take().is_some() {
                    self.untagged("OK [CLOSED] Previous mailbox closed").await?;
                }
                self.no(tag, "[NONEXISTENT] Invalid modified UTF-7 in mailbox name");
            }
            CommandKind::Create(name) => {
                let name = name.trim_end_matches(DELIMITER).to_string();
                if let Err(reason) = check_new(&name) {
                    self.no(tag, &format!("[CANNOT] {reason}"));
                } else if name == INBOX {
                    self.no(tag, "[ALREADYEXISTS] INBOX always exists");
                } else {
                    match store.create_mailbox(&account, &name).await {
                        Ok(()) => self.ok(tag, "CREATE completed"),
                        Err(e) => self.store_no(tag, &e),
                    }
                }
            }
            // Deleting the selected mailbox leaves it through the sync that follows the
            // command (OK [CLOSED]); a refused DELETE leaves it selected.
            CommandKind::Delete(name) => match store.delete_mailbox(&account, &name).await {
                Ok(()) => self.ok(tag, "DELETE completed"),
                Err(e) => self.store_no(tag, &e),
            },
            CommandKind::Rename { from, to } => {
                if let Err(reason) = check_new(&to) {
                    self.no(tag, &format!("[CANNOT] {reason}"));
                } else {
                    match store.rename_mailbox(&account, &from, &to).await {
                        Ok(()) => self.ok(tag, "RENAME completed"),
                        Err(e) => self.store_no(tag, &e),
                    }
                }
            }
            CommandKind::Subscribe(name) => match store.set_subscribed(&account, &name, true).await
            {
                Ok(()) => self.ok(tag, "SUBSCRIBE completed"),
                Err(e) => self.store_no(tag, &e),
            },
            CommandKind::Unsubscribe(name) => {
                match store.set_subscribed(&account, &name, false).await {
                    Ok(()) => self.ok(tag, "UNSUBSCRIBE completed"),
                    Err(e) => self.store_no(tag, &e),
                }
            }
            CommandKind::List(list) => self.list(tag, list).await?,
            CommandKind::Status { mailbox, items } => {
                match store.mailbox_status(&account, &mailbox).await {
                    Ok(status) => {
                        let line = format!(
                            "STATUS {} ({})",
                            self.wire_name(&mailbox),
                            status_items(&status, &items)
                        );
                        self.untagged(&line).await?;
                        self.ok(tag, "STATUS completed");
                    }
                    Err(e) => self.store_no(tag, &e),
                }
            }
            other => self.selected_command(tag, other).await?,
        }
        Ok(())
    }

    async fn list(&mut self, tag: &str, list: ListCommand) -> Result<(), Interrupted> {
        let account = self.account().to_string();
        let command = if list.lsub { "LSUB" } else { "LIST" };
        // RFC 9051 §6.3.9: an empty pattern asks for the delimiter and the root.
        if !list.lsub && list.patterns.iter().all(String::is_empty) {
            self.untagged("LIST (\\Noselect) \"/\" \"\"").await?;
            self.ok(tag, "LIST completed");
            return Ok(());
        }
        let entries = match self.ctx.store.list_mailboxes(&account).await {
            Ok(entries) => entries,
            Err(e) => {
                self.store_no(tag, &e);
                return Ok(());
            }
        };
        let patterns: Vec<String> = list
            .patterns
            .iter()
            .map(|p| mailbox_name::normalize_inbox(format!("{}{p}", list.reference)))
            .collect();
        let subscribed_only = list.lsub || list.select_subscribed;
        let entries = if list.lsub || list.recursive_match {
            with_parents(entries)
        } else {
            entries
        };
        let mut lines = Vec::new();
        for entry in &entries {
            let MailboxEntry {
                name,
                exists,
                subscribed,
            } = entry;
            if !patterns.iter().any(|p| matches(p, name)) {
                continue;
            }
            let prefix = format!("{name}/");
            let subscribed_below = || {
                entries
                    .iter()
                    .filter(|e| e.subscribed && e.name.starts_with(&prefix))
            };
            // RFC 5258 §3.5: with RECURSIVEMATCH a mailbox with a subscribed descendant is
            // listed (subscribed or not) and says so in CHILDINFO.
            let child_info = list.recursive_match && subscribed_below().next().is_some();
            // RFC 3501 §6.3.9: LSUB lists an unsubscribed parent, `\Noselect`, in place of
            // subscribed descendants the pattern does not reach (`%` with `a/b` gives `a`).
            let stands_in = list.lsub
                && !subscribed
                && subscribed_below().any(|e| !patterns.iter().any(|p| matches(p, &e.name)));
            if subscribed_only && !subscribed && !child_info && !stands_in {
                continue;
            }
            if !subscribed_only && !exists {
                continue;
            }
            let special = special_use(name);
            if list.select_special_use && special.is_none() {
                continue;
            }
            let mut attributes: Vec<&str> = Vec::new();
            if !exists || stands_in {
                attributes.push(if list.lsub {
                    "\\Noselect"
                } else {
                    "\\NonExistent"
                });
            }
            if !list.lsub {
                let children = entries
                    .iter()
                    .any(|e| e.exists && e.name.starts_with(&prefix));
                attributes.push(if children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                });
                if let Some(special) = special {
                    attributes.push(special);
                }
                if *subscribed && (list.return_subscribed || list.select_subscribed) {
                    attributes.push("\\Subscribed");
                }
            }
            let extended = if child_info {
                " (\"CHILDINFO\" (\"SUBSCRIBED\"))"
            } else {
                ""
            };
            lines.push((
                format!(
                    "{command} ({}) \"/\" {}{extended}",
                    attributes.join(" "),
                    self.wire_name(name)
                ),
                name.clone(),
                *exists,
            ));
        }
        for (line, name, exists) in lines {
            self.untagged(&line).await?;
            if let (Some(items), true) = (&list.return_status, exists) {
                let items = items.clone();
                if let Ok(status) = self.ctx.store.mailbox_status(&account, &name).await {
                    let line = format!(
                        "STATUS {} ({})",
                        self.wire_name(&name),
                        status_items(&status, &items)
                    );
                    self.untagged(&line).await?;
                }
            }
        }
        self.ok(tag, &format!("{command} completed"));
        Ok(())
    }
}

/// The entries with the superior levels of subscribed names added (neither existing nor
/// subscribed) where they are missing, in name order: LSUB and RECURSIVEMATCH may list them.
fn with_parents(mut entries: Vec<MailboxEntry>) -> Vec<MailboxEntry> {
    let known: std::collections::HashSet<String> = entries.iter().map(|e| e.name.clone()).collect();
    let mut parents: std::collections::BTreeSet<String> = Default::default();
    for entry in entries.iter().filter(|e| e.subscribed) {
        for (at, _) in entry.name.match_indices(DELIMITER) {
            let parent = &entry.name[..at];
            if !known.contains(parent) {
                parents.insert(parent.to_string());
            }
        }
    }
    entries.extend(parents.into_iter().map(|name| MailboxEntry {
        name,
        exists: false,
        subscribed: false,
    }));
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}
