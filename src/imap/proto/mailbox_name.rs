//! Mailbox names at the protocol edge: modified UTF-7 on the wire (or UTF-8 once the client
//! enabled UTF8=ACCEPT or IMAP4rev2), UTF-8 inside, "/" as the hierarchy delimiter, INBOX
//! case-insensitive (RFC 9051 §5.1, RFC 6855 §3).

use super::lexer::{ParseError, Parsed};
use super::mutf7;

pub const DELIMITER: char = '/';
/// Longest mailbox name accepted, in UTF-8 octets.
pub const MAX_NAME: usize = 512;

/// The name a client sent, as Letterbox names it. In UTF-8 mode the name is taken as it is;
/// otherwise it is modified UTF-7, except that a name with 8-bit octets (which modified UTF-7
/// cannot hold) is taken as UTF-8: some IMAP4rev1 clients send that without enabling anything.
pub fn from_wire(raw: &[u8], utf8: bool) -> Parsed<String> {
    let text = std::str::from_utf8(raw).map_err(|_| ParseError("mailbox name is not UTF-8"))?;
    let decoded = if utf8 || !text.is_ascii() {
        text.to_string()
    } else {
        mutf7::decode(text).ok_or(ParseError("bad modified UTF-7 in mailbox name"))?
    };
    Ok(normalize_inbox(decoded))
}

/// "inbox" and "Inbox/x" name INBOX and its children.
pub fn normalize_inbox(name: String) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        return "INBOX".into();
    }
    match name.get(..6) {
        Some(prefix) if prefix.eq_ignore_ascii_case("INBOX/") => format!("INBOX{}", &name[5..]),
        _ => name,
    }
}

/// The name as sent to a client: UTF-8 in UTF-8 mode, else modified UTF-7.
pub fn to_wire(name: &str, utf8: bool) -> String {
    if utf8 {
        name.to_string()
    } else {
        mutf7::encode(name)
    }
}

/// Whether `name` may be created: non-empty levels, no wildcards or control characters.
pub fn check_new(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err("invalid mailbox name length");
    }
    if name.split(DELIMITER).any(str::is_empty) {
        return Err("empty hierarchy level in mailbox name");
    }
    if name.chars().any(|c| c.is_control() || c == '%' || c == '*') {
        return Err("mailbox names may not hold wildcards or control characters");
    }
    Ok(())
}

/// RFC 9051 §6.3.9 LIST matching: `*` matches anything, `%` anything but the delimiter.
pub fn matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.as_bytes();
    let name = name.as_bytes();
    // Iterative wildcard matching with backtracking to the last star (bounded: O(n·m)).
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    let mut percent: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                percent = None;
                p += 1;
            }
            Some(b'%') => {
                percent = Some((p, n));
                p += 1;
            }
            Some(&c) if c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => {
                if let Some((pp, pn)) = percent
                    && name[pn] != b'/'
                {
                    percent = Some((pp, pn + 1));
                    p = pp + 1;
                    n = pn + 1;
                } else if let Some((sp, sn)) = star {
                    percent = None;
                    star = Some((sp, sn + 1));
                    p = sp + 1;
                    n = sn + 1;
                } else {
                    return false;
                }
            }
        }
    }
    pattern[p..].iter().all(|&c| c == b'*' || c == b'%')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(from_wire(b"inbox", false).unwrap(), "INBOX");
        assert_eq!(from_wire(b"Inbox/Sub", false).unwrap(), "INBOX/Sub");
        assert_eq!(from_wire(b"Entw&APw-rfe", false).unwrap(), "Entwürfe");
        assert!(from_wire(b"&Jjo", false).is_err());
        // 8-bit names are UTF-8 in either mode; "&" is literal only in UTF-8 mode.
        assert_eq!(from_wire("Entwürfe".as_bytes(), false).unwrap(), "Entwürfe");
        assert_eq!(from_wire(b"A&B-", true).unwrap(), "A&B-");
        assert_eq!(from_wire(b"A&-B", false).unwrap(), "A&B");
        assert_eq!(to_wire("Entwürfe", false), "Entw&APw-rfe");
        assert_eq!(to_wire("Entwürfe", true), "Entwürfe");
        assert!(check_new("a//b").is_err());
        assert!(check_new("/a").is_err());
        assert!(check_new("a*").is_err());
        assert!(check_new("Archive/2024").is_ok());
    }

    #[test]
    fn wildcards() {
        assert!(matches("*", "a/b/c"));
        assert!(matches("%", "Sent"));
        assert!(!matches("%", "a/b"));
        assert!(matches("a/%", "a/b"));
        assert!(!matches("a/%", "a/b/c"));
        assert!(matches("a/*", "a/b/c"));
        assert!(matches("%/%", "a/b"));
        assert!(matches("*c", "a/b/c"));
        assert!(matches("INBOX", "INBOX"));
        assert!(!matches("INBOX", "INBOX/x"));
        assert!(matches("%b%", "abc"));
        assert!(!matches("%b", "a/b"));
    }
}
