//! The SMTP session: a state machine over a `Connection` and the store. It decides what each
//! command means for this peer (RFC 5321 sequencing, relay rules, limits) and streams message
//! data through the sans-I/O receivers into a spool file and then into the store.
//!
//! By phase: this file greets (after the connect-time filters) and dispatches commands;
//! `envelope` is HELO, MAIL and RCPT; `data` is DATA and BDAT; `inbound` is the end of a
//! message received on port 25 (filters, the one rewrite, INBOX or Junk); `submit` is the
//! submission ports' AUTH and end of a message. On port 25 each phase asks the inbound
//! filters (`smtp::filter`) before it answers.
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

use super::filter::{Facts, Phase, Pipeline, Tally};
use super::proto::command::MAX_AUTH_LINE;
use super::proto::{Address, Command, MessageChecker, Reply, parse_command};
use super::submission::{self, SaslError};
use crate::auth::{AuthError, Authenticator};
use crate::config::Config;
use crate::limits::SMTP_COMMAND_LINE;
use crate::net::{Connection, Interrupted, Line, Stream};
use crate::secret::Secret;
use crate::status::{SpamEvent, Status};
use crate::store::{SpoolWriter, Store, StoreError, now_unix};

mod data;
mod envelope;
mod inbound;
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
    /// The inbound filters of port 25 (`None` on the submission ports).
    pub filters: Option<Arc<Pipeline>>,
}

struct Transaction {
    reverse_path: Option<Address>,
    smtputf8: bool,
    /// Accepted recipients, as given.
    recipients: Vec<Address>,
    /// RFC 1870 SIZE from MAIL, checked against each recipient's quota at RCPT.
    declared_size: Option<u64>,
    /// The accounts they deliver to, each once.
    accounts: BTreeSet<String>,
    /// Set by the first BDAT: the message so far.
    chunked: Option<(SpoolWriter, MessageChecker)>,
    /// Submission: recipients in other domains, as `local@domain`, for the outbound queue.
    remote: Vec<String>,
    /// The filters' findings: the session's, then this transaction's.
    tally: Tally,
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
    /// The filters' findings at connect, and with those of the last HELO.
    connect_tally: Tally,
    tally: Tally,
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
        connect_tally: Tally::default(),
        tally: Tally::default(),
        errors: 0,
        delivered: 0,
        id,
    };
    if session.ctx.role == Role::Submission {
        // Login within a total time, not per byte (issue #16 defect 3); cleared at login.
        let preauth = session.ctx.config.limits.preauth_total();
        session.conn.set_deadline(Some(preauth));
    }
    let ended = match session.connect().await {
        Ok(None) => {
            let greeting = Reply::plain(
                220,
                format!("{} ESMTP Letterbox", session.ctx.config.hostname),
            );
            match session.reply(&greeting).await {
                Ok(()) => session.run().await,
                Err(e) => Err(e),
            }
        }
        // RFC 5321 §3.1: a server that will not talk to this client says 554 (or 421)
        // instead of 220, and closes.
        Ok(Some(refusal)) => session.reply(&refusal).await,
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

    /// Port 25, before the banner: the connect-time filters and, meanwhile, the pregreet
    /// test (a client that sends before it has seen the 220 is a bot, not a mail server).
    /// A refusal to send instead of the banner, if any.
    async fn connect(&mut self) -> Result<Option<Reply>, Interrupted> {
        let Some(filters) = self.ctx.filters.clone() else {
            return Ok(None);
        };
        let wait = self.ctx.config.spam.pregreet_wait.duration();
        let facts = self.facts(None);
        let conn = &mut self.conn;
        let pregreet = async move {
            if wait.is_zero() {
                return Ok(false);
            }
            match tokio::time::timeout(wait, conn.read_more()).await {
                Err(_) => Ok(false),
                Ok(Ok(())) => Ok(true),
                Ok(Err(interrupted)) => Err(interrupted),
            }
        };
        let mut tally = Tally::default();
        let (talked, refused) =
            tokio::join!(pregreet, filters.run(&Phase::Connect, &facts, &mut tally));
        if talked? {
            self.count(SpamEvent::Refused);
            tracing::info!(peer = %self.peer, "smtp client talked before the greeting");
            return Ok(Some(Reply::new(
                554,
                "5.5.1",
                "Protocol error: you talked before the greeting",
            )));
        }
        if let Some((step, reply)) = refused {
            self.count(SpamEvent::Refused);
            tracing::info!(peer = %self.peer, step, code = reply.code, "smtp connection refused");
            return Ok(Some(reply));
        }
        self.connect_tally = tally.clone();
        self.tally = tally;
        Ok(None)
    }

    /// What the filters know of the client now.
    fn facts(&self, mail_from: Option<String>) -> Facts {
        Facts {
            ip: self.peer.ip(),
            helo: self.helo.clone(),
            mail_from,
            trusted: false,
        }
    }

    /// Counts what a filter did in today's status.
    fn count(&self, event: SpamEvent) {
        self.ctx
            .status
            .send_modify(|status| status.spam_today.count(event, now_unix()));
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
                    // In a box of its own, freed when the command ends: the
                    // session waits for its next line with a small future.
                    Ok(command) => match Box::pin(self.command(command)).await? {
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
            Command::Ehlo { domain } => self.hello(domain, true).await,
            Command::Helo { domain } => self.hello(domain, false).await,
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
        self.tally = self.connect_tally.clone();
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
        // RFC 3463 §3.3: X.2.2 "mailbox full"; temporary while deleting mail can make room.
        StoreError::OverQuota {
            larger_than_quota: false,
            ..
        } => Reply::new(452, "4.2.2", "Mailbox full, try again later"),
        StoreError::OverQuota { .. } => {
            Reply::new(552, "5.2.2", "Message larger than the mailbox's quota")
        }
        _ => Reply::new(451, "4.3.0", "Local error in processing, try again later"),
    }
}
