//! POP3 (RFC 1939 + CAPA, STLS, AUTH PLAIN) against Python's poplib and curl.

mod common;

use std::process::Command;

use common::{PY_PRELUDE, Raw, Server, text};

fn deliver(server: &Server, subjects: &[&str]) {
    let script = format!(
        "{PY_PRELUDE}\nfor subject in sys.argv[1:]:\n    send('sender@example.org', ['alice@home.test'], subject, body='line one\\r\\n.starts with a dot\\r\\nline three\\r\\n')"
    );
    server.python_ok(&script, subjects);
}

fn server_with_mail(subjects: &[&str]) -> Server {
    let server = Server::start();
    server.add_user("alice@home.test");
    deliver(&server, subjects);
    server
}

#[test]
fn stls_and_implicit_tls_read_mail_with_stable_uidls() {
    let server = server_with_mail(&["first", "second"]);
    let script = format!(
        r#"{PY_PRELUDE}
for mode in ["stls", "implicit"]:
    p = pop3_login("alice@home.test", mode)
    count, size = p.stat()
    assert count == 2, count
    listing = p.list()[1]
    assert len(listing) == 2
    assert sum(int(l.split()[1]) for l in listing) == size
    print(" ".join(u.decode().split()[1] for u in p.uidl()[1]))
    lines = p.retr(1)[1]
    assert b"Subject: first" in lines, lines
    assert b".starts with a dot" in lines, "dot-stuffing undone by the client"
    top = p.top(2, 1)[1]
    assert b"Subject: second" in top
    assert top[-1] == b"line one", top
    p.quit()
"#
    );
    let out = server.python_ok(&script, &[]);
    let uidls: Vec<&str> = out.lines().collect();
    assert_eq!(uidls.len(), 2);
    assert_eq!(uidls[0], uidls[1], "UIDL stable across sessions");
}

#[test]
fn dele_takes_effect_only_at_quit() {
    let server = server_with_mail(&["keep", "delete me", "also keep"]);
    let script = format!(
        r#"{PY_PRELUDE}
p = pop3_login("alice@home.test")
p.dele(2)
try:
    p.retr(2)
    raise SystemExit("deleted message still readable")
except poplib.error_proto as e:
    assert b"deleted" in str(e).encode(), e
p.rset()
p.dele(2)
p.sock.shutdown(socket.SHUT_RDWR)   # drop the connection without QUIT: nothing is deleted
p.sock.close()
# The server releases the maildrop lock when it notices the close; wait for that.
p = None
for attempt in range(100):
    try:
        p = pop3_login("alice@home.test")
        break
    except poplib.error_proto as e:
        assert b"IN-USE" in str(e).encode(), e
        time.sleep(0.1)
assert p is not None, "the lock of the dropped session was never released"
assert p.stat()[0] == 3, p.stat()
p.dele(2)
print(p.quit().decode())
p = pop3_login("alice@home.test")
assert p.stat()[0] == 2
subjects = [l for i in (1, 2) for l in p.top(i, 0)[1] if l.startswith(b"Subject:")]
assert subjects == [b"Subject: keep", b"Subject: also keep"], subjects
p.quit()
"#
    );
    let out = server.python_ok(&script, &[]);
    assert!(out.contains("+OK"), "{out}");
}

#[test]
fn passwords_need_tls_and_bad_ones_are_throttled() {
    let server = Server::start_with("login_failures_before_lockout = 3");
    server.add_user("alice@home.test");
    let mut pop = Raw::connect(server.addr("pop3"));
    assert!(pop.line().starts_with("+OK"));
    pop.send(b"CAPA\r\n");
    let mut capabilities = Vec::new();
    loop {
        let line = pop.line();
        if line == "." {
            break;
        }
        capabilities.push(line);
    }
    assert!(capabilities.iter().any(|c| c == "STLS"), "{capabilities:?}");
    assert!(
        !capabilities.iter().any(|c| c == "USER"),
        "no USER before TLS"
    );
    pop.send(b"USER alice@home.test\r\n");
    assert!(pop.line().starts_with("-ERR [AUTH]"));
    pop.send(b"AUTH PLAIN AGFsaWNlQGhvbWUudGVzdABzZWNyZXQ=\r\n");
    assert!(pop.line().starts_with("-ERR [AUTH]"));

    let script = format!(
        r#"{PY_PRELUDE}
def attempt(password):
    p = poplib.POP3("localhost", POP3_PORT, timeout=30)
    p.stls(context=tls())
    p.user("alice@home.test")
    try:
        p.pass_(password)
        p.quit()
        return "ok"
    except poplib.error_proto as e:
        return str(e)
for i in range(3):
    print(attempt("wrong password"))
print(attempt(PASSWORD))
"#
    );
    let out = server.python_ok(&script, &[]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    for line in &lines[..3] {
        assert!(line.contains("-ERR [AUTH]"), "{out}");
    }
    assert!(
        lines[3].contains("[LOGIN-DELAY]"),
        "locked out even with the right password: {out}"
    );
}

#[test]
fn auth_plain_and_the_maildrop_lock() {
    let server = server_with_mail(&["locked"]);
    let script = format!(
        r#"{PY_PRELUDE}
import base64
def connect():
    p = poplib.POP3_SSL("localhost", POP3S_PORT, context=tls(), timeout=30)
    return p
first = connect()
token = base64.b64encode(b"\0alice@home.test\0" + PASSWORD.encode()).decode()
print(first._shortcmd("AUTH PLAIN " + token).decode())
second = connect()
second.user("alice@home.test")
try:
    second.pass_(PASSWORD)
    print("second login allowed")
except poplib.error_proto as e:
    print(str(e))
first.quit()
third = connect()
third.user("alice@home.test")
third.pass_(PASSWORD)
print("after unlock", third.stat()[0])
third.quit()
"#
    );
    let out = server.python_ok(&script, &[]);
    assert!(
        out.lines().next().is_some_and(|l| l.starts_with("+OK")),
        "{out}"
    );
    assert!(out.contains("[IN-USE]"), "{out}");
    assert!(out.contains("after unlock 1"), "{out}");
}

#[test]
fn curl_reads_over_pop3s() {
    let server = server_with_mail(&["for curl"]);
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--cacert"])
        .arg(server.cert())
        .arg(format!("pop3s://localhost:{}/1", server.port("pop3s")))
        .args(["--user", &format!("alice@home.test:{}", common::PASSWORD)])
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Subject: for curl"));
}

#[test]
fn bad_commands_get_err_and_the_session_goes_on() {
    let server = server_with_mail(&["x"]);
    let mut pop = Raw::connect(server.addr("pop3"));
    assert!(pop.line().starts_with("+OK"));
    pop.send(format!("{}\r\n", "A".repeat(300)).as_bytes());
    assert!(pop.line().starts_with("-ERR"), "overlong line");
    pop.send(b"FROB\r\n");
    assert!(pop.line().starts_with("-ERR"));
    pop.send(b"STAT\r\n");
    assert!(pop.line().starts_with("-ERR"), "STAT before login");
    pop.send(b"QUIT\r\n");
    assert!(pop.line().starts_with("+OK"));
}

/// An unauthenticated connection that stays silent is told why before it is closed (issue #16
/// defect 6), both when the idle timer fires and when the total time before login runs out.
#[test]
fn an_idle_connection_before_login_gets_err_before_the_close() {
    let server = Server::start_with("preauth_idle_timeout = 2\npreauth_timeout = 3");
    let mut silent = Raw::connect(server.addr("pop3"));
    assert!(silent.line().starts_with("+OK"));
    let bye = silent.line();
    assert_eq!(bye, "-ERR Disconnected for inactivity");
    assert!(silent.closed_within(std::time::Duration::from_secs(5)));

    let mut dribbling = Raw::connect(server.addr("pop3"));
    assert!(dribbling.line().starts_with("+OK"));
    for _ in 0..3 {
        dribbling.send(b"C");
        std::thread::sleep(std::time::Duration::from_millis(900));
    }
    let mut lines = Vec::new();
    loop {
        let line = dribbling.line();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    assert_eq!(
        lines.last().map(String::as_str),
        Some("-ERR Disconnected for inactivity"),
        "{lines:?}"
    );
}
