//! SPF, DKIM and DMARC on mail received on port 25, against a real DNS server on loopback
//! (tests/peers.py) publishing the senders' records; the message is DKIM-signed by dkimpy.

mod common;

use std::process::Command;

use common::peers::Peers;
use common::{PY_PRELUDE, Server, config_text, text};

/// A 2048-bit RSA key made with openssl: (private key PEM, public key base64 for DNS).
fn dkim_key(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let private = dir.join("dkim.pem");
    let made = Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&private)
        .arg("2048")
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{}", text(&made.stderr));
    let public = Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&private)
        .output()
        .expect("openssl");
    let base64: String = text(&public.stdout)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    (private, base64)
}

/// TXT data split into DNS strings of at most 255 characters.
fn txt(data: &str) -> String {
    data.as_bytes()
        .chunks(200)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn start(peers: &Peers, dir: tempfile::TempDir) -> Server {
    let mut config = config_text(&dir.path().join("data"), "").replace(
        "check_inbound = false",
        "check_inbound = true\nreject_dmarc_failures = true",
    );
    config.push_str(&format!(
        "\n[dns]\nnameservers = [\"127.0.0.1:{}\"]\n",
        peers.dns_port
    ));
    let server = Server::start_config(dir, &config);
    server.add_user("alice@home.test");
    server
}

/// Sends one message on port 25 from `sender`, DKIM-signed with `key` for `sign_domain` if
/// given, with `forged` header lines on top; returns the final reply code and text.
fn send(
    server: &Server,
    sender: &str,
    key: Option<(&std::path::Path, &str)>,
    forged: &str,
) -> String {
    let script = format!(
        r#"{PY_PRELUDE}
import subprocess
sender, key, domain, forged = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
# The body ends in a whitespace-only line, which DKIM's relaxed canonicalization drops.
message = (forged + f"From: {{sender}}\r\nTo: alice@home.test\r\nSubject: from {{sender}}\r\n"
           "Message-ID: <1@x>\r\nDate: Mon, 23 Nov 2026 01:00:00 +0000\r\n\r\nHello.\r\n \r\n").encode()
if key:
    # dkimpy is Debian's python3-dkim: run it with Debian's interpreter.
    # relaxed/relaxed, as Gmail and Microsoft sign.
    signer = "import dkim, sys; sys.stdout.buffer.write(dkim.sign(sys.stdin.buffer.read(), b'sel', sys.argv[2].encode(), open(sys.argv[1], 'rb').read(), canonicalize=(b'relaxed', b'relaxed')))"
    header = subprocess.run(["/usr/bin/python3", "-c", signer, key, domain], input=message, capture_output=True, check=True).stdout
    message = header + message
s = smtplib.SMTP("localhost", SMTP_PORT, timeout=60)
s.ehlo("mx.sender.test")
s.mail(sender)
s.rcpt("alice@home.test")
code, text = s.data(message)
print(code, text.decode())
s.quit()
"#
    );
    let (key_path, domain) = match key {
        Some((path, domain)) => (path.display().to_string(), domain.to_string()),
        None => (String::new(), String::new()),
    };
    server.python_ok(&script, &[sender, &key_path, &domain, forged])
}

fn inbox(server: &Server) -> String {
    let script = format!(
        "{PY_PRELUDE}\np = pop3_login('alice@home.test')\nfor i in range(p.stat()[0]):\n    print(b'\\n'.join(p.retr(i + 1)[1]).decode())\n    print('=====')\np.quit()"
    );
    server.python_ok(&script, &[])
}

#[test]
fn verdicts_are_recorded_and_dmarc_reject_is_enforced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (private, public) = dkim_key(dir.path());
    let zone = format!(
        "sender.test. 60 IN TXT \"v=spf1 ip4:127.0.0.1 -all\"\n\
         _dmarc.sender.test. 60 IN TXT \"v=DMARC1; p=reject\"\n\
         sel._domainkey.sender.test. 60 IN TXT {}\n\
         spoofed.test. 60 IN TXT \"v=spf1 ip4:192.0.2.1 -all\"\n\
         _dmarc.spoofed.test. 60 IN TXT \"v=DMARC1; p=reject\"\n\
         lax.test. 60 IN TXT \"v=spf1 ip4:192.0.2.1 -all\"\n\
         _dmarc.lax.test. 60 IN TXT \"v=DMARC1; p=none\"\n",
        txt(&format!("v=DKIM1; k=rsa; p={public}"))
    );
    let peers = Peers::start(&zone);
    let server = start(&peers, dir);

    let signed = send(
        &server,
        "news@sender.test",
        Some((&private, "sender.test")),
        "",
    );
    assert!(signed.starts_with("250"), "{signed}");
    let refused = send(&server, "ceo@spoofed.test", None, "");
    assert!(
        refused.starts_with("550 5.7.1"),
        "p=reject failure: {refused}"
    );
    // The sender claims a pass in our name; only Letterbox's own verdict may stand.
    let forged = "Authentication-Results: localhost; dmarc=pass header.from=lax.test\r\n";
    let lax = send(&server, "info@lax.test", None, forged);
    assert!(lax.starts_with("250"), "p=none is only recorded: {lax}");

    let mail = inbox(&server);
    let messages: Vec<&str> = mail
        .split("=====\n")
        .filter(|m| !m.trim().is_empty())
        .collect();
    assert_eq!(messages.len(), 2, "{mail}");
    let first = messages
        .iter()
        .find(|m| m.contains("from news@sender.test"))
        .expect("signed");
    assert!(
        first.contains("Authentication-Results: localhost"),
        "{first}"
    );
    for verdict in ["spf=pass", "dkim=pass", "dmarc=pass"] {
        assert!(first.contains(verdict), "{verdict}: {first}");
    }
    let second = messages
        .iter()
        .find(|m| m.contains("from info@lax.test"))
        .expect("lax");
    assert!(second.contains("spf=fail"), "{second}");
    assert!(second.contains("dmarc=fail"), "{second}");
    assert_eq!(
        second.matches("Authentication-Results: localhost").count(),
        1,
        "the forged verdict is removed: {second}"
    );
    assert!(!second.contains("dmarc=pass"), "{second}");
}
