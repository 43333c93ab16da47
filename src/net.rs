//! The one piece of session code that touches sockets: a buffered connection over plaintext
//! or TLS, with bounded line reads, idle timeouts, shutdown, and the STARTTLS upgrade.
//! Sessions (SMTP, POP3, later IMAP) are written against `Connection<S>` for any stream `S`.

use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::limits::COMMAND_TIMEOUT;

/// The most input buffered per connection: it must hold the longest command line (an SMTP
/// AUTH line); DATA and literals stream through it.
const READ_BUFFER: usize = 16 * 1024;
/// The input buffer of a connection reading command lines: a connection spends most of its
/// life waiting for one, and holding `READ_BUFFER` through every wait cost each idle session
/// 16 KiB. It grows to `READ_BUFFER` when a read fills it (more is coming: a long line, DATA,
/// a literal) and goes back to this size when it is empty and the last read did not fill it.
const INPUT_WAITING: usize = 1024;
/// Replies buffered before they must be sent.
const WRITE_BUFFER: usize = 64 * 1024;
/// The reply buffer's first size; none is kept while a session waits for its next command.
const OUTPUT_FIRST: usize = 1024;
/// A TLS handshake that takes longer than this is given up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Plaintext, or TLS (implicit or after STARTTLS).
pub enum Stream<S> {
    Plain(S),
    Tls(Box<TlsStream<S>>),
    /// Only while a STARTTLS handshake has taken the plaintext stream.
    Upgrading,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Upgrading => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Upgrading => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Upgrading => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Upgrading => Poll::Ready(Ok(())),
        }
    }
}

/// A TCP socket that acknowledges every read at once (`TCP_QUICKACK`, which the kernel clears
/// again on its own, hence after every read). Without it a client that sends a literal, DATA
/// or a TLS record in pieces waits on its Nagle timer for our delayed ACK: about 40 ms a
/// message for imaplib's APPEND or a submission over STARTTLS, while we have nothing to say
/// until the last piece arrives.
pub struct QuickAck(pub TcpStream);

impl QuickAck {
    fn acknowledge_now(&self) {
        let on: libc::c_int = 1;
        // Only a hint to the kernel: a failure changes timing, never data.
        // SAFETY: a valid descriptor owned by `self.0` and a c_int that outlives the call.
        unsafe {
            libc::setsockopt(
                self.0.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                std::ptr::from_ref(&on).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

impl AsyncRead for QuickAck {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.0).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.acknowledge_now();
        }
        read
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// Why a read did not produce data.
#[derive(Debug)]
pub enum Interrupted {
    /// The peer closed the connection (or it broke).
    Closed,
    /// Nothing arrived within the idle timeout.
    IdleTimeout,
    /// The server is shutting down.
    Shutdown,
}

impl From<io::Error> for Interrupted {
    fn from(_: io::Error) -> Self {
        Interrupted::Closed
    }
}

/// One line read in command mode.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The line without its line ending.
    Complete(Vec<u8>),
    /// Longer than allowed; it was read to its end and discarded.
    TooLong,
}

pub struct Connection<S> {
    stream: Stream<S>,
    input: Box<[u8]>,
    start: usize,
    end: usize,
    /// Whether the last read filled the space it was given (more input is probably waiting).
    last_read_filled: bool,
    output: Vec<u8>,
    idle: Duration,
    /// When set, reads give up at this instant however the peer paces its bytes (the total
    /// time allowed before login).
    deadline: Option<tokio::time::Instant>,
    shutdown: CancellationToken,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(stream: Stream<S>, idle: Duration, shutdown: CancellationToken) -> Self {
        Connection {
            stream,
            input: vec![0; INPUT_WAITING].into_boxed_slice(),
            start: 0,
            end: 0,
            last_read_filled: false,
            output: Vec::new(),
            idle,
            deadline: None,
            shutdown,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    pub fn set_idle_timeout(&mut self, idle: Duration) {
        self.idle = idle;
    }

    /// Bounds the total time of all further reads (`None`: only the idle timeout applies).
    /// Reaching it reads as `Interrupted::IdleTimeout`.
    pub fn set_deadline(&mut self, within: Option<Duration>) {
        self.deadline = within.map(|d| tokio::time::Instant::now() + d);
    }

    /// Bytes to send; sent before the next wait for input, or by `flush`. A large piece (of a
    /// body being sent) goes out as it is, after what is pending: copying it into the buffer
    /// first was a pass over every octet of a FETCH or RETR, and left the buffer as large.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), Interrupted> {
        if bytes.len() >= WRITE_BUFFER / 2 {
            self.send_output().await?;
            return self.send(bytes).await;
        }
        if !bytes.is_empty() {
            self.output().extend_from_slice(bytes);
        }
        if self.output.len() >= WRITE_BUFFER {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends what is buffered (without flushing the stream).
    async fn send_output(&mut self) -> Result<(), Interrupted> {
        if !self.output.is_empty() {
            let output = std::mem::take(&mut self.output);
            let sent = self.send(&output).await;
            self.output = output;
            self.output.clear();
            sent?;
        }
        Ok(())
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), Interrupted> {
        match tokio::time::timeout(self.idle, self.stream.write_all(bytes)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(Interrupted::IdleTimeout),
        }
    }

    /// A writer into the output buffer for the caller to encode into; follow with
    /// `write(&[])` or `flush` to respect the buffer bound.
    pub fn output(&mut self) -> &mut Vec<u8> {
        if self.output.capacity() == 0 {
            self.output.reserve(OUTPUT_FIRST);
        }
        &mut self.output
    }

    pub async fn flush(&mut self) -> Result<(), Interrupted> {
        self.send_output().await?;
        match tokio::time::timeout(self.idle, self.stream.flush()).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(Interrupted::IdleTimeout),
        }
    }

    /// Reads more input into the buffer. Pending output is sent first: that is what makes
    /// pipelining work (replies go out when the server would otherwise wait).
    /// Gives up at `by` too (the end of the time allowed for one command), if given.
    async fn fill_by(&mut self, by: Option<tokio::time::Instant>) -> Result<(), Interrupted> {
        self.flush().await?;
        // A session waits here most of its life: the reply buffer (grown by a long reply, a
        // FETCH of many small messages, or not) is not kept through the wait.
        self.output = Vec::new();
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if !self.last_read_filled && self.input.len() > INPUT_WAITING {
                self.input = vec![0; INPUT_WAITING].into_boxed_slice();
            }
        } else if self.end == self.input.len() {
            self.input.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if (self.last_read_filled || self.end == self.input.len()) && self.input.len() < READ_BUFFER
        {
            let mut input = vec![0; READ_BUFFER].into_boxed_slice();
            input[..self.end].copy_from_slice(&self.input[..self.end]);
            self.input = input;
        }
        let deadline = match (self.deadline, by) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let idle = match deadline {
            Some(deadline) => self
                .idle
                .min(deadline.saturating_duration_since(tokio::time::Instant::now())),
            None => self.idle,
        };
        let read = tokio::select! {
            read = tokio::time::timeout(idle, self.stream.read(&mut self.input[self.end..])) => read,
            () = self.shutdown.cancelled() => return Err(Interrupted::Shutdown),
        };
        match read {
            Err(_) => Err(Interrupted::IdleTimeout),
            Ok(Err(_)) | Ok(Ok(0)) => Err(Interrupted::Closed),
            Ok(Ok(n)) => {
                self.last_read_filled = self.end + n == self.input.len();
                self.end += n;
                Ok(())
            }
        }
    }

    /// Reads one line of at most `max` octets including its line ending. A longer line is
    /// consumed to its end and reported as `TooLong`, so the stream stays in sync. Once its
    /// first octet has arrived, the whole line must within `COMMAND_TIMEOUT` (or the read
    /// ends as `IdleTimeout`): the idle timer alone restarts on every byte.
    pub async fn read_line(&mut self, max: usize) -> Result<Line, Interrupted> {
        let mut too_long = false;
        let mut by = None;
        loop {
            let buffered = &self.input[self.start..self.end];
            if let Some(position) = buffered.iter().position(|&b| b == b'\n') {
                let line_end = self.start + position;
                let length = position + 1;
                let line = if too_long || length > max {
                    Line::TooLong
                } else {
                    let content_end = if position > 0 && buffered[position - 1] == b'\r' {
                        line_end - 1
                    } else {
                        line_end
                    };
                    Line::Complete(self.input[self.start..content_end].to_vec())
                };
                self.start = line_end + 1;
                return Ok(line);
            }
            if !buffered.is_empty() || too_long {
                by = by.or_else(|| Some(tokio::time::Instant::now() + COMMAND_TIMEOUT));
            }
            if buffered.len() >= max {
                too_long = true;
                self.start = self.end;
            }
            self.fill_by(by).await?;
        }
    }

    /// The input already buffered (for a DATA receiver to consume from).
    pub fn buffered(&self) -> &[u8] {
        &self.input[self.start..self.end]
    }

    /// Marks `n` buffered bytes as consumed.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Waits until some input is buffered.
    pub async fn read_more(&mut self) -> Result<(), Interrupted> {
        self.read_more_by(None).await
    }

    /// `read_more`, giving up at `by` too (the end of the time allowed for one command).
    pub async fn read_more_by(
        &mut self,
        by: Option<tokio::time::Instant>,
    ) -> Result<(), Interrupted> {
        if self.start == self.end {
            self.fill_by(by).await?;
        }
        Ok(())
    }

    /// Drops input the client sent before it could have seen our reply (after STARTTLS: the
    /// command-injection defence of RFC 3207 §4.2 / CVE-2011-0411).
    pub fn discard_buffered(&mut self) {
        self.start = self.end;
    }

    /// Upgrades to TLS after the "ready" reply has been written.
    pub async fn start_tls(&mut self, acceptor: &TlsAcceptor) -> Result<(), Interrupted> {
        self.flush().await?;
        self.discard_buffered();
        let Stream::Plain(plain) = std::mem::replace(&mut self.stream, Stream::Upgrading) else {
            return Err(Interrupted::Closed);
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(plain)).await {
            Ok(Ok(tls)) => {
                self.stream = Stream::Tls(Box::new(tls));
                Ok(())
            }
            _ => Err(Interrupted::Closed),
        }
    }

    /// Sends what is pending and closes the write side.
    pub async fn close(&mut self) {
        let _ = self.flush().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.stream.shutdown()).await;
    }
}

/// Accepts a TLS connection (implicit TLS ports) with a handshake timeout.
pub async fn accept_tls<S: AsyncRead + AsyncWrite + Unpin>(
    acceptor: &TlsAcceptor,
    stream: S,
) -> Option<Stream<S>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(Stream::Tls(Box::new(tls))),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
