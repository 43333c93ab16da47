//! The network state the loop owns, with the simulated radio: the hotspot goes up and down
//! with setup mode, and a join from the wizard is a handover that comes back on failure.

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::network::{Simulated, check_passphrase};

const HOTSPOT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const PASSPHRASE: &str = "the home passphrase";

struct Appliance {
    harness: Harness,
    radio: Arc<Simulated>,
    _dir: tempfile::TempDir,
}

/// A box with the simulated radio, hearing "Home" and "Cafe", whose networks take only
/// `PASSPHRASE`; the setup page listens on every address, port 8080. `joined_before`: it
/// has joined "Home" already (an uplink).
async fn start_box(first_start: bool, joined_before: bool) -> Appliance {
    let dir = tempfile::tempdir().expect("tempdir");
    let radio = Arc::new(Simulated::new(
        &["Home".to_string(), "Cafe".to_string()],
        Some(HOTSPOT),
        Some(Secret::new(PASSPHRASE.to_string())),
        dir.path(),
    ));
    if joined_before {
        let passphrase = Secret::new(PASSPHRASE.to_string());
        radio.join("Home", &passphrase).await.expect("joined Home");
    }
    let web = vec![SocketAddr::from(([0, 0, 0, 0], 8080))];
    let harness = start_with(first_start, web, radio.clone());
    Appliance {
        harness,
        radio,
        _dir: dir,
    }
}

impl Appliance {
    fn setup(&self) -> SetupInfo {
        self.harness
            .status
            .borrow()
            .setup
            .clone()
            .expect("setup info")
    }

    async fn join(&self, ssid: &str, passphrase: &str) -> Result<Joining, NetworkError> {
        self.harness
            .control
            .join(ssid, &Secret::new(passphrase.to_string()))
            .await
            .expect("loop runs")
    }

    /// Lets a handover run to its end (time is paused: the grace passes at once).
    async fn handover(&self) {
        settle().await;
        tokio::time::sleep(HANDOVER_GRACE + Duration::from_millis(1)).await;
        settle().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_fresh_box_with_no_uplink_raises_a_wpa2_hotspot_and_shows_it() {
    let b = start_box(true, false).await;
    settle().await;
    assert_eq!(b.harness.mode(), Mode::Setup);
    let setup = b.setup();
    let network = setup.network.clone().expect("a hotspot");
    assert!(
        network.starts_with(crate::network::hotspot::NAME_PREFIX),
        "{network}"
    );
    let passphrase = setup
        .passphrase
        .clone()
        .expect("a passphrase: never an open network");
    check_passphrase(&Secret::new(passphrase.clone())).expect("a WPA2 passphrase");
    assert_eq!(
        passphrase.split('-').count(),
        crate::network::hotspot::PASSPHRASE_WORDS
    );
    assert_eq!(setup.url, "http://127.0.0.2:8080/setup");
    assert!(setup.code.is_some(), "the code stays for the wired way in");
    assert_eq!(b.radio.hotspot_address(), Some(HOTSPOT));

    // Leaving setup mode takes it down; the next setup mode has a new one.
    assert_eq!(b.harness.ask(Command::Setup(false)).await, Mode::Normal);
    assert_eq!(b.radio.hotspot_address(), None);
    assert_eq!(b.harness.status.borrow().setup, None);
    b.harness.ask(Command::Setup(true)).await;
    let again = b.setup();
    assert!(again.network.is_some());
    assert_ne!(again.passphrase, Some(passphrase));
}

#[tokio::test(start_paused = true)]
async fn a_box_with_an_uplink_keeps_it_unless_the_button_asks_for_the_hotspot() {
    let b = start_box(false, true).await;
    assert_eq!(b.harness.ask(Command::Setup(true)).await, Mode::Setup);
    let setup = b.setup();
    assert_eq!(setup.network, None, "no hotspot: the code guards the page");
    assert!(setup.code.is_some());
    assert_eq!(b.radio.hotspot_address(), None);
    b.harness.ask(Command::Setup(false)).await;

    assert_eq!(
        b.harness.ask(Command::Press(Press::Long)).await,
        Mode::Setup
    );
    assert!(b.setup().network.is_some(), "a long press raises it anyway");
    assert_eq!(b.radio.hotspot_address(), Some(HOTSPOT));
    assert_eq!(
        b.harness.ask(Command::Press(Press::Long)).await,
        Mode::Normal
    );
    assert_eq!(b.radio.hotspot_address(), None);
}

#[tokio::test(start_paused = true)]
async fn a_failed_join_brings_the_same_hotspot_back_and_says_why() {
    let b = start_box(true, false).await;
    settle().await;
    let before = b.setup();
    let cases = [
        (
            "Home",
            "not the passphrase",
            "wrong password",
            "refused the passphrase",
        ),
        ("Faraway", PASSPHRASE, "not found", "is in range"),
    ];
    for (ssid, passphrase, short, reason) in cases {
        assert_eq!(b.join(ssid, passphrase).await, Ok(Joining::AfterHotspot));
        // Until the grace has passed the page's answer may still be on its way.
        assert_eq!(b.radio.hotspot_address(), Some(HOTSPOT));
        b.handover().await;
        let after = b.setup();
        let problem = after.problem.clone().expect("a problem");
        assert_eq!(
            (problem.ssid.as_str(), problem.short.as_str()),
            (ssid, short)
        );
        assert!(problem.reason.contains(reason), "{}", problem.reason);
        assert_eq!(
            after.network, before.network,
            "the phone finds the same network"
        );
        assert_eq!(after.passphrase, before.passphrase);
        assert_eq!(b.radio.hotspot_address(), Some(HOTSPOT));
        assert_eq!(b.radio.joined(), None);
    }
}

#[tokio::test(start_paused = true)]
async fn a_join_that_works_lowers_the_hotspot_and_setup_goes_on_with_the_code() {
    let b = start_box(true, false).await;
    settle().await;
    assert_eq!(
        b.join("Home", "wrong passphrase").await,
        Ok(Joining::AfterHotspot)
    );
    b.handover().await;
    assert!(b.setup().problem.is_some());
    assert_eq!(b.join("Home", PASSPHRASE).await, Ok(Joining::AfterHotspot));
    b.handover().await;
    let setup = b.setup();
    assert_eq!(b.harness.mode(), Mode::Setup);
    assert_eq!(
        (setup.network, setup.passphrase, setup.problem),
        (None, None, None)
    );
    assert!(setup.code.is_some());
    assert_eq!(b.radio.hotspot_address(), None);
    assert_eq!(b.radio.joined().as_deref(), Some("Home"));
    // Now the box has an uplink: the next setup mode keeps it.
    b.harness.ask(Command::Setup(false)).await;
    b.harness.ask(Command::Setup(true)).await;
    assert_eq!(b.setup().network, None);
}

#[tokio::test(start_paused = true)]
async fn without_a_hotspot_a_join_answers_when_it_is_done() {
    let b = start_box(false, false).await;
    // Not in setup mode: no hotspot, so the join is direct.
    assert_eq!(
        b.join("Home", "wrong passphrase").await,
        Err(NetworkError::WrongPassphrase("Home".into()))
    );
    assert_eq!(b.join("Home", PASSPHRASE).await, Ok(Joining::Joined));
    let wired = start(false);
    assert_eq!(
        wired
            .control
            .join("Home", &Secret::new(PASSPHRASE.to_string()))
            .await
            .expect("loop runs"),
        Err(NetworkError::NoWifi)
    );
    wired.ask(Command::Setup(true)).await;
    assert_eq!(
        wired
            .status
            .borrow()
            .setup
            .as_ref()
            .and_then(|s| s.network.clone()),
        None
    );
}

#[tokio::test(start_paused = true)]
async fn shutting_down_lowers_the_hotspot() {
    let b = start_box(true, false).await;
    settle().await;
    assert!(b.radio.hotspot_address().is_some());
    assert_eq!(b.harness.ask(Command::Shutdown).await, Mode::ShuttingDown);
    assert_eq!(b.radio.hotspot_address(), None);
}

/// A radio that is there only once `present` is set (a Pi's Wi-Fi firmware loading after the
/// daemon started), and whose joins take `join_takes` (a network that does not answer, up to
/// `WIFI_JOIN_TIMEOUT`).
struct Late {
    present: std::sync::atomic::AtomicBool,
    join_takes: Duration,
    radio: Simulated,
}

impl Network for Late {
    fn has_wifi(&self) -> bool {
        self.present.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn scan(
        &self,
    ) -> crate::network::BoxFuture<'_, Result<Vec<crate::network::WifiNetwork>, NetworkError>> {
        self.radio.scan()
    }

    fn join<'a>(
        &'a self,
        ssid: &'a str,
        passphrase: &'a Secret<String>,
    ) -> crate::network::BoxFuture<'a, Result<(), NetworkError>> {
        Box::pin(async move {
            tokio::time::sleep(self.join_takes).await;
            self.radio.join(ssid, passphrase).await
        })
    }

    fn hotspot_address(&self) -> Option<IpAddr> {
        self.radio.hotspot_address()
    }

    fn has_uplink(&self) -> crate::network::BoxFuture<'_, bool> {
        self.radio.has_uplink()
    }

    fn raise_hotspot<'a>(
        &'a self,
        hotspot: &'a crate::network::Hotspot,
        captive_path: &'a str,
    ) -> crate::network::BoxFuture<'a, Result<IpAddr, NetworkError>> {
        self.radio.raise_hotspot(hotspot, captive_path)
    }

    fn lower_hotspot(&self) -> crate::network::BoxFuture<'_, Result<(), NetworkError>> {
        self.radio.lower_hotspot()
    }
}

#[tokio::test(start_paused = true)]
async fn a_radio_that_appears_after_setup_mode_began_still_gets_its_hotspot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let late = Arc::new(Late {
        present: false.into(),
        join_takes: Duration::ZERO,
        radio: Simulated::new(&["Home".to_string()], Some(HOTSPOT), None, dir.path()),
    });
    let web = vec![SocketAddr::from(([0, 0, 0, 0], 8080))];
    let h = start_with(true, web, late.clone());
    settle().await;
    assert_eq!(h.mode(), Mode::Setup);
    assert_eq!(
        h.status
            .borrow()
            .setup
            .as_ref()
            .and_then(|s| s.network.clone()),
        None
    );
    tokio::time::sleep(RADIO_POLL * 3).await;
    settle().await;
    assert_eq!(late.hotspot_address(), None, "no radio, no hotspot");

    late.present
        .store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(RADIO_POLL).await;
    settle().await;
    assert!(
        h.status
            .borrow()
            .setup
            .as_ref()
            .and_then(|s| s.network.clone())
            .is_some()
    );
    assert_eq!(late.hotspot_address(), Some(HOTSPOT));
}

/// A box in setup mode whose radio is joining a network that takes `JOIN_TAKES` to answer.
async fn joining_slowly() -> (Harness, Arc<Late>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let late = Arc::new(Late {
        present: true.into(),
        join_takes: JOIN_TAKES,
        radio: Simulated::new(
            &["Home".to_string()],
            Some(HOTSPOT),
            Some(Secret::new(PASSPHRASE.to_string())),
            dir.path(),
        ),
    });
    let web = vec![SocketAddr::from(([0, 0, 0, 0], 8080))];
    let h = start_with(true, web, late.clone());
    settle().await;
    assert_eq!(late.hotspot_address(), Some(HOTSPOT));
    let passphrase = Secret::new(PASSPHRASE.to_string());
    let joining = h
        .control
        .join("Home", &passphrase)
        .await
        .expect("loop runs");
    assert_eq!(joining, Ok(Joining::AfterHotspot));
    // Past the handover's grace: the hotspot is down and the join has begun.
    tokio::time::sleep(HANDOVER_GRACE + Duration::from_millis(1)).await;
    settle().await;
    assert_eq!(late.hotspot_address(), None);
    (h, late, dir)
}

const JOIN_TAKES: Duration = Duration::from_secs(40);

/// Time is paused and advances to the next timer whenever every task waits, so a stop that
/// waited for the join would come after this bound, which is well before the join's end.
const AT_ONCE: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn a_very_long_press_during_a_join_stops_the_box_at_once() {
    let (h, late, _dir) = joining_slowly().await;
    let started = Instant::now();
    let mode = tokio::time::timeout(AT_ONCE, h.ask(Command::Press(Press::VeryLong)))
        .await
        .expect("the press is answered before the join ends");
    assert_eq!(mode, Mode::ShuttingDown);
    assert!(h.shutdown.is_cancelled(), "the daemon drains meanwhile");
    assert_eq!(h.mode(), Mode::ShuttingDown);
    assert_eq!(h.status.borrow().setup, None);
    assert!(started.elapsed() < AT_ONCE);
    // The join is not cut off halfway; when it ends, the loop ends as a stop does.
    tokio::time::sleep(JOIN_TAKES).await;
    settle().await;
    assert_eq!(late.radio.joined().as_deref(), Some("Home"));
    assert_eq!(late.hotspot_address(), None);
    assert!(h.control.ask(Command::Setup(true)).await.is_err());
    assert_eq!(h.mode(), Mode::ShuttingDown);
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_during_a_join_is_published_at_once() {
    let (h, _late, _dir) = joining_slowly().await;
    h.shutdown.cancel();
    settle().await;
    assert_eq!(h.mode(), Mode::ShuttingDown);
    assert_eq!(h.status.borrow().setup, None);
}

#[tokio::test(start_paused = true)]
async fn other_commands_during_a_join_wait_for_it_and_keep_their_order() {
    let (h, late, _dir) = joining_slowly().await;
    let control = h.control.clone();
    let asked = tokio::spawn(async move {
        let touched = control.ask(Command::Touch).await;
        let left = control.ask(Command::Setup(false)).await;
        (touched, left)
    });
    settle().await;
    assert!(!asked.is_finished(), "answered only once the join is done");
    assert_eq!(h.mode(), Mode::Setup);
    let (touched, left) = asked.await.expect("asker");
    assert_eq!(touched.expect("loop runs"), Mode::Setup);
    assert_eq!(left.expect("loop runs"), Mode::Normal);
    assert_eq!(late.radio.joined().as_deref(), Some("Home"));
    assert!(!h.shutdown.is_cancelled());
}
