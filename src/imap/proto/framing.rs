//! Framing (RFC 9051 §4.3): a command is a line, or lines joined by literals. The session
//! reads lines; this module says whether a line ends by announcing a literal, so the session
//! can check its size before reading (and before saying "+"), and keeps literal data from
//! ever being read as a command.

/// `{n}` (synchronizing: the client waits for "+") or `{n+}` (RFC 7888 LITERAL+: it does not),
/// each also as `~{n}` / `~{n+}`: a literal8 (RFC 3516 §4.4), whose data may hold NUL octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiteralMarker {
    pub length: u64,
    pub non_sync: bool,
    /// A literal8: the marker starts with `~`, one octet before its `{`.
    pub binary: bool,
}

/// The literal announced at the end of `line` (a line without its CRLF), if any.
pub fn literal_at_end(line: &[u8]) -> Option<LiteralMarker> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let binary = inner[..open].ends_with(b"~");
    let mut digits = &inner[open + 1..];
    let non_sync = match digits.strip_suffix(b"+") {
        Some(d) => {
            digits = d;
            true
        }
        None => false,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Too many digits for u64: announce "as large as can be", which is refused.
    let length = std::str::from_utf8(digits)
        .ok()?
        .parse()
        .unwrap_or(u64::MAX);
    Some(LiteralMarker {
        length,
        non_sync,
        binary,
    })
}

/// The tag at the start of a command, if it has a usable one (to answer BAD to it).
pub fn tag_of(command: &[u8]) -> Option<&str> {
    let end = command
        .iter()
        .position(|&b| b == b' ')
        .unwrap_or(command.len());
    let tag = std::str::from_utf8(&command[..end]).ok()?;
    let valid = !tag.is_empty()
        && tag.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b'+')
        });
    valid.then_some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        assert_eq!(
            literal_at_end(b"a LOGIN {5}"),
            Some(LiteralMarker {
                length: 5,
                non_sync: false,
                binary: false,
            })
        );
        assert_eq!(
            literal_at_end(b"a APPEND x {4000000000+}"),
            Some(LiteralMarker {
                length: 4_000_000_000,
                non_sync: true,
                binary: false,
            })
        );
        assert_eq!(
            literal_at_end(b"a APPEND x ~{12}"),
            Some(LiteralMarker {
                length: 12,
                non_sync: false,
                binary: true,
            })
        );
        assert_eq!(
            literal_at_end(b"a APPEND x (\\Seen) ~{7+}"),
            Some(LiteralMarker {
                length: 7,
                non_sync: true,
                binary: true,
            })
        );
        assert_eq!(literal_at_end(b"a APPEND x ~{}"), None);
        assert_eq!(literal_at_end(b"a APPEND x ~{1}2"), None);
        assert_eq!(literal_at_end(b"a LOGIN {}"), None);
        assert_eq!(literal_at_end(b"a LOGIN {x}"), None);
        assert_eq!(literal_at_end(b"a NOOP"), None);
        assert_eq!(
            literal_at_end(b"a X {99999999999999999999}").map(|m| m.length),
            Some(u64::MAX)
        );
        assert_eq!(tag_of(b"a1 NOOP"), Some("a1"));
        assert_eq!(tag_of(b"+ x"), None);
        assert_eq!(tag_of(b""), None);
    }
}
