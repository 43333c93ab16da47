//! The public address: its reverse name (forward-confirmed reverse DNS: the PTR record names a
//! host whose A/AAAA records include the address again) and the DNS blocklists (RFC 5782).
//!
//! The public address is `[health] public_address` when set, else the host name's A and AAAA
//! records: that is what other mail servers look up, and a box behind a home router does not
//! know its public address otherwise.

use std::net::IpAddr;

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::{Name, RData};

use super::{Check, Context, Finding, Verdict};

pub(super) async fn check(context: &Context<'_>) -> Vec<Finding> {
    let config = context.config;
    let resolver = match &context.resolver {
        Ok(resolver) => *resolver,
        Err(error) => {
            let finding = |check| {
                Finding::new(
                    check,
                    Verdict::CouldNotCheck,
                    format!("No DNS resolver: {error}."),
                    "Check [dns] nameservers or /etc/resolv.conf, then check again.",
                )
            };
            return vec![finding(Check::ReverseDns), finding(Check::Blocklists)];
        }
    };
    let addresses = match public_addresses(context, resolver).await {
        Ok(addresses) => addresses,
        Err(finding) => {
            let mut blocklists = finding.clone();
            blocklists.check = Check::Blocklists;
            return vec![finding, blocklists];
        }
    };
    let smarthost = config.outbound.relay.is_some();
    vec![
        reverse_dns(resolver, &config.hostname, &addresses, smarthost).await,
        blocklists(resolver, &config.health.blocklists, &addresses, smarthost).await,
    ]
}

/// The configured address, or the host name's: at most one IPv4 and one IPv6 address.
async fn public_addresses(
    context: &Context<'_>,
    resolver: &TokioResolver,
) -> Result<Vec<IpAddr>, Finding> {
    let config = context.config;
    if let Some(address) = config.health.public_address {
        return Ok(vec![address]);
    }
    let host = &config.hostname;
    let unknown = |found: String| {
        Finding::new(
            Check::ReverseDns,
            Verdict::CouldNotCheck,
            found,
            format!(
                "Publish an A record for {host} with your public address (or set [health] \
                 public_address), then check again."
            ),
        )
    };
    let found = match crate::outbound::dns::addresses(resolver, &format!("{host}.")).await {
        Ok(found) => found,
        Err(error) => return Err(unknown(format!("{error}."))),
    };
    let mut chosen = Vec::new();
    for want_v6 in [false, true] {
        if let Some(address) = found.iter().find(|a| a.is_ipv6() == want_v6) {
            chosen.push(*address);
        }
    }
    if chosen.is_empty() {
        return Err(unknown(format!("{host} has no address in the DNS.")));
    }
    if let Some(private) = chosen.iter().find(|a| is_private(a)) {
        return Err(unknown(format!(
            "{host} points at {private}, an address only the home network can reach."
        )));
    }
    Ok(chosen)
}

/// Loopback, private (RFC 1918, RFC 4193), link-local and shared (RFC 6598) addresses: no
/// other mail server can connect to them.
fn is_private(address: &IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// The names the PTR records of `address` give; empty when there are none.
async fn reverse_names(resolver: &TokioResolver, address: IpAddr) -> Result<Vec<String>, String> {
    match resolver.reverse_lookup(Name::from(address)).await {
        Ok(lookup) => Ok(lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::PTR(ptr) => Some(ptr.0.to_ascii().trim_end_matches('.').to_string()),
                _ => None,
            })
            .collect()),
        Err(error) if error.is_no_records_found() => Ok(Vec::new()),
        Err(error) => Err(error.to_string()),
    }
}

/// How one address fares.
enum Reverse {
    /// The PTR names the host name, which points back.
    Confirmed,
    /// The PTR names another host that points back.
    ConfirmedOther(String),
    /// The PTR's names do not point back.
    NotBack(Vec<String>),
    NoName,
    Failed(String),
}

async fn confirm(resolver: &TokioResolver, hostname: &str, address: IpAddr) -> Reverse {
    let names = match reverse_names(resolver, address).await {
        Ok(names) if names.is_empty() => return Reverse::NoName,
        Ok(names) => names,
        Err(error) => return Reverse::Failed(error),
    };
    let mut other = None;
    for name in &names {
        let forward = crate::outbound::dns::addresses(resolver, &format!("{name}."))
            .await
            .unwrap_or_default();
        if forward.contains(&address) {
            if name.eq_ignore_ascii_case(hostname.trim_end_matches('.')) {
                return Reverse::Confirmed;
            }
            other = Some(name.clone());
        }
    }
    match other {
        Some(name) => Reverse::ConfirmedOther(name),
        None => Reverse::NotBack(names),
    }
}

async fn reverse_dns(
    resolver: &TokioResolver,
    hostname: &str,
    addresses: &[IpAddr],
    smarthost: bool,
) -> Finding {
    let ask = format!(
        "Ask your Internet provider to set the reverse name (PTR) of {} to {hostname}, or send \
         through a smarthost.",
        addresses
            .iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(" and ")
    );
    let mut found = Vec::new();
    let mut verdict = Verdict::Ok;
    let mut raise = |to: Verdict| {
        let rank = |v| match v {
            Verdict::Problem => 3,
            Verdict::CouldNotCheck => 2,
            Verdict::Warning => 1,
            _ => 0,
        };
        if rank(to) > rank(verdict) {
            verdict = to;
        }
    };
    for address in addresses {
        match confirm(resolver, hostname, *address).await {
            Reverse::Confirmed => found.push(format!("{address} is named {hostname} both ways.")),
            Reverse::ConfirmedOther(name) => {
                raise(Verdict::Warning);
                found.push(format!(
                    "{address} is named {name} (which points back), not {hostname}."
                ));
            }
            Reverse::NotBack(names) => {
                raise(Verdict::Problem);
                found.push(format!(
                    "{address} is named {}, which does not point back to it.",
                    names.join(", ")
                ));
            }
            Reverse::NoName => {
                raise(Verdict::Problem);
                found.push(format!("{address} has no reverse name (PTR record)."));
            }
            Reverse::Failed(error) => {
                raise(Verdict::CouldNotCheck);
                found.push(format!("The reverse lookup of {address} failed: {error}."));
            }
        }
    }
    let (verdict, advice) = match verdict {
        Verdict::Ok => (Verdict::Ok, "Nothing to do.".to_string()),
        // Receivers see the smarthost's address, not this one.
        _ if smarthost => (
            Verdict::NotNeeded,
            "Nothing to do while mail leaves through the smarthost.".to_string(),
        ),
        Verdict::CouldNotCheck => (
            Verdict::CouldNotCheck,
            "Check the box's DNS resolver, then check again.".to_string(),
        ),
        other => (other, ask),
    };
    Finding::new(Check::ReverseDns, verdict, found.join(" "), advice)
}

/// What a blocklist said about an address.
#[derive(Debug, PartialEq, Eq)]
enum Listing {
    Clean,
    Listed(String),
    /// The list refused to answer (RFC 5782 §2.1 answers outside 127.0.0.0/8 and Spamhaus's
    /// 127.255.255.x error codes: a public resolver, or too many queries).
    Refused(String),
    Failed(String),
}

/// The query name for `address` in `list` (RFC 5782 §2.1 and §2.4).
fn query_name(address: IpAddr, list: &str) -> String {
    let reversed = Name::from(address).to_ascii();
    let prefix = reversed
        .trim_end_matches('.')
        .trim_end_matches(".in-addr.arpa")
        .trim_end_matches(".ip6.arpa");
    format!("{prefix}.{list}.")
}

/// RFC 5782 §2.1: a listing is an A record in 127.0.0.0/8; 127.0.0.1 (and the 127.255.255.x
/// range Spamhaus uses for errors) is not a listing.
fn interpret(answers: &[IpAddr]) -> Listing {
    let mut listed = Vec::new();
    for answer in answers {
        match answer {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                if a != 127 || v4.octets() == [127, 0, 0, 1] || (b == 255 && c == 255) {
                    return Listing::Refused(answer.to_string());
                }
                listed.push(answer.to_string());
            }
            IpAddr::V6(_) => return Listing::Refused(answer.to_string()),
        }
    }
    if listed.is_empty() {
        Listing::Clean
    } else {
        Listing::Listed(listed.join(", "))
    }
}

async fn look_up(resolver: &TokioResolver, address: IpAddr, list: &str) -> Listing {
    match resolver.ipv4_lookup(query_name(address, list)).await {
        Ok(lookup) => interpret(
            &lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        Err(error) if error.is_no_records_found() => Listing::Clean,
        Err(error) => Listing::Failed(error.to_string()),
    }
}

async fn blocklists(
    resolver: &TokioResolver,
    lists: &[String],
    addresses: &[IpAddr],
    smarthost: bool,
) -> Finding {
    // Most lists cover IPv4 only; the IPv4 address is the one they judge.
    let Some(address) = addresses.iter().find(|a| a.is_ipv4()).copied() else {
        return Finding::new(
            Check::Blocklists,
            Verdict::NotNeeded,
            "The box has no public IPv4 address; the common blocklists list IPv4 only.".into(),
            "Nothing to do.",
        );
    };
    if lists.is_empty() {
        return Finding::new(
            Check::Blocklists,
            Verdict::NotNeeded,
            "No blocklist is configured ([health] blocklists).".into(),
            "Nothing to do.",
        );
    }
    let mut listed = Vec::new();
    let mut clean = Vec::new();
    let mut unknown = Vec::new();
    for list in lists {
        match look_up(resolver, address, list).await {
            Listing::Clean => clean.push(list.clone()),
            Listing::Listed(codes) => listed.push(format!("{list} ({codes})")),
            Listing::Refused(answer) => unknown.push(format!("{list} refused ({answer})")),
            Listing::Failed(error) => unknown.push(format!("{list} failed ({error})")),
        }
    }
    let unknown_note = if unknown.is_empty() {
        String::new()
    } else {
        format!(" Not answered: {}.", unknown.join("; "))
    };
    if !listed.is_empty() {
        let (verdict, advice) = if smarthost {
            (
                Verdict::Warning,
                "Mail leaves through the smarthost, so this matters only if you stop using it.",
            )
        } else {
            (
                Verdict::Problem,
                "Send through a smarthost (Settings, Outgoing mail), or ask each list to remove \
                 the address (their web sites say how).",
            )
        };
        return Finding::new(
            Check::Blocklists,
            verdict,
            format!(
                "{address} is listed on {}.{unknown_note}",
                listed.join(", ")
            ),
            advice,
        );
    }
    if clean.is_empty() {
        return Finding::new(
            Check::Blocklists,
            Verdict::CouldNotCheck,
            format!("No blocklist answered for {address}.{unknown_note}"),
            "Blocklists refuse queries through public resolvers (8.8.8.8, 1.1.1.1): set [dns] \
             nameservers to your provider's resolver or one of your own.",
        );
    }
    Finding::new(
        Check::Blocklists,
        Verdict::Ok,
        format!(
            "{address} is on none of {}.{unknown_note}",
            clean.join(", ")
        ),
        "Nothing to do.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names_reverse_the_address() {
        let v4: IpAddr = "192.0.2.99".parse().expect("address");
        assert_eq!(
            query_name(v4, "zen.spamhaus.org"),
            "99.2.0.192.zen.spamhaus.org."
        );
        let v6: IpAddr = "2001:db8::1".parse().expect("address");
        let name = query_name(v6, "list.example");
        assert!(name.starts_with("1.0.0.0."), "{name}");
        assert!(name.ends_with(".8.b.d.0.1.0.0.2.list.example."), "{name}");
    }

    #[test]
    fn answers_are_listings_only_inside_127_slash_8() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("address");
        assert_eq!(interpret(&[]), Listing::Clean);
        assert_eq!(
            interpret(&[ip("127.0.0.2"), ip("127.0.0.10")]),
            Listing::Listed("127.0.0.2, 127.0.0.10".into())
        );
        // Spamhaus: "query through a public resolver" and "over the free limit".
        assert!(matches!(
            interpret(&[ip("127.255.255.254")]),
            Listing::Refused(_)
        ));
        // A resolver that answers every name with its own search page.
        assert!(matches!(
            interpret(&[ip("198.51.100.7")]),
            Listing::Refused(_)
        ));
    }

    #[test]
    fn private_addresses_are_not_public() {
        for private in [
            "10.1.2.3",
            "192.168.1.20",
            "127.0.0.1",
            "100.64.0.1",
            "fd00::1",
        ] {
            assert!(is_private(&private.parse().expect("address")), "{private}");
        }
        for public in ["192.0.2.10", "2001:db8::1", "8.8.8.8"] {
            assert!(!is_private(&public.parse().expect("address")), "{public}");
        }
    }
}
