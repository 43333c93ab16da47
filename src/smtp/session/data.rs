//! DATA and BDAT (RFC 5321 §4.1.1.4, RFC 3030): the message streams through the sans-I/O
//! receivers into a spool file; at its end it is checked and stored, and only then does the
//! client hear 250.

use tokio::io::{AsyncRead, AsyncWrite};

use super::*;
use crate::limits::SMTP_TEXT_LINE;
use crate::smtp::proto::{DataError, DataReceiver};
use crate::status::Storage;

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// The longest text line taken: larger on the MX for newsletters that send longer lines,
    /// RFC 5321's 1000 on submission (see `Limits::smtp_mx_text_line`).
    fn text_line(&self) -> usize {
        match self.ctx.role {
            Role::Mx => {
                usize::try_from(self.ctx.config.limits.smtp_mx_text_line.0).unwrap_or(usize::MAX)
            }
            Role::Submission => SMTP_TEXT_LINE,
        }
    }

    pub(super) async fn data(&mut self) -> Result<Reply, Interrupted> {
        if self
            .transaction
            .as_ref()
            .is_some_and(|t| t.chunked.is_some())
        {
            return Ok(Reply::new(503, "5.5.1", "DATA cannot follow BDAT"));
        }
        if let Err(reply) = self.transaction_ready() {
            return Ok(reply);
        }
        let Some(transaction) = self.transaction.take() else {
            return Ok(Reply::new(503, "5.5.1", "Need MAIL command"));
        };
        let mut spool = match self.start_spool(&transaction).await {
            Ok(spool) => Some(spool),
            Err(error) => {
                tracing::error!(%error, "cannot spool message");
                None
            }
        };
        self.reply(&Reply::plain(
            354,
            "Start mail input; end with <CRLF>.<CRLF>",
        ))
        .await?;
        let limits = &self.ctx.config.limits;
        let mut receiver = DataReceiver::new(limits.max_message_size.0, self.text_line());
        let mut chunk = Vec::with_capacity(crate::limits::BODY_CHUNK);
        // A minimum rate, not a timer per byte (issue #16 defect 3): see DATA_MIN_RATE.
        let max = limits.max_message_size.0;
        let started = tokio::time::Instant::now();
        let mut received = 0u64;
        loop {
            let by = crate::limits::transfer_deadline(started, received, max);
            self.conn.read_more_by(Some(by)).await?;
            let (consumed, finished) = receiver.ingest(self.conn.buffered(), &mut chunk);
            self.conn.consume(consumed);
            received += consumed as u64;
            if let Some(writer) = &mut spool
                && !chunk.is_empty()
                && writer.write(&chunk).await.is_err()
            {
                spool = None;
            }
            chunk.clear();
            if finished {
                break;
            }
        }
        let checked = receiver.finish();
        Ok(self.complete(transaction, spool, checked).await)
    }

    pub(super) async fn bdat(&mut self, size: u64, last: bool) -> Result<Reply, Interrupted> {
        // The chunk is read in full whatever happens, so the next command is found.
        let usable = self.transaction_ready().err();
        let mut transaction = match usable {
            Some(_) => None,
            None => self.transaction.take(),
        };
        if let Some(t) = &mut transaction
            && t.chunked.is_none()
        {
            let limits = &self.ctx.config.limits;
            let checker = MessageChecker::new(limits.max_message_size.0, self.text_line());
            match self.start_spool(t).await {
                Ok(spool) => t.chunked = Some((spool, checker)),
                Err(error) => {
                    tracing::error!(%error, "cannot spool message");
                    self.skip(size).await?;
                    return Ok(store_error_reply(&error));
                }
            }
        }
        let mut remaining = size;
        let mut write_failed = None;
        let max = self.ctx.config.limits.max_message_size.0;
        let started = tokio::time::Instant::now();
        while remaining > 0 {
            let by = crate::limits::transfer_deadline(started, size - remaining, max);
            self.conn.read_more_by(Some(by)).await?;
            let buffered = self.conn.buffered();
            let take = buffered
                .len()
                .min(usize::try_from(remaining).unwrap_or(usize::MAX));
            if let Some((spool, checker)) = transaction.as_mut().and_then(|t| t.chunked.as_mut()) {
                let bytes = &buffered[..take];
                checker.feed(bytes);
                if checker.error().is_none()
                    && write_failed.is_none()
                    && let Err(error) = spool.write(bytes).await
                {
                    write_failed = Some(error);
                }
            }
            self.conn.consume(take);
            remaining -= take as u64;
        }
        let Some(mut transaction) = transaction else {
            return Ok(usable.unwrap_or_else(|| Reply::new(503, "5.5.1", "Need MAIL command")));
        };
        if let Some(error) = write_failed {
            return Ok(store_error_reply(&error));
        }
        let Some((spool, checker)) = transaction.chunked.take() else {
            return Ok(Reply::new(503, "5.5.1", "Need MAIL command"));
        };
        if let Some(error) = checker.error() {
            // The transaction is over: later chunks get 503 until a new MAIL.
            return Ok(error.reply());
        }
        if !last {
            let received = checker.size();
            transaction.chunked = Some((spool, checker));
            self.transaction = Some(transaction);
            return Ok(Reply::new(
                250,
                "2.0.0",
                format!("{size} octets received, {received} in total"),
            ));
        }
        let checked = checker.finish();
        Ok(self.complete(transaction, Some(spool), checked).await)
    }

    async fn skip(&mut self, mut remaining: u64) -> Result<(), Interrupted> {
        while remaining > 0 {
            self.conn.read_more().await?;
            let take = self
                .conn
                .buffered()
                .len()
                .min(usize::try_from(remaining).unwrap_or(usize::MAX));
            self.conn.consume(take);
            remaining -= take as u64;
        }
        Ok(())
    }

    pub(super) async fn start_spool(
        &self,
        transaction: &Transaction,
    ) -> Result<SpoolWriter, StoreError> {
        let mut spool = self.ctx.store.spool().await?;
        // Submission writes its trace headers when it rewrites the message (`submit`).
        if self.ctx.role == Role::Mx {
            spool
                .write(self.trace_headers(transaction).as_bytes())
                .await?;
        }
        Ok(spool)
    }

    /// End of a message: checks, stores durably, and only then says 250.
    pub(super) async fn complete(
        &mut self,
        transaction: Transaction,
        spool: Option<SpoolWriter>,
        checked: Result<u64, DataError>,
    ) -> Reply {
        if let Err(error) = checked {
            return error.reply();
        }
        let Some(spool) = spool else {
            return Reply::new(452, "4.3.1", "Insufficient system storage");
        };
        // A submission finishes its spool file on the blocking pool with the rest of its file
        // work (one trip there, not two).
        if self.ctx.role == Role::Submission {
            return match self.submit(&transaction, spool).await {
                Ok(()) => self.delivered_reply(),
                Err(reply) => reply,
            };
        }
        let stored = match spool.finish().await {
            Ok(message) => {
                if let Err(reply) = self.receive(transaction, message).await {
                    return reply;
                }
                Ok(())
            }
            Err(error) => Err(error),
        };
        match stored {
            Ok(()) => self.delivered_reply(),
            Err(error) => {
                tracing::error!(%error, "delivery failed");
                store_error_reply(&error)
            }
        }
    }

    /// A message is stored (and queued): counted, published, and 250.
    fn delivered_reply(&mut self) -> Reply {
        self.delivered += 1;
        let data_dir = self.ctx.config.data_dir.clone();
        self.ctx.status.send_modify(|status| {
            status.last_delivery = Some(now_unix());
            status.storage = Storage::of(&data_dir);
        });
        Reply::new(
            250,
            "2.0.0",
            format!("OK queued as {}-{}", self.id, self.delivered),
        )
    }
}
