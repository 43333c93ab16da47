//! The box checking itself (`letterbox health`, the status's alerts) against a real DNS server
//! on loopback (tests/peers.py, dnslib) serving a good zone and a bad zone, with the port 25
//! probe pointed at the loopback SMTP receiver (or a closed port) and certificates made for the
//! occasion (right, or expired and for another name). Every check is seen both ways.

mod common;

use common::peers::Peers;
use common::{Server, config_text, text};
use serde_json::Value;

/// Both domains' names. good.test's mail records come from `letterbox dns-records` itself;
/// bad.test's are wrong in every way a person gets them wrong.
const ZONE: &str = "\
mail.good.test. 60 IN A 192.0.2.10
10.2.0.192.in-addr.arpa. 60 IN PTR mail.good.test.
mail.bad.test. 60 IN A 192.0.2.20
20.2.0.192.in-addr.arpa. 60 IN PTR host-20.isp.test.
host-20.isp.test. 60 IN A 192.0.2.99
bad.test. 60 IN MX 10 mx.elsewhere.test.
bad.test. 60 IN TXT \"v=spf1 mx -all\"
bad.test. 60 IN TXT \"v=spf1 a -all\"
letterbox._domainkey.bad.test. 60 IN TXT \"v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAnotthiskey\"
20.2.0.192.bl.test. 60 IN A 127.0.0.2
";

/// A certificate and key for `names`, valid from `from` to `until` (year, month, day).
fn certificate(dir: &std::path::Path, names: &[&str], from: i32, until: i32) -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.not_before = rcgen::date_time_ymd(from, 1, 1);
    params.not_after = rcgen::date_time_ymd(until, 1, 1);
    let cert = params.self_signed(&key).expect("certificate");
    std::fs::create_dir_all(dir).expect("dir");
    std::fs::write(dir.join("cert.pem"), cert.pem()).expect("cert");
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("key");
    format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    )
}

/// A box for `domain` (host name `mail.<domain>`) asking `peers`' DNS server, probing port 25
/// at `probe`, with the certificate `tls`.
fn start(
    peers: &Peers,
    domain: &str,
    probe: &str,
    tls: impl Fn(&std::path::Path) -> String,
) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = tls(dir.path());
    let extra = format!(
        "\n[dns]\nnameservers = [\"127.0.0.1:{dns}\"]\n\n{tls}",
        dns = peers.dns_port
    );
    let text = config_text(&dir.path().join("data"), &extra)
        .replace(
            "automatic = false",
            &format!("port25_probe = \"{probe}\"\nblocklists = [\"bl.test\"]"),
        )
        .replace(
            "hostname = \"localhost\"",
            &format!("hostname = \"mail.{domain}\""),
        )
        .replace(
            "domains = [\"home.test\", \"family.test\"]",
            &format!("domains = [\"{domain}\"]"),
        );
    Server::start_config(dir, &text)
}

fn cli_ok(server: &Server, args: &[&str]) -> String {
    let out = server.cli(args, None);
    assert!(
        out.status.success(),
        "letterbox {args:?}: {}\nserver log:\n{}",
        text(&out.stderr),
        server.log()
    );
    text(&out.stdout)
}

/// `letterbox health --json` as check -> (verdict, the whole finding).
fn health(server: &Server) -> Vec<(String, String, Value)> {
    let report: Value = serde_json::from_str(&cli_ok(server, &["health", "--json"])).expect("json");
    let findings = report["findings"].as_array().expect("findings").clone();
    assert_eq!(findings.len(), 8, "{report}");
    findings
        .into_iter()
        .map(|f| {
            (
                f["check"].as_str().expect("check").to_string(),
                f["verdict"].as_str().expect("verdict").to_string(),
                f,
            )
        })
        .collect()
}

fn verdict_of<'a>(findings: &'a [(String, String, Value)], check: &str) -> (&'a str, &'a Value) {
    findings
        .iter()
        .find(|(c, _, _)| c == check)
        .map(|(_, verdict, finding)| (verdict.as_str(), finding))
        .unwrap_or_else(|| panic!("no {check} in {findings:?}"))
}

const CHECKS: [&str; 8] = [
    "outgoing_port",
    "mx_record",
    "spf",
    "dkim",
    "dmarc",
    "reverse_dns",
    "blocklists",
    "certificate",
];

#[test]
fn a_good_zone_passes_every_check_and_a_bad_zone_fails_every_one() {
    let peers = Peers::start(ZONE);
    let receiver = format!("127.0.0.1:{}", peers.smtp_port);

    // The good box: its records are exactly what `letterbox dns-records` prints.
    let good = start(&peers, "good.test", &receiver, |dir| {
        certificate(dir, &["mail.good.test"], 2020, 2090)
    });
    let records: String = cli_ok(&good, &["dns-records"])
        .lines()
        .filter(|line| !line.starts_with(';') && !line.trim().is_empty())
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(
        records.contains("letterbox._domainkey.good.test."),
        "{records}"
    );
    peers.add_records(&records);
    let findings = health(&good);
    for check in CHECKS {
        let (verdict, finding) = verdict_of(&findings, check);
        assert_eq!(verdict, "ok", "{check}: {finding}\nzone:\n{records}");
        assert_eq!(finding["advice"], "Nothing to do.", "{finding}");
    }
    let human = cli_ok(&good, &["health"]);
    assert!(
        human.contains("OK") && !human.contains("PROBLEM"),
        "{human}"
    );
    // The report is the status's too, with no alert raised.
    let status: Value =
        serde_json::from_str(&cli_ok(&good, &["status", "--json"])).expect("status");
    assert_eq!(
        status["health"]["findings"].as_array().map(Vec::len),
        Some(8)
    );
    let alerts = status["alerts"].to_string();
    assert!(!alerts.contains("health"), "{alerts}");

    // The bad box: port 25 closed, records wrong, no reverse name that points back,
    // blocklisted, and a certificate for another name that expired.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let closed_port = closed.local_addr().expect("address").port();
    drop(closed);
    let bad = start(
        &peers,
        "bad.test",
        &format!("127.0.0.1:{closed_port}"),
        |dir| certificate(dir, &["old-name.bad.test"], 2019, 2020),
    );
    let findings = health(&bad);
    for check in CHECKS {
        let (verdict, finding) = verdict_of(&findings, check);
        assert_eq!(verdict, "problem", "{check}: {finding}");
        let advice = finding["advice"].as_str().expect("advice");
        assert!(
            advice.ends_with('.') && advice.matches(". ").count() == 0,
            "one sentence: {advice}"
        );
    }
    let said = |check: &str| verdict_of(&findings, check).1["found"].to_string();
    assert!(
        said("mx_record").contains("mx.elsewhere.test"),
        "{}",
        said("mx_record")
    );
    assert!(said("spf").contains("2 SPF records"), "{}", said("spf"));
    assert!(
        said("dkim").contains("not this box's key"),
        "{}",
        said("dkim")
    );
    assert!(
        said("reverse_dns").contains("host-20.isp.test"),
        "{}",
        said("reverse_dns")
    );
    assert!(
        said("blocklists").contains("bl.test (127.0.0.2)"),
        "{}",
        said("blocklists")
    );
    assert!(
        said("certificate").contains("old-name.bad.test"),
        "{}",
        said("certificate")
    );

    // Every problem is an alert, in `letterbox status` and on the panel.
    let status: Value = serde_json::from_str(&cli_ok(&bad, &["status", "--json"])).expect("status");
    let raised: Vec<String> = status["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["kind"] == "health")
        .map(|a| a["check"].as_str().unwrap_or_default().to_string())
        .collect();
    for check in CHECKS {
        assert!(
            raised.iter().any(|r| r == check),
            "{check} not raised: {status}"
        );
    }
    let human = cli_ok(&bad, &["status"]);
    assert!(
        human.contains("ALERT         health_reverse_dns"),
        "{human}"
    );
    assert!(human.contains("8 problem(s)"), "{human}");
    // The panel counts them with its own alerts (the expired certificate's is the ninth). The
    // box has no accounts, so it is in setup mode, where the setup page comes first: leave it.
    cli_ok(&bad, &["setup", "--off"]);
    let panel = cli_ok(&bad, &["panel", "--text"]);
    assert!(panel.contains("ALERT") && panel.contains("1/9"), "{panel}");
}

#[test]
fn an_expired_certificate_for_the_right_name_and_a_smarthost() {
    let peers = Peers::start(ZONE);
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = certificate(&dir.path().join("tls"), &["mail.bad.test"], 2019, 2020);
    let extra = format!(
        "\n[dns]\nnameservers = [\"127.0.0.1:{dns}\"]\n\n\
         [outbound.relay]\nhost = \"localhost\"\nport = {smtp}\n\n{tls}",
        dns = peers.dns_port,
        smtp = peers.smtp_port
    );
    let text = config_text(&dir.path().join("data"), &extra)
        .replace("automatic = false", "blocklists = [\"bl.test\"]")
        .replace("hostname = \"localhost\"", "hostname = \"mail.bad.test\"")
        .replace(
            "domains = [\"home.test\", \"family.test\"]",
            "domains = [\"bad.test\"]",
        );
    let server = Server::start_config(dir, &text);
    let findings = health(&server);
    let (verdict, finding) = verdict_of(&findings, "certificate");
    assert_eq!(verdict, "problem", "{finding}");
    assert!(
        finding["found"]
            .as_str()
            .unwrap_or_default()
            .contains("expired on 2020-01-01"),
        "{finding}"
    );
    // With a smarthost, port 25 and the box's own reverse name do not matter; a blocklisted
    // address still deserves a word.
    assert_eq!(verdict_of(&findings, "outgoing_port").0, "not_needed");
    assert_eq!(verdict_of(&findings, "reverse_dns").0, "not_needed");
    assert_eq!(verdict_of(&findings, "blocklists").0, "warning");
}
