//! The integration harness: starts the real `letterbox` binary on free loopback ports with
//! its own data directory, and runs clients that someone else wrote against it (Python's
//! smtplib/poplib, swaks, curl).
#![allow(dead_code)]

pub mod imap;
pub mod outbound;
pub mod peers;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_letterbox");
pub const PASSWORD: &str = "correct horse battery";

pub struct Server {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    child: Option<Child>,
    pub ports: HashMap<String, SocketAddr>,
}

/// The config used by tests: every implemented service on 127.0.0.1:0, cheap password hashing,
/// plus whatever `extra` adds (TOML appended to the `[limits]` table).
pub fn config_text(data_dir: &Path, limits: &str) -> String {
    format!(
        r#"hostname = "localhost"
domains = ["home.test", "family.test"]
data_dir = "{data}"

[listen]
smtp = ["127.0.0.1:0"]
submission = ["127.0.0.1:0"]
submissions = ["127.0.0.1:0"]
pop3 = ["127.0.0.1:0"]
pop3s = ["127.0.0.1:0"]
imap = ["127.0.0.1:0"]
imaps = ["127.0.0.1:0"]
web = []
web_tls = []

[auth]
# Tests that need SPF/DKIM/DMARC checks of received mail turn this on with their own DNS.
check_inbound = false

[spam]
# Port 25's filters are on by default; tests that are about them (tests/spam.rs) turn them
# on with their own DNS. Thresholds stay on: nothing here scores.
greylisting = false
dnsbl = []
dnswl = []
pregreet_wait = 0
rate_limits = false
helo_checks = false
[health]
# No test reaches the Internet: tests/health.rs points the checks at its own DNS server.
automatic = false

[limits]
argon2_memory = "1MiB"
login_failure_delay = 0
{limits}
"#,
        data = data_dir.display()
    )
}

impl Server {
    pub fn start() -> Server {
        Server::start_with("")
    }

    pub fn start_with(limits: &str) -> Server {
        Server::start_on(tempfile::tempdir().expect("tempdir"), limits)
    }

    /// Starts a server whose data lives in `dir/data` (which may already be a mount point).
    pub fn start_on(dir: tempfile::TempDir, limits: &str) -> Server {
        let data = dir.path().join("data");
        let text = config_text(&data, limits);
        Server::start_config(dir, &text)
    }

    /// Starts a server with a config file of the caller's own (see `config_text` for a base).
    pub fn start_config(dir: tempfile::TempDir, text: &str) -> Server {
        let config = dir.path().join("letterbox.toml");
        std::fs::write(&config, text).expect("config");
        let mut server = Server {
            dir,
            config,
            child: None,
            ports: HashMap::new(),
        };
        server.launch();
        server
    }

    /// Starts the daemon and waits for its `ready` line.
    pub fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("letterbox.log"))
            .expect("log");
        // LETTERBOX_TEST_BIN runs the tests against another build (an older commit, to see a
        // regression test fail before its fix).
        let bin = std::env::var_os("LETTERBOX_TEST_BIN").unwrap_or_else(|| BIN.into());
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(&self.config)
            .arg("run")
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start letterbox");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        self.ports.clear();
        loop {
            let line = match lines.next() {
                Some(Ok(line)) => line,
                _ => panic!("letterbox exited before ready; log:\n{}", self.log()),
            };
            if line == "ready" {
                break;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            if let ["listening", service, address] = words.as_slice() {
                self.ports
                    .insert(service.to_string(), address.parse().expect("address"));
            }
        }
        // Keep draining stdout so the daemon never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn port(&self, service: &str) -> u16 {
        self.ports
            .get(service)
            .unwrap_or_else(|| panic!("{service} is not listening"))
            .port()
    }

    pub fn addr(&self, service: &str) -> SocketAddr {
        *self
            .ports
            .get(service)
            .unwrap_or_else(|| panic!("{service} is not listening"))
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn cert(&self) -> PathBuf {
        self.data_dir().join("tls").join("cert.pem")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("letterbox.log")).unwrap_or_default()
    }

    /// SIGKILL: no chance to clean up, as with a power cut of the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        child.wait().expect("wait")
    }

    /// Sends a signal (`HUP`, `TERM`, ...) to the running daemon.
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -{name} {pid}");
    }

    /// Runs the CLI against this server's config.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        // LETTERBOX_TEST_BIN runs the tests against another build (an older commit, to see a
        // regression test fail before its fix).
        let bin = std::env::var_os("LETTERBOX_TEST_BIN").unwrap_or_else(|| BIN.into());
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cli");
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("write stdin");
        }
        drop(input);
        child.wait_with_output().expect("cli output")
    }

    pub fn add_user(&self, address: &str) {
        let out = self.cli(
            &["user", "add", address, "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        );
        assert!(out.status.success(), "user add: {}", text(&out.stderr));
    }

    /// Runs a Python script with the server's ports and certificate in its environment
    /// (SMTP_PORT, POP3_PORT, POP3S_PORT, CERT, PASSWORD) and any extra arguments.
    pub fn python(&self, script: &str, args: &[&str]) -> Output {
        let mut command = Command::new("python3");
        command.arg("-c").arg(script).args(args);
        for (service, addr) in &self.ports {
            command.env(
                format!("{}_PORT", service.to_uppercase()),
                addr.port().to_string(),
            );
        }
        command
            .env("CERT", self.cert())
            .env("PASSWORD", PASSWORD)
            .output()
            .expect("python3")
    }

    /// Like `python`, but the script must succeed; returns its standard output.
    pub fn python_ok(&self, script: &str, args: &[&str]) -> String {
        let out = self.python(script, args);
        assert!(
            out.status.success(),
            "python failed:\n{}\n{}\nserver log:\n{}",
            text(&out.stdout),
            text(&out.stderr),
            self.log()
        );
        text(&out.stdout)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Python helpers shared by the scripts: a verified TLS context for the server's certificate.
pub const PY_PRELUDE: &str = r#"
import os, ssl, sys, smtplib, poplib, socket, time
SMTP_PORT = int(os.environ.get("SMTP_PORT", "0"))
POP3_PORT = int(os.environ.get("POP3_PORT", "0"))
POP3S_PORT = int(os.environ.get("POP3S_PORT", "0"))
PASSWORD = os.environ["PASSWORD"]
def tls():
    ctx = ssl.create_default_context(cafile=os.environ["CERT"])
    ctx.check_hostname = True
    return ctx
def pop3_login(user, tls_mode="stls"):
    if tls_mode == "implicit":
        p = poplib.POP3_SSL("localhost", POP3S_PORT, context=tls(), timeout=30)
    else:
        p = poplib.POP3("localhost", POP3_PORT, timeout=30)
        p.stls(context=tls())
    p.user(user)
    p.pass_(PASSWORD)
    return p
def send(frm, to, subject, body="Hello from a test.\r\n", starttls=False):
    s = smtplib.SMTP("localhost", SMTP_PORT, timeout=30)
    s.ehlo("client.test")
    if starttls:
        s.starttls(context=tls())
        s.ehlo("client.test")
    msg = f"From: {frm}\r\nTo: {', '.join(to) if isinstance(to, list) else to}\r\nSubject: {subject}\r\n\r\n{body}"
    s.sendmail(frm, to, msg)
    s.quit()
"#;

/// A raw SMTP/POP3 conversation for byte-exact edge cases.
pub struct Raw {
    stream: std::net::TcpStream,
    buffer: Vec<u8>,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Raw {
            stream,
            buffer: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads one line (without CRLF).
    pub fn line(&mut self) -> String {
        loop {
            if let Some(pos) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=pos).collect();
                return text(&line).trim_end_matches(['\r', '\n']).to_string();
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).unwrap_or(0);
            if n == 0 {
                return String::new();
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads a whole SMTP reply (all continuation lines); returns the last line.
    pub fn reply(&mut self) -> String {
        loop {
            let line = self.line();
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return line;
            }
        }
    }

    /// Sends a command and returns the (last line of the) reply.
    pub fn cmd(&mut self, command: &str) -> String {
        self.send(format!("{command}\r\n").as_bytes());
        self.reply()
    }

    /// True if the server closes the connection within `wait`.
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        self.stream.set_read_timeout(Some(wait)).expect("timeout");
        let start = Instant::now();
        let mut chunk = [0u8; 1024];
        while start.elapsed() < wait {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }
}
