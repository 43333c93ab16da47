//! The panel and button in the running daemon: a board whose I2C bus and GPIO chip do not
//! exist does not stop the mail services; the simulated panel writes `panel.png` (an OLED)
//! or logs its screens (a character LCD); `letterbox panel --text` prints the screen; the
//! virtual button steps pages, enters setup mode and shuts the daemon down cleanly.

mod common;

use std::time::{Duration, Instant};

use common::{Raw, Server, config_text, text};
use letterbox::panel::{Frame, PanelSize};

/// Restarts `server` with `top` (top-level keys) before and `tables` after the test config.
fn relaunch(server: &mut Server, top: &str, tables: &str) {
    server.stop();
    let body = config_text(&server.data_dir(), "");
    std::fs::write(&server.config, format!("{top}\n{body}\n{tables}\n")).expect("config");
    server.launch();
}

fn picture(server: &Server, name: &str) -> Frame {
    let path = server.dir.path().join(name);
    let out = server.cli(
        &[
            "panel",
            "--png",
            path.to_str().expect("path"),
            "--scale",
            "2",
        ],
        None,
    );
    assert!(out.status.success(), "panel: {}", text(&out.stderr));
    Frame::from_png(&std::fs::read(&path).expect("png"), 2).expect("decode")
}

fn press(server: &Server, kind: &str) {
    let out = server.cli(&["button", kind], None);
    assert!(out.status.success(), "button {kind}: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("pressed {kind}")));
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn missing_panel_and_button_hardware_does_not_stop_mail() {
    let mut server = Server::start();
    relaunch(
        &mut server,
        r#"board = "rpi-4b""#,
        "[panel]\ni2c = \"/nonexistent/i2c-9\"\nsize = \"128x32\"\n\n[button]\nchip = \"/nonexistent/gpiochip9\"\nline = 17\n",
    );
    let mut smtp = Raw::connect(server.addr("smtp"));
    assert!(smtp.line().starts_with("220 "), "SMTP answers");
    assert!(smtp.cmd("EHLO client.test").starts_with("250 "));
    assert!(smtp.cmd("QUIT").starts_with("221"));

    // Logged once each, not on every retry.
    wait_for("the panel warning", || {
        server.log().contains("panel unavailable")
    });
    wait_for("the button warning", || {
        server.log().contains("button unavailable")
    });
    std::thread::sleep(Duration::from_secs(4)); // a few retries
    let log = server.log();
    assert_eq!(log.matches("panel unavailable").count(), 1, "{log}");
    assert_eq!(log.matches("button unavailable").count(), 1, "{log}");

    // What the panel would show is still there, at the board's (overridden) size.
    let frame = picture(&server, "now.png");
    assert_eq!(frame.size(), PanelSize::W128H32);
    assert!(!frame.is_blank());
    let status = server.cli(&["status"], None);
    assert!(status.status.success(), "{}", text(&status.stderr));
    assert!(server.stop().success());
}

#[test]
fn simulated_panel_and_virtual_button() {
    let mut server = Server::start();
    // With an account the box is set up, so it starts in normal mode.
    server.add_user("alice@home.test");
    relaunch(&mut server, r#"board = "simulated""#, "");
    let png = server.data_dir().join("panel.png");
    wait_for("panel.png", || png.exists());

    let ports = picture(&server, "ports.png");
    assert_eq!(ports.size(), PanelSize::W128H64);
    press(&server, "short");
    wait_for("the mail page", || picture(&server, "mail.png") != ports);

    press(&server, "long");
    wait_for("setup mode", || {
        let out = server.cli(&["status", "--json"], None);
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        status["setup_mode"] == true
    });

    press(&server, "verylong");
    let control = server.data_dir().join("control.sock");
    wait_for("a clean exit", || !control.exists());
    // Already gone by itself; its exit status says whether it ended cleanly.
    assert!(server.stop().success(), "log:\n{}", server.log());
    assert!(server.log().contains("Press(VeryLong)"));
    // The picture is dark at the end.
    let last = Frame::from_png(&std::fs::read(&png).expect("png"), 1).expect("decode");
    assert!(last.is_blank());
}

#[test]
fn button_without_a_daemon_says_so_and_panel_draws_offline() {
    let mut server = Server::start();
    server.stop();
    let out = server.cli(&["button", "short"], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not running"),
        "{}",
        text(&out.stderr)
    );
    let frame = picture(&server, "offline.png");
    assert!(!frame.is_blank());
    // An OLED's screen as text: the 20×4 layout of the same view.
    let out = server.cli(&["panel", "--text"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("|PORTS            1/3|"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_simulated_character_panel_logs_its_screens_and_panel_text_prints_them() {
    let mut server = Server::start();
    server.add_user("alice@home.test");
    relaunch(
        &mut server,
        r#"board = "simulated""#,
        "[panel]\nkind = \"hd44780\"\nsize = \"20x4\"\n",
    );
    wait_for("the first screen in the log", || {
        server.log().contains("panel [PORTS            1/3 | ")
    });
    let panel_text = |server: &Server| {
        let out = server.cli(&["panel", "--text"], None);
        assert!(out.status.success(), "panel --text: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let ports = panel_text(&server);
    assert!(
        ports.starts_with("+--------------------+\n|PORTS            1/3|\n"),
        "{ports}"
    );
    assert_eq!(ports.lines().count(), 6, "a 20×4 box: {ports}");
    press(&server, "short");
    wait_for("the mail page as text", || {
        panel_text(&server).contains("|MAIL             2/3|")
    });
    wait_for("the mail page in the log", || {
        server.log().contains("panel [MAIL ")
    });
    // --png draws the LCD's glass: 20×4 cells of 5×8 dots, a dot between cells, a border
    // of four; each dot 2×2 pixels.
    let path = server.dir.path().join("lcd.png");
    let out = server.cli(
        &[
            "panel",
            "--png",
            path.to_str().expect("path"),
            "--scale",
            "2",
        ],
        None,
    );
    assert!(out.status.success(), "panel --png: {}", text(&out.stderr));
    let png = std::fs::read(&path).expect("png");
    let be32 = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().expect("4 bytes"));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(
        (be32(16), be32(20)),
        ((8 + 20 * 6 - 1) * 2, (8 + 4 * 9 - 1) * 2)
    );

    // No board: the probe needs to be told the bus; a bus that is not there is named.
    let out = server.cli(&["panel", "--probe"], None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--bus"), "{}", text(&out.stderr));
    let out = server.cli(&["panel", "--probe", "--bus", "/nonexistent/i2c-9"], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("/nonexistent/i2c-9"),
        "{}",
        text(&out.stderr)
    );
    assert!(server.stop().success(), "log:\n{}", server.log());
}

#[test]
fn a_missing_character_lcd_is_reported_once_with_its_address() {
    let mut server = Server::start();
    relaunch(
        &mut server,
        r#"board = "rpi-3b""#,
        "[panel]\nkind = \"hd44780\"\ni2c = \"/nonexistent/i2c-9\"\n\n[button]\nchip = \"/nonexistent/gpiochip9\"\nline = 17\n",
    );
    // The board's OLED address and size give way to the LCD's defaults.
    wait_for("the panel warning", || {
        server
            .log()
            .contains("HD44780 16x2 on /nonexistent/i2c-9 at 0x27")
    });
    std::thread::sleep(Duration::from_secs(3)); // a few retries
    let log = server.log();
    assert_eq!(log.matches("panel unavailable").count(), 1, "{log}");
    let mut smtp = Raw::connect(server.addr("smtp"));
    assert!(smtp.line().starts_with("220 "), "SMTP answers");
    assert!(server.stop().success());
}
