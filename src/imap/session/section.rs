//! What FETCH sends for a body section besides the stored bytes themselves: the section's
//! name as the response repeats it, HEADER.FIELDS (.NOT) filtering, and NUL octets made safe
//! for an ordinary literal. Pure functions over bytes; `fetch` does the reading and sending.

use crate::imap::proto::encode;
use crate::imap::proto::{Section, SectionText};

/// The section as FETCH responses name it, e.g. `2.HEADER.FIELDS (From "X Y")`.
pub(super) fn section_name(section: &Section) -> String {
    let mut name = Vec::new();
    for (i, part) in section.part.iter().enumerate() {
        if i > 0 {
            name.push(b'.');
        }
        name.extend_from_slice(part.to_string().as_bytes());
    }
    let text: &[u8] = match &section.text {
        None => b"",
        Some(SectionText::Header) => b"HEADER",
        Some(SectionText::Text) => b"TEXT",
        Some(SectionText::Mime) => b"MIME",
        Some(SectionText::HeaderFields { not: true, .. }) => b"HEADER.FIELDS.NOT",
        Some(SectionText::HeaderFields { not: false, .. }) => b"HEADER.FIELDS",
    };
    if !text.is_empty() && !name.is_empty() {
        name.push(b'.');
    }
    name.extend_from_slice(text);
    if let Some(SectionText::HeaderFields { fields, .. }) = &section.text {
        name.extend_from_slice(b" (");
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                name.push(b' ');
            }
            encode::astring(&mut name, field);
        }
        name.push(b')');
    }
    String::from_utf8_lossy(&name).into_owned()
}

/// Keeps (or, with `not`, drops) the named fields of a header block; ends with the blank line.
/// Lines are found with `memchr`: this runs over every header of a mailbox when a client
/// lists it, and a byte-by-byte scan was most of that FETCH's CPU time.
pub(super) fn filter_header(block: &[u8], fields: &[String], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keep = false;
    let mut rest = block;
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let (line, next) = rest.split_at(end);
        rest = next;
        let trimmed = line.strip_suffix(b"\n").unwrap_or(line);
        let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
        if trimmed.is_empty() {
            break;
        }
        if !matches!(line[0], b' ' | b'\t') {
            let name = &line[..memchr::memchr(b':', line).unwrap_or(line.len())];
            let listed = fields
                .iter()
                .any(|f| f.as_bytes().eq_ignore_ascii_case(trim(name)));
            keep = listed != not;
        }
        if keep {
            out.extend_from_slice(trimmed);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Bytes for an ordinary `{n}` literal, which may not hold NUL (RFC 9051 §4.3). A message
/// APPENDed as literal8 (RFC 3516) may hold NUL octets, stored as sent: BINARY[] gives them
/// back in a `~{n}` literal, and BODY[] / RFC822 send each NUL as 0x80 (as Dovecot does).
/// Replacing octet for octet keeps every size and offset (RFC822.SIZE, partial fetches, the
/// `{n}` announced before streaming) true without a pass over the message first; re-encoding
/// such parts as base64 at APPEND would change the stored message and its sizes.
pub(super) fn without_nul(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if bytes.contains(&0) {
        let replaced = bytes.iter().map(|&b| if b == 0 { 0x80 } else { b });
        std::borrow::Cow::Owned(replaced.collect())
    } else {
        std::borrow::Cow::Borrowed(bytes)
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::{filter_header, section_name};
    use crate::imap::proto::{Section, SectionText};

    #[test]
    fn section_names_as_the_response_repeats_them() {
        let name = |part: Vec<u32>, text| section_name(&Section { part, text });
        assert_eq!(name(vec![], None), "");
        assert_eq!(name(vec![1, 2], None), "1.2");
        assert_eq!(name(vec![], Some(SectionText::Header)), "HEADER");
        assert_eq!(name(vec![3], Some(SectionText::Mime)), "3.MIME");
        let fields = vec!["From".to_string(), "X Y".to_string()];
        assert_eq!(
            name(
                vec![],
                Some(SectionText::HeaderFields {
                    not: false,
                    fields: fields.clone()
                })
            ),
            "HEADER.FIELDS (From \"X Y\")"
        );
        assert_eq!(
            name(
                vec![2],
                Some(SectionText::HeaderFields { not: true, fields })
            ),
            "2.HEADER.FIELDS.NOT (From \"X Y\")"
        );
    }

    #[test]
    fn header_fields_keep_continuations() {
        let block = b"From: a@b\r\nSubject: one\r\n two\r\nTo: c@d\r\n\r\n";
        let kept = filter_header(block, &["subject".into(), "FROM".into()], false);
        assert_eq!(kept, b"From: a@b\r\nSubject: one\r\n two\r\n\r\n");
        let dropped = filter_header(block, &["Subject".into()], true);
        assert_eq!(dropped, b"From: a@b\r\nTo: c@d\r\n\r\n");
    }
}
