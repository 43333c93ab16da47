//! The end of a message received on port 25: the end-of-data filters read a bounded view of
//! it, the score decides (INBOX, the Junk folder, or 550 5.7.1), and the filters' header
//! fields go on top in the one rewrite of the spool file.

use tokio::io::{AsyncRead, AsyncWrite};

use super::*;
use crate::smtp::filter::rewrite::rewrite;
use crate::smtp::filter::{Judgement, MessageView};
use crate::store::{INBOX, JUNK, SpoolFile};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Filters and stores a received message; the reply to give instead of 250, if any.
    pub(super) async fn receive(
        &mut self,
        mut transaction: Transaction,
        message: SpoolFile,
    ) -> Result<(), Reply> {
        let failed = |error: StoreError| {
            tracing::error!(%error, "delivery failed");
            store_error_reply(&error)
        };
        let store = self.ctx.store.clone();
        let accounts: Vec<String> = transaction.accounts.iter().cloned().collect();
        let Some(filters) = self.ctx.filters.clone() else {
            return store
                .deliver(message, accounts, now_unix())
                .await
                .map_err(failed);
        };
        let limit = self.ctx.config.limits.filter_data_view.0;
        let view = MessageView {
            head: message.head(limit).await.map_err(failed)?,
            spool: message.clone(),
        };
        let mail_from = transaction
            .reverse_path
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let facts = self.facts(Some(mail_from));
        let phase = Phase::Data(Arc::new(view));
        let tally = &mut transaction.tally;
        if let Some((step, reply)) = filters.run(&phase, &facts, tally).await {
            self.count(SpamEvent::Refused);
            tracing::info!(peer = %self.peer, step, code = reply.code, "smtp message refused");
            return Err(reply);
        }
        // The filters' view holds the received spool file: let it go before the delivery,
        // or the store's writer would wait for it as for a message still arriving.
        drop(phase);
        let judgement = filters.thresholds.judge(tally.points);
        if judgement == Judgement::Reject {
            self.count(SpamEvent::Refused);
            tracing::info!(peer = %self.peer, score = tally.points, "smtp message refused as spam");
            return Err(Reply::new(
                550,
                "5.7.1",
                format!("Message refused as spam (score {:.1})", tally.points),
            ));
        }
        let mut headers = tally.headers.concat();
        if !tally.reasons.is_empty() {
            headers.push_str(&tally.status_header(&filters.thresholds));
        }
        let message = if headers.is_empty() {
            message
        } else {
            rewrite(&store, &self.ctx.config.hostname, &headers, message)
                .await
                .map_err(failed)?
        };
        let mailbox = match judgement {
            Judgement::Junk => {
                // "Create if missing": a person may have deleted their Junk folder.
                for account in &accounts {
                    store
                        .ensure_default_mailboxes(account)
                        .await
                        .map_err(failed)?;
                }
                JUNK
            }
            Judgement::Inbox | Judgement::Reject => INBOX,
        };
        store
            .deliver_to(message, accounts, mailbox, now_unix())
            .await
            .map_err(failed)?;
        if mailbox == JUNK {
            self.count(SpamEvent::Junk);
            tracing::info!(peer = %self.peer, score = tally.points, "smtp message delivered to Junk");
        }
        Ok(())
    }
}
