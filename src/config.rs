//! The config file (TOML, DESIGN.md "Operator interface"): defaults for everything, unknown keys
//! and bad values refused with `file:line: reason`. With no file at all, development defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::limits::Limits;
use crate::secret::Secret;
use crate::units::Seconds;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Invalid {
        path: String,
        line: usize,
        reason: String,
    },
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Banner / EHLO name and the name the self-signed certificate is made for.
    #[serde(default = "default_hostname")]
    pub hostname: String,
    /// Local domains: mail for these is delivered here.
    #[serde(default = "default_domains")]
    pub domains: Vec<String>,
    /// Where the box is (ISO 3166-1 alpha-2, e.g. "DE"): the Wi-Fi radio's regulatory domain,
    /// which decides the channels it may use. Unset, the radio keeps to the "world" rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub listen: Listen,
    pub tls: Option<TlsFiles>,
    #[serde(default)]
    pub dns: Dns,
    #[serde(default)]
    pub outbound: Outbound,
    #[serde(default)]
    pub auth: AuthPolicy,
    #[serde(default)]
    pub limits: Limits,
    /// Which board's panel and button to drive: a name from `board/`, "auto" (read
    /// /proc/device-tree/model; simulated when nothing matches) or "simulated".
    #[serde(default = "default_board")]
    pub board: String,
    /// Overrides of the board's panel facts, and the burn-in care.
    #[serde(default)]
    pub panel: crate::board::PanelSettings,
    /// Overrides of the board's button facts.
    #[serde(default)]
    pub button: crate::board::ButtonSettings,
    /// Which network backend the setup wizard uses (Wi-Fi scan and join, the hotspot).
    #[serde(default)]
    pub network: crate::network::NetworkSettings,
    /// Inbound checks of port 25: greylisting, DNS lists, rate limits, spam thresholds.
    #[serde(default)]
    pub spam: crate::smtp::filter::SpamSettings,
    /// The box checking itself: how often, and against what.
    #[serde(default)]
    pub health: crate::health::HealthSettings,
    /// The nightly backup to a USB drive.
    #[serde(default)]
    pub backup: crate::backup::BackupSettings,
}

fn default_board() -> String {
    "auto".into()
}

/// Each service listens on a list of addresses; an empty list turns it off.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    pub smtp: Vec<SocketAddr>,
    pub submission: Vec<SocketAddr>,
    pub submissions: Vec<SocketAddr>,
    pub pop3: Vec<SocketAddr>,
    pub pop3s: Vec<SocketAddr>,
    pub imap: Vec<SocketAddr>,
    pub imaps: Vec<SocketAddr>,
    pub web: Vec<SocketAddr>,
    /// The same pages over HTTPS, with the mail services' certificate.
    pub web_tls: Vec<SocketAddr>,
    /// UDP: the captive DNS responder, only in setup mode, answering every name with the
    /// setup address (the hotspot's, or this address when it is not 0.0.0.0). Off by
    /// default: the hotspot (the Wi-Fi issue) names its own address here.
    pub captive_dns: Vec<SocketAddr>,
}

fn any(port: u16) -> Vec<SocketAddr> {
    vec![SocketAddr::from(([0, 0, 0, 0], port))]
}

fn loopback(port: u16) -> Vec<SocketAddr> {
    vec![SocketAddr::from(([127, 0, 0, 1], port))]
}

impl Default for Listen {
    /// The appliance's standard ports on every interface.
    fn default() -> Self {
        Listen {
            smtp: any(25),
            submission: any(587),
            submissions: any(465),
            pop3: any(110),
            pop3s: any(995),
            imap: any(143),
            imaps: any(993),
            web: any(80),
            web_tls: any(443),
            captive_dns: Vec::new(),
        }
    }
}

impl Listen {
    /// The development ports of DESIGN.md, on 127.0.0.1.
    pub fn development() -> Self {
        Listen {
            smtp: loopback(2525),
            submission: loopback(2587),
            submissions: loopback(2465),
            pop3: loopback(2110),
            pop3s: loopback(2995),
            imap: loopback(2143),
            imaps: loopback(2993),
            web: loopback(8080),
            web_tls: loopback(8443),
            captive_dns: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    /// Resolvers to use instead of the system's.
    #[serde(default)]
    pub nameservers: Vec<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Outbound {
    /// Port used for MX delivery (tests point it elsewhere).
    pub mx_port: u16,
    pub relay: Option<Relay>,
    /// Extra CA certificates (PEM) trusted for whichever relay is in effect, the config file's
    /// or the settings file's (which has no `ca_file`: the setup page sets the relay).
    pub relay_ca_file: Option<PathBuf>,
    /// How long a message may wait in the queue before it is returned to the sender.
    pub max_queue_time: Seconds,
    /// The sender is told once that delivery is delayed after this long.
    pub delay_warning: Seconds,
    /// First wait after a temporary failure; it doubles with each attempt (with jitter) up
    /// to `retry_max`.
    pub retry_initial: Seconds,
    pub retry_max: Seconds,
    /// DKIM-sign outgoing mail with the key made at first start (`letterbox dns-records`).
    pub dkim: bool,
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound {
            mx_port: 25,
            relay: None,
            relay_ca_file: None,
            max_queue_time: Seconds(5 * 86400),
            delay_warning: Seconds(4 * 3600),
            retry_initial: Seconds(5 * 60),
            retry_max: Seconds(4 * 3600),
            dkim: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Relay {
    pub host: String,
    #[serde(default = "default_relay_port")]
    pub port: u16,
    #[serde(default)]
    pub tls: RelayTls,
    pub username: Option<String>,
    /// Shown as "(set)" wherever the config is printed.
    #[serde(serialize_with = "crate::secret::shown_as_set")]
    pub password: Option<Secret<String>>,
    /// Extra CA certificates (PEM) to trust for the relay, besides the Mozilla roots.
    pub ca_file: Option<PathBuf>,
}

fn default_relay_port() -> u16 {
    587
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayTls {
    #[default]
    Starttls,
    Tls,
    None,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthPolicy {
    /// Allow passwords over unencrypted POP3/IMAP connections. Off by default; only for a
    /// trusted LAN with clients that cannot do TLS.
    pub allow_plaintext_login: bool,
    /// Check SPF, DKIM and DMARC of mail received on port 25 and record the verdicts in an
    /// Authentication-Results header.
    pub check_inbound: bool,
    /// Refuse (550 5.7.1) mail that fails DMARC for a domain whose policy is p=reject.
    pub reject_dmarc_failures: bool,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        AuthPolicy {
            allow_plaintext_login: false,
            check_inbound: true,
            reject_dmarc_failures: false,
        }
    }
}

fn default_hostname() -> String {
    "localhost".into()
}

fn default_domains() -> Vec<String> {
    vec!["home.test".into()]
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/letterbox")
}

impl Config {
    /// `letterbox run` with no config file: data in ./letterbox-data, the development ports on
    /// 127.0.0.1, domain home.test, hostname localhost.
    pub fn development() -> Self {
        Config {
            hostname: default_hostname(),
            domains: default_domains(),
            country: None,
            data_dir: PathBuf::from("letterbox-data"),
            listen: Listen::development(),
            tls: None,
            dns: Dns::default(),
            outbound: Outbound::default(),
            auth: AuthPolicy::default(),
            limits: Limits::default(),
            board: "simulated".into(),
            panel: crate::board::PanelSettings::default(),
            button: crate::board::ButtonSettings::default(),
            network: crate::network::NetworkSettings::default(),
            spam: crate::smtp::filter::SpamSettings::development(),
            health: crate::health::HealthSettings::default(),
            backup: crate::backup::BackupSettings::default(),
        }
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, path: &str) -> Result<Self, ConfigError> {
        let invalid = |line: usize, reason: String| ConfigError::Invalid {
            path: path.to_string(),
            line,
            reason,
        };
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|span| line_at(text, span.start)).unwrap_or(1);
            invalid(line, e.message().trim().replace('\n', " "))
        })?;
        config
            .validate()
            .map_err(|(key, reason)| invalid(line_of_key(text, key), reason))?;
        for domain in &mut config.domains {
            *domain = domain.to_ascii_lowercase();
        }
        if let Some(country) = &mut config.country {
            country.make_ascii_uppercase();
        }
        Ok(config)
    }

    /// Checks what the types cannot; returns the offending key and a reason.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        if !is_hostname(&self.hostname) {
            return Err((
                "hostname",
                format!("{:?} is not a valid host name", self.hostname),
            ));
        }
        if self.domains.is_empty() {
            return Err(("domains", "at least one local domain is needed".into()));
        }
        if let Some(bad) = self.domains.iter().find(|d| !is_hostname(d)) {
            return Err(("domains", format!("{bad:?} is not a valid domain")));
        }
        if let Some(country) = &self.country {
            crate::country::check(country).map_err(|reason| ("country", reason))?;
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(("data_dir", "must not be empty".into()));
        }
        if !crate::board::is_known(&self.board) {
            let known = crate::board::names().join(", ");
            let reason = format!("unknown board {:?} (auto, simulated, {known})", self.board);
            return Err(("board", reason));
        }
        self.panel.validate()?;
        if let Some(relay) = &self.outbound.relay
            && relay.username.is_some() != relay.password.is_some()
        {
            return Err((
                "username",
                "outbound.relay needs both username and password, or neither".into(),
            ));
        }
        self.network.validate()?;
        self.spam.validate()?;
        self.health.validate()?;
        self.backup.validate()?;
        self.limits.validate().map_err(|reason| {
            let key = reason
                .strip_prefix("limits.")
                .and_then(|rest| rest.split_whitespace().next())
                .map(limit_key)
                .unwrap_or("limits");
            (key, reason)
        })
    }

    pub fn is_local_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }
}

/// Maps a limit's name back to a `'static` key for line lookup.
fn limit_key(name: &str) -> &'static str {
    const KEYS: [&str; 6] = [
        "max_recipients",
        "max_connections",
        "delivery_backlog",
        "group_commit_max",
        "password_hash_concurrency",
        "login_throttle_entries",
    ];
    const MORE: [&str; 5] = [
        "max_connections_per_address",
        "max_message_size",
        "max_append_size",
        "argon2_memory",
        "auth_checks",
    ];
    KEYS.iter()
        .chain(MORE.iter())
        .find(|k| **k == name)
        .copied()
        .unwrap_or("limits")
}

pub(crate) fn is_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map(|head| head.matches('\n').count() + 1)
        .unwrap_or(1)
}

/// The line where `key = ...` is set, for errors found after parsing; 1 if the key is absent
/// (the default was wrong, which only a bad combination of other keys can cause).
pub(crate) fn line_of_key(text: &str, key: &str) -> usize {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            line.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|index| index + 1)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> String {
        match Config::parse(text, "letterbox.toml") {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_are_the_appliance_ports() {
        let config = Config::parse("", "x.toml").expect("empty config");
        assert_eq!(config.listen.smtp, any(25));
        assert_eq!(config.listen.imaps, any(993));
        assert_eq!(config.limits.max_message_size.0, 25 * 1024 * 1024);
        assert_eq!(config.outbound.mx_port, 25);
    }

    #[test]
    fn full_example_from_design_parses() {
        let text = r#"
hostname = "mail.home.example"
domains  = ["Home.Example"]
data_dir = "/var/lib/letterbox"

[listen]
smtp        = ["0.0.0.0:25"]
submission  = []
pop3        = ["127.0.0.1:110", "[::1]:110"]

[tls]
cert = "/etc/letterbox/fullchain.pem"
key  = "/etc/letterbox/key.pem"

[dns]
nameservers = ["127.0.0.1:5353"]

[outbound]
mx_port = 2525
[outbound.relay]
host = "smtp.example.net"
port = 465
tls = "tls"
username = "me"
password = "secret"

[limits]
max_message_size = "10MiB"
max_append_size = "100MiB"
smtp_idle_timeout = "2m"
"#;
        let config = Config::parse(text, "x.toml").expect("design example");
        assert_eq!(config.domains, vec!["home.example"]);
        assert!(config.listen.submission.is_empty());
        assert_eq!(config.listen.pop3.len(), 2);
        assert_eq!(config.limits.max_message_size.0, 10 * 1024 * 1024);
        assert_eq!(config.limits.max_append_size.0, 100 * 1024 * 1024);
        assert_eq!(config.limits.smtp_idle_timeout.0, 120);
        assert_eq!(
            config.outbound.relay.as_ref().map(|r| r.tls),
            Some(RelayTls::Tls)
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            (
                "hostname = \"a\"\nbogus = 1\n",
                "letterbox.toml:2:",
                "bogus",
            ),
            (
                "[listen]\nsmtp = [\"nonsense\"]\n",
                "letterbox.toml:2:",
                "socket address",
            ),
            (
                "\n\n[limits]\nmax_message_size = \"12 parsecs\"\n",
                "letterbox.toml:4:",
                "unknown size unit",
            ),
            (
                "[limits]\n\nmax_recipients = 5\n",
                "letterbox.toml:3:",
                "at least 100",
            ),
            (
                "hostname = \"bad host\"\n",
                "letterbox.toml:1:",
                "not a valid host name",
            ),
            ("domains = []\n", "letterbox.toml:1:", "at least one"),
            ("[outbound]\nmx_port = 99999\n", "letterbox.toml:2:", ""),
            ("hostname = \n", "letterbox.toml:1:", ""),
        ];
        for (text, location, reason) in cases {
            let error = error_of(text);
            assert!(error.starts_with(location), "{text:?} gave {error}");
            assert!(error.contains(reason), "{text:?} gave {error}");
            assert!(!error.contains('\n'), "one line: {error}");
        }
    }
}
