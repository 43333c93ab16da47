//! A streaming MIME scanner (RFC 2045/2046): fed a message in chunks of any size, it finds
//! header blocks, multipart boundaries and embedded messages, and records every part's byte
//! ranges and line count. It keeps one header block (bounded) and a short prefix of the
//! current line — never the body.

use super::{Part, headers};
use crate::limits::{MIME_HEADER_MAX, MIME_MAX_DEPTH, MIME_MAX_PARTS};

/// Longest line prefix kept: enough for any boundary delimiter (RFC 2046 §5.1.1: boundaries
/// are at most 70 characters) plus "--", "--" and some trailing white space.
const LINE_PREFIX: usize = 160;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Header,
    Body,
    /// A multipart's body: preamble, parts, or after the close delimiter.
    Parts,
    Epilogue,
}

struct Frame {
    part: Part,
    phase: Phase,
    boundary: Option<Vec<u8>>,
    /// Newlines seen before this part's body began.
    newlines_at_body: u64,
    /// The part is a message (root or embedded): it gets an envelope.
    message: bool,
    /// Children default to message/rfc822 (multipart/digest).
    digest: bool,
}

impl Frame {
    fn new(header_start: u64, message: bool, in_digest: bool) -> Frame {
        let (ctype, subtype) = if in_digest {
            ("message", "rfc822")
        } else {
            ("text", "plain")
        };
        Frame {
            part: Part {
                header_start,
                body_start: header_start,
                end: header_start,
                ctype: ctype.into(),
                subtype: subtype.into(),
                encoding: "7bit".into(),
                ..Part::default()
            },
            phase: Phase::Header,
            boundary: None,
            newlines_at_body: 0,
            message,
            digest: false,
        }
    }
}

pub struct Scanner {
    offset: u64,
    newlines: u64,
    line_start: u64,
    line: Vec<u8>,
    /// Length of the previous line's ending (CRLF 2, LF 1): that ending belongs to a
    /// boundary delimiter that follows it.
    previous_ending: u64,
    /// Length of the previous line without its ending: a body that ends before a delimiter
    /// ends with a partial line (counted as a line) unless that line was empty.
    previous_content: u64,
    /// The last octet fed was CR (a CRLF split across chunks).
    last_cr: bool,
    header: Vec<u8>,
    stack: Vec<Frame>,
    parts: usize,
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new()
    }
}

impl Scanner {
    pub fn new() -> Scanner {
        Scanner {
            offset: 0,
            newlines: 0,
            line_start: 0,
            line: Vec::with_capacity(LINE_PREFIX),
            previous_ending: 0,
            previous_content: 0,
            last_cr: false,
            header: Vec::new(),
            stack: vec![Frame::new(0, true, false)],
            parts: 1,
        }
    }

    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let (segment, complete) = match data.iter().position(|&b| b == b'\n') {
                Some(i) => (&data[..=i], true),
                None => (data, false),
            };
            if self.in_header() {
                let room = MIME_HEADER_MAX.saturating_sub(self.header.len());
                self.header
                    .extend_from_slice(&segment[..segment.len().min(room)]);
            }
            let room = LINE_PREFIX.saturating_sub(self.line.len());
            self.line
                .extend_from_slice(&segment[..segment.len().min(room)]);
            self.offset += segment.len() as u64;
            data = &data[segment.len()..];
            let ending = if !complete {
                0
            } else if segment.ends_with(b"\r\n") || (segment.len() == 1 && self.last_cr) {
                2
            } else {
                1
            };
            self.last_cr = segment.last() == Some(&b'\r');
            if complete {
                self.newlines += 1;
                self.end_of_line(ending);
            }
        }
    }

    fn in_header(&self) -> bool {
        self.stack.last().is_some_and(|f| f.phase == Phase::Header)
    }

    fn end_of_line(&mut self, ending: u64) {
        let has_newline = ending > 0;
        let line_len = self.offset - self.line_start;
        if !self.boundary_line(has_newline) {
            let blank = has_newline && line_len == ending;
            if blank && self.in_header() {
                self.end_of_header(self.offset);
            }
        }
        self.line.clear();
        self.line_start = self.offset;
        self.previous_ending = ending;
        self.previous_content = line_len - ending;
    }

    /// Handles a delimiter line of any enclosing multipart; false if it is not one.
    fn boundary_line(&mut self, has_newline: bool) -> bool {
        let Some(rest) = self.line.strip_prefix(b"--") else {
            return false;
        };
        let rest = trim_end(rest);
        let mut found = None;
        for (i, frame) in self.stack.iter().enumerate().rev() {
            let Some(boundary) = &frame.boundary else {
                continue;
            };
            if frame.phase != Phase::Parts {
                continue;
            }
            if let Some(after) = rest.strip_prefix(boundary.as_slice()) {
                if after.is_empty() {
                    found = Some((i, false));
                    break;
                }
                if after == b"--" {
                    found = Some((i, true));
                    break;
                }
            }
        }
        let Some((index, closing)) = found else {
            return false;
        };
        // The line ending before the delimiter belongs to it (RFC 2046 §5.1.1).
        let end = self.line_start.saturating_sub(self.previous_ending);
        let newlines_before = self.newlines - u64::from(has_newline);
        let newlines_at_end = newlines_before.saturating_sub(u64::from(self.previous_ending > 0));
        let partial = self.previous_content > 0;
        while self.stack.len() > index + 1 {
            self.close_top(end, newlines_at_end, partial);
        }
        if closing {
            if let Some(frame) = self.stack.last_mut() {
                frame.phase = Phase::Epilogue;
            }
        } else if self.parts < MIME_MAX_PARTS {
            self.parts += 1;
            let digest = self.stack.last().is_some_and(|f| f.digest);
            self.header.clear();
            self.stack.push(Frame::new(self.offset, false, digest));
        } else if let Some(frame) = self.stack.last_mut() {
            // Too many parts: the rest of this multipart is folded into its last part.
            frame.phase = Phase::Epilogue;
        }
        true
    }

    fn end_of_header(&mut self, body_start: u64) {
        let depth = self.stack.len();
        let newlines = self.newlines;
        let Some(frame) = self.stack.last_mut() else {
            return;
        };
        frame.part.body_start = body_start;
        frame.newlines_at_body = newlines;
        let default = (frame.part.ctype.clone(), frame.part.subtype.clone());
        headers::apply(
            &mut frame.part,
            &self.header,
            (&default.0, &default.1),
            frame.message,
        );
        self.header.clear();
        frame.phase = Phase::Body;
        let nested_ok = depth < MIME_MAX_DEPTH && self.parts < MIME_MAX_PARTS;
        if frame.part.is_multipart() {
            let boundary = frame
                .part
                .params
                .iter()
                .find(|(n, _)| n == "boundary")
                .map(|(_, v)| v.as_bytes().to_vec())
                .filter(|b| !b.is_empty() && b.len() <= LINE_PREFIX - 8);
            if let Some(boundary) = boundary.filter(|_| nested_ok) {
                frame.boundary = Some(boundary);
                frame.phase = Phase::Parts;
                frame.digest = frame.part.subtype == "digest";
            }
        } else if frame.part.ctype == "message"
            && matches!(frame.part.subtype.as_str(), "rfc822" | "global")
            && nested_ok
            && matches!(frame.part.encoding.as_str(), "7bit" | "8bit" | "binary")
        {
            self.parts += 1;
            self.stack.push(Frame::new(body_start, true, false));
        }
    }

    /// Ends the innermost part at `end`.
    fn close_top(&mut self, end: u64, newlines_at_end: u64, partial: bool) {
        let Some(mut frame) = self.stack.pop() else {
            return;
        };
        // A part ends no earlier than it starts. The message inside a message/rfc822 part
        // starts where that part's body does, after the blank line; a delimiter right after the
        // blank line ends the enclosing content before it, at the CRLF the blank line and the
        // delimiter share (RFC 2046 §5.1.1).
        let end = end.max(frame.part.header_start);
        if frame.phase == Phase::Header {
            // No blank line: the whole part is header, the body is empty.
            self.end_of_header_for(&mut frame, end);
        }
        frame.part.end = end.max(frame.part.body_start);
        frame.part.lines = newlines_at_end.saturating_sub(frame.newlines_at_body)
            + u64::from(partial && frame.part.end > frame.part.body_start);
        if let Some(parent) = self.stack.last_mut() {
            parent.part.children.push(frame.part);
        }
    }

    fn end_of_header_for(&mut self, frame: &mut Frame, end: u64) {
        frame.part.body_start = end;
        frame.newlines_at_body = self.newlines;
        let default = (frame.part.ctype.clone(), frame.part.subtype.clone());
        headers::apply(
            &mut frame.part,
            &self.header,
            (&default.0, &default.1),
            frame.message,
        );
        self.header.clear();
        frame.phase = Phase::Body;
    }

    /// Ends the message and returns its root part.
    pub fn finish(mut self) -> Part {
        let partial = self.offset > self.line_start;
        if partial {
            self.end_of_line(0);
        }
        let end = self.offset;
        let newlines = self.newlines;
        while self.stack.len() > 1 {
            self.close_top(end, newlines, partial);
        }
        match self.stack.pop() {
            Some(mut root) => {
                if root.phase == Phase::Header {
                    self.end_of_header_for(&mut root, end);
                }
                root.part.end = end;
                root.part.lines = newlines.saturating_sub(root.newlines_at_body)
                    + u64::from(partial && root.part.end > root.part.body_start);
                root.part
            }
            None => Part::default(),
        }
    }
}

fn trim_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|&b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .map_or(0, |i| i + 1);
    &bytes[..end]
}
