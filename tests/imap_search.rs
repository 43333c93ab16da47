//! SEARCH against Python's imaplib: BODY/TEXT find words in decoded text (quoted-printable,
//! base64, legacy charsets, HTML, forwarded messages) and not inside images; SENT* use the
//! Date: header's own date; an empty string asks for a field's presence; group names are
//! searchable; ENVELOPE puts a source route in the adl.

mod common;

use common::Server;
use common::imap::script;

/// APPENDs the test messages to INBOX (sequence numbers 1, 2, ... in this order).
const PY_MESSAGES: &str = r#"
import base64
def crlf(text):
    return text.replace("\n", "\r\n")
MESSAGES = [
    # 1: HTML, windows-1252, quoted-printable; subject in an encoded word.
    crlf("""From: Oma <oma@home.test>
To: alice@home.test
Subject: =?iso-8859-1?q?Post_aus_K=F6ln?=
Date: Tue, 02 Jan 2024 10:00:00 +0100
Content-Type: text/html; charset=windows-1252
Content-Transfer-Encoding: quoted-printable

<html><style>p { font-family: Verdana }</style><p>Liebe Gr=FC=DFe vom <b>Rhein</b>,=
 euer caf=E9 wartet =80 5</p></html>
""").encode("ascii"),
    # 2: base64 UTF-8 text and an image whose content spells words.
    crlf("""From: ben@home.test
To: alice@home.test
Subject: photo
Date: Tue, 02 Jan 2024 10:00:00 +0000
Content-Type: multipart/mixed; boundary="b2"

--b2
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

""" + base64.encodebytes("Привет! Das Foto vom naïve Picknick.".encode()).decode() + """--b2
Content-Type: image/png
Content-Transfer-Encoding: base64

""" + base64.encodebytes(b"pixelsecret " * 20).decode() + """--b2--
""").encode("ascii"),
    # 3: ISO-8859-1 8bit, and a forwarded message.
    crlf("""From: anna@home.test
To: alice@home.test
Subject: forwarded
Date: Tue, 02 Jan 2024 10:00:00 +0000
Content-Type: multipart/mixed; boundary="b3"

--b3
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: 8bit

Sch\xf6ne Tr\xe4ume
--b3
Content-Type: message/rfc822

From: tante@home.test
Subject: =?utf-8?b?UmV6ZXB0OiBLw6RzZWt1Y2hlbg==?=

Zutaten: Quark und Zucker
--b3--
""").encode("latin-1"),
]
def append_all(m):
    for message in MESSAGES:
        ok(m.append("INBOX", None, None, message))
def search(m, *criteria, literal=None):
    """The sequence numbers SEARCH finds; a non-ASCII word goes as a UTF-8 literal."""
    if literal is not None:
        m.literal = literal.encode("utf-8")
        data = ok(m.search("UTF-8", *criteria))
    else:
        data = ok(m.search(None, *criteria))
    return [int(n) for n in data[0].split()]
"#;

fn run(body: &str) -> String {
    let server = Server::start();
    server.add_user("alice@home.test");
    server.python_ok(&script(&format!("{PY_MESSAGES}\n{body}")), &[])
}

#[test]
fn body_and_text_search_decoded_text() {
    let out = run(r#"
m = imap_login()
append_all(m)
ok(m.select("INBOX"))
cases = [
    # (key, needle, found in): non-ASCII needles go as UTF-8 literals.
    ("BODY", "Grüße", [1]),
    ("BODY", "GRÜßE VOM RHEIN", [1]),
    ("BODY", "café", [1]),
    ("BODY", "€ 5", [1]),
    ("BODY", "Привет", [2]),
    ("BODY", "naïve", [2]),
    ("BODY", "Schöne Träume", [3]),
    ("BODY", "Käsekuchen", [3]),
    ("BODY", "Zutaten: Quark", [3]),
    ("TEXT", "Köln", [1]),
    ("TEXT", "caf", [1]),
]
for key, needle, expected in cases:
    found = search(m, key, literal=needle) if not needle.isascii() else search(m, key, '"%s"' % needle)
    assert found == expected, (key, needle, found, expected)
# Markup and style are not text; the image's content is not text, encoded or decoded.
image_base64 = base64.encodebytes(b"pixelsecret " * 20).decode().split()[0][:16]
for needle in ["<b>", "font-family", "pixelsecret", image_base64, "=FC"]:
    assert search(m, "BODY", '"%s"' % needle) == [], needle
    assert search(m, "TEXT", '"%s"' % needle) == [], needle
# The message's own header is TEXT, not BODY; a forwarded message's header is body.
assert search(m, "BODY", "oma@home.test") == []
assert search(m, "TEXT", "oma@home.test") == [1]
assert search(m, "BODY", "tante@home.test") == [3]
assert search(m, "OR", "BODY", "Rhein", "BODY", "Picknick") == [1, 2]
assert search(m, "NOT", "BODY", "Rhein") == [2, 3]
m.logout()
print("searched")
"#);
    assert!(out.contains("searched"), "{out}");
}

#[test]
fn sent_dates_are_the_dates_as_written() {
    let out = run(r#"
m = imap_login()
for date in ["Tue, 02 Jan 2024 23:30:00 -0800", "Tue, 02 Jan 2024 00:30:00 +0900"]:
    message = crlf(f"From: a@home.test\nSubject: late\nDate: {date}\n\nbody\n").encode()
    ok(m.append("INBOX", None, None, message))
ok(m.select("INBOX"))
# In UTC these are 3 January and 1 January; as written, both are 2 January.
assert search(m, "SENTON", "2-Jan-2024") == [1, 2]
assert search(m, "SENTBEFORE", "2-Jan-2024") == []
assert search(m, "SENTSINCE", "3-Jan-2024") == []
assert search(m, "SENTSINCE", "2-Jan-2024", "SENTBEFORE", "3-Jan-2024") == [1, 2]
m.logout()
print("dated")
"#);
    assert!(out.contains("dated"), "{out}");
}

#[test]
fn empty_strings_ask_for_presence_and_group_names_are_text() {
    let out = run(r#"
m = imap_login()
for headers in [
    "To: undisclosed-recipients:;\nX-Mailer: home",
    "To: Friends: ben@home.test, carl@home.test;",
    "Cc: anna@home.test",
]:
    message = crlf(f"From: a@home.test\n{headers}\nSubject: s\n\nbody\n").encode()
    ok(m.append("INBOX", None, None, message))
ok(m.select("INBOX"))
assert search(m, "TO", '""') == [1, 2]
assert search(m, "CC", '""') == [3]
assert search(m, "BCC", '""') == []
assert search(m, "HEADER", "X-Mailer", '""') == [1]
assert search(m, "NOT", "HEADER", "X-Mailer", '""') == [2, 3]
assert search(m, "TO", "undisclosed-recipients") == [1]
assert search(m, "TO", "friends") == [2]
assert search(m, "TO", "carl@home.test") == [2]
# Any field is searched unfolded: words on either side of a fold are found together.
ok(m.append("INBOX", None, None, b"From: a@home.test\r\nX-Folded: first\r\n second\r\nSubject: s\r\n\r\nbody\r\n"))
assert search(m, "HEADER", "X-Folded", '"first second"') == [4]
assert search(m, "HEADER", "X-Folded", "second") == [4]
m.logout()
print("present")
"#);
    assert!(out.contains("present"), "{out}");
}

#[test]
fn envelope_source_route_is_the_adl() {
    let out = run(r#"
m = imap_login()
message = crlf("From: Old Relay <@relay.test:ben@home.test>\nTo: alice@home.test\nSubject: routed\n\nbody\n").encode()
ok(m.append("INBOX", None, None, message))
ok(m.select("INBOX"))
data = ok(m.fetch("1", "(ENVELOPE)"))
assert b'(("Old Relay" "@relay.test" "ben" "home.test"))' in data[0], data
m.logout()
print("routed")
"#);
    assert!(out.contains("routed"), "{out}");
}
