use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::mime::structure_of;

/// A leaf part with these fields, for `PartText`.
fn part(subtype: &str, charset: Option<&str>, encoding: &str) -> Part {
    Part {
        ctype: "text".into(),
        subtype: subtype.into(),
        params: charset
            .map(|c| vec![("charset".to_string(), c.to_string())])
            .unwrap_or_default(),
        encoding: encoding.into(),
        ..Part::default()
    }
}

fn decode_part(part: &Part, pieces: &[&[u8]]) -> String {
    let mut decoder = PartText::new(part);
    let mut out = String::new();
    for piece in pieces {
        decoder.feed(piece, &mut out);
    }
    decoder.finish(&mut out);
    out
}

/// Decodes whole, split in two at every offset, and octet by octet: where the store's
/// chunks fall must not change the text.
fn decode_split(part: &Part, input: &[u8]) -> String {
    let whole = decode_part(part, &[input]);
    for at in 0..=input.len() {
        let (a, b) = input.split_at(at);
        assert_eq!(decode_part(part, &[a, b]), whole, "split at {at}");
    }
    let octets: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(decode_part(part, &octets), whole, "octet by octet");
    whole
}

#[test]
fn transfer_encodings_and_charsets() {
    let base64_utf8 = STANDARD.encode("Viele Grüße, café ☕".as_bytes());
    let table: Vec<(Part, Vec<u8>, &str)> = vec![
        (
            part("plain", Some("iso-8859-1"), "8bit"),
            b"Gr\xfc\xdfe aus K\xf6ln, caf\xe9".to_vec(),
            "Grüße aus Köln, café",
        ),
        (
            part("plain", Some("windows-1252"), "quoted-printable"),
            b"Gr=FC=DFe =80 10, caf=E9=\r\n cr=E8me".to_vec(),
            "Grüße € 10, café crème",
        ),
        (
            part("plain", Some("utf-8"), "base64"),
            base64_utf8.into_bytes(),
            "Viele Grüße, café ☕",
        ),
        (
            part("plain", Some("ISO-8859-2"), "8bit"),
            b"\xa3\xf3d\xbc".to_vec(),
            "Łódź",
        ),
        (
            part("plain", Some("windows-1251"), "8bit"),
            b"\xcf\xf0\xe8\xe2\xe5\xf2".to_vec(),
            "Привет",
        ),
        (
            part("plain", Some("iso-8859-15"), "quoted-printable"),
            b"=A4 5".to_vec(),
            "€ 5",
        ),
        // Labelled us-ascii (or not labelled), sent as UTF-8: read as UTF-8.
        (
            part("plain", Some("us-ascii"), "8bit"),
            "café".as_bytes().to_vec(),
            "café",
        ),
        (
            part("plain", None, "8bit"),
            "café".as_bytes().to_vec(),
            "café",
        ),
        (
            part("plain", Some("x-no-such-charset"), "8bit"),
            b"caf\xc3\xa9 \xff".to_vec(),
            "café \u{fffd}",
        ),
        // An encoding this server does not decode is read as it is.
        (
            part("plain", Some("utf-8"), "x-uuencode"),
            b"plain words".to_vec(),
            "plain words",
        ),
        (
            part("html", Some("windows-1252"), "quoted-printable"),
            b"<html><style>p{}</style><p class=3D\"x\">Gr=FC=DFe</p>=\r\n<b>caf&eacute;</b></html>"
                .to_vec(),
            "Grüßecafé",
        ),
    ];
    for (part, input, expected) in table {
        assert_eq!(
            decode_split(&part, &input),
            expected,
            "{} {:?} {}",
            part.subtype,
            part.params,
            part.encoding
        );
    }
}

#[test]
fn finder_across_pieces() {
    let table: [(&str, &[&str], bool); 12] = [
        ("Hello", &["xxhe", "LLo world"], true),
        ("liebe grüße", &["Liebe\r\n", "  Grüße"], true),
        ("liebe  grüße", &["Liebe\tGrüße"], true),
        ("hello world", &["hello", "world"], false),
        ("a b", &["a\u{a0}b"], true),
        ("grüße", &["Viele GR", "Ü", "SSE"], false),
        ("grüße", &["Viele GRÜ", "ßE!"], true),
        ("CAFÉ", &["un caf", "é noir"], true),
        ("café", &["un cafe"], false),
        ("", &[], true),
        ("ab", &["a", PART_END, "b"], false),
        ("löwe", &["l", "ö", "w", "e"], true),
    ];
    for (needle, pieces, expected) in table {
        let mut finder = Finder::new(needle);
        for piece in pieces {
            finder.feed(piece);
        }
        assert_eq!(finder.found(), expected, "{needle:?} in {pieces:?}");
    }
}

/// A family's message: an HTML part in windows-1252 quoted-printable, a base64 UTF-8 text
/// part, an ISO-8859-1 part, a forwarded message, and an image whose base64 content spells
/// words that must not be found.
fn family_message() -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(
        b"From: Oma <oma@home.test>\r\n\
To: Kinder: anna@home.test, ben@home.test;\r\n\
Subject: =?iso-8859-1?q?Gr=FC=DFe_aus_K=F6ln?=\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/html; charset=windows-1252\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
<p>Liebe Gr=FC=DFe vom <b>Rhein</b>, euer caf=E9 wartet</p>\r\n\
--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n",
    );
    m.extend_from_slice(STANDARD.encode("Бабушка печёт пирог".as_bytes()).as_bytes());
    m.extend_from_slice(
        b"\r\n--b1\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Sch\xf6ne Tr\xe4ume\r\n\
--b1\r\n\
Content-Type: image/png\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n",
    );
    m.extend_from_slice(STANDARD.encode(b"hidden pixelword").as_bytes());
    m.extend_from_slice(b" rawimageword\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\n");
    m.extend_from_slice(
        b"Subject: =?utf-8?b?UmV6ZXB0OiBLw6RzZWt1Y2hlbg==?=\r\n\
From: tante@home.test\r\n\
\r\n\
Zutaten: Quark und Zucker\r\n\
--b1--\r\n",
    );
    m
}

/// The message's (header text, body text), read in chunks of `chunk` octets the way the
/// session reads the store: skipping whole chunks that hold nothing wanted.
fn read_text(message: &[u8], chunk: usize) -> (String, String) {
    let root = structure_of(message);
    let mut text = MessageText::new(&root);
    let mut header = String::new();
    let mut body = String::new();
    let mut sink = |source: Source, piece: &str| match source {
        Source::Header => header.push_str(piece),
        Source::Body => body.push_str(piece),
    };
    let mut index = 0;
    while let Some(wanted) = text.wanted() {
        index = index.max(wanted as usize / chunk);
        let Some(data) = message.chunks(chunk).nth(index) else {
            break;
        };
        text.feed((index * chunk) as u64, data, &mut sink);
        index += 1;
    }
    text.finish(&mut sink);
    (header, body)
}

/// All the text of a message fed in `pieces`, header and body in the order it comes.
fn all_text(root: &Part, pieces: &[&[u8]]) -> String {
    let mut text = MessageText::new(root);
    let mut out = String::new();
    let mut offset = 0;
    for piece in pieces {
        text.feed(offset, piece, &mut |_, t| out.push_str(t));
        offset += piece.len() as u64;
    }
    text.finish(&mut |_, t| out.push_str(t));
    out
}

#[test]
fn message_text_of_every_text_part() {
    let message = family_message();
    let (header, body) = read_text(&message, 64 * 1024);
    for words in [
        "Liebe Grüße vom Rhein, euer café wartet",
        "Бабушка печёт пирог",
        "Schöne Träume",
        // The forwarded message: its header (decoded subject too) and its body.
        "From: tante@home.test",
        "rezept: käsekuchen",
        "Zutaten: Quark und Zucker",
    ] {
        assert!(body.contains(words), "{words:?} not in {body:?}");
    }
    for hidden in ["pixelword", "rawimageword", "<b>", "Oma"] {
        assert!(!body.contains(hidden), "{hidden:?} in {body:?}");
    }
    assert!(header.contains("To: Kinder: anna@home.test"), "{header:?}");
    assert!(header.contains("grüße aus köln"), "{header:?}");
    assert!(!header.contains("Zutaten"), "{header:?}");
    let root = structure_of(&message);
    let whole = all_text(&root, &[&message]);
    for at in 0..=message.len() {
        let (a, b) = message.split_at(at);
        assert_eq!(all_text(&root, &[a, b]), whole, "split at {at}");
    }
    for chunk in [1, 2, 3, 7, 64, 100, 333] {
        assert_eq!(
            read_text(&message, chunk),
            (header.clone(), body.clone()),
            "chunk {chunk}"
        );
    }
}

#[test]
fn message_text_skips_attachments_and_stops_early() {
    let mut message = b"Subject: photo\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
--b\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    let image_start = message.len();
    message.extend(std::iter::repeat_n(b'A', 10_000));
    message.extend_from_slice(b"\r\n--b--\r\n");
    let root = structure_of(&message);
    let mut text = MessageText::new(&root);
    let mut body = String::new();
    let mut sink = |source: Source, piece: &str| {
        if source == Source::Body {
            body.push_str(piece)
        }
    };
    text.feed(0, &message[..image_start], &mut sink);
    // Nothing after the text part is wanted: the image is never read.
    assert_eq!(text.wanted(), None);
    text.finish(&mut sink);
    assert_eq!(body, "see attached\0");
}

#[test]
fn message_text_of_a_truncated_body() {
    let message = b"Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\nbody text here";
    let root = structure_of(message);
    let mut text = MessageText::new(&root);
    let mut all = String::new();
    let mut sink = |_: Source, piece: &str| all.push_str(piece);
    // The body stops short of what the structure says; finish still ends every part.
    text.feed(0, &message[..40], &mut sink);
    text.finish(&mut sink);
    assert!(all.contains("café"), "{all:?}");
    assert!(all.ends_with("body t\0"), "{all:?}");
}
