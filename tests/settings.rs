//! The settings file in the data directory, laid over the config file: the daemon runs with
//! it, `letterbox config show` names where each value came from, and a bad one is refused
//! with its file and line.

mod common;

use std::time::{Duration, Instant};

use common::{BIN, PY_PRELUDE, Raw, Server, text};

const SETTINGS: &str = r#"hostname = "mail.settings.test"
[outbound.relay]
host = "smtp.relay.test"
port = 465
tls = "tls"
username = "box"
password = "relay secret 42"
"#;

fn source_of<'a>(shown: &'a str, key: &str) -> &'a str {
    shown
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("{key} not shown:\n{shown}"))
        .rsplit_once("# ")
        .map(|(_, source)| source)
        .unwrap_or("")
}

#[test]
fn settings_are_laid_over_the_config_file_and_shown_with_their_source() {
    let mut server = Server::start();
    server.stop();
    let settings = server.data_dir().join("settings.toml");
    std::fs::write(&settings, SETTINGS).expect("settings");
    server.launch();

    // The daemon uses the settings' host name.
    let mut smtp = Raw::connect(server.addr("smtp"));
    let banner = smtp.line();
    assert!(
        banner.starts_with("220 mail.settings.test "),
        "banner: {banner}"
    );
    let out = server.cli(&["status", "--json"], None);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(status["hostname"], "mail.settings.test");

    let out = server.cli(&["config", "show"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let from_settings = format!("settings file {}", settings.display());
    let from_config = format!("config file {}", server.config.display());
    assert_eq!(source_of(&shown, "hostname"), from_settings);
    assert_eq!(source_of(&shown, "outbound.relay.host"), from_settings);
    assert_eq!(source_of(&shown, "domains"), from_config);
    assert_eq!(source_of(&shown, "outbound.mx_port"), "default");
    assert!(
        shown.contains("hostname = \"mail.settings.test\""),
        "{shown}"
    );
    assert!(
        shown.contains("outbound.relay.password = \"(set)\""),
        "{shown}"
    );
    assert!(
        !shown.contains("relay secret"),
        "the password leaked:\n{shown}"
    );
    assert!(
        !server.log().contains("relay secret"),
        "the password is in the log"
    );
}

#[test]
fn a_bad_settings_file_is_refused_with_file_and_line() {
    let mut server = Server::start();
    server.stop();
    let settings = server.data_dir().join("settings.toml");
    std::fs::write(&settings, "hostname = \"ok.test\"\nlisten = 1\n").expect("settings");
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&server.config)
        .arg("run")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:2:", settings.display())),
        "{stderr}"
    );
    assert!(stderr.contains("listen"), "{stderr}");
}

fn status(server: &Server) -> serde_json::Value {
    let out = server.cli(&["status", "--json"], None);
    assert!(out.status.success(), "status: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn a_changed_settings_file_applies_on_sighup_without_losing_mail() {
    let server = Server::start();
    server.add_user("alice@home.test");
    server.python_ok(
        &format!(
            "{PY_PRELUDE}\ns = smtplib.SMTP('127.0.0.1', SMTP_PORT, timeout=30)\n\
             s.sendmail('x@elsewhere.test', ['alice@home.test'], 'Subject: kept\\r\\n\\r\\nbody\\r\\n')\n\
             s.quit()\n"
        ),
        &[],
    );
    assert_eq!(status(&server)["messages_stored"], 1);

    std::fs::write(
        server.data_dir().join("settings.toml"),
        "hostname = \"mail.reloaded.test\"\n",
    )
    .expect("settings");
    server.signal("HUP");
    let start = Instant::now();
    let status = loop {
        let status = status(&server);
        if status["hostname"] == "mail.reloaded.test" {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not reloaded; log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status["running"], true);
    assert_eq!(
        status["messages_stored"], 1,
        "the stored message is still there"
    );
    // The listeners were bound again (the test config asks for any free port).
    let smtp: std::net::SocketAddr = status["listeners"]
        .as_array()
        .expect("listeners")
        .iter()
        .find(|l| l["service"] == "smtp" && l["up"] == true)
        .and_then(|l| l["address"].as_str())
        .expect("smtp up")
        .parse()
        .expect("address");
    let mut client = Raw::connect(smtp);
    let banner = client.line();
    assert!(banner.starts_with("220 mail.reloaded.test "), "{banner}");

    // A settings file with an error leaves the running config as it was.
    std::fs::write(server.data_dir().join("settings.toml"), "bogus = 1\n").expect("settings");
    server.signal("HUP");
    wait_for_log(&server, "SIGHUP: the running config stays");
    let mut client = Raw::connect(smtp);
    assert!(client.line().starts_with("220 mail.reloaded.test "));

    // So does one the services cannot use (a certificate that is not there), and the reason
    // reaches whoever asked: here the SIGHUP handler's log line.
    let missing = server.data_dir().join("no-such");
    std::fs::write(
        server.data_dir().join("settings.toml"),
        format!(
            "hostname = \"mail.broken.test\"\n[tls]\ncert = \"{0}/cert.pem\"\nkey = \"{0}/key.pem\"\n",
            missing.display()
        ),
    )
    .expect("settings");
    server.signal("HUP");
    wait_for_log(&server, "the services cannot use the new settings (TLS:");
    let mut client = Raw::connect(smtp);
    assert!(client.line().starts_with("220 mail.reloaded.test "));
}

/// Waits (20 s at most) until the daemon's log holds `text`.
fn wait_for_log(server: &Server, text: &str) {
    let start = Instant::now();
    while !server.log().contains(text) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no {text:?} in the log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
