//! APPEND's grammar around its message literals (RFC 9051 §6.3.12, RFC 3502 MULTIAPPEND,
//! RFC 6855 §4 UTF8): the session streams each message literal to disk, so it parses what
//! comes before each literal on its own instead of the whole command.

use super::command::{flag, mailbox};
use super::lexer::{Cursor, ParseError, Parsed};

/// What comes before one message literal of APPEND: its flags, date, and whether it is sent
/// as `UTF8 (~{n})` (RFC 6855 §4, after ENABLE UTF8=ACCEPT; then `)` follows the literal).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppendMessage {
    pub flags: Vec<String>,
    pub date: Option<i64>,
    pub utf8: bool,
}

/// The part of an APPEND command before its first message literal (RFC 9051 §6.3.12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendPrefix {
    pub tag: String,
    pub mailbox: String,
    pub message: AppendMessage,
}

/// Parses `tag APPEND mailbox [(flags)] [date-time] [UTF8 (]` — `prefix` is the command up to
/// the `{n}` (or `~{n}`) of the message literal. An error means the literal is not the message
/// (for example the mailbox name sent as a literal), or a syntax error that the full parse
/// will report.
pub fn parse_append_prefix(prefix: &[u8], utf8_names: bool) -> Parsed<AppendPrefix> {
    let mut c = Cursor::new(prefix).with_utf8_names(utf8_names);
    let tag = String::from_utf8_lossy(c.tag()?).into_owned();
    c.sp()?;
    if !c.keyword("APPEND") {
        return Err(ParseError("not APPEND"));
    }
    c.sp()?;
    let mailbox = mailbox(&mut c)?;
    c.sp()?;
    let message = append_message(&mut c)?;
    Ok(AppendPrefix {
        tag,
        mailbox,
        message,
    })
}

/// MULTIAPPEND (RFC 3502): after a message literal, the rest of the command is empty (the
/// end) or ` [(flags)] [date-time] [UTF8 (]` up to the next message's literal marker. Returns
/// `None` for the end.
pub fn parse_append_next(prefix: &[u8]) -> Parsed<Option<AppendMessage>> {
    if prefix.is_empty() {
        return Ok(None);
    }
    let mut c = Cursor::new(prefix);
    c.sp()?;
    append_message(&mut c).map(Some)
}

fn append_message(c: &mut Cursor<'_>) -> Parsed<AppendMessage> {
    let mut message = AppendMessage::default();
    if c.peek() == Some(b'(') {
        message.flags = c.list(flag)?;
        c.sp()?;
    }
    if c.peek() == Some(b'"') {
        message.date = Some(c.date_time()?);
        c.sp()?;
    }
    if c.keyword("UTF8") {
        c.sp()?;
        c.expect(b'(', "expected ( after UTF8")?;
        message.utf8 = true;
    }
    c.end()?;
    Ok(message)
}

/// Whether a command being framed is APPEND (then its literals need a closer look).
pub fn is_append(command: &[u8]) -> bool {
    let mut c = Cursor::new(command);
    c.tag().is_ok() && c.sp().is_ok() && c.keyword("APPEND")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_prefix() {
        let prefix = parse_append_prefix(
            b"a1 APPEND Drafts (\\Draft \\Seen) \"05-Mar-2024 10:00:00 +0100\" ",
            false,
        )
        .unwrap();
        assert_eq!(prefix.mailbox, "Drafts");
        assert_eq!(prefix.message.flags, ["\\Draft", "\\Seen"]);
        assert_eq!(prefix.message.date, Some(1_709_629_200));
        assert!(!prefix.message.utf8);
        let utf8 = parse_append_prefix(b"a1 APPEND INBOX UTF8 (", false).unwrap();
        assert!(utf8.message.utf8 && utf8.message.flags.is_empty());
        // MULTIAPPEND: what follows a message literal.
        assert_eq!(parse_append_next(b""), Ok(None));
        let next = parse_append_next(b" (\\Seen) ").unwrap().unwrap();
        assert_eq!(next.flags, ["\\Seen"]);
        assert_eq!(
            parse_append_next(b" ").unwrap(),
            Some(AppendMessage::default())
        );
        assert!(parse_append_next(b" UTF8 (").unwrap().unwrap().utf8);
        assert!(parse_append_next(b"x").is_err());
        assert!(parse_append_next(b" (\\Seen)").is_err());
        assert!(
            parse_append_prefix(b"a1 APPEND ", false).is_err(),
            "the mailbox literal comes first"
        );
        assert!(is_append(b"a1 append "));
        assert!(!is_append(b"a1 APPENDX "));
    }
}
