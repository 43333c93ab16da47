//! `[spam]` in the config file: which inbound checks run on port 25, and how much each counts.

use serde::{Deserialize, Serialize};

use crate::units::Seconds;

/// Points a DNS blocklist listing adds when its entry gives no weight: one listing alone
/// reaches the default junk threshold.
pub const DEFAULT_BLOCKLIST_WEIGHT: f64 = 5.0;
/// Points a DNS allowlist listing takes off when its entry gives no weight.
pub const DEFAULT_ALLOWLIST_WEIGHT: f64 = -5.0;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpamSettings {
    /// RFC 6647 greylisting: the first attempt from an unknown (network, sender, recipient)
    /// gets 451 4.7.1; the retry after `greylist_delay` passes.
    pub greylisting: bool,
    pub greylist_delay: Seconds,
    /// Senders in these domains are not greylisted when SPF passes for them (large providers
    /// retry from other addresses, so a delay would repeat for each).
    pub greylist_allow_domains: Vec<String>,
    /// DNS blocklists asked about the client's address, with optional weights.
    pub dnsbl: Vec<DnsList>,
    /// DNS allowlists: a listed client is not greylisted and its score goes down.
    pub dnswl: Vec<DnsList>,
    /// A client that sends anything within this long of connecting, before the banner, is
    /// refused (a real mail server waits for the 220). 0 turns the check off.
    pub pregreet_wait: Seconds,
    /// Connections and recipients per client address and time (`[limits]`
    /// `smtp_connections_per_minute`, `smtp_recipients_per_hour`).
    pub rate_limits: bool,
    /// Scores HELO names that no real mail server uses (not a domain, our own name, a
    /// literal that is not the client's address).
    pub helo_checks: bool,
    /// The learning content filter (`letterbox spam train`, Junk in the mail client) adds its
    /// points at the end of data; untrained, it says nothing.
    pub content_filter: bool,
    /// A score at or above this is delivered to the Junk folder; 0 turns it off.
    pub junk_threshold: f64,
    /// A score at or above this is refused at the end of data (550 5.7.1); 0 turns it off.
    pub reject_threshold: f64,
}

/// A DNS list: its zone, and optionally the points a listing counts
/// (`"zen.spamhaus.org"` or `{ zone = "bl.spamcop.net", weight = 3.0 }`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum DnsList {
    Zone(String),
    Weighted { zone: String, weight: f64 },
}

impl DnsList {
    pub fn zone(&self) -> &str {
        match self {
            DnsList::Zone(zone) | DnsList::Weighted { zone, .. } => zone,
        }
    }

    pub fn weight(&self, default: f64) -> f64 {
        match self {
            DnsList::Zone(_) => default,
            DnsList::Weighted { weight, .. } => *weight,
        }
    }
}

impl Default for SpamSettings {
    /// The appliance: every check on. Spamhaus and SpamCop answer only queries that come
    /// from the box's own resolver, not through large public resolvers (8.8.8.8, 1.1.1.1);
    /// a refused query counts as "not listed".
    fn default() -> Self {
        SpamSettings {
            greylisting: true,
            greylist_delay: Seconds(5 * 60),
            greylist_allow_domains: [
                "gmail.com",
                "googlemail.com",
                "outlook.com",
                "hotmail.com",
                "live.com",
                "yahoo.com",
                "icloud.com",
                "me.com",
                "gmx.de",
                "gmx.net",
                "web.de",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            dnsbl: vec![
                DnsList::Zone("zen.spamhaus.org".into()),
                DnsList::Weighted {
                    zone: "bl.spamcop.net".into(),
                    weight: 3.0,
                },
            ],
            dnswl: vec![DnsList::Zone("list.dnswl.org".into())],
            pregreet_wait: Seconds(1),
            rate_limits: true,
            helo_checks: true,
            content_filter: true,
            junk_threshold: 5.0,
            reject_threshold: 15.0,
        }
    }
}

impl SpamSettings {
    /// `letterbox run` with no config (a laptop, loopback only, maybe offline): no
    /// greylisting and no DNS lists, so a first test message arrives at once; the rest on.
    pub fn development() -> Self {
        SpamSettings {
            greylisting: false,
            dnsbl: Vec::new(),
            dnswl: Vec::new(),
            ..SpamSettings::default()
        }
    }

    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (key, lists) in [("dnsbl", &self.dnsbl), ("dnswl", &self.dnswl)] {
            if let Some(bad) = lists.iter().find(|l| !crate::config::is_hostname(l.zone())) {
                return Err((key, format!("{:?} is not a DNS zone", bad.zone())));
            }
        }
        for (key, value) in [
            ("junk_threshold", self.junk_threshold),
            ("reject_threshold", self.reject_threshold),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err((key, format!("spam.{key} must be 0 (off) or more")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    use super::*;

    #[test]
    fn lists_take_optional_weights_and_bad_values_name_their_line() {
        let text = "[spam]\ngreylisting = false\ngreylist_delay = \"2m\"\n\
                    dnsbl = [\"zen.spamhaus.org\", { zone = \"bl.spamcop.net\", weight = 3.5 }]\n\
                    dnswl = []\njunk_threshold = 6\n";
        let config = Config::parse(text, "x.toml").expect("spam table");
        let spam = &config.spam;
        assert!(!spam.greylisting);
        assert_eq!(spam.greylist_delay.0, 120);
        let weights: Vec<f64> = spam
            .dnsbl
            .iter()
            .map(|l| l.weight(DEFAULT_BLOCKLIST_WEIGHT))
            .collect();
        assert_eq!(weights, vec![DEFAULT_BLOCKLIST_WEIGHT, 3.5]);
        assert_eq!(spam.junk_threshold, 6.0);
        assert_eq!(spam.reject_threshold, 15.0, "the default");
        for (text, want) in [
            ("[spam]\n\ndnswl = [\"not a zone\"]\n", "x.toml:3:"),
            ("[spam]\nreject_threshold = -1.0\n", "x.toml:2:"),
        ] {
            let error = Config::parse(text, "x.toml").map(|_| ()).expect_err(text);
            assert!(error.to_string().starts_with(want), "{text:?}: {error}");
        }
    }

    #[test]
    fn development_has_no_greylisting_and_no_dns_lists() {
        let development = Config::development().spam;
        assert!(!development.greylisting);
        assert!(development.dnsbl.is_empty() && development.dnswl.is_empty());
        let appliance = SpamSettings::default();
        assert!(appliance.greylisting && appliance.rate_limits && appliance.helo_checks);
        assert!(!appliance.dnsbl.is_empty());
    }
}
