//! The POP3 session (RFC 1939): a state machine over a `Connection`, the store and the
//! authenticator. It decides what each command means in the current state; the grammar, the
//! reply lines and the body framing come from the sans-I/O core in [`super::proto`].
//!
//! States: AUTHORIZATION (CAPA, STLS, USER/PASS, AUTH PLAIN, QUIT) and, after a login that
//! took the account's maildrop lock, TRANSACTION over a snapshot of the INBOX taken once at
//! login. DELE only marks; the marked messages are removed at QUIT (the UPDATE state), in one
//! durable store transaction. A dropped connection, an idle timeout or a shutdown removes
//! nothing.
//!
//! References: RFC 1939 (POP3), RFC 2449 (CAPA, response codes), RFC 2595 (STLS),
//! RFC 3206 (`SYS/*`, `AUTH` codes), RFC 5034 (AUTH), RFC 4616 (PLAIN).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::maildrop::{Maildrop, MaildropLocks};
use super::proto::{self, Command, DotStuffer, TopFilter, decode_sasl_plain, parse_command};
use crate::auth::{AuthError, Authenticator};
use crate::config::Config;
use crate::limits::POP3_COMMAND_LINE;
use crate::net::{Connection, Interrupted, Line, Stream};
use crate::secret::Secret;
use crate::store::{INBOX, MessageInfo, Store};

/// Error replies in one session after which the peer is disconnected.
const MAX_ERRORS: u32 = 20;

/// RFC 5034 §4 leaves the length of a SASL response line open; a PLAIN response carries a
/// name and a password, so this is ample (base64 of ~1.5 KB) and still bounds the buffer.
const SASL_RESPONSE_LINE: usize = 2048;

/// What a listener hands each POP3 session.
#[derive(Clone)]
pub struct Pop3Context {
    pub config: Arc<Config>,
    pub store: Store,
    pub auth: Authenticator,
    pub tls: Option<TlsAcceptor>,
    pub locks: MaildropLocks,
}

enum State {
    Authorization {
        /// The name from USER, waiting for PASS.
        user: Option<String>,
    },
    Transaction(Maildrop),
}

/// What a command leads to; its reply is already in the output buffer.
enum Flow {
    Ok,
    /// A `-ERR` reply (counted towards `MAX_ERRORS`).
    Error,
    /// Logged in: enter TRANSACTION.
    LoggedIn(Maildrop),
    /// Close the connection after what has been written.
    End,
}

struct Session<S> {
    ctx: Pop3Context,
    conn: Connection<S>,
    peer: SocketAddr,
    shutdown: CancellationToken,
    errors: u32,
}

/// Runs one POP3 session to its end. Never fails: every problem becomes a reply or a close.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: Pop3Context,
    stream: Stream<S>,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    let idle = ctx.config.limits.preauth_idle();
    let mut session = Session {
        conn: Connection::new(stream, idle, shutdown.clone()),
        ctx,
        peer,
        shutdown,
        errors: 0,
    };
    // Login within a total time, not per byte (issue #16 defect 3); cleared at login.
    let preauth = session.ctx.config.limits.preauth_total();
    session.conn.set_deadline(Some(preauth));
    let greeting = format!("{} POP3 Letterbox ready", session.ctx.config.hostname);
    proto::ok(&greeting, session.conn.output());
    let ended = match session.conn.write(&[]).await {
        Ok(()) => session.run().await,
        Err(e) => Err(e),
    };
    // POP3 has no unsolicited reply; on shutdown this answers whatever the client sends next
    // (or is already in flight). A client cut for idling or for taking too long to log in is
    // told so, as Dovecot does, rather than finding a silent close (issue #16 defect 6).
    match ended {
        Err(Interrupted::Shutdown) => {
            proto::err(Some("SYS/TEMP"), "shutting down", session.conn.output());
        }
        Err(Interrupted::IdleTimeout) => {
            proto::err(None, "Disconnected for inactivity", session.conn.output());
        }
        _ => {}
    }
    session.conn.close().await;
    tracing::debug!(peer = %session.peer, ended = ?ended.err(), "pop3 session ended");
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    fn ok(&mut self, text: &str) -> Flow {
        proto::ok(text, self.conn.output());
        Flow::Ok
    }

    fn err(&mut self, code: Option<&str>, text: &str) -> Flow {
        proto::err(code, text, self.conn.output());
        Flow::Error
    }

    /// Writes one line of a multi-line reply, keeping the output buffer bounded.
    async fn line(&mut self, line: &str) -> Result<(), Interrupted> {
        let out = self.conn.output();
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
        self.conn.write(&[]).await
    }

    /// A password may be sent only over TLS, unless the operator allowed plaintext logins.
    fn login_allowed(&self) -> bool {
        self.conn.is_tls() || self.ctx.config.auth.allow_plaintext_login
    }

    /// The state lives here, not in `Session`, so that its maildrop lock is released when
    /// the session ends in any way.
    async fn run(&mut self) -> Result<(), Interrupted> {
        let mut state = State::Authorization { user: None };
        loop {
            let flow = match self.conn.read_line(POP3_COMMAND_LINE).await? {
                Line::TooLong => self.err(None, "line too long"),
                Line::Complete(line) => match parse_command(&line) {
                    Err(e) => self.err(None, &e.to_string()),
                    Ok(command) => match &mut state {
                        // Each command in a box of its own, freed when it ends: the session
                        // waits for its next line with a small future.
                        State::Authorization { user } => {
                            Box::pin(self.authorization(user, command)).await?
                        }
                        State::Transaction(maildrop) => {
                            Box::pin(self.transaction(maildrop, command)).await?
                        }
                    },
                },
            };
            self.conn.write(&[]).await?;
            match flow {
                Flow::Ok => {}
                Flow::Error => {
                    self.errors += 1;
                    if self.errors >= MAX_ERRORS {
                        tracing::debug!(peer = %self.peer, "pop3: too many errors");
                        return Ok(());
                    }
                }
                Flow::LoggedIn(maildrop) => {
                    state = State::Transaction(maildrop);
                    self.conn
                        .set_idle_timeout(self.ctx.config.limits.pop3_idle());
                    self.conn.set_deadline(None);
                }
                Flow::End => return Ok(()),
            }
        }
    }

    async fn authorization(
        &mut self,
        user: &mut Option<String>,
        command: Command,
    ) -> Result<Flow, Interrupted> {
        let flow = match command {
            Command::Capa => self.capa(true),
            Command::Quit => {
                let bye = format!("{} signing off", self.ctx.config.hostname);
                self.ok(&bye);
                Flow::End
            }
            Command::Stls => return self.stls(user).await,
            Command::User(_) | Command::Pass(_) | Command::Auth { .. } if !self.login_allowed() => {
                self.err(Some("AUTH"), "Login needs TLS: use STLS or port 995")
            }
            Command::User(name) => {
                *user = Some(name);
                self.ok("send PASS")
            }
            // RFC 1939 §7: a failed PASS returns to AUTHORIZATION; USER must come again.
            Command::Pass(password) => match user.take() {
                Some(name) => return self.login(&name, &password).await,
                None => self.err(None, "USER first"),
            },
            Command::Auth {
                mechanism: None, ..
            } => {
                self.ok("");
                self.line("PLAIN").await?;
                self.line(".").await?;
                Flow::Ok
            }
            Command::Auth {
                mechanism: Some(mechanism),
                initial_response,
            } => {
                *user = None;
                return self.auth(&mechanism, initial_response).await;
            }
            Command::Stat
            | Command::List(_)
            | Command::Retr(_)
            | Command::Dele(_)
            | Command::Noop
            | Command::Rset
            | Command::Top { .. }
            | Command::Uidl(_) => self.err(None, "not logged in"),
        };
        Ok(flow)
    }

    fn capa(&mut self, authorization: bool) -> Flow {
        let tls = self.conn.is_tls();
        let stls = authorization && self.ctx.tls.is_some();
        let login = self.login_allowed();
        proto::capa(tls, stls, login, self.conn.output());
        Flow::Ok
    }

    /// RFC 2595 §4.
    async fn stls(&mut self, user: &mut Option<String>) -> Result<Flow, Interrupted> {
        if self.conn.is_tls() {
            return Ok(self.err(None, "TLS already active"));
        }
        let Some(acceptor) = self.ctx.tls.clone() else {
            return Ok(self.err(None, "STLS not available"));
        };
        self.ok("Begin TLS negotiation");
        self.conn.start_tls(&acceptor).await?;
        // Nothing learned before TLS is kept.
        *user = None;
        Ok(Flow::Ok)
    }

    /// RFC 5034 AUTH with RFC 4616 PLAIN, the only mechanism offered.
    async fn auth(
        &mut self,
        mechanism: &str,
        initial_response: Option<Secret<String>>,
    ) -> Result<Flow, Interrupted> {
        if mechanism != "PLAIN" {
            return Ok(self.err(None, "Unsupported authentication mechanism"));
        }
        let response = match initial_response {
            Some(response) => response,
            None => {
                // PLAIN's server challenge is empty.
                self.conn.write(b"+ \r\n").await?;
                match self.conn.read_line(SASL_RESPONSE_LINE).await? {
                    Line::TooLong => return Ok(self.err(None, "line too long")),
                    Line::Complete(line) if line == b"*" => {
                        return Ok(self.err(None, "Authentication cancelled"));
                    }
                    Line::Complete(line) => match String::from_utf8(line) {
                        Ok(line) => Secret::new(line),
                        Err(_) => return Ok(self.err(None, "invalid base64")),
                    },
                }
            }
        };
        match decode_sasl_plain(response.expose()) {
            Ok((login, password)) => self.login(&login, &password).await,
            Err(e) => Ok(self.err(None, &e.to_string())),
        }
    }

    /// Checks the password, takes the maildrop lock and snapshots the INBOX.
    async fn login(&mut self, login: &str, password: &Secret<String>) -> Result<Flow, Interrupted> {
        // A failed login is answered after a delay; shutdown must not wait for it.
        let checked = tokio::select! {
            checked = self.ctx.auth.login(login, password, self.peer.ip()) => checked,
            () = self.shutdown.cancelled() => return Err(Interrupted::Shutdown),
        };
        let account = match checked {
            Ok(account) => account,
            Err(AuthError::Failed) => {
                tracing::info!(peer = %self.peer, "pop3: failed login");
                return Ok(self.err(Some("AUTH"), "Authentication failed"));
            }
            Err(AuthError::Throttled) => {
                return Ok(self.err(
                    Some("LOGIN-DELAY"),
                    "Too many failed logins, try again later",
                ));
            }
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "pop3: login check failed");
                return Ok(self.err(Some("SYS/TEMP"), "Login unavailable, try again later"));
            }
        };
        let Some(lock) = self.ctx.locks.try_lock(&account) else {
            return Ok(self.err(Some("IN-USE"), "Mailbox in use by another session"));
        };
        let snapshot = match self.ctx.store.mailbox(&account, INBOX).await {
            Ok(snapshot) => snapshot,
            Err(e) => {
                tracing::warn!(%account, error = %e, "pop3: cannot read the INBOX");
                return Ok(self.err(Some("SYS/TEMP"), "Mailbox unavailable, try again later"));
            }
        };
        let maildrop = Maildrop::new(account, lock, snapshot.uidvalidity, snapshot.messages);
        let (count, size) = maildrop.totals();
        tracing::debug!(peer = %self.peer, account = %maildrop.account, count, "pop3 login");
        self.ok(&format!(
            "{} has {count} messages ({size} octets)",
            maildrop.account
        ));
        Ok(Flow::LoggedIn(maildrop))
    }

    async fn transaction(
        &mut self,
        maildrop: &mut Maildrop,
        command: Command,
    ) -> Result<Flow, Interrupted> {
        let flow = match command {
            Command::Stat => {
                let (count, size) = maildrop.totals();
                self.ok(&format!("{count} {size}"))
            }
            Command::List(Some(n)) => match maildrop.get(n) {
                Ok(message) => self.ok(&format!("{n} {}", message.size)),
                Err(missing) => self.err(None, &missing.to_string()),
            },
            Command::List(None) => {
                let (count, size) = maildrop.totals();
                self.ok(&format!("{count} messages ({size} octets)"));
                for (n, message) in maildrop.live() {
                    self.line(&format!("{n} {}", message.size)).await?;
                }
                self.line(".").await?;
                Flow::Ok
            }
            Command::Uidl(Some(n)) => match maildrop.get(n) {
                Ok(message) => self.ok(&format!("{n} {}", maildrop.unique_id(message))),
                Err(missing) => self.err(None, &missing.to_string()),
            },
            Command::Uidl(None) => {
                self.ok("unique-id listing follows");
                for (n, message) in maildrop.live() {
                    self.line(&format!("{n} {}", maildrop.unique_id(message)))
                        .await?;
                }
                self.line(".").await?;
                Flow::Ok
            }
            Command::Retr(n) => match maildrop.get(n).cloned() {
                Ok(message) => {
                    let header = format!("{} octets", message.size);
                    return self.send_message(n, &message, &header, None).await;
                }
                Err(missing) => self.err(None, &missing.to_string()),
            },
            Command::Top { msg, lines } => match maildrop.get(msg).cloned() {
                Ok(message) => {
                    let header = "top of message follows";
                    return self.send_message(msg, &message, header, Some(lines)).await;
                }
                Err(missing) => self.err(None, &missing.to_string()),
            },
            Command::Dele(n) => match maildrop.delete(n) {
                Ok(()) => self.ok(&format!("message {n} deleted")),
                Err(missing) => self.err(None, &missing.to_string()),
            },
            Command::Noop => self.ok(""),
            Command::Rset => {
                maildrop.undelete_all();
                let (count, size) = maildrop.totals();
                self.ok(&format!("maildrop has {count} messages ({size} octets)"))
            }
            Command::Capa => self.capa(false),
            Command::Quit => return Ok(self.update(maildrop).await),
            Command::User(_) | Command::Pass(_) | Command::Auth { .. } => {
                self.err(None, "already logged in")
            }
            Command::Stls => self.err(None, "STLS only before login"),
        };
        Ok(flow)
    }

    /// RETR (`top` = None) or TOP: streams the body chunk by chunk through the dot-stuffer.
    /// A store failure before the first byte is an `-ERR`; after it, the connection is closed
    /// so the client sees a truncated response rather than a wrong one.
    async fn send_message(
        &mut self,
        n: u32,
        message: &MessageInfo,
        header: &str,
        top: Option<u32>,
    ) -> Result<Flow, Interrupted> {
        // From one read view: the whole body comes from one snapshot, and the next piece is
        // read while the previous one is sent.
        let view = match self.ctx.store.read_view().await {
            Ok(view) => view,
            Err(e) => {
                tracing::warn!(blob = message.blob, error = %e, "pop3: cannot read a message");
                return Ok(self.err(Some("SYS/TEMP"), "Message unavailable, try again later"));
            }
        };
        let mut body = view.body(message.blob);
        let mut chunk = match body.next_chunk().await {
            Ok(None) if message.size > 0 => {
                // Removed meanwhile by another client (IMAP EXPUNGE).
                return Ok(self.err(None, &format!("message {n} is no longer available")));
            }
            Ok(chunk) => chunk,
            Err(e) => {
                tracing::warn!(blob = message.blob, error = %e, "pop3: cannot read a message");
                return Ok(self.err(Some("SYS/TEMP"), "Message unavailable, try again later"));
            }
        };
        self.ok(header);
        let mut stuffer = DotStuffer::new();
        let mut filter = top.map(TopFilter::new);
        let mut cut = Vec::new();
        while let Some(data) = chunk {
            let done = match &mut filter {
                None => {
                    stuffer.encode(&data, self.conn.output());
                    false
                }
                Some(filter) => {
                    cut.clear();
                    let done = filter.feed(&data, &mut cut);
                    stuffer.encode(&cut, self.conn.output());
                    done
                }
            };
            self.conn.write(&[]).await?;
            if done {
                break;
            }
            chunk = match body.next_chunk().await {
                Ok(chunk) => chunk,
                Err(e) => {
                    tracing::warn!(
                        blob = message.blob,
                        error = %e,
                        "pop3: message read failed mid-stream; closing"
                    );
                    return Ok(Flow::End);
                }
            };
        }
        stuffer.finish(self.conn.output());
        Ok(Flow::Ok)
    }

    /// QUIT in TRANSACTION: the UPDATE state (RFC 1939 §6). All marked messages go in one
    /// durable store transaction, or none does.
    async fn update(&mut self, maildrop: &Maildrop) -> Flow {
        let uids = maildrop.deleted_uids();
        let count = uids.len();
        if !uids.is_empty()
            && let Err(e) = self.ctx.store.expunge(&maildrop.account, INBOX, uids).await
        {
            tracing::warn!(account = %maildrop.account, error = %e, "pop3: expunge failed");
            self.err(
                Some("SYS/TEMP"),
                "Deleted messages could not be removed, try again later",
            );
            return Flow::End;
        }
        let bye = format!(
            "{} signing off ({count} messages deleted)",
            self.ctx.config.hostname
        );
        self.ok(&bye);
        Flow::End
    }
}

#[cfg(test)]
mod tests;
