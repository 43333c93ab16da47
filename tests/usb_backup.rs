//! The backup to a USB drive, with a real file system on a loop device standing in for the
//! drive: ext4 labelled LETTERBOX-BACKUP.
//! `letterbox backup` (as the nightly run and the admin page's button do) finds the drive by
//! its label, mounts it, writes the dated tar, keeps the newest `[backup] keep`, unmounts it;
//! the tar is then imported into an empty box and every message is there.
//!
//! Loop devices need root; CI runs as root. Run as anyone else, the test fails (it does not
//! skip): a backup nobody tested is not a backup.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{PY_PRELUDE, Server, config_text, text};

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A file system on a loop device; the device is detached when dropped.
struct LoopDrive {
    device: String,
}

impl LoopDrive {
    fn new(image: &Path, kind: &str, label: &str) -> LoopDrive {
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        assert_eq!(
            uid, 0,
            "the USB backup test makes loop devices and mounts them: run it as root (CI does)"
        );
        std::fs::File::create(image)
            .and_then(|f| f.set_len(64 * 1024 * 1024))
            .expect("image file");
        let image_text = image.to_str().expect("path");
        run(
            &format!("mkfs.{kind}"),
            &["-q", "-F", "-L", label, image_text],
        );
        let device = run("losetup", &["-f", "--show", image_text])
            .trim()
            .to_string();
        assert!(device.starts_with("/dev/loop"), "{device}");
        LoopDrive { device }
    }
}

impl Drop for LoopDrive {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

fn is_mounted(dir: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/mounts").expect("/proc/mounts");
    let dir = dir.to_str().expect("path");
    mounts
        .lines()
        .any(|line| line.split_whitespace().nth(1) == Some(dir))
}

/// Mounts the drive read-only for a look, unmounted when dropped.
struct Look {
    dir: PathBuf,
}

impl Look {
    fn new(device: &str, dir: &Path) -> Look {
        std::fs::create_dir_all(dir).expect("look dir");
        run("mount", &["-o", "ro", device, dir.to_str().expect("path")]);
        Look {
            dir: dir.to_path_buf(),
        }
    }

    fn backups(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .expect("drive")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("letterbox-") && n.ends_with(".tar"))
            .collect();
        names.sort();
        names
    }
}

impl Drop for Look {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

/// Every message of alice's INBOX as sorted SHA-256 sums.
const SUMS: &str = r#"
import hashlib, imaplib
m = imaplib.IMAP4("localhost", int(os.environ["IMAP_PORT"]), timeout=30)
m.starttls(ssl_context=tls())
m.login("alice@home.test", PASSWORD)
typ, data = m.select("INBOX", readonly=True)
sums = []
if int(data[0]) > 0:
    typ, fetched = m.fetch("1:*", "(BODY.PEEK[])")
    sums = sorted(hashlib.sha256(item[1]).hexdigest() for item in fetched if isinstance(item, tuple))
print(" ".join(sums))
"#;

const DELIVER: &str = r#"
for n in range(int(sys.argv[1])):
    send("sender@example.org", ["alice@home.test"], f"message {n}", body=f"body {n}\r\n" * (n + 1))
"#;

fn sums(server: &Server) -> Vec<String> {
    server
        .python_ok(&format!("{PY_PRELUDE}{SUMS}"), &[])
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn backup_ok(server: &Server) -> String {
    let out = server.cli(&["backup"], None);
    assert!(
        out.status.success(),
        "letterbox backup: {}\nserver log:\n{}",
        text(&out.stderr),
        server.log()
    );
    text(&out.stdout)
}

/// Backs up three times to `drive` (keeping two), checks the drive is left unmounted, then
/// imports the newest backup into an empty box.
fn back_up_and_restore(kind: &str, label: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mount_dir = dir.path().join("backup-mount");
    let extra = format!(
        "\n[backup]\nkeep = 2\nmount_dir = \"{}\"\n",
        mount_dir.display()
    );
    let text_config = config_text(&dir.path().join("data"), &extra);
    let image = dir.path().join(format!("drive-{kind}.img"));
    let server = Server::start_config(dir, &text_config);
    server.add_user("alice@home.test");

    // No drive yet: the backup says so and fails.
    let out = server.cli(&["backup"], None);
    assert!(
        !out.status.success() && text(&out.stderr).contains("No drive labelled LETTERBOX-BACKUP"),
        "{}",
        text(&out.stderr)
    );

    let drive = LoopDrive::new(&image, kind, label);
    server.python_ok(&format!("{PY_PRELUDE}{DELIVER}"), &["5"]);
    let before = sums(&server);
    assert_eq!(before.len(), 5);
    let mut said = Vec::new();
    for _ in 0..3 {
        said.push(backup_ok(&server));
        assert!(!is_mounted(&mount_dir), "the drive stays mounted");
    }
    assert!(
        said[0].starts_with("5 messages written to letterbox-"),
        "{said:?}"
    );
    assert!(said[2].contains("1 older backup(s) removed"), "{said:?}");
    // A backup cut short left the drive mounted: the next one unmounts it first.
    run("mount", &[&drive.device, mount_dir.to_str().expect("path")]);
    said.push(backup_ok(&server));
    assert!(!is_mounted(&mount_dir), "the drive stays mounted");

    // The admin page's source: the status names the last backup.
    let status = text(&server.cli(&["status"], None).stdout);
    assert!(
        status.contains("backup ") && status.contains("5 messages written"),
        "{status}"
    );

    let look_dir = server.dir.path().join("look");
    let restored = {
        let look = Look::new(&drive.device, &look_dir);
        let names = look.backups();
        assert_eq!(names.len(), 2, "keep = 2: {names:?}");
        let newest = names.last().expect("a backup");
        assert!(said[3].contains(newest.as_str()), "{said:?} {names:?}");
        let copy = server.dir.path().join("restored.tar");
        std::fs::copy(look.dir.join(newest), &copy).expect("copy the backup");
        copy
    };
    drop(drive);

    let target = Server::start();
    target.add_user("alice@home.test");
    let out = target.cli(&["import", restored.to_str().expect("path")], None);
    assert!(out.status.success(), "import: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("imported 5 messages"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(sums(&target), before, "every message came back");
}

/// ext4 only: the kernels CI runs on (a Firecracker VM's among them) may have no vfat; the
/// FAT form of the label is covered by `backup::drive`'s unit test.
#[test]
fn backups_go_to_a_usb_drive_and_come_back() {
    back_up_and_restore("ext4", "LETTERBOX-BACKUP");
}
