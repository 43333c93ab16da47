//! Submission (587 STARTTLS, 465 implicit TLS) against real clients: Python's smtplib and
//! swaks, plus raw conversations for the refusals.

mod common;

use std::process::Command;

use common::{PY_PRELUDE, Raw, Server, text};

/// smtplib helpers for the submission ports.
const PY_SUBMIT: &str = r#"
SUBMISSION_PORT = int(os.environ["SUBMISSION_PORT"])
SUBMISSIONS_PORT = int(os.environ["SUBMISSIONS_PORT"])
def submit(user, frm, to, msg, implicit=False, password=None):
    if implicit:
        s = smtplib.SMTP_SSL("localhost", SUBMISSIONS_PORT, context=tls(), timeout=30)
    else:
        s = smtplib.SMTP("localhost", SUBMISSION_PORT, timeout=30)
        s.starttls(context=tls())
    s.ehlo("client.test")
    s.login(user, password or PASSWORD)
    try:
        s.sendmail(frm, to, msg)
    finally:
        s.quit()
"#;

fn script(body: &str) -> String {
    format!("{PY_PRELUDE}{PY_SUBMIT}\n{body}")
}

fn pop3_retrieve_all(server: &Server, user: &str) -> String {
    let script = format!(
        "{PY_PRELUDE}\np = pop3_login(sys.argv[1])\nfor i in range(p.stat()[0]):\n    print(b'\\n'.join(p.retr(i + 1)[1]).decode())\n    print('=====')\np.quit()"
    );
    server.python_ok(&script, &[user])
}

#[test]
fn auth_is_refused_before_tls_and_mail_needs_auth() {
    let server = Server::start();
    server.add_user("alice@home.test");
    let mut raw = Raw::connect(server.addr("submission"));
    assert!(raw.line().starts_with("220 "));
    raw.send(b"EHLO client.test\r\n");
    let mut ehlo = Vec::new();
    loop {
        let line = raw.line();
        let last = line.as_bytes().get(3) != Some(&b'-');
        ehlo.push(line);
        if last {
            break;
        }
    }
    assert!(ehlo.iter().any(|l| l.ends_with("STARTTLS")), "{ehlo:?}");
    assert!(!ehlo.iter().any(|l| l.contains("AUTH")), "{ehlo:?}");
    // base64("\0alice@home.test\0correct horse battery")
    let plain = "AGFsaWNlQGhvbWUudGVzdABjb3JyZWN0IGhvcnNlIGJhdHRlcnk=";
    let reply = raw.cmd(&format!("AUTH PLAIN {plain}"));
    assert!(reply.starts_with("538 5.7.11"), "{reply}");
    let reply = raw.cmd("MAIL FROM:<alice@home.test>");
    assert!(reply.starts_with("530 5.7.0"), "{reply}");
    assert!(raw.cmd("QUIT").starts_with("221"));
    // Port 25 never offers AUTH.
    let mut raw = Raw::connect(server.addr("smtp"));
    raw.line();
    raw.cmd("EHLO client.test");
    let reply = raw.cmd(&format!("AUTH PLAIN {plain}"));
    assert!(reply.starts_with("503"), "{reply}");
}

#[test]
fn smtplib_submits_to_a_local_user_with_message_id_and_date_added() {
    let server = Server::start();
    server.add_user("alice@home.test");
    server.add_user("bob@home.test");
    server.python_ok(
        &script(
            r#"
msg = "From: alice@home.test\r\nTo: bob@home.test\r\nSubject: over 587\r\n\r\nHi Bob.\r\n"
submit("alice@home.test", "alice@home.test", ["bob@home.test"], msg)
msg = "From: Alice <alice@home.test>\r\nTo: bob@home.test\r\nSubject: over 465\r\nMessage-ID: <mine@client.test>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nAgain.\r\n"
submit("alice", "alice@home.test", ["bob@home.test"], msg, implicit=True)
"#,
        ),
        &[],
    );
    let mail = pop3_retrieve_all(&server, "bob@home.test");
    let messages: Vec<&str> = mail.split("=====").collect();
    assert!(messages[0].contains("Subject: over 587"), "{mail}");
    assert!(
        messages[0].contains("Message-ID: <") && messages[0].contains("@localhost>"),
        "{mail}"
    );
    assert!(messages[0].contains("\nDate: "), "{mail}");
    assert!(messages[0].contains("with ESMTPSA id"), "{mail}");
    assert!(
        messages[0]
            .trim_start()
            .starts_with("Return-Path: <alice@home.test>"),
        "final delivery adds Return-Path: {mail}"
    );
    assert!(messages[1].contains("Subject: over 465"), "{mail}");
    assert_eq!(messages[1].matches("Message-ID:").count(), 1, "{mail}");
    assert_eq!(messages[1].matches("\nDate:").count(), 1, "{mail}");
}

#[test]
fn swaks_submits_with_auth_login_and_plain() {
    let server = Server::start();
    server.add_user("alice@home.test");
    for (port, tls_flag, mechanism) in [
        (server.port("submission"), "--tls", "LOGIN"),
        (server.port("submissions"), "--tls-on-connect", "PLAIN"),
    ] {
        let out = Command::new("swaks")
            .args(["--server", "localhost", "--port"])
            .arg(port.to_string())
            .args([
                tls_flag,
                "--tls-verify",
                "--tls-ca-path",
                server.cert().to_str().expect("path"),
                "--auth",
                mechanism,
                "--auth-user",
                "alice@home.test",
                "--auth-password",
                common::PASSWORD,
                "--from",
                "alice@home.test",
                "--to",
                "alice@home.test",
                "--header",
                &format!("Subject: swaks {mechanism}"),
            ])
            .output()
            .expect("swaks");
        assert!(
            out.status.success(),
            "swaks {mechanism}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    let mail = pop3_retrieve_all(&server, "alice@home.test");
    assert!(mail.contains("Subject: swaks LOGIN"), "{mail}");
    assert!(mail.contains("Subject: swaks PLAIN"), "{mail}");
}

#[test]
fn sending_as_someone_else_is_refused_but_an_alias_is_fine() {
    let server = Server::start();
    server.add_user("alice@home.test");
    server.add_user("bob@home.test");
    let out = server.cli(
        &[
            "alias",
            "add",
            "family@home.test",
            "alice@home.test",
            "bob@home.test",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let result = server.python_ok(
        &script(
            r#"
def attempt(frm, header_from):
    msg = f"From: {header_from}\r\nSubject: as {frm}\r\n\r\nHi.\r\n"
    try:
        submit("alice@home.test", frm, ["bob@home.test"], msg)
        return "ok"
    except smtplib.SMTPSenderRefused as e:
        return f"sender {e.smtp_code} {e.smtp_error.decode()}"
    except smtplib.SMTPDataError as e:
        return f"data {e.smtp_code} {e.smtp_error.decode()}"
print(attempt("bob@home.test", "bob@home.test"))
print(attempt("alice@home.test", "Bob <bob@home.test>"))
print(attempt("family@home.test", "family@home.test"))
print(attempt("ALICE@home.test", "alice@HOME.test"))
"#,
        ),
        &[],
    );
    let lines: Vec<&str> = result.lines().collect();
    assert!(lines[0].starts_with("sender 553 5.7.1"), "{result}");
    assert!(lines[1].starts_with("data 550 5.7.1"), "{result}");
    assert_eq!(lines[2], "ok", "{result}");
    assert_eq!(lines[3], "ok", "{result}");
    let mail = pop3_retrieve_all(&server, "bob@home.test");
    assert_eq!(mail.matches("Subject: as").count(), 2, "{mail}");
}

/// Issue #16 defect 4: a second From: (or Sender:), or one past what the check reads, used
/// to go through unchecked; a message with no From: went out without one.
#[test]
fn from_and_sender_are_checked_in_the_whole_header_and_a_missing_from_is_added() {
    let server = Server::start();
    server.add_user("alice@home.test");
    server.add_user("bob@home.test");
    let result = server.python_ok(
        &script(
            r#"
def attempt(headers):
    msg = headers + "\r\nHi.\r\n"
    try:
        submit("alice@home.test", "alice@home.test", ["bob@home.test"], msg)
        return "ok"
    except smtplib.SMTPDataError as e:
        return f"data {e.smtp_code} {e.smtp_error.decode()}"
pad = "".join(f"X-Pad-{i}: {'a' * 70}\r\n" for i in range(4000))
print(attempt("From: bob@home.test\r\nFrom: alice@home.test\r\nSubject: two from\r\n"))
print(attempt("From: alice@home.test\r\nSender: alice@home.test\r\nSender: alice@home.test\r\nSubject: two sender\r\n"))
print(attempt("From: alice@home.test\r\n" + pad + "From: bob@home.test\r\nSubject: deep from\r\n"))
print(attempt(pad + "From: bob@home.test\r\nSubject: only deep from\r\n"))
print(attempt("To: bob@home.test\r\nSubject: no from\r\n"))
print(attempt("From: alice@home.test\r\nSender: Bob <bob@home.test>\r\nSubject: bob's sender\r\n"))
"#,
        ),
        &[],
    );
    let lines: Vec<&str> = result.lines().collect();
    assert!(lines[0].starts_with("data 550 5.7.1"), "{result}");
    assert!(lines[1].starts_with("data 550 5.7.1"), "{result}");
    assert!(lines[2].starts_with("data 552 5.3.4"), "{result}");
    assert!(lines[3].starts_with("data 552 5.3.4"), "{result}");
    assert_eq!(lines[4], "ok", "{result}");
    assert!(lines[5].starts_with("data 550 5.7.1"), "{result}");
    let mail = pop3_retrieve_all(&server, "bob@home.test");
    assert_eq!(mail.matches("Subject: ").count(), 1, "{mail}");
    assert!(mail.contains("Subject: no from"), "{mail}");
    assert!(mail.contains("\nFrom: <alice@home.test>"), "{mail}");
}

#[test]
fn wrong_passwords_are_throttled_then_locked_out() {
    let server = Server::start_with("login_failures_before_lockout = 3");
    server.add_user("alice@home.test");
    let result = server.python_ok(
        &script(
            r#"
def login(password):
    s = smtplib.SMTP("localhost", SUBMISSION_PORT, timeout=30)
    s.starttls(context=tls())
    s.ehlo("client.test")
    s.user, s.password = "alice@home.test", password
    try:
        s.auth("PLAIN", s.auth_plain)
        return "ok"
    except smtplib.SMTPAuthenticationError as e:
        return f"{e.smtp_code} {e.smtp_error.decode()}"
    finally:
        s.close()
for _ in range(3):
    print(login("wrong password"))
print(login(PASSWORD))
"#,
        ),
        &[],
    );
    let lines: Vec<&str> = result.lines().collect();
    assert!(
        lines[..3].iter().all(|l| l.starts_with("535 5.7.8")),
        "{result}"
    );
    assert!(lines[3].starts_with("454 4.7.0"), "locked out: {result}");
}
