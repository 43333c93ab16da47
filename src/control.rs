//! The one owner of the appliance's mode: normal, setup or shutting down.
//!
//! The button (through the panel, which still turns short presses into "wake" and "next
//! page"), the CLI over the control socket, first start and later the setup page send
//! commands to one loop; it alone decides and publishes the mode in the status value. Nothing
//! else writes `Status::mode` or `Status::setup_mode`, so two sources can never disagree.
//!
//! Setup mode starts on first start with no account, on a long press or with `letterbox
//! setup`; it ends with `letterbox setup --off`, on a long press while in it, or after
//! `SETUP_IDLE_TIMEOUT` without a request (`Command::Touch`). A very long press or a shutdown
//! command publishes "shutting down" and cancels the daemon's token; the process then exits
//! with status 0, which the image's init takes as "power off".
//!
//! Each time setup mode starts the loop makes a new one-time code for the setup page (asked
//! for over a wired network, where no Wi-Fi passphrase guards the page) and publishes it with
//! the page's address in `Status::setup`, for the panel and `letterbox status`; leaving setup
//! mode withdraws both.
//!
//! The loop also owns the network state ([`radio`]): the setup hotspot goes up and down with
//! setup mode, and the wizard's join goes through [`Control::join`]. While the radio works (a
//! scan and raise, or a join: at most `WIFI_JOIN_TIMEOUT` and a little) other commands wait
//! their turn, but a stop does not: a very long press, `Command::Shutdown` or the daemon's
//! token publishes "shutting down" and starts the drain at once (a person holding the button
//! sees it take, not 45 s later), and the radio's work is left to end by itself, not cut off
//! halfway through a hotspot script; the hotspot then goes down if the daemon's drain leaves
//! time for it.

mod inbox;
mod radio;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::button::Press;
use crate::network::{Network, NetworkError};
use crate::secret::Secret;
use crate::status::{Mode, SetupInfo, Status};

use inbox::Inbox;
use radio::{Entered, Radio, Shown};
pub use radio::{HANDOVER_GRACE, Joining};

/// While setup mode waits for a radio that has not appeared yet (a Pi's Wi-Fi firmware loads
/// a few seconds after the daemon starts), how often it looks again; it stops looking after
/// `WIFI_APPEAR_TIMEOUT`.
const RADIO_POLL: Duration = Duration::from_secs(2);

/// Commands waiting for the loop; senders wait when it is full (the loop never blocks long).
const QUEUE: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// A press of the button (real or `letterbox button`): long toggles setup mode, very
    /// long shuts down, short changes nothing here.
    Press(Press),
    /// `letterbox setup` (true) and `letterbox setup --off` (false); the wizard's end later.
    Setup(bool),
    /// A request reached the setup page: setup mode stays on for another full timeout.
    Touch,
    /// Stop the daemon cleanly.
    Shutdown,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("the daemon is shutting down")]
    Stopped,
}

/// Why the mode changed, for the log.
#[derive(Debug, Clone, Copy)]
enum Cause {
    FirstStart,
    Command(Command),
    Idle,
    /// The daemon's token was cancelled (SIGTERM, or a command before).
    Stopping,
}

enum Envelope {
    Command {
        command: Command,
        reply: Option<oneshot::Sender<Mode>>,
    },
    Join {
        ssid: String,
        passphrase: Secret<String>,
        reply: oneshot::Sender<Result<Joining, NetworkError>>,
    },
}

/// The way to send the loop commands; cheap to clone.
#[derive(Clone)]
pub struct Control {
    commands: mpsc::Sender<Envelope>,
}

impl Control {
    /// Sends `command` and waits until its effect is published; returns the mode then.
    pub async fn ask(&self, command: Command) -> Result<Mode, ControlError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Envelope::Command {
                command,
                reply: Some(reply),
            })
            .await
            .map_err(|_| ControlError::Stopped)?;
        answer.await.map_err(|_| ControlError::Stopped)
    }

    /// Joins the network the wizard named. With the hotspot up the answer comes at once
    /// ([`Joining::AfterHotspot`]) and the outcome later in `Status::setup`; otherwise it
    /// comes when the join is done.
    pub async fn join(
        &self,
        ssid: &str,
        passphrase: &Secret<String>,
    ) -> Result<Result<Joining, NetworkError>, ControlError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Envelope::Join {
                ssid: ssid.to_string(),
                passphrase: passphrase.clone(),
                reply,
            })
            .await
            .map_err(|_| ControlError::Stopped)?;
        answer.await.map_err(|_| ControlError::Stopped)
    }

    /// Sends `command` without waiting for its effect (the panel's loop must not wait on us).
    pub fn tell(&self, command: Command) -> Result<(), ControlError> {
        self.commands
            .try_send(Envelope::Command {
                command,
                reply: None,
            })
            .map_err(|_| ControlError::Stopped)
    }
}

/// Starts the loop under `tracker`. `first_start` is true when the store has no account yet:
/// the box starts in setup mode. `web` is where the setup page listens (for the address the
/// panel shows); `network` is the radio the loop alone raises the hotspot on and joins with.
pub fn spawn(
    status: watch::Sender<Status>,
    first_start: bool,
    web: Vec<SocketAddr>,
    network: Arc<dyn Network>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> Control {
    let (commands, receiver) = mpsc::channel(QUEUE);
    let owner = Owner {
        status,
        idle_timeout: crate::limits::SETUP_IDLE_TIMEOUT,
        setup_until: None,
        radio: Radio::new(network, web.clone()),
        radio_poll: None,
        web,
        shutdown,
    };
    tracker.spawn(run(owner, receiver, first_start));
    Control { commands }
}

/// The loop: one command at a time, the setup timer, and the daemon's shutdown token.
async fn run(mut owner: Owner, commands: mpsc::Receiver<Envelope>, first_start: bool) {
    let shutdown = owner.shutdown.clone();
    let mut inbox = Inbox::new(commands, owner.status.clone(), shutdown.clone());
    if first_start {
        inbox
            .while_busy(owner.set(Mode::Setup, Cause::FirstStart))
            .await;
    }
    while !shutdown.is_cancelled() {
        let next = match inbox.deferred.pop_front() {
            Some(envelope) => Next::Envelope(envelope),
            None => {
                let deadline = owner.setup_until;
                tokio::select! {
                    envelope = inbox.commands.recv() => match envelope {
                        None => break,
                        Some(envelope) => Next::Envelope(envelope),
                    },
                    () = sleep_until(deadline) => Next::Idle,
                    () = sleep_until(owner.radio_poll.map(|poll| poll.next)) => Next::PollRadio,
                    () = shutdown.cancelled() => break,
                }
            }
        };
        inbox.while_busy(owner.act(next)).await;
    }
    // However the daemon stops (a press, SIGTERM), the status says so while it drains.
    owner.set(Mode::ShuttingDown, Cause::Stopping).await;
}

/// What the loop does next.
enum Next {
    Envelope(Envelope),
    /// Setup mode's time is up.
    Idle,
    /// Look for a radio that was not there yet.
    PollRadio,
}

/// Setup mode found no radio; it looks again at `next`, up to `until`.
#[derive(Debug, Clone, Copy)]
struct RadioPoll {
    next: Instant,
    until: Instant,
    /// A long press started setup mode: the hotspot is raised even with an uplink.
    asked: bool,
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

struct Owner {
    status: watch::Sender<Status>,
    idle_timeout: Duration,
    /// While in setup mode: when it ends unless a request comes first.
    setup_until: Option<Instant>,
    radio: Radio,
    /// In setup mode without a radio yet: when to look for it again.
    radio_poll: Option<RadioPoll>,
    web: Vec<SocketAddr>,
    shutdown: CancellationToken,
}

impl Owner {
    fn mode(&self) -> Mode {
        self.status.borrow().mode
    }

    /// Does what the loop took up next, answering whoever asked.
    async fn act(&mut self, next: Next) {
        match next {
            Next::Envelope(Envelope::Command { command, reply }) => {
                let mode = self.handle(command).await;
                if let Some(reply) = reply {
                    let _ = reply.send(mode);
                }
            }
            Next::Envelope(Envelope::Join {
                ssid,
                passphrase,
                reply,
            }) => self.join(&ssid, &passphrase, reply).await,
            Next::Idle => self.set(Mode::Normal, Cause::Idle).await,
            Next::PollRadio => self.poll_radio().await,
        }
    }

    async fn handle(&mut self, command: Command) -> Mode {
        let cause = Cause::Command(command);
        match (command, self.mode()) {
            // Once shutting down, nothing brings the box back.
            (_, Mode::ShuttingDown) => {}
            (Command::Press(Press::Short), _) => {}
            (Command::Press(Press::Long), Mode::Normal) | (Command::Setup(true), _) => {
                self.set(Mode::Setup, cause).await
            }
            (Command::Press(Press::Long), Mode::Setup) | (Command::Setup(false), _) => {
                self.set(Mode::Normal, cause).await
            }
            (Command::Touch, Mode::Setup) => {
                self.setup_until = Some(Instant::now() + self.idle_timeout);
            }
            (Command::Touch, Mode::Normal) => {}
            (Command::Press(Press::VeryLong) | Command::Shutdown, _) => {
                self.set(Mode::ShuttingDown, cause).await;
                self.shutdown.cancel();
            }
        }
        self.mode()
    }

    /// The wizard named a network: join it (see [`radio`]) and publish how it went.
    async fn join(
        &mut self,
        ssid: &str,
        passphrase: &Secret<String>,
        reply: oneshot::Sender<Result<Joining, NetworkError>>,
    ) {
        if !self.radio.is_up() {
            let outcome = self.radio.join_now(ssid, passphrase).await;
            let problem = outcome
                .as_ref()
                .err()
                .map(|error| crate::status::JoinProblem::of(ssid, error));
            self.publish_setup(|setup| setup.problem = problem);
            let _ = reply.send(outcome.map(|()| Joining::Joined));
            return;
        }
        let _ = reply.send(Ok(Joining::AfterHotspot));
        let outcome = self.radio.join_over_hotspot(ssid, passphrase).await;
        let wired = self.wired_url();
        self.publish_setup(|setup| match outcome {
            Ok(()) => {
                tracing::info!(
                    ssid,
                    "Wi-Fi: joined from the setup page; the hotspot stays down"
                );
                setup.problem = None;
                show(setup, None, wired);
            }
            Err((problem, shown)) => {
                setup.problem = Some(problem);
                show(setup, shown, wired);
            }
        });
    }

    /// Publishes a raised hotspot, or keeps looking for a radio that is not there yet.
    fn radio_entered(&mut self, entered: Entered, asked: bool, until: Instant) {
        self.radio_poll = None;
        match entered {
            Entered::Raised(shown) => {
                let wired = self.wired_url();
                self.publish_setup(|setup| show(setup, Some(shown), wired));
            }
            Entered::NoHotspot => {}
            Entered::NoRadio if Instant::now() < until => {
                self.radio_poll = Some(RadioPoll {
                    next: Instant::now() + RADIO_POLL,
                    until,
                    asked,
                });
            }
            Entered::NoRadio => {
                tracing::info!("setup mode: no Wi-Fi radio; the setup page asks for the code")
            }
        }
    }

    /// Setup mode is on and the radio was not there: look again.
    async fn poll_radio(&mut self) {
        let Some(RadioPoll { until, asked, .. }) = self.radio_poll.take() else {
            return;
        };
        if self.mode() != Mode::Setup {
            return;
        }
        let entered = self.radio.enter(asked).await;
        self.radio_entered(entered, asked, until);
    }

    /// Changes the published setup information, if setup mode is on.
    fn publish_setup(&self, change: impl FnOnce(&mut SetupInfo)) {
        self.status.send_modify(|s| {
            if let Some(setup) = s.setup.as_mut() {
                change(setup);
            }
        });
    }

    fn wired_url(&self) -> String {
        crate::web::setup_url(&self.web, &crate::panel::system::addresses())
    }

    /// Publishes `mode` (only when it changes) and arms or clears the setup timer; raises
    /// the hotspot when setup mode starts and lowers it when it ends.
    async fn set(&mut self, mode: Mode, cause: Cause) {
        self.setup_until = match mode {
            // Entering setup mode again (`letterbox setup` while in it) restarts the timer.
            Mode::Setup => Some(Instant::now() + self.idle_timeout),
            Mode::Normal | Mode::ShuttingDown => None,
        };
        let entering = mode == Mode::Setup && self.mode() != Mode::Setup;
        let setup = entering.then(|| self.setup_info());
        let changed = self.status.send_if_modified(|s| {
            let changed = s.mode != mode;
            s.mode = mode;
            s.setup_mode = mode == Mode::Setup;
            if let Some(setup) = setup {
                s.setup = setup;
            } else if mode != Mode::Setup {
                s.setup = None;
            }
            changed
        });
        if entering {
            let asked = matches!(cause, Cause::Command(Command::Press(Press::Long)));
            let entered = self.radio.enter(asked).await;
            let until = Instant::now() + crate::limits::WIFI_APPEAR_TIMEOUT;
            self.radio_entered(entered, asked, until);
        } else if mode != Mode::Setup {
            self.radio_poll = None;
            self.radio.leave().await;
        }
        if changed {
            match cause {
                Cause::FirstStart => tracing::info!(?mode, "no account yet: setup mode"),
                Cause::Command(command) => tracing::info!(?mode, ?command, "mode changed"),
                Cause::Stopping => tracing::info!(?mode, "the daemon is stopping"),
                Cause::Idle => tracing::info!(
                    ?mode,
                    minutes = self.idle_timeout.as_secs() / 60,
                    "setup mode ended: no request from the setup page"
                ),
            }
        }
    }

    /// What the panel shows for a new setup mode: where the page is and a new one-time code.
    /// Without a random source there is no code, and the setup page lets nobody in over a
    /// wired network (it says why).
    fn setup_info(&self) -> Option<SetupInfo> {
        let code = match one_time_code() {
            Ok(code) => Some(code),
            Err(error) => {
                tracing::error!(%error, "no one-time code for the setup page");
                None
            }
        };
        Some(SetupInfo {
            network: None,
            passphrase: None,
            url: self.wired_url(),
            code,
            problem: None,
        })
    }
}

/// Shows the hotspot (or, with `None`, the wired way in: the page's `wired` URL and the code).
fn show(setup: &mut SetupInfo, shown: Option<Shown>, wired: String) {
    match shown {
        Some(Shown {
            network,
            passphrase,
            url,
        }) => {
            setup.network = Some(network);
            setup.passphrase = Some(passphrase);
            setup.url = url;
        }
        None => {
            setup.network = None;
            setup.passphrase = None;
            setup.url = wired;
        }
    }
}

/// Letters and digits a person cannot confuse on a small display (no 0/O, 1/I/L, 5/S, 8/B).
const CODE_ALPHABET: &[u8] = b"2345679ACDEFGHJKMNPQRTUVWXYZ";

/// A one-time code of `limits::SETUP_CODE_LENGTH` characters from `CODE_ALPHABET`
/// (8 characters: 28^8, about 38 bits, against a throttle of a few guesses a minute).
fn one_time_code() -> Result<String, crate::secret::RandomError> {
    let alphabet = CODE_ALPHABET.len();
    let mut code = String::with_capacity(crate::limits::SETUP_CODE_LENGTH);
    while code.len() < crate::limits::SETUP_CODE_LENGTH {
        for byte in crate::secret::random_bytes::<16>()? {
            // Rejection sampling keeps every character equally likely.
            let byte = usize::from(byte);
            if byte < 256 - 256 % alphabet && code.len() < crate::limits::SETUP_CODE_LENGTH {
                code.push(char::from(CODE_ALPHABET[byte % alphabet]));
            }
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests;
