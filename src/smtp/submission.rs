//! The submission role (RFC 6409, ports 587 and 465): what differs from receiving on port 25.
//!
//! - SASL PLAIN (RFC 4616) and LOGIN payloads, decoded here (the proto layer does not).
//! - Sender rules: an authenticated account may use its own address and the aliases that
//!   deliver to it, in MAIL FROM and in the From: header.
//!   The header section must hold at most one From: and one Sender: (RFC 5322 §3.6) and is
//!   read whole, up to `HEADER_SCAN`; a longer one is refused rather than left unchecked.
//! - Message fix-ups (RFC 6409 §8): Date, Message-ID and From: (the account's address, §8.1)
//!   are added when missing.
//! - The end of a message: remote recipients go to the outbound queue (DKIM-signed), local
//!   ones are delivered at once. Both are durable before the client hears 250.

use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::proto::Reply;
use crate::limits::BODY_CHUNK;
pub use crate::limits::HEADER_SCAN;
use crate::secret::Secret;
use crate::store::{Recipient, SpoolFile, SpoolWriter, Store, StoreError, now_unix};

/// Why a SASL exchange did not produce credentials.
#[derive(Debug, PartialEq, Eq)]
pub enum SaslError {
    /// The client sent "*" (RFC 4954 §4).
    Cancelled,
    Malformed,
}

impl SaslError {
    pub fn reply(&self) -> Reply {
        match self {
            SaslError::Cancelled => Reply::new(501, "5.0.0", "Authentication cancelled"),
            SaslError::Malformed => Reply::new(501, "5.5.2", "Cannot decode response"),
        }
    }
}

/// One client response line of a SASL exchange, base64-decoded. "=" is the empty response.
pub fn decode_response(line: &[u8]) -> Result<Secret<Vec<u8>>, SaslError> {
    let line = line.trim_ascii();
    if line == b"*" {
        return Err(SaslError::Cancelled);
    }
    if line == b"=" {
        return Ok(Secret::new(Vec::new()));
    }
    STANDARD
        .decode(line)
        .map(Secret::new)
        .map_err(|_| SaslError::Malformed)
}

/// RFC 4616: `authzid NUL authcid NUL passwd`; an authzid other than the authcid is refused.
pub fn decode_plain(response: &Secret<Vec<u8>>) -> Result<(String, Secret<String>), SaslError> {
    let mut fields = response.expose().split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(SaslError::Malformed);
    };
    if authcid.is_empty() || password.is_empty() || (!authzid.is_empty() && authzid != authcid) {
        return Err(SaslError::Malformed);
    }
    let user = String::from_utf8(authcid.to_vec()).map_err(|_| SaslError::Malformed)?;
    let password = String::from_utf8(password.to_vec()).map_err(|_| SaslError::Malformed)?;
    Ok((user, Secret::new(password)))
}

/// A LOGIN user name or password.
pub fn decode_text(response: &Secret<Vec<u8>>) -> Result<Secret<String>, SaslError> {
    String::from_utf8(response.expose().clone())
        .map(Secret::new)
        .map_err(|_| SaslError::Malformed)
}

/// True if `account` may send as `address`: its own address, or an alias that delivers to it.
pub async fn may_send_as(store: &Store, account: &str, address: &str) -> Result<bool, StoreError> {
    if address.eq_ignore_ascii_case(account) {
        return Ok(true);
    }
    Ok(match store.recipient(address).await? {
        Some(Recipient::Account(owner)) => owner == account,
        Some(Recipient::Alias(targets)) => targets.iter().any(|t| t == account),
        None => false,
    })
}

/// What the header section of a submitted message says.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HeaderFacts {
    pub has_date: bool,
    pub has_message_id: bool,
    /// Addresses in From:, lowercased.
    pub from: Vec<String>,
    /// Addresses in Sender:, lowercased (checked like From:: "bob on behalf of alice" would
    /// speak for bob just as well).
    pub sender: Vec<String>,
    /// How many From: and Sender: fields there are (RFC 5322 §3.6: at most one each).
    pub from_fields: usize,
    pub sender_fields: usize,
    /// The end of the header section was not found within `HEADER_SCAN`: what lies beyond
    /// was not read.
    pub truncated: bool,
}

impl HeaderFacts {
    /// Why the header section cannot be sent by `account` as it is, before asking the store
    /// whether each From: address is the account's (`may_send_as`).
    pub fn refusal(&self) -> Option<Reply> {
        if self.truncated {
            return Some(Reply::new(
                552,
                "5.3.4",
                format!("Header section is longer than {HEADER_SCAN} octets"),
            ));
        }
        if self.from_fields > 1 || self.sender_fields > 1 {
            return Some(Reply::new(
                550,
                "5.7.1",
                "More than one From: or Sender: header field (RFC 5322 section 3.6)",
            ));
        }
        if self.from_fields == 1 && self.from.is_empty() {
            return Some(Reply::new(550, "5.7.1", "From: holds no address"));
        }
        None
    }
}

/// Reads the start of a spooled message and parses its header section. Blocking: the
/// submission runs it and `rewrite` in one trip to the blocking pool.
pub fn header_facts(spool: &SpoolFile) -> Result<HeaderFacts, StoreError> {
    let mut file = spool.reader()?;
    let mut head = Vec::with_capacity(BODY_CHUNK);
    let mut chunk = vec![0u8; BODY_CHUNK];
    loop {
        let n = file.read(&mut chunk).map_err(StoreError::io)?;
        if n == 0 {
            break;
        }
        let scan_from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if head.starts_with(b"\r\n") {
            // An empty header section: everything is body.
            return Ok(HeaderFacts::default());
        }
        if let Some(end) = find(&head[scan_from..], b"\r\n\r\n") {
            head.truncate(scan_from + end + 4);
            return Ok(parse_header_facts(&head));
        }
        if head.len() >= HEADER_SCAN {
            head.truncate(HEADER_SCAN);
            break;
        }
    }
    // No body at all is fine too: the whole message is headers within the bound.
    Ok(HeaderFacts {
        truncated: head.len() >= HEADER_SCAN,
        ..parse_header_facts(&head)
    })
}

pub fn parse_header_facts(head: &[u8]) -> HeaderFacts {
    let mut facts = HeaderFacts::default();
    // From: and Sender: are counted field by field: a parser of the whole section keeps
    // one From: of several, which would let a second one through unchecked.
    for field in fields(head) {
        let Some(colon) = field.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = field[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"From") {
            facts.from_fields += 1;
            facts.from.extend(addresses(field, Field::From));
        } else if name.eq_ignore_ascii_case(b"Sender") {
            facts.sender_fields += 1;
            facts.sender.extend(addresses(field, Field::Sender));
        }
    }
    if let Some(message) = mail_parser::MessageParser::new().parse_headers(head) {
        facts.has_date = message.date().is_some();
        facts.has_message_id = message.message_id().is_some();
    }
    facts
}

/// The fields of a header section (each with its folded lines and line endings), up to the
/// blank line. DATA has already refused bare CR and LF, so lines end in CRLF.
fn fields(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = head;
    std::iter::from_fn(move || {
        if rest.is_empty() || rest.starts_with(b"\r\n") {
            return None;
        }
        let mut end = 0;
        loop {
            end += match rest[end..].windows(2).position(|w| w == b"\r\n") {
                Some(at) => at + 2,
                None => rest.len() - end,
            };
            if !matches!(rest.get(end), Some(b' ' | b'\t')) {
                break;
            }
        }
        let (field, tail) = rest.split_at(end);
        rest = tail;
        Some(field)
    })
}

enum Field {
    From,
    Sender,
}

/// The addresses of one From: or Sender: field, lowercased.
fn addresses(field: &[u8], which: Field) -> Vec<String> {
    let mut alone = field.to_vec();
    if !alone.ends_with(b"\r\n") {
        alone.extend_from_slice(b"\r\n");
    }
    alone.extend_from_slice(b"\r\n");
    let Some(message) = mail_parser::MessageParser::new().parse_headers(&alone[..]) else {
        return Vec::new();
    };
    let list = match which {
        Field::From => message.from(),
        Field::Sender => message.sender(),
    };
    list.map(|from| {
        from.iter()
            .filter_map(|addr| addr.address())
            .map(str::to_ascii_lowercase)
            .collect()
    })
    .unwrap_or_default()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The copies of a submitted message, each its prefix and then `original`, written in one
/// pass over it (the outgoing copy and the local one differ only in their first lines);
/// `observe` sees every byte of the first copy (the DKIM signer hashes it on the way).
/// Blocking, like `header_facts`.
pub fn rewrite(
    copies: Vec<(SpoolWriter, String)>,
    original: SpoolFile,
    mut observe: impl FnMut(&[u8]),
) -> Result<Vec<SpoolFile>, StoreError> {
    let mut writers = Vec::with_capacity(copies.len());
    for (mut writer, prefix) in copies {
        writer.write_blocking(prefix.as_bytes())?;
        if writers.is_empty() {
            observe(prefix.as_bytes());
        }
        writers.push(writer);
    }
    let mut file = original.reader()?;
    let mut chunk = vec![0u8; BODY_CHUNK];
    loop {
        let n = file.read(&mut chunk).map_err(StoreError::io)?;
        if n == 0 {
            break;
        }
        for writer in &mut writers {
            writer.write_blocking(&chunk[..n])?;
        }
        observe(&chunk[..n]);
    }
    drop(original);
    writers
        .into_iter()
        .map(SpoolWriter::finish_blocking)
        .collect()
}

/// The header fields RFC 6409 §8.1, §8.2 and §8.3 let a submission server add; a missing
/// From: becomes the authenticated account's address.
pub fn missing_headers(facts: &HeaderFacts, account: &str, hostname: &str, unique: &str) -> String {
    let mut added = String::new();
    if facts.from_fields == 0 {
        added.push_str(&format!("From: <{account}>\r\n"));
    }
    if !facts.has_date {
        let date = mail_parser::DateTime::from_timestamp(now_unix()).to_rfc822();
        added.push_str(&format!("Date: {date}\r\n"));
    }
    if !facts.has_message_id {
        added.push_str(&format!("Message-ID: <{unique}@{hostname}>\r\n"));
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_plain_and_login_responses() {
        let ok = decode_response(b"AGFsaWNlQGhvbWUudGVzdABzZWNyZXQgcGFzcw==").expect("b64");
        let (user, password) = decode_plain(&ok).expect("plain");
        assert_eq!(user, "alice@home.test");
        assert_eq!(password.expose(), "secret pass");
        let with_authzid = decode_response(b"Ym9iAGFsaWNlAHBhc3M=").expect("b64");
        assert_eq!(decode_plain(&with_authzid), Err(SaslError::Malformed));
        let same_authzid = decode_response(b"YWxpY2UAYWxpY2UAcGFzcw==").expect("b64");
        assert!(decode_plain(&same_authzid).is_ok());
        assert_eq!(decode_response(b"*").err(), Some(SaslError::Cancelled));
        assert_eq!(
            decode_response(b"not base64!").err(),
            Some(SaslError::Malformed)
        );
        assert!(decode_response(b"=").expect("empty").expose().is_empty());
        let empty = decode_response(b"=").expect("empty");
        assert_eq!(decode_plain(&empty), Err(SaslError::Malformed));
    }

    #[test]
    fn header_facts_and_additions() {
        let facts = parse_header_facts(
            b"From: Alice <Alice@Home.Test>\r\nSubject: hi\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n",
        );
        assert_eq!(facts.from, vec!["alice@home.test"]);
        assert!(facts.has_date);
        assert!(!facts.has_message_id);
        let added = missing_headers(&facts, "alice@home.test", "mail.home.test", "123.abc");
        assert_eq!(added, "Message-ID: <123.abc@mail.home.test>\r\n");
        let bare = parse_header_facts(b"Subject: no from\r\n\r\n");
        assert!(bare.from.is_empty());
        assert_eq!(bare.refusal(), None);
        let added = missing_headers(&bare, "alice@home.test", "h", "u");
        assert!(
            added.starts_with("From: <alice@home.test>\r\nDate: "),
            "{added}"
        );
        assert!(added.contains("Message-ID: <u@h>"));
    }

    fn refused(head: &str) -> Option<u16> {
        parse_header_facts(head.as_bytes())
            .refusal()
            .map(|reply| reply.code)
    }

    #[test]
    fn every_from_and_sender_field_is_counted() {
        let two_from = "From: bob@home.test\r\nSubject: x\r\nFrom: alice@home.test\r\n\r\nbody\r\n";
        let facts = parse_header_facts(two_from.as_bytes());
        assert_eq!(facts.from_fields, 2);
        assert_eq!(facts.from, vec!["bob@home.test", "alice@home.test"]);
        assert_eq!(refused(two_from), Some(550));
        // Any case, space before the colon (RFC 5322 §4.5.4), folded values.
        assert_eq!(refused("from: a@x\r\nFROM : b@x\r\n\r\n"), Some(550));
        assert_eq!(
            refused("Sender: a@x\r\nSubject: s\r\n\tmore\r\nsender: b@x\r\n\r\n"),
            Some(550)
        );
        let folded = parse_header_facts(b"From:\r\n Bob\r\n <bob@x>\r\nSubject: y\r\n\r\n");
        assert_eq!(
            (folded.from_fields, folded.from),
            (1, vec!["bob@x".to_string()])
        );
        // A From: in the body or a continuation line is no field.
        assert_eq!(
            refused("From: a@x\r\nSubject: y\r\n From: b@x\r\n\r\nFrom: c@x\r\n"),
            None
        );
        let one_each = parse_header_facts(b"From: a@x\r\nSender: B <B@x>\r\n\r\n");
        assert_eq!(one_each.refusal(), None);
        assert_eq!(
            (one_each.from, one_each.sender),
            (vec!["a@x".to_string()], vec!["b@x".to_string()])
        );
        assert_eq!(refused("From: undisclosed\r\n\r\n"), Some(550));
        let no_body = parse_header_facts(b"Subject: s\r\nFrom: a@x\r\n");
        assert_eq!(no_body.from, vec!["a@x"]);
    }

    #[test]
    fn a_header_section_read_only_in_part_is_refused() {
        let facts = HeaderFacts {
            truncated: true,
            ..parse_header_facts(b"From: alice@home.test\r\n")
        };
        assert_eq!(facts.refusal().map(|r| r.code), Some(552));
    }
}
