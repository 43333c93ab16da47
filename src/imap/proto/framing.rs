//! Framing (RFC 9051 §4.3): a command is a line, or lines joined by literals. The [`Framer`]
//! turns the bytes a client sends into whole commands, sans-I/O (bytes in, steps out): it
//! checks each line and literal against its limit before keeping anything, asks for "+" only
//! for a literal it will take, and skips what a refused command still sends (LITERAL+ data),
//! so literal data is never read as a command and the stream stays in step. An APPEND's
//! message literal is not taken: the framer hands the command's start to the session, which
//! streams the message to disk. [`LineReader`] frames single lines (AUTHENTICATE responses,
//! the lines between APPEND's messages).

use super::append::{AppendPrefix, is_append, parse_append_prefix};
use crate::limits::{IMAP_COMMAND_LINE, IMAP_COMMAND_MAX, IMAP_PREAUTH_COMMAND_MAX};

/// Octets of an over-long line kept from its start (for the tag) and its end (for a literal
/// marker).
const KEPT_OF_LONG_LINE: usize = 64;

/// A line without its CRLF, or what is kept of one over the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Complete(Vec<u8>),
    TooLong { head: Vec<u8>, tail: Vec<u8> },
}

/// Reads one line of at most `max` octets; a longer one is read to its end and reported as
/// too long, so the stream stays in step.
#[derive(Debug)]
pub struct LineReader {
    max: usize,
    line: Vec<u8>,
    tail: Vec<u8>,
    too_long: bool,
}

impl LineReader {
    pub fn new(max: usize) -> LineReader {
        LineReader {
            max,
            line: Vec::new(),
            tail: Vec::new(),
            too_long: false,
        }
    }

    /// Takes octets of `input` up to and including the first LF: how many it took, and the
    /// line once it is complete (the reader is then ready for the next one).
    pub fn feed(&mut self, input: &[u8]) -> (usize, Option<Line>) {
        let (piece, complete) = match input.iter().position(|&b| b == b'\n') {
            Some(i) => (&input[..i], true),
            None => (input, false),
        };
        let used = piece.len() + usize::from(complete);
        if !self.too_long && self.line.len() + piece.len() > self.max {
            self.too_long = true;
            // What was kept so far ends where this piece begins: its last octets start the
            // tail (a literal marker may straddle the two), its first ones stay the head.
            let from = self.line.len().saturating_sub(KEPT_OF_LONG_LINE);
            self.tail.extend_from_slice(&self.line[from..]);
            self.line.truncate(KEPT_OF_LONG_LINE);
        }
        if self.too_long {
            self.tail.extend_from_slice(piece);
            if self.tail.len() > KEPT_OF_LONG_LINE {
                self.tail.drain(..self.tail.len() - KEPT_OF_LONG_LINE);
            }
            let room = KEPT_OF_LONG_LINE.saturating_sub(self.line.len());
            self.line.extend_from_slice(&piece[..piece.len().min(room)]);
        } else {
            self.line.extend_from_slice(piece);
        }
        if !complete {
            return (used, None);
        }
        let mut line = std::mem::take(&mut self.line);
        let mut tail = std::mem::take(&mut self.tail);
        let too_long = std::mem::replace(&mut self.too_long, false);
        if too_long {
            if tail.last() == Some(&b'\r') {
                tail.pop();
            }
            return (used, Some(Line::TooLong { head: line, tail }));
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        (used, Some(Line::Complete(line)))
    }
}

/// A whole command as the framer produced it.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Lines and literals, joined with CRLF: for the command parser.
    Command(Vec<u8>),
    /// Refused while framing (too long, literal too large): BAD to `tag`. Whatever the client
    /// sends without waiting for "+" has been read and dropped.
    Refused {
        tag: Option<String>,
        reason: &'static str,
    },
    /// Before login, a LITERAL+ over the bound: its data was not read, and reading it is
    /// what the bound is there to spare (`LOGIN {4000000000+}`), so the session answers BAD
    /// to `tag` and closes the connection (as RFC 7888 §4 allows).
    Abandoned {
        tag: Option<String>,
        reason: &'static str,
    },
    /// An APPEND whose message literal comes next; the session checks it and streams it.
    Append {
        prefix: AppendPrefix,
        literal: LiteralMarker,
    },
}

/// What the framer needs or has.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Every octet given was taken: more input, please.
    NeedInput,
    /// The client waits for "+" before it sends the literal the framer will now read.
    SendContinuation,
    Done(Frame),
}

#[derive(Debug)]
enum State {
    Line(LineReader),
    /// Octets of a literal still to be read into the command.
    Literal(u64),
    /// Octets of a refused command's LITERAL+ data still to be dropped.
    Skip(u64),
}

/// Frames one command after another (see the module documentation).
#[derive(Debug)]
pub struct Framer {
    /// Mailbox names in UTF-8 (RFC 6855), for the APPEND prefix.
    utf8: bool,
    state: State,
    command: Vec<u8>,
    /// The command's tag, once its first line was read.
    tag: Option<String>,
    refused: Option<&'static str>,
    /// A whole command with its literals, at most.
    max_command: usize,
    /// Before login: no APPEND frames (the whole command is bounded like any other), and a
    /// LITERAL+ over the bound abandons the connection rather than being skipped.
    before_login: bool,
}

impl Framer {
    /// The framer of a logged-in session.
    pub fn new(utf8: bool) -> Framer {
        Framer {
            utf8,
            state: State::Line(LineReader::new(IMAP_COMMAND_LINE)),
            command: Vec::new(),
            tag: None,
            refused: None,
            max_command: IMAP_COMMAND_MAX,
            before_login: false,
        }
    }

    /// The framer before login: commands of at most `IMAP_PREAUTH_COMMAND_MAX` octets.
    pub fn before_login(utf8: bool) -> Framer {
        Framer {
            max_command: IMAP_PREAUTH_COMMAND_MAX,
            before_login: true,
            ..Framer::new(utf8)
        }
    }

    /// Takes what it can of `input`: how many octets it took, and the next step.
    pub fn feed(&mut self, input: &[u8]) -> (usize, Step) {
        let mut used = 0;
        loop {
            let rest = &input[used..];
            match &mut self.state {
                State::Literal(remaining) | State::Skip(remaining) => {
                    if rest.is_empty() {
                        return (used, Step::NeedInput);
                    }
                    let take = usize::try_from(*remaining)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    *remaining -= take as u64;
                    let done = *remaining == 0;
                    if matches!(self.state, State::Literal(_)) {
                        self.command.extend_from_slice(&rest[..take]);
                    }
                    used += take;
                    if done {
                        self.state = State::Line(LineReader::new(IMAP_COMMAND_LINE));
                    }
                }
                State::Line(reader) => {
                    let (taken, line) = reader.feed(rest);
                    used += taken;
                    let Some(line) = line else {
                        return (used, Step::NeedInput);
                    };
                    if let Some(step) = self.line(line) {
                        return (used, step);
                    }
                }
            }
        }
    }

    /// One line of the command: the command ends, or a literal follows.
    fn line(&mut self, line: Line) -> Option<Step> {
        // The tag comes from the command's first line: later lines of a refused command
        // (kept nowhere) must not replace it.
        let first = self.command.is_empty() && self.refused.is_none();
        let line = match line {
            Line::Complete(line) => {
                if first {
                    self.tag = tag_of(&line).map(str::to_string);
                }
                line
            }
            Line::TooLong { head, tail } => {
                if first {
                    self.tag = tag_of(&head).map(str::to_string);
                }
                self.refused.get_or_insert("Command line too long");
                tail
            }
        };
        let marker = literal_at_end(&line);
        if let Some(reason) = self.refused {
            // Stay in step: a refused command's LITERAL+ data is read and dropped.
            return match marker {
                Some(m) if m.non_sync => {
                    self.state = State::Skip(m.length);
                    self.resume_if_empty();
                    None
                }
                _ => Some(self.finish_refused(reason)),
            };
        }
        self.command.extend_from_slice(&line);
        let Some(marker) = marker else {
            self.tag = None;
            return Some(Step::Done(Frame::Command(std::mem::take(
                &mut self.command,
            ))));
        };
        if !self.before_login && is_append(&self.command) {
            let open = self.command.iter().rposition(|&b| b == b'{').unwrap_or(0);
            // The message may be a literal8 (RFC 3516 §4.4): the prefix stops before its `~`.
            let open = open.saturating_sub(usize::from(marker.binary));
            if let Ok(prefix) = parse_append_prefix(&self.command[..open], self.utf8) {
                self.command.clear();
                self.tag = None;
                return Some(Step::Done(Frame::Append {
                    prefix,
                    literal: marker,
                }));
            }
        }
        let total = (self.command.len() as u64).saturating_add(marker.length);
        if total > self.max_command as u64 {
            if marker.non_sync && self.before_login {
                self.command.clear();
                self.state = State::Line(LineReader::new(IMAP_COMMAND_LINE));
                return Some(Step::Done(Frame::Abandoned {
                    tag: self.tag.take(),
                    reason: "Literal too large before login",
                }));
            }
            if marker.non_sync {
                self.refused = Some("Literal too large");
                self.state = State::Skip(marker.length);
                self.resume_if_empty();
                return None;
            }
            // The client waits for "+" that never comes: the command ends here.
            return Some(self.finish_refused(if self.before_login {
                "Literal too large before login"
            } else {
                "Literal too large"
            }));
        }
        self.command.extend_from_slice(b"\r\n");
        self.state = State::Literal(marker.length);
        self.resume_if_empty();
        (!marker.non_sync).then_some(Step::SendContinuation)
    }

    /// A literal of no octets is read at once.
    fn resume_if_empty(&mut self) {
        if matches!(self.state, State::Literal(0) | State::Skip(0)) {
            self.state = State::Line(LineReader::new(IMAP_COMMAND_LINE));
        }
    }

    fn finish_refused(&mut self, reason: &'static str) -> Step {
        self.command.clear();
        self.refused = None;
        Step::Done(Frame::Refused {
            tag: self.tag.take(),
            reason,
        })
    }
}

/// `{n}` (synchronizing: the client waits for "+") or `{n+}` (RFC 7888 LITERAL+: it does not),
/// each also as `~{n}` / `~{n+}`: a literal8 (RFC 3516 §4.4), whose data may hold NUL octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiteralMarker {
    pub length: u64,
    pub non_sync: bool,
    /// A literal8: the marker starts with `~`, one octet before its `{`.
    pub binary: bool,
}

/// The literal announced at the end of `line` (a line without its CRLF), if any.
pub fn literal_at_end(line: &[u8]) -> Option<LiteralMarker> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let binary = inner[..open].ends_with(b"~");
    let mut digits = &inner[open + 1..];
    let non_sync = match digits.strip_suffix(b"+") {
        Some(d) => {
            digits = d;
            true
        }
        None => false,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Too many digits for u64: announce "as large as can be", which is refused.
    let length = std::str::from_utf8(digits)
        .ok()?
        .parse()
        .unwrap_or(u64::MAX);
    Some(LiteralMarker {
        length,
        non_sync,
        binary,
    })
}

/// The tag at the start of a command, if it has a usable one (to answer BAD to it).
pub fn tag_of(command: &[u8]) -> Option<&str> {
    let end = command
        .iter()
        .position(|&b| b == b' ')
        .unwrap_or(command.len());
    let tag = std::str::from_utf8(&command[..end]).ok()?;
    let valid = !tag.is_empty()
        && tag.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b'+')
        });
    valid.then_some(tag)
}

#[cfg(test)]
mod tests;
