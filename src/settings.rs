//! Settings the setup page (and later the admin page) changes: one TOML file,
//! `<data_dir>/settings.toml`, layered over the config file, which stays read-only to the
//! daemon (on the image `/etc` is read-only; the data directory is not).
//!
//! The file holds only the keys the wizard sets: `hostname`, `domains`, `country`,
//! `[outbound.relay]` and `[tls]`. A key set here wins over the config file, which wins
//! over the defaults; `[outbound.relay]` is replaced as a whole (a relay's host with another
//! relay's password would be nobody's relay). Unknown keys and bad values are refused with
//! file and line, like the config file's. It is written atomically: a temporary file in the same directory,
//! fsync, rename over the old one, fsync of the directory — after a power cut the file is
//! the old one or the new one, never a mix.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError, Relay, RelayTls, TlsFiles, line_at, line_of_key};
use crate::secret::Secret;

pub const FILE_NAME: &str = "settings.toml";

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domains: Option<Vec<String>>,
    /// The Wi-Fi regulatory domain (ISO 3166-1 alpha-2), see [`crate::country`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound: Option<OutboundSettings>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<RelaySettings>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RelaySettings {
    pub host: String,
    #[serde(default = "default_relay_port")]
    pub port: u16,
    #[serde(default)]
    pub tls: RelayTls,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Written to the file (mode 0600) and nowhere else.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "written_to_the_file"
    )]
    pub password: Option<Secret<String>>,
}

fn default_relay_port() -> u16 {
    587
}

/// The one place a relay password is serialized: into the settings file itself.
fn written_to_the_file<S: serde::Serializer>(
    password: &Option<Secret<String>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match password {
        Some(password) => serializer.serialize_str(password.expose()),
        None => serializer.serialize_none(),
    }
}

/// Where each value of the effective configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    ConfigFile(PathBuf),
    SettingsFile(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::ConfigFile(path) => write!(f, "config file {}", path.display()),
            Source::SettingsFile(path) => write!(f, "settings file {}", path.display()),
        }
    }
}

/// The configuration in effect and the files it came from.
#[derive(Debug, Clone)]
pub struct Layered {
    pub config: Config,
    config_file: Option<(PathBuf, toml::Table)>,
    settings_file: Option<(PathBuf, toml::Table)>,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

impl Settings {
    /// Parses a settings file's text; errors name `path` and the line.
    pub fn parse(text: &str, path: &str) -> Result<Settings, ConfigError> {
        let invalid = |line: usize, reason: String| ConfigError::Invalid {
            path: path.to_string(),
            line,
            reason,
        };
        let settings: Settings = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|span| line_at(text, span.start)).unwrap_or(1);
            invalid(line, e.message().trim().replace('\n', " "))
        })?;
        settings
            .validate()
            .map_err(|(key, reason)| invalid(line_of_key(text, key), reason))?;
        Ok(settings)
    }

    /// `<data_dir>/settings.toml`, or `None` when there is none yet.
    pub fn load(data_dir: &Path) -> Result<Option<(Settings, String)>, ConfigError> {
        let path = path(data_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        let settings = Settings::parse(&text, &path.display().to_string())?;
        Ok(Some((settings, text)))
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(hostname) = &self.hostname
            && !crate::config::is_hostname(hostname)
        {
            return Err(("hostname", format!("{hostname:?} is not a valid host name")));
        }
        if let Some(domains) = &self.domains {
            if domains.is_empty() {
                return Err(("domains", "at least one local domain is needed".into()));
            }
            if let Some(bad) = domains.iter().find(|d| !crate::config::is_hostname(d)) {
                return Err(("domains", format!("{bad:?} is not a valid domain")));
            }
        }
        if let Some(country) = &self.country {
            crate::country::check(country).map_err(|reason| ("country", reason))?;
        }
        if let Some(relay) = self.outbound.as_ref().and_then(|o| o.relay.as_ref()) {
            if !crate::config::is_hostname(&relay.host) {
                return Err(("host", format!("{:?} is not a valid host name", relay.host)));
            }
            if relay.username.is_some() != relay.password.is_some() {
                return Err((
                    "username",
                    "outbound.relay needs both username and password, or neither".into(),
                ));
            }
        }
        Ok(())
    }

    /// Lays these settings over `config`.
    pub fn apply(&self, config: &mut Config) {
        if let Some(hostname) = &self.hostname {
            config.hostname = hostname.clone();
        }
        if let Some(domains) = &self.domains {
            config.domains = domains.iter().map(|d| d.to_ascii_lowercase()).collect();
        }
        if let Some(country) = &self.country {
            config.country = Some(country.to_ascii_uppercase());
        }
        if let Some(relay) = self.outbound.as_ref().and_then(|o| o.relay.as_ref()) {
            config.outbound.relay = Some(Relay {
                host: relay.host.clone(),
                port: relay.port,
                tls: relay.tls,
                username: relay.username.clone(),
                password: relay.password.clone(),
                ca_file: None,
            });
        }
        if let Some(tls) = &self.tls {
            config.tls = Some(tls.clone());
        }
    }

    /// Writes `<data_dir>/settings.toml` atomically (see the module comment), readable by
    /// the owner only: it may hold the relay password.
    pub fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        let text = toml::to_string(self).map_err(std::io::Error::other)?;
        write_atomically(&path(data_dir), text.as_bytes())
    }
}

/// Replaces `path` with `bytes` so that a crash leaves the old file or the new one.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    // One writer per process at a time is the caller's business; the pid keeps two
    // processes from sharing a temporary file.
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        // The rename itself is durable only once the directory is.
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// Applies the settings file to the running daemon: loads the config file and the settings
/// file again and hands the result to the services (`app::run` restarts them in-process),
/// then waits for them to say whether they took it. SIGHUP, the setup page, the admin page
/// and the certificate's renewal all use it.
#[derive(Clone)]
pub struct Reloader {
    config_file: Option<PathBuf>,
    sender: tokio::sync::mpsc::Sender<Reload>,
}

/// A config for the running services, and where they answer: `Ok` once they listen on it,
/// or why they cannot use it (they go on with the old one then).
pub struct Reload {
    pub config: Config,
    pub applied: tokio::sync::oneshot::Sender<Result<(), String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the services cannot use the new settings ({0}); they go on as they were")]
    Refused(String),
    #[error("the daemon is shutting down")]
    Stopped,
}

impl Reloader {
    /// The reloader and the receiving end for `app::run`.
    pub fn new(config_file: Option<PathBuf>) -> (Reloader, tokio::sync::mpsc::Receiver<Reload>) {
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        (
            Reloader {
                config_file,
                sender,
            },
            receiver,
        )
    }

    /// Reads both files, hands the result to the services and waits until they listen on
    /// it. A file with an error, or a config the services cannot use (a certificate that does
    /// not load, say), leaves the running config as it is and is returned: whoever changed
    /// the settings is told, not only the log.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        let layered = Layered::load(self.config_file.as_deref())?;
        let (applied, answer) = tokio::sync::oneshot::channel();
        self.sender
            .send(Reload {
                config: layered.config,
                applied,
            })
            .await
            .map_err(|_| ReloadError::Stopped)?;
        answer
            .await
            .map_err(|_| ReloadError::Stopped)?
            .map_err(ReloadError::Refused)
    }
}

impl Layered {
    /// The config file (or the development defaults without one) with
    /// `<data_dir>/settings.toml` laid over it.
    pub fn load(config_file: Option<&Path>) -> Result<Layered, ConfigError> {
        let (mut config, config_file) = match config_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                let config = Config::parse(&text, &path.display().to_string())?;
                // Parsed once already, so this cannot fail; `None` only hides the sources.
                let table = toml::from_str(&text).ok();
                (config, table.map(|t| (path.to_path_buf(), t)))
            }
            None => (Config::development(), None),
        };
        let settings_file = match Settings::load(&config.data_dir)? {
            Some((settings, text)) => {
                settings.apply(&mut config);
                let path = path(&config.data_dir);
                // Keys each valid alone may still clash with the config file's.
                config
                    .validate()
                    .map_err(|(key, reason)| ConfigError::Invalid {
                        path: path.display().to_string(),
                        line: line_of_key(&text, key),
                        reason,
                    })?;
                toml::from_str(&text).ok().map(|t| (path, t))
            }
            None => None,
        };
        Ok(Layered {
            config,
            config_file,
            settings_file,
        })
    }

    /// Where the value at `key` (dotted: `outbound.relay.host`) came from.
    pub fn source(&self, key: &str) -> Source {
        let has = |table: &toml::Table| {
            let mut parts = key.split('.');
            let mut value = parts.next().and_then(|first| table.get(first));
            for part in parts {
                value = value.and_then(|v| v.get(part));
            }
            value.is_some()
        };
        if let Some((path, table)) = &self.settings_file {
            // The settings file replaces the relay as a whole, so all its keys come from there.
            let relay = key.starts_with("outbound.relay.") && has_relay(table);
            if relay || has(table) {
                return Source::SettingsFile(path.clone());
            }
        }
        match &self.config_file {
            Some((path, table)) if has(table) => Source::ConfigFile(path.clone()),
            _ => Source::Default,
        }
    }

    /// `letterbox config show`: every value in effect, one `key = value  # source` a line,
    /// secrets as "(set)".
    pub fn show(&self) -> String {
        let mut lines = Vec::new();
        match toml::Value::try_from(&self.config) {
            Ok(toml::Value::Table(table)) => flatten("", &table, &mut lines),
            Ok(_) | Err(_) => return "the configuration cannot be shown\n".into(),
        }
        let width = lines
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .max()
            .unwrap_or(0)
            + 3;
        let mut out = String::new();
        for (key, value) in lines {
            let pair = format!("{key} = {value}");
            out.push_str(&format!("{pair:<width$}  # {}\n", self.source(&key)));
        }
        out
    }
}

fn has_relay(table: &toml::Table) -> bool {
    table.get("outbound").and_then(|o| o.get("relay")).is_some()
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
    for (key, value) in table {
        let key = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten(&key, inner, out),
            value => out.push((key, value.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> String {
        match Settings::parse(text, "settings.toml") {
            Ok(settings) => panic!("accepted: {settings:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_the_line() {
        let cases = [
            (
                "hostname = \"mail.example\"\n\nlisten = 1\n",
                "settings.toml:3:",
                "listen",
            ),
            (
                "[outbound.relay]\nhost = \"smtp.example\"\nca_file = \"/x\"\n",
                "settings.toml:3:",
                "ca_file",
            ),
            (
                "\nhostname = \"bad host\"\n",
                "settings.toml:2:",
                "host name",
            ),
            ("domains = []\n", "settings.toml:1:", "at least one"),
            (
                "hostname = \"mail.example\"\ncountry = \"UK\"\n",
                "settings.toml:2:",
                "ISO 3166-1 alpha-2",
            ),
            (
                "[outbound.relay]\nhost = \"smtp.example\"\nusername = \"me\"\n",
                "settings.toml:3:",
                "both username and password",
            ),
        ];
        for (text, location, reason) in cases {
            let error = error_of(text);
            assert!(error.starts_with(location), "{text:?} gave {error}");
            assert!(error.contains(reason), "{text:?} gave {error}");
        }
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn settings_win_over_the_config_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        let config = write(
            dir.path(),
            "letterbox.toml",
            &format!(
                "hostname = \"file.example\"\ndomains = [\"file.example\"]\ndata_dir = \"{}\"\n\
                 [outbound.relay]\nhost = \"file-relay.example\"\nca_file = \"/etc/ca.pem\"\n",
                data.display()
            ),
        );
        write(
            &data,
            FILE_NAME,
            "domains = [\"Settings.Example\"]\ncountry = \"de\"\n[outbound.relay]\nhost = \"relay.example\"\n\
             port = 465\ntls = \"tls\"\nusername = \"me\"\npassword = \"hunter22\"\n",
        );
        let layered = Layered::load(Some(&config)).expect("load");
        assert_eq!(layered.config.hostname, "file.example");
        assert_eq!(layered.config.domains, vec!["settings.example"]);
        assert_eq!(layered.config.country.as_deref(), Some("DE"));
        let relay = layered.config.outbound.relay.as_ref().expect("relay");
        assert_eq!((relay.host.as_str(), relay.port), ("relay.example", 465));
        assert_eq!(relay.ca_file, None, "the relay is replaced as a whole");
        assert_eq!(layered.config.limits.max_recipients, 100);

        let settings = Source::SettingsFile(path(&data));
        assert_eq!(layered.source("domains"), settings);
        assert_eq!(layered.source("country"), settings);
        assert_eq!(layered.source("outbound.relay.port"), settings);
        assert_eq!(layered.source("hostname"), Source::ConfigFile(config));
        assert_eq!(layered.source("limits.max_recipients"), Source::Default);

        let shown = layered.show();
        assert!(!shown.contains("hunter22"), "{shown}");
        assert!(
            shown
                .lines()
                .any(|l| l.starts_with("outbound.relay.password = \"(set)\"")),
            "{shown}"
        );
        assert!(
            shown
                .lines()
                .any(|l| l.starts_with("hostname = \"file.example\"")
                    && l.ends_with("letterbox.toml")),
            "{shown}"
        );
    }

    #[test]
    fn save_then_load_gives_the_same_settings_and_the_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = Settings {
            hostname: Some("mail.example".into()),
            domains: Some(vec!["example".into()]),
            country: Some("NZ".into()),
            outbound: Some(OutboundSettings {
                relay: Some(RelaySettings {
                    host: "smtp.example".into(),
                    port: 587,
                    tls: RelayTls::Starttls,
                    username: Some("me".into()),
                    password: Some(Secret::new("hunter22".into())),
                }),
            }),
            tls: None,
        };
        settings.save(dir.path()).expect("save");
        let (loaded, _) = Settings::load(dir.path()).expect("load").expect("present");
        assert_eq!(loaded, settings);
        let mode = std::fs::metadata(path(dir.path()))
            .expect("meta")
            .permissions();
        assert_eq!(mode.mode() & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![FILE_NAME], "no temporary file is left behind");
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = Settings {
            hostname: Some("old.example".into()),
            ..Settings::default()
        };
        old.save(dir.path()).expect("save");
        // The temporary file cannot be made (a directory is in its place): the write fails
        // before the rename, and the old settings are untouched.
        let temporary = dir
            .path()
            .join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
        std::fs::create_dir(&temporary).expect("block");
        let new = Settings {
            hostname: Some("new.example".into()),
            ..Settings::default()
        };
        assert!(new.save(dir.path()).is_err());
        let (loaded, _) = Settings::load(dir.path()).expect("load").expect("present");
        assert_eq!(loaded, old);
    }

    #[test]
    fn a_reader_sees_the_old_file_or_the_new_one_never_a_mix() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Long values, so a torn write would show as a value of neither.
        let versions = ["a", "b"].map(|c| Settings {
            domains: Some(vec![format!("{}.example", c.repeat(60)); 50]),
            ..Settings::default()
        });
        versions[0].save(dir.path()).expect("save");
        let data = dir.path().to_path_buf();
        let expected = versions.clone();
        let reader = std::thread::spawn(move || {
            for _ in 0..200 {
                let (loaded, _) = Settings::load(&data).expect("load").expect("present");
                assert!(expected.contains(&loaded), "a mixed file: {loaded:?}");
            }
        });
        for round in 0..40 {
            versions[round % 2].save(dir.path()).expect("save");
        }
        reader.join().expect("reader");
    }
}
