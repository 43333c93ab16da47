//! Greylisting's memory (RFC 6647): the (network, sender, recipient) triplets seen once, and
//! the networks that retried and passed. Both tables are bounded: past `max_entries` the
//! oldest rows go. Commits here are not flushed to disk on their own (losing a few after a
//! power cut only delays those senders once more); the next durable commit carries them.

use redb::{Durability, ReadableTable, ReadableTableMetadata, Table, WriteTransaction};

use super::schema::{GREYLIST, GREYLIST_NETWORKS};
use super::{Store, StoreError};

/// How greylisting judges an attempt (all times in seconds).
#[derive(Debug, Clone, Copy)]
pub struct GreylistPolicy {
    /// A retry passes this long after the first attempt.
    pub delay: i64,
    /// A first attempt not retried within this long is forgotten.
    pub retry_window: i64,
    /// A network that passed is let through without delay for this long after its last mail.
    pub network_ttl: i64,
    /// Rows kept in each table.
    pub max_entries: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greylisted {
    Pass,
    /// Come back in this many seconds.
    Wait(i64),
}

impl Store {
    /// Records an attempt of (network, sender, recipient) at `now` and says whether it passes.
    pub async fn greylist(
        &self,
        network: String,
        sender: String,
        recipient: String,
        now: i64,
        policy: GreylistPolicy,
    ) -> Result<Greylisted, StoreError> {
        self.blocking(move |db| {
            let mut txn = db.begin_write()?;
            // A database shared between processes refuses it; the commit is durable then.
            let _ = txn.set_durability(Durability::None);
            let outcome = judge(&txn, &network, &sender, &recipient, now, policy)?;
            txn.commit()?;
            Ok(outcome)
        })
        .await
    }
}

fn judge(
    txn: &WriteTransaction,
    network: &str,
    sender: &str,
    recipient: &str,
    now: i64,
    policy: GreylistPolicy,
) -> Result<Greylisted, StoreError> {
    let mut networks = txn.open_table(GREYLIST_NETWORKS)?;
    let passed = networks.get(network)?.map(|v| v.value());
    if passed.is_some_and(|last| now - last < policy.network_ttl) {
        networks.insert(network, now)?;
        return Ok(Greylisted::Pass);
    }
    let mut triplets = txn.open_table(GREYLIST)?;
    let key = (network, sender, recipient);
    let first = triplets.get(key)?.map(|v| v.value());
    match first {
        Some(first) if now - first >= policy.delay && now - first < policy.retry_window => {
            triplets.remove(key)?;
            networks.insert(network, now)?;
            prune(&mut networks, policy.max_entries)?;
            Ok(Greylisted::Pass)
        }
        Some(first) if now - first < policy.delay => {
            Ok(Greylisted::Wait(policy.delay - (now - first)))
        }
        _ => {
            triplets.insert(key, now)?;
            prune(&mut triplets, policy.max_entries)?;
            Ok(Greylisted::Wait(policy.delay))
        }
    }
}

/// Drops the oldest rows (by the time they hold) until a tenth below `max` is left, so a
/// full table is pruned once in a while, not at every insert.
fn prune<K: redb::Key + 'static>(table: &mut Table<K, i64>, max: u64) -> Result<(), StoreError> {
    if table.len()? <= max {
        return Ok(());
    }
    let keep = max - max / 10;
    let mut times: Vec<i64> = Vec::new();
    for entry in table.iter()? {
        times.push(entry?.1.value());
    }
    times.sort_unstable();
    let excess = times
        .len()
        .saturating_sub(usize::try_from(keep).unwrap_or(usize::MAX));
    let Some(&cutoff) = times.get(excess.saturating_sub(1)) else {
        return Ok(());
    };
    let mut removed = 0usize;
    table.retain(|_, time| {
        let drop = time <= cutoff && removed < excess;
        removed += usize::from(drop);
        !drop
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio::sync::watch;

    use super::*;
    use crate::limits::Limits;
    use crate::status::Status;

    const POLICY: GreylistPolicy = GreylistPolicy {
        delay: 300,
        retry_window: 86400,
        network_ttl: 30 * 86400,
        max_entries: 10,
    };

    async fn attempt(store: &Store, network: &str, sender: &str, now: i64) -> Greylisted {
        store
            .greylist(
                network.into(),
                sender.into(),
                "alice@home.test".into(),
                now,
                POLICY,
            )
            .await
            .expect("greylist")
    }

    #[tokio::test]
    async fn a_retry_after_the_delay_passes_and_the_network_is_remembered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(
            dir.path(),
            &Limits::default(),
            watch::channel(Status::default()).0,
        )
        .expect("open");
        let t = 1_000_000;
        assert_eq!(
            attempt(&store, "192.0.2", "a@x.test", t).await,
            Greylisted::Wait(300)
        );
        assert_eq!(
            attempt(&store, "192.0.2", "a@x.test", t + 100).await,
            Greylisted::Wait(200)
        );
        assert_eq!(
            attempt(&store, "192.0.2", "a@x.test", t + 300).await,
            Greylisted::Pass
        );
        // Now the network passes with any sender, for 30 days after its last mail.
        assert_eq!(
            attempt(&store, "192.0.2", "b@y.test", t + 301).await,
            Greylisted::Pass
        );
        let later = t + 301 + 30 * 86400;
        assert_eq!(
            attempt(&store, "192.0.2", "b@y.test", later).await,
            Greylisted::Wait(300)
        );
        // A first attempt not retried within the window starts over.
        assert_eq!(
            attempt(&store, "198.51.100", "c@z.test", t).await,
            Greylisted::Wait(300)
        );
        let late = t + 86400 + 1;
        assert_eq!(
            attempt(&store, "198.51.100", "c@z.test", late).await,
            Greylisted::Wait(300)
        );
    }

    #[tokio::test]
    async fn the_tables_stay_bounded_and_drop_the_oldest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(
            dir.path(),
            &Limits::default(),
            watch::channel(Status::default()).0,
        )
        .expect("open");
        for i in 0..25 {
            attempt(&store, "192.0.2", &format!("s{i}@x.test"), 1000 + i).await;
        }
        let db = store.inner.db.get().expect("db");
        let txn = redb::ReadableDatabase::begin_read(&*db).expect("read");
        let triplets = txn.open_table(GREYLIST).expect("table");
        assert!(triplets.len().expect("len") <= POLICY.max_entries);
        // The newest is still there; the first is long gone.
        assert!(
            triplets
                .get(("192.0.2", "s24@x.test", "alice@home.test"))
                .expect("get")
                .is_some()
        );
        assert!(
            triplets
                .get(("192.0.2", "s0@x.test", "alice@home.test"))
                .expect("get")
                .is_none()
        );
    }
}
