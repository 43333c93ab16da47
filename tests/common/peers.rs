//! Mail peers on loopback for tests (tests/peers.py): a DNS server (dnslib) answering from a
//! zone file that tests can extend, and an SMTP receiver (aiosmtpd) that records what it
//! accepts and checks DKIM signatures with dkimpy.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Server;

/// The DNS server and SMTP receiver, killed when dropped.
pub struct Peers {
    child: Child,
    pub dir: tempfile::TempDir,
    pub dns_port: u16,
    pub smtp_port: u16,
}

impl Peers {
    /// Starts the peers with `zone` (a zone file's records) as the DNS data.
    pub fn start(zone: &str) -> Peers {
        let dir = tempfile::tempdir().expect("tempdir");
        // A test CA and the receiver's certificate for "localhost" signed by it, as a private
        // relay has: trusting the CA (not the certificate itself) is what a person configures.
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Letterbox test CA");
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .signed_by(&key, &*ca)
            .expect("certificate");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("CA");
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).expect("cert");
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).expect("key");
        std::fs::write(dir.path().join("zone"), zone).expect("zone");
        std::fs::create_dir(dir.path().join("received")).expect("received");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers.py");
        // Debian's interpreter: the peers use Debian's packages, which another python3 first
        // on PATH (pyenv, a venv) would not see.
        let python = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let mut child = Command::new(python)
            .arg(script)
            .arg(dir.path().join("received"))
            .arg(dir.path().join("zone"))
            .arg(dir.path().join("cert.pem"))
            .arg(dir.path().join("key.pem"))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("peers.log")).expect("log"))
            .spawn()
            .expect("python3 tests/peers.py (apt-get install python3-aiosmtpd python3-dnslib python3-dkim)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ready line");
        let words: Vec<&str> = line.split_whitespace().collect();
        let ["ready", dns, smtp] = words.as_slice() else {
            let log = std::fs::read_to_string(dir.path().join("peers.log")).unwrap_or_default();
            panic!("peers did not start: {line:?}\n{log}");
        };
        Peers {
            dns_port: dns.parse().expect("port"),
            smtp_port: smtp.parse().expect("port"),
            child,
            dir,
        }
    }

    /// The receiver's certificate (for "localhost").
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// The test CA that signed it: what a relay's `ca_file` or `relay_ca_file` names.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn add_records(&self, records: &str) {
        let zone = self.dir.path().join("zone");
        let mut text = std::fs::read_to_string(&zone).expect("zone");
        text.push_str(records);
        std::fs::write(&zone, text).expect("zone");
    }

    /// Received messages: (envelope info as JSON, message text), oldest first.
    pub fn received(&self) -> Vec<(serde_json::Value, String)> {
        let dir = self.dir.path().join("received");
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("received")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|json| {
                let info = serde_json::from_str(&std::fs::read_to_string(&json).expect("json"))
                    .expect("info");
                let eml = std::fs::read_to_string(json.with_extension("eml")).expect("eml");
                (info, eml)
            })
            .collect()
    }

    pub fn wait_for(&self, count: usize, server: &Server) -> Vec<(serde_json::Value, String)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} messages arrived; server log:\n{}\npeers log:\n{}",
                received.len(),
                server.log(),
                std::fs::read_to_string(self.dir.path().join("peers.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
