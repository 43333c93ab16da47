//! The setup pages' guard and bounds, driven with curl: a browser on the setup hotspot gets in
//! without the one-time code, one on the LAN does not; the captive DNS responder answers
//! (checked with hickory-resolver) only while the box is in setup mode; oversized request
//! heads and bodies are refused; and a certificate uploaded in the wizard is checked, then
//! served by IMAPS and HTTPS after "Finish".

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Server, text};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port()
}

/// A fresh box on fixed loopback ports; `extra` is appended to the config.
fn start_fresh(listen_extra: &str, extra: &str) -> Server {
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
    ] {
        listen.push_str(&format!("{service} = [\"127.0.0.1:{}\"]\n", free_port()));
    }
    let text = format!(
        "hostname = \"localhost\"\ndomains = [\"home.test\"]\ndata_dir = \"{}\"\n\n\
         [listen]\n{listen}{listen_extra}\n[auth]\ncheck_inbound = false\n\n\
         [limits]\nargon2_memory = \"1MiB\"\nlogin_failure_delay = 0\n{extra}",
        data.display()
    );
    Server::start_config(dir, &text)
}

/// A browser made of curl and a cookie jar.
struct Curl {
    jar: PathBuf,
    base: String,
    _dir: tempfile::TempDir,
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Curl {
    fn new(base: &str) -> Curl {
        let dir = tempfile::tempdir().expect("tempdir");
        Curl {
            jar: dir.path().join("jar"),
            base: base.to_string(),
            _dir: dir,
        }
    }

    fn run(&self, path: &str, args: &[&str]) -> Answer {
        let out = Command::new("curl")
            .args(["-s", "-k", "-i", "--max-time", "30", "-c"])
            .arg(&self.jar)
            .arg("-b")
            .arg(&self.jar)
            .args(args)
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("curl");
        let response = String::from_utf8_lossy(&out.stdout).into_owned();
        let (head, body) = response
            .split_once("\r\n\r\n")
            .map_or((response.clone(), String::new()), |(h, b)| {
                (h.to_string(), b.to_string())
            });
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP response for {path}: {response:?}"));
        Answer { status, head, body }
    }

    fn get(&self, path: &str) -> Answer {
        self.run(path, &[])
    }

    /// The CSRF token of the form on `path`.
    fn csrf(&self, path: &str) -> String {
        let page = self.get(path);
        assert_eq!(page.status, 200, "{path}: {}{}", page.head, page.body);
        let marker = "name=\"csrf\" value=\"";
        let start = page.body.find(marker).expect("a form with a CSRF token") + marker.len();
        page.body[start..]
            .split('"')
            .next()
            .expect("token")
            .to_string()
    }

    fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut args = Vec::new();
        for (name, value) in fields {
            args.push("--data-urlencode".to_string());
            args.push(format!("{name}={value}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(path, &args)
    }

    fn location(answer: &Answer) -> Option<&str> {
        answer
            .head
            .lines()
            .find_map(|l| l.strip_prefix("location: "))
            .map(str::trim)
    }
}

fn code_of(server: &Server) -> String {
    let out = server.cli(&["status", "--json"], None);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status");
    status["setup"]["code"].as_str().expect("code").to_string()
}

#[test]
fn over_the_hotspot_no_code_is_asked_and_over_the_lan_it_is() {
    let lan = free_port();
    let hotspot = free_port();
    let server = start_fresh(
        &format!("web = [\"127.0.0.1:{lan}\", \"127.0.0.2:{hotspot}\"]\nweb_tls = []\n"),
        "\n[network]\nbackend = \"simulated\"\nsimulated_networks = [\"Home\"]\nsimulated_hotspot = \"127.0.0.2\"\n",
    );
    let over_lan = Curl::new(&format!("http://127.0.0.1:{lan}"));
    let answer = over_lan.get("/setup");
    assert_eq!(
        Curl::location(&answer),
        Some("/setup/code"),
        "{}",
        answer.head
    );
    let answer = over_lan.get("/setup/names");
    assert_eq!(
        Curl::location(&answer),
        Some("/setup/code"),
        "{}",
        answer.head
    );
    let over_hotspot = Curl::new(&format!("http://127.0.0.2:{hotspot}"));
    let answer = over_hotspot.get("/setup");
    assert_eq!(
        Curl::location(&answer),
        Some("/setup/names"),
        "{}",
        answer.head
    );
    let csrf = over_hotspot.csrf("/setup/names");
    let answer = over_hotspot.post(
        "/setup/names",
        &[("csrf", &csrf), ("domain", "smith.test"), ("hostname", "")],
    );
    assert_eq!(
        Curl::location(&answer),
        Some("/setup/accounts"),
        "{}",
        answer.body
    );
    drop(server);
}

#[test]
fn the_captive_dns_answers_only_in_setup_mode() {
    let dns = free_udp_port();
    let server = start_fresh(
        &format!("web = []\nweb_tls = []\ncaptive_dns = [\"127.0.0.1:{dns}\"]\n"),
        "",
    );
    let address: SocketAddr = format!("127.0.0.1:{dns}").parse().expect("address");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let lookup = |name: &str| {
        runtime.block_on(async {
            use hickory_resolver::TokioResolver;
            use hickory_resolver::net::runtime::TokioRuntimeProvider;
            let mut builder = TokioResolver::builder_with_config(
                letterbox::outbound::dns::resolver_config(&[address]),
                TokioRuntimeProvider::default(),
            );
            let options = builder.options_mut();
            options.timeout = Duration::from_secs(1);
            options.attempts = 1;
            options.cache_size = 0;
            let resolver = builder.build().expect("resolver");
            resolver.ipv4_lookup(name).await.map(|found| {
                found
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        hickory_resolver::proto::rr::RData::A(a) => Some(a.0.to_string()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            })
        })
    };
    // A fresh box is in setup mode: every name is this box.
    for name in [
        "connectivitycheck.gstatic.com.",
        "captive.apple.com.",
        "example.org.",
    ] {
        assert_eq!(lookup(name).expect(name), vec!["127.0.0.1".to_string()]);
    }
    let out = server.cli(&["setup", "--off"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        lookup("captive.apple.com.").is_err(),
        "no DNS outside setup mode"
    );
    let out = server.cli(&["setup"], None);
    assert!(out.status.success());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        lookup("captive.apple.com.").expect("setup mode again"),
        vec!["127.0.0.1".to_string()]
    );
}

#[test]
fn oversized_heads_and_bodies_are_refused_and_the_service_goes_on() {
    let web = free_port();
    let server = start_fresh(&format!("web = [\"127.0.0.1:{web}\"]\nweb_tls = []\n"), "");
    let curl = Curl::new(&format!("http://127.0.0.1:{web}"));
    let csrf = curl.csrf("/setup/code");
    // A head over web_max_header (16 KiB): 431.
    let big_header = format!("X-Filler: {}", "a".repeat(20 * 1024));
    let answer = curl.run("/setup/code", &["-H", &big_header]);
    assert_eq!(answer.status, 431, "{}", answer.head);
    // A body over web_max_body (64 KiB): 413, and the code is not checked.
    let filler = "x".repeat(100 * 1024);
    let answer = curl.post(
        "/setup/code",
        &[
            ("csrf", &csrf),
            ("code", &code_of(&server)),
            ("filler", &filler),
        ],
    );
    assert_eq!(answer.status, 413, "{}", answer.head);
    // The service goes on, and the same session still works.
    let answer = curl.post(
        "/setup/code",
        &[("csrf", &csrf), ("code", &code_of(&server))],
    );
    assert_eq!(
        Curl::location(&answer),
        Some("/setup/names"),
        "{}",
        answer.body
    );
}

fn certificate(dir: &Path, names: &[&str]) -> (PathBuf, PathBuf) {
    let certified =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("certificate");
    let cert = dir.join(format!("{}-cert.pem", names[0]));
    let key = dir.join(format!("{}-key.pem", names[0]));
    std::fs::write(&cert, certified.cert.pem()).expect("cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("key");
    (cert, key)
}

#[test]
fn a_certificate_uploaded_in_the_wizard_is_checked_and_then_served() {
    let web = free_port();
    let web_tls = free_port();
    let server = start_fresh(
        &format!("web = [\"127.0.0.1:{web}\"]\nweb_tls = [\"127.0.0.1:{web_tls}\"]\n"),
        "",
    );
    let files = tempfile::tempdir().expect("tempdir");
    let (good_cert, good_key) = certificate(files.path(), &["mail.smith.test"]);
    let (wrong_cert, wrong_key) = certificate(files.path(), &["other.example"]);
    let curl = Curl::new(&format!("http://127.0.0.1:{web}"));
    let csrf = curl.csrf("/setup/code");
    curl.post(
        "/setup/code",
        &[("csrf", &csrf), ("code", &code_of(&server))],
    );
    let csrf = curl.csrf("/setup/names");
    let steps: [(&str, Vec<(&str, &str)>); 3] = [
        (
            "/setup/names",
            vec![("domain", "smith.test"), ("hostname", "")],
        ),
        (
            "/setup/accounts",
            vec![
                ("name", "anna"),
                ("password", "otter maple lantern 42"),
                ("repeat", "otter maple lantern 42"),
            ],
        ),
        (
            "/setup/outgoing",
            vec![("way", "direct"), ("action", "next")],
        ),
    ];
    for (path, fields) in steps {
        let mut fields = fields;
        fields.push(("csrf", &csrf));
        let answer = curl.post(path, &fields);
        assert_eq!(answer.status, 303, "{path}: {}", answer.body);
    }
    let upload = |cert: &Path, key: &Path| {
        curl.run(
            "/setup/tls",
            &[
                "-F",
                &format!("csrf={csrf}"),
                "-F",
                "choice=upload",
                "-F",
                &format!("cert=@{}", cert.display()),
                "-F",
                &format!("key=@{}", key.display()),
            ],
        )
    };
    // The wrong name, then a key that is not the certificate's: refused, with the reason.
    let answer = upload(&wrong_cert, &wrong_key);
    assert_eq!(answer.status, 422);
    assert!(
        answer.body.contains("not valid for mail.smith.test"),
        "{}",
        answer.body
    );
    let answer = upload(&good_cert, &wrong_key);
    assert_eq!(answer.status, 422);
    assert!(
        answer.body.contains("does not belong to this certificate"),
        "{}",
        answer.body
    );
    assert!(
        !answer.body.contains("PRIVATE KEY"),
        "the key is never shown back"
    );
    let answer = upload(&good_cert, &good_key);
    assert_eq!(
        Curl::location(&answer),
        Some("/setup/summary"),
        "{}",
        answer.body
    );
    let summary = curl.get("/setup/summary");
    assert!(
        summary.body.contains("uploaded: for mail.smith.test"),
        "{}",
        summary.body
    );
    let answer = curl.post("/setup/finish", &[("csrf", &csrf)]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("All set"), "{}", answer.body);

    // IMAPS and HTTPS now present the uploaded certificate. "All set" comes when the new
    // settings are queued; the services restart on them a moment later, so each port is asked
    // until it shows the new certificate or a generous deadline passes.
    let expected = std::fs::read_to_string(&good_cert).expect("cert");
    let served: String = expected
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for port in [server.port("imaps"), web_tls] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let out = Command::new("openssl")
                .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
                .args(["-servername", "mail.smith.test", "-showcerts"])
                .stdin(std::process::Stdio::null())
                .output()
                .expect("openssl");
            let shown = text(&out.stdout);
            let shown: String = shown.lines().filter(|l| !l.starts_with("-----")).collect();
            if shown.contains(&served) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "port {port} serves another certificate"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    // The status (the admin page's and the panel's "Certificate") tells of the one in use
    // (rcgen's runs to the year 4096; the box's own for a year or two), without a restart.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let out = server.cli(&["status", "--json"], None);
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status");
        let years = status["certificate_expires"].as_i64().unwrap_or(0) / (365 * 86400);
        if years > 1000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the status names another certificate: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Setup run again on a box in use (a long press, `letterbox setup`), naming another mail
/// domain, keeps the domain its people still use: their mail is still taken.
#[test]
fn setup_run_again_with_another_domain_keeps_the_one_in_use() {
    let web = free_port();
    let server = start_fresh(
        &format!("web = [\"127.0.0.1:{web}\"]\nweb_tls = []\n"),
        "\n[spam]\ngreylisting = false\ndnsbl = []\n",
    );
    server.add_user("anna@home.test");
    let out = server.cli(&["setup"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let browser = Curl::new(&format!("http://127.0.0.1:{web}"));
    let csrf = browser.csrf("/setup/code");
    let answer = browser.post(
        "/setup/code",
        &[("csrf", &csrf), ("code", &code_of(&server))],
    );
    assert_eq!(answer.status, 303, "{}{}", answer.head, answer.body);
    // The code begins a new session, with its own token.
    let csrf = browser.csrf("/setup/names");
    let answer = browser.post(
        "/setup/names",
        &[("csrf", &csrf), ("domain", "new.test"), ("hostname", "")],
    );
    assert_eq!(answer.status, 303, "{}{}", answer.head, answer.body);
    // The people from before are named, and "Next" is there without adding anyone.
    let people = browser.get("/setup/accounts");
    assert!(
        people.body.contains("Already on this box: anna@home.test")
            && people.body.contains("action=\"/setup/accounts/done\""),
        "{}",
        people.body
    );
    for (path, fields) in [
        (
            "/setup/accounts",
            vec![
                ("name", "zed"),
                ("password", "otter maple lantern 42"),
                ("repeat", "otter maple lantern 42"),
            ],
        ),
        ("/setup/accounts/done", vec![]),
        (
            "/setup/outgoing",
            vec![("way", "direct"), ("action", "next")],
        ),
    ] {
        let mut fields = fields;
        fields.push(("csrf", &csrf));
        let answer = browser.post(path, &fields);
        assert_eq!(answer.status, 303, "{path}: {}{}", answer.head, answer.body);
    }
    let answer = browser.run(
        "/setup/tls",
        &["-F", &format!("csrf={csrf}"), "-F", "choice=keep"],
    );
    assert_eq!(answer.status, 303, "{}{}", answer.head, answer.body);
    let answer = browser.post("/setup/finish", &[("csrf", &csrf)]);
    assert_eq!(answer.status, 200, "{}{}", answer.head, answer.body);

    let config = text(&server.cli(&["config", "show"], None).stdout);
    assert!(
        config.contains(r#"domains = ["new.test", "home.test"]"#),
        "{config}"
    );
    let script = format!(
        "{}\nsend('grandma@example.org', ['anna@home.test', 'zed@new.test'], 'after setup')\nprint('taken')",
        common::PY_PRELUDE
    );
    assert!(server.python_ok(&script, &[]).contains("taken"));
}

/// Plain HTTP sends the login to HTTPS with the page it leads to, at the name the browser
/// used when that is a name, and never a Location built from a broken Host; a `next` that is
/// not a plain path on this box is dropped, not answered with 500.
#[test]
fn the_login_goes_to_https_whole_and_only_to_this_box() {
    let web = free_port();
    let web_tls = free_port();
    let server = start_fresh(
        &format!("web = [\"127.0.0.1:{web}\"]\nweb_tls = [\"127.0.0.1:{web_tls}\"]\n"),
        "",
    );
    server.add_user("anna@home.test");
    let out = server.cli(&["setup", "--off"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plain = Curl::new(&format!("http://127.0.0.1:{web}"));
    let answer = plain.get("/login?next=/admin/queue");
    assert_eq!(
        Curl::location(&answer),
        Some(format!("https://127.0.0.1:{web_tls}/login?next=/admin/queue").as_str()),
        "{}",
        answer.head
    );
    let answer = plain.run("/login", &["-H", "Host: box.local:8080"]);
    assert_eq!(
        Curl::location(&answer),
        Some(format!("https://box.local:{web_tls}/login").as_str())
    );
    for host in ["Host: evil.example/x?", "Host:"] {
        let answer = plain.run("/login", &["-H", host]);
        let location = Curl::location(&answer).unwrap_or_default();
        assert!(
            answer.status == 400 || location == format!("https://127.0.0.1:{web_tls}/login"),
            "{host}: {} {location}",
            answer.status
        );
    }
    let secure = Curl::new(&format!("https://127.0.0.1:{web_tls}"));
    let csrf = secure.csrf("/login");
    let answer = secure.post(
        "/login",
        &[
            ("csrf", &csrf),
            ("address", "anna@home.test"),
            ("password", common::PASSWORD),
            ("next", "/admin/qu\u{e9}ue\r\nSet-Cookie: x=1"),
        ],
    );
    assert_eq!(answer.status, 303, "{}{}", answer.head, answer.body);
    assert_eq!(Curl::location(&answer), Some("/me"));
}
