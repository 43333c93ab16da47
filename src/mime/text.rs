//! The text of a message as a person reads it, for SEARCH BODY/TEXT (and later the spam
//! filter and export): each text part's content undone from its transfer encoding
//! (`decode`), then from its charset into UTF-8 (encoding_rs: ISO-8859-x, Windows-125x,
//! the CJK encodings...), HTML reduced to its text (`html`); embedded messages' headers
//! count as text too. Images and other non-text parts are not text.
//!
//! Streaming and sans-I/O: [`MessageText`] walks the stored MIME tree and is fed the body
//! one stored chunk at a time with its offset; it keeps one part's decoder state (a base64
//! quartet, a charset sequence cut in two, an HTML tag name), never the content. It says
//! which offset it wants next, so a caller can skip attachments without reading them.

use encoding_rs::{CoderResult, UTF_8};

use super::html::HtmlText;
use super::{Decoder, Encoding, Part, SearchFields};

/// Decoded text is produced through a buffer of this size (on the stack).
const UTF8_BUFFER: usize = 1024;

/// Where a piece of text comes from: the message's own header block (searched by TEXT, not
/// BODY), or its body (text parts and embedded messages, headers included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Header,
    Body,
}

/// Text pieces come out in order; a `"\0"` piece ends a part (a needle never holds NUL, so
/// no match runs from one part into the next).
pub const PART_END: &str = "\0";

/// One part's content → UTF-8 text.
pub struct PartText {
    transfer: Decoder,
    charset: encoding_rs::Decoder,
    html: Option<HtmlText>,
    octets: Vec<u8>,
    text: String,
}

impl PartText {
    /// The decoder for a text part's content, by its Content-Transfer-Encoding, charset
    /// and subtype. An unknown transfer encoding is read as it is; an unknown charset, or
    /// none, as UTF-8 (ASCII text reads the same, and unlabelled 8-bit text today is most
    /// often UTF-8). Invalid sequences become U+FFFD; nothing is refused.
    pub fn new(part: &Part) -> PartText {
        let label = part
            .params
            .iter()
            .find(|(name, _)| name == "charset")
            .map(|(_, value)| value.trim());
        // encoding_rs follows WHATWG, where "us-ascii" means windows-1252; a mislabelled
        // UTF-8 body is the commoner case in mail.
        let charset = label
            .filter(|l| !l.eq_ignore_ascii_case("us-ascii") && !l.eq_ignore_ascii_case("ascii"))
            .and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes()))
            .unwrap_or(UTF_8);
        PartText {
            transfer: Decoder::new(
                Encoding::from_header(&part.encoding).unwrap_or(Encoding::Identity),
            ),
            charset: charset.new_decoder_with_bom_removal(),
            html: (part.subtype == "html").then(HtmlText::default),
            octets: Vec::new(),
            text: String::new(),
        }
    }

    /// A header block: octets as they are, UTF-8 (RFC 6532) where not ASCII.
    pub fn header() -> PartText {
        PartText {
            transfer: Decoder::new(Encoding::Identity),
            charset: UTF_8.new_decoder_without_bom_handling(),
            html: None,
            octets: Vec::new(),
            text: String::new(),
        }
    }

    /// Appends the text `input` (the next piece of the content) decodes to.
    pub fn feed(&mut self, input: &[u8], out: &mut String) {
        self.octets.clear();
        self.transfer.feed(input, &mut self.octets);
        self.decode(false, out);
    }

    /// Appends what the end of the content completes.
    pub fn finish(&mut self, out: &mut String) {
        self.octets.clear();
        self.transfer.finish(&mut self.octets);
        self.decode(true, out);
        if let Some(html) = &mut self.html {
            html.finish(out);
        }
    }

    fn decode(&mut self, last: bool, out: &mut String) {
        self.text.clear();
        let mut buffer = [0u8; UTF8_BUFFER];
        let mut input = self.octets.as_slice();
        loop {
            let (result, read, written, _) = self.charset.decode_to_utf8(input, &mut buffer, last);
            // The decoder writes whole UTF-8 sequences only, so this never replaces.
            self.text
                .push_str(&String::from_utf8_lossy(&buffer[..written]));
            input = &input[read..];
            if result == CoderResult::InputEmpty {
                break;
            }
        }
        match &mut self.html {
            Some(html) => html.feed(&self.text, out),
            None => out.push_str(&self.text),
        }
    }
}

/// A byte range of the message to read as text.
struct Segment<'a> {
    start: u64,
    end: u64,
    source: Source,
    /// The text part (`None`: a header block).
    part: Option<&'a Part>,
    /// A header block's decoded fields (RFC 2047 words undone), read after it.
    fields: Option<&'a SearchFields>,
}

/// A message's text, fed its body chunk by chunk (see the module comment).
pub struct MessageText<'a> {
    segments: Vec<Segment<'a>>,
    /// The segment being read and its decoder.
    index: usize,
    current: Option<PartText>,
    /// The offset just past the last octet fed.
    position: u64,
    text: String,
}

impl<'a> MessageText<'a> {
    pub fn new(root: &'a Part) -> MessageText<'a> {
        let mut segments = Vec::new();
        message_segments(root, Source::Header, &mut segments);
        MessageText {
            segments,
            index: 0,
            current: None,
            position: 0,
            text: String::new(),
        }
    }

    /// The offset of the next octet this wants (reading may skip to it), or `None` once it
    /// has read every text part.
    pub fn wanted(&self) -> Option<u64> {
        let segment = self.segments.get(self.index)?;
        Some(segment.start.max(self.position))
    }

    /// Reads `chunk`, the message's octets from `offset` on, handing each piece of text to
    /// `sink`. Chunks come in order; they may skip what `wanted` says is not needed.
    pub fn feed(&mut self, offset: u64, chunk: &[u8], sink: &mut dyn FnMut(Source, &str)) {
        let chunk_end = offset + chunk.len() as u64;
        while let Some(segment) = self.segments.get(self.index) {
            if segment.start >= chunk_end && segment.end > segment.start {
                break;
            }
            let from = segment.start.max(offset);
            let to = segment.end.min(chunk_end);
            if to > from {
                let decoder = self.current.get_or_insert_with(|| match segment.part {
                    Some(part) => PartText::new(part),
                    None => PartText::header(),
                });
                self.text.clear();
                decoder.feed(
                    &chunk[(from - offset) as usize..(to - offset) as usize],
                    &mut self.text,
                );
                if !self.text.is_empty() {
                    sink(segment.source, &self.text);
                }
            }
            if segment.end > chunk_end {
                break;
            }
            self.end_segment(sink);
        }
        self.position = self.position.max(chunk_end);
    }

    /// Ends the message (the stored body may be shorter than its structure says): the part
    /// being read, and the decoded header fields of any header block not reached.
    pub fn finish(&mut self, sink: &mut dyn FnMut(Source, &str)) {
        while self.index < self.segments.len() {
            self.end_segment(sink);
        }
    }

    fn end_segment(&mut self, sink: &mut dyn FnMut(Source, &str)) {
        let Some(segment) = self.segments.get(self.index) else {
            return;
        };
        if let Some(mut decoder) = self.current.take() {
            self.text.clear();
            decoder.finish(&mut self.text);
            if !self.text.is_empty() {
                sink(segment.source, &self.text);
            }
        }
        sink(segment.source, PART_END);
        if let Some(fields) = segment.fields {
            for value in [
                &fields.subject,
                &fields.from,
                &fields.to,
                &fields.cc,
                &fields.bcc,
            ] {
                if !value.is_empty() {
                    sink(segment.source, value);
                    sink(segment.source, PART_END);
                }
            }
        }
        self.index += 1;
    }
}

/// A message's header block, then its body's text parts, in the order they are stored.
fn message_segments<'a>(message: &'a Part, source: Source, out: &mut Vec<Segment<'a>>) {
    out.push(Segment {
        start: message.header_start,
        end: message.body_start,
        source,
        part: None,
        fields: message.search.as_ref(),
    });
    body_segments(message, out);
}

fn body_segments<'a>(part: &'a Part, out: &mut Vec<Segment<'a>>) {
    if part.is_multipart() {
        // Without parts (no boundary found) it is an opaque blob: not text.
        for child in &part.children {
            body_segments(child, out);
        }
    } else if part.is_message_part() {
        message_segments(&part.children[0], Source::Body, out);
    } else if part.ctype == "text" {
        out.push(Segment {
            start: part.body_start,
            end: part.end,
            source: Source::Body,
            part: Some(part),
            fields: None,
        });
    }
}

/// A case-insensitive substring search over text that arrives in pieces: it keeps only the
/// last needle's length of text between pieces. Case is folded character by character
/// (`char::to_lowercase`), and every run of white space counts as one space, the same for
/// the needle and the text: "liebe grüße" is found across a line break in "Liebe\r\n Grüße".
#[derive(Debug)]
pub struct Finder {
    needle: String,
    window: String,
    /// The text so far ends in white space.
    space: bool,
    found: bool,
}

impl Finder {
    pub fn new(needle: &str) -> Finder {
        let mut folded = String::new();
        fold(needle, &mut folded, &mut false);
        Finder {
            found: folded.is_empty(),
            needle: folded,
            window: String::new(),
            space: false,
        }
    }

    pub fn found(&self) -> bool {
        self.found
    }

    pub fn feed(&mut self, text: &str) {
        if self.found {
            return;
        }
        fold(text, &mut self.window, &mut self.space);
        if self.window.contains(&self.needle) {
            self.found = true;
            self.window = String::new();
            return;
        }
        let mut keep_from = self
            .window
            .len()
            .saturating_sub(self.needle.len().saturating_sub(1));
        while !self.window.is_char_boundary(keep_from) {
            keep_from -= 1;
        }
        self.window.drain(..keep_from);
    }
}

/// Appends `text` to `out` lowercased, each run of white space one space; `space` carries
/// whether the text before ended in white space.
fn fold(text: &str, out: &mut String, space: &mut bool) {
    for c in text.chars() {
        if c.is_whitespace() {
            if !*space {
                out.push(' ');
            }
            *space = true;
        } else {
            *space = false;
            out.extend(c.to_lowercase());
        }
    }
}

#[cfg(test)]
#[path = "text_tests.rs"]
mod tests;
