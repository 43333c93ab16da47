//! Setup mode in the running daemon: a box without accounts starts in it; `letterbox setup`,
//! `letterbox setup --off` and a long press of the (virtual) button move it in and out, and
//! `letterbox status` shows what the control loop decided.

mod common;

use std::time::{Duration, Instant};

use common::{Server, text};

fn status(server: &Server) -> serde_json::Value {
    let out = server.cli(&["status", "--json"], None);
    assert!(out.status.success(), "status: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn mode(server: &Server) -> String {
    let status = status(server);
    let mode = status["mode"].as_str().expect("mode").to_string();
    assert_eq!(status["setup_mode"] == true, mode == "setup", "{status}");
    mode
}

fn setup(server: &Server, args: &[&str], said: &str) {
    let out = server.cli(args, None);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), said);
}

fn wait_for_mode(server: &Server, want: &str) {
    let start = Instant::now();
    while mode(server) != want {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for mode {want}; log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_box_without_accounts_starts_in_setup_mode() {
    let mut server = Server::start();
    assert_eq!(mode(&server), "setup");
    let human = text(&server.cli(&["status"], None).stdout);
    assert!(human.contains("setup mode    on"), "{human}");

    server.add_user("alice@home.test");
    server.stop();
    server.launch();
    assert_eq!(mode(&server), "normal");
}

#[test]
fn setup_command_and_long_press_move_in_and_out_of_setup_mode() {
    let mut server = Server::start();
    server.add_user("alice@home.test");
    server.stop();
    server.launch();
    assert_eq!(mode(&server), "normal");

    // The command answers once the mode is published, so status already shows it.
    setup(&server, &["setup"], "setup mode on");
    assert_eq!(mode(&server), "setup");
    setup(&server, &["setup", "--off"], "setup mode off");
    assert_eq!(mode(&server), "normal");

    let out = server.cli(&["button", "long"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_for_mode(&server, "setup");
    let out = server.cli(&["button", "long"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_for_mode(&server, "normal");

    // Without a daemon there is no mode to change.
    assert!(server.stop().success());
    let out = server.cli(&["setup"], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not running"),
        "{}",
        text(&out.stderr)
    );
}
