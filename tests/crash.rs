//! Durability: a message acknowledged with 250 is in the store after SIGKILL and a restart.

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
