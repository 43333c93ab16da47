//! HELO/EHLO, MAIL and RCPT: who the client is, who sends and to whom, each checked by the
//! inbound filters of its phase on port 25.

use std::collections::BTreeSet;

use tokio::io::{AsyncRead, AsyncWrite};

use super::*;
use crate::smtp::proto::{Body, MailParams};
use crate::store::Recipient;

/// The reverse-path as the filters see it: empty for a bounce.
fn reverse_path(from: &Option<Address>) -> String {
    from.as_ref().map(ToString::to_string).unwrap_or_default()
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn hello(&mut self, domain: String, esmtp: bool) -> Reply {
        // RFC 5321 §4.1.4: EHLO/HELO resets any transaction.
        self.transaction = None;
        self.helo = Some(domain);
        self.esmtp = esmtp;
        if let Some(filters) = self.ctx.filters.clone() {
            // A second EHLO replaces what the first one's name scored.
            let mut tally = self.connect_tally.clone();
            let refused = filters
                .run(&Phase::Helo, &self.facts(None), &mut tally)
                .await;
            self.tally = tally;
            if let Some((_, reply)) = refused {
                self.count(SpamEvent::Refused);
                self.helo = None;
                return reply;
            }
        }
        let hostname = &self.ctx.config.hostname;
        if !esmtp {
            return Reply::plain(250, hostname.clone());
        }
        let mut lines = vec![
            format!("{hostname} greets {}", self.peer.ip()),
            "PIPELINING".into(),
            format!("SIZE {}", self.ctx.config.limits.max_message_size.0),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
            "CHUNKING".into(),
        ];
        if self.ctx.tls.is_some() && !self.conn.is_tls() {
            lines.push("STARTTLS".into());
        }
        // RFC 4954 §4: mechanisms that send passwords in the clear only over TLS.
        if self.ctx.role == Role::Submission && self.conn.is_tls() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        Reply::multiline(250, lines)
    }

    pub(super) async fn mail(&mut self, from: Option<Address>, params: MailParams) -> Reply {
        if self.helo.is_none() {
            return Reply::new(503, "5.5.1", "Send EHLO first");
        }
        if self.transaction.is_some() {
            return Reply::new(503, "5.5.1", "Nested MAIL command");
        }
        if self.ctx.role == Role::Submission {
            let Some(user) = &self.user else {
                return Reply::new(530, "5.7.0", "Authentication required");
            };
            let Some(address) = &from else {
                return Reply::new(553, "5.7.1", "Sender address not allowed");
            };
            match submission::may_send_as(&self.ctx.store, user, &address.to_string()).await {
                Ok(true) => {}
                Ok(false) => {
                    return Reply::new(553, "5.7.1", format!("You may not send as <{address}>"));
                }
                Err(error) => {
                    tracing::error!(%error, "sender lookup failed");
                    return Reply::new(451, "4.3.0", "Temporary failure, try again later");
                }
            }
        }
        if !self.esmtp && (params.size.is_some() || params.body.is_some() || params.smtputf8) {
            return Reply::new(555, "5.5.4", "MAIL parameters need EHLO");
        }
        let max = self.ctx.config.limits.max_message_size.0;
        if params.size.is_some_and(|size| size > max) {
            return Reply::new(
                552,
                "5.3.4",
                format!("Message size exceeds fixed maximum message size of {max} bytes"),
            );
        }
        // RFC 1870 §6.2: a declared size that would not fit now is a temporary failure.
        if let Some(size) = params.size {
            let reserve = self.ctx.config.limits.min_free_space.0;
            match self.ctx.store.has_room(size, reserve).await {
                Ok(true) => {}
                Ok(false) => return Reply::new(452, "4.3.1", "Insufficient system storage"),
                Err(error) => return store_error_reply(&error),
            }
        }
        if params.body == Some(Body::BinaryMime) {
            return Reply::new(555, "5.5.4", "BINARYMIME is not supported");
        }
        if let Some(address) = &from
            && !params.smtputf8
            && !is_ascii(address)
        {
            return Reply::new(553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
        }
        let mut tally = self.tally.clone();
        if let Some(filters) = self.ctx.filters.clone() {
            let facts = self.facts(Some(reverse_path(&from)));
            if let Some((_, reply)) = filters.run(&Phase::Mail, &facts, &mut tally).await {
                self.count(SpamEvent::Refused);
                return reply;
            }
        }
        self.transaction = Some(Transaction {
            reverse_path: from,
            smtputf8: params.smtputf8,
            recipients: Vec::new(),
            declared_size: params.size,
            accounts: BTreeSet::new(),
            chunked: None,
            remote: Vec::new(),
            tally,
        });
        Reply::new(250, "2.1.0", "Sender OK")
    }

    pub(super) async fn rcpt(&mut self, to: Address) -> Reply {
        let Some(transaction) = &self.transaction else {
            return Reply::new(503, "5.5.1", "Need MAIL before RCPT");
        };
        if transaction.recipients.len() >= self.ctx.config.limits.max_recipients {
            return Reply::new(452, "4.5.3", "Too many recipients");
        }
        if !transaction.smtputf8 && !is_ascii(&to) {
            return Reply::new(553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
        }
        let config = &self.ctx.config;
        // RFC 5321 §4.1.1.3: <Postmaster> without a domain is the postmaster of this host.
        let domain = if to.domain.is_empty() && to.is_postmaster() {
            config.domains.first().cloned().unwrap_or_default()
        } else {
            to.domain.clone()
        };
        if !config.is_local_domain(&domain) {
            if self.ctx.role == Role::Submission && self.user.is_some() {
                if to.domain.is_empty() || to.is_address_literal() {
                    return Reply::new(553, "5.1.3", "Recipient needs a domain name");
                }
                if let Some(transaction) = &mut self.transaction {
                    transaction.remote.push(to.to_string());
                    transaction.recipients.push(to);
                }
                return Reply::new(250, "2.1.5", "Recipient OK");
            }
            // Never an open relay: mail for other domains is refused here, whatever the
            // local part says (`%`, `!` and quoted `@` are never interpreted).
            return Reply::new(550, "5.7.1", "Relaying denied");
        }
        let address = format!("{}@{}", to.local, domain);
        let declared = self.transaction.as_ref().and_then(|t| t.declared_size);
        let found = self
            .ctx
            .store
            .recipient_with_room(&address, declared.unwrap_or(0))
            .await;
        let accounts = match found {
            Ok(Some(Recipient::Account(account))) => vec![account],
            Ok(Some(Recipient::Alias(targets))) => targets,
            Ok(None) => return Reply::new(550, "5.1.1", "No such user here"),
            Err(error @ StoreError::OverQuota { .. }) => return store_error_reply(&error),
            Err(error) => {
                tracing::error!(%error, "recipient lookup failed");
                return Reply::new(451, "4.3.0", "Temporary failure, try again later");
            }
        };
        if let Some(refusal) = self.filter_recipient(&address).await {
            return refusal;
        }
        if let Some(transaction) = &mut self.transaction {
            transaction.recipients.push(to);
            transaction.accounts.extend(accounts);
        }
        Reply::new(250, "2.1.5", "Recipient OK")
    }

    /// The RCPT filters (rate limits, greylisting) for a local recipient; a refusal, if any.
    async fn filter_recipient(&mut self, address: &str) -> Option<Reply> {
        let filters = self.ctx.filters.clone()?;
        let transaction = self.transaction.as_mut()?;
        let facts = Facts {
            ip: self.peer.ip(),
            helo: self.helo.clone(),
            mail_from: Some(reverse_path(&transaction.reverse_path)),
            trusted: false,
        };
        let phase = Phase::Rcpt(address.to_string());
        let (step, reply) = filters.run(&phase, &facts, &mut transaction.tally).await?;
        let event = match step {
            "greylist" => SpamEvent::Greylisted,
            _ => SpamEvent::Refused,
        };
        self.count(event);
        tracing::info!(peer = %self.peer, step, code = reply.code, "smtp recipient refused");
        Some(reply)
    }

    pub(super) fn transaction_ready(&self) -> Result<(), Reply> {
        match &self.transaction {
            None => Err(Reply::new(503, "5.5.1", "Need MAIL command")),
            Some(t) if t.recipients.is_empty() => {
                Err(Reply::new(554, "5.5.1", "No valid recipients"))
            }
            Some(_) => Ok(()),
        }
    }

    /// The trace headers put in front of the message (RFC 5321 §4.4).
    pub(super) fn trace_headers(&self, transaction: &Transaction) -> String {
        let config = &self.ctx.config;
        // RFC 3848: ESMTPA / ESMTPSA for authenticated sessions.
        let protocol = match (self.esmtp, self.conn.is_tls(), self.user.is_some()) {
            (false, _, _) => "SMTP",
            (true, false, false) => "ESMTP",
            (true, true, false) => "ESMTPS",
            (true, false, true) => "ESMTPA",
            (true, true, true) => "ESMTPSA",
        };
        let protocol = if transaction.smtputf8 {
            protocol.replacen("SMTP", "UTF8SMTP", 1)
        } else {
            protocol.to_string()
        };
        let reverse_path = transaction
            .reverse_path
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let helo = self.helo.as_deref().unwrap_or("unknown");
        let recipient = match transaction.recipients.as_slice() {
            [only] => format!("\r\n\tfor <{only}>"),
            _ => String::new(),
        };
        let date = mail_parser::DateTime::from_timestamp(now_unix()).to_rfc822();
        if self.ctx.role == Role::Submission {
            // Return-Path is for final delivery; an outgoing message does not carry one.
            return format!(
                "Received: from {helo} ([{ip}])\r\n\tby {host} (Letterbox) with {protocol} id {id}{recipient};\r\n\t{date}\r\n",
                ip = self.peer.ip(),
                host = config.hostname,
                id = self.id,
            );
        }
        format!(
            "Return-Path: <{reverse_path}>\r\nReceived: from {helo} ([{ip}])\r\n\tby {host} (Letterbox) with {protocol} id {id}{recipient};\r\n\t{date}\r\n",
            ip = self.peer.ip(),
            host = config.hostname,
            id = self.id,
        )
    }
}
