//! Session tests over an in-memory duplex stream, a real store and authenticator.

use super::*;
use crate::limits::Limits;
use crate::status::Status;
use crate::units::{ByteSize, Seconds};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};

const MSG1: &[u8] = b"From: a@x\r\nSubject: one\r\n\r\nline 1\r\n.dot line\r\nline 3\r\n";
const MSG2: &[u8] = b"From: b@x\r\nSubject: two\r\n\r\nsecond\r\n";
const MSG3: &[u8] = b"From: c@x\r\nSubject: three\r\n\r\nthird\r\n";

const CLOSED: &str = "<closed>";

struct Harness {
    ctx: Pop3Context,
    _dir: tempfile::TempDir,
}

async fn harness(messages: &[&[u8]], plaintext: bool) -> Harness {
    harness_with(messages, plaintext, false).await
}

async fn harness_with(messages: &[&[u8]], plaintext: bool, tls: bool) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::development();
    config.hostname = "mail.home.test".into();
    config.data_dir = dir.path().to_path_buf();
    config.auth.allow_plaintext_login = plaintext;
    config.limits = Limits {
        argon2_memory: ByteSize(1024 * 1024),
        login_failure_delay: Seconds(0),
        ..Limits::default()
    };
    let (status, _) = tokio::sync::watch::channel(Status::default());
    let store = Store::open(dir.path(), &config.limits, status).unwrap();
    let auth = Authenticator::new(store.clone(), &config.limits, "home.test").unwrap();
    let hash = auth.hash(&Secret::new("pw".into())).await.unwrap();
    store
        .create_account("alice@home.test", &hash)
        .await
        .unwrap();
    for message in messages {
        let mut spool = store.spool().await.unwrap();
        spool.write(message).await.unwrap();
        let file = spool.finish().await.unwrap();
        store
            .deliver(file, vec!["alice@home.test".into()], 0)
            .await
            .unwrap();
    }
    let tls = tls.then(|| crate::tls::acceptor(&config).unwrap());
    Harness {
        ctx: Pop3Context {
            config: Arc::new(config),
            store,
            auth,
            tls,
            locks: MaildropLocks::new(),
        },
        _dir: dir,
    }
}

struct Client<T = DuplexStream> {
    io: BufReader<T>,
    session: tokio::task::JoinHandle<()>,
}

impl Client {
    async fn connect(ctx: &Pop3Context) -> Client {
        Self::connect_with(ctx, CancellationToken::new()).await
    }

    /// STLS, then a TLS handshake that trusts the server's self-signed certificate.
    async fn start_tls(
        mut self,
        ctx: &Pop3Context,
    ) -> Client<tokio_rustls::client::TlsStream<DuplexStream>> {
        assert_eq!(self.cmd("STLS").await, "+OK Begin TLS negotiation");
        assert!(self.io.buffer().is_empty());
        let (cert, _) = crate::tls::cert_paths(&ctx.config);
        let mut roots = rustls::RootCertStore::empty();
        use rustls::pki_types::pem::PemObject;
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(cert).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("mail.home.test").unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, self.io.into_inner())
            .await
            .unwrap();
        Client {
            io: BufReader::new(tls),
            session: self.session,
        }
    }

    async fn connect_with(ctx: &Pop3Context, shutdown: CancellationToken) -> Client {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let session = tokio::spawn(serve(ctx.clone(), Stream::Plain(server), peer, shutdown));
        let mut client = Client {
            io: BufReader::new(client),
            session,
        };
        assert_eq!(
            client.line().await,
            "+OK mail.home.test POP3 Letterbox ready"
        );
        client
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Client<T> {
    /// One line without CRLF; `CLOSED` at end of stream.
    async fn line(&mut self) -> String {
        let mut raw = Vec::new();
        self.io.read_until(b'\n', &mut raw).await.unwrap();
        if raw.is_empty() {
            return CLOSED.to_string();
        }
        let line = String::from_utf8(raw).unwrap();
        assert!(line.ends_with("\r\n"), "{line:?}");
        line.trim_end_matches("\r\n").to_string()
    }

    async fn send(&mut self, line: &str) {
        self.io
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.send(line).await;
        self.line().await
    }

    /// The lines of a multi-line body, up to (not including) the terminating ".".
    async fn body(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            assert_ne!(line, CLOSED, "unexpected end of stream");
            if line == "." {
                return lines;
            }
            lines.push(line);
        }
    }

    async fn login(&mut self) {
        assert_eq!(self.cmd("USER alice").await, "+OK send PASS");
        let reply = self.cmd("PASS pw").await;
        assert!(reply.starts_with("+OK alice@home.test has "), "{reply}");
    }

    async fn quit(mut self) -> String {
        let reply = self.cmd("QUIT").await;
        assert_eq!(self.line().await, CLOSED, "closed after QUIT");
        self.session.await.unwrap();
        reply
    }
}

#[tokio::test]
async fn maildrop_lock_is_exclusive_and_released_on_drop() {
    let locks = MaildropLocks::new();
    let guard = locks.try_lock("alice@home.test").unwrap();
    assert!(locks.try_lock("alice@home.test").is_none());
    let other = locks.clone().try_lock("bob@home.test");
    assert!(other.is_some());
    assert!(locks.is_locked("alice@home.test"));
    drop(guard);
    assert!(!locks.is_locked("alice@home.test"));
    assert!(locks.try_lock("alice@home.test").is_some());
}

#[tokio::test]
async fn transaction_commands() {
    let h = harness(&[MSG1, MSG2, MSG3], true).await;
    let mut c = Client::connect(&h.ctx).await;
    assert_eq!(c.cmd("STAT").await, "-ERR not logged in");
    assert_eq!(c.cmd("NOOP").await, "-ERR not logged in");
    assert_eq!(c.cmd("PASS pw").await, "-ERR USER first");
    c.login().await;
    let total = MSG1.len() + MSG2.len() + MSG3.len();
    assert_eq!(c.cmd("STAT").await, format!("+OK 3 {total}"));
    assert!(c.cmd("LIST").await.starts_with("+OK 3 messages"));
    let list = c.body().await;
    assert_eq!(
        list,
        [
            format!("1 {}", MSG1.len()),
            format!("2 {}", MSG2.len()),
            format!("3 {}", MSG3.len())
        ]
    );
    assert_eq!(c.cmd("LIST 2").await, format!("+OK 2 {}", MSG2.len()));
    assert_eq!(c.cmd("LIST 4").await, "-ERR no such message");
    assert_eq!(c.cmd("UIDL").await, "+OK unique-id listing follows");
    let uidl = c.body().await;
    assert_eq!(uidl.len(), 3);
    let ids: Vec<String> = uidl
        .iter()
        .map(|l| l.split_once(' ').unwrap().1.to_string())
        .collect();
    assert!(ids.iter().all(|id| id.contains('.')));
    assert_eq!(c.cmd("UIDL 3").await, format!("+OK 3 {}", ids[2]));

    assert_eq!(c.cmd("RETR 1").await, format!("+OK {} octets", MSG1.len()));
    assert_eq!(
        c.body().await,
        [
            "From: a@x",
            "Subject: one",
            "",
            "line 1",
            "..dot line",
            "line 3"
        ]
    );
    assert_eq!(c.cmd("TOP 1 1").await, "+OK top of message follows");
    assert_eq!(c.body().await, ["From: a@x", "Subject: one", "", "line 1"]);
    assert_eq!(c.cmd("TOP 2 0").await, "+OK top of message follows");
    assert_eq!(c.body().await, ["From: b@x", "Subject: two", ""]);

    assert_eq!(c.cmd("DELE 2").await, "+OK message 2 deleted");
    assert_eq!(c.cmd("DELE 2").await, "-ERR message 2 is deleted");
    assert_eq!(c.cmd("RETR 2").await, "-ERR message 2 is deleted");
    assert_eq!(c.cmd("LIST 2").await, "-ERR message 2 is deleted");
    assert_eq!(c.cmd("TOP 2 1").await, "-ERR message 2 is deleted");
    assert_eq!(c.cmd("UIDL 2").await, "-ERR message 2 is deleted");
    assert_eq!(c.cmd("RETR 9").await, "-ERR no such message");
    let after = MSG1.len() + MSG3.len();
    assert_eq!(c.cmd("STAT").await, format!("+OK 2 {after}"));
    c.cmd("LIST").await;
    assert_eq!(c.body().await.len(), 2);
    assert!(
        c.cmd("RSET")
            .await
            .starts_with("+OK maildrop has 3 messages")
    );
    assert_eq!(c.cmd("STAT").await, format!("+OK 3 {total}"));
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted");
    assert_eq!(c.cmd("NOOP").await, "+OK");
    assert_eq!(c.cmd("USER bob").await, "-ERR already logged in");
    assert_eq!(c.cmd("XYZ").await, "-ERR unknown command");
    assert_eq!(c.cmd("RETR x").await, "-ERR invalid message number");
    assert_eq!(
        c.quit().await,
        "+OK mail.home.test signing off (1 messages deleted)"
    );

    // The next session sees the deletion; unique ids of the rest are unchanged.
    let mut c = Client::connect(&h.ctx).await;
    c.login().await;
    assert_eq!(
        c.cmd("STAT").await,
        format!("+OK 2 {}", MSG2.len() + MSG3.len())
    );
    c.cmd("UIDL").await;
    assert_eq!(
        c.body().await,
        [format!("1 {}", ids[1]), format!("2 {}", ids[2])]
    );
    assert_eq!(
        c.quit().await,
        "+OK mail.home.test signing off (0 messages deleted)"
    );
}

#[tokio::test]
async fn a_dropped_connection_deletes_nothing_and_unlocks() {
    let h = harness(&[MSG1, MSG2], true).await;
    let mut c = Client::connect(&h.ctx).await;
    c.login().await;
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted");
    assert!(h.ctx.locks.is_locked("alice@home.test"));
    let Client { io, session } = c;
    drop(io);
    session.await.unwrap();
    assert!(!h.ctx.locks.is_locked("alice@home.test"));
    let mut c = Client::connect(&h.ctx).await;
    c.login().await;
    assert!(c.cmd("STAT").await.starts_with("+OK 2 "));
    c.quit().await;
}

#[tokio::test]
async fn second_session_gets_in_use() {
    let h = harness(&[MSG1], true).await;
    let mut first = Client::connect(&h.ctx).await;
    first.login().await;
    let mut second = Client::connect(&h.ctx).await;
    second.cmd("USER alice").await;
    assert_eq!(
        second.cmd("PASS pw").await,
        "-ERR [IN-USE] Mailbox in use by another session"
    );
    first.quit().await;
    second.login().await;
    second.quit().await;
}

#[tokio::test]
async fn bad_password_and_auth_plain() {
    let h = harness(&[MSG1], true).await;
    let mut c = Client::connect(&h.ctx).await;
    c.cmd("USER alice").await;
    assert_eq!(
        c.cmd("PASS nope").await,
        "-ERR [AUTH] Authentication failed"
    );
    // The failed PASS forgot the USER.
    assert_eq!(c.cmd("PASS pw").await, "-ERR USER first");
    assert_eq!(c.cmd("AUTH").await, "+OK");
    assert_eq!(c.body().await, ["PLAIN"]);
    assert_eq!(
        c.cmd("AUTH CRAM-MD5").await,
        "-ERR Unsupported authentication mechanism"
    );
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    assert_eq!(c.cmd("*").await, "-ERR Authentication cancelled");
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    assert_eq!(c.cmd("!!!").await, "-ERR invalid base64");
    // "\0alice\0nope"
    assert_eq!(
        c.cmd("AUTH PLAIN AGFsaWNlAG5vcGU=").await,
        "-ERR [AUTH] Authentication failed"
    );
    // "\0alice\0pw", as a continuation.
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    let reply = c.cmd("AGFsaWNlAHB3").await;
    assert!(
        reply.starts_with("+OK alice@home.test has 1 messages"),
        "{reply}"
    );
    assert_eq!(
        c.cmd("AUTH PLAIN AGFsaWNlAHB3").await,
        "-ERR already logged in"
    );
    c.quit().await;

    let mut c = Client::connect(&h.ctx).await;
    let reply = c.cmd("AUTH PLAIN AGFsaWNlAHB3").await;
    assert!(reply.starts_with("+OK"), "{reply}");
    c.quit().await;
}

#[tokio::test]
async fn plaintext_login_needs_tls() {
    let h = harness(&[], false).await;
    let mut c = Client::connect(&h.ctx).await;
    assert_eq!(c.cmd("CAPA").await, "+OK Capability list follows");
    let capa = c.body().await;
    assert!(!capa.iter().any(|l| l == "USER" || l.starts_with("SASL")));
    assert!(!capa.iter().any(|l| l == "STLS"), "no TLS configured");
    let refused = "-ERR [AUTH] Login needs TLS: use STLS or port 995";
    assert_eq!(c.cmd("USER alice").await, refused);
    assert_eq!(c.cmd("PASS pw").await, refused);
    assert_eq!(c.cmd("AUTH PLAIN AGFsaWNlAHB3").await, refused);
    assert_eq!(c.cmd("STLS").await, "-ERR STLS not available");
    assert_eq!(c.quit().await, "+OK mail.home.test signing off");
}

#[tokio::test]
async fn long_lines_and_too_many_errors() {
    let h = harness(&[], true).await;
    let mut c = Client::connect(&h.ctx).await;
    let long = format!("USER {}", "a".repeat(300));
    assert_eq!(c.cmd(&long).await, "-ERR line too long");
    assert_eq!(c.cmd("CAPA").await, "+OK Capability list follows");
    let capa = c.body().await;
    assert!(capa.iter().any(|l| l == "USER"));
    // 1 error so far; 19 more reach the limit and the server closes.
    for _ in 0..19 {
        assert_eq!(c.cmd("BOGUS").await, "-ERR unknown command");
    }
    assert_eq!(c.line().await, CLOSED);
    c.session.await.unwrap();
}

#[tokio::test]
async fn large_message_streams_in_chunks() {
    let mut message = b"Subject: big\r\n\r\n".to_vec();
    for i in 0..20_000 {
        if i % 7 == 0 {
            message.extend_from_slice(b".");
        }
        message.extend_from_slice(format!("line {i:06} of a large message\r\n").as_bytes());
    }
    assert!(message.len() > 3 * crate::limits::BODY_CHUNK);
    let h = harness(&[&message], true).await;
    let mut c = Client::connect(&h.ctx).await;
    c.login().await;
    assert_eq!(
        c.cmd("RETR 1").await,
        format!("+OK {} octets", message.len())
    );
    let mut received = Vec::new();
    for line in c.body().await {
        let line = line.strip_prefix('.').unwrap_or(&line).to_string();
        received.extend_from_slice(line.as_bytes());
        received.extend_from_slice(b"\r\n");
    }
    assert_eq!(received, message);
    assert_eq!(c.cmd("TOP 1 2").await, "+OK top of message follows");
    assert_eq!(
        c.body().await,
        [
            "Subject: big",
            "",
            "..line 000000 of a large message",
            "line 000001 of a large message"
        ]
    );
    c.quit().await;
}

#[tokio::test]
async fn shutdown_answers_and_keeps_the_mail() {
    let h = harness(&[MSG1], true).await;
    let shutdown = CancellationToken::new();
    let mut c = Client::connect_with(&h.ctx, shutdown.clone()).await;
    c.login().await;
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted");
    shutdown.cancel();
    assert_eq!(c.line().await, "-ERR [SYS/TEMP] shutting down");
    assert_eq!(c.line().await, CLOSED);
    c.session.await.unwrap();
    let snapshot = h.ctx.store.mailbox("alice@home.test", INBOX).await.unwrap();
    assert_eq!(snapshot.messages.len(), 1);
    assert!(!h.ctx.locks.is_locked("alice@home.test"));
}

#[tokio::test]
async fn stls_upgrades_and_forgets_user() {
    // Plaintext logins refused: CAPA offers STLS and no login until TLS is active.
    let h = harness_with(&[MSG1], false, true).await;
    let mut c = Client::connect(&h.ctx).await;
    c.cmd("CAPA").await;
    let capa = c.body().await;
    assert!(capa.iter().any(|l| l == "STLS"));
    assert!(!capa.iter().any(|l| l == "USER"));
    let mut c = c.start_tls(&h.ctx).await;
    c.cmd("CAPA").await;
    let capa = c.body().await;
    assert!(!capa.iter().any(|l| l == "STLS"));
    assert!(capa.iter().any(|l| l == "USER"));
    assert!(capa.iter().any(|l| l == "SASL PLAIN"));
    assert_eq!(c.cmd("STLS").await, "-ERR TLS already active");
    c.login().await;
    assert_eq!(c.cmd("RETR 1").await, format!("+OK {} octets", MSG1.len()));
    assert_eq!(c.body().await.len(), 6);
    c.quit().await;

    // A USER given before STLS is forgotten.
    let h = harness_with(&[MSG1], true, true).await;
    let mut c = Client::connect(&h.ctx).await;
    assert_eq!(c.cmd("USER alice").await, "+OK send PASS");
    let mut c = c.start_tls(&h.ctx).await;
    assert_eq!(c.cmd("PASS pw").await, "-ERR USER first");
    c.login().await;
    c.quit().await;
}
