//! Message structure (RFC 2045/2046), computed once when a message enters the store
//! (delivery or APPEND) and kept beside its body: the MIME tree with each part's byte ranges,
//! the ENVELOPE, and the decoded header text SEARCH uses. FETCH BODYSTRUCTURE/ENVELOPE and
//! SEARCH FROM/SUBJECT never re-read bodies, and BODY[1.2] streams just that byte range from
//! the store.
//!
//! The tree comes from a streaming scanner (`scanner`) fed chunk by chunk as the body is
//! written, so memory stays bounded whatever the message size: one header block at most
//! `MIME_HEADER_MAX`, at most `MIME_MAX_PARTS` parts. A part's transfer encoding is decoded
//! as it streams (`decode`), and a message's text, as a person reads it, is decoded the same
//! way for searching (`text`, with `html`).
//!
//! This module knows MIME, not the protocols that show it: IMAP's BODYSTRUCTURE is written by
//! `imap::proto::structure`. The one exception is the ENVELOPE, see [`Part::envelope`].

mod decode;
mod envelope_json;
mod headers;
mod html;
mod scanner;
mod text;

use serde::{Deserialize, Serialize};

pub use decode::{Decoder, Encoding};
pub use headers::{field_values, sent_day};
pub use scanner::Scanner;
pub use text::{Finder, MessageText, PART_END, PartText, Source};

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
    // What is absent or empty is left out of the stored JSON (a few hundred octets less for
    // every message, which is stored per message); reading gives the default back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub encoding: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<(String, Vec<(String, String)>)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Part>,
    /// For a message (the root, or the child of a message/rfc822 part): its IMAP ENVELOPE
    /// (RFC 9051 §7.5.2), already in IMAP syntax. It is computed at delivery and stored in
    /// this form (JSON of `Part` in the store: a JSON string, `envelope_json`), so it stays
    /// IMAP syntax here: storing it any other way would be a schema change.
    #[serde(
        with = "envelope_json",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub envelope: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchFields>,
}

impl Part {
    pub fn is_multipart(&self) -> bool {
        self.ctype == "multipart"
    }

    /// A message/rfc822 (or message/global) part with its embedded message parsed.
    pub fn is_message_part(&self) -> bool {
        self.ctype == "message"
            && matches!(self.subtype.as_str(), "rfc822" | "global")
            && self.children.len() == 1
    }

    pub fn size(&self) -> u64 {
        self.end.saturating_sub(self.body_start)
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

/// Computes the structure of a whole message held in memory (tests, fuzzing).
pub fn structure_of(message: &[u8]) -> Part {
    let mut scanner = Scanner::new();
    scanner.feed(message);
    scanner.finish()
}

#[cfg(test)]
pub(crate) mod tests;
