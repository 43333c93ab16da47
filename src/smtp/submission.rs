//! The submission role (RFC 6409, ports 587 and 465): what differs from receiving on port 25.
//!
//! - SASL PLAIN (RFC 4616) and LOGIN payloads, decoded here (the proto layer does not).
//! - Sender rules: an authenticated account may use its own address and the aliases that
//!   deliver to it, in MAIL FROM and in the From: header.
//! - Message fix-ups (RFC 6409 §8): Date and Message-ID are added when missing.
//! - The end of a message: remote recipients go to the outbound queue (DKIM-signed), local
//!   ones are delivered at once. Both are durable before the client hears 250.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::io::AsyncReadExt;

use super::proto::Reply;
use crate::limits::BODY_CHUNK;
use crate::secret::Secret;
use crate::store::{Recipient, SpoolFile, Store, StoreError, now_unix};

/// The header section is looked at up to this size; a longer one is sent as it is (a
/// header field beyond it is not seen, at worst a Date or Message-ID is added twice).
pub const HEADER_SCAN: usize = 256 * 1024;

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
    /// The end of the header section was found within `HEADER_SCAN`.
    pub complete: bool,
}

/// Reads the start of a spooled message and parses its header section.
pub async fn header_facts(spool: &SpoolFile) -> Result<HeaderFacts, StoreError> {
    let mut file = tokio::fs::File::open(spool.path())
        .await
        .map_err(StoreError::io)?;
    let mut head = Vec::with_capacity(BODY_CHUNK);
    let mut chunk = vec![0u8; BODY_CHUNK];
    loop {
        let n = file.read(&mut chunk).await.map_err(StoreError::io)?;
        if n == 0 {
            break;
        }
        let scan_from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = find(&head[scan_from..], b"\r\n\r\n") {
            head.truncate(scan_from + end + 4);
            return Ok(HeaderFacts {
                complete: true,
                ..parse_header_facts(&head)
            });
        }
        if head.len() >= HEADER_SCAN {
            head.truncate(HEADER_SCAN);
            break;
        }
    }
    // No body at all counts as complete too: the whole message is headers within the bound.
    Ok(HeaderFacts {
        complete: head.len() < HEADER_SCAN,
        ..parse_header_facts(&head)
    })
}

pub fn parse_header_facts(head: &[u8]) -> HeaderFacts {
    let Some(message) = mail_parser::MessageParser::new().parse_headers(head) else {
        return HeaderFacts::default();
    };
    let from = message
        .from()
        .map(|from| {
            from.iter()
                .filter_map(|addr| addr.address())
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default();
    HeaderFacts {
        has_date: message.date().is_some(),
        has_message_id: message.message_id().is_some(),
        from,
        complete: false,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A new spool file holding `prefix` and then `original`; `observe` sees every byte written
/// (the DKIM signer hashes it on the way).
pub async fn rewrite(
    store: &Store,
    prefix: &str,
    original: SpoolFile,
    mut observe: impl FnMut(&[u8]),
) -> Result<SpoolFile, StoreError> {
    let mut writer = store.spool().await?;
    writer.write(prefix.as_bytes()).await?;
    observe(prefix.as_bytes());
    let mut file = tokio::fs::File::open(original.path())
        .await
        .map_err(StoreError::io)?;
    let mut chunk = vec![0u8; BODY_CHUNK];
    loop {
        let n = file.read(&mut chunk).await.map_err(StoreError::io)?;
        if n == 0 {
            break;
        }
        writer.write(&chunk[..n]).await?;
        observe(&chunk[..n]);
    }
    drop(original);
    writer.finish().await
}

/// The header fields RFC 6409 §8.2 and §8.3 let a submission server add.
pub fn missing_headers(facts: &HeaderFacts, hostname: &str, unique: &str) -> String {
    let mut added = String::new();
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
        let added = missing_headers(&facts, "mail.home.test", "123.abc");
        assert_eq!(added, "Message-ID: <123.abc@mail.home.test>\r\n");
        let bare = parse_header_facts(b"Subject: no from\r\n\r\n");
        assert!(bare.from.is_empty());
        let added = missing_headers(&bare, "h", "u");
        assert!(added.starts_with("Date: ") && added.contains("Message-ID: <u@h>"));
    }
}
