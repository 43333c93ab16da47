//! `letterbox wifi import`: what the image's init runs at boot for a `letterbox-wifi.txt` on
//! the boot partition. The binary itself, as the init calls it.

mod common;

use common::{BIN, text};

fn import(config: &std::path::Path, file: &std::path::Path) -> std::process::Output {
    std::process::Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(["wifi", "import"])
        .arg(file)
        .output()
        .expect("run letterbox")
}

#[test]
fn a_boot_file_is_stored_as_a_key_and_wiped_and_a_bad_one_is_refused_and_wiped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    let config = dir.path().join("letterbox.toml");
    std::fs::write(&config, common::config_text(&data, "")).expect("config");
    let boot = dir.path().join("letterbox-wifi.txt");

    // Written on Windows: a byte-order mark and CRLF line ends.
    std::fs::write(
        &boot,
        "\u{feff}ssid = Home upstairs\r\npassphrase = correct horse battery\r\n",
    )
    .expect("boot file");
    let out = import(&config, &boot);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(said.contains("\"Home upstairs\""), "{said}");
    assert!(!said.contains("correct horse"), "{said}");
    assert!(!boot.exists(), "the boot file is still there");
    let stored = std::fs::read_to_string(data.join("wifi.toml")).expect("wifi.toml");
    assert!(stored.contains("ssid = \"Home upstairs\""), "{stored}");
    assert!(
        !stored.contains("horse"),
        "the passphrase is kept: {stored}"
    );
    let psk = stored
        .lines()
        .find_map(|l| l.strip_prefix("psk = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("a psk line");
    assert_eq!(psk.len(), 64, "{stored}");
    assert!(psk.bytes().all(|b| b.is_ascii_hexdigit()), "{stored}");

    // A passphrase too short for WPA2: refused, the stored network is kept, the file wiped.
    std::fs::write(&boot, "Cafe\nshort\n").expect("boot file");
    let out = import(&config, &boot);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("8 to 63"), "{stderr}");
    assert!(!stderr.contains("short"), "{stderr}");
    assert!(!boot.exists());
    let kept = std::fs::read_to_string(data.join("wifi.toml")).expect("wifi.toml");
    assert_eq!(kept, stored);

    // No file: nothing to do, and that is not an error.
    let out = import(&config, &boot);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
