//! Checks of mail received on port 25 (RFC 7208 SPF, RFC 6376 DKIM, RFC 7489 DMARC) with
//! mail-auth, recorded in an Authentication-Results header (RFC 8601) above the trace headers.
//!
//! DKIM needs the whole message to hash its body, and mail-auth verifies from memory, so it
//! runs only on messages up to `auth_check_max_size`, at most `auth_checks` at a time; a
//! larger message is checked by SPF, and by DMARC on SPF alignment alone, and its header says
//! why DKIM was not checked. SPF needs no body at all.

use std::net::IpAddr;

use mail_auth::dmarc::Policy;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimOutput, DmarcResult, MessageAuthenticator,
    SpfResult, dmarc::verify::DmarcParameters, spf::verify::SpfParameters,
};
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::store::{SpoolFile, StoreError};

use super::submission::HEADER_SCAN;

/// What the checks found.
pub struct Verdict {
    /// The Authentication-Results header field, CRLF-terminated.
    pub header: String,
    /// DMARC failed for a domain whose policy is p=reject.
    pub dmarc_reject: bool,
}

pub struct InboundAuth {
    authenticator: MessageAuthenticator,
    hostname: String,
    max_size: u64,
    checks: Semaphore,
}

/// The envelope facts the checks need.
pub struct Envelope<'a> {
    pub ip: IpAddr,
    pub helo: &'a str,
    /// The reverse-path; empty for bounces.
    pub mail_from: &'a str,
}

impl InboundAuth {
    pub fn new(config: &Config) -> Result<Self, crate::outbound::dns::DnsError> {
        let resolver = crate::outbound::dns::resolver(config)?;
        Ok(InboundAuth {
            authenticator: MessageAuthenticator(resolver),
            hostname: config.hostname.clone(),
            max_size: config.limits.auth_check_max_size.0,
            checks: Semaphore::new(config.limits.auth_checks),
        })
    }

    /// True when SPF passes for `sender` from `ip` (RFC 7208): greylisting spares the
    /// allowlisted domains only when the mail really comes from them.
    pub async fn spf_passes(&self, ip: IpAddr, helo: &str, sender: &str) -> bool {
        let spf = self
            .authenticator
            .verify_spf(SpfParameters::verify(ip, helo, &self.hostname, sender))
            .await;
        spf.result() == SpfResult::Pass
    }

    pub async fn check(
        &self,
        envelope: &Envelope<'_>,
        message: &SpoolFile,
    ) -> Result<Verdict, StoreError> {
        let _permit = self
            .checks
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let whole = message.size() <= self.max_size;
        let raw = message
            .head(if whole {
                self.max_size
            } else {
                HEADER_SCAN as u64
            })
            .await?;
        let raw = if !whole {
            header_section(raw)
        } else if signed_with_relaxed_bodies_only(&raw) {
            relaxed_equivalent(&raw)
        } else {
            raw
        };
        let helo = envelope.helo;
        // RFC 7208 §2.4: an empty reverse-path is checked as postmaster@HELO.
        let sender = if envelope.mail_from.is_empty() {
            format!("postmaster@{helo}")
        } else {
            envelope.mail_from.to_string()
        };
        let spf = self
            .authenticator
            .verify_spf(SpfParameters::verify(
                envelope.ip,
                helo,
                &self.hostname,
                &sender,
            ))
            .await;
        let mut results = AuthenticationResults::new(&self.hostname).with_spf_mailfrom_result(
            &spf,
            envelope.ip,
            &sender,
            helo,
        );
        let Some(parsed) = AuthenticatedMessage::parse(&raw) else {
            return Ok(Verdict {
                header: format!("Authentication-Results: {results}\r\n"),
                dmarc_reject: false,
            });
        };
        let dkim: Vec<DkimOutput> = if whole {
            self.authenticator.verify_dkim(&parsed).await
        } else {
            Vec::new()
        };
        let from_domain = parsed
            .from
            .first()
            .and_then(|from| from.rsplit_once('@'))
            .map(|(_, domain)| domain.to_string())
            .unwrap_or_default();
        results = results.with_dkim_results(&dkim, &from_domain);
        let mail_from_domain = sender.rsplit_once('@').map_or(helo, |(_, d)| d);
        let dmarc = self
            .authenticator
            .verify_dmarc(DmarcParameters::new(&parsed, &dkim, mail_from_domain, &spf))
            .await;
        results = results.with_dmarc_result(&dmarc);
        let mut header = format!("Authentication-Results: {results}");
        if !whole {
            header.push_str(&format!(
                ";\r\n\tdkim=none reason=\"message larger than {} bytes, not checked\"",
                self.max_size
            ));
        }
        header.push_str("\r\n");
        let failed = matches!(dmarc.result(), DmarcResult::Fail(_));
        Ok(Verdict {
            header,
            dmarc_reject: failed && dmarc.policy() == Policy::Reject,
        })
    }
}

/// Whether `raw` carries DKIM signatures, all of whose bodies are canonicalized "relaxed"
/// (`c=x/relaxed`; a missing body part means "simple", RFC 6376 §3.5).
fn signed_with_relaxed_bodies_only(raw: &[u8]) -> bool {
    let head = &raw[..raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |end| end + 2)];
    let signatures = crate::mime::field_values(head, "dkim-signature");
    !signatures.is_empty()
        && signatures.iter().all(|value| {
            value
                .split(|&b| b == b';')
                .filter_map(|tag| {
                    let tag = std::str::from_utf8(tag).ok()?;
                    let (name, value) = tag.split_once('=')?;
                    (name.trim() == "c").then(|| value.split_whitespace().collect::<String>())
                })
                .next()
                .and_then(|c| c.split_once('/').map(|(_, body)| body.to_ascii_lowercase()))
                .is_some_and(|body| body == "relaxed")
        })
}

/// `raw` with a body of the same relaxed canonical form that mail-auth 0.13 hashes right
/// (see `outbound::dkim::RelaxedBody`): a message signed by a correct signer whose body ends
/// in a whitespace-only line verifies.
fn relaxed_equivalent(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    crate::outbound::dkim::RelaxedBody::default().filter(raw, &mut out);
    out
}

/// The header section of `raw` and the blank line after it (all of `raw` if it has none).
fn header_section(mut raw: Vec<u8>) -> Vec<u8> {
    if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
        raw.truncate(end + 4);
    }
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_section_stops_at_the_blank_line() {
        let raw = b"From: a@b\r\nSubject: x\r\n\r\nbody\r\n".to_vec();
        assert_eq!(
            header_section(raw),
            b"From: a@b\r\nSubject: x\r\n\r\n".to_vec()
        );
        let headers_only = b"From: a@b\r\n".to_vec();
        assert_eq!(header_section(headers_only.clone()), headers_only);
    }

    #[test]
    fn only_messages_signed_with_relaxed_bodies_alone_are_rewritten() {
        let message = |signatures: &[&str]| {
            let mut raw = String::new();
            for signature in signatures {
                raw.push_str(&format!(
                    "DKIM-Signature: v=1; a=rsa-sha256; {signature}\r\n"
                ));
            }
            raw.push_str("From: a@b.test\r\n\r\nbody \r\n \r\n");
            raw.into_bytes()
        };
        let relaxed = "c=relaxed/relaxed; d=b.test; s=x; bh=A=; b=B=";
        let folded = "c=simple/\r\n\trelaxed; d=b.test; s=x; bh=A=; b=B=";
        let simple_body = "c=relaxed/simple; d=b.test; s=x; bh=A=; b=B=";
        let header_only = "c=relaxed; d=b.test; s=x; bh=A=; b=B=";
        assert!(signed_with_relaxed_bodies_only(&message(&[relaxed])));
        assert!(signed_with_relaxed_bodies_only(&message(&[
            relaxed, folded
        ])));
        assert!(!signed_with_relaxed_bodies_only(&message(&[
            relaxed,
            simple_body
        ])));
        assert!(!signed_with_relaxed_bodies_only(&message(&[header_only])));
        assert!(!signed_with_relaxed_bodies_only(&message(&["d=b.test"])));
        assert!(!signed_with_relaxed_bodies_only(&message(&[])));
        assert!(relaxed_equivalent(&message(&[relaxed])).ends_with(b"\r\n\r\nbody\r\n\r\n"));
    }
}
