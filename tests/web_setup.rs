//! The setup wizard in a real browser: Debian's Chromium driven by playwright-core
//! (tests/web/setup.mjs) sets up a fresh box over the LAN on a phone-sized screen; then mail
//! flows between the two accounts it made (smtplib over 587, imaplib over 993, checking the
//! certificate made for the new host name). Also the captive portal's probes before and after,
//! the RFC 8908 API, and the HTTPS listener.
//!
//! Needs `node`, `tests/web/node_modules` (`npm ci --prefix tests/web`) and `/usr/bin/chromium`
//! (`bash .ci/install` installs all three); without them the test fails and says so.

mod common;

use std::path::Path;
use std::process::Command;

use common::peers::Peers;
use common::{Server, text};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A fresh box on fixed loopback ports (they must stay the same across the in-process
/// restart that finishing the wizard causes), with a simulated Wi-Fi radio, its resolver on
/// the test DNS server and the test relay's certificate trusted.
fn start_fresh(peers: &Peers) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut listen = String::new();
    for service in [
        "smtp",
        "submission",
        "submissions",
        "pop3",
        "pop3s",
        "imap",
        "imaps",
        "web",
        "web_tls",
    ] {
        listen.push_str(&format!("{service} = [\"127.0.0.1:{}\"]\n", free_port()));
    }
    let text = format!(
        r#"hostname = "localhost"
domains = ["home.test"]
data_dir = "{data}"

[listen]
{listen}
[auth]
check_inbound = false

[dns]
nameservers = ["127.0.0.1:{dns}"]

[outbound]
relay_ca_file = "{relay_ca}"

[network]
backend = "simulated"
simulated_networks = ["Smith-Home", "Neighbours"]

[limits]
argon2_memory = "1MiB"
login_failure_delay = 0
"#,
        data = data.display(),
        dns = peers.dns_port,
        relay_ca = peers.ca().display(),
    );
    Server::start_config(dir, &text)
}

fn status(server: &Server) -> serde_json::Value {
    let out = server.cli(&["status", "--json"], None);
    assert!(out.status.success(), "status: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

/// `curl` of a URL on the box: (status code, headers and body as text).
fn curl(url: &str, host: Option<&str>) -> (u16, String) {
    let mut command = Command::new("curl");
    command.args(["-s", "-i", "-k", "--max-time", "10"]);
    if let Some(host) = host {
        command.args(["-H", &format!("Host: {host}")]);
    }
    let out = command.arg(url).output().expect("curl");
    let response = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP response from {url}: {response}"));
    (code, response)
}

/// The probes of Android, Apple, Windows and Firefox, with the host each asks.
const PROBES: [(&str, &str); 6] = [
    ("connectivitycheck.gstatic.com", "/generate_204"),
    ("captive.apple.com", "/hotspot-detect.html"),
    ("www.msftconnecttest.com", "/connecttest.txt"),
    ("www.msftncsi.com", "/ncsi.txt"),
    ("detectportal.firefox.com", "/canonical.html"),
    ("detectportal.firefox.com", "/success.txt"),
];

#[test]
fn a_fresh_box_is_set_up_in_a_browser_and_mail_flows_between_the_accounts_it_made() {
    let peers = Peers::start("localhost. 60 IN A 127.0.0.1\n");
    let server = start_fresh(&peers);
    let web = server.addr("web");
    let base = format!("http://{web}");

    // A fresh box is in setup mode with a one-time code, shown by `letterbox status`.
    let before = status(&server);
    assert_eq!(before["mode"], "setup", "{before}");
    let code = before["setup"]["code"]
        .as_str()
        .expect("a one-time code")
        .to_string();
    assert_eq!(before["setup"]["url"], format!("http://{web}/setup"));

    // In setup mode every probe is sent to the wizard (that is what opens the page on a
    // phone), and so is any other site.
    for (host, path) in PROBES {
        let (status, response) = curl(&format!("{base}{path}"), Some(host));
        assert_eq!(status, 302, "{host}{path}: {response}");
        assert!(
            response.contains(&format!("location: http://{web}/setup")),
            "{host}{path}: {response}"
        );
    }
    let (status_code, response) = curl(&format!("{base}/some/page"), Some("news.example"));
    assert_eq!(status_code, 302, "{response}");
    let (status_code, response) = curl(&format!("{base}/captive-portal/api"), None);
    assert_eq!(status_code, 200);
    assert!(
        response.contains("content-type: application/captive+json"),
        "{response}"
    );
    let web_tls = server.addr("web_tls");
    assert!(
        response.contains(&format!(
            r#""user-portal-url":"https://127.0.0.1:{}/setup""#,
            web_tls.port()
        )),
        "{response}"
    );
    assert!(response.contains(r#""captive":true"#), "{response}");
    // The same pages over HTTPS, with the mail services' certificate.
    let (status_code, response) = curl(&format!("https://{web_tls}/setup/code"), None);
    assert_eq!(status_code, 200, "{response}");
    assert!(
        response.contains("Secure"),
        "the cookie is Secure over TLS: {response}"
    );

    // The browser does the wizard.
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    std::fs::create_dir_all(&shots).expect("docs");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web/setup.mjs");
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web/node_modules");
    assert!(
        modules.join("playwright-core").exists(),
        "playwright-core is missing: run `npm ci --prefix tests/web` (bash .ci/install does)"
    );
    let out = Command::new("node")
        .arg(&script)
        .env("BASE", &base)
        .env("CODE", &code)
        .env(
            "DKIM_KEY",
            letterbox::outbound::dkim::key_path(&server.data_dir()),
        )
        .env("SHOTS", &shots)
        .env("RELAY_HOST", "localhost")
        .env("RELAY_PORT", peers.smtp_port.to_string())
        .env("RELAY_USER", "relay-user")
        .env("RELAY_PASSWORD", "relay secret")
        .output()
        .expect("node (apt-get install nodejs)");
    println!("{}", text(&out.stdout));
    assert!(
        out.status.success(),
        "the browser test failed:\n{}\n{}\nserver log:\n{}",
        text(&out.stdout),
        text(&out.stderr),
        server.log()
    );

    // Setup mode has ended and the settings are in effect.
    let after = status(&server);
    assert_eq!(after["mode"], "normal", "{after}");
    assert!(after["setup"].is_null(), "the code is withdrawn: {after}");
    assert_eq!(after["hostname"], "mail.smith.test", "{after}");
    let users = server.cli(&["user", "list"], None);
    let users = text(&users.stdout);
    assert!(
        users.contains("anna@smith.test") && users.contains("ben@smith.test"),
        "{users}"
    );
    assert!(
        users
            .lines()
            .any(|l| l.contains("anna@smith.test") && l.contains("administrator")),
        "the first person is the administrator: {users}"
    );
    assert!(
        !users
            .lines()
            .any(|l| l.contains("ben@smith.test") && l.contains("administrator")),
        "{users}"
    );
    let config = server.cli(&["config", "show"], None);
    let config = text(&config.stdout);
    assert!(
        config.contains("outbound.relay.password = \"(set)\""),
        "{config}"
    );
    assert!(config.contains("country = \"US\""), "{config}");
    assert!(!config.contains("relay secret"), "{config}");
    assert!(
        !server.log().contains("relay secret") && !server.log().contains("otter maple lantern"),
        "no secret in the log"
    );

    // Outside setup mode the probes get the answers that mean "online".
    for (host, path) in PROBES {
        let (status_code, response) = curl(&format!("{base}{path}"), Some(host));
        let expected = if path == "/generate_204" { 204 } else { 200 };
        assert_eq!(status_code, expected, "{host}{path}: {response}");
    }
    let (_, apple) = curl(
        &format!("{base}/hotspot-detect.html"),
        Some("captive.apple.com"),
    );
    assert!(apple.contains("<TITLE>Success</TITLE>"), "{apple}");
    let (_, api) = curl(&format!("{base}/captive-portal/api"), None);
    assert!(api.contains(r#""captive":false"#), "{api}");

    // Mail between the two new accounts: smtplib over 587 with STARTTLS, imaplib over 993,
    // both checking the certificate the box made for its new host name.
    let script = r#"
import imaplib, os, smtplib, ssl, sys, time
ctx = ssl.create_default_context(cafile=os.environ["CERT"])
s = smtplib.SMTP("127.0.0.1", int(os.environ["SUBMISSION_PORT"]), timeout=30)
s._host = "mail.smith.test"   # the name the certificate must be valid for
s.starttls(context=ctx)
s.login("anna@smith.test", "otter maple lantern 42")
s.sendmail("anna@smith.test", ["ben@smith.test"],
    "From: Anna <anna@smith.test>\r\nTo: ben@smith.test\r\nSubject: set up in a browser\r\n\r\nIt works.\r\n")
s.quit()
class Imaps(imaplib.IMAP4_SSL):
    def _create_socket(self, timeout):
        import socket
        sock = socket.create_connection(("127.0.0.1", self.port), timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname="mail.smith.test")
deadline = time.time() + 30
while True:
    m = Imaps("127.0.0.1", int(os.environ["IMAPS_PORT"]), ssl_context=ctx)
    m.login("ben@smith.test", "quiet harbour pencil 7")
    m.select("INBOX")
    typ, data = m.search(None, "SUBJECT", '"set up in a browser"')
    if data[0]:
        typ, body = m.fetch(data[0].split()[0], "(BODY[TEXT])")
        assert b"It works." in body[0][1], body
        print("delivered")
        break
    m.logout()
    assert time.time() < deadline, "the message did not arrive"
    time.sleep(0.5)
"#;
    let out = server.python_ok(script, &[]);
    assert!(out.contains("delivered"), "{out}");
}

#[test]
fn outside_setup_mode_no_setup_url_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut text = common::config_text(&data, "");
    text = text.replace("web = []", "web = [\"127.0.0.1:0\"]");
    let server = Server::start_config(dir, &text);
    server.add_user("alice@home.test");
    let out = server.cli(&["setup", "--off"], None);
    assert!(out.status.success());
    let base = format!("http://{}", server.addr("web"));
    for path in [
        "/setup",
        "/setup/code",
        "/setup/names",
        "/setup/accounts",
        "/setup/summary",
    ] {
        let (status_code, response) = curl(&format!("{base}{path}"), None);
        assert_eq!(status_code, 404, "{path}: {response}");
    }
    // And a foreign Host is not redirected: there is no captive portal outside setup mode.
    let (status_code, _) = curl(&format!("{base}/setup"), Some("captive.apple.com"));
    assert_eq!(status_code, 404);
    // `letterbox setup` brings the pages back, with a new code.
    let out = server.cli(&["setup"], None);
    assert!(out.status.success());
    let (status_code, response) = curl(&format!("{base}/setup"), None);
    assert_eq!(status_code, 303, "{response}");
    assert!(response.contains("location: /setup/code"), "{response}");
}
