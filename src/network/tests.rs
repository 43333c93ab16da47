use std::path::Path;

use super::*;

fn secret(text: &str) -> Secret<String> {
    Secret::new(text.to_string())
}

fn network(ssid: &str, signal_percent: u8, secured: bool) -> WifiNetwork {
    WifiNetwork {
        ssid: ssid.into(),
        signal_percent,
        secured,
    }
}

fn config(text: &str) -> Config {
    Config::parse(text, "letterbox.toml").expect("config")
}

#[tokio::test]
async fn a_wired_box_has_no_wifi_to_scan_or_join_and_no_hotspot() {
    let wired = from_config(&config(""));
    assert!(!wired.has_wifi());
    assert_eq!(wired.scan().await, Err(NetworkError::NoWifi));
    let joined = wired.join("Home", &secret("correct horse")).await;
    assert_eq!(joined, Err(NetworkError::NoWifi));
    assert_eq!(wired.hotspot_address(), None);
}

#[test]
fn passphrases_are_8_to_63_printable_ascii_characters() {
    let cases = [
        ("12345678", Ok(())),
        ("1234567", Err(NetworkError::PassphraseLength)),
        ("", Err(NetworkError::PassphraseLength)),
        (&"x".repeat(63), Ok(())),
        (&"x".repeat(64), Err(NetworkError::PassphraseLength)),
        ("correct horse ~!@#$%^&*()", Ok(())),
        ("grüner apfel", Err(NetworkError::PassphraseCharacters)),
        ("tab\there!", Err(NetworkError::PassphraseCharacters)),
        ("new\nline!", Err(NetworkError::PassphraseCharacters)),
    ];
    for (passphrase, expected) in cases {
        assert_eq!(
            check_passphrase(&secret(passphrase)),
            expected,
            "{passphrase:?}"
        );
    }
}

#[test]
fn ssids_are_1_to_32_bytes() {
    assert_eq!(check_ssid("Home"), Ok(()));
    assert_eq!(check_ssid(&"é".repeat(16)), Ok(()));
    assert_eq!(check_ssid(""), Err(NetworkError::BadSsid));
    assert_eq!(check_ssid(&"é".repeat(17)), Err(NetworkError::BadSsid));
}

#[test]
fn scan_results_are_one_per_ssid_strongest_first() {
    let heard = [
        network("Neighbours", 40, true),
        network("Home", 60, true),
        network("", 99, true),
        network("Cafe", 70, false),
        network("Home", 80, false),
        network("Neighbours", 20, true),
        network("Garden", 40, true),
    ];
    assert_eq!(
        strongest_first(heard),
        vec![
            // The open look-alike lends its signal, not its openness.
            network("Home", 80, true),
            network("Cafe", 70, false),
            // Equal signals keep the order they were heard in.
            network("Neighbours", 40, true),
            network("Garden", 40, true),
        ]
    );
}

fn simulated(dir: &Path) -> Simulated {
    let ssids: Vec<String> = ["Home", "Neighbours", "Cafe"].map(String::from).into();
    Simulated::new(&ssids, None, None, dir)
}

#[tokio::test]
async fn the_simulated_backend_lists_its_networks_strongest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wifi = simulated(dir.path());
    assert!(wifi.has_wifi());
    assert_eq!(
        wifi.scan().await,
        Ok(vec![
            network("Home", 90, true),
            network("Neighbours", 75, true),
            network("Cafe", 60, true),
        ])
    );
}

#[tokio::test]
async fn the_simulated_backend_joins_a_listed_network_and_records_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wifi = simulated(dir.path());
    assert_eq!(wifi.joined(), None);
    wifi.join("Neighbours", &secret("correct horse"))
        .await
        .expect("join");
    assert_eq!(wifi.joined().as_deref(), Some("Neighbours"));
    let record = std::fs::read_to_string(dir.path().join(JOINED_FILE)).expect("record");
    assert_eq!(record, "joined = \"Neighbours\"\n");
    assert!(
        !record.contains("horse"),
        "the passphrase is recorded nowhere"
    );

    // Joining another one replaces the record.
    wifi.join("Home", &secret("battery staple"))
        .await
        .expect("join");
    assert_eq!(wifi.joined().as_deref(), Some("Home"));
    let record = std::fs::read_to_string(dir.path().join(JOINED_FILE)).expect("record");
    assert_eq!(record, "joined = \"Home\"\n");
}

#[tokio::test]
async fn the_simulated_backend_refuses_unknown_networks_and_bad_passphrases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wifi = simulated(dir.path());
    let cases = [
        (
            "Elsewhere",
            "correct horse",
            NetworkError::NotInRange("Elsewhere".into()),
        ),
        ("", "correct horse", NetworkError::BadSsid),
        ("Home", "short", NetworkError::PassphraseLength),
        ("Home", &"x".repeat(64), NetworkError::PassphraseLength),
        (
            "Home",
            "naïve passphrase",
            NetworkError::PassphraseCharacters,
        ),
    ];
    for (ssid, passphrase, expected) in cases {
        let refused = wifi.join(ssid, &secret(passphrase)).await;
        assert_eq!(refused, Err(expected.clone()), "{ssid:?} / {passphrase:?}");
        assert!(!expected.to_string().contains('\n'), "one line: {expected}");
    }
    assert_eq!(wifi.joined(), None);
    assert!(!dir.path().join(JOINED_FILE).exists());
    assert_eq!(
        NetworkError::NotInRange("Elsewhere".into()).to_string(),
        "no network named \"Elsewhere\" is in range"
    );
}

#[tokio::test]
async fn a_record_that_cannot_be_written_fails_the_join_and_says_where() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wifi = simulated(&dir.path().join("missing"));
    let failed = wifi.join("Home", &secret("correct horse")).await;
    match failed {
        Err(NetworkError::Backend(reason)) => assert!(reason.contains(JOINED_FILE), "{reason}"),
        other => panic!("joined anyway: {other:?}"),
    }
    assert_eq!(wifi.joined(), None);
}

#[tokio::test]
async fn the_config_picks_the_simulated_backend_and_its_hotspot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "data_dir = \"{}\"\n[network]\nbackend = \"simulated\"\n\
         simulated_networks = [\"Home\", \"Neighbours\"]\nsimulated_hotspot = \"127.0.0.2\"\n\
         simulated_passphrase = \"correct horse\"\n",
        dir.path().display()
    );
    let wifi = from_config(&config(&text));
    assert!(wifi.has_wifi());
    let ssids: Vec<String> = wifi
        .scan()
        .await
        .expect("scan")
        .into_iter()
        .map(|n| n.ssid)
        .collect();
    assert_eq!(ssids, ["Home", "Neighbours"]);
    // The hotspot's address is reported only while it is up.
    assert_eq!(wifi.hotspot_address(), None);
    assert!(!wifi.has_uplink().await);
    let hotspot = super::Hotspot::new().expect("random source");
    let raised = wifi.raise_hotspot(&hotspot, "/captive-portal/api").await;
    assert_eq!(raised, Ok(IpAddr::from([127, 0, 0, 2])));
    assert_eq!(wifi.hotspot_address(), Some(IpAddr::from([127, 0, 0, 2])));
    wifi.lower_hotspot().await.expect("lowered");
    assert_eq!(wifi.hotspot_address(), None);
    assert_eq!(
        wifi.join("Home", &secret("another passphrase")).await,
        Err(NetworkError::WrongPassphrase("Home".into()))
    );
    wifi.join("Home", &secret("correct horse"))
        .await
        .expect("join");
    assert!(dir.path().join(JOINED_FILE).exists());
    assert!(wifi.has_uplink().await);
}

#[test]
fn bad_network_settings_are_refused_with_file_and_line() {
    let cases = [
        (
            "[network]\nbackend = \"nmcli\"\n",
            "letterbox.toml:2:",
            "unknown variant",
        ),
        ("[network]\n\nbogus = 1\n", "letterbox.toml:3:", "bogus"),
        (
            "[network]\nsimulated_networks = [\"Home\", \"Home\"]\n",
            "letterbox.toml:2:",
            "listed twice",
        ),
        (
            "[network]\nsimulated_networks = [\"\"]\n",
            "letterbox.toml:2:",
            "1 to 32 bytes",
        ),
        (
            "[network]\nsimulated_networks = [\"0123456789abcdef0123456789abcdef!\"]\n",
            "letterbox.toml:2:",
            "1 to 32 bytes",
        ),
        (
            "[network]\nbackend = \"simulated\"\nsimulated_hotspot = \"0.0.0.0\"\n",
            "letterbox.toml:3:",
            "not an address",
        ),
        (
            "[network]\nsimulated_hotspot = \"hotspot\"\n",
            "letterbox.toml:2:",
            "",
        ),
    ];
    for (text, location, reason) in cases {
        let error = match Config::parse(text, "letterbox.toml") {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        };
        assert!(error.starts_with(location), "{text:?} gave {error}");
        assert!(error.contains(reason), "{text:?} gave {error}");
        assert!(!error.contains('\n'), "one line: {error}");
    }
}

#[test]
fn config_show_lists_the_network_keys_with_their_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("letterbox.toml");
    let text = format!(
        "data_dir = \"{}\"\n[network]\nsimulated_networks = [\"Home\"]\n",
        dir.path().display()
    );
    std::fs::write(&path, text).expect("config");
    let layered = crate::settings::Layered::load(Some(&path)).expect("load");
    let shown = layered.show();
    let line = |key: &str| {
        shown
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("{key} is not shown:\n{shown}"))
            .to_string()
    };
    let backend = line("network.backend");
    assert!(
        backend.starts_with("network.backend = \"auto\""),
        "{backend}"
    );
    assert!(backend.ends_with("# default"), "{backend}");
    let networks = line("network.simulated_networks");
    assert!(
        networks.starts_with("network.simulated_networks = [\"Home\"]"),
        "{networks}"
    );
    assert!(networks.ends_with("letterbox.toml"), "{networks}");
}
