//! Failed-login throttling, per peer address and per account.
//!
//! Each failure doubles the delay before the failure is answered (from
//! `login_failure_delay`, capped at 30 s); after `login_failures_before_lockout` failures the
//! address or account is refused outright until `login_lockout` has passed since the last
//! failure.
//!
//! The check and the accounting are one step (issue #16: attempts sent at the same moment all
//! passed a separate "locked?" check and were all verified). [`Throttle::begin`] reserves the
//! attempt under the table's lock before the password is verified: it counts as *in flight*
//! against its address and account until it settles as a success or a failure (an attempt
//! dropped unsettled counts as a failure). An attempt is let through only while
//! `failures + in flight < limit` and fewer than `LOGIN_VERIFICATIONS_PER_*` are in flight;
//! otherwise it waits for those in flight to settle and looks again, or is refused once the
//! failures alone reach the limit. So at most `limit` wrong passwords per address and per
//! account are ever verified per lockout period, however many arrive at once.
//!
//! Two tables. Addresses (an IPv6 address counts as its /64): bounded by `login_throttle_entries`, the entry idle longest forgotten
//! when full (never one with an attempt in flight). Accounts: only names that exist in the
//! store get an entry (unknown names count against their address only), so the table is
//! bounded by the accounts there are, and a flood of addresses cannot push an account's
//! lockout out.
//!
//! Known addresses: an address that logged in to an account within `LOGIN_KNOWN_ADDRESS_TTL`
//! is not subject to that account's counters (`LOGIN_KNOWN_ADDRESSES` per account, least
//! recently used forgotten). An attacker elsewhere can lock the account, but the family's
//! devices at home keep working; attempts from a known address are still bounded by its own
//! address counter (10 guesses per lockout period from it, as for any address), and they
//! neither add to nor clear the account's failures — a user logging in must not give the
//! attacker a fresh allowance. The trade-off: someone who shares a known address (the
//! household's NAT) is limited only per address; an account with no known address yet (or one
//! whose devices roam to new addresses) is locked everywhere while it is under attack; and
//! since unknown names are counted per address only, an attacker using many addresses can
//! tell that a name exists when it, and not its address, gets locked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::limits::{
    LOGIN_KNOWN_ADDRESS_TTL, LOGIN_KNOWN_ADDRESSES, LOGIN_VERIFICATIONS_PER_ACCOUNT,
    LOGIN_VERIFICATIONS_PER_ADDRESS, Limits,
};

const MAX_DELAY: Duration = Duration::from_secs(30);

/// Failures and attempts in flight for one address or one account.
#[derive(Debug, Clone, Copy)]
struct Counts {
    failures: u32,
    in_flight: u32,
    /// The last failure, or when the entry was made.
    last: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Admission {
    Open,
    /// Attempts in flight might fill the allowance: wait for them.
    Busy,
    Locked,
}

impl Counts {
    fn new(now: Instant) -> Self {
        Counts {
            failures: 0,
            in_flight: 0,
            last: now,
        }
    }

    /// Failures that still count: those long ago do not count against a new one.
    fn failures(&self, now: Instant, lockout: Duration) -> u32 {
        if now.duration_since(self.last) >= lockout {
            0
        } else {
            self.failures
        }
    }

    fn admission(&self, now: Instant, rules: &Rules, concurrency: u32) -> Admission {
        let failures = self.failures(now, rules.lockout);
        if failures >= rules.lockout_after {
            Admission::Locked
        } else if failures.saturating_add(self.in_flight) >= rules.lockout_after
            || self.in_flight >= concurrency
        {
            Admission::Busy
        } else {
            Admission::Open
        }
    }

    /// Turns one attempt in flight into a failure; returns the failures now counted.
    fn fail(&mut self, now: Instant, lockout: Duration) -> u32 {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.failures = self.failures(now, lockout).saturating_add(1);
        self.last = now;
        self.failures
    }

    /// Nothing here that a new entry would not say.
    fn is_idle(&self, now: Instant, lockout: Duration) -> bool {
        self.in_flight == 0 && self.failures(now, lockout) == 0
    }
}

#[derive(Debug)]
struct AccountEntry {
    counts: Counts,
    /// Addresses that logged in, with their last successful login.
    known: Vec<(IpAddr, Instant)>,
}

impl AccountEntry {
    fn knows(&self, peer: IpAddr, now: Instant) -> bool {
        self.known
            .iter()
            .any(|(ip, at)| *ip == peer && now.duration_since(*at) < LOGIN_KNOWN_ADDRESS_TTL)
    }

    fn remember(&mut self, peer: IpAddr, now: Instant) {
        self.known
            .retain(|(ip, at)| *ip != peer && now.duration_since(*at) < LOGIN_KNOWN_ADDRESS_TTL);
        if self.known.len() >= LOGIN_KNOWN_ADDRESSES {
            // Each login moves its address to the end, so the front is the least recently used.
            self.known.remove(0);
        }
        self.known.push((peer, now));
    }
}

#[derive(Default)]
struct Tables {
    addresses: HashMap<IpAddr, Counts>,
    accounts: HashMap<String, AccountEntry>,
}

struct Rules {
    address_capacity: usize,
    base_delay: Duration,
    lockout_after: u32,
    lockout: Duration,
}

pub struct Throttle {
    tables: Mutex<Tables>,
    /// Woken whenever an attempt settles, for the attempts waiting on `Admission::Busy`.
    settled: Notify,
    rules: Rules,
}

/// A reserved login attempt: settle it with [`Attempt::succeeded`] or [`Attempt::failed`].
/// Dropped unsettled (the session went away while its password was being checked), it counts
/// as a failure, so disconnecting early buys an attacker nothing.
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    peer: IpAddr,
    /// The account, if it exists.
    account: Option<String>,
    /// Whether the attempt counts against the account (the address is not known to it).
    counted: bool,
    settled: bool,
}

impl Throttle {
    pub fn new(limits: &Limits) -> Self {
        Throttle {
            tables: Mutex::new(Tables::default()),
            settled: Notify::new(),
            rules: Rules {
                address_capacity: limits.login_throttle_entries,
                base_delay: limits.login_failure_delay.duration(),
                lockout_after: limits.login_failures_before_lockout,
                lockout: limits.login_lockout.duration(),
            },
        }
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        match self.tables.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Reserves a login attempt from `peer` for `account` (`None` when no such account
    /// exists), waiting while attempts in flight could still fill the allowance. `None` means
    /// locked out: refuse without verifying the password.
    pub async fn begin(&self, peer: IpAddr, account: Option<&str>) -> Option<Attempt<'_>> {
        let peer = address_key(peer);
        loop {
            // Registered before looking, so a settlement in between is not missed.
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            match self.try_begin(peer, account) {
                Ok(attempt) => return Some(attempt),
                Err(Admission::Locked) => return None,
                Err(_) => settled.await,
            }
        }
    }

    fn try_begin(&self, peer: IpAddr, account: Option<&str>) -> Result<Attempt<'_>, Admission> {
        let now = Instant::now();
        let rules = &self.rules;
        let mut tables = self.tables();
        let tables = &mut *tables;
        let known = account
            .and_then(|name| tables.accounts.get(name))
            .is_some_and(|entry| entry.knows(peer, now));
        let counted = account.is_some() && !known;
        let address = tables.addresses.get(&peer).map_or(Admission::Open, |c| {
            c.admission(now, rules, LOGIN_VERIFICATIONS_PER_ADDRESS)
        });
        let account_admission = match account.filter(|_| counted) {
            Some(name) => tables.accounts.get(name).map_or(Admission::Open, |e| {
                e.counts
                    .admission(now, rules, LOGIN_VERIFICATIONS_PER_ACCOUNT)
            }),
            None => Admission::Open,
        };
        let admission = address.max(account_admission);
        if admission != Admission::Open {
            return Err(admission);
        }
        if !tables.addresses.contains_key(&peer)
            && tables.addresses.len() >= rules.address_capacity
            && !evict_address(&mut tables.addresses)
        {
            // Every remembered address has an attempt in flight: wait for one to settle.
            return Err(Admission::Busy);
        }
        tables
            .addresses
            .entry(peer)
            .or_insert_with(|| Counts::new(now))
            .in_flight += 1;
        if let Some(name) = account.filter(|_| counted) {
            if !tables.accounts.contains_key(name) {
                // Entries of accounts with nothing left to say (and of deleted accounts) go
                // when a new one is made, so the table stays the size of the live accounts.
                let lockout = rules.lockout;
                tables.accounts.retain(|_, e| {
                    !e.counts.is_idle(now, lockout)
                        || e.known
                            .iter()
                            .any(|(_, at)| now.duration_since(*at) < LOGIN_KNOWN_ADDRESS_TTL)
                });
            }
            tables
                .accounts
                .entry(name.to_string())
                .or_insert_with(|| AccountEntry {
                    counts: Counts::new(now),
                    known: Vec::new(),
                })
                .counts
                .in_flight += 1;
        }
        Ok(Attempt {
            throttle: self,
            peer,
            account: account.map(str::to_string),
            counted,
            settled: false,
        })
    }

    /// Settles an attempt; returns how long to wait before answering it.
    fn settle(&self, attempt: &Attempt<'_>, success: bool) -> Duration {
        let now = Instant::now();
        let lockout = self.rules.lockout;
        let mut worst = 0;
        {
            let mut tables = self.tables();
            if let Some(counts) = tables.addresses.get_mut(&attempt.peer) {
                if success {
                    // The address's failures stay: one good password must not reset an
                    // address that is guessing at other accounts.
                    counts.in_flight = counts.in_flight.saturating_sub(1);
                } else {
                    worst = worst.max(counts.fail(now, lockout));
                }
            }
            if let Some(name) = &attempt.account {
                if attempt.counted
                    && let Some(entry) = tables.accounts.get_mut(name)
                {
                    if success {
                        entry.counts.in_flight = entry.counts.in_flight.saturating_sub(1);
                        entry.counts.failures = 0;
                    } else {
                        worst = worst.max(entry.counts.fail(now, lockout));
                    }
                }
                if success {
                    tables
                        .accounts
                        .entry(name.clone())
                        .or_insert_with(|| AccountEntry {
                            counts: Counts::new(now),
                            known: Vec::new(),
                        })
                        .remember(attempt.peer, now);
                }
            }
        }
        self.settled.notify_waiters();
        let doublings = worst.saturating_sub(1).min(16);
        self.rules
            .base_delay
            .saturating_mul(1u32 << doublings)
            .min(MAX_DELAY)
    }
}

/// What counts as one address: an IPv6 /64, the smallest block a site or a mobile phone is
/// given (RFC 6177), so that an attacker cannot take a fresh address from its block for every
/// ten guesses, and a phone whose privacy address changes daily (RFC 8981) stays known. An
/// IPv4 address mapped into IPv6 is the IPv4 address.
fn address_key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => peer,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((v6.to_bits() & !u128::from(u64::MAX)).into()),
        },
    }
}

/// Forgets the address idle longest among those with no attempt in flight; false if none.
fn evict_address(addresses: &mut HashMap<IpAddr, Counts>) -> bool {
    let oldest = addresses
        .iter()
        .filter(|(_, c)| c.in_flight == 0)
        .min_by_key(|(_, c)| c.last)
        .map(|(ip, _)| *ip);
    match oldest {
        Some(ip) => addresses.remove(&ip).is_some(),
        None => false,
    }
}

impl Attempt<'_> {
    pub fn succeeded(mut self) {
        self.settled = true;
        self.throttle.settle(&self, true);
    }

    /// Returns how long to wait before answering the failure.
    pub fn failed(mut self) -> Duration {
        self.settled = true;
        self.throttle.settle(&self, false)
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.throttle.settle(self, false);
        }
    }
}

#[cfg(test)]
mod tests;
