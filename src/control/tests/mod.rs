//! The loop's commands, its setup timer and the shutdown token, on a wired box.

use super::*;

const TIMEOUT: Duration = crate::limits::SETUP_IDLE_TIMEOUT;

struct Harness {
    control: Control,
    status: watch::Receiver<Status>,
    shutdown: CancellationToken,
}

fn start(first_start: bool) -> Harness {
    let web = vec![SocketAddr::from(([127, 0, 0, 1], 8080))];
    start_with(first_start, web, Arc::new(crate::network::Wired))
}

fn start_with(first_start: bool, web: Vec<SocketAddr>, network: Arc<dyn Network>) -> Harness {
    let (status, receiver) = watch::channel(Status::default());
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let control = spawn(
        status,
        first_start,
        web,
        network,
        shutdown.clone(),
        &tracker,
    );
    Harness {
        control,
        status: receiver,
        shutdown,
    }
}

impl Harness {
    async fn ask(&self, command: Command) -> Mode {
        self.control.ask(command).await.expect("loop runs")
    }

    fn mode(&self) -> Mode {
        let status = self.status.borrow();
        assert_eq!(status.setup_mode, status.mode == Mode::Setup);
        status.mode
    }
}

/// Lets the loop run until it waits again (time is paused, so no timer fires by itself).
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn each_setup_mode_has_its_own_code_and_leaving_withdraws_it() {
    let h = start(false);
    assert_eq!(h.ask(Command::Setup(true)).await, Mode::Setup);
    let first = h.status.borrow().setup.clone().expect("setup info");
    let code = first.code.clone().expect("a code");
    assert_eq!(code.len(), crate::limits::SETUP_CODE_LENGTH);
    assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)));
    assert_eq!(first.url, "http://127.0.0.1:8080/setup");
    // `letterbox setup` again keeps the code the panel already shows.
    h.ask(Command::Setup(true)).await;
    assert_eq!(h.status.borrow().setup.as_ref(), Some(&first));
    h.ask(Command::Setup(false)).await;
    assert_eq!(h.status.borrow().setup, None);
    h.ask(Command::Setup(true)).await;
    let second = h.status.borrow().setup.clone().expect("setup info");
    assert_ne!(second.code, first.code);
}

#[tokio::test(start_paused = true)]
async fn first_start_without_accounts_is_setup_mode() {
    let fresh = start(true);
    settle().await;
    assert_eq!(fresh.mode(), Mode::Setup);
    let set_up = start(false);
    settle().await;
    assert_eq!(set_up.mode(), Mode::Normal);
}

#[tokio::test(start_paused = true)]
async fn a_long_press_toggles_setup_mode_and_a_short_one_does_not() {
    let h = start(false);
    assert_eq!(h.ask(Command::Press(Press::Short)).await, Mode::Normal);
    assert_eq!(h.ask(Command::Press(Press::Long)).await, Mode::Setup);
    assert_eq!(h.mode(), Mode::Setup);
    assert_eq!(h.ask(Command::Press(Press::Short)).await, Mode::Setup);
    assert_eq!(h.ask(Command::Press(Press::Long)).await, Mode::Normal);
    assert_eq!(h.ask(Command::Setup(true)).await, Mode::Setup);
    assert_eq!(h.ask(Command::Setup(true)).await, Mode::Setup);
    assert_eq!(h.ask(Command::Setup(false)).await, Mode::Normal);
    assert_eq!(h.ask(Command::Setup(false)).await, Mode::Normal);
}

#[tokio::test(start_paused = true)]
async fn setup_mode_ends_after_fifteen_quiet_minutes() {
    let h = start(true);
    settle().await;
    tokio::time::sleep(TIMEOUT - Duration::from_secs(1)).await;
    settle().await;
    assert_eq!(h.mode(), Mode::Setup);
    tokio::time::sleep(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(h.mode(), Mode::Normal);
    // A request outside setup mode does not bring it back.
    assert_eq!(h.ask(Command::Touch).await, Mode::Normal);
}

#[tokio::test(start_paused = true)]
async fn a_request_extends_setup_mode() {
    let h = start(false);
    assert_eq!(h.ask(Command::Setup(true)).await, Mode::Setup);
    tokio::time::sleep(TIMEOUT - Duration::from_secs(60)).await;
    assert_eq!(h.ask(Command::Touch).await, Mode::Setup);
    // Past the first deadline, within the one the request set.
    tokio::time::sleep(Duration::from_secs(120)).await;
    settle().await;
    assert_eq!(h.mode(), Mode::Setup);
    tokio::time::sleep(TIMEOUT).await;
    settle().await;
    assert_eq!(h.mode(), Mode::Normal);
}

#[tokio::test(start_paused = true)]
async fn a_very_long_press_publishes_shutting_down_and_stops_the_daemon() {
    let h = start(true);
    assert_eq!(
        h.ask(Command::Press(Press::VeryLong)).await,
        Mode::ShuttingDown
    );
    assert!(h.shutdown.is_cancelled());
    assert_eq!(h.mode(), Mode::ShuttingDown);
    // The loop has ended: later commands are refused, not lost silently.
    settle().await;
    assert!(h.control.ask(Command::Setup(true)).await.is_err());
    assert_eq!(h.mode(), Mode::ShuttingDown);
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_from_outside_is_published_too() {
    let h = start(false);
    settle().await;
    h.shutdown.cancel();
    settle().await;
    assert_eq!(h.mode(), Mode::ShuttingDown);
    let h = start(false);
    assert_eq!(h.ask(Command::Shutdown).await, Mode::ShuttingDown);
    assert!(h.shutdown.is_cancelled());
}

mod hotspot;
