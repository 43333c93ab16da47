//! Outbound delivery when the receiving server refuses part of a transaction or cannot take
//! the message at all (tests/peers.py steers its receiver by recipient): each recipient's
//! fate follows what the server said about it (RFC 5321 §3.3), and what cannot be sent is
//! bounced with the reason, to a sender whose mailbox is full too.

mod common;

use common::outbound::{ZONE, inbox, queue, start, submit, wait_until};
use common::peers::Peers;
use common::{PY_PRELUDE, Server};

/// The queued recipients, as (address, last error).
fn waiting(server: &Server) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for message in queue(server).as_array().cloned().unwrap_or_default() {
        for recipient in message["recipients"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            out.push((
                recipient["address"].as_str().unwrap_or("").to_string(),
                recipient["last_error"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    out
}

/// The bounces (failure DSNs) in alice's INBOX.
fn bounces(server: &Server) -> Vec<String> {
    inbox(server, "alice@home.test")
        .into_iter()
        .filter(|m| m.contains("Subject: Undelivered Mail Returned to Sender"))
        .collect()
}

#[test]
fn a_refusal_at_rcpt_stands_whatever_the_end_of_data_gets() {
    let peers = Peers::start(ZONE);
    let server = start(&peers, "");

    // nobody@ is refused for good at RCPT; the DATA of the one accepted then gets 451.
    submit(
        &server,
        &["nobody@remote.test", "faildata@remote.test"],
        "first",
    );
    wait_until("the first attempt", &server, || {
        waiting(&server).iter().any(|(_, error)| !error.is_empty())
    });
    assert_eq!(
        waiting(&server),
        [(
            "faildata@remote.test".to_string(),
            "451 4.3.0 Try again later".to_string()
        )],
        "only the recipient the 451 was about is retried"
    );
    wait_until("the bounce", &server, || !bounces(&server).is_empty());
    let bounce = &bounces(&server)[0];
    assert!(
        bounce.contains("Final-Recipient: rfc822; nobody@remote.test")
            && bounce.contains("Diagnostic-Code: smtp; 550 5.1.1 No such user here"),
        "{bounce}"
    );
    assert!(
        !bounce.contains("Final-Recipient: rfc822; faildata@"),
        "{bounce}"
    );

    // later@ is deferred at RCPT; the DATA of the one accepted then gets 554.
    submit(
        &server,
        &["later@remote.test", "rejectdata@remote.test"],
        "second",
    );
    wait_until("the second bounce", &server, || bounces(&server).len() == 2);
    let bounce = bounces(&server)
        .into_iter()
        .find(|m| m.contains("rejectdata@"))
        .expect("a bounce for rejectdata@");
    assert!(
        bounce.contains("Diagnostic-Code: smtp; 554 5.6.0 Content refused"),
        "{bounce}"
    );
    assert!(
        !bounce.contains("Final-Recipient: rfc822; later@"),
        "only the refused one: {bounce}"
    );
    let left = waiting(&server);
    assert!(
        left.iter()
            .any(|(address, error)| address == "later@remote.test" && error.starts_with("451")),
        "later@ is retried with its own reply: {left:?}"
    );
    assert!(peers.received().is_empty());
}

/// Submits a message as alice with smtplib's `mail_options`, its body given as Python bytes.
fn submit_with(server: &Server, to: &str, options: &str, body: &str) {
    let script = format!(
        r#"{PY_PRELUDE}
s = smtplib.SMTP("localhost", int(os.environ["SUBMISSION_PORT"]), timeout=30)
s.starttls(context=tls())
s.login("alice@home.test", PASSWORD)
to = sys.argv[1]
message = f"From: Alice <alice@home.test>\r\nTo: {{to}}\r\nSubject: to {{to}}\r\n".encode() + {body}
s.sendmail("alice@home.test", [to], message, mail_options=[{options}])
s.quit()
"#
    );
    server.python_ok(&script, &[to]);
}

#[test]
fn what_the_server_cannot_take_is_bounced_with_the_reason() {
    let zone = format!("{ZONE}xn--bcher-kva.test. 60 IN MX 10 mx.remote.test.\n");
    let peers = Peers::start(&zone);
    let server = start(&peers, "");

    // The receiver offers no SMTPUTF8: a non-ASCII local part cannot be sent to it, an
    // internationalized domain can, in its ASCII form.
    std::fs::write(peers.dir.path().join("no-smtputf8"), "").expect("flag");
    submit_with(
        &server,
        "jörg@remote.test",
        "'SMTPUTF8'",
        r#"b"\r\nHello.\r\n""#,
    );
    submit_with(
        &server,
        "bob@bücher.test",
        "'SMTPUTF8'",
        r#"b"\r\nHello.\r\n""#,
    );
    wait_until("a bounce and a delivery", &server, || {
        bounces(&server).len() == 1 && peers.received().len() == 1
    });
    let bounce = &bounces(&server)[0];
    assert!(
        bounce.contains("Status: 5.6.7") && bounce.contains("no SMTPUTF8"),
        "{bounce}"
    );
    assert_eq!(
        peers.received()[0].0["rcpt_tos"][0],
        "bob@xn--bcher-kva.test"
    );

    // Now it offers no 8BITMIME either: 8-bit text is bounced, not sent garbled; 7-bit mail
    // still goes.
    std::fs::write(peers.dir.path().join("no-8bitmime"), "").expect("flag");
    submit_with(
        &server,
        "carol@remote.test",
        "'BODY=8BITMIME'",
        r#""\r\nGrüße aus dem Süden.\r\n".encode()"#,
    );
    submit(&server, &["dave@remote.test"], "plain");
    wait_until("a second bounce and delivery", &server, || {
        bounces(&server).len() == 2 && peers.received().len() == 2
    });
    let bounce = bounces(&server)
        .into_iter()
        .find(|m| m.contains("carol@remote.test"))
        .expect("a bounce for carol@");
    assert!(
        bounce.contains("Status: 5.6.3") && bounce.contains("no 8BITMIME"),
        "{bounce}"
    );
    assert!(
        peers
            .received()
            .iter()
            .any(|(info, _)| info["rcpt_tos"][0] == "dave@remote.test")
    );
    wait_until("an empty queue", &server, || waiting(&server).is_empty());
}

#[test]
fn a_bounce_reaches_a_sender_whose_mailbox_is_full() {
    let peers = Peers::start(ZONE);
    let server = start(&peers, "");
    let out = server.cli(&["user", "quota", "alice@home.test", "1B"], None);
    assert!(out.status.success(), "{out:?}");
    submit(&server, &["nobody@remote.test"], "to nobody");
    wait_until("the bounce", &server, || !bounces(&server).is_empty());
    assert!(waiting(&server).is_empty());
}

#[test]
fn one_delay_notice_names_every_recipient_still_waiting() {
    // Two destinations that refuse connections (nothing listens on 127.0.0.2 and .3). Each
    // has its own retry times, which the jitter soon sets apart, so the attempt that passes
    // the delay warning is usually for one of them only.
    let zone = format!(
        "{ZONE}gone.test. 60 IN MX 10 dead.gone.test.\ndead.gone.test. 60 IN A 127.0.0.3\n"
    );
    let peers = Peers::start(&zone);
    let server = start(
        &peers,
        "delay_warning = \"3s\"\nretry_initial = \"1s\"\nretry_max = \"2s\"",
    );
    submit(
        &server,
        &["someone@unreachable.test", "x@gone.test"],
        "far away",
    );
    wait_until("a delay notice", &server, || {
        inbox(&server, "alice@home.test")
            .iter()
            .any(|m| m.contains("Subject: Delivery Delayed"))
    });
    // Let more attempts pass: no second notice comes.
    std::thread::sleep(std::time::Duration::from_secs(4));
    let notices: Vec<String> = inbox(&server, "alice@home.test")
        .into_iter()
        .filter(|m| m.contains("Subject: Delivery Delayed"))
        .collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    for recipient in ["someone@unreachable.test", "x@gone.test"] {
        assert!(
            notices[0].contains(&format!("Final-Recipient: rfc822; {recipient}")),
            "{recipient}: {}",
            notices[0]
        );
    }
}
