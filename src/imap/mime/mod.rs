//! Message structure, computed once when a message enters the store (delivery or APPEND) and
//! kept beside its body: the MIME tree with each part's byte ranges, ENVELOPE, and the
//! decoded header text SEARCH uses. FETCH BODYSTRUCTURE/ENVELOPE and SEARCH FROM/SUBJECT
//! never re-read bodies, and BODY[1.2] streams just that byte range from the store.
//!
//! The tree comes from a streaming scanner (`scanner`) fed chunk by chunk as the body is
//! written, so memory stays bounded whatever the message size: one header block at most
//! `MIME_HEADER_MAX`, at most `MIME_MAX_PARTS` parts. FETCH BINARY decodes a part's
//! transfer encoding as it streams (`decode`).

mod decode;
mod envelope_json;
mod headers;
mod scanner;

use serde::{Deserialize, Serialize};

pub use decode::{Decoder, Encoding};
pub use scanner::Scanner;

use crate::imap::proto::encode;

/// Decoded, lowercased header text for SEARCH.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchFields {
    pub from: String,
    pub to: String,
    pub cc: String,
    pub bcc: String,
    pub subject: String,
    /// The Date: header, Unix seconds.
    pub sent: Option<i64>,
}

/// One MIME part. The root is the message itself; a message/rfc822 part holds the embedded
/// message as its only child.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub header_start: u64,
    pub body_start: u64,
    pub end: u64,
    pub lines: u64,
    pub ctype: String,
    pub subtype: String,
    pub params: Vec<(String, String)>,
    pub id: Option<String>,
    pub description: Option<String>,
    pub encoding: String,
    pub md5: Option<String>,
    pub disposition: Option<(String, Vec<(String, String)>)>,
    pub language: Option<Vec<String>>,
    pub location: Option<String>,
    pub children: Vec<Part>,
    /// For a message (the root, or the child of a message/rfc822 part): ENVELOPE, encoded.
    #[serde(with = "envelope_json")]
    pub envelope: Option<Vec<u8>>,
    pub search: Option<SearchFields>,
}

impl Part {
    pub fn is_multipart(&self) -> bool {
        self.ctype == "multipart"
    }

    fn is_message_part(&self) -> bool {
        self.ctype == "message"
            && matches!(self.subtype.as_str(), "rfc822" | "global")
            && self.children.len() == 1
    }

    pub fn size(&self) -> u64 {
        self.end.saturating_sub(self.body_start)
    }

    /// BODYSTRUCTURE (`extended`) or BODY.
    pub fn write_structure(&self, out: &mut Vec<u8>, extended: bool) {
        out.push(b'(');
        if self.is_multipart() && !self.children.is_empty() {
            for child in &self.children {
                child.write_structure(out, extended);
            }
            out.push(b' ');
            encode::string(out, self.subtype.as_bytes());
            if extended {
                out.push(b' ');
                params(out, &self.params);
                self.write_extension(out);
            }
        } else {
            let (ctype, subtype) = if self.is_multipart() {
                // A multipart without parts (no boundary found): show what it is, a blob.
                ("application", "octet-stream")
            } else {
                (self.ctype.as_str(), self.subtype.as_str())
            };
            encode::string(out, ctype.as_bytes());
            out.push(b' ');
            encode::string(out, subtype.as_bytes());
            out.push(b' ');
            params(out, &self.params);
            out.push(b' ');
            encode::nstring(out, self.id.as_deref().map(str::as_bytes));
            out.push(b' ');
            encode::nstring(out, self.description.as_deref().map(str::as_bytes));
            out.push(b' ');
            encode::string(out, self.encoding.as_bytes());
            out.extend_from_slice(format!(" {}", self.size()).as_bytes());
            if self.is_message_part() {
                let inner = &self.children[0];
                out.push(b' ');
                match &inner.envelope {
                    Some(envelope) => out.extend_from_slice(envelope),
                    None => out.extend_from_slice(b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
                }
                out.push(b' ');
                inner.write_structure(out, extended);
                out.extend_from_slice(format!(" {}", self.lines).as_bytes());
            } else if ctype == "text" {
                out.extend_from_slice(format!(" {}", self.lines).as_bytes());
            }
            if extended {
                out.push(b' ');
                encode::nstring(out, self.md5.as_deref().map(str::as_bytes));
                self.write_extension(out);
            }
        }
        out.push(b')');
    }

    /// body-fld-dsp body-fld-lang body-fld-loc.
    fn write_extension(&self, out: &mut Vec<u8>) {
        out.push(b' ');
        match &self.disposition {
            Some((kind, parameters)) => {
                out.push(b'(');
                encode::string(out, kind.as_bytes());
                out.push(b' ');
                params(out, parameters);
                out.push(b')');
            }
            None => out.extend_from_slice(b"NIL"),
        }
        out.push(b' ');
        match &self.language {
            Some(languages) if !languages.is_empty() => {
                out.push(b'(');
                for (i, language) in languages.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    encode::string(out, language.as_bytes());
                }
                out.push(b')');
            }
            _ => out.extend_from_slice(b"NIL"),
        }
        out.push(b' ');
        encode::nstring(out, self.location.as_deref().map(str::as_bytes));
    }

    /// The part a section path names (RFC 9051 §6.4.5), and whether it is the message role
    /// of that node (the root, or an embedded message) rather than a body part.
    pub fn resolve(&self, path: &[u32]) -> Option<Resolved<'_>> {
        let mut node = self;
        let mut message = true;
        for &n in path {
            let container = if !message && node.is_message_part() {
                &node.children[0]
            } else {
                node
            };
            let is_message_node = message || (!std::ptr::eq(container, node));
            if container.is_multipart() && !container.children.is_empty() {
                node = container
                    .children
                    .get(usize::try_from(n).ok()?.checked_sub(1)?)?;
            } else if is_message_node && n == 1 {
                node = container;
            } else {
                return None;
            }
            message = false;
        }
        Some(Resolved {
            part: node,
            message,
        })
    }
}

/// A resolved section: `part`, in the message role when `message`.
pub struct Resolved<'a> {
    pub part: &'a Part,
    pub message: bool,
}

impl Resolved<'_> {
    /// The message whose HEADER/TEXT a section names: the root, or the embedded message of
    /// a message/rfc822 part.
    pub fn as_message(&self) -> Option<&Part> {
        if self.message {
            Some(self.part)
        } else if self.part.is_message_part() {
            self.part.children.first()
        } else {
            None
        }
    }
}

fn params(out: &mut Vec<u8>, params: &[(String, String)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        encode::string(out, name.as_bytes());
        out.push(b' ');
        encode::string(out, value.as_bytes());
    }
    out.push(b')');
}

/// Computes the structure of a whole message held in memory (tests, fuzzing).
pub fn structure_of(message: &[u8]) -> Part {
    let mut scanner = Scanner::new();
    scanner.feed(message);
    scanner.finish()
}

#[cfg(test)]
mod tests;
