//! The data directory and the store file are private to the daemon whatever the umask (issue
//! #16 defect 6): they hold password hashes and everyone's mail.
//!
//! Alone in its own test binary because the umask belongs to the whole process.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::Server;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_store_is_private_under_an_open_umask() {
    // SAFETY: umask only swaps the process's file creation mask; no memory is involved.
    unsafe { libc::umask(0) };
    let dir = tempfile::tempdir().expect("tempdir");
    // One data directory made by hand, world-readable, and one the daemon makes itself.
    let made = dir.path().join("data");
    std::fs::create_dir(&made).expect("mkdir");
    std::fs::set_permissions(&made, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let server = Server::start_on(dir, "");
    let data = server.data_dir();
    assert_eq!(mode(&data), 0o700, "data directory");
    assert_eq!(mode(&data.join("letterbox.redb")), 0o600, "store file");

    let fresh_dir = tempfile::tempdir().expect("tempdir");
    let fresh = Server::start_on(fresh_dir, "");
    let data = fresh.data_dir();
    assert_eq!(mode(&data), 0o700, "data directory made by the daemon");
    assert_eq!(mode(&data.join("letterbox.redb")), 0o600, "store file");
}
