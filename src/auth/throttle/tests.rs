use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

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

fn other(i: u32) -> IpAddr {
    IpAddr::from((0xC000_0200u32 + i).to_be_bytes())
}

/// One wrong password, verified in 100 ms.
async fn guess(throttle: &Throttle, peer: IpAddr, account: Option<&str>) -> Option<Duration> {
    let attempt = throttle.begin(peer, account).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    Some(attempt.failed())
}

async fn allowed(throttle: &Throttle, peer: IpAddr, account: Option<&str>) -> bool {
    match throttle.begin(peer, account).await {
        Some(attempt) => {
            attempt.succeeded();
            true
        }
        None => false,
    }
}

#[tokio::test(start_paused = true)]
async fn delays_double_then_lock_then_expire() {
    let throttle = Throttle::new(&limits());
    let a = Some("a@x");
    assert_eq!(
        guess(&throttle, PEER, a).await,
        Some(Duration::from_secs(1))
    );
    assert_eq!(
        guess(&throttle, PEER, a).await,
        Some(Duration::from_secs(2))
    );
    assert_eq!(
        guess(&throttle, PEER, a).await,
        Some(Duration::from_secs(4))
    );
    assert_eq!(guess(&throttle, PEER, a).await, None);
    // Another account from the same address is locked too; the same account from elsewhere
    // as well (no address is known to it yet).
    assert!(throttle.begin(PEER, Some("b@x")).await.is_none());
    assert!(throttle.begin(other(1), a).await.is_none());
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(
        guess(&throttle, PEER, a).await,
        Some(Duration::from_secs(1))
    );
}

/// Runs `count` wrong guesses at once; returns how many were verified and the most verified
/// at the same time.
async fn flood(
    throttle: &Arc<Throttle>,
    count: u32,
    peer: impl Fn(u32) -> IpAddr,
    account: Option<&'static str>,
) -> (u32, u32) {
    let verified = Arc::new(AtomicU32::new(0));
    let busy = Arc::new(AtomicU32::new(0));
    let most = Arc::new(AtomicU32::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let (throttle, verified, busy, most) = (
            throttle.clone(),
            verified.clone(),
            busy.clone(),
            most.clone(),
        );
        let peer = peer(i);
        tasks.spawn(async move {
            let Some(attempt) = throttle.begin(peer, account).await else {
                return;
            };
            verified.fetch_add(1, Ordering::SeqCst);
            let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            busy.fetch_sub(1, Ordering::SeqCst);
            attempt.failed();
        });
    }
    while tasks.join_next().await.is_some() {}
    (verified.load(Ordering::SeqCst), most.load(Ordering::SeqCst))
}

#[tokio::test(start_paused = true)]
async fn attempts_at_once_from_one_address_verify_at_most_the_limit() {
    let throttle = Arc::new(Throttle::new(&limits()));
    let (verified, most) = flood(&throttle, 300, |_| PEER, Some("a@x")).await;
    assert_eq!(verified, 3);
    assert!(most <= LOGIN_VERIFICATIONS_PER_ADDRESS, "{most} at once");
    // The right password after the limit is refused without being checked.
    assert!(!allowed(&throttle, PEER, Some("a@x")).await);
}

#[tokio::test(start_paused = true)]
async fn attempts_at_once_from_many_addresses_verify_at_most_the_limit() {
    let throttle = Arc::new(Throttle::new(&Limits {
        login_throttle_entries: 1000,
        ..limits()
    }));
    let (verified, most) = flood(&throttle, 300, other, Some("a@x")).await;
    assert_eq!(verified, 3);
    assert!(most <= LOGIN_VERIFICATIONS_PER_ACCOUNT, "{most} at once");
    assert!(!allowed(&throttle, other(999), Some("a@x")).await);
}

#[tokio::test(start_paused = true)]
async fn a_failure_in_flight_counts() {
    let throttle = Throttle::new(&Limits {
        login_failures_before_lockout: 2,
        ..limits()
    });
    let first = throttle.begin(PEER, Some("a@x")).await.expect("first");
    let second = throttle.begin(other(1), Some("a@x")).await.expect("second");
    // Two failures in flight would reach the limit: a third waits for them...
    let third = tokio::time::timeout(
        Duration::from_secs(10),
        throttle.begin(other(2), Some("a@x")),
    )
    .await;
    assert!(third.is_err(), "let through while two were in flight");
    // ... and is refused once they have failed (one by being dropped unsettled).
    first.failed();
    drop(second);
    assert!(throttle.begin(other(2), Some("a@x")).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_waiting_attempt_goes_on_after_a_success() {
    let throttle = Throttle::new(&Limits {
        login_failures_before_lockout: 2,
        ..limits()
    });
    let first = throttle.begin(PEER, Some("a@x")).await.expect("first");
    let second = throttle.begin(PEER, Some("a@x")).await.expect("second");
    let waiting = throttle.begin(PEER, Some("a@x"));
    tokio::pin!(waiting);
    assert!(
        tokio::time::timeout(Duration::from_secs(1), waiting.as_mut())
            .await
            .is_err()
    );
    first.succeeded();
    second.failed();
    let third = tokio::time::timeout(Duration::from_secs(1), waiting)
        .await
        .expect("woken");
    assert!(third.is_some());
}

#[tokio::test(start_paused = true)]
async fn an_address_flood_does_not_clear_an_account_lockout() {
    let throttle = Arc::new(Throttle::new(&limits()));
    for _ in 0..3 {
        guess(&throttle, PEER, Some("a@x")).await;
    }
    // 2,200 failures for made-up names from other addresses: the address table (4 entries)
    // turns over hundreds of times.
    for i in 0..2200 {
        if let Some(attempt) = throttle.begin(other(i), None).await {
            attempt.failed();
        }
    }
    assert!(throttle.tables().addresses.len() <= 4);
    assert!(!allowed(&throttle, other(5000), Some("a@x")).await);
    // Made-up names never reach the account table.
    assert_eq!(throttle.tables().accounts.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_known_address_logs_in_while_an_attacker_is_locked_out() {
    let throttle = Arc::new(Throttle::new(&Limits {
        login_throttle_entries: 1000,
        ..limits()
    }));
    let home: IpAddr = "198.51.100.7".parse().expect("ip");
    assert!(allowed(&throttle, home, Some("a@x")).await);
    flood(&throttle, 50, other, Some("a@x")).await;
    assert!(!allowed(&throttle, other(900), Some("a@x")).await);
    // Home still gets in, and its logins do not give the attacker a fresh allowance.
    assert!(allowed(&throttle, home, Some("a@x")).await);
    assert!(allowed(&throttle, home, Some("a@x")).await);
    assert!(!allowed(&throttle, other(901), Some("a@x")).await);
    // Home is still limited as an address: its own failures lock it.
    for _ in 0..3 {
        guess(&throttle, home, Some("a@x")).await;
    }
    assert!(!allowed(&throttle, home, Some("a@x")).await);
    // The lockout ends after its time.
    tokio::time::advance(Duration::from_secs(61)).await;
    assert!(allowed(&throttle, other(900), Some("a@x")).await);
}

#[tokio::test(start_paused = true)]
async fn known_addresses_are_forgotten() {
    let throttle = Throttle::new(&limits());
    let home: IpAddr = "198.51.100.7".parse().expect("ip");
    assert!(allowed(&throttle, home, Some("a@x")).await);
    tokio::time::advance(LOGIN_KNOWN_ADDRESS_TTL).await;
    for i in 0..3 {
        guess(&throttle, other(i), Some("a@x")).await;
    }
    assert!(!allowed(&throttle, home, Some("a@x")).await);
    // At most LOGIN_KNOWN_ADDRESSES per account.
    tokio::time::advance(Duration::from_secs(61)).await;
    for i in 0..100 {
        assert!(allowed(&throttle, other(100 + i), Some("a@x")).await);
    }
    let tables = throttle.tables();
    assert_eq!(tables.accounts["a@x"].known.len(), LOGIN_KNOWN_ADDRESSES);
}

#[tokio::test(start_paused = true)]
async fn a_success_from_a_new_address_clears_the_account_failures() {
    let throttle = Throttle::new(&limits());
    guess(&throttle, other(1), Some("a@x")).await;
    guess(&throttle, other(2), Some("a@x")).await;
    assert!(allowed(&throttle, other(3), Some("a@x")).await);
    guess(&throttle, other(4), Some("a@x")).await;
    guess(&throttle, other(5), Some("a@x")).await;
    assert!(allowed(&throttle, other(6), Some("a@x")).await);
}

#[tokio::test(start_paused = true)]
async fn an_ipv6_block_counts_as_one_address() {
    let throttle = Throttle::new(&limits());
    for i in 0..3 {
        let peer: IpAddr = format!("2001:db8:1:2::{i}").parse().expect("ip");
        guess(&throttle, peer, None).await;
    }
    let same_block: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
    assert!(!allowed(&throttle, same_block, None).await);
    let next_block: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
    assert!(allowed(&throttle, next_block, None).await);
    let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
    for _ in 0..3 {
        guess(&throttle, mapped, None).await;
    }
    assert!(!allowed(&throttle, other(1), None).await);
}
