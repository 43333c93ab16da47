//! The SMTP client: one connection to a next hop (an MX host or the smarthost), EHLO,
//! STARTTLS, AUTH, and one transaction per message with many recipients. The body is
//! streamed from the store chunk by chunk and dot-stuffed on the way.
//!
//! Timeouts are those of RFC 5321 §4.5.3.2: 5 minutes for the greeting, MAIL and RCPT,
//! 2 minutes for the DATA command, 3 minutes per data block, 10 minutes for the final reply.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::secret::Secret;
use crate::store::{BodyReader, StoreError};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
pub const GREETING_TIMEOUT: Duration = Duration::from_secs(5 * 60);
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5 * 60);
pub const DATA_INIT_TIMEOUT: Duration = Duration::from_secs(2 * 60);
pub const DATA_BLOCK_TIMEOUT: Duration = Duration::from_secs(3 * 60);
pub const DATA_END_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const TLS_TIMEOUT: Duration = Duration::from_secs(60);
/// A reply line longer than this is cut (RFC 5321 §4.5.3.1.5 says 512 octets).
const MAX_REPLY_LINE: usize = 4096;
/// Lines of one multi-line reply kept at most.
const MAX_REPLY_LINES: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection to {0} failed: {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("{0}: timed out")]
    Timeout(&'static str),
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("{0}")]
    Reply(Reply),
    #[error("reading the message from the store: {0}")]
    Store(#[from] StoreError),
}

impl ClientError {
    /// A 5xx reply; everything else is worth another try.
    pub fn is_permanent(&self) -> bool {
        matches!(self, ClientError::Reply(reply) if reply.is_permanent())
    }
}

/// A reply from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// All lines' texts joined with a space.
    pub text: String,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }
    /// The enhanced status code at the start of the text (RFC 3463), if any.
    pub fn enhanced(&self) -> Option<&str> {
        enhanced_at_start(&self.text)
    }
}

/// The enhanced status code (RFC 3463) that `text` starts with, if any.
pub fn enhanced_at_start(text: &str) -> Option<&str> {
    let first = text.split_whitespace().next()?;
    let parts: Vec<&str> = first.split('.').collect();
    (parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
    .then_some(first)
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Gone,
}

/// What EHLO said.
#[derive(Debug, Default, Clone)]
pub struct Extensions {
    pub starttls: bool,
    pub auth_plain: bool,
    pub auth_login: bool,
    pub size: Option<u64>,
    pub eight_bit: bool,
    pub smtputf8: bool,
}

pub struct Client {
    stream: Stream,
    input: Vec<u8>,
    /// The text lines of the last reply.
    last_lines: Vec<String>,
    pub peer: SocketAddr,
    pub extensions: Extensions,
}

/// The outcome of one recipient in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientResult {
    Accepted,
    Refused(Reply),
}

/// A transaction that failed part way.
#[derive(Debug)]
pub struct Failed {
    /// The RCPT replies received before it failed, in order. Each still stands for its
    /// recipient: the end of data covers only the recipients accepted (RFC 5321 §3.3), so
    /// a 550 at RCPT is final and a 451 at RCPT is retried, whatever DATA then got.
    pub replies: Vec<RecipientResult>,
    /// What failed; it applies to the recipients accepted and those not yet asked.
    pub error: ClientError,
}

impl Client {
    pub async fn connect(peer: SocketAddr) -> Result<Client, ClientError> {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return Err(ClientError::Connect(peer, error)),
            Err(_) => return Err(ClientError::Timeout("connect")),
        };
        let _ = stream.set_nodelay(true);
        let mut client = Client {
            stream: Stream::Plain(stream),
            input: Vec::with_capacity(1024),
            last_lines: Vec::new(),
            peer,
            extensions: Extensions::default(),
        };
        let greeting = client.read_reply(GREETING_TIMEOUT, "greeting").await?;
        if greeting.code != 220 {
            return Err(ClientError::Reply(greeting));
        }
        Ok(client)
    }

    /// Connects with TLS from the first byte (smarthosts on port 465).
    pub async fn connect_tls(
        peer: SocketAddr,
        connector: &TlsConnector,
        name: ServerName<'static>,
    ) -> Result<Client, ClientError> {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return Err(ClientError::Connect(peer, error)),
            Err(_) => return Err(ClientError::Timeout("connect")),
        };
        let tls = match tokio::time::timeout(TLS_TIMEOUT, connector.connect(name, stream)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => return Err(ClientError::Tls(error.to_string())),
            Err(_) => return Err(ClientError::Timeout("TLS handshake")),
        };
        let mut client = Client {
            stream: Stream::Tls(Box::new(tls)),
            input: Vec::with_capacity(1024),
            last_lines: Vec::new(),
            peer,
            extensions: Extensions::default(),
        };
        let greeting = client.read_reply(GREETING_TIMEOUT, "greeting").await?;
        if greeting.code != 220 {
            return Err(ClientError::Reply(greeting));
        }
        Ok(client)
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// The negotiated TLS version, for people to read ("none" on a plaintext connection).
    pub fn tls_version(&self) -> &'static str {
        let Stream::Tls(tls) = &self.stream else {
            return "none";
        };
        match tls.get_ref().1.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
            _ => "TLS",
        }
    }

    /// The text of the last reply (all its lines, joined with a space), without the code.
    pub fn last_reply_text(&self) -> String {
        self.last_lines.join(" ")
    }

    pub async fn ehlo(&mut self, name: &str) -> Result<(), ClientError> {
        let reply = self
            .command(&format!("EHLO {name}"), COMMAND_TIMEOUT, "EHLO")
            .await?;
        if reply.code != 250 {
            // RFC 5321 §3.2: fall back to HELO.
            let reply = self
                .command(&format!("HELO {name}"), COMMAND_TIMEOUT, "HELO")
                .await?;
            if reply.code != 250 {
                return Err(ClientError::Reply(reply));
            }
            self.extensions = Extensions::default();
            return Ok(());
        }
        self.extensions = parse_extensions(&self.last_lines);
        Ok(())
    }

    /// STARTTLS (RFC 3207); the caller says EHLO again afterwards.
    pub async fn starttls(
        &mut self,
        connector: &TlsConnector,
        name: ServerName<'static>,
    ) -> Result<(), ClientError> {
        let reply = self
            .command("STARTTLS", COMMAND_TIMEOUT, "STARTTLS")
            .await?;
        if reply.code != 220 {
            return Err(ClientError::Reply(reply));
        }
        self.input.clear();
        let Stream::Plain(plain) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(ClientError::Protocol("STARTTLS on a TLS connection".into()));
        };
        match tokio::time::timeout(TLS_TIMEOUT, connector.connect(name, plain)).await {
            Ok(Ok(tls)) => {
                self.stream = Stream::Tls(Box::new(tls));
                Ok(())
            }
            Ok(Err(error)) => Err(ClientError::Tls(error.to_string())),
            Err(_) => Err(ClientError::Timeout("TLS handshake")),
        }
    }

    /// AUTH PLAIN, or LOGIN if that is all the server offers; returns the server's 235.
    pub async fn authenticate(
        &mut self,
        user: &str,
        password: &Secret<String>,
    ) -> Result<Reply, ClientError> {
        let reply = if self.extensions.auth_plain || !self.extensions.auth_login {
            let token = STANDARD.encode(format!("\0{user}\0{}", password.expose()));
            self.command_secret(&format!("AUTH PLAIN {token}"), "AUTH")
                .await?
        } else {
            let reply = self.command("AUTH LOGIN", COMMAND_TIMEOUT, "AUTH").await?;
            if reply.code != 334 {
                return Err(ClientError::Reply(reply));
            }
            let reply = self.command_secret(&STANDARD.encode(user), "AUTH").await?;
            if reply.code != 334 {
                return Err(ClientError::Reply(reply));
            }
            self.command_secret(&STANDARD.encode(password.expose()), "AUTH")
                .await?
        };
        if reply.code != 235 {
            return Err(ClientError::Reply(reply));
        }
        Ok(reply)
    }

    /// One transaction: MAIL, RCPT for each recipient, DATA with the body. Returns each
    /// recipient's RCPT result (in order); DATA is sent only when one was accepted.
    pub async fn send(
        &mut self,
        sender: &str,
        recipients: &[String],
        size: u64,
        prefix: &[u8],
        body: BodyReader,
    ) -> Result<Vec<RecipientResult>, Failed> {
        let mut replies = Vec::with_capacity(recipients.len());
        match self
            .transaction(sender, recipients, size, prefix, body, &mut replies)
            .await
        {
            Ok(()) => Ok(replies),
            Err(error) => Err(Failed { replies, error }),
        }
    }

    async fn transaction(
        &mut self,
        sender: &str,
        recipients: &[String],
        size: u64,
        prefix: &[u8],
        mut body: BodyReader,
        replies: &mut Vec<RecipientResult>,
    ) -> Result<(), ClientError> {
        let mut mail = format!("MAIL FROM:<{sender}>");
        if self.extensions.size.is_some() {
            mail.push_str(&format!(" SIZE={}", size + prefix.len() as u64));
        }
        if self.extensions.eight_bit {
            mail.push_str(" BODY=8BITMIME");
        }
        if self.extensions.smtputf8
            && !(sender.is_ascii() && recipients.iter().all(|r| r.is_ascii()))
        {
            mail.push_str(" SMTPUTF8");
        }
        let reply = self.command(&mail, COMMAND_TIMEOUT, "MAIL").await?;
        if !reply.is_positive() {
            return Err(ClientError::Reply(reply));
        }
        for recipient in recipients {
            let reply = self
                .command(&format!("RCPT TO:<{recipient}>"), COMMAND_TIMEOUT, "RCPT")
                .await?;
            replies.push(if reply.is_positive() {
                RecipientResult::Accepted
            } else {
                RecipientResult::Refused(reply)
            });
        }
        if !replies.contains(&RecipientResult::Accepted) {
            let _ = self.command("RSET", COMMAND_TIMEOUT, "RSET").await;
            return Ok(());
        }
        let reply = self.command("DATA", DATA_INIT_TIMEOUT, "DATA").await?;
        if reply.code != 354 {
            return Err(ClientError::Reply(reply));
        }
        let mut stuffer = DotStuffer::default();
        let mut out = Vec::with_capacity(crate::limits::BODY_CHUNK + 1024);
        stuffer.feed(prefix, &mut out);
        self.write_timed(&out, DATA_BLOCK_TIMEOUT).await?;
        while let Some(chunk) = body.next_chunk().await? {
            out.clear();
            stuffer.feed(&chunk, &mut out);
            self.write_timed(&out, DATA_BLOCK_TIMEOUT).await?;
        }
        out.clear();
        stuffer.finish(&mut out);
        self.write_timed(&out, DATA_BLOCK_TIMEOUT).await?;
        let reply = self.read_reply(DATA_END_TIMEOUT, "end of data").await?;
        if !reply.is_positive() {
            return Err(ClientError::Reply(reply));
        }
        Ok(())
    }

    pub async fn quit(mut self) {
        let _ = self.command("QUIT", Duration::from_secs(10), "QUIT").await;
        let _ = match &mut self.stream {
            Stream::Plain(s) => s.shutdown().await,
            Stream::Tls(s) => s.shutdown().await,
            Stream::Gone => Ok(()),
        };
    }

    async fn command(
        &mut self,
        line: &str,
        timeout: Duration,
        what: &'static str,
    ) -> Result<Reply, ClientError> {
        self.write_timed(format!("{line}\r\n").as_bytes(), timeout)
            .await?;
        self.read_reply(timeout, what).await
    }

    /// Like `command`, for lines that carry credentials (never logged).
    async fn command_secret(
        &mut self,
        line: &str,
        what: &'static str,
    ) -> Result<Reply, ClientError> {
        self.command(line, COMMAND_TIMEOUT, what).await
    }

    async fn write_timed(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), ClientError> {
        let write = async {
            match &mut self.stream {
                Stream::Plain(s) => write_flush(s, bytes).await,
                Stream::Tls(s) => write_flush(s.as_mut(), bytes).await,
                Stream::Gone => Err(std::io::ErrorKind::NotConnected.into()),
            }
        };
        match tokio::time::timeout(timeout, write).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(ClientError::Timeout("sending")),
        }
    }

    async fn read_reply(
        &mut self,
        timeout: Duration,
        what: &'static str,
    ) -> Result<Reply, ClientError> {
        match tokio::time::timeout(timeout, self.read_reply_inner()).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout(what)),
        }
    }

    async fn read_reply_inner(&mut self) -> Result<Reply, ClientError> {
        self.last_lines.clear();
        loop {
            let line = self.read_line().await?;
            let bytes = line.as_bytes();
            if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) {
                return Err(ClientError::Protocol(format!("bad reply line {line:?}")));
            }
            let code: u16 = line[..3].parse().unwrap_or(0);
            let more = bytes.get(3) == Some(&b'-');
            let text = line.get(4..).unwrap_or("").trim().to_string();
            if self.last_lines.len() < MAX_REPLY_LINES {
                self.last_lines.push(text);
            }
            if !more {
                return Ok(Reply {
                    code,
                    text: self.last_lines.join(" "),
                });
            }
        }
    }

    async fn read_line(&mut self) -> Result<String, ClientError> {
        loop {
            if let Some(end) = self.input.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.input.drain(..=end).collect();
                let mut text = String::from_utf8_lossy(&line).into_owned();
                while text.ends_with(['\r', '\n']) {
                    text.pop();
                }
                text.truncate(MAX_REPLY_LINE);
                return Ok(text);
            }
            if self.input.len() > MAX_REPLY_LINE {
                // Keep only the start of an overlong line.
                self.input.truncate(MAX_REPLY_LINE);
            }
            let mut chunk = [0u8; 2048];
            let n = match &mut self.stream {
                Stream::Plain(s) => s.read(&mut chunk).await?,
                Stream::Tls(s) => s.read(&mut chunk).await?,
                Stream::Gone => 0,
            };
            if n == 0 {
                return Err(ClientError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            self.input.extend_from_slice(&chunk[..n]);
        }
    }
}

async fn write_flush<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

fn parse_extensions(lines: &[String]) -> Extensions {
    let mut extensions = Extensions::default();
    // The first line is the greeting.
    for line in lines.iter().skip(1) {
        let mut words = line.split_whitespace();
        let Some(keyword) = words.next() else {
            continue;
        };
        match keyword.to_ascii_uppercase().as_str() {
            "STARTTLS" => extensions.starttls = true,
            "SIZE" => {
                extensions.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0))
            }
            "8BITMIME" => extensions.eight_bit = true,
            "SMTPUTF8" => extensions.smtputf8 = true,
            "AUTH" => {
                for mechanism in words {
                    match mechanism.to_ascii_uppercase().as_str() {
                        "PLAIN" => extensions.auth_plain = true,
                        "LOGIN" => extensions.auth_login = true,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    extensions
}

/// Dot-stuffing (RFC 5321 §4.5.2) across chunk boundaries, and the end marker.
#[derive(Debug)]
pub struct DotStuffer {
    at_line_start: bool,
    /// The last two bytes written, to know whether the text ended with CRLF.
    tail: [u8; 2],
}

impl Default for DotStuffer {
    fn default() -> Self {
        DotStuffer {
            at_line_start: true,
            tail: [b'\r', b'\n'],
        }
    }
}

impl DotStuffer {
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        for &b in bytes {
            if self.at_line_start && b == b'.' {
                out.push(b'.');
            }
            out.push(b);
            self.at_line_start = b == b'\n';
            self.tail = [self.tail[1], b];
        }
    }

    /// The end-of-data marker, after a CRLF if the text did not end with one.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.tail != [b'\r', b'\n'] {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_across_chunks() {
        let mut stuffer = DotStuffer::default();
        let mut out = Vec::new();
        stuffer.feed(b".starts\r\nmid.dle\r", &mut out);
        stuffer.feed(b"\n..two\r\nend", &mut out);
        stuffer.finish(&mut out);
        assert_eq!(
            out,
            b"..starts\r\nmid.dle\r\n...two\r\nend\r\n.\r\n".to_vec()
        );
        let mut stuffer = DotStuffer::default();
        let mut out = Vec::new();
        stuffer.feed(b"x\r\n", &mut out);
        stuffer.finish(&mut out);
        assert_eq!(out, b"x\r\n.\r\n".to_vec());
    }

    #[test]
    fn extensions_and_enhanced_codes() {
        let lines: Vec<String> = [
            "mx greets you",
            "SIZE 1000",
            "STARTTLS",
            "AUTH LOGIN PLAIN",
            "8BITMIME",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let e = parse_extensions(&lines);
        assert!(e.starttls && e.auth_plain && e.auth_login && e.eight_bit);
        assert_eq!(e.size, Some(1000));
        let reply = Reply {
            code: 550,
            text: "5.1.1 no such user".into(),
        };
        assert_eq!(reply.enhanced(), Some("5.1.1"));
        let reply = Reply {
            code: 550,
            text: "no such user".into(),
        };
        assert_eq!(reply.enhanced(), None);
    }
}
