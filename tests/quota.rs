//! Per-account quotas (issue #14): `letterbox user add --quota` / `user quota`; a full mailbox
//! gets 452 4.2.2 at RCPT (or at the end of DATA when no SIZE was declared), a message larger
//! than the whole quota 552 5.2.2, APPEND `NO [OVERQUOTA]`, GETQUOTA reports the quota, a
//! POP3 delete makes room again, and a message to an alias counts for each member.

mod common;

use common::{PY_PRELUDE, Server};

const SCRIPT: &str = r#"
import imaplib
IMAPS_PORT = int(os.environ["IMAPS_PORT"])
FILLER = "x" * 70 + "\r\n"
def message(size, subject):
    head = f"From: <sender@example.org>\r\nTo: <alice@home.test>\r\nSubject: {subject}\r\n\r\n"
    return head + FILLER * ((size - len(head)) // len(FILLER))
def smtp_code(frm, to, msg, declare_size=True):
    s = smtplib.SMTP("localhost", SMTP_PORT, timeout=30)
    s.ehlo("client.test")
    try:
        if declare_size:
            s.sendmail(frm, [to], msg)
            return "250"
        code, text = s.mail(frm)
        code, text = s.rcpt(to)
        if code != 250:
            return f"{code} {text.decode()[:5]}"
        code, text = s.data(msg)
        return f"{code} {text.decode()[:5]}" if code != 250 else "250"
    except smtplib.SMTPRecipientsRefused as e:
        code, text = list(e.recipients.values())[0]
        return f"{code} {text.decode()[:5]}"
    except smtplib.SMTPDataError as e:
        return f"{e.smtp_code} {e.smtp_error.decode()[:5]}"
    finally:
        s.close()
def imap():
    m = imaplib.IMAP4_SSL("localhost", IMAPS_PORT, ssl_context=tls())
    m.login("alice@home.test", PASSWORD)
    return m
print("first", smtp_code("sender@example.org", "alice@home.test", message(6000, "one")))
print("second", smtp_code("sender@example.org", "alice@home.test", message(6000, "two")))
print("no size", smtp_code("sender@example.org", "alice@home.test", message(6000, "three"), declare_size=False))
print("huge", smtp_code("sender@example.org", "alice@home.test", message(20000, "huge")))
print("alias", smtp_code("sender@example.org", "family@home.test", message(6000, "family")))
print("bob", smtp_code("sender@example.org", "bob@home.test", message(6000, "bob")))
m = imap()
typ, data = m.getquotaroot("INBOX")
print("quota", data[1][0].decode())
typ, data = m.append("INBOX", None, None, message(6000, "append").encode())
print("append", typ, data[0].decode()[:11])
m.logout()
p = pop3_login("alice@home.test", "implicit")
p.dele(1)
p.quit()
print("after delete", smtp_code("sender@example.org", "alice@home.test", message(6000, "four")))
"#;

#[test]
fn a_full_mailbox_is_refused_until_mail_is_deleted() {
    let server = Server::start();
    server.add_user("alice@home.test");
    server.add_user("bob@home.test");
    let quota = server.cli(&["user", "quota", "alice@home.test", "10KiB"], None);
    assert!(quota.status.success(), "{quota:?}");
    let alias = server.cli(
        &[
            "alias",
            "add",
            "family@home.test",
            "alice@home.test",
            "bob@home.test",
        ],
        None,
    );
    assert!(alias.status.success(), "{alias:?}");
    let out = server.python_ok(&format!("{PY_PRELUDE}{SCRIPT}"), &[]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "first 250",
            "second 452 4.2.2",
            "no size 452 4.2.2",
            "huge 552 5.2.2",
            "alias 452 4.2.2",
            "bob 250",
            // About 6 KiB of 10 used (the message and its trace headers).
            "quota \"\" (STORAGE 7 10)",
            "append NO [OVERQUOTA]",
            "after delete 250",
        ],
        "{}",
        server.log()
    );
    let list = server.cli(&["user", "list"], None);
    let listed = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("alice@home.test") && l.contains(" of 10")),
        "{listed}"
    );
    let removed = server.cli(&["user", "quota", "alice@home.test", "none"], None);
    assert!(removed.status.success(), "{removed:?}");
}
