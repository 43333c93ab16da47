//! Response encoding (RFC 9051 §7): strings as quoted or literal, flags, dates.

use super::lexer::{MONTHS, civil_from_days};

/// A string as IMAP sends it: quoted when it can be, else a literal.
pub fn string(out: &mut Vec<u8>, value: &[u8]) {
    let quotable = value.len() < 1024
        && value
            .iter()
            .all(|&b| b != b'\r' && b != b'\n' && b != 0 && b < 0x80);
    if quotable {
        quoted(out, value);
    } else {
        out.extend_from_slice(format!("{{{}}}\r\n", value.len()).as_bytes());
        out.extend_from_slice(value);
    }
}

/// `"value"` with `"` and `\` escaped; the caller has checked that it may be quoted.
fn quoted(out: &mut Vec<u8>, value: &[u8]) {
    out.push(b'"');
    for &b in value {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// NIL or a string.
pub fn nstring(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(value) => string(out, value),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// An astring: an atom when the value is one, else a string.
pub fn astring(out: &mut Vec<u8>, value: &str) {
    let atom = !value.is_empty()
        && value
            .bytes()
            .all(|b| super::lexer::is_atom_char(b) && b < 0x80 || b == b']')
        && !value.eq_ignore_ascii_case("NIL");
    if atom {
        out.extend_from_slice(value.as_bytes());
    } else {
        string(out, value.as_bytes());
    }
}

/// A mailbox name as sent to a client: modified UTF-7 as an astring, or in UTF-8 mode
/// (RFC 6855 §3, RFC 9051 §5.1) UTF-8 in a quoted string, which both allow.
pub fn mailbox(out: &mut Vec<u8>, name: &str, utf8: bool) {
    if utf8 && !name.is_ascii() && !name.chars().any(char::is_control) {
        quoted(out, name.as_bytes());
    } else {
        astring(out, &super::mailbox_name::to_wire(name, utf8));
    }
}

/// INTERNALDATE: `"17-Jul-1996 02:44:25 +0000"` (always UTC).
pub fn date_time(unix: i64) -> String {
    let days = unix.div_euclid(86400);
    let seconds = unix.rem_euclid(86400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "\"{day:02}-{}-{year:04} {:02}:{:02}:{:02} +0000\"",
        MONTHS[(month - 1) as usize],
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        let mut out = Vec::new();
        string(&mut out, b"a \"q\"");
        assert_eq!(out, b"\"a \\\"q\\\"\"");
        out.clear();
        string(&mut out, "é".as_bytes());
        assert_eq!(out, b"{2}\r\n\xc3\xa9");
        out.clear();
        astring(&mut out, "Sent");
        astring(&mut out, "My Mail");
        assert_eq!(out, b"Sent\"My Mail\"");
        out.clear();
        mailbox(&mut out, "Entwürfe", false);
        mailbox(&mut out, " ", false);
        mailbox(&mut out, "Entwürfe", true);
        assert_eq!(out, "Entw&APw-rfe\" \"\"Entwürfe\"".as_bytes());
        assert_eq!(date_time(0), "\"01-Jan-1970 00:00:00 +0000\"");
        assert_eq!(date_time(1_700_000_000), "\"14-Nov-2023 22:13:20 +0000\"");
    }
}
