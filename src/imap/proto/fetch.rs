//! FETCH data items (RFC 9051 §6.4.5): what a client asks for, including body sections.

use super::lexer::{Cursor, ParseError, Parsed};

/// Part numbers in one section path.
const MAX_PART_DEPTH: usize = 64;

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
    /// `BINARY[1.2]<0.100>` (RFC 3516 §4.2): a part's content with its transfer encoding
    /// removed; the part path is empty for the whole message, and `partial` counts decoded
    /// octets.
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<(u32, u32)>,
    },
    /// `BINARY.SIZE[1.2]`: the size of that decoded content.
    BinarySize {
        part: Vec<u32>,
    },
}

impl FetchAttr {
    /// Whether sending this item sets `\Seen` (RFC 9051 §6.4.5).
    pub fn sets_seen(&self) -> bool {
        matches!(
            self,
            FetchAttr::Rfc822
                | FetchAttr::Rfc822Text
                | FetchAttr::Section { peek: false, .. }
                | FetchAttr::Binary { peek: false, .. }
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
    // The longer keywords first: `keyword` takes "BINARY" before ".PEEK" as a whole word.
    if c.keyword("BINARY.SIZE") {
        let part = section_binary(c)?;
        return Ok(BinarySize { part });
    }
    let binary_peek = c.keyword("BINARY.PEEK");
    if binary_peek || c.keyword("BINARY") {
        let part = section_binary(c)?;
        return Ok(Binary {
            peek: binary_peek,
            part,
            partial: partial(c)?,
        });
    }
    let peek = if c.keyword("BODY.PEEK") {
        true
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
    Ok(Section {
        peek,
        section,
        partial: partial(c)?,
    })
}

/// `<start.length>` after a section, if there.
fn partial(c: &mut Cursor<'_>) -> Parsed<Option<(u32, u32)>> {
    if !c.eat(b'<') {
        return Ok(None);
    }
    let start = c.number32()?;
    c.expect(b'.', "expected <start.length>")?;
    let length = c.nz_number()?;
    c.expect(b'>', "expected >")?;
    Ok(Some((start, length)))
}

/// section-binary (RFC 3516 §6): `[` a part path, possibly empty, `]` — no HEADER or TEXT,
/// which have no transfer encoding to remove.
fn section_binary(c: &mut Cursor<'_>) -> Parsed<Vec<u32>> {
    c.expect(b'[', "expected [")?;
    let mut part = Vec::new();
    if c.eat(b']') {
        return Ok(part);
    }
    loop {
        push_part(&mut part, c.nz_number()?)?;
        if !c.eat(b'.') {
            break;
        }
    }
    c.expect(b']', "expected ] after a part number")?;
    Ok(part)
}

/// Deeper paths than any stored message has are refused before they cost anything.
fn push_part(part: &mut Vec<u32>, number: u32) -> Parsed<()> {
    if part.len() == MAX_PART_DEPTH {
        return Err(ParseError("section nested too deep"));
    }
    part.push(number);
    Ok(())
}

fn section(c: &mut Cursor<'_>) -> Parsed<Section> {
    let mut section = Section::default();
    if c.peek() == Some(b']') {
        return Ok(section);
    }
    loop {
        if c.peek().is_some_and(|b| b.is_ascii_digit()) {
            push_part(&mut section.part, c.nz_number()?)?;
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
