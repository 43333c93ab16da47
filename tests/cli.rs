//! The operator interface: accounts and aliases with and without a running daemon, status,
//! config errors, clean shutdown.

mod common;

use common::{BIN, Server, text};

#[test]
fn accounts_work_offline_and_through_the_running_daemon() {
    let mut server = Server::start();
    server.add_user("alice@home.test");
    server.stop();
    // Offline: the CLI opens the store itself.
    server.add_user("bob@home.test");
    let out = server.cli(&["user", "list"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = text(&out.stdout);
    assert!(
        list.contains("alice@home.test") && list.contains("bob@home.test"),
        "{list}"
    );

    server.launch();
    let out = server.cli(
        &["user", "passwd", "bob@home.test", "--password-stdin"],
        Some("a new secret\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = server.cli(&["user", "delete", "alice@home.test"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = server.cli(&["user", "list", "--json"], None);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|a| a["address"].as_str())
        .collect();
    assert_eq!(names, vec!["bob@home.test"]);
    // --admin: the account may use the admin page; `user list` says so.
    let out = server.cli(
        &[
            "user",
            "add",
            "dora@home.test",
            "--password-stdin",
            "--admin",
        ],
        Some("lantern otter maple 9\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = server.cli(&["user", "list"], None);
    let list = text(&out.stdout);
    let line = |who: &str| {
        list.lines()
            .find(|l| l.contains(who))
            .unwrap_or("")
            .to_string()
    };
    assert!(line("dora@home.test").ends_with("administrator"), "{list}");
    assert!(!line("bob@home.test").contains("administrator"), "{list}");

    let out = server.cli(&["alias", "add", "kids@home.test", "bob@home.test"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = server.cli(&["alias", "list"], None);
    assert!(text(&out.stdout).contains("kids@home.test -> bob@home.test"));
    let out = server.cli(&["alias", "delete", "kids@home.test"], None);
    assert!(out.status.success());
}

#[test]
fn bad_requests_fail_with_one_clear_line() {
    let server = Server::start();
    let cases: [(&[&str], Option<&str>, &str); 7] = [
        (
            &["user", "add", "x@elsewhere.example", "--password-stdin"],
            Some("long enough pw\n"),
            "not a local domain",
        ),
        (
            &["user", "add", "carol@home.test", "--password-stdin"],
            Some("short\n"),
            "at least 10 characters",
        ),
        (
            &["user", "add", "carol@home.test", "--password-stdin"],
            Some("Password123!\n"),
            "one of the most common ones",
        ),
        (
            &["user", "add", "carol@home.test", "--password-stdin"],
            Some("carol is great\n"),
            "the account's name",
        ),
        (
            &["user", "delete", "nobody@home.test"],
            None,
            "no such account",
        ),
        (
            &["alias", "add", "pets@home.test", "nobody@home.test"],
            None,
            "no such account",
        ),
        (
            &["alias", "delete", "nothing@home.test"],
            None,
            "no such alias",
        ),
    ];
    for (args, stdin, want) in cases {
        let out = server.cli(args, stdin);
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    }
    server.add_user("dave@home.test");
    let out = server.cli(
        &["user", "add", "dave@home.test", "--password-stdin"],
        Some("another password\n"),
    );
    assert!(text(&out.stderr).contains("already exists"));
}

#[test]
fn status_shows_listeners_and_counts() {
    let mut server = Server::start();
    server.add_user("alice@home.test");
    let out = server.cli(&["status", "--json"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(status["running"], true);
    let listeners = status["listeners"].as_array().expect("listeners");
    let smtp = listeners
        .iter()
        .find(|l| l["service"] == "smtp")
        .expect("smtp");
    assert_eq!(smtp["up"], true);
    assert_eq!(smtp["address"], server.addr("smtp").to_string());
    assert_eq!(status["messages_stored"], 0);
    assert!(status["storage"]["free_bytes"].as_u64().is_some());

    let human = text(&server.cli(&["status"], None).stdout);
    assert!(
        human.contains("running") && human.contains("smtp"),
        "{human}"
    );

    let exit = server.stop();
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    let out = server.cli(&["status", "--json"], None);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(status["running"], false);
}

#[test]
fn a_bad_config_is_refused_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "hostname = \"ok.example\"\n[limits]\nmax_mesage_size = \"1MiB\"\n",
    )
    .expect("write");
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .arg("run")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:3:", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("max_mesage_size"), "{stderr}");
}

#[test]
fn a_busy_port_is_reported_and_the_other_services_run() {
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = blocker.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("letterbox.toml");
    let text_config = common::config_text(&dir.path().join("data"), "")
        .replace("pop3 = [\"127.0.0.1:0\"]", &format!("pop3 = [\"{busy}\"]"));
    std::fs::write(&config, text_config).expect("config");
    let mut child = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("run")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run");
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("stdout");
    let lines: Vec<String> = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .take_while(|l| l != "ready")
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("failed pop3 {busy}"))),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("listening smtp")),
        "{lines:?}"
    );
}

/// Every task of the daemon ends on SIGTERM, idle sessions included: none is left for the
/// drain timeout to cut off. (Waiting for a Wi-Fi radio that a box without one never gets
/// held every stop for the whole timeout, 10 s, for the first two minutes after a start.)
#[test]
fn a_stop_ends_every_task_without_waiting_out_the_drain_timeout() {
    let mut server = Server::start();
    let mut imap = common::Raw::connect(server.addr("imap"));
    assert!(imap.line().starts_with("* OK"));
    let mut pop3 = common::Raw::connect(server.addr("pop3"));
    assert!(pop3.line().starts_with("+OK"));
    let exit = server.stop();
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    let log = server.log();
    assert!(log.contains("shutting down"), "{log}");
    assert!(!log.contains("after the drain timeout"), "{log}");
}

/// A command whose output goes into a pipe that has closed (`letterbox config show | head
/// -1`) ends quietly, as Unix tools do (by SIGPIPE), instead of panicking with a backtrace.
#[test]
fn a_command_printing_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let (reader, writer) = std::io::pipe().expect("pipe");
    // Closed before the command starts: its first line already finds no reader.
    drop(reader);
    let out = std::process::Command::new(BIN)
        .args(["config", "show"])
        .current_dir(dir.path())
        .env_remove("LETTERBOX_CONFIG")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("letterbox config show");
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(13), "{:?}: {stderr}", out.status);
}
