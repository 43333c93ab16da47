//! A full data device: deliveries get 452 4.3.1 (try again later), the server goes on, and
//! every message acknowledged before is still readable, also after a restart.
//!
//! Needs root to mount a small tmpfs as the data directory (CI runs as root). Without root the
//! test says so and checks nothing.

mod common;

use std::process::Command;

use common::{PY_PRELUDE, Raw, Server};

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| common::text(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// With the default reserve of free space, deliveries stop before the device is full.
#[test]
fn a_nearly_full_disk_gets_452_and_loses_nothing() {
    fill_up("min_free_space = \"2MiB\"");
}

/// Without a reserve the device really fills up: redb's commit fails, the store reopens
/// itself, and works again once space is freed.
#[test]
fn a_completely_full_disk_gets_452_and_recovers() {
    fill_up("min_free_space = 0");
}

/// A small tmpfs as the data directory of a new temporary directory, or `None` without root.
fn small_data_device() -> Option<(tempfile::TempDir, std::path::PathBuf, Mount)> {
    if !is_root() {
        eprintln!("full_disk: not root, cannot mount a small tmpfs; nothing checked");
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=6m", "tmpfs"])
        .arg(&data)
        .status()
        .expect("mount");
    assert!(mounted.success(), "mount tmpfs as root");
    Some((dir, data.clone(), Mount(data)))
}

/// One MULTIAPPEND of many large messages cannot fill the device: each message is checked
/// against the free space left beside the spool files already written, the command is
/// refused with NO [OVERQUOTA], nothing of it is stored, and the session goes on.
#[test]
fn a_multiappend_larger_than_the_free_space_is_refused_whole() {
    let Some((dir, _data, _mount)) = small_data_device() else {
        return;
    };
    let server = Server::start_on(dir, "min_free_space = \"1MiB\"");
    server.add_user("alice@home.test");
    let script = format!(
        "{PY_PRELUDE}{}",
        r#"
import re
s = tls().wrap_socket(socket.create_connection(("localhost", int(os.environ["IMAPS_PORT"]))), server_hostname="localhost")
f = s.makefile("rb")
assert f.readline().startswith(b"* OK")
s.sendall(b'a LOGIN alice@home.test "' + PASSWORD.encode() + b'"\r\n')
assert f.readline().startswith(b"a OK")
message = b"Subject: big\r\n\r\n" + b"x" * (1536 * 1024) + b"\r\n"
command = b"b APPEND INBOX"
for _ in range(5):
    command += b" {%d+}\r\n" % len(message) + message
s.sendall(command + b"\r\n")
line = f.readline()
assert line.startswith(b"b NO [OVERQUOTA]"), line
s.sendall(b"c STATUS INBOX (MESSAGES)\r\n")
assert b"MESSAGES 0" in f.readline()
assert f.readline().startswith(b"c OK")
"#
    );
    server.python_ok(&script, &[]);
}

fn fill_up(limits: &str) {
    let Some((dir, data, _mount)) = small_data_device() else {
        return;
    };

    let mut server = Server::start_on(dir, limits);
    server.add_user("alice@home.test");
    // Ballast to remove later, standing in for the user freeing space.
    let ballast = data.join("ballast");
    std::fs::write(&ballast, vec![0u8; 1024 * 1024]).expect("ballast");
    let body = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n".repeat(3000);
    let mut accepted = 0;
    let mut refused = None;
    let mut smtp = Raw::connect(server.addr("smtp"));
    smtp.line();
    smtp.cmd("EHLO filler.test");
    for i in 0..100 {
        assert!(smtp.cmd("MAIL FROM:<a@example.org>").starts_with("250"));
        assert!(smtp.cmd("RCPT TO:<alice@home.test>").starts_with("250"));
        assert!(smtp.cmd("DATA").starts_with("354"));
        smtp.send(format!("Subject: fill-{i}\r\n\r\n{body}.\r\n").as_bytes());
        let reply = smtp.reply();
        if reply.starts_with("250") {
            accepted += 1;
        } else {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("the disk filled up");
    assert!(refused.starts_with("452 4.3.1"), "{refused}");
    assert!(accepted > 0);
    assert!(smtp.cmd("NOOP").starts_with("250"), "the session goes on");
    let declared = smtp.cmd("MAIL FROM:<a@example.org> SIZE=4000000");
    assert!(
        declared.starts_with("452 4.3.1") || declared.starts_with("250"),
        "{declared}"
    );
    smtp.cmd("RSET");

    // Once there is space again, deliveries work without a restart.
    std::fs::remove_file(&ballast).expect("remove ballast");
    assert!(smtp.cmd("MAIL FROM:<a@example.org>").starts_with("250"));
    assert!(smtp.cmd("RCPT TO:<alice@home.test>").starts_with("250"));
    assert!(smtp.cmd("DATA").starts_with("354"));
    smtp.send(b"Subject: after cleanup\r\n\r\nsmall\r\n.\r\n");
    let reply = smtp.reply();
    assert!(
        reply.starts_with("250"),
        "after freeing space: {reply}\n{}",
        server.log()
    );
    accepted += 1;

    let count = format!(
        "{PY_PRELUDE}\np = pop3_login('alice@home.test')\nprint(p.stat()[0])\nfor i in range(p.stat()[0]): p.retr(i + 1)\np.quit()"
    );
    let stored: usize = server.python_ok(&count, &[]).trim().parse().expect("count");
    assert_eq!(stored, accepted, "every acknowledged message is readable");

    let reopened = server.log().contains("reopening the store");
    eprintln!("full_disk ({limits}): {accepted} accepted, store reopened: {reopened}");
    server.stop();
    server.launch();
    let stored: usize = server.python_ok(&count, &[]).trim().parse().expect("count");
    assert_eq!(stored, accepted, "and still there after a restart");
}

/// Issue #16 defect 5: on a full device, space that EXPUNGE frees inside the store file (which
/// never shrinks) is room for mail again at once, large messages too, without a restart. The
/// sender declares SIZE, so both the MAIL FROM check and the store's check are passed.
const FILL_EXPUNGE_REFILL: &str = r#"
import imaplib
body = ("0123456789abcdef" * 62 + "0123\r\n") * 262   # 256 KiB in lines of 1000 octets
def deliver(n):
    s = smtplib.SMTP("localhost", SMTP_PORT, timeout=60)
    s.ehlo("filler.test")
    message = f"From: a@example.org\r\nSubject: big {n}\r\n\r\n{body}".encode()
    code, text = s.mail("a@example.org", ["SIZE=%d" % len(message)])
    stage = "MAIL"
    if code == 250:
        stage = "DATA"
        code, text = s.rcpt("alice@home.test")
        assert code == 250, (code, text)
        try:
            code, text = s.data(message)
        except smtplib.SMTPDataError as e:
            code, text = e.smtp_code, e.smtp_error
    s.quit()
    assert code in (250, 452), (code, text)
    refusal[0] = (stage, code, text)
    return code == 250
refusal = [None]
filled = 0
while deliver(filled):
    filled += 1
    assert filled < 200, "the device never filled"
assert filled >= 8, filled
imap = imaplib.IMAP4_SSL("localhost", int(os.environ["IMAPS_PORT"]), ssl_context=tls())
imap.login("alice@home.test", PASSWORD)
imap.select("INBOX")
imap.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
imap.expunge()
refilled = 0
for n in range(filled - 2):
    assert deliver(1000 + n), f"refused after {refilled} of {filled - 2} once space was freed: {refusal[0]}"
    refilled += 1
imap.noop()
status = imap.status("INBOX", "(MESSAGES)")[1][0]
assert b"MESSAGES %d" % refilled in status, status
imap.logout()
print(f"filled {filled} x 256 KiB, expunged, then {refilled} more accepted")
"#;

#[test]
fn large_deliveries_resume_once_expunge_frees_space_inside_the_store() {
    let Some((dir, _data, _mount)) = small_data_device() else {
        return;
    };
    let server = Server::start_on(dir, "min_free_space = \"1MiB\"");
    server.add_user("alice@home.test");
    let out = server.python(&format!("{PY_PRELUDE}{FILL_EXPUNGE_REFILL}"), &[]);
    let log = server.log();
    assert!(
        out.status.success(),
        "{}\n{}",
        common::text(&out.stderr),
        log.lines()
            .filter(|l| !l.contains("DEBUG"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    print!("{}", common::text(&out.stdout));
}
