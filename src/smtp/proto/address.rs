//! Paths and mailboxes of the SMTP commands (RFC 5321 §4.1.2, §4.1.3), with the UTF-8 of
//! RFC 6531: [`Address`], and the path parser MAIL FROM and RCPT TO use.
//!
//! Addresses are parsed strictly enough that the session can decide locality from
//! `Address::domain` alone: source routes are dropped, quoted local parts are unquoted
//! (so `"bob@evil.example"@home.test` is local part `bob@evil.example` at `home.test`),
//! and `%` and `!` are never given any routing meaning.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// RFC 5321 §4.5.3.1.1: a local part is at most 64 octets (counted after unquoting).
pub const MAX_LOCAL_PART: usize = 64;

/// RFC 5321 §4.5.3.1.2: a domain is at most 255 octets.
pub const MAX_DOMAIN: usize = 255;

/// RFC 1035 §2.3.4: a label is at most 63 octets.
const MAX_LABEL: usize = 63;

/// A mailbox: local part (unquoted) and domain (ASCII-lowercased, or an address
/// literal such as `[192.0.2.1]` kept verbatim). The bare `<Postmaster>` recipient is
/// `Address { local: "Postmaster", domain: "" }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    pub local: String,
    pub domain: String,
}

impl Address {
    /// Builds an address; the domain is normalised as the parser does (ASCII lowercase
    /// unless it is an address literal).
    pub fn new(local: impl Into<String>, domain: impl Into<String>) -> Self {
        Address {
            local: local.into(),
            domain: normalize_domain(&domain.into()),
        }
    }

    /// True for the bare `<Postmaster>` and for `postmaster@` any domain, ignoring case.
    pub fn is_postmaster(&self) -> bool {
        self.local.eq_ignore_ascii_case("postmaster")
    }

    /// True when the domain is an address literal (`[192.0.2.1]`, `[IPv6:...]`).
    pub fn is_address_literal(&self) -> bool {
        self.domain.starts_with('[')
    }
}

impl fmt::Display for Address {
    /// `local@domain`, with the local part re-quoted when it is not a dot-string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.domain.is_empty() && self.is_postmaster() {
            return f.write_str("Postmaster");
        }
        if is_dot_string(&self.local) {
            f.write_str(&self.local)?;
        } else {
            f.write_str("\"")?;
            for c in self.local.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\"")?;
        }
        if !self.domain.is_empty() {
            write!(f, "@{}", self.domain)?;
        }
        Ok(())
    }
}

/// A non-ASCII character allowed by RFC 6531 in addresses and parameters. Controls
/// (C1) and whitespace (NEL, U+2028...) are refused.
pub(super) fn is_utf8_text(c: char) -> bool {
    !c.is_ascii() && !c.is_control() && !c.is_whitespace()
}

/// RFC 5322 §3.2.3 atext, extended with UTF-8 by RFC 6531.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || is_utf8_text(c)
}

/// RFC 5321 §4.1.2 qtextSMTP = %d32-33 / %d35-91 / %d93-126, plus UTF-8.
fn is_qtext(c: char) -> bool {
    matches!(c, ' ' | '!' | '#'..='[' | ']'..='~') || is_utf8_text(c)
}

/// RFC 5321 Dot-string: atoms separated by single dots.
fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

fn normalize_domain(domain: &str) -> String {
    if domain.starts_with('[') {
        domain.to_owned()
    } else {
        domain.to_ascii_lowercase()
    }
}

/// RFC 5321 §4.1.3 address literal contents (between the brackets).
pub(super) fn valid_literal(inner: &str) -> bool {
    if inner.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    let Some((tag, content)) = inner.split_once(':') else {
        return false;
    };
    if tag.eq_ignore_ascii_case("IPv6") {
        return content.parse::<Ipv6Addr>().is_ok();
    }
    // General-address-literal = Standardized-tag ":" 1*dcontent
    let tag_ok = tag
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
        && tag
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let content_ok =
        !content.is_empty() && content.bytes().all(|b| matches!(b, 33..=90 | 94..=126));
    tag_ok && content_ok
}

/// A domain name (not a literal): labels of letters, digits and inner hyphens; UTF-8
/// U-labels allowed (RFC 6531).
fn valid_domain_name(d: &str) -> bool {
    !d.is_empty()
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || is_utf8_text(c))
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PathError {
    Syntax,
    TooLong,
}

/// A cursor over a path; all delimiters are ASCII so byte positions stay on char
/// boundaries.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), PathError> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(PathError::Syntax)
        }
    }

    /// Takes characters while `f` holds.
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let len = rest.find(|c: char| !f(c)).unwrap_or(rest.len());
        self.pos += len;
        rest.get(..len).unwrap_or_default()
    }
}

/// Parses `<...>` at the start of `s`; returns the address (None for `<>`) and what
/// follows the closing bracket.
pub(super) fn parse_path(
    s: &str,
    allow_postmaster: bool,
) -> Result<(Option<Address>, &str), PathError> {
    let mut cur = Cursor { s, pos: 0 };
    cur.expect(b'<')?;
    if cur.eat(b'>') {
        return Ok((None, cur.rest()));
    }
    // RFC 5321 §4.1.2 / Appendix C: a source route is accepted and ignored.
    let routed = cur.peek() == Some(b'@');
    if routed {
        loop {
            cur.expect(b'@')?;
            parse_domain(&mut cur)?;
            if !cur.eat(b',') {
                break;
            }
        }
        cur.expect(b':')?;
    }
    let (local, quoted) = parse_local(&mut cur)?;
    if local.len() > MAX_LOCAL_PART {
        return Err(PathError::TooLong);
    }
    if cur.eat(b'>') {
        // RFC 5321 §4.1.1.3: "<Postmaster>" without a domain, for RCPT only.
        if allow_postmaster && !routed && !quoted && local.eq_ignore_ascii_case("postmaster") {
            let address = Address {
                local: "Postmaster".to_owned(),
                domain: String::new(),
            };
            return Ok((Some(address), cur.rest()));
        }
        return Err(PathError::Syntax);
    }
    cur.expect(b'@')?;
    let domain = parse_domain(&mut cur)?;
    cur.expect(b'>')?;
    let address = Address {
        local,
        domain: normalize_domain(domain),
    };
    Ok((Some(address), cur.rest()))
}

/// Local-part = Dot-string / Quoted-string; returns the unquoted text and whether it
/// was quoted. Dots are accepted anywhere in a dot-string (`a..b`, `a.`), as real
/// senders use them; the text is kept exactly and never interpreted.
fn parse_local(cur: &mut Cursor<'_>) -> Result<(String, bool), PathError> {
    if !cur.eat(b'"') {
        let local = cur.take_while(|c| c == '.' || is_atext(c));
        if local.is_empty() {
            return Err(PathError::Syntax);
        }
        return Ok((local.to_owned(), false));
    }
    let mut local = String::new();
    let mut chars = cur.rest().char_indices();
    loop {
        match chars.next() {
            Some((i, '"')) => {
                cur.pos += i + 1;
                return Ok((local, true));
            }
            // quoted-pairSMTP = %d92 %d32-126
            Some((_, '\\')) => match chars.next() {
                Some((_, c @ ' '..='~')) => local.push(c),
                _ => return Err(PathError::Syntax),
            },
            Some((_, c)) if is_qtext(c) => local.push(c),
            _ => return Err(PathError::Syntax),
        }
        if local.len() > MAX_LOCAL_PART {
            return Err(PathError::TooLong);
        }
    }
}

/// A domain or address literal; returns it as written.
fn parse_domain<'a>(cur: &mut Cursor<'a>) -> Result<&'a str, PathError> {
    let start = cur.pos;
    let domain = if cur.eat(b'[') {
        let inner = cur.take_while(|c| c != ']' && c != '>' && !c.is_control());
        cur.expect(b']')?;
        if !valid_literal(inner) {
            return Err(PathError::Syntax);
        }
        cur.s.get(start..cur.pos).unwrap_or_default()
    } else {
        let name = cur
            .take_while(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || is_utf8_text(c));
        if name.len() <= MAX_DOMAIN && !valid_domain_name(name) {
            return Err(PathError::Syntax);
        }
        name
    };
    if domain.len() > MAX_DOMAIN {
        return Err(PathError::TooLong);
    }
    Ok(domain)
}
