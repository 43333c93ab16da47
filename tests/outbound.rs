//! Outbound delivery against real peers on loopback (tests/peers.py): a DNS server (dnslib)
//! serving MX/A/TXT records and an SMTP receiver (aiosmtpd) that checks DKIM with dkimpy.
//! Mail is submitted with Python's smtplib, looked up through MX, signed, and delivered;
//! failures end in a retry or a DSN in the sender's INBOX.

mod common;

use std::time::Duration;

use common::outbound::{ZONE, inbox, queue, start, submit, wait_until};
use common::peers::Peers;
use common::{PY_PRELUDE, Server, config_text, text};

#[test]
fn submitted_mail_reaches_the_mx_signed_with_dkim() {
    let peers = Peers::start(ZONE);
    let server = start(&peers, "");
    let records = server.cli(&["dns-records"], None);
    assert!(records.status.success(), "{}", text(&records.stderr));
    let records = text(&records.stdout);
    assert!(
        records.contains("home.test.\t\tMX\t10 localhost."),
        "{records}"
    );
    assert!(records.contains("\"v=spf1 mx -all\""), "{records}");
    assert!(records.contains("_dmarc.home.test."), "{records}");
    assert!(records.contains("PTR"), "{records}");
    // The test config's ports are 0 ("any"): no SRV record can name them (the records
    // themselves are checked in outbound::dkim's unit test).
    assert!(!records.contains("SRV\t0 1 0 "), "{records}");
    let dkim_line = records
        .lines()
        .find(|l| l.starts_with("letterbox._domainkey.home.test."))
        .expect("DKIM record");
    let value = dkim_line.split('\t').next_back().expect("value");
    peers.add_records(&format!(
        "letterbox._domainkey.home.test. 60 IN TXT {value}\n"
    ));

    submit(
        &server,
        &[
            "bob@remote.test",
            "carol@remote.test",
            "dave@alias.test",
            "erin@implicit.test",
        ],
        "signed hello",
    );
    let received = peers.wait_for(3, &server);
    let (info, eml) = &received[0];
    assert_eq!(info["mail_from"], "alice@home.test");
    assert_eq!(info["tls"], true, "opportunistic STARTTLS: {info}");
    assert_eq!(
        info["dkim"], true,
        "dkimpy verifies the signature: {info}\n{eml}"
    );
    assert!(eml.contains("DKIM-Signature: "), "{eml}");
    assert!(
        eml.contains("\n.leading dot"),
        "dot-stuffing undone by the receiver: {eml}"
    );
    // bob and carol share one transaction to the same host; the CNAME'd and implicit MX
    // domains get theirs.
    let mut recipients: Vec<String> = received
        .iter()
        .flat_map(|(info, _)| info["rcpt_tos"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect();
    recipients.sort();
    assert_eq!(
        recipients,
        [
            "bob@remote.test",
            "carol@remote.test",
            "dave@alias.test",
            "erin@implicit.test"
        ]
    );
    assert!(
        received
            .iter()
            .any(|(info, _)| info["rcpt_tos"].as_array().map(Vec::len) == Some(2))
    );
    wait_until("an empty queue", &server, || {
        queue(&server).as_array().is_some_and(Vec::is_empty)
    });
}

/// One submission to a remote and a local recipient: both copies come from one pass over the
/// message; the outgoing one is signed and has no Return-Path, the local one has it on top.
#[test]
fn a_message_to_remote_and_local_recipients_goes_out_signed_and_in_with_return_path() {
    let peers = Peers::start(ZONE);
    let server = start(&peers, "");
    let records = text(&server.cli(&["dns-records"], None).stdout);
    let dkim_line = records
        .lines()
        .find(|l| l.starts_with("letterbox._domainkey.home.test."))
        .expect("DKIM record");
    let value = dkim_line.split('\t').next_back().expect("value");
    peers.add_records(&format!(
        "letterbox._domainkey.home.test. 60 IN TXT {value}\n"
    ));
    submit(
        &server,
        &["bob@remote.test", "alice@home.test"],
        "out and in",
    );
    let received = peers.wait_for(1, &server);
    let (info, eml) = &received[0];
    assert_eq!(info["dkim"], true, "{info}\n{eml}");
    assert!(!eml.contains("Return-Path:"), "{eml}");
    let local = inbox(&server, "alice@home.test");
    assert_eq!(local.len(), 1, "{local:?}");
    assert!(
        local[0].starts_with("Return-Path: <alice@home.test>"),
        "{}",
        local[0]
    );
    assert!(local[0].contains("Subject: out and in"), "{}", local[0]);
    assert!(local[0].contains("\n.leading dot"), "{}", local[0]);
}

/// Issue #16 defect 4: a message without From: goes out with the account's address added,
/// and the DKIM signature covers that From:.
#[test]
fn a_missing_from_is_added_and_signed() {
    let peers = Peers::start(ZONE);
    let server = start(&peers, "");
    let records = server.cli(&["dns-records"], None);
    assert!(records.status.success(), "{}", text(&records.stderr));
    let records = text(&records.stdout);
    let dkim_line = records
        .lines()
        .find(|l| l.starts_with("letterbox._domainkey.home.test."))
        .expect("DKIM record");
    let value = dkim_line.split('\t').next_back().expect("value");
    peers.add_records(&format!(
        "letterbox._domainkey.home.test. 60 IN TXT {value}\n"
    ));
    let script = format!(
        r#"{PY_PRELUDE}
s = smtplib.SMTP("localhost", int(os.environ["SUBMISSION_PORT"]), timeout=30)
s.starttls(context=tls())
s.login("alice@home.test", PASSWORD)
s.sendmail("alice@home.test", ["bob@remote.test"], "To: bob@remote.test\r\nSubject: from a script\r\n\r\nDisk is full.\r\n")
s.quit()
"#
    );
    server.python_ok(&script, &[]);
    let received = peers.wait_for(1, &server);
    let (info, eml) = &received[0];
    assert_eq!(info["dkim"], true, "dkimpy verifies: {info}\n{eml}");
    assert!(eml.contains("\nFrom: <alice@home.test>"), "{eml}");
    assert_eq!(eml.matches("\nFrom:").count(), 1, "{eml}");
    let signature = eml
        .split("DKIM-Signature:")
        .nth(1)
        .expect("signed")
        .to_ascii_lowercase();
    let signed = signature.split("h=").nth(1).expect("h=");
    assert!(
        signed.split(';').next().expect("h").contains("from"),
        "{eml}"
    );
}

#[test]
fn a_451_is_retried_after_queue_flush_and_a_550_bounces_to_the_inbox() {
    let peers = Peers::start(ZONE);
    let server = start(&peers, "");
    submit(
        &server,
        &["later@remote.test", "nobody@remote.test"],
        "mixed fate",
    );
    wait_until("the first attempt", &server, || {
        queue(&server)[0]["recipients"]
            .as_array()
            .is_some_and(|r| r.len() == 1 && r[0]["attempts"] == 1)
    });
    let listed = queue(&server);
    assert_eq!(listed[0]["recipients"][0]["address"], "later@remote.test");
    assert!(
        listed[0]["recipients"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("451")),
        "{listed}"
    );
    let human = server.cli(&["queue", "list"], None);
    assert!(
        text(&human.stdout).contains("later@remote.test"),
        "{}",
        text(&human.stdout)
    );
    let status = server.cli(&["status", "--json"], None);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status");
    assert_eq!(status["queue_depth"], 1, "{status}");
    assert!(status["queue_oldest"].is_i64(), "{status}");

    // The 550 came back as a DSN with the original headers.
    let mail = inbox(&server, "alice@home.test");
    assert_eq!(mail.len(), 1, "{mail:?}");
    let dsn = &mail[0];
    assert!(
        dsn.contains("Subject: Undelivered Mail Returned to Sender"),
        "{dsn}"
    );
    assert!(
        dsn.contains("multipart/report; report-type=delivery-status"),
        "{dsn}"
    );
    assert!(
        dsn.contains("Final-Recipient: rfc822; nobody@remote.test"),
        "{dsn}"
    );
    assert!(dsn.contains("Status: 5.1.1"), "{dsn}");
    assert!(
        dsn.contains("Diagnostic-Code: smtp; 550 5.1.1 No such user here"),
        "{dsn}"
    );
    assert!(dsn.contains("Content-Type: text/rfc822-headers"), "{dsn}");
    assert!(dsn.contains("Subject: mixed fate"), "{dsn}");

    let out = server.cli(&["queue", "flush"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let received = peers.wait_for(1, &server);
    assert_eq!(received[0].0["rcpt_tos"][0], "later@remote.test");
    wait_until("an empty queue", &server, || {
        queue(&server).as_array().is_some_and(Vec::is_empty)
    });
}

#[test]
fn an_unreachable_host_stays_queued_then_delays_and_expires_with_dsns() {
    let peers = Peers::start(ZONE);
    let server = start(&peers, "delay_warning = 0\nmax_queue_time = \"4s\"");
    submit(
        &server,
        &["someone@unreachable.test", "x@nullmx.test"],
        "far away",
    );
    wait_until("the first attempt", &server, || {
        queue(&server)[0]["recipients"]
            .as_array()
            .is_some_and(|r| r.len() == 1 && r[0]["attempts"] == 1)
    });
    let listed = queue(&server);
    assert_eq!(
        listed[0]["recipients"][0]["address"],
        "someone@unreachable.test"
    );
    let error = listed[0]["recipients"][0]["last_error"]
        .as_str()
        .unwrap_or("");
    assert!(error.contains("127.0.0.2"), "{listed}");
    let mail = inbox(&server, "alice@home.test");
    let delayed = mail
        .iter()
        .find(|m| m.contains("Subject: Delivery Delayed"))
        .expect("delay DSN");
    assert!(delayed.contains("Action: delayed"), "{delayed}");
    let null_mx = mail
        .iter()
        .find(|m| m.contains("x@nullmx.test"))
        .expect("null MX DSN");
    assert!(null_mx.contains("Status: 5.1.10"), "{null_mx}");

    std::thread::sleep(Duration::from_secs(4));
    server.cli(&["queue", "flush"], None);
    wait_until("expiry", &server, || {
        queue(&server).as_array().is_some_and(Vec::is_empty)
    });
    let mail = inbox(&server, "alice@home.test");
    assert!(
        mail.iter().any(
            |m| m.contains("Final-Recipient: rfc822; someone@unreachable.test")
                && m.contains("Action: failed")
        ),
        "{mail:?}"
    );
    // Nothing was ever delivered, and the delay was reported once.
    assert!(peers.received().is_empty());
    assert_eq!(
        mail.iter()
            .filter(|m| m.contains("Delivery Delayed"))
            .count(),
        1
    );
}

#[test]
fn a_smarthost_gets_everything_over_starttls_with_auth() {
    let peers = Peers::start(ZONE);
    let relay = format!(
        "[outbound.relay]\nhost = \"localhost\"\nport = {}\ntls = \"starttls\"\nusername = \"relay-user\"\npassword = \"relay secret\"\nca_file = \"{}\"",
        peers.smtp_port,
        peers.ca().display()
    );
    let server = start(&peers, &relay);
    // No MX needed: the relay takes mail for any domain.
    submit(
        &server,
        &["someone@nowhere.example", "other@unreachable.test"],
        "via relay",
    );
    let received = peers.wait_for(1, &server);
    let (info, _) = &received[0];
    assert_eq!(info["auth"], "relay-user", "{info}");
    assert_eq!(info["tls"], true, "{info}");
    assert_eq!(
        info["rcpt_tos"].as_array().map(Vec::len),
        Some(2),
        "one transaction: {info}"
    );
}

#[test]
fn sigkill_while_delivering_loses_nothing_and_a_clean_restart_duplicates_nothing() {
    let peers = Peers::start(ZONE);
    let mut server = start(&peers, "");
    submit(&server, &["slow@remote.test"], "interrupted");
    let started = peers.dir.path().join("received/slow-started");
    wait_until("the slow delivery to start", &server, || started.exists());
    server.kill();
    server.launch();
    // Delivered at least once (maybe twice: the kill may fall between 250 and the record).
    let received = peers.wait_for(1, &server);
    assert!(
        received
            .iter()
            .all(|(info, _)| info["rcpt_tos"][0] == "slow@remote.test")
    );
    wait_until("an empty queue", &server, || {
        queue(&server).as_array().is_some_and(Vec::is_empty)
    });
    let after_kill = peers.received().len();

    // A clean restart with a message waiting for its retry: exactly one delivery.
    submit(&server, &["later@remote.test"], "clean restart");
    wait_until("the first attempt", &server, || {
        queue(&server)[0]["recipients"][0]["attempts"] == 1
    });
    assert!(server.stop().success());
    server.launch();
    server.cli(&["queue", "flush"], None);
    wait_until("an empty queue", &server, || {
        queue(&server).as_array().is_some_and(Vec::is_empty)
    });
    std::thread::sleep(Duration::from_millis(500));
    let received = peers.received();
    assert_eq!(received.len(), after_kill + 1, "{received:?}");
}

/// The setup page puts the relay in the settings file, which has no `ca_file`: the config
/// file's `[outbound] relay_ca_file` is what makes a private relay's certificate trusted.
#[test]
fn a_relay_from_the_settings_file_is_trusted_through_relay_ca_file() {
    let peers = Peers::start(ZONE);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::write(
        data.join("settings.toml"),
        format!(
            "[outbound.relay]\nhost = \"localhost\"\nport = {}\ntls = \"starttls\"\n\
             username = \"relay-user\"\npassword = \"relay secret\"\n",
            peers.smtp_port
        ),
    )
    .expect("settings");
    let mut text = config_text(&data, "");
    text.push_str(&format!(
        "\n[dns]\nnameservers = [\"127.0.0.1:{}\"]\n\n[outbound]\nrelay_ca_file = \"{}\"\n",
        peers.dns_port,
        peers.ca().display()
    ));
    let server = Server::start_config(dir, &text);
    server.add_user("alice@home.test");
    submit(&server, &["someone@nowhere.example"], "settings relay");
    let received = peers.wait_for(1, &server);
    let (info, _) = &received[0];
    assert_eq!(info["auth"], "relay-user", "{info}");
    assert_eq!(info["tls"], true, "{info}");
}
