//! IMAP with a real synchronizer: mbsync (isync) copies the account to a local Maildir over
//! IMAPS with certificate verification, then carries local changes (flags, a deletion, a new
//! draft) back to the server.

mod common;

use common::{PASSWORD, PY_PRELUDE, Server, text};

fn mbsync_available() -> bool {
    std::process::Command::new("mbsync")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
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
