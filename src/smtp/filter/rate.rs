//! Connections and recipients per client address (an IPv6 /64 counts as one address), each
//! counted in a fixed window: a minute for connections, an hour for recipients. Beyond the
//! limit the client hears 421 (connect) or 451 (RCPT) and may come back later. Kept in
//! memory, at most `limits.rate_table_entries` addresses: the one counted longest ago goes
//! first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{Check, Facts, Phase, Step, Verdict};
use crate::smtp::proto::Reply;

const CONNECTION_WINDOW: Duration = Duration::from_secs(60);
const RECIPIENT_WINDOW: Duration = Duration::from_secs(3600);

pub struct RateStep {
    connections_per_minute: u32,
    recipients_per_hour: u32,
    entries: usize,
    table: Mutex<HashMap<IpAddr, Counts>>,
}

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

struct Counts {
    connections: Window,
    recipients: Window,
    last: Instant,
}

impl Window {
    /// Counts one more in a window of `length`; true while within `limit`.
    fn count(&mut self, now: Instant, length: Duration, limit: u32) -> bool {
        if now.duration_since(self.started) >= length {
            *self = Window {
                started: now,
                count: 0,
            };
        }
        self.count = self.count.saturating_add(1);
        self.count <= limit
    }
}

/// The address counted: IPv4 as is, IPv6 by its /64 (one customer's network).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

impl RateStep {
    pub fn new(connections_per_minute: u32, recipients_per_hour: u32, entries: usize) -> Self {
        RateStep {
            connections_per_minute,
            recipients_per_hour,
            entries,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a connection (`recipient == false`) or a recipient; true while within limits.
    pub fn admit(&self, ip: IpAddr, recipient: bool, now: Instant) -> bool {
        let Ok(mut table) = self.table.lock() else {
            return true;
        };
        let key = client_key(ip);
        if !table.contains_key(&key) && table.len() >= self.entries {
            let oldest = table
                .iter()
                .min_by_key(|(_, counts)| counts.last)
                .map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                table.remove(&oldest);
            }
        }
        let fresh = Window {
            started: now,
            count: 0,
        };
        let counts = table.entry(key).or_insert(Counts {
            connections: fresh,
            recipients: fresh,
            last: now,
        });
        counts.last = now;
        if recipient {
            counts
                .recipients
                .count(now, RECIPIENT_WINDOW, self.recipients_per_hour)
        } else {
            counts
                .connections
                .count(now, CONNECTION_WINDOW, self.connections_per_minute)
        }
    }
}

impl Step for RateStep {
    fn name(&self) -> &'static str {
        "rate"
    }

    fn check(&self, phase: &Phase, facts: &Facts) -> Option<Check> {
        let now = Instant::now();
        let verdict = match phase {
            Phase::Connect if !self.admit(facts.ip, false, now) => Verdict::Tempfail(Reply::new(
                421,
                "4.7.0",
                "Too many connections from your address, try again later",
            )),
            Phase::Rcpt(_) if !self.admit(facts.ip, true, now) => Verdict::Tempfail(Reply::new(
                451,
                "4.7.1",
                "Too many recipients from your address, try again later",
            )),
            _ => return None,
        };
        Some(Box::pin(std::future::ready(verdict)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_per_address_and_window() {
        let step = RateStep::new(2, 3, 2);
        let now = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "2001:db8::1".parse().expect("ip");
        let b_sibling: IpAddr = "2001:db8::ffff".parse().expect("ip");
        assert!(step.admit(a, false, now));
        assert!(step.admit(a, false, now));
        assert!(!step.admit(a, false, now), "third connection in a minute");
        assert!(step.admit(a, true, now), "recipients are counted apart");
        assert!(step.admit(b, false, now));
        assert!(step.admit(b_sibling, false, now));
        assert!(!step.admit(b, false, now), "one /64 is one address");
        assert!(
            step.admit(a, false, now + CONNECTION_WINDOW),
            "a new minute"
        );
    }

    #[test]
    fn the_table_forgets_the_address_counted_longest_ago() {
        let step = RateStep::new(1, 1, 2);
        let now = Instant::now();
        let addresses: Vec<IpAddr> = (1..=3)
            .map(|i| format!("192.0.2.{i}").parse().expect("ip"))
            .collect();
        assert!(step.admit(addresses[0], false, now));
        assert!(step.admit(addresses[1], false, now + Duration::from_secs(1)));
        assert!(step.admit(addresses[2], false, now + Duration::from_secs(2)));
        assert_eq!(step.table.lock().map(|t| t.len()).unwrap_or(0), 2);
        // The first was forgotten: it starts afresh.
        assert!(step.admit(addresses[0], false, now + Duration::from_secs(3)));
    }
}
