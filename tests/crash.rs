//! Durability: a message acknowledged with 250 is in the store after SIGKILL and a restart.
//! And the restart is quick when the kill found the box idle: the store had recorded what a
//! full check of the file would have rebuilt.

mod common;

use common::{PY_PRELUDE, Server};

#[test]
fn sigkill_during_deliveries_loses_no_acknowledged_message() {
    let mut server = Server::start();
    server.add_user("alice@home.test");
    let log = server.dir.path().join("acked.txt");
    // Four clients deliver as fast as they can; each 250 is logged before the next message.
    let sender = format!(
        r#"{PY_PRELUDE}
import threading
log = open(sys.argv[1], "a", buffering=1)
lock = threading.Lock()
def client(n):
    i = 0
    while True:
        try:
            s = smtplib.SMTP("localhost", SMTP_PORT, timeout=30)
            s.ehlo("crash.test")
            while True:
                subject = f"crash-{{n}}-{{i}}"
                s.sendmail("a@example.org", ["alice@home.test"],
                           f"Subject: {{subject}}\r\n\r\n" + "payload line\r\n" * 200)
                with lock:
                    log.write(subject + "\n")
                i += 1
        except Exception:
            return
threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
for t in threads: t.start()
for t in threads: t.join()
"#
    );
    let log_arg = log.display().to_string();
    let child_script = sender.clone();
    let ports = server.ports.clone();
    let cert = server.cert();
    let mut client = std::process::Command::new("python3");
    client.arg("-c").arg(&child_script).arg(&log_arg);
    for (service, addr) in &ports {
        client.env(
            format!("{}_PORT", service.to_uppercase()),
            addr.port().to_string(),
        );
    }
    let mut client = client
        .env("CERT", cert)
        .env("PASSWORD", common::PASSWORD)
        .spawn()
        .expect("client");
    // Let deliveries run, then pull the plug mid-stream.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let acked = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count();
        if acked >= 40 || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    server.kill();
    let _ = client.wait();
    let acked: Vec<String> = std::fs::read_to_string(&log)
        .expect("log")
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        acked.len() >= 40,
        "deliveries were running: {}",
        acked.len()
    );

    server.launch();
    // Killed mid-stream, the store gets (and says it gets) the check of the whole file.
    assert!(
        server.log().contains("not closed cleanly"),
        "{}",
        server.log()
    );
    let reader = format!(
        "{PY_PRELUDE}\np = pop3_login('alice@home.test')\nfor i in range(p.stat()[0]):\n    for l in p.top(i + 1, 0)[1]:\n        if l.startswith(b'Subject: '): print(l[9:].decode())\np.quit()"
    );
    let stored = server.python_ok(&reader, &[]);
    let stored: std::collections::HashSet<&str> = stored.lines().collect();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|s| !stored.contains(s.as_str()))
        .collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    // At most one message per client was in flight; nothing else may appear.
    assert!(stored.len() <= acked.len() + 4);
}

/// Whether opening the redb file at `path` needs redb's check of the whole file; either way
/// the file it opens is consistent (redb's integrity check: checksums, and the allocator's
/// state, recorded or rebuilt, against the trees).
fn needs_check(path: &std::path::Path) -> bool {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let checked = Arc::new(AtomicBool::new(false));
    let seen = checked.clone();
    let mut db = redb::Database::builder()
        .set_repair_callback(move |_| seen.store(true, Ordering::Relaxed))
        .create(path)
        .expect("the store opens");
    assert!(
        db.check_integrity().expect("integrity check"),
        "{} is not consistent",
        path.display()
    );
    drop(db);
    checked.load(Ordering::Relaxed)
}

/// A power cut while the box is idle (nearly always) leaves a store that opens without the
/// check of the whole file, which on a Pi's card takes minutes for a household's mail: once
/// the store file has been quiet for a moment the daemon records redb's allocator state.
#[test]
fn a_power_cut_while_idle_leaves_a_store_that_opens_without_the_full_check() {
    let mut server = Server::start();
    server.add_user("alice@home.test");
    let store = server.data_dir().join("letterbox.redb");
    let copy = server.dir.path().join("as-a-power-cut-would-leave-it.redb");
    let mut smtp = common::Raw::connect(server.addr("smtp"));
    assert!(smtp.line().starts_with("220 "));
    for command in [
        "EHLO idle.test",
        "MAIL FROM:<a@example.org>",
        "RCPT TO:<alice@home.test>",
        "DATA",
    ] {
        let reply = smtp.cmd(command);
        assert!(
            reply.starts_with('2') || reply.starts_with('3'),
            "{command}: {reply}"
        );
    }
    assert!(
        smtp.cmd("Subject: idle\r\n\r\nquiet now\r\n.")
            .starts_with("250 ")
    );
    // A copy of the file is what a cut at that moment would leave: every commit is in it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        std::fs::copy(&store, &copy).expect("copy");
        if !needs_check(&copy) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the store never recorded its state; log:\n{}",
            server.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    server.kill();
    assert!(
        !needs_check(&store),
        "the killed store opens without the check"
    );
    server.launch();
    assert!(
        !server.log().contains("not closed cleanly"),
        "{}",
        server.log()
    );
    let count = server.python_ok(
        &format!("{PY_PRELUDE}\np = pop3_login('alice@home.test')\nprint(p.stat()[0])\np.quit()"),
        &[],
    );
    assert_eq!(count.trim(), "1");
}
