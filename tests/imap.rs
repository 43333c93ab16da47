//! IMAP against Python's imaplib (STARTTLS and IMAPS, with certificate verification), curl,
//! and byte-exact transcripts for framing edge cases.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{PY_PRELUDE, Raw, Server, text};

/// imaplib helpers on top of the shared prelude.
const PY_IMAP: &str = r#"
import imaplib, re
IMAP_PORT = int(os.environ.get("IMAP_PORT", "0"))
IMAPS_PORT = int(os.environ.get("IMAPS_PORT", "0"))
def imap_login(user="alice@home.test", mode="starttls"):
    if mode == "implicit":
        m = imaplib.IMAP4_SSL("localhost", IMAPS_PORT, ssl_context=tls(), timeout=30)
    else:
        m = imaplib.IMAP4("localhost", IMAP_PORT, timeout=30)
        assert "LOGINDISABLED" in m.capabilities, m.capabilities
        m.starttls(ssl_context=tls())
        assert "LOGINDISABLED" not in m.capabilities, m.capabilities
    m.login(user, PASSWORD)
    return m
def ok(result):
    typ, data = result
    assert typ == "OK", (typ, data)
    return data
"#;

fn script(body: &str) -> String {
    format!("{PY_PRELUDE}{PY_IMAP}\n{body}")
}

fn deliver(server: &Server, subjects: &[&str]) {
    let body = "for subject in sys.argv[1:]:\n    send('sender@example.org', ['alice@home.test'], subject, body='line one\\r\\nline two\\r\\n')";
    server.python_ok(&script(body), subjects);
}

fn server_with_mail(subjects: &[&str]) -> Server {
    let server = Server::start();
    server.add_user("alice@home.test");
    deliver(&server, subjects);
    server
}

#[test]
fn imaplib_reads_mail_over_starttls_and_imaps() {
    let server = server_with_mail(&["first", "second"]);
    let out = server.python_ok(
        &script(
            r#"
for mode in ["starttls", "implicit"]:
    m = imap_login(mode=mode)
    for cap in ["IMAP4REV1", "IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "LITERAL+", "CONDSTORE"]:
        assert cap in m.capabilities, (cap, m.capabilities)
    data = ok(m.select("INBOX"))
    assert data == [b"2"], data
    data = ok(m.fetch("1:*", "(UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)"))
    assert len(data) == 2, data
    assert b'"first"' in data[0] and b"sender" in data[0], data[0]
    assert b'("text" "plain"' in data[0], data[0]
    data = ok(m.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    assert data[0][1] == b"Subject: second\r\n\r\n", data
    data = ok(m.fetch("1", "(BODY.PEEK[])"))
    whole = data[0][1]
    assert whole.endswith(b"line one\r\nline two\r\n"), whole
    data = ok(m.fetch("1", "(BODY.PEEK[TEXT]<5.8>)"))
    assert data[0][1] == b"one\r\nlin", data
    data = ok(m.fetch("1", "(BODY.PEEK[1])"))
    assert data[0][1] == b"line one\r\nline two\r\n", data
    data = ok(m.fetch("1", "(FLAGS)"))
    assert b"\\Seen" not in data[0], "PEEK must not set \\Seen"
    print(mode, ok(m.uid("FETCH", "1:*", "(FLAGS)")))
    m.logout()
m = imap_login(mode="implicit")
ok(m.select("INBOX"))
data = ok(m.fetch("1", "(RFC822)"))
assert b"Subject: first" in data[0][1]
data = ok(m.fetch("1", "(FLAGS)"))
assert b"\\Seen" in data[0], data
m.logout()
"#,
        ),
        &[],
    );
    assert!(
        out.contains("starttls") && out.contains("implicit"),
        "{out}"
    );
}

#[test]
fn curl_reads_over_imap_and_imaps() {
    let server = server_with_mail(&["for curl"]);
    for (scheme, service) in [("imap", "imap"), ("imaps", "imaps")] {
        let mut command = Command::new("curl");
        command
            .args(["--silent", "--show-error", "--cacert"])
            .arg(server.cert());
        if scheme == "imap" {
            command.arg("--ssl-reqd");
        }
        let out = command
            .arg(format!(
                "{scheme}://localhost:{}/INBOX;UID=1",
                server.port(service)
            ))
            .args(["--user", &format!("alice@home.test:{}", common::PASSWORD)])
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "curl {scheme}: {}\n{}",
            text(&out.stderr),
            server.log()
        );
        assert!(text(&out.stdout).contains("Subject: for curl"), "{scheme}");
    }
}

#[test]
fn literals_are_checked_before_anything_is_read() {
    let server = Server::start();
    server.add_user("alice@home.test");
    let mut imap = Raw::connect(server.addr("imap"));
    assert!(imap.line().starts_with("* OK"));
    // A synchronizing literal that is too large: refused at once, no "+".
    imap.send(b"a1 LOGIN {4000000000}\r\n");
    assert!(imap.line().starts_with("a1 BAD"), "huge literal");
    // LITERAL+ that is too large: its bytes are skipped, the stream stays in sync.
    let mut big = b"a2 LOGIN {300000+}\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 300_000));
    big.extend_from_slice(b" pass\r\na3 NOOP\r\n");
    imap.send(&big);
    assert!(imap.line().starts_with("a2 BAD"));
    assert_eq!(imap.line(), "a3 OK NOOP completed");
    // APPEND before login with LITERAL+: skipped, answered, and the session goes on.
    imap.send(b"a4 APPEND INBOX {5+}\r\nhello\r\na5 NOOP\r\n");
    assert!(imap.line().starts_with("a4 BAD"));
    assert_eq!(imap.line(), "a5 OK NOOP completed");
    // Malformed commands get BAD and the session goes on.
    for bad in [
        "a6 FROB",
        "a7 FETCH",
        "a8 SELECT",
        "*",
        "a9 LOGIN \"unterminated",
    ] {
        imap.send(format!("{bad}\r\n").as_bytes());
        let reply = imap.line();
        assert!(reply.contains("BAD"), "{bad}: {reply}");
    }
    imap.send(format!("b1 {}\r\nb2 NOOP\r\n", "X".repeat(100_000)).as_bytes());
    assert!(imap.line().starts_with("b1 BAD"), "overlong line");
    assert_eq!(imap.line(), "b2 OK NOOP completed");
    imap.send(b"b3 LOGIN alice@home.test x\r\n");
    assert!(imap.line().starts_with("b3 NO [PRIVACYREQUIRED]"));
    imap.send(b"b4 LOGOUT\r\n");
    assert!(imap.line().starts_with("* BYE"));
    assert!(imap.line().starts_with("b4 OK"));
    assert!(imap.closed_within(Duration::from_secs(5)));
}
