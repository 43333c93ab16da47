//! The lexical layer of RFC 9051 §9 (formal syntax): atoms, strings (quoted and literal),
//! numbers, dates, over a complete command as framed by [`super::framing`] (literals appear
//! inline as `{n}\r\n` followed by their n octets).

use std::borrow::Cow;

/// A syntax error; the text says what was expected and becomes the BAD reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub &'static str);

pub type Parsed<T> = Result<T, ParseError>;

pub struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
    /// Mailbox names are UTF-8 rather than modified UTF-7 (after ENABLE UTF8=ACCEPT or
    /// IMAP4rev2, RFC 6855 §3 / RFC 9051 §5.1).
    utf8_names: bool,
}

/// RFC 9051 ATOM-CHAR: any CHAR except atom-specials. Octets above 0x7f are let through:
/// some clients send UTF-8 mailbox names unquoted.
pub fn is_atom_char(b: u8) -> bool {
    !matches!(
        b,
        b'(' | b')' | b'{' | b' ' | b'%' | b'*' | b'"' | b'\\' | b']'
    ) && b > 0x1f
        && b != 0x7f
}

fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

fn is_list_char(b: u8) -> bool {
    is_atom_char(b) || matches!(b, b'%' | b'*' | b']')
}

impl<'a> Cursor<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Cursor {
            input,
            pos: 0,
            utf8_names: false,
        }
    }

    pub fn with_utf8_names(mut self, on: bool) -> Self {
        self.utf8_names = on;
        self
    }

    pub fn utf8_names(&self) -> bool {
        self.utf8_names
    }

    pub fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.input[self.pos.min(self.input.len())..]
    }

    pub fn end(&self) -> Parsed<()> {
        if self.at_end() {
            Ok(())
        } else {
            Err(ParseError("unexpected text after the command"))
        }
    }

    pub fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn expect(&mut self, byte: u8, what: &'static str) -> Parsed<()> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(ParseError(what))
        }
    }

    pub fn sp(&mut self) -> Parsed<()> {
        self.expect(b' ', "expected a space")
    }

    /// Matches `word` case-insensitively when it is followed by a non-atom character.
    pub fn keyword(&mut self, word: &str) -> bool {
        let end = self.pos + word.len();
        let Some(candidate) = self.input.get(self.pos..end) else {
            return false;
        };
        let next_is_boundary = self
            .input
            .get(end)
            .is_none_or(|&b| !is_atom_char(b) || b == b'[' || b == b'.');
        if candidate.eq_ignore_ascii_case(word.as_bytes()) && next_is_boundary {
            self.pos = end;
            true
        } else {
            false
        }
    }

    fn take_while(&mut self, accept: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&accept) {
            self.pos += 1;
        }
        &self.input[start..self.pos]
    }

    pub fn atom(&mut self) -> Parsed<&'a [u8]> {
        let atom = self.take_while(is_atom_char);
        if atom.is_empty() {
            Err(ParseError("expected an atom"))
        } else {
            Ok(atom)
        }
    }

    /// An atom made of the characters a tag may hold (ASTRING-CHAR except "+").
    pub fn tag(&mut self) -> Parsed<&'a [u8]> {
        let tag = self.take_while(|b| is_astring_char(b) && b != b'+');
        if tag.is_empty() {
            Err(ParseError("expected a tag"))
        } else {
            Ok(tag)
        }
    }

    pub fn number(&mut self) -> Parsed<u64> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() || digits.len() > 19 {
            return Err(ParseError("expected a number"));
        }
        digits.iter().try_fold(0u64, |n, &d| {
            n.checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or(ParseError("number too large"))
        })
    }

    pub fn number32(&mut self) -> Parsed<u32> {
        u32::try_from(self.number()?).map_err(|_| ParseError("number too large"))
    }

    pub fn nz_number(&mut self) -> Parsed<u32> {
        match self.number32()? {
            0 => Err(ParseError("expected a non-zero number")),
            n => Ok(n),
        }
    }

    fn quoted(&mut self) -> Parsed<Cow<'a, [u8]>> {
        self.expect(b'"', "expected a quoted string")?;
        let start = self.pos;
        let mut owned: Option<Vec<u8>> = None;
        loop {
            match self.peek() {
                None | Some(b'\r' | b'\n') => return Err(ParseError("unterminated quoted string")),
                Some(b'"') => {
                    let end = self.pos;
                    self.pos += 1;
                    return Ok(match owned {
                        Some(bytes) => Cow::Owned(bytes),
                        None => Cow::Borrowed(&self.input[start..end]),
                    });
                }
                Some(b'\\') => {
                    let buffer = owned.get_or_insert_with(|| self.input[start..self.pos].to_vec());
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => buffer.push(c),
                        _ => return Err(ParseError("bad escape in quoted string")),
                    }
                    self.pos += 1;
                }
                Some(c) => {
                    if let Some(buffer) = &mut owned {
                        buffer.push(c);
                    }
                    self.pos += 1;
                }
            }
        }
    }

    /// `{n}` or `{n+}` CRLF and n octets (the framing put them there).
    fn literal(&mut self) -> Parsed<&'a [u8]> {
        self.expect(b'{', "expected a literal")?;
        let length = self.number()?;
        self.eat(b'+');
        self.expect(b'}', "bad literal")?;
        self.expect(b'\r', "bad literal")?;
        self.expect(b'\n', "bad literal")?;
        let length = usize::try_from(length).map_err(|_| ParseError("literal too large"))?;
        let end = self
            .pos
            .checked_add(length)
            .filter(|&e| e <= self.input.len());
        let end = end.ok_or(ParseError("literal shorter than announced"))?;
        let bytes = &self.input[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    pub fn string(&mut self) -> Parsed<Cow<'a, [u8]>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal().map(Cow::Borrowed),
            _ => Err(ParseError("expected a string")),
        }
    }

    pub fn astring(&mut self) -> Parsed<Cow<'a, [u8]>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let atom = self.take_while(is_astring_char);
                if atom.is_empty() {
                    Err(ParseError("expected an atom or a string"))
                } else {
                    Ok(Cow::Borrowed(atom))
                }
            }
        }
    }

    /// An astring as UTF-8 text.
    pub fn astring_text(&mut self) -> Parsed<String> {
        let bytes = self.astring()?;
        String::from_utf8(bytes.into_owned()).map_err(|_| ParseError("invalid UTF-8"))
    }

    /// NIL or a string.
    pub fn nstring(&mut self) -> Parsed<Option<Cow<'a, [u8]>>> {
        if self.keyword("NIL") {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    /// A LIST pattern: list-char atom (wildcards allowed) or a string.
    pub fn list_mailbox(&mut self) -> Parsed<Cow<'a, [u8]>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let atom = self.take_while(is_list_char);
                if atom.is_empty() {
                    Err(ParseError("expected a mailbox pattern"))
                } else {
                    Ok(Cow::Borrowed(atom))
                }
            }
        }
    }

    /// A parenthesized, space-separated list; `item` parses one element.
    pub fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Parsed<T>) -> Parsed<Vec<T>> {
        self.expect(b'(', "expected a parenthesized list")?;
        let mut items = Vec::new();
        if self.eat(b')') {
            return Ok(items);
        }
        loop {
            items.push(item(self)?);
            if self.eat(b')') {
                return Ok(items);
            }
            self.sp()?;
        }
    }

    /// RFC 9051 `date` (in SEARCH): `d-Mon-yyyy`, optionally quoted. Returns days since
    /// 1970-01-01.
    pub fn date(&mut self) -> Parsed<i64> {
        let quoted = self.eat(b'"');
        let day = self.number()?;
        self.expect(b'-', "expected a date like 1-Jan-2024")?;
        let month = self.month()?;
        self.expect(b'-', "expected a date like 1-Jan-2024")?;
        let year = self.number()?;
        if quoted {
            self.expect(b'"', "unterminated date")?;
        }
        if !(1..=31).contains(&day) || !(1..=9999).contains(&year) {
            return Err(ParseError("invalid date"));
        }
        Ok(days_from_civil(year as i64, month, day as u32))
    }

    fn month(&mut self) -> Parsed<u32> {
        let name = self
            .input
            .get(self.pos..self.pos + 3)
            .ok_or(ParseError("expected a month"))?;
        let month = MONTHS
            .iter()
            .position(|m| m.as_bytes().eq_ignore_ascii_case(name))
            .ok_or(ParseError("expected a month name"))?;
        self.pos += 3;
        Ok(month as u32 + 1)
    }

    /// RFC 9051 `date-time` (in APPEND): `"dd-Mon-yyyy hh:mm:ss +zzzz"`. Returns Unix seconds.
    pub fn date_time(&mut self) -> Parsed<i64> {
        self.expect(b'"', "expected a date-time")?;
        self.eat(b' ');
        let days = self.date()?;
        self.sp()?;
        let h = self.number()?;
        self.expect(b':', "bad time")?;
        let m = self.number()?;
        self.expect(b':', "bad time")?;
        let s = self.number()?;
        self.sp()?;
        let sign = match self.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(ParseError("expected a time zone")),
        };
        self.pos += 1;
        let zone = self.number()?;
        self.expect(b'"', "unterminated date-time")?;
        if h > 23 || m > 59 || s > 60 || zone > 2359 {
            return Err(ParseError("invalid date-time"));
        }
        let offset = sign * ((zone / 100) * 3600 + (zone % 100) * 60) as i64;
        Ok(days * 86400 + (h * 3600 + m * 60 + s) as i64 - offset)
    }
}

pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01: (year, month 1-12, day 1-31).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_quoted_and_literal() {
        let mut c = Cursor::new(b"\"a \\\"b\\\\\" {3}\r\nxyz atom]x");
        assert_eq!(c.astring().unwrap().as_ref(), b"a \"b\\");
        c.sp().unwrap();
        assert_eq!(c.astring().unwrap().as_ref(), b"xyz");
        c.sp().unwrap();
        assert_eq!(c.astring().unwrap().as_ref(), b"atom]x");
        assert!(c.at_end());
        assert!(Cursor::new(b"{5}\r\nab").astring().is_err());
        assert!(Cursor::new(b"\"abc").astring().is_err());
        assert!(Cursor::new(b"(x)").astring().is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(Cursor::new(b"1-Jan-1970").date(), Ok(0));
        assert_eq!(Cursor::new(b"\"29-Feb-2024\"").date(), Ok(19782));
        assert!(Cursor::new(b"1-Foo-2024").date().is_err());
        assert_eq!(
            Cursor::new(b"\"01-Jan-1970 01:00:00 +0100\"").date_time(),
            Ok(0)
        );
        assert_eq!(
            Cursor::new(b"\" 2-Jan-1970 00:00:00 -0000\"").date_time(),
            Ok(86400)
        );
        assert_eq!(civil_from_days(19782), (2024, 2, 29));
    }

    #[test]
    fn numbers_overflow_is_an_error() {
        assert!(Cursor::new(b"99999999999999999999").number().is_err());
        assert!(Cursor::new(b"4294967296").number32().is_err());
        assert!(Cursor::new(b"0").nz_number().is_err());
    }
}
