//! What the outbound tests share: the peers' DNS zone, a Letterbox pointed at them, and
//! alice's submissions, queue and INBOX.

use std::time::{Duration, Instant};

use super::peers::Peers;
use super::{PY_PRELUDE, Server, config_text, text};

pub const ZONE: &str = "\
remote.test.      60 IN MX 10 mx.remote.test.
mx.remote.test.   60 IN A  127.0.0.1
alias.test.       60 IN MX 10 mail.alias.test.
mail.alias.test.  60 IN CNAME mx.remote.test.
implicit.test.    60 IN A  127.0.0.1
nullmx.test.      60 IN MX 0 .
unreachable.test. 60 IN MX 10 dead.unreachable.test.
dead.unreachable.test. 60 IN A 127.0.0.2
localhost.        60 IN A  127.0.0.1
";

/// A Letterbox whose DNS and MX port point at the peers; `outbound` is added to [outbound].
pub fn start(peers: &Peers, outbound: &str) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = config_text(&dir.path().join("data"), "");
    text.push_str(&format!(
        "\n[dns]\nnameservers = [\"127.0.0.1:{}\"]\n\n[outbound]\nmx_port = {}\n{outbound}\n",
        peers.dns_port, peers.smtp_port
    ));
    let server = Server::start_config(dir, &text);
    server.add_user("alice@home.test");
    server
}

/// Submits a message as alice. Its body has a line with a leading dot (stuffed on the way
/// out) and ends in a whitespace-only line, which DKIM's relaxed canonicalization drops
/// (the receiver's dkimpy checks the signature).
pub fn submit(server: &Server, to: &[&str], subject: &str) {
    let script = format!(
        r#"{PY_PRELUDE}
s = smtplib.SMTP("localhost", int(os.environ["SUBMISSION_PORT"]), timeout=30)
s.starttls(context=tls())
s.login("alice@home.test", PASSWORD)
to = sys.argv[2:]
s.sendmail("alice@home.test", to, f"From: Alice <alice@home.test>\r\nTo: {{', '.join(to)}}\r\nSubject: {{sys.argv[1]}}\r\n\r\nHello.\r\n.leading dot\r\n \t\r\n")
s.quit()
"#
    );
    let mut args = vec![subject];
    args.extend_from_slice(to);
    server.python_ok(&script, &args);
}

pub fn queue(server: &Server) -> serde_json::Value {
    let out = server.cli(&["queue", "list", "--json"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("queue json")
}

pub fn wait_until(what: &str, server: &Server, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn inbox(server: &Server, user: &str) -> Vec<String> {
    let script = format!(
        "{PY_PRELUDE}\np = pop3_login(sys.argv[1])\nfor i in range(p.stat()[0]):\n    print(b'\\n'.join(p.retr(i + 1)[1]).decode())\n    print('=====')\np.quit()"
    );
    let all = server.python_ok(&script, &[user]);
    all.split("=====\n")
        .filter(|m| !m.trim().is_empty())
        .map(str::to_string)
        .collect()
}
