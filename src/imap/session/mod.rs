//! The IMAP session (RFC 9051 §3 states): a state machine over a `Connection`, the store and
//! the authenticator. It moves bytes through the sans-I/O framer ([`super::proto::framing`]:
//! lines and literals, every size checked before anything is kept), decides what each command
//! means for this user and mailbox, and writes the responses. One rule orders them: a
//! command's tagged reply waits until the mailbox updates the command allows are written
//! (`complete`), so no update ever follows the reply of the command that reports it.
//!
//! States: not authenticated (CAPABILITY, STARTTLS, LOGIN, AUTHENTICATE PLAIN), authenticated
//! (mailbox commands, `mailboxes`), selected (`selected`, `fetch` and `binary`, `search`;
//! `sync` keeps the client's view in step, IDLE included). APPEND streams its message
//! literals to spool files (`append`). What ENABLE turned on (`Enabled`) changes responses:
//! IMAP4rev2 and UTF8=ACCEPT switch mailbox names to UTF-8, QRESYNC expunges to VANISHED.
//!
//! References: RFC 9051/3501 (IMAP4rev2/rev1), RFC 7888 (LITERAL+), RFC 4959 (SASL-IR),
//! RFC 5161 (ENABLE), RFC 2971 (ID), RFC 2342 (NAMESPACE), RFC 4315 (UIDPLUS), RFC 3502
//! (MULTIAPPEND), RFC 6851 (MOVE), RFC 3691 (UNSELECT), RFC 3348 (CHILDREN), RFC 6154
//! (SPECIAL-USE), RFC 5258/5819 (LIST-EXTENDED, LIST-STATUS), RFC 4731/5182 (ESEARCH,
//! SEARCHRES), RFC 3516 (BINARY), RFC 7162 (CONDSTORE, QRESYNC), RFC 6855 (UTF8=ACCEPT),
//! RFC 8438 (STATUS=SIZE), RFC 9208 (QUOTA), RFC 2177 (IDLE).

mod append;
mod binary;
mod fetch;
mod flags;
mod junk;
mod mailboxes;
mod quota;
mod read_ahead;
mod search;
mod section;
mod selected;
mod sync;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::proto::framing::{Frame, Framer, Line, LineReader, Step};
use super::proto::{Command, CommandKind, parse_command_in};
use crate::auth::{AuthError, Authenticator};
use crate::config::Config;
use crate::limits::{COMMAND_TIMEOUT, IMAP_MAX_ERRORS, IMAP_SASL_LINE};
use crate::net::{Connection, Interrupted, Stream};
use crate::secret::Secret;
use crate::store::{Keywords, Store, StoreError};
use read_ahead::ReadAhead;
use selected::Selected;

/// What a listener hands each IMAP session.
#[derive(Clone)]
pub struct ImapContext {
    pub config: Arc<Config>,
    pub store: Store,
    pub auth: Authenticator,
    pub tls: Option<TlsAcceptor>,
}

/// Capabilities every state shares (RFC 9051 §6.1.1).
const CAPABILITIES: &str = "IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ENABLE IDLE NAMESPACE ID \
UIDPLUS MULTIAPPEND MOVE UNSELECT CHILDREN SPECIAL-USE LIST-EXTENDED LIST-STATUS ESEARCH \
SEARCHRES CONDSTORE QRESYNC STATUS=SIZE UTF8=ACCEPT QUOTA QUOTA=RES-STORAGE BINARY";

/// What the client turned on with ENABLE (RFC 5161), or implied by SELECT (CONDSTORE).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Enabled {
    /// MODSEQ in FETCH responses (RFC 7162 §3.1).
    pub condstore: bool,
    /// VANISHED instead of EXPUNGE, SELECT (QRESYNC ...) (RFC 7162 §3.2).
    pub qresync: bool,
    /// IMAP4rev2 responses: ESEARCH for every SEARCH, no \Recent or RECENT (RFC 9051).
    pub rev2: bool,
    /// Mailbox names in UTF-8 (RFC 6855; implied by IMAP4rev2).
    pub utf8: bool,
    /// UTF8=ACCEPT itself: UTF8 APPEND, and no SEARCH CHARSET (RFC 6855 §3, §4).
    pub utf8_accept: bool,
}

/// Which mailbox updates may go out while a command runs (RFC 9051 §7.5.1, RFC 3501 §7.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Updates {
    /// None (LOGOUT, and commands before login or refused while framing).
    None,
    /// EXISTS and flag changes but no expunge: the command names messages by sequence
    /// number, and the client's numbers must not shift under it.
    NoExpunges,
    /// Everything, told once the command has run.
    After,
    /// Everything, told before the command runs as well as after: it names messages by UID,
    /// so it should see (and number) the mailbox as it is now.
    BeforeAndAfter,
}

impl Updates {
    fn of(kind: &CommandKind) -> Updates {
        match kind {
            CommandKind::Logout
            | CommandKind::StartTls
            | CommandKind::Login { .. }
            | CommandKind::Authenticate { .. } => Updates::None,
            CommandKind::Fetch { uid: false, .. }
            | CommandKind::Store { uid: false, .. }
            | CommandKind::Search { uid: false, .. }
            | CommandKind::Copy {
                uid: false,
                moving: false,
                ..
            } => Updates::NoExpunges,
            CommandKind::Fetch { uid: true, .. }
            | CommandKind::Store { uid: true, .. }
            | CommandKind::Search { uid: true, .. }
            | CommandKind::Copy { uid: true, .. }
            | CommandKind::Expunge { uids: Some(_) } => Updates::BeforeAndAfter,
            _ => Updates::After,
        }
    }
}

struct Session<S> {
    ctx: ImapContext,
    conn: Connection<S>,
    peer: SocketAddr,
    shutdown: CancellationToken,
    errors: u32,
    account: Option<String>,
    selected: Option<Selected>,
    /// The account's keywords, as of the last SELECT or flag change.
    keywords: Keywords,
    enabled: Enabled,
    changes: watch::Receiver<u64>,
    /// The tagged reply of the command being run. It is written only after the updates the
    /// command may carry, so that no untagged response ever follows its command's completion.
    completion: Option<Vec<u8>>,
    /// What FETCH read from the store ahead of the messages it is sending.
    read_ahead: ReadAhead,
}

/// Runs one IMAP session to its end. Never fails: every problem becomes a response or a close.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: ImapContext,
    stream: Stream<S>,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    let idle = ctx.config.limits.preauth_idle();
    let changes = ctx.store.watch_changes();
    let mut session = Session {
        conn: Connection::new(stream, idle, shutdown.clone()),
        ctx,
        peer,
        shutdown,
        errors: 0,
        account: None,
        selected: None,
        keywords: Keywords::default(),
        enabled: Enabled::default(),
        changes,
        completion: None,
        read_ahead: ReadAhead::default(),
    };
    // Login within a total time, not per byte (issue #16 defect 3); cleared at login.
    let preauth = session.ctx.config.limits.preauth_total();
    session.conn.set_deadline(Some(preauth));
    let greeting = format!(
        "* OK [CAPABILITY {}] {} IMAP Letterbox ready\r\n",
        session.capabilities(),
        session.ctx.config.hostname
    );
    let ended = match session.conn.write(greeting.as_bytes()).await {
        Ok(()) => session.run().await,
        Err(e) => Err(e),
    };
    match ended {
        Err(Interrupted::Shutdown) => {
            let _ = session.conn.write(b"* BYE Server shutting down\r\n").await;
        }
        Err(Interrupted::IdleTimeout) => {
            let _ = session.conn.write(b"* BYE Idle for too long\r\n").await;
        }
        _ => {}
    }
    session.conn.close().await;
    tracing::debug!(peer = %session.peer, ended = ?ended.err(), "imap session ended");
}

/// A STORE error as a tagged NO with a response code (RFC 5530).
fn store_error_text(error: &StoreError) -> String {
    match error {
        StoreError::NotFound { .. } => "[NONEXISTENT] No such mailbox".into(),
        StoreError::Exists(_) => "[ALREADYEXISTS] Mailbox already exists".into(),
        StoreError::Invalid(text) => text.clone(),
        StoreError::Full => "[OVERQUOTA] Storage is full".into(),
        StoreError::OverQuota { .. } => "[OVERQUOTA] The mailbox is over its quota".into(),
        _ => "[UNAVAILABLE] Try again later".into(),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    fn capabilities(&self) -> String {
        let mut caps = CAPABILITIES.to_string();
        let append_limit = self.ctx.config.limits.max_append_size.0;
        caps.push_str(&format!(" APPENDLIMIT={append_limit}"));
        if self.account.is_none() {
            if !self.conn.is_tls() && self.ctx.tls.is_some() {
                caps.push_str(" STARTTLS");
            }
            if self.login_allowed() {
                caps.push_str(" AUTH=PLAIN");
            } else {
                caps.push_str(" LOGINDISABLED");
            }
        }
        caps
    }

    /// A mailbox name as this client reads it (UTF-8 or modified UTF-7).
    fn wire_name(&self, name: &str) -> String {
        let mut out = Vec::new();
        super::proto::encode::mailbox(&mut out, name, self.enabled.utf8);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn login_allowed(&self) -> bool {
        self.conn.is_tls() || self.ctx.config.auth.allow_plaintext_login
    }

    fn account(&self) -> &str {
        self.account.as_deref().unwrap_or_default()
    }

    /// Writes `* text`.
    async fn untagged(&mut self, text: &str) -> Result<(), Interrupted> {
        let out = self.conn.output();
        out.extend_from_slice(b"* ");
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
        self.conn.write(&[]).await
    }

    /// Sets the command's tagged reply; `complete` writes it once the updates are out.
    fn tagged(&mut self, tag: &str, status: &str, text: &str) {
        debug_assert!(
            self.completion.is_none(),
            "two tagged replies for one command"
        );
        self.completion = Some(format!("{tag} {status} {text}\r\n").into_bytes());
    }

    /// Ends a command: the mailbox updates it allows, then its tagged reply.
    async fn complete(&mut self, updates: Updates) -> Result<(), Interrupted> {
        match updates {
            Updates::None => {}
            Updates::NoExpunges => self.sync(false).await?,
            Updates::After | Updates::BeforeAndAfter => self.sync(true).await?,
        }
        if let Some(reply) = self.completion.take() {
            self.conn.output().extend_from_slice(&reply);
        }
        self.conn.write(&[]).await
    }

    fn ok(&mut self, tag: &str, text: &str) {
        self.tagged(tag, "OK", text);
    }

    fn no(&mut self, tag: &str, text: &str) {
        self.tagged(tag, "NO", text);
    }

    fn bad(&mut self, tag: Option<&str>, text: &str) {
        self.errors += 1;
        self.tagged(tag.unwrap_or("*"), "BAD", text);
    }

    fn store_no(&mut self, tag: &str, error: &StoreError) {
        if error.is_temporary() {
            tracing::warn!(peer = %self.peer, %error, "imap: store error");
        }
        let text = store_error_text(error);
        self.no(tag, &text);
    }

    async fn run(&mut self) -> Result<(), Interrupted> {
        loop {
            let frame = self.read_command().await?;
            let (done, updates) = match frame {
                Frame::Refused { tag, reason } => {
                    self.bad(tag.as_deref(), reason);
                    (false, Updates::None)
                }
                Frame::Abandoned { tag, reason } => {
                    self.bad(tag.as_deref(), reason);
                    self.complete(Updates::None).await?;
                    return Ok(());
                }
                Frame::Append { prefix, literal } => {
                    Box::pin(self.append(prefix, literal)).await?;
                    (false, Updates::After)
                }
                Frame::Command(bytes) => match parse_command_in(&bytes, self.enabled.utf8) {
                    Err(malformed) => {
                        let text = malformed.error.to_string();
                        self.bad(malformed.tag.as_deref(), &text);
                        (false, Updates::None)
                    }
                    Ok(command) => {
                        self.condstore_enabled_by(&command.kind).await?;
                        let updates = Updates::of(&command.kind);
                        if updates == Updates::BeforeAndAfter {
                            self.sync(true).await?;
                        }
                        // A session spends most of its life waiting for a command or in
                        // IDLE; the other commands run in a box of their own, freed when they
                        // end, so that the session's future is not as large as the largest of
                        // them for all that time.
                        let done = if matches!(command.kind, CommandKind::Idle)
                            && self.account.is_some()
                        {
                            self.idle(&command.tag).await?;
                            false
                        } else {
                            Box::pin(self.dispatch(command)).await?
                        };
                        (done, updates)
                    }
                },
            };
            self.complete(updates).await?;
            if done {
                return Ok(());
            }
            if self.errors >= IMAP_MAX_ERRORS {
                self.untagged("BYE Too many errors").await?;
                return Ok(());
            }
        }
    }

    /// Reads one line of at most `max` octets, keeping the stream in step when it is longer.
    async fn read_line(&mut self, max: usize) -> Result<Line, Interrupted> {
        let mut reader = LineReader::new(max);
        loop {
            self.conn.read_more().await?;
            let (used, line) = reader.feed(self.conn.buffered());
            self.conn.consume(used);
            if let Some(line) = line {
                return Ok(line);
            }
        }
    }

    /// Discards `n` octets of input (a refused non-synchronizing literal).
    async fn skip(&mut self, mut n: u64) -> Result<(), Interrupted> {
        while n > 0 {
            self.conn.read_more().await?;
            let take = usize::try_from(n)
                .unwrap_or(usize::MAX)
                .min(self.conn.buffered().len());
            self.conn.consume(take);
            n -= take as u64;
        }
        Ok(())
    }

    /// Reads the next command through the sans-I/O framer, saying "+" when it asks.
    async fn read_command(&mut self) -> Result<Frame, Interrupted> {
        let mut framer = if self.account.is_some() {
            Framer::new(self.enabled.utf8)
        } else {
            Framer::before_login(self.enabled.utf8)
        };
        // Once the command has begun, it must arrive whole within COMMAND_TIMEOUT.
        let mut by = None;
        loop {
            let (used, step) = framer.feed(self.conn.buffered());
            self.conn.consume(used);
            if used > 0 {
                by = by.or_else(|| Some(tokio::time::Instant::now() + COMMAND_TIMEOUT));
            }
            match step {
                Step::NeedInput => self.conn.read_more_by(by).await?,
                Step::SendContinuation => {
                    self.conn.write(b"+ Ready for literal data\r\n").await?;
                    self.conn.flush().await?;
                }
                Step::Done(frame) => return Ok(frame),
            }
        }
    }

    /// Runs one command; true when the session should end.
    async fn dispatch(&mut self, command: Command) -> Result<bool, Interrupted> {
        let Command { tag, kind } = command;
        let authenticated = self.account.is_some();
        match kind {
            CommandKind::Capability => {
                let caps = self.capabilities();
                self.untagged(&format!("CAPABILITY {caps}")).await?;
                self.ok(&tag, "CAPABILITY completed");
            }
            CommandKind::Noop => self.ok(&tag, "NOOP completed"),
            CommandKind::Logout => {
                self.untagged("BYE Logging out").await?;
                self.ok(&tag, "LOGOUT completed");
                return Ok(true);
            }
            CommandKind::Id => {
                let version = env!("CARGO_PKG_VERSION");
                self.untagged(&format!(
                    "ID (\"name\" \"Letterbox\" \"version\" \"{version}\")"
                ))
                .await?;
                self.ok(&tag, "ID completed");
            }
            CommandKind::StartTls => return self.starttls(&tag).await.map(|()| false),
            CommandKind::Login { user, password } if !authenticated => {
                self.login(&tag, &user, &password).await?;
            }
            CommandKind::Authenticate { mechanism, initial } if !authenticated => {
                self.authenticate(&tag, &mechanism, initial).await?;
            }
            CommandKind::Login { .. } | CommandKind::Authenticate { .. } => {
                self.bad(Some(&tag), "Already logged in");
            }
            _ if !authenticated => self.bad(Some(&tag), "Log in first"),
            CommandKind::Enable(capabilities) => self.enable(&tag, capabilities).await?,
            CommandKind::Namespace => {
                self.untagged("NAMESPACE ((\"\" \"/\")) NIL NIL").await?;
                self.ok(&tag, "NAMESPACE completed");
            }
            CommandKind::GetQuotaRoot(mailbox) => self.get_quota_root(&tag, &mailbox).await?,
            CommandKind::GetQuota(root) => self.get_quota(&tag, &root).await?,
            CommandKind::SetQuota => self.no(
                &tag,
                "[NOPERM] The storage device is the only quota; it cannot be set",
            ),
            other => self.mailbox_command(&tag, other).await?,
        }
        Ok(false)
    }

    /// ENABLE (RFC 5161): answers with the capabilities newly turned on. QRESYNC implies
    /// CONDSTORE (RFC 7162 §3.2.3); IMAP4rev2 implies UTF-8 mailbox names.
    async fn enable(&mut self, tag: &str, capabilities: Vec<String>) -> Result<(), Interrupted> {
        let mut newly = Vec::new();
        for capability in capabilities {
            let flag = match capability.as_str() {
                "CONDSTORE" => &mut self.enabled.condstore,
                "QRESYNC" => {
                    self.enabled.condstore = true;
                    &mut self.enabled.qresync
                }
                "IMAP4REV2" => {
                    self.enabled.utf8 = true;
                    &mut self.enabled.rev2
                }
                "UTF8=ACCEPT" => {
                    self.enabled.utf8 = true;
                    &mut self.enabled.utf8_accept
                }
                _ => continue,
            };
            if !*flag {
                *flag = true;
                newly.push(match capability.as_str() {
                    "IMAP4REV2" => "IMAP4rev2".to_string(),
                    _ => capability,
                });
            }
        }
        self.untagged(format!("ENABLED {}", newly.join(" ")).trim_end())
            .await?;
        self.ok(tag, "ENABLE completed");
        Ok(())
    }

    /// A CONDSTORE enabling command turns CONDSTORE on; with a mailbox selected, the client
    /// then learns the MODSEQ its view is at (RFC 7162 §3.1).
    async fn condstore_enabled_by(&mut self, kind: &CommandKind) -> Result<(), Interrupted> {
        if self.enabled.condstore || self.account.is_none() || !kind.enables_condstore() {
            return Ok(());
        }
        self.enabled.condstore = true;
        if let Some(selected) = &self.selected {
            let highest = selected.modseq.max(1);
            self.untagged(&format!("OK [HIGHESTMODSEQ {highest}] CONDSTORE enabled"))
                .await?;
        }
        Ok(())
    }

    /// RFC 9051 §6.2.1; pipelined input after the command is discarded (RFC 3207 §4.2's
    /// defence, as for SMTP and POP3).
    async fn starttls(&mut self, tag: &str) -> Result<(), Interrupted> {
        if self.conn.is_tls() || self.account.is_some() {
            self.bad(Some(tag), "TLS is already active or not allowed now");
            return Ok(());
        }
        let Some(acceptor) = self.ctx.tls.clone() else {
            self.bad(Some(tag), "STARTTLS not available");
            return Ok(());
        };
        self.ok(tag, "Begin TLS negotiation now");
        self.complete(Updates::None).await?;
        self.conn.start_tls(&acceptor).await
    }

    async fn login(
        &mut self,
        tag: &str,
        user: &str,
        password: &Secret<String>,
    ) -> Result<(), Interrupted> {
        if !self.login_allowed() {
            self.no(tag, "[PRIVACYREQUIRED] Use STARTTLS or port 993 first");
            return Ok(());
        }
        let checked = tokio::select! {
            checked = self.ctx.auth.login(user, password, self.peer.ip()) => checked,
            () = self.shutdown.cancelled() => return Err(Interrupted::Shutdown),
        };
        match checked {
            Ok(account) => {
                if let Err(error) = self.ctx.store.ensure_default_mailboxes(&account).await {
                    tracing::warn!(%account, %error, "imap: cannot create default mailboxes");
                }
                tracing::debug!(peer = %self.peer, %account, "imap login");
                self.account = Some(account);
                self.conn
                    .set_idle_timeout(self.ctx.config.limits.imap_idle());
                self.conn.set_deadline(None);
                let caps = self.capabilities();
                self.ok(tag, &format!("[CAPABILITY {caps}] Logged in"));
            }
            Err(AuthError::Failed) => {
                tracing::info!(peer = %self.peer, "imap: failed login");
                self.no(tag, "[AUTHENTICATIONFAILED] Authentication failed");
            }
            Err(AuthError::Throttled) => {
                self.no(tag, "[UNAVAILABLE] Too many failed logins, try again later");
            }
            Err(error) => {
                tracing::warn!(peer = %self.peer, %error, "imap: login check failed");
                self.no(tag, "[UNAVAILABLE] Login unavailable, try again later");
            }
        }
        Ok(())
    }

    /// AUTHENTICATE PLAIN (RFC 4616), with an initial response (SASL-IR) or after "+".
    async fn authenticate(
        &mut self,
        tag: &str,
        mechanism: &str,
        initial: Option<Secret<String>>,
    ) -> Result<(), Interrupted> {
        if mechanism != "PLAIN" {
            self.no(tag, "Unsupported authentication mechanism");
            return Ok(());
        }
        if !self.login_allowed() {
            self.no(tag, "[PRIVACYREQUIRED] Use STARTTLS or port 993 first");
            return Ok(());
        }
        let response = match initial {
            Some(response) => response,
            None => {
                self.conn.write(b"+ \r\n").await?;
                match self.read_line(IMAP_SASL_LINE).await? {
                    Line::TooLong { .. } => {
                        self.bad(Some(tag), "Response too long");
                        return Ok(());
                    }
                    Line::Complete(line) if line == b"*" => {
                        self.bad(Some(tag), "Authentication cancelled");
                        return Ok(());
                    }
                    Line::Complete(line) => {
                        Secret::new(String::from_utf8_lossy(&line).into_owned())
                    }
                }
            }
        };
        let text = if response.expose() == "=" {
            ""
        } else {
            response.expose().as_str()
        };
        match crate::pop3::proto::decode_sasl_plain(text) {
            Ok((login, password)) => self.login(tag, &login, &password).await,
            Err(_) => {
                self.bad(Some(tag), "Invalid PLAIN response");
                Ok(())
            }
        }
    }
}
