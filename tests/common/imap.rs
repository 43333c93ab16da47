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
class RawImap:
    """IMAPS over a raw socket, for the order of responses (imaplib hides it). A response with
    literals comes back as one bytes value with the literals inline."""
    def __init__(self, user="alice@home.test", rcvbuf=None):
        s = socket.socket()
        s.settimeout(30)
        if rcvbuf:
            # A small receive window: the server blocks on a response the client reads slowly.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.connect(("localhost", IMAPS_PORT))
        self.s = tls().wrap_socket(s, server_hostname="localhost")
        self.f = self.s.makefile("rb")
        self.n = 0
        assert self.response().startswith(b"* OK"), "greeting"
        self.ok(b'LOGIN ' + user.encode() + b' "' + PASSWORD.encode() + b'"')
    def response(self):
        line = self.f.readline()
        assert line, "connection closed"
        while re.search(rb"\{(\d+)\}\r\n$", line):
            n = int(re.search(rb"\{(\d+)\}\r\n$", line).group(1))
            line += self.f.read(n)
            line += self.f.readline()
        return line
    def command(self, text):
        """Sends `text` with a new tag; returns (untagged responses in order, tagged reply)."""
        self.n += 1
        tag = b"t%d" % self.n
        self.s.sendall(tag + b" " + (text.encode() if isinstance(text, str) else text) + b"\r\n")
        untagged = []
        while True:
            line = self.response()
            if line.startswith(tag + b" "):
                return untagged, line
            untagged.append(line)
    def ok(self, text):
        untagged, done = self.command(text)
        assert b" OK " in done, (text, untagged, done)
        return untagged
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
