//! Port 25's inbound filters against a real DNS server on loopback (tests/peers.py) serving a
//! blocklist, an allowlist and SPF records, driven by smtplib, swaks and raw sockets: each
//! refusal with its reply code, greylisting's 451 and the pass on retry, the pregreet
//! refusal, rate limits, the Junk folder, and the day's counts in `letterbox status`.
//! The client is 127.0.0.1: loopback is filtered like any other address.

mod common;

use std::process::Command;
use std::time::Duration;

use common::imap::PY_IMAP;
use common::peers::Peers;
use common::{PY_PRELUDE, Raw, Server, config_text, text};

/// The zone: 127.0.0.1 listed on bl.test and (for the allowlist test) wl.test; SPF records
/// that pass for mail from 127.0.0.1 in allowed.test and other.test.
const ZONE: &str = "\
1.0.0.127.bl.test. 60 IN A 127.0.0.2
1.0.0.127.wl.test. 60 IN A 127.0.10.1
1.0.0.127.refusing.test. 60 IN A 127.255.255.254
allowed.test. 60 IN TXT \"v=spf1 ip4:127.0.0.1 -all\"
other.test. 60 IN TXT \"v=spf1 ip4:127.0.0.1 -all\"
";

/// A server whose `[spam]` table is `spam` and whose resolver is the peers' DNS server;
/// `limits` goes into `[limits]`. alice@home.test exists.
fn start(peers: &Peers, spam: &str, limits: &str) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_text(&dir.path().join("data"), limits);
    let start = text.find("[spam]").expect("[spam] in the test config");
    let end = text.find("[limits]").expect("[limits] in the test config");
    let config = format!(
        "{}[spam]\n{spam}\n\n[dns]\nnameservers = [\"127.0.0.1:{}\"]\n\n{}",
        &text[..start],
        peers.dns_port,
        &text[end..]
    )
    .replace("check_inbound = false", "check_inbound = true");
    let server = Server::start_config(dir, &config);
    server.add_user("alice@home.test");
    server
}

/// Every check off but those named in `on`: the base of each test's `[spam]`.
fn spam(on: &str) -> String {
    format!(
        "greylisting = false\ndnsbl = []\ndnswl = []\npregreet_wait = 0\nrate_limits = false\nhelo_checks = false\n{on}"
    )
    .lines()
    .fold(Vec::<String>::new(), |mut kept, line| {
        // A key given in `on` replaces the base's.
        let key = line.split('=').next().unwrap_or("").trim().to_string();
        kept.retain(|k| k.split('=').next().unwrap_or("").trim() != key);
        kept.push(line.to_string());
        kept
    })
    .join("\n")
}

/// Sends one message with smtplib from `sender`; prints each step's reply code and text,
/// carrying on after a refusal so the test sees where it came.
const SEND: &str = r#"
sender, subject = sys.argv[1], sys.argv[2]
s = smtplib.SMTP("localhost", SMTP_PORT, timeout=60)
code, _ = s.ehlo("mx.sender.test")
code, text = s.mail(sender)
print("MAIL", code, text.decode())
code, text = s.rcpt("alice@home.test")
print("RCPT", code, text.decode())
if code == 250:
    msg = f"From: {sender}\r\nTo: alice@home.test\r\nSubject: {subject}\r\nX-Spam-Status: No, forged\r\n\r\nHello.\r\n"
    code, text = s.data(msg.encode())
    print("DATA", code, text.decode())
s.quit()
"#;

fn send(server: &Server, sender: &str, subject: &str) -> String {
    server.python_ok(&format!("{PY_PRELUDE}{SEND}"), &[sender, subject])
}

/// The messages of alice's `mailbox`, whole, oldest first.
fn mailbox(server: &Server, mailbox: &str) -> Vec<String> {
    let script = format!(
        r#"{PY_PRELUDE}{PY_IMAP}
m = imap_login(mode="implicit")
typ, _ = m.select(sys.argv[1], readonly=True)
assert typ == "OK", typ
typ, data = m.search(None, "ALL")
for n in data[0].split():
    typ, parts = m.fetch(n, "(BODY.PEEK[])")
    sys.stdout.write(parts[0][1].decode() + "\n=====\n")
m.logout()
"#
    );
    server
        .python_ok(&script, &[mailbox])
        .split("\n=====\n")
        .filter(|m| !m.trim().is_empty())
        .map(String::from)
        .collect()
}

fn status(server: &Server) -> String {
    let out = server.cli(&["status"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn a_blocklisted_client_goes_to_junk_with_its_reasons_and_the_count_shows() {
    let peers = Peers::start(ZONE);
    let server = start(
        &peers,
        &spam(
            "dnsbl = [{ zone = \"bl.test\", weight = 6.0 }, \"refusing.test\"]\njunk_threshold = 5.0\nreject_threshold = 15.0",
        ),
        "",
    );
    let out = send(&server, "bob@other.test", "listed");
    assert!(out.contains("DATA 250"), "{out}");
    assert!(mailbox(&server, "INBOX").is_empty(), "nothing in INBOX");
    let junk = mailbox(&server, "Junk");
    assert_eq!(junk.len(), 1, "{junk:?}");
    let message = &junk[0];
    // One verdict, this host's: the sender's forged field is gone. A "query refused" answer
    // (127.255.255.254) is not a listing.
    assert_eq!(message.matches("X-Spam-Status:").count(), 1, "{message}");
    assert!(
        message.contains("X-Spam-Status: Yes, score=6.0 junk=5.0 reject=15.0"),
        "{message}"
    );
    assert!(message.contains("tests=DNSBL_bl.test(+6.0)"), "{message}");
    assert!(!message.contains("refusing.test"), "{message}");
    assert!(!message.contains("forged"), "{message}");
    assert!(
        message.contains("Authentication-Results: localhost"),
        "{message}"
    );
    assert!(message.contains("Subject: listed"), "{message}");
    let shown = status(&server);
    assert!(
        shown.contains("spam today    0 refused, 0 greylisted, 1 to Junk"),
        "{shown}"
    );
}

#[test]
fn a_score_above_reject_threshold_is_refused_at_end_of_data_with_550() {
    let peers = Peers::start(ZONE);
    let server = start(
        &peers,
        &spam("dnsbl = [{ zone = \"bl.test\", weight = 20.0 }]\nhelo_checks = true"),
        "",
    );
    // swaks, a client nobody here wrote; HELO "localhost" scores too.
    let out = Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port"])
        .arg(server.port("smtp").to_string())
        .args([
            "--helo",
            "localhost",
            "--from",
            "bob@other.test",
            "--to",
            "alice@home.test",
            "--timeout",
            "60",
        ])
        .output()
        .expect("swaks");
    let transcript = text(&out.stdout);
    assert!(
        transcript.contains("<** 550 5.7.1 Message refused as spam (score 23.0)"),
        "{transcript}"
    );
    assert!(mailbox(&server, "INBOX").is_empty());
    assert!(mailbox(&server, "Junk").is_empty());
    assert!(status(&server).contains("spam today    1 refused"));
}

#[test]
fn greylisting_says_451_first_then_passes_the_retry_and_remembers_the_network() {
    let peers = Peers::start(ZONE);
    let server = start(&peers, &spam("greylisting = true\ngreylist_delay = 2"), "");
    let first = send(&server, "bob@other.test", "first try");
    assert!(
        first.contains("RCPT 451 4.7.1 Greylisted, please try again in 2 seconds"),
        "{first}"
    );
    assert!(!first.contains("DATA"), "{first}");
    std::thread::sleep(Duration::from_millis(2200));
    let retry = send(&server, "bob@other.test", "retry");
    assert!(retry.contains("RCPT 250"), "{retry}");
    assert!(retry.contains("DATA 250"), "{retry}");
    // The network passed: another sender from it is not delayed.
    let other = send(&server, "carol@other.test", "same network");
    assert!(other.contains("DATA 250"), "{other}");
    let inbox = mailbox(&server, "INBOX");
    assert_eq!(inbox.len(), 2, "{inbox:?}");
    assert!(status(&server).contains("1 greylisted"));
    // The network is kept in the store: still known after a restart.
    let mut server = server;
    server.stop();
    server.launch();
    let after = send(&server, "dave@other.test", "after restart");
    assert!(after.contains("DATA 250"), "{after}");
}

#[test]
fn allowlisted_clients_and_spf_passing_allowlisted_domains_are_not_greylisted() {
    let peers = Peers::start(ZONE);
    let server = start(
        &peers,
        &spam(
            "greylisting = true\ngreylist_delay = 3600\ngreylist_allow_domains = [\"allowed.test\"]",
        ),
        "",
    );
    // SPF passes for allowed.test from 127.0.0.1: no delay; other.test is not allowlisted.
    let allowed = send(&server, "news@allowed.test", "allowed domain");
    assert!(allowed.contains("DATA 250"), "{allowed}");
    let other = send(&server, "bob@other.test", "other domain");
    assert!(other.contains("RCPT 451 4.7.1"), "{other}");
    drop(server);

    let server = start(
        &peers,
        &spam("greylisting = true\ngreylist_delay = 3600\ndnswl = [\"wl.test\"]"),
        "",
    );
    let listed = send(&server, "bob@other.test", "allowlisted client");
    assert!(listed.contains("DATA 250"), "{listed}");
    let inbox = mailbox(&server, "INBOX");
    assert_eq!(inbox.len(), 1);
    assert!(
        inbox[0].contains("tests=DNSWL_wl.test(-5.0)"),
        "{}",
        inbox[0]
    );
}

#[test]
fn a_client_that_talks_before_the_banner_is_refused() {
    let peers = Peers::start(ZONE);
    let server = start(&peers, &spam("pregreet_wait = 2"), "");
    let mut eager = Raw::connect(server.addr("smtp"));
    eager.send(b"EHLO bot.test\r\n");
    assert_eq!(
        eager.reply(),
        "554 5.5.1 Protocol error: you talked before the greeting"
    );
    assert!(eager.closed_within(Duration::from_secs(10)));
    // A client that waits for the banner is served.
    let mut patient = Raw::connect(server.addr("smtp"));
    assert!(patient.reply().starts_with("220 "));
    assert!(patient.cmd("EHLO mx.sender.test").starts_with("250 "));
    assert!(patient.cmd("QUIT").starts_with("221 "));
    assert!(status(&server).contains("spam today    1 refused"));
}

#[test]
fn connection_and_recipient_rates_per_address_are_limited() {
    let peers = Peers::start(ZONE);
    let server = start(
        &peers,
        &spam("rate_limits = true"),
        "smtp_connections_per_minute = 3\nsmtp_recipients_per_hour = 2",
    );
    // Recipients: two pass, the third gets 451 (the first connection).
    let mut client = Raw::connect(server.addr("smtp"));
    assert!(client.reply().starts_with("220 "));
    assert!(client.cmd("EHLO mx.sender.test").starts_with("250 "));
    assert!(client.cmd("MAIL FROM:<bob@other.test>").starts_with("250 "));
    assert!(client.cmd("RCPT TO:<alice@home.test>").starts_with("250 "));
    assert!(client.cmd("RCPT TO:<alice@home.test>").starts_with("250 "));
    assert_eq!(
        client.cmd("RCPT TO:<alice@home.test>"),
        "451 4.7.1 Too many recipients from your address, try again later"
    );
    assert!(client.cmd("QUIT").starts_with("221 "));
    // Connections: the second and third pass, the fourth in the minute gets 421.
    for _ in 0..2 {
        let mut again = Raw::connect(server.addr("smtp"));
        assert!(again.reply().starts_with("220 "));
        assert!(again.cmd("QUIT").starts_with("221 "));
    }
    let mut over = Raw::connect(server.addr("smtp"));
    assert_eq!(
        over.reply(),
        "421 4.7.0 Too many connections from your address, try again later"
    );
    assert!(over.closed_within(Duration::from_secs(10)));
    assert!(status(&server).contains("spam today    2 refused"));
}

#[test]
fn a_check_that_times_out_is_logged_and_the_message_still_arrives() {
    // A "DNS server" that never answers: the blocklist lookup hangs past the step's time.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let silent_port = silent.local_addr().expect("address").port();
    let silent_tcp = std::net::TcpListener::bind(("127.0.0.1", silent_port)).ok();
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_text(&dir.path().join("data"), "filter_step_timeout = 1");
    let config = text.replace("dnsbl = []", "dnsbl = [\"bl.test\"]").replace(
        "[limits]",
        &format!("[dns]\nnameservers = [\"127.0.0.1:{silent_port}\"]\n\n[limits]"),
    );
    let server = Server::start_config(dir, &config);
    server.add_user("alice@home.test");
    let out = send(&server, "bob@other.test", "despite a hung check");
    assert!(out.contains("DATA 250"), "{out}");
    let inbox = mailbox(&server, "INBOX");
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert!(inbox[0].contains("Subject: despite a hung check"));
    let log = server.log();
    assert!(
        log.contains("filter step timed out; accepted") && log.contains("dnslist"),
        "{log}"
    );
    drop((silent, silent_tcp));
}
