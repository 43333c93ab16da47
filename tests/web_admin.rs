//! The admin page and each person's page in a real browser (tests/web/admin.mjs: Debian's
//! Chromium through playwright-core, over HTTPS), with a real DNS server and a receiver on
//! loopback that refuses a recipient once; and the client autoconfig documents, read the way
//! the mail programs read them (Python's XML and plist parsers).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::peers::Peers;
use common::{PASSWORD, Server, text};

const ZONE: &str = "\
remote.test.      60 IN MX 10 mx.remote.test.
mx.remote.test.   60 IN A  127.0.0.1
unreachable.test. 60 IN MX 10 dead.unreachable.test.
dead.unreachable.test. 60 IN A 127.0.0.2
";

/// Python that logs in over HTTPS as the page does (the form's token, then the POST):
/// `logged_in(address)` returns the opener and its cookie jar.
const PY_WEB_LOGIN: &str = r#"
import http.cookiejar, os, re, ssl, urllib.error, urllib.parse, urllib.request
secure = "https://localhost:%s" % os.environ["WEB_TLS_PORT"]
ctx = ssl.create_default_context(cafile=os.environ["CERT"])
def logged_in(address):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), urllib.request.HTTPSHandler(context=ctx))
    page = opener.open(secure + "/login").read().decode()
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrf": token, "address": address, "password": os.environ["PASSWORD"], "next": ""}).encode()
    opener.open(secure + "/login", data=form)
    return opener, jar
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn start(peers: &Peers) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = common::config_text(&dir.path().join("data"), "");
    // Fixed ports: a settings change restarts the mail services, which must come back where
    // the clients (and this test) look for them.
    while config.contains("127.0.0.1:0") {
        config = config.replacen("127.0.0.1:0", &format!("127.0.0.1:{}", free_port()), 1);
    }
    config = config.replace(
        "web = []\nweb_tls = []",
        &format!(
            "web = [\"127.0.0.1:{}\"]\nweb_tls = [\"127.0.0.1:{}\"]",
            free_port(),
            free_port()
        ),
    );
    config.push_str(&format!(
        "\n[dns]\nnameservers = [\"127.0.0.1:{}\"]\n\n[outbound]\nmx_port = {}\n",
        peers.dns_port, peers.smtp_port
    ));
    // The health checks run when the page asks: port 25 reaches the loopback receiver, the
    // rest ask the loopback DNS server. No USB drive carries the backup label used here.
    config = config.replace(
        "automatic = false",
        &format!(
            "automatic = false\nport25_probe = \"127.0.0.1:{}\"\nblocklists = [\"bl.test\"]",
            peers.smtp_port
        ),
    );
    // Port 25 refuses a client that talks before its greeting: the page shows the day's
    // count of refused mail.
    config = config.replace("pregreet_wait = 0", "pregreet_wait = 1");
    config.push_str(&format!(
        "\n[backup]\nlabel = \"LBX-NO-DRIVE\"\nmount_dir = \"{}\"\n",
        dir.path().join("backup-mount").display()
    ));
    let server = Server::start_config(dir, &config);
    let out = server.cli(
        &[
            "user",
            "add",
            "anna@home.test",
            "--password-stdin",
            "--admin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    server.add_user("ben@home.test");
    let out = server.cli(&["setup", "--off"], None);
    assert!(out.status.success());
    server
}

/// The queue as `letterbox queue list --json` shows it.
fn queue(server: &Server) -> Vec<serde_json::Value> {
    let out = server.cli(&["queue", "list", "--json"], None);
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .expect("queue JSON")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn the_household_runs_the_box_from_the_admin_page() {
    let peers = Peers::start(ZONE);
    let server = start(&peers);
    // Two messages that wait: one the receiver refuses once (451), one to a dead server.
    let script = format!(
        r#"{}
s = smtplib.SMTP("localhost", int(os.environ["SUBMISSION_PORT"]), timeout=30)
s.starttls(context=tls())
s.login("anna@home.test", PASSWORD)
for to in ["later@remote.test", "someone@unreachable.test"]:
    s.sendmail("anna@home.test", [to], f"From: anna@home.test\r\nTo: {{to}}\r\nSubject: for {{to}}\r\n\r\nHello.\r\n")
s.quit()
"#,
        common::PY_PRELUDE
    );
    server.python_ok(&script, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (retried, dropped) = loop {
        let waiting = queue(&server);
        let tried = waiting
            .iter()
            .filter(|m| m["recipients"][0]["attempts"].as_u64().unwrap_or(0) >= 1)
            .count();
        if waiting.len() == 2 && tried == 2 {
            let id_of = |to: &str| {
                waiting
                    .iter()
                    .find(|m| m["recipients"][0]["address"] == to)
                    .and_then(|m| m["id"].as_u64())
                    .expect("queued")
            };
            break (
                id_of("later@remote.test"),
                id_of("someone@unreachable.test"),
            );
        }
        assert!(Instant::now() < deadline, "queue: {waiting:?}");
        std::thread::sleep(Duration::from_millis(200));
    };

    // Mail for Ben, which the backup must hold.
    let script = format!(
        "{}\nsend('grandma@example.org', ['ben@home.test'], 'in the backup')\n",
        common::PY_PRELUDE
    );
    server.python_ok(&script, &[]);
    // A client that does not wait for the greeting, as spam robots do: refused, and counted.
    let script = r#"
import os, socket
c = socket.create_connection(("localhost", int(os.environ["SMTP_PORT"])), timeout=30)
c.sendall(b"EHLO eager.test\r\n")
print(c.recv(1000).decode())
"#;
    let reply = server.python_ok(script, &[]);
    assert!(reply.contains("554 5.5.1"), "{reply}");
    let backup = server.dir.path().join("backup.tar");
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    std::fs::create_dir_all(&shots).expect("docs");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web/admin.mjs");
    let out = Command::new("node")
        .arg(&script)
        .env("BASE", format!("https://{}", server.addr("web_tls")))
        .env("PLAIN", format!("http://{}", server.addr("web")))
        .env("SHOTS", &shots)
        .env("ADMIN", "anna@home.test")
        .env("DATA_DIR", server.data_dir())
        .env("ADMIN_PASSWORD", PASSWORD)
        .env("PERSON", "carl@home.test")
        .env("RETRIED_ID", retried.to_string())
        .env("DROPPED_ID", dropped.to_string())
        .env("BACKUP", &backup)
        .output()
        .expect("node (apt-get install nodejs; npm ci --prefix tests/web)");
    println!("{}", text(&out.stdout));
    assert!(
        out.status.success(),
        "the browser test failed:\n{}\n{}\nserver log:\n{}",
        text(&out.stdout),
        text(&out.stderr),
        server.log()
    );

    // The downloaded backup is the Maildir tar `letterbox export` writes, with Ben's mail.
    let script = r#"
import sys, tarfile
with tarfile.open(sys.argv[1]) as tar:
    names = tar.getnames()
    mail = [n for n in names if n.startswith("ben@home.test/") and ("/cur/" in n or "/new/" in n)]
    assert mail, names
    assert any(b"Subject: in the backup" in tar.extractfile(n).read() for n in mail), mail
print("backup ok")
"#;
    let out = server.python_ok(script, &[backup.to_str().expect("path")]);
    assert!(out.contains("backup ok"), "{out}");

    // What the pages did is true outside them.
    assert!(queue(&server).is_empty(), "the queue is empty");
    let received = peers.wait_for(1, &server);
    assert!(received[0].1.contains("Subject: for later@remote.test"));
    let config = server.cli(&["config", "show"], None);
    let config = text(&config.stdout);
    assert!(
        config.contains(r#"domains = ["home.test", "family.test", "kids.test"]"#)
            && config.contains("settings file"),
        "{config}"
    );
    // The space set on the page is Carl's quota.
    let users = server.cli(&["user", "list", "--json"], None);
    let users: serde_json::Value = serde_json::from_slice(&users.stdout).expect("user list");
    let carl = users
        .as_array()
        .and_then(|a| a.iter().find(|u| u["address"] == "carl@home.test"))
        .expect("carl");
    assert_eq!(carl["quota"], 3u64 << 29, "{users}");
    // Carl's password is the one he chose on his page.
    let script = r#"
import imaplib, os, ssl
ctx = ssl.create_default_context(cafile=os.environ["CERT"])
m = imaplib.IMAP4_SSL("localhost", int(os.environ["IMAPS_PORT"]), ssl_context=ctx)
m.login("carl@home.test", "tulip garden window 58")
m.logout()
print("carl logs in")
"#;
    assert!(server.python_ok(script, &[]).contains("carl logs in"));
    assert!(
        !server.log().contains("tulip garden") && !server.log().contains(PASSWORD),
        "no password in the log"
    );
}

#[test]
fn mail_programs_find_their_settings_from_the_address() {
    let peers = Peers::start(ZONE);
    let server = start(&peers);
    let script = &[PY_WEB_LOGIN, r#"
import plistlib, base64
import xml.etree.ElementTree as ET
web = "http://127.0.0.1:%s" % os.environ["WEB_PORT"]
imaps, submissions, submission = (int(os.environ[k]) for k in ("IMAPS_PORT", "SUBMISSIONS_PORT", "SUBMISSION_PORT"))

# Thunderbird, both URLs.
for path in ["/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=anna%40home.test",
             "/mail/config-v1.1.xml?emailaddress=anna%40home.test"]:
    root = ET.fromstring(urllib.request.urlopen(web + path).read())
    provider = root.find("emailProvider")
    assert provider.find("domain").text == "home.test"
    imap = provider.find("incomingServer[@type='imap']")
    found = (imap.find("hostname").text, int(imap.find("port").text), imap.find("socketType").text)
    assert found == ("localhost", imaps, "SSL"), (found, imaps)
    assert imap.find("username").text == "%EMAILADDRESS%"
    smtp = {(int(s.find("port").text), s.find("socketType").text) for s in provider.findall("outgoingServer")}
    assert smtp == {(submissions, "SSL"), (submission, "STARTTLS")}, smtp

# Outlook.
request = b'''<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
<Request><EMailAddress>ben@home.test</EMailAddress>
<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
</Request></Autodiscover>'''
answer = urllib.request.urlopen(urllib.request.Request(web + "/autodiscover/autodiscover.xml", data=request, method="POST")).read()
ns = {"r": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
root = ET.fromstring(answer)
protocols = {p.find("r:Type", ns).text: p for p in root.iterfind(".//r:Protocol", ns)}
assert protocols["IMAP"].find("r:Server", ns).text == "localhost"
assert int(protocols["IMAP"].find("r:Port", ns).text) == imaps
assert protocols["IMAP"].find("r:LoginName", ns).text == "ben@home.test"
assert protocols["IMAP"].find("r:SSL", ns).text == "on"
assert int(protocols["SMTP"].find("r:Port", ns).text) == submissions

# Apple: the profile of the logged-in person, over HTTPS.
opener, _ = logged_in("ben@home.test")
response = opener.open(secure + "/me/letterbox.mobileconfig")
assert response.headers["Content-Type"] == "application/x-apple-aspen-config"
profile = plistlib.loads(response.read())
assert profile["PayloadType"] == "Configuration"
payloads = {p["PayloadType"]: p for p in profile["PayloadContent"]}
mail = payloads["com.apple.mail.managed"]
assert mail["EmailAddress"] == "ben@home.test"
assert (mail["IncomingMailServerHostName"], mail["IncomingMailServerPortNumber"], mail["IncomingMailServerUseSSL"]) == ("localhost", imaps, True)
assert (mail["OutgoingMailServerPortNumber"], mail["OutgoingMailServerUseSSL"]) == (submissions, True)
assert mail["IncomingMailServerUsername"] == "ben@home.test"
# The box's own certificate rides along as a trust payload: the one IMAPS presents.
root_payload = payloads["com.apple.security.root"]
served = ssl.PEM_cert_to_DER_cert(open(os.environ["CERT"]).read())
assert root_payload["PayloadContent"] == served
assert len({p["PayloadUUID"] for p in profile["PayloadContent"]} | {profile["PayloadUUID"]}) == 3
print("autoconfig ok")
"#].concat();
    let out = server.python_ok(script, &[]);
    assert!(out.contains("autoconfig ok"), "{out}");
}

/// A password changed at the console (`letterbox user passwd`, say after a phone was lost)
/// ends that person's web sessions, as a reset on the admin page does.
#[test]
fn a_password_changed_at_the_console_ends_the_persons_web_sessions() {
    let peers = Peers::start(ZONE);
    let server = start(&peers);
    let script = &[
        PY_WEB_LOGIN,
        r#"
import sys
class Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None
if sys.argv[1] == "login":
    _, jar = logged_in("ben@home.test")
    print("; ".join(f"{c.name}={c.value}" for c in jar))
else:
    opener = urllib.request.build_opener(Stay, urllib.request.HTTPSHandler(context=ctx))
    request = urllib.request.Request(secure + "/me", headers={"Cookie": sys.argv[2]})
    try:
        print("status", opener.open(request).status)
    except urllib.error.HTTPError as e:
        print("status", e.code, e.headers.get("Location"))
"#,
    ]
    .concat();
    let cookies = server.python_ok(script, &["login"]);
    let cookies = cookies.trim();
    let before = server.python_ok(script, &["visit", cookies]);
    assert!(before.contains("status 200"), "{before}");
    let out = server.cli(
        &["user", "passwd", "ben@home.test", "--password-stdin"],
        Some("mango trellis purple 12\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after = server.python_ok(script, &["visit", cookies]);
    assert!(after.contains("status 303 /login"), "{after}");
}

/// Saves of the Settings page at once (two administrators, a resent form) are each applied
/// whole, one after the other: none fails on another's half-written file, and the file and
/// the settings in effect agree afterwards.
#[test]
fn settings_saved_at_once_are_applied_one_after_the_other() {
    let peers = Peers::start(ZONE);
    let server = start(&peers);
    let script = &[PY_WEB_LOGIN, r#"
import concurrent.futures, sys, tomllib
def admin():
    opener, _ = logged_in("anna@home.test")
    page = opener.open(secure + "/admin/settings").read().decode()
    return opener, re.search(r'name="csrf" value="([^"]+)"', page).group(1)
admins = [admin() for _ in range(2)]
def save(i):
    opener, token = admins[i % 2]
    domains = "home.test, " + ", ".join(f"r{round_}x{i}n{j}.test" for j in range(i + 1))
    form = urllib.parse.urlencode({"csrf": token, "domains": domains, "hostname": "localhost"}).encode()
    try:
        return opener.open(secure + "/admin/settings/names", data=form).status, ""
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
for round_ in range(3):
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(save, range(4)))
    assert all(status == 200 for status, _ in results), [r for r in results if r[0] != 200]
    on_disk = tomllib.load(open(os.path.join(sys.argv[1], "settings.toml"), "rb"))["domains"]
    page = admins[0][0].open(secure + "/admin/settings").read().decode()
    shown = re.search(r'id="domains" name="domains" value="([^"]*)"', page).group(1)
    assert on_disk == [d.strip() for d in shown.split(",")], (on_disk, shown)
print("saved one after the other")
"#].concat();
    let data = server.data_dir();
    let out = server.python_ok(script, &[data.to_str().expect("path")]);
    assert!(out.contains("saved one after the other"), "{out}");
}
