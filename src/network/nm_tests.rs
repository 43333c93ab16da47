//! The NetworkManager backend against recorded nmcli: each test scripts the output nmcli
//! gave (on Raspberry Pi OS Bookworm, NetworkManager 1.42) and checks the exact command
//! lines the backend ran, and that no passphrase is on any of them.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::nm::{Finished, HOTSPOT_ADDRESS, Invocation, Runner};
use super::*;

/// Answers each command with the next scripted output and records what it was asked.
struct Recorded {
    script: Mutex<VecDeque<Finished>>,
    /// Each command line, and what went to its standard input.
    ran: Mutex<Vec<(String, Option<String>)>>,
    /// Where the backend's hotspot hosts file goes.
    data_dir: tempfile::TempDir,
    /// Whether the hotspot's hosts file was there when each command ran.
    hosts_file_there: Mutex<Vec<bool>>,
}

impl Recorded {
    fn new(script: impl IntoIterator<Item = Finished>) -> Recorded {
        Recorded {
            script: Mutex::new(script.into_iter().collect()),
            ran: Mutex::default(),
            data_dir: tempfile::tempdir().expect("tempdir"),
            hosts_file_there: Mutex::default(),
        }
    }

    fn hosts_file(&self) -> std::path::PathBuf {
        self.data_dir.path().join("hotspot-hosts")
    }
}

impl Runner for std::sync::Arc<Recorded> {
    fn run<'a>(
        &'a self,
        invocation: &'a Invocation,
    ) -> BoxFuture<'a, Result<Finished, NetworkError>> {
        let stdin = invocation.stdin.as_ref().map(|s| s.expose().clone());
        self.hosts_file_there
            .lock()
            .expect("lock")
            .push(self.hosts_file().exists());
        self.ran
            .lock()
            .expect("lock")
            .push((invocation.to_string(), stdin));
        let next = self.script.lock().expect("lock").pop_front();
        Box::pin(async move {
            next.ok_or_else(|| NetworkError::Backend(format!("unscripted: {invocation}")))
        })
    }
}

fn ok(stdout: &str) -> Finished {
    Finished {
        success: true,
        stdout: stdout.into(),
        stderr: String::new(),
    }
}

fn failed(stderr: &str) -> Finished {
    Finished {
        success: false,
        stdout: String::new(),
        stderr: stderr.into(),
    }
}

fn backend(
    script: Vec<Finished>,
) -> (
    NetworkManager<std::sync::Arc<Recorded>>,
    std::sync::Arc<Recorded>,
) {
    let recorded = std::sync::Arc::new(Recorded::new(script));
    let wifi = NetworkManager::new(recorded.clone(), "wlan0", &recorded.hosts_file());
    (wifi, recorded)
}

/// The command lines run, after checking that the passphrase was on none of them.
fn lines(recorded: &Recorded, passphrase: &str) -> Vec<String> {
    let ran = recorded.ran.lock().expect("lock");
    for (line, _) in ran.iter() {
        assert!(
            !line.contains(passphrase),
            "a passphrase on a command line: {line}"
        );
    }
    assert!(
        recorded.script.lock().expect("lock").is_empty(),
        "scripted output left unused"
    );
    ran.iter().map(|(line, _)| line.clone()).collect()
}

fn stdins(recorded: &Recorded) -> Vec<String> {
    let ran = recorded.ran.lock().expect("lock");
    ran.iter().filter_map(|(_, stdin)| stdin.clone()).collect()
}

const SCAN: &str =
    "nmcli -t -e yes -f SSID,SIGNAL,SECURITY device wifi list ifname wlan0 --rescan yes";
const SCANNED: &str = "Neighbours:40:WPA2\nHome\\: upstairs:81:WPA2\nCafe:64:\n";
const PASSPHRASE: &str = "correct horse: battery";

fn secret(text: &str) -> Secret<String> {
    Secret::new(text.to_string())
}

#[tokio::test]
async fn scan_runs_one_terse_rescan_and_lists_strongest_first() {
    let (wifi, recorded) = backend(vec![ok(SCANNED)]);
    let networks = wifi.scan().await.expect("scan");
    let names: Vec<(&str, u8, bool)> = networks
        .iter()
        .map(|n| (n.ssid.as_str(), n.signal_percent, n.secured))
        .collect();
    assert_eq!(
        names,
        [
            ("Home: upstairs", 81, true),
            ("Cafe", 64, false),
            ("Neighbours", 40, true)
        ]
    );
    assert_eq!(lines(&recorded, PASSPHRASE), [SCAN]);
}

#[tokio::test]
async fn join_adds_a_profile_without_the_secret_and_hands_the_secret_over_stdin() {
    let (wifi, recorded) = backend(vec![
        ok(SCANNED),
        failed("Error: unknown connection 'letterbox-wifi'.\n"),
        ok("Connection 'letterbox-wifi' (5b0c…) successfully added.\n"),
        ok(
            "Connection successfully activated (D-Bus active path: /org/freedesktop/NetworkManager/ActiveConnection/3)\n",
        ),
    ]);
    wifi.join("Home: upstairs", &secret(PASSPHRASE))
        .await
        .expect("join");
    assert_eq!(
        lines(&recorded, PASSPHRASE),
        [
            SCAN,
            "nmcli connection delete id letterbox-wifi",
            "nmcli connection add type wifi con-name letterbox-wifi ifname wlan0 \
             ssid 'Home: upstairs' autoconnect yes wifi-sec.key-mgmt wpa-psk",
            "nmcli -w 45 connection up id letterbox-wifi passwd-file /dev/stdin < <secret>",
        ]
    );
    assert_eq!(
        stdins(&recorded),
        [format!("802-11-wireless-security.psk:{PASSPHRASE}\n")]
    );
}

#[tokio::test]
async fn a_wrong_passphrase_is_said_and_its_profile_removed() {
    let (wifi, recorded) = backend(vec![
        ok(SCANNED),
        ok(""),
        ok("Connection 'letterbox-wifi' (5b0c…) successfully added.\n"),
        failed(
            "Error: Connection activation failed: Secrets were required, but not provided.\nHint: use 'journalctl -xe NM_CONNECTION=5b0c… + NM_DEVICE=wlan0' to get more details.\n",
        ),
        ok("Connection 'letterbox-wifi' (5b0c…) successfully deleted.\n"),
    ]);
    let refused = wifi.join("Cafe", &secret("wrong guess")).await;
    assert_eq!(refused, Err(NetworkError::WrongPassphrase("Cafe".into())));
    assert_eq!(
        refused.expect_err("refused").to_string(),
        "the network \"Cafe\" refused the passphrase: check it and try again"
    );
    let ran = lines(&recorded, "wrong guess");
    assert_eq!(ran.len(), 5);
    assert_eq!(ran[4], "nmcli connection delete id letterbox-wifi");
}

#[tokio::test]
async fn a_network_out_of_range_is_said_before_any_profile_is_touched() {
    let (wifi, recorded) = backend(vec![ok(SCANNED)]);
    let refused = wifi.join("Garden", &secret(PASSPHRASE)).await;
    assert_eq!(refused, Err(NetworkError::NotInRange("Garden".into())));
    assert_eq!(lines(&recorded, PASSPHRASE), [SCAN]);

    // Gone between the scan and the join: NetworkManager's own words for it.
    let (wifi, recorded) = backend(vec![
        ok(SCANNED),
        ok(""),
        ok(""),
        failed("Error: Connection activation failed: The Wi-Fi network could not be found\n"),
        ok(""),
    ]);
    let refused = wifi.join("Cafe", &secret(PASSPHRASE)).await;
    assert_eq!(refused, Err(NetworkError::NotInRange("Cafe".into())));
    assert_eq!(lines(&recorded, PASSPHRASE).len(), 5);
}

#[tokio::test]
async fn bad_input_runs_nothing_and_a_stopped_networkmanager_is_named() {
    let (wifi, recorded) = backend(Vec::new());
    assert_eq!(
        wifi.join("Home", &secret("short")).await,
        Err(NetworkError::PassphraseLength)
    );
    assert_eq!(
        wifi.join("", &secret(PASSPHRASE)).await,
        Err(NetworkError::BadSsid)
    );
    assert!(lines(&recorded, "short").is_empty());

    let (wifi, _) = backend(vec![failed("Error: NetworkManager is not running.\n")]);
    assert_eq!(
        wifi.scan().await,
        Err(NetworkError::Backend(
            "NetworkManager is not running".into()
        ))
    );
}

#[tokio::test]
async fn the_hotspot_is_wpa2_ccmp_on_2_4_ghz_with_shared_ipv4_and_comes_down_again() {
    let (wifi, recorded) = backend(vec![
        ok(""),
        ok("Connection 'letterbox-hotspot' (77aa…) successfully added.\n"),
        ok("Connection successfully activated\n"),
        ok("Connection 'letterbox-hotspot' successfully deactivated\n"),
        failed(
            "Error: 'letterbox-hotspot' is not an active connection.\nError: no active connection provided.\n",
        ),
    ]);
    assert_eq!(wifi.hotspot_address(), None);
    let address = wifi
        .raise_hotspot("Letterbox-7Q2K", &secret("maple otter violet"))
        .await
        .expect("raise");
    assert_eq!(address, IpAddr::V4(HOTSPOT_ADDRESS));
    assert_eq!(wifi.hotspot_address(), Some(address));
    // While it is up, NetworkManager's dnsmasq sends the probes' names to the box.
    let hosts = std::fs::read_to_string(recorded.hosts_file()).expect("hosts file");
    for host in nm::CAPTIVE_PROBE_HOSTS {
        assert!(
            hosts.contains(&format!("\n10.42.0.1 {host}\n")),
            "{host}: {hosts}"
        );
    }
    assert_eq!(hosts.lines().filter(|l| !l.starts_with('#')).count(), 14);
    wifi.lower_hotspot().await.expect("lower");
    assert_eq!(wifi.hotspot_address(), None);
    assert!(
        !recorded.hosts_file().exists(),
        "the hosts file outlived the hotspot"
    );
    // Lowering it twice is fine.
    wifi.lower_hotspot().await.expect("lower again");
    assert_eq!(
        lines(&recorded, "maple otter violet"),
        [
            "nmcli connection delete id letterbox-hotspot",
            "nmcli connection add type wifi con-name letterbox-hotspot ifname wlan0 \
             ssid Letterbox-7Q2K autoconnect no 802-11-wireless.mode ap \
             802-11-wireless.band bg ipv4.method shared ipv4.addresses 10.42.0.1/24 \
             ipv6.method disabled wifi-sec.key-mgmt wpa-psk wifi-sec.proto rsn \
             wifi-sec.pairwise ccmp wifi-sec.group ccmp",
            "nmcli -w 45 connection up id letterbox-hotspot passwd-file /dev/stdin < <secret>",
            "nmcli connection down id letterbox-hotspot",
            "nmcli connection down id letterbox-hotspot",
        ]
    );
    assert_eq!(
        stdins(&recorded),
        ["802-11-wireless-security.psk:maple otter violet\n"]
    );
    // Written before `connection up`, when NetworkManager starts the dnsmasq that reads it.
    assert_eq!(
        *recorded.hosts_file_there.lock().expect("lock"),
        [false, false, true, true, false]
    );
}

#[tokio::test]
async fn a_hotspot_that_does_not_come_up_leaves_no_address() {
    let (wifi, recorded) = backend(vec![
        ok(""),
        ok(""),
        failed(
            "Error: Connection activation failed: No suitable device found for this connection (device wlan0 not available because device is not available).\n",
        ),
    ]);
    let failed = wifi
        .raise_hotspot("Letterbox-7Q2K", &secret("maple otter violet"))
        .await;
    match failed {
        Err(NetworkError::Backend(reason)) => {
            assert!(reason.contains("No suitable device"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(wifi.hotspot_address(), None);
    assert!(
        !recorded.hosts_file().exists(),
        "a hosts file without a hotspot"
    );
}

#[tokio::test]
async fn the_hosts_file_is_world_readable_and_a_hotspot_without_it_still_comes_up() {
    use std::os::unix::fs::PermissionsExt;
    let script = || vec![ok(""), ok(""), ok("Connection successfully activated\n")];
    let (wifi, recorded) = backend(script());
    wifi.raise_hotspot("Letterbox-7Q2K", &secret("maple otter violet"))
        .await
        .expect("raise");
    // dnsmasq reads it as nobody.
    let mode = std::fs::metadata(recorded.hosts_file())
        .expect("hosts file")
        .permissions();
    assert_eq!(mode.mode() & 0o777, 0o644);
    // A hosts file that cannot be written: the hotspot comes up all the same.
    let recorded = std::sync::Arc::new(Recorded::new(script()));
    let nowhere = recorded
        .data_dir
        .path()
        .join("missing-directory/hotspot-hosts");
    let wifi = NetworkManager::new(recorded.clone(), "wlan0", &nowhere);
    let address = wifi
        .raise_hotspot("Letterbox-7Q2K", &secret("maple otter violet"))
        .await
        .expect("raise without a hosts file");
    assert_eq!(address, IpAddr::V4(HOTSPOT_ADDRESS));
}

#[test]
fn the_captive_dns_leaves_port_53_of_the_hotspot_to_networkmanager() {
    let (wifi, _) = backend(vec![]);
    assert!(wifi.answers_hotspot_dns());
    assert!(!Wired.answers_hotspot_dns());
}

/// The .deb's drop-in for NetworkManager's dnsmasq names the hosts file this backend writes
/// by default and the captive-portal API the web service answers.
#[test]
fn the_packaged_dnsmasq_drop_in_names_the_hosts_file_and_the_captive_api() {
    let drop_in =
        include_str!("../../pkg/files/etc/NetworkManager/dnsmasq-shared.d/letterbox-hotspot.conf");
    let settings: Vec<&str> = drop_in
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(
        settings,
        [
            format!("addn-hosts={}", nm::DEFAULT_HOTSPOT_HOSTS),
            format!(
                "dhcp-option=tag:wlan0,114,\"http://{HOTSPOT_ADDRESS}{}\"",
                crate::web::CAPTIVE_API_PATH
            ),
        ]
    );
    assert_eq!(
        Config::parse("", "x")
            .expect("default")
            .network
            .hotspot_hosts,
        std::path::Path::new(nm::DEFAULT_HOTSPOT_HOSTS)
    );
}

#[tokio::test]
async fn the_link_is_the_network_in_use_its_signal_and_the_address() {
    let (wifi, recorded) = backend(vec![
        ok(" :Neighbours:40\n*:Home\\: upstairs:81\n"),
        ok("IP4.ADDRESS[1]:192.168.1.23/24\n"),
        ok(" :Neighbours:40\n"),
    ]);
    assert_eq!(
        wifi.link().await,
        Ok(Some(Link {
            ssid: "Home: upstairs".into(),
            signal_percent: 81,
            address: Some(IpAddr::from([192, 168, 1, 23])),
        }))
    );
    assert_eq!(wifi.link().await, Ok(None));
    assert_eq!(
        lines(&recorded, PASSPHRASE),
        [
            "nmcli -t -e yes -f IN-USE,SSID,SIGNAL device wifi list ifname wlan0 --rescan no",
            "nmcli -t -e yes -f IP4.ADDRESS device show wlan0",
            "nmcli -t -e yes -f IN-USE,SSID,SIGNAL device wifi list ifname wlan0 --rescan no",
        ]
    );
}

#[tokio::test]
async fn the_country_is_set_with_iw_and_a_refusal_is_reported() {
    let (wifi, recorded) = backend(vec![
        ok(""),
        failed("command failed: Operation not permitted (-1)\n"),
    ]);
    wifi.set_country("DE").await.expect("set");
    assert_eq!(
        wifi.set_country("FR").await,
        Err(NetworkError::Backend(
            "iw reg set FR: command failed: Operation not permitted (-1)".into()
        ))
    );
    assert_eq!(
        lines(&recorded, PASSPHRASE),
        ["iw reg set DE", "iw reg set FR"]
    );
}

#[test]
fn the_config_names_the_networkmanager_backend_and_its_interface() {
    let config = Config::parse(
        "[network]\nbackend = \"networkmanager\"\ninterface = \"wlp2s0\"\n",
        "letterbox.toml",
    )
    .expect("config");
    assert_eq!(config.network.backend, Backend::NetworkManager);
    assert_eq!(config.network.interface, "wlp2s0");
    assert!(from_config(&config).has_wifi());
    assert_eq!(
        Config::parse("", "x").expect("default").network.interface,
        "wlan0"
    );
    for bad in [
        "\"\"",
        "\"wlan0/x\"",
        "\"a-very-long-interface-name\"",
        "\"-w\"",
    ] {
        let text = format!("[network]\ninterface = {bad}\n");
        let error = Config::parse(&text, "letterbox.toml")
            .expect_err(bad)
            .to_string();
        assert!(error.starts_with("letterbox.toml:2:"), "{error}");
    }
}

#[tokio::test]
async fn the_process_runner_writes_the_secret_to_stdin_and_reports_the_exit() {
    let invocation = Invocation {
        program: "sh",
        args: vec!["-c".into(), "cat; echo refused >&2; exit 4".into()],
        stdin: Some(secret("802-11-wireless-security.psk:correct horse\n")),
    };
    let finished = nm::Processes.run(&invocation).await.expect("run sh");
    assert_eq!(
        finished,
        Finished {
            success: false,
            stdout: "802-11-wireless-security.psk:correct horse\n".into(),
            stderr: "refused\n".into(),
        }
    );
    assert_eq!(
        invocation.to_string(),
        "sh -c 'cat; echo refused >&2; exit 4' < <secret>"
    );

    let missing = Invocation {
        program: "letterbox-no-such-program",
        args: Vec::new(),
        stdin: None,
    };
    match nm::Processes.run(&missing).await {
        Err(NetworkError::Backend(reason)) => {
            assert!(reason.starts_with("letterbox-no-such-program:"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}
