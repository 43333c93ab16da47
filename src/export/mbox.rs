//! Reading an mbox file (one mailbox in one file, as Dovecot, mutt, Thunderbird and Python's
//! `mailbox` module write it) — line by line, with no I/O here: the caller feeds lines and
//! receives the pieces of each message.
//!
//! - A message starts at a `From ` line at the start of a line (RFC 4155) that ends in a
//!   date, as mutt's `is_from` requires; its date is the message's internal date. A body line
//!   "From the garden" that a writer left unescaped (Dovecot does, relying on its
//!   `Content-Length`) stays in the body. The file's first line starts a message whatever
//!   its date.
//! - `>From `, `>>From `, ... lose one `>` (mboxrd; for mboxo this also reads the lines right).
//! - The blank line a writer puts between messages is not part of the message.
//! - Flags come from the headers mail programs keep in mbox files (`Status: RO`,
//!   `X-Status: AF`, `X-Keywords: $Junk`); those headers, and `X-UID`, `Content-Length` and
//!   Dovecot's `X-IMAP`/`X-IMAPbase`, are dropped, as Dovecot does when it reads an mbox.

use crate::store::schema::flags;

/// One piece of the messages of an mbox file, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A message starts; the date of its `From ` line if it has a readable one.
    Start(Option<i64>),
    /// The message before ends, with the system flags and keywords its headers gave.
    End(u32, Vec<String>),
    /// Octets of the current message.
    Bytes(&'a [u8]),
}

#[derive(Debug, Default)]
pub struct MboxParser {
    state: State,
    /// In the headers: whether the header being read is dropped (its folded lines too).
    dropping: bool,
    /// A blank line in a body, held back: it is the separator if a `From ` line follows.
    blank: Option<&'static [u8]>,
    system: u32,
    keywords: Vec<String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    BeforeFirst,
    Headers,
    Body,
}

/// Headers that hold mbox bookkeeping rather than the message.
const DROPPED: [&str; 7] = [
    "status",
    "x-status",
    "x-keywords",
    "x-uid",
    "content-length",
    "x-imap",
    "x-imapbase",
];

impl MboxParser {
    /// Feeds one line with its line end. `continued` is true for the rest of a line too long
    /// to be read at once (it is never a `From ` line or a header).
    pub fn line<'a>(&mut self, line: &'a [u8], continued: bool, out: &mut impl FnMut(Piece<'a>)) {
        if continued {
            if self.state == State::Body || (self.state == State::Headers && !self.dropping) {
                out(Piece::Bytes(line));
            }
            return;
        }
        let date = line
            .starts_with(b"From ")
            .then(|| from_line_date(line))
            .flatten();
        let first = self.state == State::BeforeFirst && line.starts_with(b"From ");
        if date.is_some() || first {
            // The held-back blank line was the separator.
            if let Some(ended) = self.finish() {
                out(Piece::End(ended.0, ended.1));
            }
            self.state = State::Headers;
            self.dropping = false;
            out(Piece::Start(date));
            return;
        }
        match self.state {
            State::BeforeFirst => {}
            State::Headers => self.header_line(line, out),
            State::Body => {
                if let Some(blank) = self.blank.take() {
                    out(Piece::Bytes(blank));
                }
                if is_blank(line) {
                    self.blank = Some(if line.starts_with(b"\r") {
                        b"\r\n"
                    } else {
                        b"\n"
                    });
                    return;
                }
                let quoted = line.iter().take_while(|&&b| b == b'>').count();
                if quoted > 0 && line[quoted..].starts_with(b"From ") {
                    out(Piece::Bytes(&line[1..]));
                } else {
                    out(Piece::Bytes(line));
                }
            }
        }
    }

    fn header_line<'a>(&mut self, line: &'a [u8], out: &mut impl FnMut(Piece<'a>)) {
        if is_blank(line) {
            self.state = State::Body;
            out(Piece::Bytes(line));
            return;
        }
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            if !self.dropping {
                out(Piece::Bytes(line));
            }
            return;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            self.dropping = false;
            out(Piece::Bytes(line));
            return;
        };
        let name = String::from_utf8_lossy(&line[..colon])
            .trim()
            .to_ascii_lowercase();
        let value = String::from_utf8_lossy(&line[colon + 1..]);
        self.dropping = DROPPED.contains(&name.as_str());
        match name.as_str() {
            "status" if value.contains('R') => self.system |= flags::SEEN,
            "x-status" => {
                for (letter, bit) in [
                    ('A', flags::ANSWERED),
                    ('F', flags::FLAGGED),
                    ('T', flags::DRAFT),
                    ('D', flags::DELETED),
                ] {
                    if value.contains(letter) {
                        self.system |= bit;
                    }
                }
            }
            "x-keywords" => self.keywords.extend(
                value
                    .split([' ', ',', '\t', '\r', '\n'])
                    .filter(|k| !k.is_empty())
                    .map(str::to_string),
            ),
            _ => {}
        }
        if !self.dropping {
            out(Piece::Bytes(line));
        }
    }

    /// The end of the file: the last message's flags and keywords, if there was a message
    /// (a held-back blank line was the writer's, not the message's).
    pub fn finish(&mut self) -> Option<(u32, Vec<String>)> {
        self.blank = None;
        if self.state == State::BeforeFirst {
            return None;
        }
        self.state = State::BeforeFirst;
        Some((
            std::mem::take(&mut self.system),
            std::mem::take(&mut self.keywords),
        ))
    }
}

fn is_blank(line: &[u8]) -> bool {
    line == b"\n" || line == b"\r\n"
}

/// The date of `From sender Thu Dec  6 17:00:00 2026` (asctime, UTC), as Unix seconds.
fn from_line_date(line: &[u8]) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let text = std::str::from_utf8(line).ok()?;
    let words: Vec<&str> = text.split_whitespace().collect();
    // The sender comes first: the month is searched for after it.
    let at = words
        .iter()
        .skip(2)
        .position(|w| MONTHS.contains(w))
        .map(|i| i + 2)?;
    let month = MONTHS.iter().position(|m| *m == words[at])? as i64 + 1;
    let day: i64 = words.get(at + 1)?.parse().ok()?;
    let mut clock = words.get(at + 2)?.split(':').map(|p| p.parse::<i64>());
    let (hour, minute) = (clock.next()?.ok()?, clock.next()?.ok()?);
    let second = clock.next().and_then(Result::ok).unwrap_or(0);
    // Some writers put a zone between the time and the year.
    let year: i64 = words[at + 3..]
        .iter()
        .find_map(|w| w.parse().ok().filter(|y| *y > 1900))?;
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a date in the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages of `mbox` as (date, flags, keywords, text).
    fn parse(mbox: &str) -> Vec<(Option<i64>, u32, Vec<String>, String)> {
        let mut parser = MboxParser::default();
        let mut messages: Vec<(Option<i64>, u32, Vec<String>, String)> = Vec::new();
        let mut pieces = Vec::new();
        for line in mbox.split_inclusive('\n') {
            parser.line(line.as_bytes(), false, &mut |p| pieces.push(p));
        }
        if let Some((system, keywords)) = parser.finish() {
            pieces.push(Piece::End(system, keywords));
        }
        for piece in pieces {
            match piece {
                Piece::Start(date) => messages.push((date, 0, Vec::new(), String::new())),
                Piece::Bytes(b) => messages
                    .last_mut()
                    .expect("a message")
                    .3
                    .push_str(std::str::from_utf8(b).expect("utf8")),
                Piece::End(system, keywords) => {
                    let last = messages.last_mut().expect("a message");
                    (last.1, last.2) = (system, keywords);
                }
            }
        }
        messages
    }

    #[test]
    fn messages_flags_and_quoted_from_lines() {
        let mbox = "From MAILER-DAEMON Thu Dec  6 17:00:00 2026\n\
                    Subject: one\n\
                    Status: RO\n\
                    X-Status: AF\n\
                    X-Keywords: $Junk NonJunk\n\
                    \n\
                    >From the start\n\
                    >>From kept once\n\
                    \n\
                    From a@b.example Mon Jan  1 00:00:00 2024\n\
                    Subject: two\n\
                    \n\
                    body\n\
                    \n";
        let messages = parse(mbox);
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].0, Some(1_796_576_400));
        assert_eq!(
            messages[0].1,
            flags::SEEN | flags::ANSWERED | flags::FLAGGED
        );
        assert_eq!(messages[0].2, ["$Junk", "NonJunk"]);
        assert_eq!(
            messages[0].3,
            "Subject: one\n\nFrom the start\n>From kept once\n"
        );
        assert_eq!(messages[1].0, Some(1_704_067_200));
        assert_eq!(messages[1].1, 0);
        assert_eq!(messages[1].3, "Subject: two\n\nbody\n");
    }

    #[test]
    fn blank_lines_inside_a_body_stay_and_odd_from_lines_have_no_date() {
        let messages = parse("From someone\nA: b\n\none\n\n\ntwo\n");
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].0, None);
        assert_eq!(messages[0].3, "A: b\n\none\n\n\ntwo\n");
        assert!(parse("no mbox here\n").is_empty());
    }

    #[test]
    fn an_unescaped_from_line_without_a_date_stays_in_the_body() {
        let messages = parse(
            "From alice@vm  Sun Dec 06 19:56:21 2026\nSubject: first\nContent-Length: 26\n\n\
             From the garden\nwith love\n\nFrom alice@vm  Sun Dec 06 19:56:22 2026\n\
             Subject: second\n\nbody\n",
        );
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert_eq!(
            messages[0].3,
            "Subject: first\n\nFrom the garden\nwith love\n"
        );
        assert_eq!(messages[1].3, "Subject: second\n\nbody\n");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }
}
