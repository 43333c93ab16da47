//! POP3 protocol core (sans-I/O).
//!
//! What is here: the command grammar ([`parse_command`]), reply lines ([`ok`], [`err`]),
//! multi-line body framing ([`DotStuffer`], [`TopFilter`]), SASL PLAIN ([`decode_sasl_plain`])
//! and the capability listing ([`capa`]). Everything takes bytes and writes bytes into a
//! caller-owned `Vec`; nothing here touches sockets, files, clocks or tokio.
//!
//! What is not here: splitting the input stream into lines (the session owns that buffer and
//! enforces [`MAX_COMMAND_LINE`] while framing), and which command is allowed in which state.
//!
//! References: RFC 1939 (POP3), RFC 2449 (CAPA, response codes), RFC 3206 (`SYS/*`, `AUTH`
//! codes), RFC 5034 (POP3 AUTH), RFC 4616 (SASL PLAIN), RFC 4422 §3.1 (mechanism names).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::secret::Secret;

/// RFC 2449 §4: a command line is at most 255 octets including CRLF.
pub const MAX_COMMAND_LINE: usize = 255;

/// RFC 4422 §3.1: a SASL mechanism name is 1 to 20 characters.
const MAX_MECHANISM_NAME: usize = 20;

/// A parsed client command (RFC 1939 §5–7, RFC 2449 §5, RFC 2595 §4, RFC 5034 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    /// The rest of the line after `PASS `, verbatim (may contain spaces).
    Pass(Secret<String>),
    Quit,
    Stat,
    List(Option<u32>),
    Retr(u32),
    Dele(u32),
    Noop,
    Rset,
    Top {
        msg: u32,
        lines: u32,
    },
    Uidl(Option<u32>),
    Capa,
    Stls,
    Auth {
        /// `None` for a bare `AUTH` (list the mechanisms). Upper-cased.
        mechanism: Option<String>,
        /// The base64 initial response as sent; RFC 5034's `=` (empty response) becomes `""`.
        initial_response: Option<Secret<String>>,
    },
}

/// Why a command line or a SASL response was refused; the `Display` text suits a `-ERR` reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unknown command")]
    Unknown,
    #[error("{0}")]
    Syntax(&'static str),
    #[error("invalid characters in command")]
    Encoding,
}

/// Parses one command line, given WITHOUT its trailing CRLF.
///
/// Keywords are case-insensitive. Arguments are separated by spaces (runs of spaces are
/// tolerated, except that `PASS` takes everything after its single separating space verbatim).
/// Message numbers are 1-based decimal `u32`s; `TOP`'s line count may be 0. The line must be
/// UTF-8 without control characters, and at most [`MAX_COMMAND_LINE`] octets with its CRLF.
pub fn parse_command(line: &[u8]) -> Result<Command, ParseError> {
    if line.len().saturating_add(2) > MAX_COMMAND_LINE {
        return Err(ParseError::Syntax("command line too long"));
    }
    let line = std::str::from_utf8(line).map_err(|_| ParseError::Encoding)?;
    if line.chars().any(char::is_control) {
        return Err(ParseError::Encoding);
    }
    let (keyword, rest) = match line.split_once(' ') {
        Some((keyword, rest)) => (keyword, Some(rest)),
        None => (line, None),
    };
    let keyword = Keyword::new(keyword).ok_or(ParseError::Unknown)?;
    let mut args = rest.unwrap_or("").split(' ').filter(|arg| !arg.is_empty());
    // No command takes more than two arguments; a third one is always an error.
    let args = (args.next(), args.next(), args.next());

    match keyword.as_bytes() {
        b"USER" => match args {
            (Some(name), None, None) => Ok(Command::User(name.to_string())),
            _ => Err(ParseError::Syntax("usage: USER name")),
        },
        b"PASS" => match rest {
            Some(password) if !password.is_empty() => {
                Ok(Command::Pass(Secret::new(password.to_string())))
            }
            _ => Err(ParseError::Syntax("usage: PASS password")),
        },
        b"QUIT" => no_args(args, Command::Quit, "usage: QUIT"),
        b"STAT" => no_args(args, Command::Stat, "usage: STAT"),
        b"NOOP" => no_args(args, Command::Noop, "usage: NOOP"),
        b"RSET" => no_args(args, Command::Rset, "usage: RSET"),
        b"CAPA" => no_args(args, Command::Capa, "usage: CAPA"),
        b"STLS" => no_args(args, Command::Stls, "usage: STLS"),
        b"LIST" => optional_msg(args, "usage: LIST [msg]").map(Command::List),
        b"UIDL" => optional_msg(args, "usage: UIDL [msg]").map(Command::Uidl),
        b"RETR" => one_msg(args, "usage: RETR msg").map(Command::Retr),
        b"DELE" => one_msg(args, "usage: DELE msg").map(Command::Dele),
        b"TOP" => match args {
            (Some(msg), Some(lines), None) => Ok(Command::Top {
                msg: msg_number(msg)?,
                lines: decimal(lines).ok_or(ParseError::Syntax("invalid line count"))?,
            }),
            _ => Err(ParseError::Syntax("usage: TOP msg lines")),
        },
        b"AUTH" => match args {
            (None, _, _) => Ok(Command::Auth {
                mechanism: None,
                initial_response: None,
            }),
            (Some(mechanism), initial_response, None) => Ok(Command::Auth {
                mechanism: Some(mechanism_name(mechanism)?),
                initial_response: initial_response.map(|ir| {
                    // RFC 5034 §4: "=" stands for an empty initial response.
                    let ir = if ir == "=" { "" } else { ir };
                    Secret::new(ir.to_string())
                }),
            }),
            (Some(_), _, Some(_)) => Err(ParseError::Syntax(
                "usage: AUTH [mechanism [initial-response]]",
            )),
        },
        _ => Err(ParseError::Unknown),
    }
}

/// A command keyword, upper-cased into a fixed buffer (POP3 keywords are 3 or 4 letters).
struct Keyword {
    buf: [u8; 4],
    len: usize,
}

impl Keyword {
    fn new(word: &str) -> Option<Self> {
        let bytes = word.as_bytes();
        if !(3..=4).contains(&bytes.len()) {
            return None;
        }
        let mut buf = [0u8; 4];
        for (slot, b) in buf.iter_mut().zip(bytes) {
            *slot = b.to_ascii_uppercase();
        }
        Some(Keyword {
            buf,
            len: bytes.len(),
        })
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

type Args<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);

fn no_args(args: Args<'_>, command: Command, usage: &'static str) -> Result<Command, ParseError> {
    match args {
        (None, _, _) => Ok(command),
        _ => Err(ParseError::Syntax(usage)),
    }
}

fn optional_msg(args: Args<'_>, usage: &'static str) -> Result<Option<u32>, ParseError> {
    match args {
        (None, _, _) => Ok(None),
        (Some(msg), None, _) => msg_number(msg).map(Some),
        _ => Err(ParseError::Syntax(usage)),
    }
}

fn one_msg(args: Args<'_>, usage: &'static str) -> Result<u32, ParseError> {
    match args {
        (Some(msg), None, _) => msg_number(msg),
        _ => Err(ParseError::Syntax(usage)),
    }
}

/// Plain ASCII digits only (`u32::from_str` would also take a leading `+`).
fn decimal(arg: &str) -> Option<u32> {
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    arg.parse().ok()
}

/// RFC 1939 §3: message numbers start at 1.
fn msg_number(arg: &str) -> Result<u32, ParseError> {
    match decimal(arg) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(ParseError::Syntax("invalid message number")),
    }
}

/// RFC 4422 §3.1: `1*20 (UPPER-ALPHA / DIGIT / "-" / "_")`; lower case is accepted and folded.
fn mechanism_name(arg: &str) -> Result<String, ParseError> {
    let valid = arg.len() <= MAX_MECHANISM_NAME
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(arg.to_ascii_uppercase())
    } else {
        Err(ParseError::Syntax("invalid SASL mechanism name"))
    }
}

/// Writes `+OK text\r\n` (just `+OK\r\n` when `text` is empty).
pub fn ok(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"+OK");
    push_text(text, out);
    out.extend_from_slice(b"\r\n");
}

/// Writes `-ERR text\r\n`, or `-ERR [CODE] text\r\n` with an RFC 2449 §8 / RFC 3206 response
/// code such as `AUTH`, `SYS/TEMP`, `IN-USE` or `LOGIN-DELAY` (given with or without brackets).
pub fn err(code: Option<&str>, text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"-ERR");
    let code = code.map(|c| c.trim_start_matches('[').trim_end_matches(']'));
    if let Some(code) = code.filter(|c| !c.is_empty()) {
        out.extend_from_slice(b" [");
        push_sanitized(code, out);
        out.push(b']');
    }
    push_text(text, out);
    out.extend_from_slice(b"\r\n");
}

fn push_text(text: &str, out: &mut Vec<u8>) {
    if !text.is_empty() {
        out.push(b' ');
        push_sanitized(text, out);
    }
}

/// A reply is one line: CR and LF in the text (which may echo client data) become spaces.
fn push_sanitized(text: &str, out: &mut Vec<u8>) {
    out.extend(text.bytes().map(|b| match b {
        b'\r' | b'\n' => b' ',
        b => b,
    }));
}

/// Streams a stored message as a POP3 multi-line body (RFC 1939 §3).
///
/// Lines that start with `.` get another `.` in front; [`DotStuffer::finish`] writes the
/// terminating `.\r\n`, after a CRLF if the message did not end with one. A bare LF is sent as
/// CRLF, so a malformed message can never produce a line that a client reads as the end.
/// Chunk boundaries may fall anywhere; the output does not depend on them.
#[derive(Debug, Default)]
pub struct DotStuffer {
    /// Something other than a line ending has been written since the last LF.
    mid_line: bool,
    /// The last byte written was a CR (the LF may come in the next chunk).
    after_cr: bool,
}

impl DotStuffer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn encode(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        out.reserve(chunk.len() + chunk.len() / 64 + 2);
        // A line at a time (memchr finds its end): only a line's first octet can need a dot,
        // and only its last whether a CR goes before the LF, so the rest is copied whole.
        let mut rest = chunk;
        loop {
            let line_end = memchr::memchr(b'\n', rest);
            let text = &rest[..line_end.unwrap_or(rest.len())];
            if let (Some(&first), Some(&last)) = (text.first(), text.last()) {
                if first == b'.' && !self.mid_line {
                    out.push(b'.');
                }
                out.extend_from_slice(text);
                self.mid_line = true;
                self.after_cr = last == b'\r';
            }
            let Some(at) = line_end else {
                break;
            };
            if !self.after_cr {
                out.push(b'\r');
            }
            out.push(b'\n');
            self.mid_line = false;
            self.after_cr = false;
            rest = &rest[at + 1..];
        }
    }

    pub fn finish(self, out: &mut Vec<u8>) {
        if self.after_cr {
            out.push(b'\n');
        } else if self.mid_line {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// Cuts a message for `TOP msg n` (RFC 1939 §7): the header section, the empty line after it,
/// then at most `n` body lines. Output is raw message bytes, to be fed to a [`DotStuffer`].
///
/// A line ends at LF (CRLF, or a bare LF in a malformed message). A message without an empty
/// line is all header: `feed` passes all of it and never reports done; the caller stops at the
/// end of the message as usual.
#[derive(Debug)]
pub struct TopFilter {
    body_lines: u32,
    state: TopState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TopState {
    /// In the header section; `blank` describes the current line so far.
    Header {
        blank: Blank,
    },
    /// Past the empty line; `remaining` body lines still to pass (never 0).
    Body {
        remaining: u32,
    },
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blank {
    /// Nothing yet on this line.
    Empty,
    /// Only a CR so far.
    Cr,
    /// The line has content.
    No,
}

impl TopFilter {
    pub fn new(body_lines: u32) -> Self {
        TopFilter {
            body_lines,
            state: TopState::Header {
                blank: Blank::Empty,
            },
        }
    }

    /// Writes the part of `chunk` that belongs in the reply; true once nothing more is needed.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> bool {
        let mut end = chunk.len();
        for (i, &b) in chunk.iter().enumerate() {
            self.state = match self.state {
                TopState::Done => {
                    end = i;
                    break;
                }
                TopState::Header { blank } => match (b, blank) {
                    (b'\n', Blank::Empty | Blank::Cr) => self.after_header(),
                    (b'\n', Blank::No) => TopState::Header {
                        blank: Blank::Empty,
                    },
                    (b'\r', Blank::Empty) => TopState::Header { blank: Blank::Cr },
                    _ => TopState::Header { blank: Blank::No },
                },
                TopState::Body { remaining } if b == b'\n' => match remaining.checked_sub(1) {
                    Some(0) | None => TopState::Done,
                    Some(remaining) => TopState::Body { remaining },
                },
                body @ TopState::Body { .. } => body,
            };
        }
        out.extend_from_slice(&chunk[..end]);
        self.is_done()
    }

    /// True once the header, the empty line and the requested body lines have all passed.
    pub fn is_done(&self) -> bool {
        self.state == TopState::Done
    }

    fn after_header(&self) -> TopState {
        match self.body_lines {
            0 => TopState::Done,
            remaining => TopState::Body { remaining },
        }
    }
}

/// Decodes an RFC 4616 SASL PLAIN response: base64 of `authzid NUL authcid NUL passwd`.
///
/// Returns `(authcid, password)`. An authzid is accepted only when empty or equal to the
/// authcid (no logging in as someone else). RFC 5034's `=` must already be turned into `""`
/// (as [`parse_command`] does); an empty response is refused like any malformed one.
pub fn decode_sasl_plain(b64: &str) -> Result<(String, Secret<String>), ParseError> {
    let decoded = Secret::new(
        STANDARD
            .decode(b64)
            .map_err(|_| ParseError::Syntax("invalid base64"))?,
    );
    let mut fields = decoded.expose().split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(ParseError::Syntax("malformed PLAIN response"));
    };
    if authcid.is_empty() || password.is_empty() {
        return Err(ParseError::Syntax("malformed PLAIN response"));
    }
    if !authzid.is_empty() && authzid != authcid {
        return Err(ParseError::Syntax("authorization identity not allowed"));
    }
    let utf8 = |field: &[u8]| {
        std::str::from_utf8(field)
            .map(str::to_string)
            .map_err(|_| ParseError::Encoding)
    };
    Ok((utf8(authcid)?, Secret::new(utf8(password)?)))
}

/// Writes the whole CAPA reply (RFC 2449 §5): `+OK` line, capabilities, terminating `.`.
///
/// `USER` and `SASL PLAIN` appear only when a plaintext login is allowed right now; `STLS`
/// only when TLS is available and not yet active.
pub fn capa(tls_active: bool, stls_available: bool, login_allowed: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(b"+OK Capability list follows\r\n");
    let mut line = |cap: &[u8]| {
        out.extend_from_slice(cap);
        out.extend_from_slice(b"\r\n");
    };
    line(b"TOP");
    line(b"UIDL");
    line(b"RESP-CODES");
    line(b"AUTH-RESP-CODE");
    line(b"PIPELINING");
    if login_allowed {
        line(b"USER");
        line(b"SASL PLAIN");
    }
    if stls_available && !tls_active {
        line(b"STLS");
    }
    line(b"IMPLEMENTATION Letterbox");
    line(b".");
}

#[cfg(test)]
mod tests;
