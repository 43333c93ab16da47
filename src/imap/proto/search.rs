//! SEARCH keys (RFC 9051 §6.4.4, RFC 7162 MODSEQ).

use super::command::flag;
use super::lexer::{Cursor, ParseError, Parsed};
use super::sequence::SequenceSet;

/// Nesting of NOT/OR/parentheses; deeper searches are refused (bounds recursion).
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    And(Vec<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    Not(Box<SearchKey>),
    /// Set flag (`\Seen`...) or keyword present.
    Flag(String),
    /// Flag absent.
    NoFlag(String),
    New,
    Old,
    Recent,
    /// Days since 1970-01-01 of the internal date: before, on, since.
    Before(i64),
    On(i64),
    Since(i64),
    SentBefore(i64),
    SentOn(i64),
    SentSince(i64),
    Larger(u64),
    Smaller(u64),
    /// Header field (lowercase name) contains the text.
    Header(String, String),
    Body(String),
    Text(String),
    Uid(SequenceSet),
    Sequence(SequenceSet),
    ModSeq(u64),
}

impl SearchKey {
    /// Whether the key names MODSEQ: the SEARCH answer then carries the highest MODSEQ of the
    /// messages found, and the command turns CONDSTORE on (RFC 7162 §3.1.5, §3.1).
    pub fn uses_modseq(&self) -> bool {
        match self {
            SearchKey::ModSeq(_) => true,
            SearchKey::And(keys) => keys.iter().any(SearchKey::uses_modseq),
            SearchKey::Or(a, b) => a.uses_modseq() || b.uses_modseq(),
            SearchKey::Not(a) => a.uses_modseq(),
            _ => false,
        }
    }
}

pub fn parse_search(c: &mut Cursor<'_>) -> Parsed<SearchKey> {
    let mut keys = vec![key(c, 0)?];
    while c.eat(b' ') {
        keys.push(key(c, 0)?);
    }
    Ok(if keys.len() == 1 {
        keys.remove(0)
    } else {
        SearchKey::And(keys)
    })
}

fn text(c: &mut Cursor<'_>) -> Parsed<String> {
    c.sp()?;
    Ok(String::from_utf8_lossy(&c.astring()?).into_owned())
}

fn key(c: &mut Cursor<'_>, depth: usize) -> Parsed<SearchKey> {
    use SearchKey::*;
    if depth > MAX_DEPTH {
        return Err(ParseError("search nested too deep"));
    }
    if c.peek() == Some(b'(') {
        let keys = c.list(|c| key(c, depth + 1))?;
        return Ok(And(keys));
    }
    if c.peek()
        .is_some_and(|b| b.is_ascii_digit() || b == b'*' || b == b'$')
    {
        return Ok(Sequence(SequenceSet::parse(c)?));
    }
    let flags: [(&str, &str, bool); 10] = [
        ("ANSWERED", "\\Answered", true),
        ("DELETED", "\\Deleted", true),
        ("DRAFT", "\\Draft", true),
        ("FLAGGED", "\\Flagged", true),
        ("SEEN", "\\Seen", true),
        ("UNANSWERED", "\\Answered", false),
        ("UNDELETED", "\\Deleted", false),
        ("UNDRAFT", "\\Draft", false),
        ("UNFLAGGED", "\\Flagged", false),
        ("UNSEEN", "\\Seen", false),
    ];
    for (word, name, set) in flags {
        if c.keyword(word) {
            return Ok(if set {
                Flag(name.into())
            } else {
                NoFlag(name.into())
            });
        }
    }
    let simple: [(&str, SearchKey); 4] =
        [("ALL", All), ("NEW", New), ("OLD", Old), ("RECENT", Recent)];
    for (word, key) in simple {
        if c.keyword(word) {
            return Ok(key);
        }
    }
    type DateKey = fn(i64) -> SearchKey;
    let dates: [(&str, DateKey); 6] = [
        ("BEFORE", Before),
        ("ON", On),
        ("SINCE", Since),
        ("SENTBEFORE", SentBefore),
        ("SENTON", SentOn),
        ("SENTSINCE", SentSince),
    ];
    for (word, make) in dates {
        if c.keyword(word) {
            c.sp()?;
            return Ok(make(c.date()?));
        }
    }
    for field in ["BCC", "CC", "FROM", "SUBJECT", "TO"] {
        if c.keyword(field) {
            return Ok(Header(field.to_ascii_lowercase(), text(c)?));
        }
    }
    if c.keyword("HEADER") {
        let name = text(c)?.to_ascii_lowercase();
        return Ok(Header(name, text(c)?));
    }
    if c.keyword("BODY") {
        return Ok(Body(text(c)?));
    }
    if c.keyword("TEXT") {
        return Ok(Text(text(c)?));
    }
    if c.keyword("KEYWORD") {
        c.sp()?;
        return Ok(Flag(flag(c)?));
    }
    if c.keyword("UNKEYWORD") {
        c.sp()?;
        return Ok(NoFlag(flag(c)?));
    }
    if c.keyword("LARGER") {
        c.sp()?;
        return Ok(Larger(c.number()?));
    }
    if c.keyword("SMALLER") {
        c.sp()?;
        return Ok(Smaller(c.number()?));
    }
    if c.keyword("UID") {
        c.sp()?;
        return Ok(Uid(SequenceSet::parse(c)?));
    }
    if c.keyword("NOT") {
        c.sp()?;
        return Ok(Not(Box::new(key(c, depth + 1)?)));
    }
    if c.keyword("OR") {
        c.sp()?;
        let a = key(c, depth + 1)?;
        c.sp()?;
        let b = key(c, depth + 1)?;
        return Ok(Or(Box::new(a), Box::new(b)));
    }
    if c.keyword("MODSEQ") {
        c.sp()?;
        // RFC 7162 §3.1.5: an optional entry name and type come before the value.
        if c.peek() == Some(b'"') {
            c.astring()?;
            c.sp()?;
            c.atom()?;
            c.sp()?;
        }
        return Ok(ModSeq(c.number()?));
    }
    Err(ParseError("unknown search key"))
}

impl SearchKey {
    /// Whether evaluating this key needs the message's stored header data.
    pub fn needs_headers(&self) -> bool {
        use SearchKey::*;
        match self {
            Header(..) | SentBefore(_) | SentOn(_) | SentSince(_) => true,
            And(keys) => keys.iter().any(SearchKey::needs_headers),
            Or(a, b) => a.needs_headers() || b.needs_headers(),
            Not(a) => a.needs_headers(),
            _ => false,
        }
    }

    /// Whether evaluating this key needs the message text.
    pub fn needs_body(&self) -> bool {
        use SearchKey::*;
        match self {
            Body(_) | Text(_) => true,
            And(keys) => keys.iter().any(SearchKey::needs_body),
            Or(a, b) => a.needs_body() || b.needs_body(),
            Not(a) => a.needs_body(),
            _ => false,
        }
    }
}
