//! BODY and BODYSTRUCTURE (RFC 9051 §7.5.2): the MIME tree stored with a message, written in
//! IMAP syntax. The tree is `mime`'s; only its IMAP form lives here.

use super::encode;
use crate::mime::Part;

/// BODYSTRUCTURE (`extended`) or BODY of `part`.
pub fn write(out: &mut Vec<u8>, part: &Part, extended: bool) {
    out.push(b'(');
    if part.is_multipart() && !part.children.is_empty() {
        for child in &part.children {
            write(out, child, extended);
        }
        out.push(b' ');
        encode::string(out, part.subtype.as_bytes());
        if extended {
            out.push(b' ');
            params(out, &part.params);
            extension(out, part);
        }
    } else {
        let (ctype, subtype) = if part.is_multipart() {
            // A multipart without parts (no boundary found): show what it is, a blob.
            ("application", "octet-stream")
        } else {
            (part.ctype.as_str(), part.subtype.as_str())
        };
        encode::string(out, ctype.as_bytes());
        out.push(b' ');
        encode::string(out, subtype.as_bytes());
        out.push(b' ');
        params(out, &part.params);
        out.push(b' ');
        encode::nstring(out, part.id.as_deref().map(str::as_bytes));
        out.push(b' ');
        encode::nstring(out, part.description.as_deref().map(str::as_bytes));
        out.push(b' ');
        encode::string(out, part.encoding.as_bytes());
        out.extend_from_slice(format!(" {}", part.size()).as_bytes());
        if part.is_message_part() {
            let inner = &part.children[0];
            out.push(b' ');
            match &inner.envelope {
                Some(envelope) => out.extend_from_slice(envelope),
                None => out.extend_from_slice(b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
            }
            out.push(b' ');
            write(out, inner, extended);
            out.extend_from_slice(format!(" {}", part.lines).as_bytes());
        } else if ctype == "text" {
            out.extend_from_slice(format!(" {}", part.lines).as_bytes());
        }
        if extended {
            out.push(b' ');
            encode::nstring(out, part.md5.as_deref().map(str::as_bytes));
            extension(out, part);
        }
    }
    out.push(b')');
}

/// body-fld-dsp body-fld-lang body-fld-loc.
fn extension(out: &mut Vec<u8>, part: &Part) {
    out.push(b' ');
    match &part.disposition {
        Some((kind, parameters)) => {
            out.push(b'(');
            encode::string(out, kind.as_bytes());
            out.push(b' ');
            params(out, parameters);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    match &part.language {
        Some(languages) if !languages.is_empty() => {
            out.push(b'(');
            for (i, language) in languages.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                encode::string(out, language.as_bytes());
            }
            out.push(b')');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    encode::nstring(out, part.location.as_deref().map(str::as_bytes));
}

fn params(out: &mut Vec<u8>, params: &[(String, String)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        encode::string(out, name.as_bytes());
        out.push(b' ');
        encode::string(out, value.as_bytes());
    }
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::structure_of;
    use crate::mime::tests::MULTIPART;

    fn structure(text: &str, extended: bool) -> String {
        let mut out = Vec::new();
        write(&mut out, &structure_of(text.as_bytes()), extended);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn multipart_body_and_bodystructure() {
        assert_eq!(
            structure(MULTIPART, false),
            "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 12 2)\
(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 44 (NIL \"inner\" ((NIL NIL \"x\" \"y.test\")) \
((NIL NIL \"x\" \"y.test\")) ((NIL NIL \"x\" \"y.test\")) NIL NIL NIL NIL NIL) \
(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 1) 4)\
(\"application\" \"pdf\" (\"name\" \"a.pdf\") NIL NIL \"base64\" 4) \"mixed\")"
        );
        let extended = structure(MULTIPART, true);
        assert!(
            extended.contains("(\"attachment\" (\"filename\" \"a.pdf\"))"),
            "{extended}"
        );
        assert!(
            extended.ends_with("\"mixed\" (\"boundary\" \"XYZ\") NIL NIL NIL)"),
            "{extended}"
        );
    }

    #[test]
    fn simple_and_degenerate_messages() {
        assert_eq!(
            structure("Subject: x\r\n\r\nline\r\nline2", false),
            "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 2)"
        );
        // A multipart whose boundary never appears: one opaque part.
        let s = structure(
            "Content-Type: multipart/mixed; boundary=b\r\n\r\nno parts here\r\n",
            false,
        );
        assert!(s.starts_with("(\"application\" \"octet-stream\""), "{s}");
    }
}
