//! APPEND (RFC 9051 §6.3.12, RFC 7888 LITERAL+, RFC 4315 APPENDUID): the message literal is
//! checked (size, target) before the client is told to send it, then streamed into a spool
//! file and stored through the group-commit writer; OK only after the commit is durable.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{RawLine, Session};
use crate::imap::proto::AppendPrefix;
use crate::imap::proto::framing::{LiteralMarker, literal_at_end};
use crate::limits::IMAP_COMMAND_LINE;
use crate::net::Interrupted;
use crate::store::{SpoolWriter, now_unix};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn append(
        &mut self,
        prefix: AppendPrefix,
        literal: LiteralMarker,
    ) -> Result<(), Interrupted> {
        let tag = prefix.tag.clone();
        let refusal = self.append_refusal(&prefix, literal).await;
        if let Some((status, text)) = refusal {
            if literal.non_sync {
                self.skip(literal.length).await?;
                self.discard_rest_of_command().await?;
            }
            if status == "BAD" {
                self.bad(Some(&tag), text);
            } else {
                self.tagged(&tag, status, text);
            }
            return Ok(());
        }
        let spool = self.ctx.store.spool().await;
        if !literal.non_sync {
            self.conn.write(b"+ Ready for literal data\r\n").await?;
            self.conn.flush().await?;
        }
        let spooled = self.receive_literal(spool.ok(), literal.length).await?;
        // MULTIAPPEND is not offered: the command must end after the message.
        let rest_ok = match self.read_raw_line(IMAP_COMMAND_LINE).await? {
            RawLine::Complete(line) if line.is_empty() => true,
            RawLine::Complete(line) => {
                if let Some(marker) = literal_at_end(&line).filter(|m| m.non_sync) {
                    self.skip(marker.length).await?;
                    self.discard_rest_of_command().await?;
                }
                false
            }
            RawLine::TooLong { .. } => false,
        };
        if !rest_ok {
            self.bad(Some(&tag), "One message per APPEND");
            return Ok(());
        }
        let Some(writer) = spooled else {
            self.no(
                &tag,
                "[UNAVAILABLE] Cannot store the message now, try again later",
            );
            return Ok(());
        };
        let spool = match writer.finish().await {
            Ok(spool) => spool,
            Err(e) => {
                self.store_no(&tag, &e);
                return Ok(());
            }
        };
        let account = self.account().to_string();
        let bits = self.resolve_flags(&prefix.flags).await?;
        let date = prefix.date.unwrap_or_else(now_unix);
        match self
            .ctx
            .store
            .append(spool, &account, &prefix.mailbox, bits, date)
            .await
        {
            Ok((validity, uid)) => {
                if self
                    .selected
                    .as_ref()
                    .is_some_and(|s| s.name == prefix.mailbox)
                {
                    self.sync(true).await?;
                }
                self.ok(
                    &tag,
                    &format!("[APPENDUID {validity} {uid}] APPEND completed"),
                );
            }
            Err(e) => self.store_no(&tag, &e),
        }
        Ok(())
    }

    /// Why an APPEND cannot take its message, before the literal is read.
    async fn append_refusal(
        &mut self,
        prefix: &AppendPrefix,
        literal: LiteralMarker,
    ) -> Option<(&'static str, &'static str)> {
        let Some(account) = self.account.clone() else {
            return Some(("BAD", "Log in first"));
        };
        if literal.length > self.ctx.config.limits.max_message_size.0 {
            return Some(("NO", "[TOOBIG] Message too large"));
        }
        match self
            .ctx
            .store
            .mailbox_state(&account, &prefix.mailbox)
            .await
        {
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
            let line = match self.read_raw_line(IMAP_COMMAND_LINE).await? {
                RawLine::Complete(line) => line,
                RawLine::TooLong { tail, .. } => tail,
            };
            match literal_at_end(&line) {
                Some(marker) if marker.non_sync => self.skip(marker.length).await?,
                _ => return Ok(()),
            }
        }
    }
}
