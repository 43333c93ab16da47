//! Connection slots on the open Internet (issue #16 defect 3): a connection over the limit is
//! answered with the protocol's busy reply at once, one address holds only its share, and a
//! peer that dribbles bytes before login is cut after a total time, not per byte.

mod common;

use common::Server;

/// Opens `count` connections to each plaintext service (from the address in the second
/// argument, default 127.0.0.1),
/// reads each greeting, then checks that one more gets the busy reply and is closed at once.
const OVER_THE_LIMIT: &str = r#"
import os, socket, sys, time
count = int(sys.argv[1])
source = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
services = [
    ("SMTP_PORT", b"220 ", b"421 4.3.2 Too many connections, try again later\r\n"),
    ("POP3_PORT", b"+OK", b"-ERR [SYS/TEMP] Too many connections\r\n"),
    ("IMAP_PORT", b"* OK", b"* BYE [UNAVAILABLE] Too many connections\r\n"),
]
held = []
for port, greeting, busy in services:
    port = int(os.environ[port])
    def connect():
        s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
        return s
    for _ in range(count):
        s = connect()
        line = s.recv(512)
        assert line.startswith(greeting), (port, line)
        held.append(s)
    started = time.monotonic()
    s = connect()
    got = b""
    while True:
        chunk = s.recv(512)
        if not chunk:
            break
        got += chunk
    waited = time.monotonic() - started
    assert got == busy, (port, got)
    assert waited < 2, waited
    print(port, "busy after", count, "in", round(waited, 3), "s")
"#;

#[test]
fn the_connection_over_max_connections_gets_the_busy_reply_at_once() {
    let server = Server::start_with("max_connections = 64\nmax_connections_per_address = 64");
    let out = server.python_ok(OVER_THE_LIMIT, &["64"]);
    print!("{out}");
}

/// One address (127.0.0.2) takes its share of IMAP, POP3 and SMTP; the 17th connection from it
/// gets the busy reply, and a client from 127.0.0.1 is still served.
#[test]
fn one_address_holds_only_its_share() {
    let server = Server::start();
    let script = format!(
        "{OVER_THE_LIMIT}\n{}",
        r#"
imap = socket.create_connection(("127.0.0.1", int(os.environ["IMAP_PORT"])), timeout=5)
f = imap.makefile("rwb")
assert f.readline().startswith(b"* OK")
f.write(b"a CAPABILITY\r\n"); f.flush()
line = f.readline()
while line.startswith(b"*"):
    line = f.readline()
assert line.startswith(b"a OK"), line
pop = socket.create_connection(("127.0.0.1", int(os.environ["POP3_PORT"])), timeout=5)
assert pop.recv(512).startswith(b"+OK")
smtp = socket.create_connection(("127.0.0.1", int(os.environ["SMTP_PORT"])), timeout=5)
assert smtp.recv(512).startswith(b"220 ")
print("127.0.0.1 served while 127.0.0.2 holds its share")
"#
    );
    let out = server.python_ok(&script, &["16", "127.0.0.2"]);
    print!("{out}");
}

/// A peer that sends one byte a second before login (the idle timer alone would never fire)
/// is cut once `preauth_timeout` (3 s here) has passed since it connected: on IMAP, POP3 and
/// submission.
const DRIBBLE: &str = r#"
import os, socket, time
for port in ("IMAP_PORT", "POP3_PORT", "SUBMISSION_PORT"):
    s = socket.create_connection(("127.0.0.1", int(os.environ[port])), timeout=10)
    started = time.monotonic()
    s.recv(512)
    s.settimeout(1.0)
    closed = None
    while time.monotonic() - started < 9:
        try:
            s.send(b"x")
        except OSError:
            closed = time.monotonic() - started
            break
        try:
            data = s.recv(512)
            if not data:
                closed = time.monotonic() - started
                break
        except socket.timeout:
            pass
    assert closed is not None, (port, "still open after 9 s")
    assert 2.5 < closed < 5, (port, closed)
    print(port, "cut after", round(closed, 1), "s")
"#;

#[test]
fn dribbling_bytes_before_login_is_cut_after_the_total_bound() {
    let server = Server::start_with("preauth_timeout = 3");
    let out = server.python_ok(DRIBBLE, &[]);
    print!("{out}");
}

/// Before login, `LOGIN {4000000000+}` is answered BAD and the connection closed at once,
/// without the server reading (and discarding) the 4 GB.
const HUGE_LITERAL: &str = r#"
import os, socket, time
s = socket.create_connection(("127.0.0.1", int(os.environ["IMAP_PORT"])), timeout=5)
f = s.makefile("rb")
assert f.readline().startswith(b"* OK")
started = time.monotonic()
s.sendall(b"a LOGIN {4000000000+}\r\n")
line = f.readline()
assert line.startswith(b"a BAD"), line
try:
    rest = f.read()
except ConnectionResetError:
    rest = b""
assert rest == b"", rest
waited = time.monotonic() - started
assert waited < 2, waited
print("BAD and closed in", round(waited, 3), "s")
"#;

#[test]
fn a_huge_literal_before_login_is_refused_and_the_connection_closed() {
    let server = Server::start();
    let out = server.python_ok(HUGE_LITERAL, &[]);
    print!("{out}");
}
