//! HELO/EHLO names no real mail server sends (RFC 5321 §4.1.1.1: the client's fully
//! qualified domain name, or an address literal of its own address) add points. Not refused:
//! misconfigured small servers exist, and RFC 5321 §4.1.4 forbids refusing on the name alone.

use std::net::IpAddr;

use super::{Check, Facts, Phase, Score, Step, Verdict};

/// Claims to be this host, or one of its domains: what spam bots say to look local.
pub const HELO_OURS: f64 = 3.0;
/// An address literal that is not the client's address.
pub const HELO_LITERAL_MISMATCH: f64 = 2.0;
/// Not a domain name at all.
pub const HELO_INVALID: f64 = 2.0;
/// A single label ("localhost", "PC-1234"): a desktop, not a mail server.
pub const HELO_NO_DOT: f64 = 1.5;

pub struct HeloStep {
    /// This host's name and its mail domains, lowercase.
    ours: Vec<String>,
}

impl HeloStep {
    pub fn new(hostname: &str, domains: &[String]) -> Self {
        let ours = std::iter::once(hostname)
            .chain(domains.iter().map(String::as_str))
            .map(str::to_ascii_lowercase)
            .collect();
        HeloStep { ours }
    }

    /// The one reason a name is implausible, and its points.
    pub fn judge(&self, helo: &str, client: IpAddr) -> Option<(&'static str, f64)> {
        let name = helo.trim_end_matches('.').to_ascii_lowercase();
        if let Some(literal) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
            let literal = literal.strip_prefix("ipv6:").unwrap_or(literal);
            return match literal.parse::<IpAddr>() {
                Ok(ip) if ip == client => None,
                Ok(_) => Some(("HELO_LITERAL_MISMATCH", HELO_LITERAL_MISMATCH)),
                Err(_) => Some(("HELO_INVALID", HELO_INVALID)),
            };
        }
        if self.ours.contains(&name) {
            return Some(("HELO_OURS", HELO_OURS));
        }
        if !crate::config::is_hostname(&name) {
            return Some(("HELO_INVALID", HELO_INVALID));
        }
        if !name.contains('.') {
            return Some(("HELO_NO_DOT", HELO_NO_DOT));
        }
        None
    }
}

impl Step for HeloStep {
    fn name(&self) -> &'static str {
        "helo"
    }

    fn check(&self, phase: &Phase, facts: &Facts) -> Option<Check> {
        if !matches!(phase, Phase::Helo) {
            return None;
        }
        let (reason, points) = self.judge(facts.helo.as_deref()?, facts.ip)?;
        let verdict = Verdict::Score(Score {
            points,
            reason: reason.to_string(),
            header: None,
        });
        Some(Box::pin(std::future::ready(verdict)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implausible_names_score_once_and_plausible_ones_not_at_all() {
        let step = HeloStep::new("mail.home.test", &["home.test".to_string()]);
        let client: IpAddr = "192.0.2.7".parse().expect("ip");
        let cases: [(&str, Option<&str>); 9] = [
            ("mx.example.org", None),
            ("mx.example.org.", None),
            ("[192.0.2.7]", None),
            ("[192.0.2.8]", Some("HELO_LITERAL_MISMATCH")),
            ("[IPv6:2001:db8::1]", Some("HELO_LITERAL_MISMATCH")),
            ("Home.Test", Some("HELO_OURS")),
            ("mail.home.test", Some("HELO_OURS")),
            ("bad_name!", Some("HELO_INVALID")),
            ("PC-1234", Some("HELO_NO_DOT")),
        ];
        for (helo, want) in cases {
            assert_eq!(step.judge(helo, client).map(|(r, _)| r), want, "{helo}");
        }
    }
}
