//! The self-signed certificate and TLS logging (issue #16 defect 6): a client that trusts the
//! certificate verifies it whether it connects by host name, short name, `letterbox.local` or
//! the box's address; it is valid for two years, not for centuries; and handshakes with an
//! IP address as SNI do not each write a warning.

mod common;

use std::process::{Command, Stdio};

use common::{PY_PRELUDE, Server};

/// Every name a LAN client may use verifies against the trusted certificate (the test server's
/// host name is `localhost`; the address is the loopback one it listens on).
const NAMES: &str = r#"
import datetime
port = int(os.environ["IMAPS_PORT"])
for name in ["localhost", "letterbox.local", "127.0.0.1"]:
    s = tls().wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname=name)
    assert s.recv(100).startswith(b"* OK")
    s.close()
    print("verified as", name)
info = ssl._ssl._test_decode_cert(os.environ["CERT"])
parse = lambda t: datetime.datetime.strptime(t, "%b %d %H:%M:%S %Y %Z")
days = (parse(info["notAfter"]) - parse(info["notBefore"])).days
assert 725 <= days <= 735, info
now = datetime.datetime.utcnow()
assert parse(info["notBefore"]) <= now <= parse(info["notAfter"]), info
print("valid for", days, "days")
"#;

#[test]
fn the_self_signed_certificate_names_the_box_every_way_for_two_years() {
    let server = Server::start();
    let out = server.python_ok(&format!("{PY_PRELUDE}{NAMES}"), &[]);
    print!("{out}");
}

/// openssl sends `-servername` as given, so an IP address goes out as SNI, as some scanners
/// and clients do; rustls warned once per such handshake.
#[test]
fn handshakes_with_an_address_as_sni_do_not_flood_the_log() {
    let server = Server::start();
    let address = server.addr("imaps").to_string();
    for _ in 0..5 {
        let status = Command::new("openssl")
            .args(["s_client", "-connect", &address, "-servername", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl");
        assert!(status.success(), "handshake with an IP address as SNI");
    }
    let log = server.log();
    assert!(
        log.contains("pop3") || log.contains("imap"),
        "the log is read"
    );
    assert_eq!(log.matches("Illegal SNI").count(), 0, "{log}");
}
