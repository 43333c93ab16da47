//! The SMTP session: a state machine over a `Connection` and the store. It decides what each
//! command means for this peer (RFC 5321 sequencing, relay rules, limits) and streams message
//! data through the sans-I/O receivers into a spool file and then into the store.
//!
//! Roles: `Mx` (port 25) accepts mail for local recipients only and never relays, and has no
//! AUTH. `Submission` (587 with STARTTLS, 465 with implicit TLS) requires AUTH over TLS and
//! then accepts any recipient: local ones are delivered at once, remote ones are queued for
//! the outbound worker (see `submission`).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::proto::command::MAX_AUTH_LINE;
use super::proto::{
    Address, Body, Command, DataError, DataReceiver, MessageChecker, Reply, parse_command,
};
use super::submission::{self, SaslError};
use crate::auth::{AuthError, Authenticator};
use crate::config::Config;
use crate::limits::{SMTP_COMMAND_LINE, SMTP_TEXT_LINE};
use crate::net::{Connection, Interrupted, Line, Stream};
use crate::secret::Secret;
use crate::status::{Status, Storage};
use crate::store::{Recipient, SpoolFile, SpoolWriter, Store, StoreError, now_unix};

mod submit;

/// Errors in one session after which the peer is disconnected (a confused or hostile client).
const MAX_ERRORS: u32 = 20;

/// Which port a session serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Port 25: mail for local recipients from anyone; no AUTH, no relaying.
    Mx,
    /// Ports 587/465: authenticated users sending anywhere.
    Submission,
}

/// What a listener hands each SMTP session.
#[derive(Clone)]
pub struct SmtpContext {
    pub config: Arc<Config>,
    pub store: Store,
    pub tls: Option<TlsAcceptor>,
    pub status: watch::Sender<Status>,
    pub role: Role,
    /// Checks passwords (submission only).
    pub auth: Option<Authenticator>,
    /// Signs submitted mail for remote recipients.
    pub dkim: Option<Arc<crate::outbound::dkim::Dkim>>,
    /// Checks SPF/DKIM/DMARC of mail received on port 25.
    pub inbound_auth: Option<Arc<super::verify::InboundAuth>>,
}

struct Transaction {
    reverse_path: Option<Address>,
    smtputf8: bool,
    /// Accepted recipients, as given.
    recipients: Vec<Address>,
    /// The accounts they deliver to, each once.
    accounts: BTreeSet<String>,
    /// Set by the first BDAT: the message so far.
    chunked: Option<(SpoolWriter, MessageChecker)>,
    /// Submission: recipients in other domains, as `local@domain`, for the outbound queue.
    remote: Vec<String>,
}

struct Session<S> {
    ctx: SmtpContext,
    conn: Connection<S>,
    peer: SocketAddr,
    helo: Option<String>,
    esmtp: bool,
    /// The authenticated account (submission).
    user: Option<String>,
    transaction: Option<Transaction>,
    errors: u32,
    delivered: u64,
    id: String,
}

/// What a command leads to.
enum Outcome {
    Reply(Reply),
    /// Reply, then close.
    Quit(Reply),
    /// Nothing to send (after STARTTLS the client speaks first).
    Silent,
}

/// Runs one SMTP session to its end. Never fails: every problem becomes a reply or a close.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: SmtpContext,
    stream: Stream<S>,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    let idle = ctx.config.limits.smtp_idle();
    let id = format!("{:x}{:04x}", now_unix(), rand_u16(&peer));
    let mut session = Session {
        conn: Connection::new(stream, idle, shutdown),
        ctx,
        peer,
        helo: None,
        esmtp: false,
        user: None,
        transaction: None,
        errors: 0,
        delivered: 0,
        id,
    };
    if session.ctx.role == Role::Submission {
        // Login within a total time, not per byte (issue #16 defect 3); cleared at login.
        let preauth = session.ctx.config.limits.preauth_total();
        session.conn.set_deadline(Some(preauth));
    }
    let greeting = Reply::plain(
        220,
        format!("{} ESMTP Letterbox", session.ctx.config.hostname),
    );
    let ended = match session.reply(&greeting).await {
        Ok(()) => session.run().await,
        Err(e) => Err(e),
    };
    let farewell = match ended {
        Ok(()) | Err(Interrupted::Closed) => None,
        Err(Interrupted::IdleTimeout) => Some(Reply::new(
            421,
            "4.4.2",
            format!(
                "{} Idle timeout, closing connection",
                session.ctx.config.hostname
            ),
        )),
        Err(Interrupted::Shutdown) => Some(Reply::new(
            421,
            "4.3.2",
            format!("{} Service shutting down", session.ctx.config.hostname),
        )),
    };
    if let Some(farewell) = farewell {
        let _ = session.reply(&farewell).await;
    }
    session.conn.close().await;
    tracing::debug!(peer = %session.peer, delivered = session.delivered, "smtp session ended");
}

/// A little per-session variety for ids; not security relevant.
fn rand_u16(peer: &SocketAddr) -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos as u16) ^ peer.port()
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    async fn reply(&mut self, reply: &Reply) -> Result<(), Interrupted> {
        reply.encode(self.conn.output());
        self.conn.write(&[]).await
    }

    async fn run(&mut self) -> Result<(), Interrupted> {
        loop {
            // The core checks each command's own limit; AUTH lines may be long (RFC 4954 §4).
            let max = match self.ctx.role {
                Role::Mx => SMTP_COMMAND_LINE,
                Role::Submission => MAX_AUTH_LINE,
            };
            let line = self.conn.read_line(max).await?;
            let reply = match line {
                Line::TooLong => Reply::new(500, "5.5.2", "Line too long"),
                Line::Complete(line) => match parse_command(&line) {
                    Err(syntax) => Reply::from(syntax),
                    Ok(command) => match self.command(command).await? {
                        Outcome::Quit(reply) => {
                            self.reply(&reply).await?;
                            return Ok(());
                        }
                        Outcome::Silent => continue,
                        Outcome::Reply(reply) => reply,
                    },
                },
            };
            let reply = match reply {
                reply if reply.code < 400 => reply,
                reply => {
                    self.errors += 1;
                    if self.errors >= MAX_ERRORS {
                        self.reply(&reply).await?;
                        let bye = Reply::new(421, "4.7.0", "Too many errors, closing connection");
                        self.reply(&bye).await?;
                        return Ok(());
                    }
                    reply
                }
            };
            self.reply(&reply).await?;
        }
    }

    async fn command(&mut self, command: Command) -> Result<Outcome, Interrupted> {
        let reply = match command {
            Command::Ehlo { domain } => self.hello(domain, true),
            Command::Helo { domain } => self.hello(domain, false),
            Command::Mail { from, params } => self.mail(from, params).await,
            Command::Rcpt { to } => self.rcpt(to).await,
            Command::Data => self.data().await?,
            Command::Bdat { size, last } => self.bdat(size, last).await?,
            Command::Rset => {
                self.transaction = None;
                Reply::new(250, "2.0.0", "Reset")
            }
            Command::Noop => Reply::new(250, "2.0.0", "OK"),
            Command::Quit => {
                let bye = Reply::new(
                    221,
                    "2.0.0",
                    format!("{} closing connection", self.ctx.config.hostname),
                );
                return Ok(Outcome::Quit(bye));
            }
            Command::Vrfy(_) => Reply::new(
                252,
                "2.5.0",
                "Cannot VRFY user, but will accept message and attempt delivery",
            ),
            Command::Expn(_) => Reply::new(502, "5.5.1", "EXPN not available"),
            Command::Help(_) => Reply::new(
                214,
                "2.0.0",
                "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY STARTTLS HELP",
            ),
            Command::StartTls => return self.start_tls().await,
            Command::Auth {
                mechanism,
                initial_response,
            } => self.auth(&mechanism, initial_response).await?,
        };
        Ok(Outcome::Reply(reply))
    }

    fn hello(&mut self, domain: String, esmtp: bool) -> Reply {
        // RFC 5321 §4.1.4: EHLO/HELO resets any transaction.
        self.transaction = None;
        self.helo = Some(domain);
        self.esmtp = esmtp;
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

    async fn mail(&mut self, from: Option<Address>, params: super::proto::MailParams) -> Reply {
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
        self.transaction = Some(Transaction {
            reverse_path: from,
            smtputf8: params.smtputf8,
            recipients: Vec::new(),
            accounts: BTreeSet::new(),
            chunked: None,
            remote: Vec::new(),
        });
        Reply::new(250, "2.1.0", "Sender OK")
    }

    async fn rcpt(&mut self, to: Address) -> Reply {
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
        let accounts = match self.ctx.store.recipient(&address).await {
            Ok(Some(Recipient::Account(account))) => vec![account],
            Ok(Some(Recipient::Alias(targets))) => targets,
            Ok(None) => return Reply::new(550, "5.1.1", "No such user here"),
            Err(error) => {
                tracing::error!(%error, "recipient lookup failed");
                return Reply::new(451, "4.3.0", "Temporary failure, try again later");
            }
        };
        if let Some(transaction) = &mut self.transaction {
            transaction.recipients.push(to);
            transaction.accounts.extend(accounts);
        }
        Reply::new(250, "2.1.5", "Recipient OK")
    }

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

    fn transaction_ready(&self) -> Result<(), Reply> {
        match &self.transaction {
            None => Err(Reply::new(503, "5.5.1", "Need MAIL command")),
            Some(t) if t.recipients.is_empty() => {
                Err(Reply::new(554, "5.5.1", "No valid recipients"))
            }
            Some(_) => Ok(()),
        }
    }

    /// The trace headers put in front of the message (RFC 5321 §4.4).
    fn trace_headers(&self, transaction: &Transaction) -> String {
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

    async fn data(&mut self) -> Result<Reply, Interrupted> {
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

    async fn bdat(&mut self, size: u64, last: bool) -> Result<Reply, Interrupted> {
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

    async fn start_spool(&self, transaction: &Transaction) -> Result<SpoolWriter, StoreError> {
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
    async fn complete(
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
        let stored = match spool.finish().await {
            Ok(message) if self.ctx.role == Role::Submission => {
                if let Err(reply) = self.submit(&transaction, message).await {
                    return reply;
                }
                Ok(())
            }
            Ok(message) => {
                let message = match self.authenticate(&transaction, message).await {
                    Ok(message) => message,
                    Err(reply) => return reply,
                };
                let accounts: Vec<String> = transaction.accounts.into_iter().collect();
                self.ctx.store.deliver(message, accounts, now_unix()).await
            }
            Err(error) => Err(error),
        };
        match stored {
            Ok(()) => {
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
            Err(error) => {
                tracing::error!(%error, "delivery failed");
                store_error_reply(&error)
            }
        }
    }

    /// Port 25: records the SPF/DKIM/DMARC verdicts in an Authentication-Results header on
    /// top of the message, and refuses DMARC p=reject failures when configured to.
    async fn authenticate(
        &self,
        transaction: &Transaction,
        message: SpoolFile,
    ) -> Result<SpoolFile, Reply> {
        let Some(checker) = &self.ctx.inbound_auth else {
            return Ok(message);
        };
        let mail_from = transaction
            .reverse_path
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let envelope = super::verify::Envelope {
            ip: self.peer.ip(),
            helo: self.helo.as_deref().unwrap_or("unknown"),
            mail_from: &mail_from,
        };
        let verdict = checker
            .check(&envelope, &message)
            .await
            .map_err(|error| store_error_reply(&error))?;
        if verdict.dmarc_reject && self.ctx.config.auth.reject_dmarc_failures {
            return Err(Reply::new(
                550,
                "5.7.1",
                "Rejected by the sender domain's DMARC policy",
            ));
        }
        super::verify::stamp(
            &self.ctx.store,
            &self.ctx.config.hostname,
            &verdict,
            message,
        )
        .await
        .map_err(|error| store_error_reply(&error))
    }

    async fn start_tls(&mut self) -> Result<Outcome, Interrupted> {
        let Some(acceptor) = self.ctx.tls.clone() else {
            return Ok(Outcome::Reply(Reply::new(
                502,
                "5.5.1",
                "STARTTLS not available",
            )));
        };
        if self.conn.is_tls() {
            return Ok(Outcome::Reply(Reply::new(
                503,
                "5.5.1",
                "TLS already active",
            )));
        }
        self.reply(&Reply::new(220, "2.0.0", "Ready to start TLS"))
            .await?;
        self.conn.start_tls(&acceptor).await?;
        // RFC 3207 §4.2: forget everything learned before TLS.
        self.helo = None;
        self.esmtp = false;
        self.user = None;
        self.transaction = None;
        // The TLS session starts without a greeting; the client sends EHLO next.
        Ok(Outcome::Silent)
    }
}

fn is_ascii(address: &Address) -> bool {
    address.local.is_ascii() && address.domain.is_ascii()
}

fn store_error_reply(error: &StoreError) -> Reply {
    match error {
        StoreError::Full => Reply::new(452, "4.3.1", "Insufficient system storage"),
        _ => Reply::new(451, "4.3.0", "Local error in processing, try again later"),
    }
}
