//! imaplib helpers shared by the IMAP test files.

use super::{PY_PRELUDE, Server};

/// imaplib helpers on top of the shared prelude.
pub const PY_IMAP: &str = r#"
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
imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))
imaplib.Commands.setdefault("ENABLE", ("AUTH",))
def idle_start(m):
    """Sends IDLE and waits for its continuation; returns the tag for idle_done."""
    tag = m._new_tag().decode()
    m.send(f"{tag} IDLE\r\n".encode())
    assert m.readline().startswith(b"+"), "no continuation"
    return tag
def idle_until(m, start, refuse=None):
    """Reads untagged lines during IDLE until one starts with `start`; returns it stripped."""
    while True:
        line = m.readline()
        assert line, "connection closed"
        assert refuse is None or refuse not in line, line
        if line.startswith(start):
            return line.strip()
def idle_done(m, tag):
    """Ends IDLE and checks its tagged OK."""
    m.send(b"DONE\r\n")
    while True:
        line = m.readline()
        assert line, "connection closed"
        if line.startswith(tag.encode()):
            assert b" OK " in line, line
            return
def ok(result):
    typ, data = result
    assert typ == "OK", (typ, data)
    return data
"#;

pub fn script(body: &str) -> String {
    format!("{PY_PRELUDE}{PY_IMAP}\n{body}")
}

pub fn deliver(server: &Server, subjects: &[&str]) {
    let body = "for subject in sys.argv[1:]:\n    send('sender@example.org', ['alice@home.test'], subject, body='line one\\r\\nline two\\r\\n')";
    server.python_ok(&script(body), subjects);
}

pub fn server_with_mail(subjects: &[&str]) -> Server {
    let server = Server::start();
    server.add_user("alice@home.test");
    deliver(&server, subjects);
    server
}
