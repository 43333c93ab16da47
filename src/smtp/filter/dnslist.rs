//! DNS blocklists and allowlists of the client's address (RFC 5782): the address, reversed,
//! under the list's zone; an A record in 127.0.0.0/8 means "listed". Asked at connect, all
//! lists at once. A list that fails or refuses to answer counts as "not listed".

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::{RData, RecordType};

use super::settings::{DEFAULT_ALLOWLIST_WEIGHT, DEFAULT_BLOCKLIST_WEIGHT};
use super::{Check, DnsList, Facts, Phase, Score, Step, Verdict};

pub struct DnsListStep {
    resolver: Arc<TokioResolver>,
    /// (zone, points), blocklists and allowlists.
    blocklists: Vec<(String, f64)>,
    allowlists: Vec<(String, f64)>,
}

impl DnsListStep {
    pub fn new(resolver: Arc<TokioResolver>, dnsbl: &[DnsList], dnswl: &[DnsList]) -> Self {
        let weighed = |lists: &[DnsList], default: f64| {
            lists
                .iter()
                .map(|list| (list.zone().to_ascii_lowercase(), list.weight(default)))
                .collect()
        };
        DnsListStep {
            resolver,
            blocklists: weighed(dnsbl, DEFAULT_BLOCKLIST_WEIGHT),
            allowlists: weighed(dnswl, DEFAULT_ALLOWLIST_WEIGHT),
        }
    }
}

impl Step for DnsListStep {
    fn name(&self) -> &'static str {
        "dnslist"
    }

    fn check(&self, phase: &Phase, facts: &Facts) -> Option<Check> {
        if !matches!(phase, Phase::Connect) {
            return None;
        }
        let reversed = reversed(facts.ip);
        let mut lookups = tokio::task::JoinSet::new();
        let lists = self
            .blocklists
            .iter()
            .map(|list| (list, false))
            .chain(self.allowlists.iter().map(|list| (list, true)));
        for ((zone, points), allow) in lists {
            let resolver = self.resolver.clone();
            let name = format!("{reversed}.{zone}.");
            let (zone, points) = (zone.clone(), *points);
            lookups.spawn(async move {
                let listed = is_listed(&resolver, &name).await;
                (zone, points, allow, listed)
            });
        }
        Some(Box::pin(async move {
            let mut score = Score {
                points: 0.0,
                reason: String::new(),
                header: None,
            };
            let mut trusted = false;
            let mut reasons = Vec::new();
            while let Some(Ok((zone, points, allow, listed))) = lookups.join_next().await {
                if !listed {
                    continue;
                }
                trusted |= allow;
                score.points += points;
                let kind = if allow { "DNSWL" } else { "DNSBL" };
                reasons.push(format!("{kind}_{zone}"));
            }
            reasons.sort();
            score.reason = reasons.join(",");
            match (trusted, reasons.is_empty()) {
                (true, _) => Verdict::Trust(score),
                (false, true) => Verdict::Accept,
                (false, false) => Verdict::Score(score),
            }
        }))
    }
}

/// The address as a list wants it: "4.3.2.1" for 1.2.3.4, 32 nibbles for IPv6 (RFC 5782 §2.4).
pub fn reversed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}")
        }
        IpAddr::V6(v6) => v6
            .octets()
            .iter()
            .rev()
            .flat_map(|octet| [octet & 0x0f, octet >> 4])
            .map(|nibble| format!("{nibble:x}"))
            .collect::<Vec<_>>()
            .join("."),
    }
}

/// Listed: an answer in 127.0.0.0/8 (RFC 5782 §2.3). Spamhaus answers 127.255.255.x and
/// dnswl.org 127.0.0.255 to say "query refused" (a public resolver, or over the free
/// limit): not a listing.
fn is_listing(address: Ipv4Addr) -> bool {
    let [first, second, third, last] = address.octets();
    first == 127 && !(second == 255 && third == 255) && last != 255
}

async fn is_listed(resolver: &TokioResolver, name: &str) -> bool {
    match resolver.lookup(name, RecordType::A).await {
        Ok(lookup) => lookup.answers().iter().any(|record| match &record.data {
            RData::A(a) => is_listing(a.0),
            _ => false,
        }),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_reversed_as_rfc_5782_says() {
        assert_eq!(reversed("192.0.2.99".parse().expect("ip")), "99.2.0.192");
        let v6 = reversed("2001:db8:1:2:3:4:567:89ab".parse().expect("ip"));
        assert_eq!(
            v6,
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2"
        );
    }

    #[test]
    fn refusals_are_not_listings() {
        let cases = [
            ("127.0.0.2", true),
            ("127.0.0.10", true),
            ("127.0.15.0", true),
            ("127.255.255.254", false),
            ("127.0.0.255", false),
            ("10.0.0.2", false),
        ];
        for (address, want) in cases {
            assert_eq!(is_listing(address.parse().expect("ip")), want, "{address}");
        }
    }
}
