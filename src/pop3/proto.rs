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
        for &b in chunk {
            if b == b'\n' {
                if !self.after_cr {
                    out.push(b'\r');
                }
                out.push(b'\n');
                self.mid_line = false;
                self.after_cr = false;
            } else {
                if b == b'.' && !self.mid_line {
                    out.push(b'.');
                }
                out.push(b);
                self.mid_line = true;
                self.after_cr = b == b'\r';
            }
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
mod tests {
    use super::*;

    fn pass(p: &str) -> Command {
        Command::Pass(Secret::new(p.to_string()))
    }

    fn auth(mechanism: Option<&str>, ir: Option<&str>) -> Command {
        Command::Auth {
            mechanism: mechanism.map(str::to_string),
            initial_response: ir.map(|s| Secret::new(s.to_string())),
        }
    }

    fn syntax(msg: &'static str) -> Result<Command, ParseError> {
        Err(ParseError::Syntax(msg))
    }

    /// Each accepted form sits beside a rejected neighbour.
    #[test]
    fn parse_table() {
        let long_user = format!("USER {}", "a".repeat(MAX_COMMAND_LINE - 2 - 5));
        let too_long_user = format!("USER {}", "a".repeat(MAX_COMMAND_LINE - 2 - 4));
        let cases: Vec<(&[u8], Result<Command, ParseError>)> = vec![
            // Keywords, any case.
            (b"STAT", Ok(Command::Stat)),
            (b"stat", Ok(Command::Stat)),
            (b"sTaT", Ok(Command::Stat)),
            (b"STAT x", syntax("usage: STAT")),
            (b"STATS", Err(ParseError::Unknown)),
            (b"QUIT", Ok(Command::Quit)),
            (b"quit ", Ok(Command::Quit)),
            (b"QUIT now", syntax("usage: QUIT")),
            (b"NOOP", Ok(Command::Noop)),
            (b"RSET", Ok(Command::Rset)),
            (b"RSET 1", syntax("usage: RSET")),
            (b"CAPA", Ok(Command::Capa)),
            (b"capa", Ok(Command::Capa)),
            (b"STLS", Ok(Command::Stls)),
            (b"STLS x", syntax("usage: STLS")),
            (b"", Err(ParseError::Unknown)),
            (b"XYZZY", Err(ParseError::Unknown)),
            (b"APOP user digest", Err(ParseError::Unknown)),
            (b" STAT", Err(ParseError::Unknown)),
            // Message numbers.
            (b"RETR 1", Ok(Command::Retr(1))),
            (b"retr 7", Ok(Command::Retr(7))),
            (b"RETR  2", Ok(Command::Retr(2))),
            (b"RETR 4294967295", Ok(Command::Retr(u32::MAX))),
            (b"RETR 0", syntax("invalid message number")),
            (b"RETR x", syntax("invalid message number")),
            (b"RETR -1", syntax("invalid message number")),
            (b"RETR +1", syntax("invalid message number")),
            (b"RETR 1 2", syntax("usage: RETR msg")),
            (b"RETR", syntax("usage: RETR msg")),
            (b"DELE 3", Ok(Command::Dele(3))),
            (b"DELE", syntax("usage: DELE msg")),
            (b"DELE 0", syntax("invalid message number")),
            (b"LIST", Ok(Command::List(None))),
            (b"LIST 4", Ok(Command::List(Some(4)))),
            (b"LIST 4294967296", syntax("invalid message number")),
            (b"LIST 1 2", syntax("usage: LIST [msg]")),
            (b"UIDL", Ok(Command::Uidl(None))),
            (b"uidl 9", Ok(Command::Uidl(Some(9)))),
            (b"UIDL 0", syntax("invalid message number")),
            (b"UIDL a b", syntax("usage: UIDL [msg]")),
            (b"TOP 1 0", Ok(Command::Top { msg: 1, lines: 0 })),
            (b"top 2 10", Ok(Command::Top { msg: 2, lines: 10 })),
            (b"TOP 0 1", syntax("invalid message number")),
            (b"TOP 1 x", syntax("invalid line count")),
            (b"TOP 1", syntax("usage: TOP msg lines")),
            (b"TOP 1 2 3", syntax("usage: TOP msg lines")),
            // USER / PASS.
            (b"USER alice", Ok(Command::User("alice".into()))),
            (b"user alice", Ok(Command::User("alice".into()))),
            (b"USER", syntax("usage: USER name")),
            (b"USER alice smith", syntax("usage: USER name")),
            (b"PASS secret", Ok(pass("secret"))),
            (b"pass with spaces ", Ok(pass("with spaces "))),
            (b"PASS  lead", Ok(pass(" lead"))),
            (b"PASS", syntax("usage: PASS password")),
            (b"PASS ", syntax("usage: PASS password")),
            ("PASS pässwörd".as_bytes(), Ok(pass("pässwörd"))),
            (b"PASS a\tb", Err(ParseError::Encoding)),
            // AUTH.
            (b"AUTH", Ok(auth(None, None))),
            (b"AUTH PLAIN", Ok(auth(Some("PLAIN"), None))),
            (b"auth plain", Ok(auth(Some("PLAIN"), None))),
            (
                b"AUTH PLAIN AGFsaWNlAHNlY3JldA==",
                Ok(auth(Some("PLAIN"), Some("AGFsaWNlAHNlY3JldA=="))),
            ),
            (b"AUTH PLAIN =", Ok(auth(Some("PLAIN"), Some("")))),
            (
                b"AUTH PLAIN a b",
                syntax("usage: AUTH [mechanism [initial-response]]"),
            ),
            (b"AUTH PL@IN", syntax("invalid SASL mechanism name")),
            (
                b"AUTH ABCDEFGHIJKLMNOPQRSTU",
                syntax("invalid SASL mechanism name"),
            ),
            (b"AUTH SCRAM-SHA-256", Ok(auth(Some("SCRAM-SHA-256"), None))),
            // Encoding and length.
            (
                long_user.as_bytes(),
                Ok(Command::User("a".repeat(MAX_COMMAND_LINE - 7))),
            ),
            (too_long_user.as_bytes(), syntax("command line too long")),
            (b"STAT\r", Err(ParseError::Encoding)),
            (b"USER a\nSTAT", Err(ParseError::Encoding)),
            (b"USER a\0b", Err(ParseError::Encoding)),
            (b"USER \xff\xfe", Err(ParseError::Encoding)),
            (b"\x7f", Err(ParseError::Encoding)),
        ];
        assert!(!cases.is_empty());
        for (line, want) in cases {
            assert_eq!(
                parse_command(line),
                want,
                "line {:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn pass_debug_hides_password() {
        let cmd = parse_command(b"PASS hunter2").unwrap();
        assert!(!format!("{cmd:?}").contains("hunter2"));
    }

    #[test]
    fn error_text_fits_a_reply() {
        assert_eq!(ParseError::Unknown.to_string(), "unknown command");
        assert_eq!(
            ParseError::Syntax("usage: RETR msg").to_string(),
            "usage: RETR msg"
        );
        assert_eq!(
            ParseError::Encoding.to_string(),
            "invalid characters in command"
        );
    }

    #[test]
    fn reply_lines() {
        let cases: Vec<(Vec<u8>, &[u8])> = vec![
            (reply(|o| ok("2 320", o)), b"+OK 2 320\r\n"),
            (reply(|o| ok("", o)), b"+OK\r\n"),
            (reply(|o| ok("a\r\nb", o)), b"+OK a  b\r\n"),
            (
                reply(|o| err(None, "no such message", o)),
                b"-ERR no such message\r\n",
            ),
            (
                reply(|o| err(Some("AUTH"), "bad login", o)),
                b"-ERR [AUTH] bad login\r\n",
            ),
            (
                reply(|o| err(Some("[SYS/TEMP]"), "try later", o)),
                b"-ERR [SYS/TEMP] try later\r\n",
            ),
            (reply(|o| err(Some("IN-USE"), "", o)), b"-ERR [IN-USE]\r\n"),
            (reply(|o| err(Some(""), "x", o)), b"-ERR x\r\n"),
            (
                reply(|o| err(Some("LOGIN-DELAY"), "wait\n", o)),
                b"-ERR [LOGIN-DELAY] wait \r\n",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(want));
        }
    }

    fn reply(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut out);
        out
    }

    fn stuff(chunks: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut s = DotStuffer::new();
        for chunk in chunks {
            s.encode(chunk, &mut out);
        }
        s.finish(&mut out);
        out
    }

    const STUFF_CASES: &[(&[u8], &[u8])] = &[
        (b"", b".\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b"a", b"a\r\n.\r\n"),
        (b"a\r", b"a\r\n.\r\n"),
        (b".\r\n", b"..\r\n.\r\n"),
        (b".", b"..\r\n.\r\n"),
        (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r\n..x\r\n", b"a\r\n...x\r\n.\r\n"),
        (b"a.b\r\n x.\r\n", b"a.b\r\n x.\r\n.\r\n"),
        (b"S: x\r\n\r\n.\r\n.", b"S: x\r\n\r\n..\r\n..\r\n.\r\n"),
        // Bare LF becomes CRLF so a "." after it is still a stuffed line start.
        (b"a\n.\n", b"a\r\n..\r\n.\r\n"),
        (b"\n", b"\r\n.\r\n"),
        // A bare CR stays as it is.
        (b"a\rb\r\n", b"a\rb\r\n.\r\n"),
        (b"a\r.\r\n", b"a\r.\r\n.\r\n"),
    ];

    #[test]
    fn dot_stuffing_table() {
        for &(msg, want) in STUFF_CASES {
            assert_eq!(stuff(&[msg]), want, "{:?}", String::from_utf8_lossy(msg));
        }
    }

    #[test]
    fn dot_stuffing_ignores_chunk_boundaries() {
        let long: &[u8] = b"From: a\r\nSubject: .\r\n\r\n.\r\n..\r\nx.\r\n.\r\r\n\n.end";
        let messages = STUFF_CASES.iter().map(|&(msg, _)| msg).chain([long]);
        for msg in messages {
            let whole = stuff(&[msg]);
            for i in 0..=msg.len() {
                assert_eq!(stuff(&[&msg[..i], &msg[i..]]), whole, "split at {i}");
                for j in i..=msg.len() {
                    assert_eq!(stuff(&[&msg[..i], &msg[i..j], &msg[j..]]), whole);
                }
            }
            let bytes: Vec<&[u8]> = msg.chunks(1).collect();
            assert_eq!(stuff(&bytes), whole);
        }
    }

    fn top(chunks: &[&[u8]], n: u32) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut filter = TopFilter::new(n);
        let mut done = false;
        for chunk in chunks {
            done = filter.feed(chunk, &mut out);
            if done {
                break;
            }
        }
        (out, done)
    }

    const MSG: &[u8] = b"From: a\r\nTo: b\r\n\r\nline 1\r\nline 2\r\nline 3\r\n";

    const TOP_CASES: &[(&[u8], u32, &[u8], bool)] = &[
        (MSG, 0, b"From: a\r\nTo: b\r\n\r\n", true),
        (MSG, 1, b"From: a\r\nTo: b\r\n\r\nline 1\r\n", true),
        (
            MSG,
            2,
            b"From: a\r\nTo: b\r\n\r\nline 1\r\nline 2\r\n",
            true,
        ),
        (MSG, 3, MSG, true),
        (MSG, 10, MSG, false),
        (MSG, u32::MAX, MSG, false),
        // Header only, with and without final CRLF: all of it, never done.
        (b"From: a\r\nTo: b\r\n", 0, b"From: a\r\nTo: b\r\n", false),
        (b"From: a\r\nTo: b", 5, b"From: a\r\nTo: b", false),
        (b"", 0, b"", false),
        // Header and empty line but no body.
        (b"From: a\r\n\r\n", 0, b"From: a\r\n\r\n", true),
        (b"From: a\r\n\r\n", 3, b"From: a\r\n\r\n", false),
        // Last body line without CRLF.
        (b"A: 1\r\n\r\nx\r\ny", 5, b"A: 1\r\n\r\nx\r\ny", false),
        // Empty body lines count as lines.
        (
            b"A: 1\r\n\r\n\r\n\r\nz\r\n",
            2,
            b"A: 1\r\n\r\n\r\n\r\n",
            true,
        ),
        // No header at all: the first line is the empty line.
        (b"\r\nbody\r\n", 0, b"\r\n", true),
        (b"\r\nbody\r\nmore\r\n", 1, b"\r\nbody\r\n", true),
        // Bare LF line endings.
        (b"A: 1\n\nx\ny\n", 1, b"A: 1\n\nx\n", true),
        // A line holding only CR CR is not the empty line.
        (b"A: 1\r\n\r\r\n\r\nb\r\n", 0, b"A: 1\r\n\r\r\n\r\n", true),
        // Folded header lines are header lines.
        (b"S: a\r\n  b\r\n\r\nx\r\n", 0, b"S: a\r\n  b\r\n\r\n", true),
    ];

    #[test]
    fn top_table() {
        for &(msg, n, want, want_done) in TOP_CASES {
            let label = format!("TOP {n} of {:?}", String::from_utf8_lossy(msg));
            let (out, done) = top(&[msg], n);
            assert_eq!(out, want, "{label}");
            assert_eq!(done, want_done, "{label}");
        }
    }

    #[test]
    fn top_ignores_chunk_boundaries() {
        for &(msg, n, want, want_done) in TOP_CASES {
            for i in 0..=msg.len() {
                for j in i..=msg.len() {
                    let (out, done) = top(&[&msg[..i], &msg[i..j], &msg[j..]], n);
                    assert_eq!((out.as_slice(), done), (want, want_done), "split {i},{j}");
                }
            }
        }
    }

    #[test]
    fn top_after_done_writes_nothing() {
        let mut out = Vec::new();
        let mut filter = TopFilter::new(0);
        assert!(filter.feed(b"A: 1\r\n\r\nbody\r\n", &mut out));
        assert!(filter.is_done());
        assert!(filter.feed(b"more\r\n", &mut out));
        assert_eq!(out, b"A: 1\r\n\r\n");
    }

    #[test]
    fn top_then_stuff() {
        let msg: &[u8] = b"A: 1\r\n\r\n.\r\n.x\r\nrest\r\n";
        let (body, done) = top(&[msg], 2);
        assert!(done);
        assert_eq!(stuff(&[&body]), b"A: 1\r\n\r\n..\r\n..x\r\n.\r\n");
    }

    fn b64(raw: &[u8]) -> String {
        STANDARD.encode(raw)
    }

    type PlainCase = (String, Result<(&'static str, &'static str), ParseError>);

    #[test]
    fn sasl_plain_table() {
        let cases: Vec<PlainCase> = vec![
            (b64(b"\0alice\0secret"), Ok(("alice", "secret"))),
            (b64(b"alice\0alice\0secret"), Ok(("alice", "secret"))),
            (b64(b"\0alice\0with space"), Ok(("alice", "with space"))),
            (b64("\0jörg\0pässwörd".as_bytes()), Ok(("jörg", "pässwörd"))),
            (
                b64(b"bob\0alice\0secret"),
                Err(ParseError::Syntax("authorization identity not allowed")),
            ),
            ("AGFsaWNlAHNlY3JldA==".into(), Ok(("alice", "secret"))),
            (
                "AGFsaWNlAHNlY3JldA".into(),
                Err(ParseError::Syntax("invalid base64")),
            ),
            (
                "not base64!".into(),
                Err(ParseError::Syntax("invalid base64")),
            ),
            ("=".into(), Err(ParseError::Syntax("invalid base64"))),
            ("*".into(), Err(ParseError::Syntax("invalid base64"))),
            (
                "".into(),
                Err(ParseError::Syntax("malformed PLAIN response")),
            ),
            (
                b64(b"alice\0secret"),
                Err(ParseError::Syntax("malformed PLAIN response")),
            ),
            (
                b64(b"\0alice\0secret\0x"),
                Err(ParseError::Syntax("malformed PLAIN response")),
            ),
            (
                b64(b"\0\0secret"),
                Err(ParseError::Syntax("malformed PLAIN response")),
            ),
            (
                b64(b"\0alice\0"),
                Err(ParseError::Syntax("malformed PLAIN response")),
            ),
            (b64(b"\0al\xffice\0secret"), Err(ParseError::Encoding)),
            (b64(b"\0alice\0se\xffcret"), Err(ParseError::Encoding)),
        ];
        for (input, want) in cases {
            let got = decode_sasl_plain(&input);
            let got = got
                .as_ref()
                .map(|(user, pw)| (user.as_str(), pw.expose().as_str()))
                .map_err(Clone::clone);
            assert_eq!(got, want, "input {input:?}");
        }
    }

    #[test]
    fn capa_listing() {
        let common_head = "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n\
                           AUTH-RESP-CODE\r\nPIPELINING\r\n";
        let tail = "IMPLEMENTATION Letterbox\r\n.\r\n";
        let login = "USER\r\nSASL PLAIN\r\n";
        let cases: Vec<((bool, bool, bool), String)> = vec![
            // Plain connection, TLS offered, login refused until STLS.
            ((false, true, false), format!("{common_head}STLS\r\n{tail}")),
            // Plain connection, no TLS configured, login allowed.
            ((false, false, true), format!("{common_head}{login}{tail}")),
            // After STLS.
            ((true, true, true), format!("{common_head}{login}{tail}")),
            ((true, false, false), format!("{common_head}{tail}")),
            (
                (false, true, true),
                format!("{common_head}{login}STLS\r\n{tail}"),
            ),
        ];
        for ((tls, stls, login_allowed), want) in cases {
            let mut out = Vec::new();
            capa(tls, stls, login_allowed, &mut out);
            assert_eq!(String::from_utf8_lossy(&out), want);
        }
    }
}
