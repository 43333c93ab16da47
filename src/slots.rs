//! Connection slots of one service: `max_connections` in all, at most
//! `max_connections_per_address` of them held by one client address (issue #16 defect 3: one
//! address holding every slot kept a service unusable). A connection that gets no slot is
//! answered with the protocol's busy reply and closed at once, rather than left waiting in
//! the kernel backlog hearing nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The share of one client: an IPv4 address, or an IPv6 /64 (one site's prefix: a host
/// picks addresses inside it at will, so counting them one by one would give no share).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    V4(u32),
    V6Prefix(u64),
}

impl Client {
    fn of(address: IpAddr) -> Client {
        match address {
            IpAddr::V4(v4) => Client::V4(v4.into()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client::V4(v4.into()),
                None => Client::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

#[derive(Debug, Default)]
struct Held {
    total: usize,
    by_client: HashMap<Client, usize>,
}

/// The slots of one service, shared by all its listeners.
#[derive(Debug, Clone)]
pub struct Slots {
    max: usize,
    per_client: usize,
    held: Arc<Mutex<Held>>,
}

/// One slot; freed when dropped.
#[derive(Debug)]
pub struct Slot {
    client: Client,
    held: Arc<Mutex<Held>>,
}

impl Slots {
    pub fn new(max: usize, per_client: usize) -> Slots {
        Slots {
            max,
            per_client: per_client.min(max),
            held: Arc::default(),
        }
    }

    /// A slot for a connection from `address`, or `None` if the service or this client has
    /// no slot free.
    pub fn take(&self, address: IpAddr) -> Option<Slot> {
        let client = Client::of(address);
        // A poisoned lock only means another connection panicked while counting; the counts
        // themselves are still whole (every update is one statement).
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.total >= self.max {
            return None;
        }
        let count = held.by_client.entry(client).or_insert(0);
        if *count >= self.per_client {
            return None;
        }
        *count += 1;
        held.total += 1;
        Some(Slot {
            client,
            held: self.held.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.total = held.total.saturating_sub(1);
        if let Some(count) = held.by_client.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                held.by_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_address_gets_its_share_and_others_the_rest() {
        let slots = Slots::new(4, 2);
        let a1 = slots.take(ip("192.0.2.1")).unwrap();
        let _a2 = slots.take(ip("192.0.2.1")).unwrap();
        assert!(slots.take(ip("192.0.2.1")).is_none());
        let _b1 = slots.take(ip("192.0.2.2")).unwrap();
        let _b2 = slots.take(ip("192.0.2.2")).unwrap();
        assert!(slots.take(ip("192.0.2.3")).is_none(), "service full");
        drop(a1);
        assert!(slots.take(ip("192.0.2.1")).is_some());
    }

    #[test]
    fn an_ipv6_slash_64_is_one_client() {
        let slots = Slots::new(10, 1);
        let _a = slots.take(ip("2001:db8:1:2::1")).unwrap();
        assert!(slots.take(ip("2001:db8:1:2:ffff::9")).is_none());
        assert!(slots.take(ip("2001:db8:1:3::1")).is_some());
        let _v4 = slots.take(ip("::ffff:192.0.2.1")).unwrap();
        assert!(slots.take(ip("192.0.2.1")).is_none());
    }
}
