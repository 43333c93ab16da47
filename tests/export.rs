//! Backups and moving out: `letterbox export` and `letterbox import` against real readers and
//! writers — imaplib over both boxes of a round trip, Dovecot serving an exported tar, mbox
//! files written by Dovecot (`doveadm save` into its mbox store) and by Python's `mailbox`
//! module, and a 20 MiB message with the peak memory checked.

mod common;

use std::path::Path;
use std::process::Command;

use common::imap::{PY_IMAP, script};
use common::{PY_PRELUDE, Server, text};

/// Fills alice's box on `server`: folders (one nested, one with a non-ASCII name), messages
/// with system flags, keywords and internal dates of their own.
const SEED: &str = r#"
deliver = lambda subject, body: send('sender@example.org', ['alice@home.test'], subject, body=body)
deliver("plain", "one\r\n")
deliver("flagged", "From the start of a line\r\n>From quoted\r\n")
deliver("deleted", "three\r\n")
m = imap_login()
ok(m.create("Work/2024"))
ok(m.create("Entw&APw-rfe"))
msg = lambda s: f"From: a@example.org\r\nSubject: {s}\r\n\r\nbody of {s}\r\n".encode()
ok(m.append("Work/2024", r"(\Seen $label1 Project)", imaplib.Time2Internaldate(1600000000), msg("w1")))
ok(m.append("Work/2024", r"(\Draft)", imaplib.Time2Internaldate(1500000000), msg("w2")))
ok(m.append("Entw&APw-rfe", r"(\Answered \Flagged NonJunk)", imaplib.Time2Internaldate(1400000000), msg("e1")))
ok(m.append("Sent", r"(\Seen)", imaplib.Time2Internaldate(1300000000), msg("s1")))
ok(m.select("INBOX"))
ok(m.store("2", "+FLAGS", r"(\Flagged $Junk)"))
ok(m.store("3", "+FLAGS", r"(\Deleted \Answered)"))
m.logout()
"#;

/// Prints every folder of an account as JSON: folder -> sorted [sha256 of the message, flags
/// without \Recent, internal date as Unix seconds]. argv: mode (letterbox | plain), port, user.
const DUMP: &str = r#"
import hashlib, json, datetime
mode, port, user = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if mode == "letterbox":
    m = imap_login(user)
else:
    m = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    m.login(user, PASSWORD)
folders = {}
for line in ok(m.list('""', "*")):
    found = re.match(rb'\((.*?)\) (NIL|"(.*?)") "?(.*?)"?$', line)
    assert found, line
    delim = found.group(3).decode() if found.group(3) else None
    name = found.group(4).decode()
    if rb"\Noselect" in found.group(1):
        continue
    key = name.replace(delim, "/") if delim else name
    typ, data = m.select('"' + name + '"', readonly=True)
    assert typ == "OK", (name, data)
    rows = []
    if int(data[0]) > 0:
        fetched = ok(m.uid("FETCH", "1:*", "(FLAGS INTERNALDATE BODY.PEEK[])"))
        for item in fetched:
            if not isinstance(item, tuple):
                continue
            head, body = item
            flags = sorted(f for f in re.search(rb"FLAGS \((.*?)\)", head).group(1).decode().split() if f != "\\Recent")
            date = re.search(rb'INTERNALDATE "(.*?)"', head).group(1).decode()
            epoch = int(datetime.datetime.strptime(date, "%d-%b-%Y %H:%M:%S %z").timestamp())
            rows.append([hashlib.sha256(body).hexdigest(), flags, epoch])
    folders[key] = sorted(rows)
m.logout()
print(json.dumps(folders, sort_keys=True))
"#;

fn dump(server: &Server, mode: &str, port: u16) -> serde_json::Value {
    let out = server.python_ok(&script(DUMP), &[mode, &port.to_string(), "alice@home.test"]);
    serde_json::from_str(out.trim()).expect("dump json")
}

fn seeded() -> Server {
    let server = Server::start();
    server.add_user("alice@home.test");
    server.python_ok(&script(SEED), &[]);
    server
}

fn cli_ok(server: &Server, args: &[&str]) -> String {
    let out = server.cli(args, None);
    assert!(
        out.status.success(),
        "letterbox {args:?}: {}\n{}\nserver log:\n{}",
        text(&out.stdout),
        text(&out.stderr),
        server.log()
    );
    text(&out.stdout)
}

/// The checks that make a dump worth comparing: what SEED put there is in it.
fn check_seeded(dump: &serde_json::Value) {
    let flags_of = |folder: &str| -> Vec<String> {
        dump[folder]
            .as_array()
            .unwrap_or_else(|| panic!("no folder {folder} in {dump}"))
            .iter()
            .map(|row| row[1].to_string())
            .collect()
    };
    assert_eq!(dump["INBOX"].as_array().map(Vec::len), Some(3), "{dump}");
    let inbox = flags_of("INBOX").join(" ");
    assert!(
        inbox.contains("$Junk") && inbox.contains("\\\\Deleted"),
        "{inbox}"
    );
    let work = flags_of("Work/2024").join(" ");
    assert!(
        work.contains("Project") && work.contains("\\\\Draft"),
        "{work}"
    );
    assert!(flags_of("Entw&APw-rfe").join(" ").contains("NonJunk"));
    let dates: Vec<i64> = dump["Work/2024"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| row[2].as_i64())
        .collect();
    assert!(
        dates.contains(&1_600_000_000) && dates.contains(&1_500_000_000),
        "{dates:?}"
    );
    assert_eq!(dump["Sent"].as_array().map(Vec::len), Some(1));
}

#[test]
fn a_round_trip_loses_no_message_flag_keyword_folder_or_date() {
    let source = seeded();
    let before = dump(&source, "letterbox", 0);
    check_seeded(&before);

    // While the daemon runs: it writes the file itself.
    let tar = source.dir.path().join("backup.tar");
    let said = cli_ok(&source, &["export", tar.to_str().expect("path")]);
    assert!(said.contains("exported 7 messages"), "{said}");
    assert!(!Path::new(&format!("{}.part", tar.display())).exists());

    let mut target = Server::start();
    target.add_user("alice@home.test");
    let said = cli_ok(&target, &["import", tar.to_str().expect("path")]);
    assert!(said.contains("imported 7 messages"), "{said}");
    assert_eq!(
        dump(&target, "letterbox", 0),
        before,
        "after import through the daemon"
    );

    // Offline, one account: the CLI opens the store itself. Importing again doubles each
    // folder, which shows the second import read everything too.
    let one = target.dir.path().join("alice.tar");
    target.stop();
    cli_ok(
        &target,
        &[
            "export",
            "--account",
            "alice@home.test",
            one.to_str().expect("path"),
        ],
    );
    cli_ok(&target, &["import", one.to_str().expect("path")]);
    target.launch();
    let doubled = dump(&target, "letterbox", 0);
    for (folder, rows) in before.as_object().expect("object") {
        let mut twice: Vec<serde_json::Value> = rows.as_array().expect("rows").clone();
        twice.extend(rows.as_array().expect("rows").iter().cloned());
        twice.sort_by_key(|row| row.to_string());
        let mut got = doubled[folder].as_array().cloned().unwrap_or_default();
        got.sort_by_key(|row| row.to_string());
        assert_eq!(got, twice, "{folder}");
    }

    // Files that cannot be read or written are named in the error.
    for (args, said) in [
        (
            ["import", "/nonexistent/x.tar"],
            "cannot read /nonexistent/x.tar",
        ),
        (
            ["export", "/nonexistent/x.tar"],
            "cannot write /nonexistent/x.tar.part",
        ),
    ] {
        let out = target.cli(&args, None);
        assert!(
            !out.status.success() && text(&out.stderr).contains(said),
            "{}",
            text(&out.stderr)
        );
    }
    // A tree that names no account needs --account; an unknown account is refused.
    let out = target.cli(
        &[
            "import",
            "--account",
            "nobody@home.test",
            one.to_str().expect("path"),
        ],
        None,
    );
    assert!(
        !out.status.success() && text(&out.stderr).contains("no such account"),
        "{}",
        text(&out.stderr)
    );
}

/// A private Dovecot on a free loopback port, serving the Maildirs under `mail`
/// (`mail/<user>/`), with `alice@home.test` and the tests' password. Stopped when dropped.
struct Dovecot {
    dir: std::path::PathBuf,
    port: u16,
}

impl Dovecot {
    fn start(dir: &Path, mail: &Path) -> Dovecot {
        assert!(
            Path::new("/usr/lib/dovecot/imap").exists(),
            "Dovecot is not installed: `bash .ci/install` installs dovecot-imapd"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        for sub in ["run", "state"] {
            std::fs::create_dir_all(dir.join(sub)).expect("dovecot dirs");
        }
        std::fs::write(
            dir.join("passwd"),
            format!("alice@home.test:{{PLAIN}}{}\n", common::PASSWORD),
        )
        .expect("passwd");
        let conf = format!(
            "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {d}/run\nstate_dir = {d}/state\n\
             instance_name = letterbox-export-{port}\nlog_path = {d}/dovecot.log\nssl = no\n\
             disable_plaintext_auth = no\nmail_location = maildir:{m}/%u\n\
             passdb {{\n  driver = passwd-file\n  args = username_format=%u {d}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid=65534 gid=65534 home={m}/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    port = {port}\n  }}\n  \
             inet_listener imaps {{\n    port = 0\n  }}\n}}\n",
            d = dir.display(),
            m = mail.display(),
        );
        // As root, Dovecot's mail and login processes must run as someone else (nobody);
        // otherwise everything runs as the user the tests run as.
        let conf = if current_uid() == 0 {
            let status = Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(mail)
                .status()
                .expect("chown");
            assert!(status.success());
            // nobody must reach the mail through the temporary directories above it.
            let mut up = mail.parent();
            while let Some(dir) = up.filter(|d| *d != Path::new("/")) {
                let _ = Command::new("chmod").arg("o+x").arg(dir).status();
                up = dir.parent();
            }
            conf
        } else {
            let me = text(&Command::new("id").arg("-un").output().expect("id").stdout);
            let me = me.trim();
            conf.replace("uid=65534 gid=65534", &format!("uid={me} gid={me}"))
                + &format!("default_login_user = {me}\ndefault_internal_user = {me}\n")
        };
        std::fs::write(dir.join("dovecot.conf"), conf).expect("conf");
        // The master forks into the background and keeps whatever it was given as output:
        // a pipe here would never close.
        let status = Command::new("dovecot")
            .arg("-c")
            .arg(dir.join("dovecot.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("dovecot");
        assert!(
            status.success(),
            "dovecot did not start; log:\n{}",
            std::fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default()
        );
        let dovecot = Dovecot {
            dir: dir.to_path_buf(),
            port,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "dovecot did not listen; log:\n{}",
                std::fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        dovecot
    }
}

fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("doveadm")
            .arg("-c")
            .arg(self.dir.join("dovecot.conf"))
            .arg("stop")
            .status();
    }
}

#[test]
fn dovecot_serves_an_exported_tar_as_it_was() {
    let source = seeded();
    let before = dump(&source, "letterbox", 0);
    check_seeded(&before);
    let tar = source.dir.path().join("backup.tar");
    cli_ok(&source, &["export", tar.to_str().expect("path")]);

    // GNU tar unpacks it (keeping the files' times); Dovecot reads the tree as it is.
    let mail = source.dir.path().join("mail");
    std::fs::create_dir_all(&mail).expect("mail dir");
    let out = Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&mail)
        .output()
        .expect("tar");
    assert!(out.status.success(), "tar: {}", text(&out.stderr));
    let maildir = mail.join("alice@home.test");
    for path in [
        "cur",
        "new",
        "tmp",
        ".Work.2024/cur",
        ".Entw&APw-rfe/dovecot-keywords",
    ] {
        assert!(maildir.join(path).exists(), "{path} in the export");
    }
    let dovecot = Dovecot::start(&source.dir.path().join("dovecot"), &mail);
    let served = dump(&source, "plain", dovecot.port);
    assert_eq!(served, before, "Dovecot's view of the export");
}

/// Writes an mbox with Python's `mailbox` module (someone else's writer): flags in Status and
/// X-Status, a keyword in X-Keywords as Dovecot writes it, a body line that starts "From ".
const WRITE_MBOX: &str = r#"
import mailbox, email.message
box = mailbox.mbox(sys.argv[1])
def add(subject, body, flags, when, extra=None):
    msg = mailbox.mboxMessage()
    msg["From"] = "grandma@example.org"
    msg["Subject"] = subject
    if extra:
        msg["X-Keywords"] = extra
    msg.set_payload(body)
    msg.set_flags(flags)
    msg.set_from("grandma@example.org", time.gmtime(when))
    box.add(msg)
add("first", "From the garden\nwith love\n", "RO", 1500000000)
add("second", "answered and flagged\n", "ROAF", 1500000100, "$Important")
add("third", "new\n", "", 1500000200)
box.flush()
box.close()
"#;

/// Checks alice's INBOX after the mbox import.
const CHECK_MBOX: &str = r#"
import datetime
m = imap_login()
ok(m.select("INBOX"))
fetched = [i for i in ok(m.fetch("1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")) if isinstance(i, tuple)]
assert len(fetched) == 3, fetched
want = [("first", {"\\Seen"}, 1500000000), ("second", {"\\Seen", "\\Answered", "\\Flagged", "$Important"}, 1500000100), ("third", set(), 1500000200)]
for (head, body), (subject, flags, when) in zip(fetched, want):
    got = set(re.search(rb"FLAGS \((.*?)\)", head).group(1).decode().split()) - {"\\Recent"}
    assert got == flags, (subject, got)
    date = re.search(rb'INTERNALDATE "(.*?)"', head).group(1).decode()
    assert int(datetime.datetime.strptime(date, "%d-%b-%Y %H:%M:%S %z").timestamp()) == when, (subject, date)
    assert f"Subject: {subject}\r\n".encode() in body, body
    assert b"Status:" not in body and b"X-Keywords" not in body, body
    assert b"\n" not in body.replace(b"\r\n", b""), "bare LF"
assert b"\r\n\r\nFrom the garden\r\nwith love\r\n" in fetched[0][1], fetched[0][1]
print("ok")
"#;

#[test]
fn an_mbox_written_by_python_is_imported_offline() {
    let mut server = Server::start();
    server.add_user("alice@home.test");
    let mbox = server.dir.path().join("grandma.mbox");
    let out = server.python(
        &format!("{PY_PRELUDE}{WRITE_MBOX}"),
        &[mbox.to_str().expect("path")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&mbox).expect("mbox");
    assert!(
        written.contains("\n>From the garden"),
        "Python escaped the line: {written}"
    );

    server.stop();
    let out = server.cli(&["import", mbox.to_str().expect("path")], None);
    assert!(
        !out.status.success() && text(&out.stderr).contains("--account"),
        "an mbox names no account: {}",
        text(&out.stderr)
    );
    let said = cli_ok(
        &server,
        &[
            "import",
            "--account",
            "alice@home.test",
            mbox.to_str().expect("path"),
        ],
    );
    assert!(said.contains("imported 3 messages"), "{said}");
    server.launch();
    assert_eq!(
        server
            .python_ok(&format!("{PY_PRELUDE}{PY_IMAP}{CHECK_MBOX}"), &[])
            .trim(),
        "ok"
    );
}

/// Dovecot's own mbox store, filled by `doveadm` (Dovecot's own writer, with its `X-IMAPbase`,
/// `X-UID`, `Content-Length` and a body line starting "From " left unescaped, as Dovecot
/// writes it), under `home`. Runs doveadm as the user itself: no Dovecot daemon, no userdb.
struct DovecotMbox {
    conf: std::path::PathBuf,
    home: std::path::PathBuf,
}

impl DovecotMbox {
    fn new(dir: &Path) -> DovecotMbox {
        assert!(
            Path::new("/usr/bin/doveadm").exists(),
            "Dovecot is not installed: `bash .ci/install` installs dovecot-imapd"
        );
        let home = dir.join("home");
        std::fs::create_dir_all(&home).expect("home");
        // As root, doveadm drops to the mail user: nobody, who must reach the home.
        let (uid, gid) = if current_uid() == 0 {
            let status = Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(&home)
                .status()
                .expect("chown");
            assert!(status.success());
            let mut up = home.parent();
            while let Some(dir) = up.filter(|d| *d != Path::new("/")) {
                let _ = Command::new("chmod").arg("o+x").arg(dir).status();
                up = dir.parent();
            }
            (65534, 65534)
        } else {
            // SAFETY: getgid has no preconditions and cannot fail.
            (current_uid(), unsafe { libc::getgid() })
        };
        let conf = dir.join("dovecot.conf");
        std::fs::write(
            &conf,
            format!(
                "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n\
                 ssl = no\nmail_location = mbox:~/mail:INBOX=~/inbox\nmbox_lazy_writes = no\n\
                 mail_uid = {uid}\nmail_gid = {gid}\n",
                d = dir.display()
            ),
        )
        .expect("conf");
        DovecotMbox { conf, home }
    }

    fn doveadm(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        use std::io::Write;
        let mut child = Command::new("doveadm")
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .env("USER", "alice")
            .env("HOME", &self.home)
            .env("TZ", "UTC")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("doveadm");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.unwrap_or_default()).expect("stdin");
        drop(input);
        let out = child.wait_with_output().expect("doveadm");
        assert!(
            out.status.success(),
            "doveadm {args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

/// Checks alice's INBOX after importing Dovecot's mbox: argv[1] is Dovecot's own view
/// (`doveadm fetch 'flags date.received'`), which every message must match.
const CHECK_DOVECOT_MBOX: &str = r#"
import datetime
dovecot = []
# doveadm's pager format ends each message's fields with a form feed.
for block in [b for b in sys.argv[1].split("\f") if b.strip()]:
    fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
    flags = set(fields.get("flags", "").split()) - {"\\Recent"}
    when = datetime.datetime.strptime(fields["date.received"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    dovecot.append((flags, int(when.timestamp())))
m = imap_login()
ok(m.select("INBOX"))
fetched = [i for i in ok(m.fetch("1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")) if isinstance(i, tuple)]
assert len(fetched) == len(dovecot) == 3, (fetched, dovecot)
for (head, body), (flags, when), subject in zip(fetched, dovecot, ["first", "second", "third"]):
    got = set(re.search(rb"FLAGS \((.*?)\)", head).group(1).decode().split()) - {"\\Recent"}
    assert got == flags, (subject, got, flags)
    date = re.search(rb'INTERNALDATE "(.*?)"', head).group(1).decode()
    assert int(datetime.datetime.strptime(date, "%d-%b-%Y %H:%M:%S %z").timestamp()) == when, (subject, date, when)
    assert f"Subject: {subject}\r\n".encode() in body, body
    for bookkeeping in (b"X-UID", b"X-IMAPbase", b"Status:", b"X-Keywords", b"Content-Length"):
        assert bookkeeping not in body, (bookkeeping, body)
assert fetched[0][1].endswith(b"\r\n\r\nFrom the garden\r\nwith love\r\n"), fetched[0][1]
assert fetched[1][1].endswith(b"\r\n\r\nanswered and flagged\r\n"), fetched[1][1]
print("ok")
"#;

#[test]
fn an_mbox_written_by_dovecot_is_imported_while_running() {
    let server = Server::start();
    server.add_user("alice@home.test");
    let dovecot = DovecotMbox::new(&server.dir.path().join("dovecot-mbox"));
    let messages: [&[u8]; 3] = [
        b"From: grandma@example.org\r\nSubject: first\r\n\r\nFrom the garden\r\nwith love\r\n",
        b"From: grandma@example.org\r\nSubject: second\r\n\r\nanswered and flagged\r\n",
        b"From: grandma@example.org\r\nSubject: third\r\n\r\nnew\r\n",
    ];
    for message in messages {
        dovecot.doveadm(&["save", "-m", "INBOX"], Some(message));
    }
    dovecot.doveadm(
        &["flags", "add", "\\Seen", "mailbox", "INBOX", "uid", "1"],
        None,
    );
    dovecot.doveadm(
        &[
            "flags",
            "add",
            "\\Seen \\Answered \\Flagged $Important",
            "mailbox",
            "INBOX",
            "uid",
            "2",
        ],
        None,
    );
    let view = dovecot.doveadm(&["fetch", "flags date.received", "mailbox", "INBOX"], None);
    let mbox = dovecot.home.join("inbox");
    let written = std::fs::read_to_string(&mbox).expect("Dovecot's mbox");
    assert!(
        written.contains("X-IMAPbase:") && written.contains("\nFrom the garden"),
        "Dovecot's own format: {written}"
    );

    let said = cli_ok(
        &server,
        &[
            "import",
            "--account",
            "alice@home.test",
            mbox.to_str().expect("path"),
        ],
    );
    assert!(said.contains("imported 3 messages"), "{said}");
    assert_eq!(
        server
            .python_ok(
                &format!("{PY_PRELUDE}{PY_IMAP}{CHECK_DOVECOT_MBOX}"),
                &[&view]
            )
            .trim(),
        "ok"
    );
}

/// Peak resident memory (VmHWM) of a process, in KiB.
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Runs the CLI and returns (its peak resident memory in KiB, its output).
fn cli_peak(server: &Server, args: &[&str]) -> (u64, String) {
    let measure = r#"
import resource, subprocess, sys
p = subprocess.run(sys.argv[1:], capture_output=True)
sys.stderr.write(p.stderr.decode())
assert p.returncode == 0, p.returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(p.stdout.decode())
"#;
    let mut argv = vec![
        common::BIN,
        "--config",
        server.config.to_str().expect("config"),
    ];
    argv.extend_from_slice(args);
    let out = server.python_ok(measure, &argv);
    let (peak, rest) = out.split_once('\n').expect("peak line");
    (peak.trim().parse().expect("kib"), rest.to_string())
}

const MIB: u64 = 1024;
const SMALL_CACHE: &str = "store_cache_size = \"1MiB\"";

#[test]
fn a_20_mib_message_goes_out_and_back_in_bounded_memory() {
    // redb's page cache is bounded by its own limit (16 MiB by default), which would hide
    // what the export and import themselves hold: keep it small here.
    let source = Server::start_with(SMALL_CACHE);
    source.add_user("alice@home.test");
    source.python_ok(
        &format!(
            "{PY_PRELUDE}\nline = 'x' * 998 + '\\r\\n'\nsend('a@example.org', ['alice@home.test'], 'big', body=line * (20 * 1024 * 1024 // 1000))"
        ),
        &[],
    );
    let daemon_before = peak_kib(source.pid());
    let tar = source.dir.path().join("big.tar");
    cli_ok(&source, &["export", tar.to_str().expect("path")]);
    let daemon_export = peak_kib(source.pid()) - daemon_before;
    let size = std::fs::metadata(&tar).expect("tar").len();
    assert!(size > 20 * 1024 * 1024, "the tar holds the message: {size}");

    let mut target = Server::start_with(SMALL_CACHE);
    target.add_user("alice@home.test");
    let daemon_before = peak_kib(target.pid());
    cli_ok(&target, &["import", tar.to_str().expect("path")]);
    let daemon_import = peak_kib(target.pid()) - daemon_before;
    target.stop();
    // The CLI's own footprint with the store open (offline) is the baseline.
    let (cli_base, _) = cli_peak(&target, &["user", "list"]);
    let small = target.dir.path().join("again.tar");
    let (cli_export, _) = cli_peak(&target, &["export", small.to_str().expect("path")]);
    let (cli_import, said) = cli_peak(&target, &["import", tar.to_str().expect("path")]);
    assert!(said.contains("imported 1 messages"), "{said}");
    println!(
        "peak growth (KiB): daemon export {daemon_export}, daemon import {daemon_import}; \
         CLI baseline {cli_base}, offline export {cli_export}, offline import {cli_import}"
    );
    // A 20 MiB message held whole anywhere would show as 20 MiB or more.
    assert!(
        daemon_export < 4 * MIB,
        "daemon export grew by {daemon_export} KiB"
    );
    assert!(
        daemon_import < 4 * MIB,
        "daemon import grew by {daemon_import} KiB"
    );
    assert!(
        cli_export < cli_base + 6 * MIB,
        "CLI export peaked at {cli_export} KiB"
    );
    assert!(
        cli_import < cli_base + 6 * MIB,
        "CLI import peaked at {cli_import} KiB"
    );
}

#[test]
fn mbsync_reads_an_exported_tar_into_another_box() {
    let source = seeded();
    let before = dump(&source, "letterbox", 0);
    check_seeded(&before);
    let tar = source.dir.path().join("backup.tar");
    cli_ok(&source, &["export", tar.to_str().expect("path")]);
    let mail = source.dir.path().join("mail");
    std::fs::create_dir_all(&mail).expect("mail dir");
    let out = Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&mail)
        .output()
        .expect("tar");
    assert!(out.status.success(), "tar: {}", text(&out.stderr));

    // mbsync pushes the exported Maildir++ tree to an empty box over IMAPS.
    let target = Server::start();
    target.add_user("alice@home.test");
    let tree = mail.join("alice@home.test");
    let rc = source.dir.path().join("mbsyncrc");
    std::fs::write(
        &rc,
        format!(
            "IMAPAccount letterbox\nHost localhost\nPort {port}\nUser alice@home.test\n\
             Pass \"{password}\"\nSSLType IMAPS\nCertificateFile {cert}\n\n\
             IMAPStore box\nAccount letterbox\n\n\
             MaildirStore export\nInbox {tree}\nSubFolders Maildir++\n\n\
             Channel push\nFar :box:\nNear :export:\nPatterns *\nCreate Far\nSync Push\n\
             SyncState {state}/\n",
            port = target.port("imaps"),
            password = common::PASSWORD,
            cert = target.cert().display(),
            tree = tree.display(),
            state = source.dir.path().display(),
        ),
    )
    .expect("mbsyncrc");
    let out = Command::new("mbsync")
        .arg("-c")
        .arg(&rc)
        .arg("push")
        .output()
        .expect("mbsync (Debian package isync): bash .ci/install");
    assert!(
        out.status.success(),
        "mbsync: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // mbsync 1.4 carries the folders, the messages and their system flags; not keywords, and
    // it adds its own X-TUID header and sends no INTERNALDATE with APPEND. Compare what it
    // carries: each folder's messages by their system flags.
    let system_only = |dump: &serde_json::Value| -> serde_json::Value {
        let mut dump = dump.clone();
        for rows in dump.as_object_mut().expect("object").values_mut() {
            for row in rows.as_array_mut().expect("rows") {
                *row = row[1]
                    .as_array()
                    .expect("flags")
                    .iter()
                    .filter(|f| f.as_str().is_some_and(|f| f.starts_with('\\')))
                    .cloned()
                    .collect();
            }
            let mut sorted = rows.as_array().expect("rows").clone();
            sorted.sort_by_key(|row| row.to_string());
            *rows = serde_json::Value::Array(sorted);
        }
        dump
    };
    assert_eq!(
        system_only(&dump(&target, "letterbox", 0)),
        system_only(&before),
        "the box mbsync filled from the export"
    );
}
