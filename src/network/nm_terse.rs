//! nmcli's terse, escaped output (`nmcli -t -e yes`) read without I/O: the NetworkManager
//! backend ([`super::nm`]) runs the commands, this module only turns their text into values,
//! so every shape of output (escaped colons in a network name, open networks, a device that
//! is not connected, NetworkManager's failure messages) is a table test.
//!
//! The format (nmcli(1), "-t" and "-e"): one record a line, fields in the order of `-f`,
//! separated by `:`; with `-e yes` a `:` inside a value is written `\:` and a `\` is written
//! `\\`. Multi-line commands (`device show`) print `NAME:value` lines instead, and a field
//! that has several values gets an index (`IP4.ADDRESS[1]`).

use std::net::IpAddr;

use super::{NetworkError, WifiNetwork, strongest_first};

/// One terse line's fields, unescaped. A trailing lone `\` (which nmcli never writes) is kept
/// as it is rather than dropped.
pub fn fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) => push(&mut fields, escaped),
                None => push(&mut fields, '\\'),
            },
            ':' => fields.push(String::new()),
            other => push(&mut fields, other),
        }
    }
    fields
}

fn push(fields: &mut [String], c: char) {
    if let Some(last) = fields.last_mut() {
        last.push(c);
    }
}

/// `nmcli -t -e yes -f SSID,SIGNAL,SECURITY device wifi list`: the networks in range as the
/// wizard lists them. Lines that do not have three fields or a signal of 0 to 100 are
/// skipped (nmcli adds columns in new versions only when asked for, so this means a line we
/// cannot read, not a network we should guess about).
pub fn scan(stdout: &str) -> Vec<WifiNetwork> {
    let heard = stdout.lines().filter_map(|line| {
        let [ssid, signal, security] = <[String; 3]>::try_from(fields(line)).ok()?;
        let signal_percent = signal.trim().parse::<u8>().ok().filter(|s| *s <= 100)?;
        Some(WifiNetwork {
            ssid,
            signal_percent,
            secured: is_secured(&security),
        })
    });
    strongest_first(heard)
}

/// nmcli writes an open network's security as an empty field (terse) or `--` (pretty).
fn is_secured(security: &str) -> bool {
    let security = security.trim();
    !(security.is_empty() || security == "--")
}

/// The network the radio is associated with and how well it is heard, from
/// `nmcli -t -e yes -f IN-USE,SSID,SIGNAL device wifi list`: the row marked `*`.
pub fn in_use(stdout: &str) -> Option<(String, u8)> {
    stdout.lines().find_map(|line| {
        let [mark, ssid, signal] = <[String; 3]>::try_from(fields(line)).ok()?;
        if mark.trim() != "*" {
            return None;
        }
        let signal = signal.trim().parse::<u8>().ok().filter(|s| *s <= 100)?;
        Some((ssid, signal))
    })
}

/// The device's first IPv4 address, from `nmcli -t -e yes -f IP4.ADDRESS device show IFACE`
/// (`IP4.ADDRESS[1]:192.168.1.23/24`).
pub fn first_address(stdout: &str) -> Option<IpAddr> {
    stdout.lines().find_map(|line| {
        let fields = fields(line);
        let [name, value] = <[String; 2]>::try_from(fields).ok()?;
        if !name.starts_with("IP4.ADDRESS") {
            return None;
        }
        let address = value.split('/').next()?;
        address.trim().parse().ok()
    })
}

/// What nmcli's error output means for the person in front of the wizard. NetworkManager
/// reports a wrong passphrase as missing secrets (the supplicant's 4-way handshake failed,
/// so it asked its agent again and got nothing new): `Error: Connection activation failed:
/// Secrets were required, but not provided.`
pub fn failure(ssid: &str, stderr: &str) -> NetworkError {
    let text = stderr.trim();
    let has = |needle: &str| text.to_ascii_lowercase().contains(needle);
    if has("secrets were required") || has("802-1x supplicant failed") {
        return NetworkError::WrongPassphrase(ssid.to_string());
    }
    if has("no network with ssid") || has("wi-fi network could not be found") {
        return NetworkError::NotInRange(ssid.to_string());
    }
    // The second is what nmcli says when the system bus itself cannot be reached.
    if has("networkmanager is not running") || has("could not create nmclient object") {
        return NetworkError::Backend("NetworkManager is not running".into());
    }
    if has("not authorized") || has("insufficient privileges") {
        return NetworkError::Backend(
            "NetworkManager refused: Letterbox is not allowed to change the network \
             (see the README's NetworkManager section)"
                .into(),
        );
    }
    // Anything else is shown as nmcli said it, on one line; our commands never carry a
    // passphrase in their arguments, so nmcli cannot echo one back.
    let line = text.lines().next().unwrap_or("nmcli failed");
    let line = line.strip_prefix("Error: ").unwrap_or(line);
    NetworkError::Backend(line.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_split_on_unescaped_colons_only() {
        let cases: [(&str, &[&str]); 8] = [
            ("Home:72:WPA2", &["Home", "72", "WPA2"]),
            (r"Cafe\: free:40:", &["Cafe: free", "40", ""]),
            (
                r"back\\slash:10:WPA1 WPA2",
                &[r"back\slash", "10", "WPA1 WPA2"],
            ),
            (r"ends in \\:5:WPA2", &[r"ends in \", "5", "WPA2"]),
            (r"a\:b\:c", &["a:b:c"]),
            ("", &[""]),
            ("::", &["", "", ""]),
            (r"dangling\", &[r"dangling\"]),
        ];
        for (line, expected) in cases {
            assert_eq!(fields(line), expected, "{line:?}");
        }
    }

    #[test]
    fn a_scan_lists_each_network_once_strongest_first_open_ones_marked() {
        let stdout = "Neighbours:40:WPA2\n\
                      Home:62:WPA2\n\
                      Cafe\\: guests:70:\n\
                      Home:80:WPA1 WPA2\n\
                      :90:WPA2\n\
                      Old:30:--\n\
                      Broken:loud:WPA2\n\
                      TooLoud:101:WPA2\n\
                      two:fields\n";
        let networks = scan(stdout);
        let expected = [
            ("Home", 80, true),
            ("Cafe: guests", 70, false),
            ("Neighbours", 40, true),
            ("Old", 30, false),
        ]
        .map(|(ssid, signal_percent, secured)| WifiNetwork {
            ssid: ssid.into(),
            signal_percent,
            secured,
        });
        assert_eq!(networks, expected);
        assert_eq!(scan(""), Vec::new());
    }

    #[test]
    fn the_link_is_the_row_in_use_and_the_first_ipv4_address() {
        let list = " :Neighbours:40\n*:Home\\:5G:72\n :Cafe:70\n";
        assert_eq!(in_use(list), Some(("Home:5G".into(), 72)));
        assert_eq!(in_use(" :Neighbours:40\n"), None);
        assert_eq!(in_use(""), None);

        let show = "IP4.ADDRESS[1]:192.168.1.23/24\nIP4.ADDRESS[2]:10.0.0.5/8\n";
        assert_eq!(first_address(show), Some(IpAddr::from([192, 168, 1, 23])));
        assert_eq!(first_address("IP4.ADDRESS:\n"), None);
        assert_eq!(first_address("GENERAL.STATE:30 (disconnected)\n"), None);
    }

    #[test]
    fn failures_say_what_a_person_can_act_on() {
        let cases = [
            (
                "Error: Connection activation failed: Secrets were required, but not provided.\n",
                NetworkError::WrongPassphrase("Home".into()),
            ),
            (
                "Error: No network with SSID 'Home' found.\n",
                NetworkError::NotInRange("Home".into()),
            ),
            (
                "Error: Connection activation failed: The Wi-Fi network could not be found\n",
                NetworkError::NotInRange("Home".into()),
            ),
            (
                "Error: NetworkManager is not running.\n",
                NetworkError::Backend("NetworkManager is not running".into()),
            ),
            (
                // nmcli 1.42 without a system bus (recorded here).
                "Error: Could not create NMClient object: Could not connect: No such file or \
                 directory.\n",
                NetworkError::Backend("NetworkManager is not running".into()),
            ),
            (
                "Error: Connection activation failed: IP configuration could not be reserved \
                 (no available address, timeout, etc.).\nHint: use 'journalctl -xe'\n",
                NetworkError::Backend(
                    "Connection activation failed: IP configuration could not be reserved \
                     (no available address, timeout, etc.)."
                        .into(),
                ),
            ),
            ("", NetworkError::Backend("nmcli failed".into())),
        ];
        for (stderr, expected) in cases {
            assert_eq!(failure("Home", stderr), expected, "{stderr:?}");
        }
        let refused = failure("Home", "Error: Not authorized to control networking.");
        assert!(
            matches!(&refused, NetworkError::Backend(reason) if reason.contains("not allowed")),
            "{refused:?}"
        );
    }
}
