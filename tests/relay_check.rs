//! The setup page's "test connection" for a smarthost (`outbound::relay_check::test_relay`),
//! run against a real SMTP receiver on loopback (tests/peers.py: aiosmtpd with STARTTLS under a
//! certificate for "localhost" and AUTH that requires TLS), the way the wizard will call it: the
//! relay comes from the settings file, its CA from the config file's `[outbound]
//! relay_ca_file`, naming the test CA that signed the receiver's certificate.

mod common;

use common::peers::Peers;
use letterbox::config::Config;
use letterbox::outbound::relay_check::{RelayReport, test_relay};
use letterbox::outbound::{dns, relay_extra_ca};
use letterbox::settings::Settings;

const ZONE: &str = "localhost. 60 IN A 127.0.0.1\n";

/// The effective config: `[outbound] relay_ca_file` from the config file (when `with_ca`), the
/// relay from the settings file with `password`, on `port`.
fn config(peers: &Peers, port: u16, password: &str, with_ca: bool) -> Config {
    let ca = if with_ca {
        format!("relay_ca_file = \"{}\"\n", peers.ca().display())
    } else {
        String::new()
    };
    let text = format!(
        "[dns]\nnameservers = [\"127.0.0.1:{}\"]\n\n[outbound]\n{ca}",
        peers.dns_port
    );
    let mut config = Config::parse(&text, "letterbox.toml").expect("config");
    let settings = Settings::parse(
        &format!(
            "[outbound.relay]\nhost = \"localhost\"\nport = {port}\ntls = \"starttls\"\n\
             username = \"relay-user\"\npassword = \"{password}\"\n"
        ),
        "settings.toml",
    )
    .expect("settings");
    settings.apply(&mut config);
    config
}

async fn run(config: &Config) -> RelayReport {
    let resolver = dns::resolver(config).expect("resolver");
    let extra = relay_extra_ca(config).expect("extra CA");
    let relay = config.outbound.relay.as_ref().expect("relay");
    test_relay(&resolver, relay, &extra, "mail.home.test").await
}

fn show(report: &RelayReport) -> String {
    report.steps.join("\n")
}

#[tokio::test]
async fn the_right_password_passes_every_step() {
    let peers = Peers::start(ZONE);
    let config = config(&peers, peers.smtp_port, "relay secret", true);
    assert_eq!(
        config
            .outbound
            .relay
            .as_ref()
            .and_then(|r| r.ca_file.as_ref()),
        None,
        "the settings file's relay has no CA of its own"
    );
    let report = run(&config).await;
    let steps = show(&report);
    assert!(report.ok, "{steps}");
    let port = peers.smtp_port;
    // "localhost" may also resolve to ::1, where nothing listens: that address is reported
    // and the next one tried.
    assert!(
        report
            .steps
            .iter()
            .any(|s| s.starts_with(&format!("Connected to localhost [127.0.0.1]:{port}: 220 "))),
        "{steps}"
    );
    assert!(
        report
            .steps
            .iter()
            .any(|s| s.starts_with("STARTTLS: TLS 1.")
                && s.ends_with("certificate valid for localhost")),
        "{steps}"
    );
    assert!(
        report.steps.iter().any(|s| s.starts_with("AUTH: 235 ")),
        "{steps}"
    );
    assert!(
        report.steps.last().is_some_and(|s| s.starts_with("QUIT")),
        "{steps}"
    );
    assert!(!steps.contains("relay secret"), "{steps}");
}

#[tokio::test]
async fn a_wrong_password_shows_the_servers_535() {
    let peers = Peers::start(ZONE);
    let config = config(&peers, peers.smtp_port, "not the password", true);
    let report = run(&config).await;
    let steps = show(&report);
    assert!(!report.ok, "{steps}");
    let last = report.steps.last().expect("a step");
    assert!(
        last.starts_with("AUTH failed: the server answered 535"),
        "{steps}"
    );
    assert!(
        report.steps.iter().any(|s| s.starts_with("STARTTLS: ")),
        "TLS came first: {steps}"
    );
    assert!(!steps.contains("not the password"), "{steps}");
}

#[tokio::test]
async fn without_the_ca_the_certificate_is_refused() {
    let peers = Peers::start(ZONE);
    let config = config(&peers, peers.smtp_port, "relay secret", false);
    let report = run(&config).await;
    let steps = show(&report);
    assert!(!report.ok, "{steps}");
    let last = report.steps.last().expect("a step");
    assert!(
        last.starts_with("STARTTLS failed: ") && last.contains("certificate"),
        "{steps}"
    );
    assert!(
        !report.steps.iter().any(|s| s.starts_with("AUTH")),
        "no AUTH without TLS: {steps}"
    );
}

#[tokio::test]
async fn a_closed_port_is_a_refused_connection() {
    let peers = Peers::start(ZONE);
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let config = config(&peers, port, "relay secret", true);
    let report = run(&config).await;
    let steps = show(&report);
    assert!(
        report.steps.contains(&format!(
            "Connecting to localhost [127.0.0.1]:{port} failed: Connection refused (os error 111)."
        )),
        "{steps}"
    );
    assert!(
        report
            .steps
            .iter()
            .all(|s| s.starts_with("Connecting to localhost [")
                && s.ends_with("Connection refused (os error 111).")),
        "one step per address: {steps}"
    );
    assert!(!report.ok);
}

#[tokio::test]
async fn an_unknown_host_is_named() {
    let peers = Peers::start(ZONE);
    let mut config = config(&peers, peers.smtp_port, "relay secret", true);
    if let Some(relay) = config.outbound.relay.as_mut() {
        relay.host = "nowhere.test".into();
    }
    let report = run(&config).await;
    assert!(!report.ok);
    assert_eq!(report.steps.len(), 1, "{}", show(&report));
    assert!(
        report.steps[0].contains("nowhere.test"),
        "{}",
        show(&report)
    );
}
