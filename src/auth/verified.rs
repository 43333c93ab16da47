//! Logins verified recently, so that a right password presented again soon skips argon2.
//!
//! An entry is a keyed hash (HMAC-SHA-256 under a key made at start and never stored) of the
//! account, the password and the account's stored password hash: the password itself is never
//! kept, a wrong password never matches, and a password change (by the web page, the command
//! line or another process) ends every entry of the account because its stored hash changes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ring::hmac;
use ring::rand::SystemRandom;

use crate::limits::{LOGIN_CACHE_ENTRIES, LOGIN_CACHE_LIFETIME};

type Tag = [u8; 32];

pub struct VerifiedLogins {
    key: hmac::Key,
    /// Tag → when it stops counting.
    entries: Mutex<HashMap<Tag, Instant>>,
    capacity: usize,
    lifetime: Duration,
}

impl VerifiedLogins {
    /// `None` when the OS random source fails: then every login is verified in full.
    pub fn new() -> Option<Self> {
        Self::with(LOGIN_CACHE_ENTRIES, LOGIN_CACHE_LIFETIME)
    }

    fn with(capacity: usize, lifetime: Duration) -> Option<Self> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new()).ok()?;
        Some(VerifiedLogins {
            key,
            entries: Mutex::new(HashMap::with_capacity(capacity)),
            capacity,
            lifetime,
        })
    }

    fn tag(&self, account: &str, password: &[u8], stored_hash: &str) -> Tag {
        let mut context = hmac::Context::with_key(&self.key);
        // Each part with its length first, so no two different triples hash alike.
        for part in [account.as_bytes(), password, stored_hash.as_bytes()] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let mut tag = [0; 32];
        tag.copy_from_slice(context.sign().as_ref());
        tag
    }

    /// Whether this password was verified for this account (with this stored hash) within the
    /// lifetime.
    pub fn holds(&self, account: &str, password: &[u8], stored_hash: &str, now: Instant) -> bool {
        let tag = self.tag(account, password, stored_hash);
        let Ok(mut entries) = self.entries.lock() else {
            return false;
        };
        match entries.get(&tag) {
            Some(&until) if now < until => true,
            Some(_) => {
                entries.remove(&tag);
                false
            }
            None => false,
        }
    }

    /// Remembers a password argon2 has just verified.
    pub fn remember(&self, account: &str, password: &[u8], stored_hash: &str, now: Instant) {
        let tag = self.tag(account, password, stored_hash);
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.capacity && !entries.contains_key(&tag) {
            entries.retain(|_, until| now < *until);
            if entries.len() >= self.capacity
                && let Some(stalest) = entries
                    .iter()
                    .min_by_key(|(_, until)| **until)
                    .map(|(tag, _)| *tag)
            {
                entries.remove(&stalest);
            }
        }
        entries.insert(tag, now + self.lifetime);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

    #[test]
    fn only_the_verified_password_of_that_account_and_hash_is_held() {
        let cache = VerifiedLogins::new().unwrap();
        let now = Instant::now();
        cache.remember("alice@home.test", b"right horse", HASH, now);
        assert!(cache.holds("alice@home.test", b"right horse", HASH, now));
        assert!(!cache.holds("alice@home.test", b"wrong horse", HASH, now));
        assert!(!cache.holds("bob@home.test", b"right horse", HASH, now));
        // A password change stores another hash: the old entry no longer counts.
        assert!(!cache.holds("alice@home.test", b"right horse", "$argon2id$other", now));
        // Length prefixes keep the parts apart.
        assert!(!cache.holds("alice@home.testr", b"ight horse", HASH, now));
    }

    #[test]
    fn entries_end_after_their_lifetime() {
        let cache = VerifiedLogins::with(4, Duration::from_secs(60)).unwrap();
        let now = Instant::now();
        cache.remember("alice@home.test", b"pw", HASH, now);
        assert!(cache.holds(
            "alice@home.test",
            b"pw",
            HASH,
            now + Duration::from_secs(59)
        ));
        assert!(!cache.holds(
            "alice@home.test",
            b"pw",
            HASH,
            now + Duration::from_secs(60)
        ));
    }

    #[test]
    fn a_full_cache_forgets_the_stalest_entry() {
        let cache = VerifiedLogins::with(2, Duration::from_secs(60)).unwrap();
        let start = Instant::now();
        cache.remember("a@home.test", b"pw", HASH, start);
        cache.remember("b@home.test", b"pw", HASH, start + Duration::from_secs(1));
        cache.remember("c@home.test", b"pw", HASH, start + Duration::from_secs(2));
        let now = start + Duration::from_secs(3);
        assert!(!cache.holds("a@home.test", b"pw", HASH, now));
        assert!(cache.holds("b@home.test", b"pw", HASH, now));
        assert!(cache.holds("c@home.test", b"pw", HASH, now));
        assert_eq!(cache.entries.lock().unwrap().len(), 2);
    }
}
