//! Failed-login throttling, per peer address and per account.
//!
//! Each failure doubles the delay before the failure is answered (from
//! `login_failure_delay`, capped at 30 s); after `login_failures_before_lockout` failures the
//! address or account is refused outright until `login_lockout` has passed since the last
//! failure. The table is bounded: when full, the entry idle longest is forgotten.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::limits::Limits;

const MAX_DELAY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Peer(IpAddr),
    Account(String),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

pub struct Throttle {
    entries: Mutex<HashMap<Key, Entry>>,
    capacity: usize,
    base_delay: Duration,
    lockout_after: u32,
    lockout: Duration,
}

impl Throttle {
    pub fn new(limits: &Limits) -> Self {
        Throttle {
            entries: Mutex::new(HashMap::new()),
            capacity: limits.login_throttle_entries,
            base_delay: limits.login_failure_delay.duration(),
            lockout_after: limits.login_failures_before_lockout,
            lockout: limits.login_lockout.duration(),
        }
    }

    fn with_entries<T>(&self, f: impl FnOnce(&mut HashMap<Key, Entry>) -> T) -> T {
        let mut guard = match self.entries.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    pub fn is_locked(&self, peer: IpAddr, account: &str) -> bool {
        let now = Instant::now();
        let keys = [Key::Peer(peer), Key::Account(account.to_string())];
        self.with_entries(|entries| {
            keys.iter().any(|key| {
                entries.get(key).is_some_and(|e| {
                    e.failures >= self.lockout_after && now.duration_since(e.last) < self.lockout
                })
            })
        })
    }

    /// Records a failure; returns how long to wait before answering it.
    pub fn failed(&self, peer: IpAddr, account: &str) -> Duration {
        let now = Instant::now();
        let keys = [Key::Peer(peer), Key::Account(account.to_string())];
        self.with_entries(|entries| {
            let mut worst = 0;
            for key in keys {
                if !entries.contains_key(&key) && entries.len() >= self.capacity {
                    let oldest = entries
                        .iter()
                        .min_by_key(|(_, e)| e.last)
                        .map(|(k, _)| k.clone());
                    if let Some(oldest) = oldest {
                        entries.remove(&oldest);
                    }
                }
                let entry = entries.entry(key).or_insert(Entry {
                    failures: 0,
                    last: now,
                });
                // Failures long ago do not count against a new one.
                if now.duration_since(entry.last) >= self.lockout {
                    entry.failures = 0;
                }
                entry.failures = entry.failures.saturating_add(1);
                entry.last = now;
                worst = worst.max(entry.failures);
            }
            let doublings = worst.saturating_sub(1).min(16);
            self.base_delay
                .saturating_mul(1u32 << doublings)
                .min(MAX_DELAY)
        })
    }

    /// A successful login clears the account's record (not the peer's: one good password
    /// must not reset an address that is guessing at other accounts).
    pub fn succeeded(&self, _peer: IpAddr, account: &str) {
        self.with_entries(|entries| {
            entries.remove(&Key::Account(account.to_string()));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::Seconds;

    fn limits() -> Limits {
        Limits {
            login_failure_delay: Seconds(1),
            login_failures_before_lockout: 3,
            login_lockout: Seconds(60),
            login_throttle_entries: 4,
            ..Limits::default()
        }
    }

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[tokio::test(start_paused = true)]
    async fn delays_double_then_lock_then_expire() {
        let throttle = Throttle::new(&limits());
        assert!(!throttle.is_locked(PEER, "a@x"));
        assert_eq!(throttle.failed(PEER, "a@x"), Duration::from_secs(1));
        assert_eq!(throttle.failed(PEER, "a@x"), Duration::from_secs(2));
        assert!(!throttle.is_locked(PEER, "a@x"));
        assert_eq!(throttle.failed(PEER, "a@x"), Duration::from_secs(4));
        assert!(throttle.is_locked(PEER, "a@x"));
        // Another account from the same address is locked too; the same account from
        // elsewhere as well.
        assert!(throttle.is_locked(PEER, "b@x"));
        assert!(throttle.is_locked("192.0.2.1".parse().expect("ip"), "a@x"));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(!throttle.is_locked(PEER, "a@x"));
        assert_eq!(throttle.failed(PEER, "a@x"), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn table_is_bounded() {
        let throttle = Throttle::new(&limits());
        for i in 0..20u8 {
            throttle.failed(IpAddr::from([10, 0, 0, i]), &format!("u{i}@x"));
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        assert!(throttle.with_entries(|e| e.len()) <= 4);
    }
}
