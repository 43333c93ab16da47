use super::*;

/// A multipart with text, an embedded message and an attachment (also used by the IMAP
/// BODYSTRUCTURE tests).
pub(crate) const MULTIPART: &str = "From: Alice Example <alice@home.test>\r\n\
To: bob@home.test, \"Carol\" <carol@home.test>\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\
Date: Tue, 02 Jan 2024 10:00:00 +0000\r\n\
Message-ID: <m1@home.test>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\
\r\n\
preamble\r\n\
--XYZ\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello\r\n\
world\r\n\
--XYZ\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: inner\r\n\
From: x@y.test\r\n\
\r\n\
inner body\r\n\
--XYZ\r\n\
Content-Type: application/pdf; name=a.pdf\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=a.pdf\r\n\
\r\n\
QUJD\r\n\
--XYZ--\r\n\
epilogue\r\n";

fn range(message: &str, path: &[u32]) -> String {
    let root = structure_of(message.as_bytes());
    let resolved = root.resolve(path).unwrap();
    message[resolved.part.body_start as usize..resolved.part.end as usize].to_string()
}

#[test]
fn multipart_structure_and_ranges() {
    assert_eq!(range(MULTIPART, &[1]), "Hello\r\nworld");
    assert_eq!(
        range(MULTIPART, &[2]),
        "Subject: inner\r\nFrom: x@y.test\r\n\r\ninner body"
    );
    assert_eq!(range(MULTIPART, &[2, 1]), "inner body");
    assert_eq!(range(MULTIPART, &[3]), "QUJD");
    let root = structure_of(MULTIPART.as_bytes());
    assert!(root.resolve(&[4]).is_none());
    assert!(root.resolve(&[1, 1]).is_none());
    let inner = root.resolve(&[2]).unwrap();
    let message = inner.as_message().unwrap();
    assert_eq!(
        &MULTIPART[message.header_start as usize..message.body_start as usize],
        "Subject: inner\r\nFrom: x@y.test\r\n\r\n"
    );
}

#[test]
fn envelope_and_search_fields() {
    let root = structure_of(MULTIPART.as_bytes());
    let envelope = String::from_utf8(root.envelope.clone().unwrap()).unwrap();
    assert_eq!(
        envelope,
        "(\"Tue, 02 Jan 2024 10:00:00 +0000\" \"=?utf-8?q?Gr=C3=BC=C3=9Fe?=\" \
((\"Alice Example\" NIL \"alice\" \"home.test\")) ((\"Alice Example\" NIL \"alice\" \"home.test\")) \
((\"Alice Example\" NIL \"alice\" \"home.test\")) ((NIL NIL \"bob\" \"home.test\")\
(\"Carol\" NIL \"carol\" \"home.test\")) NIL NIL NIL \"<m1@home.test>\")"
    );
    let search = root.search.unwrap();
    assert_eq!(search.subject, "grüße");
    assert!(search.from.contains("alice@home.test"));
    assert_eq!(search.sent, Some(1_704_189_600));
}

#[test]
fn chunking_does_not_change_the_result() {
    let whole = structure_of(MULTIPART.as_bytes());
    for size in [1, 2, 3, 7, 64] {
        let mut scanner = Scanner::new();
        for chunk in MULTIPART.as_bytes().chunks(size) {
            scanner.feed(chunk);
        }
        assert_eq!(scanner.finish(), whole, "chunk size {size}");
    }
}

#[test]
fn simple_and_degenerate_messages() {
    let simple = structure_of(b"Subject: x\r\n\r\nline\r\nline2");
    assert_eq!(
        (simple.ctype.as_str(), simple.subtype.as_str()),
        ("text", "plain")
    );
    assert_eq!((simple.size(), simple.lines), (11, 2));
    assert_eq!(range("Subject: x\n\nbody\n", &[1]), "body\n");
    // No blank line at all, and an empty message.
    assert_eq!(structure_of(b"Subject: only headers\r\n").size(), 0);
    assert_eq!(structure_of(b"").size(), 0);
    // A multipart whose boundary never appears: one opaque part.
    let opaque =
        structure_of(b"Content-Type: multipart/mixed; boundary=b\r\n\r\nno parts here\r\n");
    assert!(opaque.is_multipart() && opaque.children.is_empty());
}

#[test]
fn deep_nesting_is_bounded() {
    let mut message = String::new();
    for i in 0..100 {
        message.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
        ));
    }
    message.push_str("\r\ntext\r\n");
    let root = structure_of(message.as_bytes());
    let mut depth = 0;
    let mut node = &root;
    while let Some(child) = node.children.first() {
        node = child;
        depth += 1;
    }
    assert!(depth <= crate::limits::MIME_MAX_DEPTH, "{depth}");
}

/// The ENVELOPE address list of `field` in a message with that header.
fn envelope_addresses(header: &str) -> String {
    let message = format!("{header}\r\n\r\nbody\r\n");
    let envelope = structure_of(message.as_bytes()).envelope.unwrap();
    String::from_utf8(envelope).unwrap()
}

#[test]
fn envelope_source_routes_go_in_adl() {
    // RFC 3501 §7.4.2: an address is (name adl mailbox host); a source route is the adl.
    let table = [
        (
            "To: <@relay.test:user@home.test>",
            "((NIL \"@relay.test\" \"user\" \"home.test\"))",
        ),
        (
            "To: Bob <@a.test,@b.test:bob@home.test>",
            "((\"Bob\" \"@a.test,@b.test\" \"bob\" \"home.test\"))",
        ),
        ("To: plain@home.test", "((NIL NIL \"plain\" \"home.test\"))"),
    ];
    for (header, expected) in table {
        let envelope = envelope_addresses(header);
        assert!(envelope.contains(expected), "{header}: {envelope}");
    }
}

/// The display names of an ENVELOPE address list, with its RFC 2047 words decoded, checking
/// that each word is at most 75 characters (RFC 2047 §2).
fn envelope_names(envelope: &str) -> Vec<String> {
    use base64::Engine;
    let mut names = Vec::new();
    // Each address with a name starts `("name"`.
    for quoted in envelope.split("(\"").skip(1) {
        let name = quoted.split('"').next().unwrap();
        let mut decoded = Vec::new();
        for word in name.split(' ') {
            assert!(word.len() <= 75, "{word}");
            let payload = word
                .strip_prefix("=?utf-8?b?")
                .and_then(|w| w.strip_suffix("?="))
                .expect(word);
            decoded.extend(
                base64::engine::general_purpose::STANDARD
                    .decode(payload)
                    .unwrap(),
            );
        }
        names.push(String::from_utf8(decoded).unwrap());
    }
    names
}

#[test]
fn latin1_display_names_and_subject_are_read_as_windows_1252() {
    let message = b"From: J\xfcrgen M\xfcller <j@home.test>\r\n\
To: \"Gr\xe4fin, Anna\" <anna@home.test>,\r\n \xc9mile <emile@home.test>\r\n\
Subject: Caf\xe9 \x80 5\r\n\r\nbody\r\n";
    let structure = structure_of(message);
    let envelope = String::from_utf8(structure.envelope.unwrap()).unwrap();
    // From, and Sender and Reply-To that default to it; then the two of To.
    assert_eq!(
        envelope_names(&envelope),
        [
            "Jürgen Müller",
            "Jürgen Müller",
            "Jürgen Müller",
            "Gräfin, Anna",
            "Émile"
        ],
        "{envelope}"
    );
    assert!(envelope.contains("\"anna\" \"home.test\""), "{envelope}");
    let search = structure.search.unwrap();
    assert!(search.from.contains("jürgen müller"), "{:?}", search.from);
    assert!(search.to.contains("émile"), "{:?}", search.to);
    assert_eq!(search.subject, "café € 5");
}

#[test]
fn a_long_non_ascii_display_name_is_cut_into_words_of_75_characters() {
    let name = "Überweisungsbestätigung der Genossenschaftsbank Süd für März und April";
    let envelope = envelope_addresses(&format!("From: {name} <bank@home.test>"));
    assert_eq!(envelope_names(&envelope)[0], name, "{envelope}");
}

#[test]
fn search_fields_keep_group_names() {
    let table = [
        ("To: undisclosed-recipients:;", "undisclosed-recipients"),
        ("To: Friends: a@home.test, c@home.test;", "friends"),
        ("Cc: Friends: a@home.test;, d@home.test", "d@home.test"),
    ];
    for (header, expected) in table {
        let message = format!("{header}\r\n\r\nbody\r\n");
        let search = structure_of(message.as_bytes()).search.unwrap();
        let text = format!("{} {}", search.to, search.cc);
        assert!(text.contains(expected), "{header}: {text:?}");
    }
}

#[test]
fn header_fields_and_sent_day() {
    let block = b"Subject: one\r\nX-Tag: a\r\n b\r\nx-tag:c\r\nX-Tagged: no\r\nX-Empty:\r\n\r\n";
    assert_eq!(
        field_values(block, "x-tag"),
        [&b" a\r\n b\r\n"[..], b"c\r\n"]
    );
    assert_eq!(field_values(block, "X-EMPTY"), [&b"\r\n"[..]]);
    assert!(field_values(block, "to").is_empty());
    // 2024-01-02 is day 19724. The date as written, whatever its zone.
    let table: [(&[u8], Option<i64>); 5] = [
        (b"Date: Tue, 02 Jan 2024 10:00:00 +0000\r\n", Some(19_724)),
        (b"Date: Tue, 02 Jan 2024 23:30:00 -0800\r\n", Some(19_724)),
        (b"Date: Tue, 02 Jan 2024 00:30:00 +0900\r\n", Some(19_724)),
        (
            b"Date:\r\n Tue, 2 Jan 2024 01:00:00 +1400\r\n",
            Some(19_724),
        ),
        (b"Date: someday\r\n", None),
    ];
    for (block, expected) in table {
        assert_eq!(
            sent_day(block),
            expected,
            "{}",
            String::from_utf8_lossy(block)
        );
    }
    assert_eq!(sent_day(b"Subject: no date\r\n"), None);
}

/// Found by the imap_command fuzz target: a message/rfc822 part whose body is empty (the
/// delimiter follows its blank line at once) held a message whose body started before its
/// header, at the delimiter's CRLF.
#[test]
fn an_empty_message_rfc822_part_holds_an_empty_message_inside_its_own_range() {
    let message = b"From: a@b\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n\
        --x\r\nContent-Type: message/rfc822\r\n\r\n--x\r\nConte\n--x--\r\n";
    let root = structure_of(message);
    fn check(part: &Part, size: u64) {
        assert!(part.header_start <= part.body_start, "{part:?}");
        assert!(part.body_start <= part.end, "{part:?}");
        assert!(part.end <= size, "{part:?}");
        part.children.iter().for_each(|child| check(child, size));
    }
    check(&root, message.len() as u64);
    let inner = &root.children[0];
    assert!(inner.is_message_part());
    assert_eq!(inner.body_start, inner.end, "an empty body");
    let embedded = &inner.children[0];
    assert_eq!(
        (embedded.header_start, embedded.body_start, embedded.end),
        (inner.body_start, inner.body_start, inner.body_start)
    );
}
