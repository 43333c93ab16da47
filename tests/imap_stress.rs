//! The model-checking IMAP stress test (issue #10): tests/imap_stress.py runs several sessions
//! on one mailbox at once (plain IMAP4rev1, IMAP4rev2, CONDSTORE and QRESYNC), plus SMTP
//! deliveries into it, and checks every response each session reads against a model of what
//! that session may know, and a POP3 session reading and deleting in the same INBOX
//! (tests/stress_pop3.py) checks that both protocols see the same message under each UID. See
//! the top of tests/imap_stress.py and tests/stress_pop3.py for the rules they check.
//!
//! Bounded for CI: about 40 s of load. Longer or repeatable on demand:
//!
//! ```sh
//! IMAP_STRESS_SECONDS=600 cargo test --test imap_stress -- --nocapture
//! IMAP_STRESS_SEED=1234 cargo test --test imap_stress -- --nocapture
//! IMAP_STRESS_KEEP_GOING=1 cargo test --test imap_stress -- --nocapture   # count every kind
//! ```
//!
//! IMAP_STRESS_SESSIONS sets the number of sessions (default 5). The script prints its seed
//! first; on a violation it prints the seed, the session, the rule and the session's
//! transcript tail, and the test fails.

mod common;

use common::{PASSWORD, Server, text};
use std::process::Command;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/imap_stress.py");

#[test]
fn sessions_on_one_mailbox_agree_with_their_models() {
    let server = Server::start();
    server.add_user("alice@home.test");
    // The script reads IMAP_STRESS_SECONDS, _SEED, _SESSIONS and _KEEP_GOING itself: they pass
    // through from this test's environment.
    let out = Command::new("python3")
        .arg(SCRIPT)
        .args(["--user", "alice@home.test", "--tls", "implicit"])
        .env("IMAPS_PORT", server.port("imaps").to_string())
        .env("SMTP_PORT", server.port("smtp").to_string())
        .env("POP3S_PORT", server.port("pop3s").to_string())
        .env("CERT", server.cert())
        .env("PASSWORD", PASSWORD)
        .output()
        .expect("python3");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("imap_stress: no violation"),
        "the IMAP stress test found a violation (exit {:?}):\n{stdout}\n{}\nserver log tail:\n{}",
        out.status.code(),
        text(&out.stderr),
        tail(&server.log(), 60)
    );
    println!("{stdout}");
}

fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
