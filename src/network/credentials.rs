//! The home network's credentials: kept in `<data_dir>/wifi.toml` (mode 0600, written
//! atomically), read by the backend that joins at every boot, and shown nowhere — not by
//! `letterbox status`, not by the setup page, not in a log. The file holds the network's
//! name and its 256-bit WPA2 key derived from the passphrase (`ssid`, `psk`: 64 hex digits,
//! IEEE 802.11-2020 Annex J.4.1), the format the SD image's wpa_supplicant backend reads;
//! the passphrase itself is kept nowhere.
//!
//! They get there from the setup wizard or from a `letterbox-wifi.txt` that a person put on
//! the SD card's boot partition: `letterbox wifi import <file>` (run by the image's init at
//! boot, like `letterbox-users.txt`'s accounts) stores them and then overwrites the file with
//! zeros and deletes it. The file is either
//!
//! ```text
//! ssid = Home network
//! passphrase = correct horse battery staple
//! ```
//!
//! or just two lines: the network's name, then its passphrase. Around a value, spaces are
//! dropped; a value in double quotes keeps everything between them (a passphrase that starts
//! or ends with a space). Windows line ends and a byte-order mark (Notepad) are fine.
//! Comment lines (`#`) are allowed in the `ssid =` form only, since a two-line passphrase may
//! start with `#`; a file with any `ssid =` or `passphrase =` (or `password =`) line is
//! read in the first form.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{NetworkError, check_passphrase, check_ssid};
use crate::secret::Secret;

/// The credentials file in the data directory.
pub const FILE_NAME: &str = "wifi.toml";
/// The file on the boot partition.
pub const BOOT_FILE_NAME: &str = "letterbox-wifi.txt";
/// A `letterbox-wifi.txt` longer than this is not one (two short lines and a comment or two).
pub const BOOT_FILE_MAX: u64 = 4096;

/// IEEE 802.11-2020 Annex J.4.1: the PSK is PBKDF2-HMAC-SHA1 of the passphrase, salted
/// with the SSID, 4096 iterations, 256 bits.
const PSK_ITERATIONS: std::num::NonZeroU32 = std::num::NonZeroU32::MIN.saturating_add(4095);
const PSK_LEN: usize = 32;

/// The network to join and its WPA2 key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub ssid: String,
    /// 64 lower-case hex digits.
    #[serde(serialize_with = "written_to_the_file")]
    pub psk: Secret<String>,
}

/// The one place the key is serialized: into the credentials file itself.
fn written_to_the_file<S: serde::Serializer>(
    psk: &Secret<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(psk.expose())
}

/// The WPA2 key of `passphrase` on the network `ssid`, as 64 hex digits.
pub fn psk(ssid: &str, passphrase: &Secret<String>) -> Secret<String> {
    let mut key = [0u8; PSK_LEN];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA1,
        PSK_ITERATIONS,
        ssid.as_bytes(),
        passphrase.expose().as_bytes(),
        &mut key,
    );
    Secret::new(key.iter().map(|b| format!("{b:02x}")).collect())
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// What is wrong with the file, never what is in it.
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

impl Credentials {
    /// Reads a `letterbox-wifi.txt` (see the module comment).
    pub fn parse_boot_file(text: &str) -> Result<Credentials, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines: Vec<&str> = text
            .lines()
            .map(|line| line.trim_end_matches('\r'))
            .filter(|line| !line.trim().is_empty())
            .collect();
        let keyed = lines.iter().any(|line| key_value(line).is_some());
        let (ssid, passphrase) = if keyed {
            let mut ssid = None;
            let mut passphrase = None;
            for (number, line) in lines.iter().enumerate() {
                if line.trim_start().starts_with('#') {
                    continue;
                }
                match key_value(line) {
                    Some(("ssid", value)) if ssid.is_none() => ssid = Some(value),
                    Some(("passphrase" | "password", value)) if passphrase.is_none() => {
                        passphrase = Some(value)
                    }
                    // Which line, not what it says: it may be the passphrase mistyped.
                    _ => {
                        return Err(format!(
                            "line {} is not \"ssid = ...\" or \"passphrase = ...\" (or says it twice)",
                            number + 1
                        ));
                    }
                }
            }
            match (ssid, passphrase) {
                (Some(ssid), Some(passphrase)) => (ssid, passphrase),
                (_, None) => return Err("there is no \"passphrase = ...\" line".into()),
                (None, _) => return Err("there is no \"ssid = ...\" line".into()),
            }
        } else {
            match lines.as_slice() {
                [ssid, passphrase] => (unquote(ssid), unquote(passphrase)),
                _ => {
                    return Err(format!(
                        "expected two lines (the network's name, then its passphrase) or \
                         \"ssid = ...\" and \"passphrase = ...\", found {} lines",
                        lines.len()
                    ));
                }
            }
        };
        Credentials::new(ssid, &Secret::new(passphrase.to_string())).map_err(|e| e.to_string())
    }

    /// The credentials for joining `ssid` with `passphrase`, after the wizard's checks.
    pub fn new(ssid: &str, passphrase: &Secret<String>) -> Result<Credentials, NetworkError> {
        check_ssid(ssid)?;
        check_passphrase(passphrase)?;
        Ok(Credentials {
            ssid: ssid.to_string(),
            psk: psk(ssid, passphrase),
        })
    }

    fn check(&self) -> Result<(), String> {
        check_ssid(&self.ssid).map_err(|e| e.to_string())?;
        let psk = self.psk.expose();
        if psk.len() != 2 * PSK_LEN || !psk.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("psk is not 64 hex digits".into());
        }
        Ok(())
    }

    /// `<data_dir>/wifi.toml`, or `None` when no network has been given yet.
    pub fn load(data_dir: &Path) -> Result<Option<Credentials>, CredentialsError> {
        let path = path(data_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CredentialsError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        let invalid = |reason: String| CredentialsError::Invalid {
            path: path.display().to_string(),
            reason,
        };
        // toml's message may quote the line, which may be the passphrase: say only where.
        let credentials: Credentials = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|span| crate::config::line_at(&text, span.start))
                .unwrap_or(1);
            invalid(format!("line {line} cannot be read"))
        })?;
        credentials.check().map_err(invalid)?;
        Ok(Some(credentials))
    }

    /// Writes `<data_dir>/wifi.toml` atomically, readable by its owner only, and owned by the
    /// data directory's owner (the import runs as root at boot; the daemon may not).
    pub fn save(&self, data_dir: &Path) -> Result<(), CredentialsError> {
        use std::os::unix::fs::MetadataExt;
        let path = path(data_dir);
        let io = |source| CredentialsError::Io {
            path: path.display().to_string(),
            source,
        };
        let text = format!(
            "# The Wi-Fi network this box joins. The key is derived from the passphrase\n\
             # (IEEE 802.11 Annex J.4.1); the passphrase is not kept.\n{}",
            toml::to_string(self).map_err(|e| io(std::io::Error::other(e)))?
        );
        crate::settings::write_atomically(&path, text.as_bytes()).map_err(io)?;
        let owner = std::fs::metadata(data_dir).map_err(io)?;
        let this = std::fs::metadata(&path).map_err(io)?;
        if (this.uid(), this.gid()) != (owner.uid(), owner.gid()) {
            std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).map_err(io)?;
        }
        Ok(())
    }
}

/// `key = value` with the key lower-cased; `None` for a line without `=`.
fn key_value(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once('=')?;
    let key = key.trim();
    let known = ["ssid", "passphrase", "password"];
    let key = known.into_iter().find(|k| k.eq_ignore_ascii_case(key))?;
    Some((key, unquote(value)))
}

fn unquote(value: &str) -> &str {
    let value = value.trim();
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// What `letterbox wifi import` did, in words for the boot log (never the passphrase).
#[derive(Debug, PartialEq, Eq)]
pub enum Imported {
    /// Stored; the box will join this network.
    Stored { ssid: String },
    /// No such file: nothing to do.
    Absent,
}

/// Reads `boot_file`, stores its credentials in `data_dir`, then overwrites the file with
/// zeros and deletes it — also when it cannot be read as credentials, since it may hold a
/// passphrase all the same. The error says what was wrong with it.
pub fn import_boot_file(boot_file: &Path, data_dir: &Path) -> Result<Imported, CredentialsError> {
    let shown = boot_file.display().to_string();
    let io = |source| CredentialsError::Io {
        path: shown.clone(),
        source,
    };
    let length = match std::fs::metadata(boot_file) {
        Ok(meta) => meta.len(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Imported::Absent),
        Err(source) => return Err(io(source)),
    };
    let stored = if length > BOOT_FILE_MAX {
        Err(CredentialsError::Invalid {
            path: shown.clone(),
            reason: format!("longer than {BOOT_FILE_MAX} bytes"),
        })
    } else {
        let bytes = std::fs::read(boot_file).map_err(io)?;
        match std::str::from_utf8(&bytes) {
            Err(_) => Err(CredentialsError::Invalid {
                path: shown.clone(),
                reason: "not UTF-8 text".into(),
            }),
            Ok(text) => match Credentials::parse_boot_file(text) {
                Err(reason) => Err(CredentialsError::Invalid {
                    path: shown.clone(),
                    reason,
                }),
                Ok(credentials) => credentials.save(data_dir).map(|()| credentials.ssid),
            },
        }
    };
    // Stored or not, the passphrase must not stay on a partition any card reader can read.
    wipe(boot_file, length).map_err(io)?;
    stored.map(|ssid| Imported::Stored { ssid })
}

/// Overwrites `length` bytes of `file` with zeros (FAT writes in place, so the old clusters
/// are overwritten, not just unlinked), then deletes it and makes both durable.
fn wipe(file: &Path, length: u64) -> std::io::Result<()> {
    let mut handle = std::fs::OpenOptions::new().write(true).open(file)?;
    let zeros = [0u8; 512];
    let mut left = length;
    while left > 0 {
        let chunk = left.min(zeros.len() as u64) as usize;
        handle.write_all(&zeros[..chunk])?;
        left -= chunk as u64;
    }
    handle.sync_all()?;
    drop(handle);
    std::fs::remove_file(file)?;
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
    std::fs::File::open(dir.unwrap_or(Path::new(".")))?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<(String, String), String> {
        Credentials::parse_boot_file(text).map(|c| (c.ssid, c.psk.expose().clone()))
    }

    /// What a file naming `ssid` and `passphrase` must give.
    fn pair(ssid: &str, passphrase: &str) -> Result<(String, String), String> {
        let key = psk(ssid, &Secret::new(passphrase.to_string()));
        Ok((ssid.into(), key.expose().clone()))
    }

    #[test]
    fn the_psk_is_the_standards_test_vectors() {
        // IEEE 802.11-2020 Annex J.4.2.
        let cases = [
            (
                "IEEE",
                "password",
                "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e",
            ),
            (
                "ThisIsASSID",
                "ThisIsAPassword",
                "0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af",
            ),
        ];
        for (ssid, passphrase, expected) in cases {
            let key = psk(ssid, &Secret::new(passphrase.to_string()));
            assert_eq!(key.expose(), expected, "{ssid}");
        }
    }

    #[test]
    fn the_boot_file_is_keyed_lines_or_two_lines() {
        let cases = [
            (
                "ssid = Home\npassphrase = correct horse\n",
                pair("Home", "correct horse"),
            ),
            (
                "SSID=Home\r\nPassword=correct horse\r\n",
                pair("Home", "correct horse"),
            ),
            (
                "\u{feff}# my router\nssid = \"Home \"\n\npassphrase = \" spaced out \"\n",
                pair("Home ", " spaced out "),
            ),
            (
                "passphrase = a=b=c=d=e\nssid = Home = Castle\n",
                pair("Home = Castle", "a=b=c=d=e"),
            ),
            (
                "Home network\n#not a comment\n",
                pair("Home network", "#not a comment"),
            ),
            (
                "Home network\r\ncorrect horse\r\n\r\n",
                pair("Home network", "correct horse"),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parsed(text), expected, "{text:?}");
        }
    }

    #[test]
    fn a_bad_boot_file_says_why_without_the_passphrase() {
        let cases = [
            ("ssid = Home\n", "no \"passphrase"),
            ("passphrase = correct horse\nname = Home\n", "line 2"),
            (
                "ssid = Home\npassphrase = correct horse\npassphrase = other one\n",
                "line 3",
            ),
            ("Home\n", "found 1 lines"),
            ("Home\ncorrect horse\nextra\n", "found 3 lines"),
            ("", "found 0 lines"),
            ("ssid = Home\npassphrase = short\n", "8 to 63"),
            ("ssid = \npassphrase = correct horse\n", "1 to 32 bytes"),
            ("Home\ngrüne äpfel hier\n", "printable ASCII"),
        ];
        for (text, reason) in cases {
            let error = parsed(text).expect_err(text);
            assert!(error.contains(reason), "{text:?} gave {error}");
            for secret in ["correct horse", "other one", "grüne"] {
                assert!(!error.contains(secret), "{text:?} gave {error}");
            }
        }
    }

    #[test]
    fn import_stores_private_credentials_and_wipes_the_boot_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let boot = dir.path().join(BOOT_FILE_NAME);
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data");
        assert_eq!(
            import_boot_file(&boot, &data).expect("absent"),
            Imported::Absent
        );
        assert_eq!(Credentials::load(&data).expect("load"), None);

        std::fs::write(&boot, "ssid = Home\npassphrase = correct horse\n").expect("write");
        assert_eq!(
            import_boot_file(&boot, &data).expect("import"),
            Imported::Stored {
                ssid: "Home".into()
            }
        );
        assert!(!boot.exists(), "the boot file is deleted");
        let stored = Credentials::load(&data).expect("load").expect("stored");
        let expected = Credentials::new("Home", &Secret::new("correct horse".into())).expect("ok");
        assert_eq!(stored, expected);
        let mode = std::fs::metadata(path(&data))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(path(&data)).expect("read");
        assert!(
            !text.contains("horse"),
            "the passphrase is not kept: {text}"
        );
        assert!(
            text.contains(&format!("psk = \"{}\"", expected.psk.expose())),
            "{text}"
        );
        let shown = format!("{stored:?}");
        assert!(
            !shown.contains(expected.psk.expose()),
            "Debug hides the key: {shown}"
        );
    }

    #[test]
    fn a_bad_boot_file_is_wiped_too_and_nothing_is_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let boot = dir.path().join(BOOT_FILE_NAME);
        std::fs::write(&boot, "Home\nshort\n").expect("write");
        let error = import_boot_file(&boot, dir.path()).expect_err("refused");
        assert!(error.to_string().contains("8 to 63"), "{error}");
        assert!(!boot.exists());
        assert!(!path(dir.path()).exists());

        std::fs::write(&boot, vec![b'x'; BOOT_FILE_MAX as usize + 1]).expect("write");
        let error = import_boot_file(&boot, dir.path()).expect_err("refused");
        assert!(error.to_string().contains("longer than"), "{error}");
        assert!(!boot.exists());
    }

    #[test]
    fn wipe_overwrites_the_bytes_before_deleting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("secret.txt");
        std::fs::write(&file, "correct horse").expect("write");
        // A second name for the same inode shows what the first name's blocks hold after it.
        let witness = dir.path().join("witness");
        std::fs::hard_link(&file, &witness).expect("link");
        wipe(&file, 13).expect("wipe");
        assert!(!file.exists());
        assert_eq!(std::fs::read(&witness).expect("read"), vec![0u8; 13]);
    }

    #[test]
    fn a_damaged_credentials_file_is_refused_without_quoting_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            path(dir.path()),
            "ssid = \"Home\"\npassphrase = correct horse\n",
        )
        .expect("write");
        let error = Credentials::load(dir.path())
            .expect_err("refused")
            .to_string();
        assert!(error.contains("line 2"), "{error}");
        assert!(!error.contains("horse"), "{error}");
    }
}
