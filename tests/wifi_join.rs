//! `letterbox wifi join` with the daemon running: its control loop joins, since it owns the
//! radio. A setup-mode hotspot is lowered first (as for the setup page's join), and the join
//! is the daemon's own: its log says so, and a second process never touches the radio.
//! The radio is the simulated backend (the hwsim stage of image/test drives a real one).

mod common;

use std::time::{Duration, Instant};

use common::{Server, text};

fn status(server: &Server) -> serde_json::Value {
    let out = server.cli(&["status", "--json"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

fn join(server: &Server, ssid: &str, passphrase: &str) -> (bool, String) {
    let out = server.cli(
        &["wifi", "join", ssid, "--passphrase-stdin"],
        Some(&format!("{passphrase}\n")),
    );
    (out.status.success(), text(&out.stdout) + &text(&out.stderr))
}

fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool, server: &Server) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < within,
            "{what} not seen within {within:?}; log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_join_from_the_command_line_is_made_by_the_running_daemon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = common::config_text(&dir.path().join("data"), "");
    config.push_str(
        "\n[network]\nbackend = \"simulated\"\nsimulated_networks = [\"Home\", \"Neighbours\"]\n\
         simulated_hotspot = \"127.0.0.2\"\nsimulated_passphrase = \"correct horse\"\n",
    );
    // A fresh box: setup mode, with its hotspot up.
    let server = Server::start_config(dir, &config);
    wait_for(
        "the setup hotspot",
        Duration::from_secs(20),
        || status(&server)["setup"]["network"].is_string(),
        &server,
    );

    // The daemon lowers its hotspot, then joins: the command says so at once.
    let (ok, said) = join(&server, "Home", "correct horse");
    assert!(ok, "{said}");
    assert!(said.contains("once the setup hotspot is down"), "{said}");
    wait_for(
        "the daemon's join",
        Duration::from_secs(30),
        || server.log().contains("simulated Wi-Fi: joined"),
        &server,
    );
    assert!(
        !said.contains("simulated Wi-Fi: joined"),
        "the command joined by itself: {said}"
    );
    wait_for(
        "the hotspot gone from the status",
        Duration::from_secs(20),
        || status(&server)["setup"]["network"].is_null(),
        &server,
    );

    // No hotspot up now: the answer comes when the join is done, a refusal with its reason.
    let (ok, said) = join(&server, "Neighbours", "not the passphrase");
    assert!(!ok, "{said}");
    assert!(said.contains("refused the passphrase"), "{said}");
    let (ok, said) = join(&server, "Elsewhere", "correct horse");
    assert!(!ok, "{said}");
    assert!(said.contains("in range"), "{said}");
    let (ok, said) = join(&server, "Neighbours", "correct horse");
    assert!(ok, "{said}");
    assert!(said.contains("joined Neighbours"), "{said}");
    wait_for(
        "the daemon's second join",
        Duration::from_secs(10),
        || server.log().matches("simulated Wi-Fi: joined").count() == 2,
        &server,
    );
}
