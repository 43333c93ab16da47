//! One part's header block (bounded by `MIME_HEADER_MAX`) → its MIME fields, and for a
//! message its ENVELOPE (RFC 9051 §7.5.2) and the decoded text SEARCH looks at. Parsing is
//! mail-parser's; this module only picks what the store and its readers need.
//!
//! The ENVELOPE is the one piece of IMAP syntax written here (with IMAP's string quoting):
//! it is stored pre-encoded in each message's `Part` (see [`Part::envelope`]), and moving it
//! out would change the stored format.

use std::borrow::Cow;

use mail_parser::{Address, Header, HeaderName, HeaderValue, Message, MessageParser};

use super::{Part, SearchFields};
use crate::imap::proto::encode;

/// Fills `part`'s content fields from its header block; `default_type` applies when the
/// block has no Content-Type (text/plain, or message/rfc822 inside multipart/digest).
pub fn apply(part: &mut Part, block: &[u8], default_type: (&str, &str), is_message: bool) {
    let parsed = MessageParser::new().parse_headers(block);
    let content_type = parsed
        .as_ref()
        .and_then(|m| m.header(HeaderName::ContentType))
        .and_then(HeaderValue::as_content_type);
    match content_type {
        Some(ct) => {
            part.ctype = ct.ctype().to_ascii_lowercase();
            part.subtype = ct
                .subtype()
                .map(str::to_ascii_lowercase)
                .unwrap_or_else(|| default_subtype(&part.ctype).to_string());
            part.params = ct
                .attributes()
                .unwrap_or_default()
                .iter()
                .map(|a| (a.name.to_ascii_lowercase(), a.value.to_string()))
                .collect();
        }
        None => {
            part.ctype = default_type.0.into();
            part.subtype = default_type.1.into();
            part.params = Vec::new();
        }
    }
    if part.ctype == "text" && !part.params.iter().any(|(n, _)| n == "charset") {
        part.params.push(("charset".into(), "us-ascii".into()));
    }
    let Some(message) = parsed else {
        if is_message {
            part.envelope = Some(envelope(None));
        }
        return;
    };
    let raw = |name| message.header_raw(name).map(unfold);
    part.id = raw(HeaderName::ContentId);
    part.description = raw(HeaderName::ContentDescription);
    part.encoding = raw(HeaderName::ContentTransferEncoding)
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_else(|| "7bit".into());
    part.md5 = message.header_raw("Content-MD5").map(unfold);
    part.location = raw(HeaderName::ContentLocation);
    part.language = message
        .header(HeaderName::ContentLanguage)
        .and_then(|v| match v {
            HeaderValue::TextList(list) => Some(list.iter().map(|l| l.to_string()).collect()),
            HeaderValue::Text(text) => Some(vec![text.to_string()]),
            _ => None,
        });
    part.disposition = message
        .header(HeaderName::ContentDisposition)
        .and_then(HeaderValue::as_content_type)
        .map(|d| {
            let params = d
                .attributes()
                .unwrap_or_default()
                .iter()
                .map(|a| (a.name.to_ascii_lowercase(), a.value.to_string()))
                .collect();
            (d.ctype().to_ascii_lowercase(), params)
        });
    if is_message {
        part.envelope = Some(envelope(Some(&message)));
        part.search = Some(search_fields(&message));
    }
}

fn default_subtype(ctype: &str) -> &'static str {
    match ctype {
        "text" => "plain",
        "multipart" => "mixed",
        "message" => "rfc822",
        _ => "octet-stream",
    }
}

/// A raw header value without line folding and outer whitespace.
fn unfold(value: &str) -> String {
    value
        .split(['\r', '\n'])
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("")
        .trim()
        .to_string()
}

/// The last `name` field of the root part, and its value's octets as they are in the message.
fn raw_field<'x>(m: &'x Message<'x>, name: &HeaderName<'_>) -> Option<(&'x Header<'x>, &'x [u8])> {
    let header = m
        .root_part()
        .headers()
        .iter()
        .rev()
        .find(|h| h.name == *name)?;
    let bytes = m
        .raw_message()
        .get(header.offset_start as usize..header.offset_end as usize)?;
    Some((header, bytes))
}

/// A value in raw 8-bit octets that are not UTF-8 (Latin-1 from an old mailer), read as
/// Windows-1252, Latin-1's usual superset. The parser would have turned those octets into
/// U+FFFD. `None` for a value that is UTF-8 (or ASCII): the parser's reading stands.
fn eight_bit_text(bytes: &[u8]) -> Option<String> {
    match std::str::from_utf8(bytes) {
        Ok(_) => None,
        Err(_) => Some(encoding_rs::WINDOWS_1252.decode(bytes).0.into_owned()),
    }
}

/// The last `name` field's value as it is in the message, unfolded (what ENVELOPE gives;
/// clients decode RFC 2047 themselves). Raw 8-bit text that is not UTF-8 is read as
/// Windows-1252 and given as RFC 2047 encoded words, as non-ASCII names are: IMAP has no
/// other way to say its charset, and dropping the field would show a client "(no subject)".
fn raw_value(m: &Message<'_>, name: HeaderName<'_>) -> Option<String> {
    let (_, bytes) = raw_field(m, &name)?;
    match eight_bit_text(bytes) {
        None => Some(unfold(std::str::from_utf8(bytes).ok()?)),
        Some(text) => Some(encoded_words(&unfold(&text))),
    }
}

/// The last `name` address field, parsed. One in raw 8-bit octets that are not UTF-8 is
/// parsed again from its Windows-1252 reading, so a display name like "Jürgen" written by an
/// old mailer keeps its letters.
fn address_field<'x>(m: &'x Message<'x>, name: HeaderName<'_>) -> Option<Cow<'x, Address<'x>>> {
    let (header, bytes) = raw_field(m, &name)?;
    match eight_bit_text(bytes) {
        None => header.value.as_address().map(Cow::Borrowed),
        Some(text) => {
            // Any address field parses the same; From is one the parser reads as addresses.
            let block = format!("From:{text}\r\n\r\n");
            let reparsed = MessageParser::new().parse_headers(block.as_bytes())?;
            Some(Cow::Owned(reparsed.from()?.clone().into_owned()))
        }
    }
}

/// The last `name` text field, decoded (RFC 2047 words and all), for SEARCH.
fn decoded_text(m: &Message<'_>, name: HeaderName<'_>) -> Option<String> {
    let (header, bytes) = raw_field(m, &name)?;
    match eight_bit_text(bytes) {
        None => header.value.as_text().map(str::to_string),
        Some(text) => Some(unfold(&text)),
    }
}

/// The ENVELOPE list in IMAP syntax, as stored in `Part::envelope`.
fn envelope(message: Option<&Message<'_>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let Some(m) = message else {
        out.extend_from_slice(b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
        return out;
    };
    let raw = |name| raw_value(m, name);
    out.push(b'(');
    encode::nstring(
        &mut out,
        raw(HeaderName::Date).as_deref().map(str::as_bytes),
    );
    out.push(b' ');
    encode::nstring(
        &mut out,
        raw(HeaderName::Subject).as_deref().map(str::as_bytes),
    );
    let field = |name| address_field(m, name);
    let from = field(HeaderName::From);
    let sender = field(HeaderName::Sender).or_else(|| from.clone());
    let reply_to = field(HeaderName::ReplyTo).or_else(|| from.clone());
    for field in [
        from,
        sender,
        reply_to,
        field(HeaderName::To),
        field(HeaderName::Cc),
        field(HeaderName::Bcc),
    ] {
        out.push(b' ');
        addresses(&mut out, field.as_deref());
    }
    out.push(b' ');
    encode::nstring(
        &mut out,
        raw(HeaderName::InReplyTo).as_deref().map(str::as_bytes),
    );
    out.push(b' ');
    encode::nstring(
        &mut out,
        raw(HeaderName::MessageId).as_deref().map(str::as_bytes),
    );
    out.push(b')');
    out
}

fn addresses(out: &mut Vec<u8>, field: Option<&Address<'_>>) {
    let Some(field) = field else {
        out.extend_from_slice(b"NIL");
        return;
    };
    let start = out.len();
    out.push(b'(');
    match field {
        Address::List(list) => {
            for addr in list {
                address(out, addr.name.as_deref(), addr.address.as_deref());
            }
        }
        Address::Group(groups) => {
            for group in groups {
                match &group.name {
                    Some(name) => {
                        // RFC 9051 §7.5.2: group start (NIL NIL "name" NIL), end (NIL NIL NIL NIL).
                        out.extend_from_slice(b"(NIL NIL ");
                        encode::string(out, name.as_bytes());
                        out.extend_from_slice(b" NIL)");
                        for addr in &group.addresses {
                            address(out, addr.name.as_deref(), addr.address.as_deref());
                        }
                        out.extend_from_slice(b"(NIL NIL NIL NIL)");
                    }
                    None => {
                        for addr in &group.addresses {
                            address(out, addr.name.as_deref(), addr.address.as_deref());
                        }
                    }
                }
            }
        }
    }
    if out.len() == start + 1 {
        out.truncate(start);
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b')');
    }
}

fn address(out: &mut Vec<u8>, name: Option<&str>, email: Option<&str>) {
    let Some(email) = email else {
        return;
    };
    // An obsolete source route (`@relay:user@host`, RFC 5322 §4.4 obs-route) is the
    // address's adl (RFC 3501 §7.4.2); the parser leaves it on the front of the address.
    let (route, email) = match email.split_once(':') {
        Some((route, mailbox)) if route.starts_with('@') => (Some(route), mailbox),
        _ => (None, email),
    };
    let (local, host) = match email.rsplit_once('@') {
        Some((local, host)) => (local, Some(host)),
        None => (email, None),
    };
    out.push(b'(');
    match name.filter(|n| !n.is_empty()) {
        Some(name) if name.is_ascii() => encode::string(out, name.as_bytes()),
        // Names were decoded by the parser; non-ASCII goes back as RFC 2047 encoded words,
        // which every client decodes.
        Some(name) => encode::string(out, encoded_words(name).as_bytes()),
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    encode::nstring(out, route.map(str::as_bytes));
    out.push(b' ');
    encode::string(out, local.as_bytes());
    out.push(b' ');
    encode::nstring(out, host.map(str::as_bytes));
    out.push(b')');
}

fn encoded_word(text: &str) -> String {
    use base64::Engine;
    format!(
        "=?utf-8?b?{}?=",
        base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
    )
}

/// `text` as RFC 2047 encoded words of at most 75 characters (RFC 2047 §2), each whole
/// characters of at most 45 octets (60 in base64), separated by spaces, which decoders drop.
fn encoded_words(text: &str) -> String {
    const OCTETS: usize = 45;
    let mut words = Vec::new();
    let mut start = 0;
    let mut end = 0;
    for (index, c) in text.char_indices() {
        if index + c.len_utf8() - start > OCTETS {
            words.push(encoded_word(&text[start..end]));
            start = index;
        }
        end = index + c.len_utf8();
    }
    if start < text.len() || words.is_empty() {
        words.push(encoded_word(&text[start..]));
    }
    words.join(" ")
}

fn search_fields(m: &Message<'_>) -> SearchFields {
    let flatten = |field: Option<&Address<'_>>| -> String {
        let mut text = String::new();
        let mut push = |value: Option<&str>| {
            if let Some(value) = value {
                text.push_str(value);
                text.push(' ');
            }
        };
        match field {
            Some(Address::List(list)) => {
                for addr in list {
                    push(addr.name.as_deref());
                    push(addr.address.as_deref());
                }
            }
            // A group's name is text a person searches for too ("undisclosed-recipients").
            Some(Address::Group(groups)) => {
                for group in groups {
                    push(group.name.as_deref());
                    for addr in &group.addresses {
                        push(addr.name.as_deref());
                        push(addr.address.as_deref());
                    }
                }
            }
            None => {}
        }
        text.to_lowercase()
    };
    SearchFields {
        from: flatten(address_field(m, HeaderName::From).as_deref()),
        to: flatten(address_field(m, HeaderName::To).as_deref()),
        cc: flatten(address_field(m, HeaderName::Cc).as_deref()),
        bcc: flatten(address_field(m, HeaderName::Bcc).as_deref()),
        subject: decoded_text(m, HeaderName::Subject)
            .unwrap_or_default()
            .to_lowercase(),
        sent: m.date().map(|d| d.to_timestamp()),
    }
}

/// The raw values of every `name` field (case-insensitive) in a header block, folding kept.
pub fn field_values<'a>(block: &'a [u8], name: &str) -> Vec<&'a [u8]> {
    let mut values = Vec::new();
    // (start, end) of the value being read, while continuation lines may extend it.
    let mut current: Option<(usize, usize)> = None;
    let mut offset = 0;
    for line in block.split_inclusive(|&b| b == b'\n') {
        let line_end = offset + line.len();
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            if let Some((_, end)) = &mut current {
                *end = line_end;
            }
        } else {
            values.extend(current.take().map(|(start, end)| &block[start..end]));
            if let Some(colon) = line.iter().position(|&b| b == b':')
                && line[..colon]
                    .trim_ascii()
                    .eq_ignore_ascii_case(name.as_bytes())
            {
                current = Some((offset + colon + 1, line_end));
            }
        }
        offset = line_end;
    }
    values.extend(current.map(|(start, end)| &block[start..end]));
    values
}

/// The date of a header block's Date: field as the sender wrote it, in days since
/// 1970-01-01: its own local date, not converted to UTC (SENTON and friends compare "the
/// date in the Date: header, disregarding time and timezone", RFC 3501 §6.4.4). The stored
/// `SearchFields::sent` is UTC, so this is read from the header block at search time.
pub fn sent_day(block: &[u8]) -> Option<i64> {
    let value = field_values(block, "date").into_iter().next()?;
    let value = unfold(&String::from_utf8_lossy(value));
    let date = mail_parser::DateTime::parse_rfc822(&value).filter(|d| d.is_valid())?;
    Some(date.to_timestamp_local().div_euclid(86_400))
}
