//! FETCH data items (RFC 9051 §6.4.5): what a client asks for, including body sections.

use super::lexer::{Cursor, ParseError, Parsed};

/// The text part of a section specifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    HeaderFields { not: bool, fields: Vec<String> },
    Text,
    Mime,
}

/// `BODY[1.2.HEADER]`: a part path (empty for the whole message) and what of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttr {
    Flags,
    Uid,
    InternalDate,
    Rfc822Size,
    Envelope,
    /// BODY without a section: BODYSTRUCTURE without extension data.
    Body,
    BodyStructure,
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    ModSeq,
    Section {
        peek: bool,
        section: Section,
        partial: Option<(u32, u32)>,
    },
}

impl FetchAttr {
    /// Whether sending this item sets `\Seen` (RFC 9051 §6.4.5).
    pub fn sets_seen(&self) -> bool {
        matches!(
            self,
            FetchAttr::Rfc822 | FetchAttr::Rfc822Text | FetchAttr::Section { peek: false, .. }
        )
    }
}

pub fn parse_fetch_attrs(c: &mut Cursor<'_>) -> Parsed<Vec<FetchAttr>> {
    use FetchAttr::*;
    if c.keyword("ALL") {
        return Ok(vec![Flags, InternalDate, Rfc822Size, Envelope]);
    }
    if c.keyword("FAST") {
        return Ok(vec![Flags, InternalDate, Rfc822Size]);
    }
    if c.keyword("FULL") {
        return Ok(vec![Flags, InternalDate, Rfc822Size, Envelope, Body]);
    }
    if c.peek() == Some(b'(') {
        let attrs = c.list(attr)?;
        if attrs.is_empty() {
            return Err(ParseError("empty FETCH list"));
        }
        return Ok(attrs);
    }
    Ok(vec![attr(c)?])
}

fn attr(c: &mut Cursor<'_>) -> Parsed<FetchAttr> {
    use FetchAttr::*;
    let simple: [(&str, FetchAttr); 9] = [
        ("FLAGS", Flags),
        ("UID", Uid),
        ("INTERNALDATE", InternalDate),
        ("RFC822.SIZE", Rfc822Size),
        ("RFC822.HEADER", Rfc822Header),
        ("RFC822.TEXT", Rfc822Text),
        ("ENVELOPE", Envelope),
        ("BODYSTRUCTURE", BodyStructure),
        ("MODSEQ", ModSeq),
    ];
    for (word, attr) in simple {
        if c.keyword(word) {
            return Ok(attr);
        }
    }
    if c.keyword("RFC822") {
        return Ok(Rfc822);
    }
    let peek = if c.keyword("BODY.PEEK") {
        true
    } else if c.keyword("BINARY.PEEK") || c.keyword("BINARY") {
        return Err(ParseError("BINARY is not supported"));
    } else if c.keyword("BODY") {
        if c.peek() != Some(b'[') {
            return Ok(Body);
        }
        false
    } else {
        return Err(ParseError("unknown FETCH item"));
    };
    c.expect(b'[', "expected [")?;
    let section = section(c)?;
    c.expect(b']', "expected ]")?;
    let partial = if c.eat(b'<') {
        let start = c.number32()?;
        c.expect(b'.', "expected <start.length>")?;
        let length = c.nz_number()?;
        c.expect(b'>', "expected >")?;
        Some((start, length))
    } else {
        None
    };
    Ok(Section {
        peek,
        section,
        partial,
    })
}

fn section(c: &mut Cursor<'_>) -> Parsed<Section> {
    let mut section = Section::default();
    if c.peek() == Some(b']') {
        return Ok(section);
    }
    loop {
        if c.peek().is_some_and(|b| b.is_ascii_digit()) {
            section.part.push(c.nz_number()?);
            if section.part.len() > 64 {
                return Err(ParseError("section nested too deep"));
            }
            if !c.eat(b'.') {
                return Ok(section);
            }
            continue;
        }
        let text = if c.keyword("HEADER.FIELDS.NOT") {
            header_fields(c, true)?
        } else if c.keyword("HEADER.FIELDS") {
            header_fields(c, false)?
        } else if c.keyword("HEADER") {
            SectionText::Header
        } else if c.keyword("TEXT") {
            SectionText::Text
        } else if c.keyword("MIME") && !section.part.is_empty() {
            SectionText::Mime
        } else {
            return Err(ParseError("bad section"));
        };
        section.text = Some(text);
        return Ok(section);
    }
}

fn header_fields(c: &mut Cursor<'_>, not: bool) -> Parsed<SectionText> {
    c.sp()?;
    let fields = c.list(|c| c.astring_text())?;
    if fields.is_empty() {
        return Err(ParseError("empty header field list"));
    }
    Ok(SectionText::HeaderFields { not, fields })
}
