//! APPEND (RFC 9051 §6.3.12, RFC 7888 LITERAL+, RFC 4315 APPENDUID, RFC 3502 MULTIAPPEND,
//! RFC 6855 §4 `UTF8 (~{n})`, RFC 3516 literal8): each message literal is checked (size,
//! target) before the client is told to send it, then streamed into a spool file; all the
//! messages of one command are stored in one commit through the group-commit writer, so they
//! all arrive or none does; OK only after that commit is durable.

use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::imap::proto::framing::{Line, LiteralMarker, literal_at_end};
use crate::imap::proto::sequence::compact;
use crate::imap::proto::{AppendMessage, AppendPrefix, parse_append_next};
use crate::limits::{IMAP_COMMAND_LINE, IMAP_MULTIAPPEND_MAX};
use crate::net::Interrupted;
use crate::store::{AppendItem, SpoolFile, SpoolWriter, now_unix};

/// How one APPEND command ended before anything was stored.
enum Ended {
    /// Every message arrived in a spool file.
    Complete(Vec<(SpoolFile, AppendMessage)>),
    /// Refused: the tagged reply (status, text) has not been sent yet.
    Refused(&'static str, &'static str),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn append(
        &mut self,
        prefix: AppendPrefix,
        literal: LiteralMarker,
    ) -> Result<(), Interrupted> {
        let tag = prefix.tag.clone();
        let messages = match self.receive_messages(&prefix, literal).await? {
            Ended::Complete(messages) => messages,
            Ended::Refused(status, text) => {
                if status == "BAD" {
                    self.bad(Some(&tag), text);
                } else {
                    self.tagged(&tag, status, text);
                }
                return Ok(());
            }
        };
        let account = self.account().to_string();
        let mut items = Vec::with_capacity(messages.len());
        for (spool, message) in messages {
            let flags = match self.resolve_flags(&message.flags).await? {
                Ok(flags) => flags,
                Err(refusal) => {
                    self.no(&tag, refusal);
                    return Ok(());
                }
            };
            items.push(AppendItem {
                flags,
                internal_date: message.date.unwrap_or_else(now_unix),
                message: spool,
            });
        }
        match self
            .ctx
            .store
            .append_all(items, &account, &prefix.mailbox)
            .await
        {
            Ok((validity, uids)) => {
                let uids = compact(&uids);
                self.ok(
                    &tag,
                    &format!("[APPENDUID {validity} {uids}] APPEND completed"),
                );
            }
            Err(e) => self.store_no(&tag, &e),
        }
        Ok(())
    }

    /// Reads every message of the command into spool files. A refusal still reads (and drops)
    /// what the client sends without waiting (LITERAL+), so the next command is read in step.
    async fn receive_messages(
        &mut self,
        prefix: &AppendPrefix,
        first: LiteralMarker,
    ) -> Result<Ended, Interrupted> {
        let mut received = Vec::new();
        let mut message = prefix.message.clone();
        let mut literal = first;
        loop {
            let refusal = match received.len() {
                0 => self.append_refusal(&prefix.mailbox, literal).await,
                n if n >= IMAP_MULTIAPPEND_MAX => {
                    Some(("NO", "[LIMIT] Too many messages in one APPEND"))
                }
                _ => self.size_refusal(literal).await,
            }
            .or_else(|| {
                (message.utf8 && !self.enabled.utf8_accept)
                    .then_some(("BAD", "UTF8 APPEND needs ENABLE UTF8=ACCEPT"))
            });
            if let Some(refusal) = refusal {
                if literal.non_sync {
                    self.skip(literal.length).await?;
                    self.discard_rest_of_command().await?;
                }
                return Ok(Ended::Refused(refusal.0, refusal.1));
            }
            let spool = self.ctx.store.spool().await;
            if !literal.non_sync {
                self.conn.write(b"+ Ready for literal data\r\n").await?;
                self.conn.flush().await?;
            }
            let spooled = self.receive_literal(spool.ok(), literal.length).await?;
            let rest = match self.read_line(IMAP_COMMAND_LINE).await? {
                Line::Complete(line) => line,
                Line::TooLong { tail, .. } => {
                    self.drop_rest(&tail).await?;
                    return Ok(Ended::Refused("BAD", "Command line too long"));
                }
            };
            // `UTF8 (~{n}` is closed right after its literal.
            let rest = match (message.utf8, rest.strip_prefix(b")")) {
                (false, _) => rest.as_slice(),
                (true, Some(after)) => after,
                (true, None) => {
                    self.drop_rest(&rest).await?;
                    return Ok(Ended::Refused("BAD", "Expected ) after the UTF8 message"));
                }
            };
            let next = literal_at_end(rest);
            let before_marker = match next {
                Some(marker) => {
                    let open = rest.iter().rposition(|&b| b == b'{').unwrap_or(0);
                    &rest[..open.saturating_sub(usize::from(marker.binary))]
                }
                None => rest,
            };
            let parsed = parse_append_next(before_marker);
            let spool = match spooled {
                Some(writer) => writer.finish().await.ok(),
                None => None,
            };
            let Some(spool) = spool else {
                self.drop_rest(rest).await?;
                return Ok(Ended::Refused(
                    "NO",
                    "[UNAVAILABLE] Cannot store the message now, try again later",
                ));
            };
            received.push((spool, message));
            match (parsed, next) {
                (Ok(None), None) => return Ok(Ended::Complete(received)),
                (Ok(Some(following)), Some(marker)) => {
                    message = following;
                    literal = marker;
                }
                _ => {
                    self.drop_rest(rest).await?;
                    return Ok(Ended::Refused("BAD", "Unexpected text after the message"));
                }
            }
        }
    }

    /// Drops the rest of a refused command whose last line was `line`.
    async fn drop_rest(&mut self, line: &[u8]) -> Result<(), Interrupted> {
        if let Some(marker) = literal_at_end(line).filter(|m| m.non_sync) {
            self.skip(marker.length).await?;
            self.discard_rest_of_command().await?;
        }
        Ok(())
    }

    /// A message over the APPEND limit, or one the data device has no room for beside the
    /// spool files this command already wrote (checked before each message, so a MULTIAPPEND
    /// of many large messages cannot fill the card before its commit is refused).
    /// Space freed inside the store by EXPUNGE counts as room (issue #16 defect 5).
    async fn size_refusal(&self, literal: LiteralMarker) -> Option<(&'static str, &'static str)> {
        let limits = &self.ctx.config.limits;
        if literal.length > limits.max_append_size.0 {
            return Some(("NO", "[TOOBIG] Message too large"));
        }
        let room = self
            .ctx
            .store
            .has_room(literal.length, limits.min_free_space.0)
            .await;
        match room {
            Ok(true) => None,
            Ok(false) => Some(("NO", "[OVERQUOTA] Not enough storage for the message")),
            Err(error) => {
                tracing::error!(%error, "APPEND: cannot tell the free space");
                Some(("NO", "[UNAVAILABLE] Storage not available, try again later"))
            }
        }
    }

    /// Why an APPEND cannot take its first message, before the literal is read.
    async fn append_refusal(
        &mut self,
        mailbox: &str,
        literal: LiteralMarker,
    ) -> Option<(&'static str, &'static str)> {
        let Some(account) = self.account.clone() else {
            return Some(("BAD", "Log in first"));
        };
        if let Some(refusal) = self.size_refusal(literal).await {
            return Some(refusal);
        }
        match self.ctx.store.mailbox_state(&account, mailbox).await {
            Ok(_) => None,
            Err(crate::store::StoreError::NotFound { .. }) => {
                Some(("NO", "[TRYCREATE] No such mailbox"))
            }
            Err(_) => Some(("NO", "[UNAVAILABLE] Try again later")),
        }
    }

    /// Streams `length` octets of input into the spool (or drops them without one).
    async fn receive_literal(
        &mut self,
        mut spool: Option<SpoolWriter>,
        length: u64,
    ) -> Result<Option<SpoolWriter>, Interrupted> {
        let mut remaining = length;
        while remaining > 0 {
            self.conn.read_more().await?;
            let buffered = self.conn.buffered();
            let take = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(buffered.len());
            if let Some(writer) = &mut spool
                && writer.write(&buffered[..take]).await.is_err()
            {
                spool = None;
            }
            self.conn.consume(take);
            remaining -= take as u64;
        }
        Ok(spool)
    }

    /// Reads and drops the rest of a refused command (its later LITERAL+ literals too).
    async fn discard_rest_of_command(&mut self) -> Result<(), Interrupted> {
        loop {
            let line = match self.read_line(IMAP_COMMAND_LINE).await? {
                Line::Complete(line) => line,
                Line::TooLong { tail, .. } => tail,
            };
            match literal_at_end(&line) {
                Some(marker) if marker.non_sync => self.skip(marker.length).await?,
                _ => return Ok(()),
            }
        }
    }
}
