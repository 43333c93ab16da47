//! Greylisting (RFC 6647) at RCPT: the first attempt of an unknown (client network, sender,
//! recipient) gets 451 4.7.1; a real mail server retries, and after `greylist_delay` the
//! retry passes and its network is let through for `GREYLIST_NETWORK_TTL`. A client vouched
//! for by a DNS allowlist, and a sender in `greylist_allow_domains` for which SPF passes,
//! are not delayed. The memory is the store's (`store::greylist`).

use std::net::IpAddr;
use std::sync::Arc;

use super::{Check, Facts, Phase, Step, Verdict};
use crate::limits::{GREYLIST_NETWORK_TTL, GREYLIST_RETRY_WINDOW};
use crate::smtp::proto::Reply;
use crate::smtp::verify::InboundAuth;
use crate::store::{GreylistPolicy, Greylisted, Store, now_unix};

pub struct GreylistStep {
    store: Store,
    policy: GreylistPolicy,
    /// Lowercase domains spared when SPF passes for them.
    allow_domains: Arc<Vec<String>>,
    /// Checks SPF for the allowlisted domains; without it none is spared.
    spf: Option<Arc<InboundAuth>>,
}

/// The network greylisting remembers: an IPv4 /24 or an IPv6 /64 (RFC 6647 §4.1: a sending
/// server's retries may come from a neighbouring address of its pool).
pub fn network_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}", s[0], s[1], s[2], s[3])
        }
    }
}

impl GreylistStep {
    pub fn new(
        store: Store,
        delay_seconds: u64,
        max_entries: u64,
        allow_domains: &[String],
        spf: Option<Arc<InboundAuth>>,
    ) -> Self {
        GreylistStep {
            store,
            policy: GreylistPolicy {
                delay: i64::try_from(delay_seconds).unwrap_or(i64::MAX),
                retry_window: GREYLIST_RETRY_WINDOW.as_secs() as i64,
                network_ttl: GREYLIST_NETWORK_TTL.as_secs() as i64,
                max_entries,
            },
            allow_domains: Arc::new(
                allow_domains
                    .iter()
                    .map(|d| d.to_ascii_lowercase())
                    .collect(),
            ),
            spf,
        }
    }
}

impl Step for GreylistStep {
    fn name(&self) -> &'static str {
        "greylist"
    }

    fn check(&self, phase: &Phase, facts: &Facts) -> Option<Check> {
        let Phase::Rcpt(recipient) = phase else {
            return None;
        };
        if facts.trusted {
            return None;
        }
        let sender = facts
            .mail_from
            .clone()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let recipient = recipient.to_ascii_lowercase();
        let store = self.store.clone();
        let policy = self.policy;
        let spared_domain = sender
            .rsplit_once('@')
            .is_some_and(|(_, domain)| self.allow_domains.iter().any(|d| d == domain));
        let spf = self.spf.clone().filter(|_| spared_domain);
        let facts = facts.clone();
        Some(Box::pin(async move {
            if let Some(spf) = spf {
                let helo = facts.helo.as_deref().unwrap_or("unknown");
                if spf.spf_passes(facts.ip, helo, &sender).await {
                    return Verdict::Accept;
                }
            }
            let network = network_of(facts.ip);
            match store
                .greylist(network, sender, recipient, now_unix(), policy)
                .await
            {
                Ok(Greylisted::Pass) => Verdict::Accept,
                Ok(Greylisted::Wait(seconds)) => Verdict::Tempfail(Reply::new(
                    451,
                    "4.7.1",
                    format!("Greylisted, please try again in {seconds} seconds"),
                )),
                Err(error) => {
                    tracing::error!(%error, "greylisting failed; accepted");
                    Verdict::Accept
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_a_slash_24_or_a_slash_64() {
        assert_eq!(network_of("192.0.2.200".parse().expect("ip")), "192.0.2");
        assert_eq!(
            network_of("2001:db8:a:b:c:d:e:f".parse().expect("ip")),
            "2001:db8:a:b"
        );
    }
}
