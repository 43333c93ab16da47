//! The login lockout holds against guesses sent all at once over several protocols (issue #16):
//! no more than the limit are checked, the right password after them is refused, and an
//! address that logged in before still gets in while an attacker elsewhere is locked out.
//! Other loopback addresses (127.0.0.x) stand in for other hosts.

mod common;

use common::{PY_PRELUDE, Server};

/// `attempt(source, service, password)` over implicit TLS from the source address given;
/// returns "ok", "failed" or "throttled" from the protocol's answer.
const ATTEMPT: &str = r#"
import threading
def answer(source, service, password):
    port = int(os.environ[service.upper() + "_PORT"])
    if service == "submissions":
        s = smtplib.SMTP_SSL("localhost", port, context=tls(), timeout=120, source_address=(source, 0))
        try:
            # One mechanism only: smtplib's login() would try the next after a failure.
            s.ehlo("client.test")
            s.user, s.password = "alice@home.test", password
            s.auth("PLAIN", s.auth_plain)
            return "235"
        except smtplib.SMTPException as e:
            return str(getattr(e, "smtp_code", e))
        finally:
            s.close()
    raw = socket.create_connection(("127.0.0.1", port), timeout=120, source_address=(source, 0))
    s = tls().wrap_socket(raw, server_hostname="localhost")
    f = s.makefile("rb")
    f.readline()
    if service == "imaps":
        s.sendall(b'a LOGIN alice@home.test "%s"\r\n' % password.encode())
        while True:
            line = f.readline().decode()
            if line.startswith("a ") or not line:
                break
    else:
        s.sendall(b"USER alice@home.test\r\n")
        f.readline()
        s.sendall(b"PASS %s\r\n" % password.encode())
        line = f.readline().decode()
    s.close()
    return line
def attempt(source, service, password):
    line = answer(source, service, password)
    if line.startswith(("a OK", "+OK", "235")):
        return "ok"
    if "[AUTHENTICATIONFAILED]" in line or "[AUTH]" in line or line.startswith("535"):
        return "failed"
    if "[UNAVAILABLE]" in line or "[LOGIN-DELAY]" in line or line.startswith("454"):
        return "throttled"
    return "unexpected: " + line
def at_once(jobs):
    results = [None] * len(jobs)
    def run(i, job):
        results[i] = attempt(*job)
    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
"#;

fn run(server: &Server, body: &str) -> Vec<String> {
    let out = server.python_ok(&format!("{PY_PRELUDE}{ATTEMPT}{body}"), &[]);
    out.lines().map(str::to_string).collect()
}

#[test]
fn guesses_sent_at_once_are_checked_no_more_than_the_limit() {
    // All 60 connections come from one address: its share of connection slots is raised so
    // that every guess reaches the login check (the share is tested in tests/slots.rs).
    let server =
        Server::start_with("login_failures_before_lockout = 10\nmax_connections_per_address = 64");
    server.add_user("alice@home.test");
    let lines = run(
        &server,
        r#"
services = ["imaps", "pop3s", "submissions"]
jobs = [("127.0.0.1", services[i % 3], "wrong %d" % i) for i in range(60)]
for r in at_once(jobs):
    print(r)
print("right", attempt("127.0.0.1", "imaps", PASSWORD))
print("right", attempt("127.0.0.1", "pop3s", PASSWORD))
"#,
    );
    let failed = lines.iter().filter(|l| *l == "failed").count();
    let throttled = lines.iter().filter(|l| *l == "throttled").count();
    assert_eq!(failed, 10, "{lines:#?}");
    assert_eq!(throttled, 50, "{lines:#?}");
    assert_eq!(lines[60], "right throttled", "{lines:#?}");
    assert_eq!(lines[61], "right throttled", "{lines:#?}");
}

#[test]
fn a_known_address_logs_in_while_an_attacker_elsewhere_is_locked_out() {
    let server = Server::start_with("login_failures_before_lockout = 10");
    server.add_user("alice@home.test");
    let lines = run(
        &server,
        r#"
print("home", attempt("127.0.0.1", "imaps", PASSWORD))
jobs = [("127.0.0.%d" % (10 + i), ["imaps", "pop3s"][i % 2], "wrong %d" % i) for i in range(60)]
results = at_once(jobs)
print("failed", results.count("failed"))
print("throttled", results.count("throttled"))
print("stranger", attempt("127.0.0.200", "imaps", PASSWORD))
print("home", attempt("127.0.0.1", "imaps", PASSWORD))
print("home", attempt("127.0.0.1", "pop3s", PASSWORD))
print("stranger", attempt("127.0.0.201", "pop3s", PASSWORD))
"#,
    );
    assert_eq!(
        lines,
        [
            "home ok",
            "failed 10",
            "throttled 50",
            "stranger throttled",
            "home ok",
            "home ok",
            "stranger throttled",
        ],
        "{}",
        server.log()
    );
}

/// A right password is remembered for a while so that reconnecting phones skip argon2
/// (issue #14); a password change must end that at once, even when another process (the
/// command line) makes it.
#[test]
fn a_remembered_login_ends_when_the_password_changes() {
    let server = Server::start();
    server.add_user("alice@home.test");
    let before = run(
        &server,
        r#"
print("first", attempt("127.0.0.1", "imaps", PASSWORD))
print("again", attempt("127.0.0.1", "pop3s", PASSWORD))
"#,
    );
    assert_eq!(before, ["first ok", "again ok"], "{}", server.log());
    let changed = server.cli(
        &["user", "passwd", "alice@home.test", "--password-stdin"],
        Some("a whole new stable\n"),
    );
    assert!(changed.status.success(), "{changed:?}");
    let after = run(
        &server,
        r#"
print("old", attempt("127.0.0.1", "imaps", PASSWORD))
print("new", attempt("127.0.0.1", "imaps", "a whole new stable"))
print("new again", attempt("127.0.0.1", "pop3s", "a whole new stable"))
"#,
    );
    assert_eq!(
        after,
        ["old failed", "new ok", "new again ok"],
        "{}",
        server.log()
    );
}
