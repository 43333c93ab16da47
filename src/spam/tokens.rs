//! What the filter reads in a message: the distinct tokens of its first octets. Sans-I/O:
//! the caller reads at most `SPAM_READ_MAX` octets and hands them over.
//!
//! - Header fields give `name:word` tokens (a word in the Subject is not the same clue as
//!   the word in the body) and a `hdr:name` token for the field's presence; the Subject,
//!   From, To and Cc are read decoded (RFC 2047). `X-Spam-*` fields are left out: they are
//!   some filter's verdict, ours included, and learning them would learn that verdict.
//! - The MIME structure gives `mime:type/subtype`, `charset:` and `cte:` tokens.
//! - The text of the body is read as a person reads it (`mime::MessageText`: transfer
//!   encodings, charsets and HTML undone), lowercased, split into words; a URL gives its
//!   host (`url:`), an address its domain (`email:`); overlong runs (base64 left in the
//!   text, hashes) give one `skip:` token for their first character and length.

use std::collections::HashSet;

use crate::limits::SPAM_MESSAGE_TOKENS;
use crate::mime::{MessageText, PART_END, Part, Source, structure_of};

/// Words shorter than this (in characters) say little ("a", "of").
const MIN_WORD: usize = 3;
/// Longer words are not words (see the module comment).
const MAX_WORD: usize = 40;

/// Header fields that say nothing about the sender: written by the receiving side (a
/// filter's verdict, a mail client's or mbox's bookkeeping), or dates, which say when a
/// message came, not what it is (learned, they make last month's mail look like last
/// month's spam).
fn ignored_field(name: &str) -> bool {
    name.starts_with("x-spam")
        || matches!(
            name,
            "status"
                | "x-status"
                | "x-keywords"
                | "x-uid"
                | "content-length"
                | "lines"
                | "date"
                | "delivery-date"
                | "resent-date"
        )
}

/// Header fields written hop by hop or naming one message: besides the hosts and domains
/// in them, their words (queue ids, times, the local part of message ids) are each met in
/// one message only. Learned, such a token can never weigh, yet it takes room in the
/// table and in the cache a classification fills: about a quarter of the tokens of the
/// SpamAssassin corpus came from `Received` alone (bench/RESULTS.md).
fn hosts_only(name: &str) -> bool {
    matches!(
        name,
        "received" | "message-id" | "in-reply-to" | "references" | "content-id"
    )
}

/// The distinct tokens of one message, in the order first met, at most
/// `SPAM_MESSAGE_TOKENS`.
#[derive(Debug, Default)]
pub struct Tokens {
    list: Vec<String>,
    seen: HashSet<u64>,
}

impl Tokens {
    /// The tokens of `message`, the first octets of a message (see the module comment).
    pub fn of_message(message: &[u8]) -> Tokens {
        let mut tokens = Tokens::default();
        let root = structure_of(message);
        let header = message
            .get(root.header_start as usize..(root.body_start as usize).min(message.len()))
            .unwrap_or_default();
        tokens.header_fields(header, &root);
        tokens.structure(&root);
        let mut words = WordSplitter::default();
        let mut text = MessageText::new(&root);
        let mut sink = |source: Source, piece: &str| {
            // The root's header block came from `header_fields`; an embedded message's
            // header block is `Source::Body` and counts as text.
            if source == Source::Header {
                return;
            }
            if piece == PART_END {
                words.finish(&mut |word| tokens.word("", word, true));
            } else {
                words.feed(piece, &mut |word| tokens.word("", word, true));
            }
        };
        text.feed(0, message, &mut sink);
        text.finish(&mut sink);
        tokens
    }

    pub fn as_slice(&self) -> &[String] {
        &self.list
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Each token's hash, as the store keys it.
    pub fn hashes(&self) -> Vec<u64> {
        self.list.iter().map(|t| hash(t.as_bytes())).collect()
    }

    fn push(&mut self, token: String) {
        if self.list.len() < SPAM_MESSAGE_TOKENS && self.seen.insert(hash(token.as_bytes())) {
            self.list.push(token);
        }
    }

    fn header_fields(&mut self, block: &[u8], root: &Part) {
        let block = String::from_utf8_lossy(block);
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in block.split('\n') {
            let line = line.trim_end_matches('\r');
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                fields.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let decoded = root.search.as_ref();
        for (name, value) in &fields {
            if ignored_field(name) {
                continue;
            }
            self.push(format!("hdr:{name}"));
            let value = match (name.as_str(), decoded) {
                ("subject", Some(d)) => &d.subject,
                ("from", Some(d)) => &d.from,
                ("to", Some(d)) => &d.to,
                ("cc", Some(d)) => &d.cc,
                _ => value,
            };
            let mut words = WordSplitter::default();
            let mut emit = |word: &str| self.header_word(name, word);
            words.feed(value, &mut emit);
            words.finish(&mut emit);
        }
    }

    fn structure(&mut self, part: &Part) {
        self.push(format!("mime:{}/{}", part.ctype, part.subtype));
        if let Some((_, charset)) = part.params.iter().find(|(name, _)| name == "charset") {
            self.push(format!("charset:{}", charset.to_ascii_lowercase()));
        }
        if part.encoding != "7bit" {
            self.push(format!("cte:{}", part.encoding.to_ascii_lowercase()));
        }
        for child in &part.children {
            self.structure(child);
        }
    }

    /// Turns one word of the header field `name` into tokens (see `hosts_only`).
    fn header_word(&mut self, name: &str, word: &str) {
        if !hosts_only(name) {
            self.word(name, word, true);
        } else if word.contains('@') {
            // An address or a message id: its domain alone.
            self.word(name, word, false);
        } else if word.contains('.') {
            // A host name or an IP address.
            self.word(name, word, true);
        }
    }

    /// Turns one word of text into tokens, `prefix:` before each when from a header field.
    /// `whole`: the word itself is a token too, besides the URL host or address domain it
    /// holds.
    fn word(&mut self, prefix: &str, word: &str, whole: bool) {
        let lower = word.to_lowercase();
        let tag = |kind: &str, value: &str| {
            if prefix.is_empty() {
                format!("{kind}:{value}")
            } else {
                format!("{prefix}:{kind}:{value}")
            }
        };
        if let Some(host) = url_host(&lower) {
            self.push(tag("url", host));
            if let Some(domain) = registered_domain(host)
                && domain != host
            {
                self.push(tag("url", domain));
            }
            return;
        }
        if let Some((_, domain)) = lower.rsplit_once('@')
            && domain.contains('.')
        {
            self.push(tag("email", domain.trim_end_matches('.')));
        }
        if !whole {
            return;
        }
        let trimmed = lower.trim_matches(|c: char| matches!(c, '.' | ',' | ':' | '\'' | '-' | '/'));
        let length = trimmed.chars().count();
        if length > MAX_WORD {
            let first = trimmed.chars().next().unwrap_or('?');
            self.push(tag("skip", &format!("{first}{}", length / 10 * 10)));
        } else if length >= MIN_WORD {
            if prefix.is_empty() {
                self.push(trimmed.to_string());
            } else {
                self.push(format!("{prefix}:{trimmed}"));
            }
        }
    }
}

/// The host of a URL-looking word (`http://host/...`, `www.host...`).
fn url_host(word: &str) -> Option<&str> {
    let rest = match word.split_once("://") {
        Some((_, rest)) => rest,
        None if word.starts_with("www.") => word,
        None => return None,
    };
    let host = rest.split(['/', '?', '#', ':']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    (!host.is_empty()).then_some(host)
}

/// The last two labels of a host name: what a spammer registered, whatever the subdomain.
fn registered_domain(host: &str) -> Option<&str> {
    let mut dots = host.rmatch_indices('.');
    dots.next()?;
    Some(dots.next().map_or(host, |(i, _)| &host[i + 1..]))
}

/// Characters that belong to a word: letters and digits of any script, and the punctuation
/// that holds prices, addresses and URLs together.
fn word_char(c: char) -> bool {
    c.is_alphanumeric()
        || matches!(
            c,
            '$' | '-' | '_' | '.' | '\'' | '@' | '/' | ':' | '!' | '%'
        )
}

/// Splits text that arrives in pieces into words: a word cut between two pieces is kept
/// whole, up to four times `MAX_WORD` characters (a longer one is cut there: it is a
/// `skip:` token either way).
#[derive(Debug, Default)]
struct WordSplitter {
    partial: String,
    partial_chars: usize,
}

impl WordSplitter {
    fn feed(&mut self, text: &str, emit: &mut dyn FnMut(&str)) {
        for c in text.chars() {
            if word_char(c) {
                self.partial_chars += 1;
                if self.partial_chars <= 4 * MAX_WORD {
                    self.partial.push(c);
                }
            } else {
                self.finish(emit);
            }
        }
    }

    fn finish(&mut self, emit: &mut dyn FnMut(&str)) {
        if !self.partial.is_empty() {
            emit(&self.partial);
        }
        self.partial.clear();
        self.partial_chars = 0;
    }
}

/// 64-bit FNV-1a: stable across builds and platforms (the store keeps these).
pub fn hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(message: &str) -> Vec<String> {
        Tokens::of_message(message.as_bytes()).as_slice().to_vec()
    }

    #[test]
    fn headers_are_prefixed_and_decoded_and_verdicts_left_out() {
        let t = tokens(
            "Subject: =?utf-8?q?Gro=C3=9Fe_Chance?=\r\nX-Spam-Status: Yes, score=0.99\r\n\
             From: Winner <win@prizes.example>\r\n\r\nhello there\r\n",
        );
        assert!(t.contains(&"subject:große".to_string()), "{t:?}");
        assert!(t.contains(&"subject:chance".to_string()), "{t:?}");
        assert!(
            t.contains(&"from:email:prizes.example".to_string()),
            "{t:?}"
        );
        assert!(t.contains(&"hdr:from".to_string()));
        assert!(t.contains(&"hello".to_string()));
        assert!(t.contains(&"there".to_string()));
        assert!(
            !t.iter().any(|t| t.contains("x-spam") || t.contains("0.99")),
            "{t:?}"
        );
    }

    #[test]
    fn body_text_is_decoded_and_html_stripped() {
        let t = tokens(
            "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\
             Content-Type: text/plain; charset=iso-8859-1\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\nF=FCr Sie: gratis=\r\nangebot\r\n\
             --b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n\
             PGI+Q2xpY2sgPGEgaHJlZj0iaHR0cDovL3guc2hvcC5leGFtcGxlL2EiPmhlcmU8L2E+PC9iPg==\r\n\
             --b--\r\n",
        );
        for want in ["für", "gratisangebot", "click", "here", "mime:text/html"] {
            assert!(t.contains(&want.to_string()), "{want} in {t:?}");
        }
        assert!(t.contains(&"cte:quoted-printable".to_string()), "{t:?}");
        assert!(t.contains(&"charset:iso-8859-1".to_string()), "{t:?}");
        assert!(
            !t.iter().any(|t| t.contains("href") || t.starts_with('<')),
            "{t:?}"
        );
    }

    #[test]
    fn urls_addresses_and_overlong_words() {
        let t = tokens(&format!(
            "Subject: x\r\n\r\nsee http://promo.cheap-pills.example/buy?id=1 or \
             mail sales@cheap-pills.example {}\r\n",
            "Q".repeat(300)
        ));
        assert!(
            t.contains(&"url:promo.cheap-pills.example".to_string()),
            "{t:?}"
        );
        assert!(t.contains(&"url:cheap-pills.example".to_string()), "{t:?}");
        assert!(
            t.contains(&"email:cheap-pills.example".to_string()),
            "{t:?}"
        );
        assert!(t.contains(&"skip:q160".to_string()), "{t:?}");
    }

    #[test]
    fn relay_and_message_id_fields_give_their_hosts_only() {
        let t = tokens(
            "Received: from mx.example.org ([192.0.2.7]) by mail.home.test with ESMTP id \
             g83K2buK013193; Tue, 3 Sep 2002 15:02:38 -0500\r\n\
             Message-ID: <a81Xz.77@lists.example.net>\r\nSubject: hi\r\n\r\nbody\r\n",
        );
        for want in [
            "received:mx.example.org",
            "received:192.0.2.7",
            "received:mail.home.test",
            "message-id:email:lists.example.net",
        ] {
            assert!(t.contains(&want.to_string()), "{want} in {t:?}");
        }
        for unwanted in ["g83k2buk013193", "esmtp", "15:02", "a81xz"] {
            assert!(
                !t.iter().any(|t| t.contains(unwanted)),
                "{unwanted} in {t:?}"
            );
        }
    }

    #[test]
    fn a_message_gives_at_most_the_token_limit() {
        let words: String = (0..SPAM_MESSAGE_TOKENS * 2)
            .map(|i| format!("word{i} "))
            .collect();
        let t = Tokens::of_message(format!("Subject: list\r\n\r\n{words}\r\n").as_bytes());
        assert_eq!(t.len(), SPAM_MESSAGE_TOKENS);
    }

    #[test]
    fn the_hash_is_fnv1a() {
        // The published FNV-1a 64 test vectors: the store's keys must never change.
        assert_eq!(hash(b""), 0xcbf29ce484222325);
        assert_eq!(hash(b"a"), 0xaf63dc4c8601ec8c);
    }
}
