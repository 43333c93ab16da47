use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::net::UnixDatagram;

use super::proto::{self, DisabledReason, Event, Field, LinkStatus, ReplyError, Request};
use super::*;

/// SCAN_RESULTS as wpa_supplicant 2.10 writes it (ctrl_iface.c,
/// `wpa_supplicant_ctrl_iface_scan_result`): a header, then tab-separated fields; the SSID
/// escaped by printf_encode.
const SCAN_RESULTS: &str = "bssid / frequency / signal level / flags / ssid\n\
02:00:00:00:01:00\t2412\t-30\t[WPA2-PSK-CCMP][ESS]\tHome\n\
02:00:00:00:02:00\t2437\t-71\t[ESS]\tCafe \\\"Free\\\"\n\
02:00:00:00:03:00\t5180\t-88\t[RSN-SAE-CCMP][ESS]\tCaf\\xc3\\xa9\n\
02:00:00:00:04:00\t2462\t-20\t[WPA2-PSK-CCMP][ESS]\tHome\n\
02:00:00:00:05:00\t2412\t-45\t[WPA2-PSK-CCMP][ESS]\t\\xff\\xfe\n\
02:00:00:00:06:00\t24";

#[test]
fn requests_are_encoded_with_people_s_values_in_hex() {
    let cases = [
        (Request::Attach, "ATTACH"),
        (Request::Scan, "SCAN"),
        (Request::ScanResults, "SCAN_RESULTS"),
        (Request::ListNetworks, "LIST_NETWORKS"),
        (Request::AddNetwork, "ADD_NETWORK"),
        (
            Request::SetNetwork {
                id: 3,
                field: Field::Ssid(b"Home \"5G\"".to_vec()),
            },
            "SET_NETWORK 3 ssid 486f6d652022354722",
        ),
        (
            Request::SetNetwork {
                id: 0,
                field: Field::Psk([0xab; 32]),
            },
            "SET_NETWORK 0 psk abababababababababababababababababababababababababababababababab",
        ),
        (
            Request::SetNetwork {
                id: 0,
                field: Field::KeyMgmtPsk,
            },
            "SET_NETWORK 0 key_mgmt WPA-PSK",
        ),
        (
            Request::SetNetwork {
                id: 1,
                field: Field::AccessPoint,
            },
            "SET_NETWORK 1 mode 2",
        ),
        (
            Request::SetNetwork {
                id: 1,
                field: Field::FrequencyMhz(2412),
            },
            "SET_NETWORK 1 frequency 2412",
        ),
        (Request::SelectNetwork(2), "SELECT_NETWORK 2"),
        (Request::RemoveNetwork(2), "REMOVE_NETWORK 2"),
        (Request::Disconnect, "DISCONNECT"),
    ];
    for (request, line) in cases {
        assert_eq!(request.encode(), line);
    }
}

#[test]
fn ok_and_refusals() {
    assert_eq!(proto::parse_ok("OK\n"), Ok(()));
    assert_eq!(proto::parse_ok("FAIL\n"), Err(ReplyError::Fail));
    assert_eq!(proto::parse_ok("FAIL-BUSY\n"), Err(ReplyError::Busy));
    assert_eq!(
        proto::parse_ok("UNKNOWN COMMAND\n"),
        Err(ReplyError::UnknownCommand)
    );
    assert!(matches!(
        proto::parse_ok("OKAY\n"),
        Err(ReplyError::Unexpected(_))
    ));
    assert_eq!(proto::parse_network_id("0\n"), Ok(0));
    assert_eq!(proto::parse_network_id("12\n"), Ok(12));
    assert_eq!(proto::parse_network_id("FAIL\n"), Err(ReplyError::Fail));
    assert!(proto::parse_network_id("-1\n").is_err());
}

#[test]
fn scan_results_give_names_signal_and_security() {
    let heard = proto::parse_scan_results(SCAN_RESULTS).expect("parsed");
    let summary: Vec<(String, u8, bool)> = heard
        .iter()
        .map(|n| (n.ssid.clone(), n.signal_percent, n.secured))
        .collect();
    assert_eq!(
        summary,
        [
            ("Home".to_string(), 100, true),
            ("Cafe \"Free\"".to_string(), 58, false),
            ("Café".to_string(), 24, true),
            ("Home".to_string(), 100, true),
        ],
        "the name that is not UTF-8 and the line cut short are left out"
    );
    assert_eq!(
        proto::parse_scan_results(REAL_SCAN_RESULTS),
        Ok(vec![WifiNetwork {
            ssid: "HomeRouter".into(),
            signal_percent: 100,
            secured: true,
        }])
    );
    let listed = crate::network::strongest_first(heard);
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].ssid, "Home");
    assert_eq!(
        proto::parse_scan_results("bssid / frequency / signal level / flags / ssid\n"),
        Ok(vec![])
    );
    assert_eq!(proto::parse_scan_results("FAIL\n"), Err(ReplyError::Fail));
}

#[test]
fn signal_scale_and_text_decoding() {
    for (dbm, percent) in [(-110, 0), (-100, 0), (-75, 50), (-50, 100), (-20, 100)] {
        assert_eq!(proto::signal_percent(dbm), percent, "{dbm} dBm");
    }
    let cases: [(&str, &[u8]); 6] = [
        ("plain", b"plain"),
        ("a\\\\b", b"a\\b"),
        ("tab\\there", b"tab\there"),
        ("\\x00\\x7f", b"\x00\x7f"),
        ("cut\\x4", b"cut\\x4"),
        ("end\\", b"end\\"),
    ];
    for (text, bytes) in cases {
        assert_eq!(proto::decode_text(text), bytes, "{text}");
    }
}

/// Replies wpa_supplicant 2.10 (Debian bookworm arm64) gave in image/test's Wi-Fi stage,
/// joined to hostapd over mac80211_hwsim (`wpa_cli status`, `signal_poll`, `list_networks`,
/// `scan_results`; the test prints them).
const REAL_STATUS: &str = "bssid=02:00:00:00:01:00\nfreq=2437\nssid=HomeRouter\nid=0\n\
mode=station\npairwise_cipher=CCMP\ngroup_cipher=CCMP\nkey_mgmt=WPA2-PSK\n\
wpa_state=COMPLETED\nip_address=192.168.77.126\np2p_device_address=42:00:00:00:00:00\n\
address=02:00:00:00:00:00\nuuid=362db47b-a53a-5191-88fb-5458b986b2e4\n";
const REAL_SIGNAL_POLL: &str = "RSSI=-30\nLINKSPEED=54\nNOISE=-92\nFREQUENCY=2437\n\
WIDTH=20 MHz (no HT)\nCENTER_FRQ1=2437\nAVG_RSSI=-30\nAVG_BEACON_RSSI=-30\n";
const REAL_SCAN_RESULTS: &str = "bssid / frequency / signal level / flags / ssid\n\
02:00:00:00:01:00\t2437\t-30\t[WPA2-PSK-CCMP][ESS]\tHomeRouter\n";
const REAL_LIST_NETWORKS: &str =
    "network id / ssid / bssid / flags\n0\tHomeRouter\tany\t[CURRENT]\n";

#[test]
fn status_and_signal() {
    let station = REAL_STATUS;
    let status = proto::parse_status(station).expect("parsed");
    assert_eq!(
        status,
        LinkStatus {
            wpa_state: "COMPLETED".into(),
            ssid: Some("HomeRouter".into()),
            mode: Some("station".into()),
            ip_address: Some("192.168.77.126".into()),
            frequency_mhz: Some(2437),
        }
    );
    assert!(status.completed());
    let idle =
        proto::parse_status("wpa_state=DISCONNECTED\naddress=02:00:00:00:00:00\n").expect("parsed");
    assert!(!idle.completed());
    assert_eq!(idle.ssid, None);
    assert!(proto::parse_status("FAIL\n").is_err());
    assert_eq!(proto::parse_signal_dbm(REAL_SIGNAL_POLL), Some(-30));
    assert_eq!(proto::parse_signal_dbm("FAIL\n"), None);
    assert_eq!(proto::parse_network_ids(REAL_LIST_NETWORKS), [0]);
    assert_eq!(
        proto::parse_network_ids(
            "network id / ssid / bssid / flags\n0\tHome\tany\t[CURRENT]\n1\tOld\tany\t[DISABLED]\n"
        ),
        [0, 1]
    );
}

#[test]
fn events_are_told_from_replies() {
    let cases = [
        (
            "<3>CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00 completed [id=0 id_str=]",
            Some(Event::Connected),
        ),
        (
            "<3>CTRL-EVENT-DISCONNECTED bssid=02:00:00:00:01:00 reason=3 locally_generated=1",
            Some(Event::Disconnected),
        ),
        (
            "<3>CTRL-EVENT-SSID-TEMP-DISABLED id=0 ssid=\"Home\" auth_failures=1 duration=10 reason=WRONG_KEY",
            Some(Event::TempDisabled(DisabledReason::WrongKey)),
        ),
        (
            "<3>CTRL-EVENT-SSID-TEMP-DISABLED id=0 ssid=\"Home\" auth_failures=1 duration=10 reason=CONN_FAILED",
            Some(Event::TempDisabled(DisabledReason::Other(
                "CONN_FAILED".into(),
            ))),
        ),
        (
            "<3>CTRL-EVENT-NETWORK-NOT-FOUND ",
            Some(Event::NetworkNotFound),
        ),
        ("<3>CTRL-EVENT-SCAN-RESULTS ", Some(Event::ScanResults)),
        ("<3>AP-ENABLED ", Some(Event::ApEnabled)),
        ("<3>AP-DISABLED ", Some(Event::Other)),
        ("<2>CTRL-EVENT-SCAN-STARTED ", Some(Event::Other)),
        ("OK\n", None),
        ("<not an event", None),
    ];
    for (message, event) in cases {
        assert_eq!(proto::parse_event(message), event, "{message}");
    }
}

#[test]
fn the_psk_is_the_standard_s_test_vector() {
    // IEEE 802.11-2020 Annex J.4.2's first two test vectors.
    let cases = [
        (
            "password",
            "IEEE",
            "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e",
        ),
        (
            "ThisIsAPassword",
            "ThisIsASSID",
            "0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af",
        ),
    ];
    for (passphrase, ssid, psk) in cases {
        let key = proto::psk(passphrase, ssid.as_bytes());
        assert_eq!(proto::psk_hex(&key), psk, "{passphrase} / {ssid}");
        assert_eq!(proto::parse_psk(psk), Some(key));
    }
    assert_eq!(proto::parse_psk("abc"), None);
    assert_eq!(proto::parse_psk(&"g".repeat(64)), None);
}

/// How the fake wpa_supplicant answers a join.
#[derive(Clone, Copy)]
enum Outcome {
    Connected,
    WrongKey,
    NotFound,
}

/// A stand-in for wpa_supplicant's control socket: answers each request as 2.10 does, and
/// after SELECT_NETWORK sends the attached client the event `outcome` names. Returns the
/// request lines it received.
async fn fake_wpa_supplicant(socket: UnixDatagram, outcome: Outcome) -> Vec<String> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let mut next_id = 0u32;
    while let Ok(Ok((length, peer))) = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        socket.recv_from(&mut buffer),
    )
    .await
    {
        let line = String::from_utf8_lossy(&buffer[..length]).into_owned();
        let reply = match line.split(' ').next().unwrap_or("") {
            "ADD_NETWORK" => {
                next_id += 1;
                format!("{}\n", next_id - 1)
            }
            "LIST_NETWORKS" => {
                let mut text = "network id / ssid / bssid / flags\n".to_string();
                for id in 0..next_id {
                    text.push_str(&format!("{id}\tx\tany\t\n"));
                }
                text
            }
            "SCAN_RESULTS" => SCAN_RESULTS.to_string(),
            "STATUS" => "bssid=02:00:00:00:01:00\nfreq=2412\nssid=Home\nid=0\nmode=station\n\
                         wpa_state=COMPLETED\nip_address=192.168.77.23\n"
                .to_string(),
            "SIGNAL_POLL" => "RSSI=-60\nLINKSPEED=54\nNOISE=9999\nFREQUENCY=2412\n".to_string(),
            _ => "OK\n".to_string(),
        };
        let path = peer
            .as_pathname()
            .expect("the client binds a path")
            .to_path_buf();
        socket
            .send_to(reply.as_bytes(), &path)
            .await
            .expect("reply");
        let event = match (line.split(' ').next(), outcome) {
            (Some("SCAN"), _) => Some("<3>CTRL-EVENT-SCAN-RESULTS "),
            (Some("SELECT_NETWORK"), Outcome::Connected) => Some(
                "<3>CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00 completed [id=0 id_str=]",
            ),
            (Some("SELECT_NETWORK"), Outcome::WrongKey) => Some(
                "<3>CTRL-EVENT-SSID-TEMP-DISABLED id=0 ssid=\"Home\" auth_failures=1 duration=10 reason=WRONG_KEY",
            ),
            (Some("SELECT_NETWORK"), Outcome::NotFound) => Some("<3>CTRL-EVENT-NETWORK-NOT-FOUND "),
            _ => None,
        };
        if let Some(event) = event {
            socket
                .send_to(event.as_bytes(), &path)
                .await
                .expect("event");
        }
        received.push(line);
    }
    received
}

fn serve(dir: &Path, outcome: Outcome) -> (PathBuf, tokio::task::JoinHandle<Vec<String>>) {
    let control = dir.join("wlan0");
    let socket = UnixDatagram::bind(&control).expect("bind");
    (control, tokio::spawn(fake_wpa_supplicant(socket, outcome)))
}

fn secret(text: &str) -> Secret<String> {
    Secret::new(text.to_string())
}

#[tokio::test]
async fn joining_stores_the_network_s_key_not_its_passphrase() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (control, server) = serve(dir.path(), Outcome::Connected);
    assert!(Wpa::present(&control));
    let wifi = Wpa::new(&control, dir.path());
    wifi.join("Home", &secret("correct horse battery"))
        .await
        .expect("joined");
    let requests = server.await.expect("server");
    let psk = proto::psk_hex(&proto::psk("correct horse battery", b"Home"));
    assert_eq!(
        requests,
        [
            "ATTACH".to_string(),
            "ADD_NETWORK".into(),
            "SET_NETWORK 0 ssid 486f6d65".into(),
            format!("SET_NETWORK 0 psk {psk}"),
            "SET_NETWORK 0 key_mgmt WPA-PSK".into(),
            "SET_NETWORK 0 scan_ssid 1".into(),
            "SELECT_NETWORK 0".into(),
            "LIST_NETWORKS".into(),
        ]
    );
    let stored = dir.path().join(CREDENTIALS_FILE);
    let mode = std::fs::metadata(&stored)
        .expect("stored")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&stored).expect("read");
    assert!(text.contains(&psk), "{text}");
    assert!(!text.contains("correct horse"), "{text}");
    // The client's own socket is gone with it.
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .expect("tmp")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("letterbox-wpa-{}-", std::process::id()))
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // At the next start the stored network is handed over again.
    let (control, server) = {
        std::fs::remove_file(&control).expect("old socket");
        serve(dir.path(), Outcome::Connected)
    };
    Wpa::new(&control, dir.path()).start().await;
    let requests = server.await.expect("server");
    assert!(
        requests.contains(&format!("SET_NETWORK 0 psk {psk}")),
        "{requests:?}"
    );
    assert!(
        requests.contains(&"SELECT_NETWORK 0".to_string()),
        "{requests:?}"
    );
}

#[tokio::test]
async fn a_wrong_passphrase_or_a_missing_network_is_said_and_nothing_is_stored() {
    for (outcome, expected) in [
        (
            Outcome::WrongKey,
            NetworkError::WrongPassphrase("Home".into()),
        ),
        (Outcome::NotFound, NetworkError::NotInRange("Home".into())),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (control, server) = serve(dir.path(), outcome);
        let wifi = Wpa::new(&control, dir.path());
        let error = wifi
            .join("Home", &secret("not the passphrase"))
            .await
            .expect_err("refused");
        assert_eq!(error, expected);
        let requests = server.await.expect("server");
        assert_eq!(
            requests.last().map(String::as_str),
            Some("REMOVE_NETWORK 0")
        );
        assert!(!dir.path().join(CREDENTIALS_FILE).exists());
    }
}

#[tokio::test]
async fn scanning_waits_for_the_results_and_lists_each_name_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (control, server) = serve(dir.path(), Outcome::Connected);
    let networks = Wpa::new(&control, dir.path()).scan().await.expect("scan");
    let names: Vec<&str> = networks.iter().map(|n| n.ssid.as_str()).collect();
    assert_eq!(names, ["Home", "Cafe \"Free\"", "Café"]);
    assert_eq!(
        server.await.expect("server"),
        ["ATTACH", "SCAN", "SCAN_RESULTS"]
    );
}

#[tokio::test]
async fn no_wpa_supplicant_is_a_backend_error_not_a_hang() {
    let dir = tempfile::tempdir().expect("tempdir");
    let control = dir.path().join("wlan0");
    assert!(!Wpa::present(&control));
    let error = Wpa::new(&control, dir.path())
        .scan()
        .await
        .expect_err("no socket");
    assert!(matches!(error, NetworkError::Backend(_)), "{error:?}");
}

#[tokio::test]
async fn the_link_names_the_network_its_signal_and_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (control, server) = serve(dir.path(), Outcome::Connected);
    let link = Wpa::new(&control, dir.path()).link().await;
    assert_eq!(
        link,
        Some(WifiLink {
            ssid: "Home".into(),
            signal_percent: Some(80),
            address: Some("192.168.77.23".into()),
        })
    );
    assert_eq!(
        link.map(|l| l.describe()).as_deref(),
        Some("Home, signal 80 %, 192.168.77.23")
    );
    assert_eq!(server.await.expect("server"), ["STATUS", "SIGNAL_POLL"]);
}

#[tokio::test]
async fn auto_takes_wpa_supplicant_only_when_network_manager_does_not_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let network_manager = dir.path().join("NetworkManager");
    let control = dir.path().join("wlan0");
    let auto =
        crate::network::Auto::new(Wpa::new(&control, dir.path()), &control, &network_manager);
    assert!(!auto.has_wifi(), "no socket: wired");
    let _socket = UnixDatagram::bind(&control).expect("bind");
    assert!(auto.has_wifi(), "a socket: wpa_supplicant");
    std::fs::create_dir(&network_manager).expect("mkdir");
    assert!(!auto.has_wifi(), "NetworkManager runs: not ours to drive");
}

/// A hotspot script that records its arguments, one call a line, in `calls`.
fn recording_script(dir: &Path, calls: &Path, status: i32) -> PathBuf {
    let script = dir.join("letterbox-hotspot");
    let text = format!(
        "#!/bin/sh\necho \"$@\" >> '{}'\nexit {status}\n",
        calls.display()
    );
    std::fs::write(&script, text).expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("mode");
    script
}

fn hotspot() -> Hotspot {
    Hotspot {
        ssid: "Letterbox-7F3A".into(),
        passphrase: secret("fox-reed-lamp-owl"),
    }
}

#[tokio::test]
async fn the_hotspot_is_a_wpa2_access_point_whose_addresses_the_script_sets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (control, server) = serve(dir.path(), Outcome::Connected);
    let calls = dir.path().join("calls");
    let script = recording_script(dir.path(), &calls, 0);
    let wifi = Wpa::new(&control, dir.path()).with_hotspot_script(&script);
    let address = wifi
        .raise_hotspot(&hotspot(), "/captive-portal/api")
        .await
        .expect("raised");
    assert_eq!(address, IpAddr::V4(HOTSPOT_ADDRESS));
    assert_eq!(wifi.hotspot_address(), Some(address));
    // While it is up the radio is not asked to scan: what was heard before (nothing here).
    assert_eq!(wifi.scan().await, Ok(Vec::new()));
    wifi.lower_hotspot().await.expect("lowered");
    assert_eq!(wifi.hotspot_address(), None);
    wifi.lower_hotspot()
        .await
        .expect("lowering it twice is fine");

    let requests = server.await.expect("server");
    let psk = proto::psk_hex(&proto::psk("fox-reed-lamp-owl", b"Letterbox-7F3A"));
    assert_eq!(
        requests,
        [
            "ATTACH".to_string(),
            "LIST_NETWORKS".into(),
            "ADD_NETWORK".into(),
            format!("SET_NETWORK 0 ssid {}", proto::hex(b"Letterbox-7F3A")),
            "SET_NETWORK 0 mode 2".into(),
            "SET_NETWORK 0 frequency 2412".into(),
            "SET_NETWORK 0 key_mgmt WPA-PSK".into(),
            "SET_NETWORK 0 proto RSN".into(),
            "SET_NETWORK 0 pairwise CCMP".into(),
            "SET_NETWORK 0 group CCMP".into(),
            format!("SET_NETWORK 0 psk {psk}"),
            "SELECT_NETWORK 0".into(),
            "LIST_NETWORKS".into(),
            "REMOVE_NETWORK 0".into(),
        ]
    );
    let url = proto::hex(b"http://10.42.0.1/captive-portal/api");
    assert_eq!(
        std::fs::read_to_string(&calls).expect("calls"),
        format!("up wlan0 10.42.0.1/24 {url}\ndown wlan0\n")
    );
}

#[tokio::test]
async fn a_failing_script_leaves_no_hotspot_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (control, _server) = serve(dir.path(), Outcome::Connected);
    let calls = dir.path().join("calls");
    let script = recording_script(dir.path(), &calls, 1);
    let wifi = Wpa::new(&control, dir.path()).with_hotspot_script(&script);
    let error = wifi
        .raise_hotspot(&hotspot(), "/captive-portal/api")
        .await
        .expect_err("the script failed");
    assert!(
        matches!(&error, NetworkError::Backend(text) if text.contains("hotspot script")),
        "{error}"
    );
    assert_eq!(wifi.hotspot_address(), None);
}
