//! IMAP with real clients over IMAPS with certificate verification:
//! - mbsync (isync) copies the account to a local Maildir, then carries local changes (flags,
//!   a deletion, a new draft) back to the server;
//! - neomutt, driven through its screen inside a detached tmux session, lists the INBOX, shows
//!   a message, flags one, copies one to another folder and deletes one; the server's state is
//!   then checked with Python's imaplib.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{PASSWORD, PY_PRELUDE, Server, text};

/// True if `program arg` runs and exits 0 (used to name a missing package clearly).
fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn mbsync_available() -> bool {
    runs("mbsync", "--version")
}

#[test]
fn mbsync_syncs_to_a_maildir_and_back() {
    assert!(
        mbsync_available(),
        "mbsync (Debian package isync) is needed: bash .ci/install"
    );
    let server = Server::start();
    server.add_user("alice@home.test");
    let local = server.dir.path().join("mail");
    std::fs::create_dir_all(&local).expect("maildir root");
    let rc = server.dir.path().join("mbsyncrc");
    std::fs::write(
        &rc,
        format!(
            r#"IMAPAccount letterbox
Host localhost
Port {port}
User alice@home.test
Pass "{PASSWORD}"
SSLType IMAPS
CertificateFile {cert}

IMAPStore remote
Account letterbox

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
"#,
            port = server.port("imaps"),
            cert = server.cert().display(),
            local = local.display(),
        ),
    )
    .expect("mbsyncrc");
    let script = format!(
        r#"{PY_PRELUDE}
import imaplib, subprocess, glob
IMAPS_PORT = int(os.environ["IMAPS_PORT"])
rc, local = sys.argv[1], sys.argv[2]
for subject in ["one", "two"]:
    send("sender@example.org", ["alice@home.test"], subject)
m = imaplib.IMAP4_SSL("localhost", IMAPS_PORT, ssl_context=tls(), timeout=30)
m.login("alice@home.test", PASSWORD)
m.append("Archive", None, None, b"From: a@b.test\r\nSubject: archived\r\n\r\nold\r\n")
def mbsync():
    out = subprocess.run(["mbsync", "-c", rc, "-a"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (out.stdout, out.stderr)
def files(folder):
    return sorted(glob.glob(f"{{local}}/{{folder}}/cur/*") + glob.glob(f"{{local}}/{{folder}}/new/*"))
mbsync()
inbox = files("INBOX")
assert len(inbox) == 2, inbox
assert len(files("Archive")) == 1, files("Archive")
for folder in ["Sent", "Drafts", "Trash", "Junk"]:
    assert os.path.isdir(f"{{local}}/{{folder}}/cur"), folder
# mbsync stores messages with LF line ends.
bodies = {{open(f, "rb").read().split(b"Subject: ")[1].split(b"\n")[0].strip(): f for f in inbox}}
# Local changes: flag "one" seen+flagged, delete "two", write a new draft.
one = bodies[b"one"]
base = os.path.basename(one).split(":2,")[0]
os.rename(one, f"{{local}}/INBOX/cur/{{base}}:2,FS")
os.remove(bodies[b"two"])
with open(f"{{local}}/Drafts/new/{{int(time.time())}}.draft.local", "wb") as f:
    f.write(b"From: alice@home.test\nSubject: written offline\n\nhello\n")
mbsync()
m.select("INBOX")
typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
assert typ == "OK", data
messages = [d for d in data if isinstance(d, tuple)]
assert len(messages) == 1, data
assert b"\\Seen" in messages[0][0] and b"\\Flagged" in messages[0][0], messages
assert messages[0][1] == b"Subject: one\r\n\r\n", messages
m.select("Drafts")
typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
assert data[0][1] == b"Subject: written offline\r\n\r\n", data
# A third run changes nothing.
mbsync()
assert len(files("INBOX")) == 1
m.logout()
print("synced")
"#
    );
    let out = server.python(
        &script,
        &[&rc.display().to_string(), &local.display().to_string()],
    );
    assert!(
        out.status.success() && text(&out.stdout).contains("synced"),
        "{}\n{}\nserver log:\n{}",
        text(&out.stdout),
        text(&out.stderr),
        server.log()
    );
}

/// How long one step of the neomutt session may take before the test gives up. Each step
/// waits for text on the screen, so a healthy run takes well under a second per step.
const SCREEN_DEADLINE: Duration = Duration::from_secs(60);

/// neomutt running in a detached tmux session on a private tmux server, whose socket lives in
/// the test's directory (`tmux -S`); the tmux server (and with it neomutt) is killed when this
/// is dropped, also when a step fails.
struct Terminal<'a> {
    socket: PathBuf,
    /// neomutt's exit status is written here (tmux itself sometimes loses it).
    exit_file: PathBuf,
    server: &'a Server,
}

impl<'a> Terminal<'a> {
    const SESSION: &'static str = "neomutt";

    /// Starts `neomutt -n -F rc` in a 120x40 pane with HOME in the test's directory.
    fn neomutt(server: &'a Server, rc: &Path) -> Terminal<'a> {
        let terminal = Terminal {
            socket: server.dir.path().join("tmux.sock"),
            exit_file: server.dir.path().join("neomutt.exit"),
            server,
        };
        let home = format!("HOME={}", server.dir.path().display());
        let rc = rc.display().to_string();
        let exit_file = terminal.exit_file.display().to_string();
        // remain-on-exit keeps neomutt's last screen for the failure report if it exits early.
        let out = terminal.tmux(&[
            "start-server",
            ";",
            "set-option",
            "-g",
            "remain-on-exit",
            "on",
            ";",
            "new-session",
            "-d",
            "-s",
            Self::SESSION,
            "-x",
            "120",
            "-y",
            "40",
            "--",
            "env",
            &home,
            "sh",
            "-c",
            r#"neomutt -n -F "$1"; echo "$?" > "$2""#,
            "sh",
            &rc,
            &exit_file,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            text(&out.stderr)
        );
        terminal
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-f", "/dev/null", "-S"])
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux")
    }

    /// The visible screen as text, followed by `[neomutt exited with status N]` once it has.
    fn screen(&self) -> String {
        let out = self.tmux(&["capture-pane", "-p", "-t", Self::SESSION]);
        let mut screen = if out.status.success() {
            text(&out.stdout)
        } else {
            format!("(tmux capture-pane failed: {})", text(&out.stderr))
        };
        let status = std::fs::read_to_string(&self.exit_file).unwrap_or_default();
        if !status.trim().is_empty() {
            screen.push_str(&format!(
                "\n[neomutt exited with status {}]\n",
                status.trim()
            ));
        }
        screen
    }

    /// Types `keys` as tmux key names (`Enter`, `C-u`, or single characters).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", Self::SESSION];
        args.extend_from_slice(keys);
        let out = self.tmux(&args);
        assert!(out.status.success(), "send-keys: {}", text(&out.stderr));
    }

    /// Types `literal` character by character, with no key-name interpretation.
    fn type_text(&self, literal: &str) {
        let out = self.tmux(&["send-keys", "-t", Self::SESSION, "-l", literal]);
        assert!(out.status.success(), "send-keys -l: {}", text(&out.stderr));
    }

    /// Polls the screen until `done` holds; panics with the screen and the server log after
    /// SCREEN_DEADLINE, or at once if neomutt asks about the certificate or has exited.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return;
            }
            let why = if screen.contains("SSL Certificate check") {
                Some("neomutt does not trust the server's certificate".to_string())
            } else if screen.contains("[neomutt exited") {
                Some("neomutt has exited".to_string())
            } else if start.elapsed() > SCREEN_DEADLINE {
                Some(format!("gave up after {SCREEN_DEADLINE:?}"))
            } else {
                None
            };
            if let Some(why) = why {
                panic!(
                    "waiting for {what}: {why}\n--- neomutt screen ---\n{screen}\n--- server log ---\n{}",
                    self.server.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Moves the index cursor (`arrow_cursor`, "->") to the message with this subject by
    /// searching for it.
    fn select(&self, subject: &str) {
        self.keys(&["/"]);
        self.wait_for("the search prompt", |s| s.contains("Search for:"));
        self.type_text(subject);
        self.keys(&["Enter"]);
        self.wait_for(&format!("the cursor on {subject:?}"), |s| {
            cursor_line(s).is_some_and(|line| line.contains(subject))
        });
    }
}

impl Drop for Terminal<'_> {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// The index line the cursor is on.
fn cursor_line(screen: &str) -> Option<&str> {
    screen
        .lines()
        .find(|line| line.trim_start().starts_with("->"))
}

#[test]
fn neomutt_reads_flags_copies_and_deletes_over_imaps() {
    assert!(
        runs("neomutt", "-v"),
        "neomutt (Debian package neomutt) is needed: bash .ci/install"
    );
    assert!(
        runs("tmux", "-V"),
        "tmux (Debian package tmux) is needed to drive neomutt: bash .ci/install"
    );
    let server = Server::start();
    server.add_user("alice@home.test");
    server.python_ok(
        &format!(
            r#"{PY_PRELUDE}
send("bob@example.org", ["alice@home.test"], "Lunch on Friday", "See you at noon by the river.\r\n")
send("carol@example.org", ["alice@home.test"], "Garden photos", "The roses are out.\r\n")
send("news@example.org", ["alice@home.test"], "Old newsletter", "Nothing to keep.\r\n")
"#
        ),
        &[],
    );
    let tmp = server.dir.path().join("neomutt-tmp");
    std::fs::create_dir_all(&tmp).expect("neomutt tmpdir");
    let rc = server.dir.path().join("neomuttrc");
    // The server's self-signed certificate is trusted through `certificate_file`; without it
    // neomutt stops at "SSL Certificate check", which fails the test at once.
    // `timeout = 1` wakes neomutt every second, so the index is redrawn after a sync.
    std::fs::write(
        &rc,
        format!(
            r#"set folder = "imaps://localhost:{port}/"
set imap_user = "alice@home.test"
set imap_pass = "{PASSWORD}"
set spoolfile = "+INBOX"
set certificate_file = "{cert}"
set ssl_force_tls = yes
set header_cache = ""
set message_cachedir = ""
set tmpdir = "{tmp}"
set record = ""
set move = no
set mark_old = no
set resolve = no
set arrow_cursor = yes
set confirmappend = no
set delete = yes
set wait_key = no
set timeout = 1
"#,
            port = server.port("imaps"),
            cert = server.cert().display(),
            tmp = tmp.display(),
        ),
    )
    .expect("neomuttrc");

    let neomutt = Terminal::neomutt(&server, &rc);
    let subjects = ["Lunch on Friday", "Garden photos", "Old newsletter"];
    neomutt.wait_for("the INBOX index with the three messages", |s| {
        s.contains("+INBOX [Msgs:3") && subjects.iter().all(|subject| s.contains(subject))
    });

    // Open a message: the pager shows its header and body.
    neomutt.select("Lunch on Friday");
    neomutt.keys(&["Enter"]);
    neomutt.wait_for("the message in the pager", |s| {
        s.contains("Subject: Lunch on Friday") && s.contains("See you at noon by the river.")
    });
    neomutt.keys(&["q"]);
    neomutt.wait_for("the index again", |s| {
        cursor_line(s).is_some_and(|line| line.contains("Lunch on Friday"))
    });

    // Flag it (F); neomutt stores \Flagged (and the \Seen from reading) when it syncs.
    neomutt.keys(&["F"]);
    neomutt.wait_for("Flag:1 in the status line", |s| s.contains("Flag:1"));

    // Copy another message to =Archive (C, then the folder name in place of the suggestion).
    neomutt.select("Garden photos");
    neomutt.keys(&["C"]);
    neomutt.wait_for("the copy prompt", |s| s.contains("Copy to mailbox"));
    neomutt.keys(&["C-u"]);
    neomutt.type_text("=Archive");
    neomutt.keys(&["Enter"]);
    neomutt.wait_for("the copy to finish", |s| !s.contains("Copy to mailbox"));

    // Delete the third (d) and sync ($): neomutt expunges it on the server.
    neomutt.select("Old newsletter");
    neomutt.keys(&["d"]);
    neomutt.wait_for("Del:1 in the status line", |s| s.contains("Del:1"));
    neomutt.keys(&["$"]);
    neomutt.wait_for("the index without the deleted message", |s| {
        s.contains("+INBOX [Msgs:2") && !s.contains("Old newsletter")
    });

    // Quit; neomutt writes any pending changes first.
    neomutt.keys(&["q"]);
    neomutt.wait_for("neomutt to exit", |s| {
        s.contains("[neomutt exited with status 0]")
    });
    drop(neomutt);

    let out = server.python_ok(
        &format!(
            r#"{PY_PRELUDE}
import imaplib
IMAPS_PORT = int(os.environ["IMAPS_PORT"])
m = imaplib.IMAP4_SSL("localhost", IMAPS_PORT, ssl_context=tls(), timeout=30)
m.login("alice@home.test", PASSWORD)
def messages(folder):
    typ, data = m.select(folder, readonly=True)
    assert typ == "OK", data
    if int(data[0]) == 0:
        return {{}}
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT])")
    assert typ == "OK", data
    found = {{}}
    for item in data:
        if isinstance(item, tuple) and b"HEADER.FIELDS" in item[0]:
            subject = item[1].decode().split(":", 1)[1].strip()
            flags = item[0].split(b"FLAGS (")[1].split(b")")[0].decode().split()
            found[subject] = flags
        elif isinstance(item, tuple):
            bodies.append(item[1])
    return found
bodies = []
inbox = messages("INBOX")
assert sorted(inbox) == ["Garden photos", "Lunch on Friday"], inbox
assert "\\Flagged" in inbox["Lunch on Friday"] and "\\Seen" in inbox["Lunch on Friday"], inbox
assert "\\Flagged" not in inbox["Garden photos"], inbox
bodies.clear()
archive = messages("Archive")
assert list(archive) == ["Garden photos"], archive
assert bodies == [b"The roses are out.\r\n"], bodies
typ, folders = m.list()
assert typ == "OK", folders
for line in folders:
    name = line.decode().rsplit(" ", 1)[1].strip('"')
    assert "Old newsletter" not in messages(name), (name, "still has the deleted message")
m.logout()
print("checked")
"#
        ),
        &[],
    );
    assert!(out.contains("checked"), "{out}");
}
