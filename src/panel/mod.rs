//! The status glance: pages drawn from the status value onto an SSD1306 OLED or an HD44780
//! character LCD (or, with no hardware, into `<data_dir>/panel.png` or the log), driven by
//! the button.
//!
//! - `view`: what a screen says, decided once for every display (`view(screen, status, now)`).
//! - `pages`: the SSD1306 renderer, a view to a `Frame`; `frame` the 1-bit framebuffer and
//!   its PNG form; `icons` 8×8 pictures for the 128×32 panel.
//! - `text`: the character renderer, a view to rows of characters (16×2, 20×4, terminal).
//! - `oled`, `lcd`: the two chips over I2C; `attach` keeps either going (retry, hot-plug);
//!   `displays` puts each behind `Display`, with the simulated ones (PNG file, log).
//! - `probe`: what answers on an I2C bus (`letterbox panel --probe`).
//! - `system`: addresses, temperature, certificate expiry and alerts for the status value.
//!
//! This module holds the appliance logic: which screen shows (alerts first, until a press),
//! what a press does, and the burn-in care (dim, then off, after idle; a one-pixel shift now
//! and then on the OLED; the backlight off on the LCD). It talks to a `Display` and never
//! knows whether it is real.

pub mod attach;
pub mod displays;
pub mod frame;
pub mod icons;
pub mod lcd;
pub mod lcd_picture;
pub mod oled;
pub mod pages;
pub mod probe;
pub mod system;
pub mod text;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::board::{DisplaySize, Hardware, PanelKind, PanelSettings};
use crate::button::{self, ButtonEvent, Press};
use crate::config::Config;
use crate::control::{Command, Control};
use crate::status::{Mode, Status};
pub use frame::{Frame, PanelSize};
pub use pages::{draw, render};
pub use text::{TextScreen, TextSize, layout};
pub use view::{Page, Screen, View, view};

/// How brightly the panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Light {
    Full,
    Dim,
    Off,
}

/// Where views go: the SSD1306, the LCD, a PNG file or the log. Each display renders the
/// view itself. Calls may block briefly (I2C, a file write); the panel task runs them off
/// the async threads.
pub trait Display: Send + 'static {
    /// Shows `view` at `light`, moved by `shift` pixels where the display has pixels.
    /// Failures are the display's own business: it logs them and retries; the appliance
    /// goes on.
    fn show(&mut self, view: &View, light: Light, shift: (u32, u32));
    /// Called about once a second, for retries and hot-plug checks.
    fn tick(&mut self) {}
    /// Dark, for shutdown.
    fn blank(&mut self);
}

/// Burn-in care and timing.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub dim_after: Duration,
    pub off_after: Duration,
    pub shift_every: Duration,
}

impl Timing {
    pub fn from_settings(settings: &PanelSettings) -> Timing {
        Timing {
            dim_after: settings.dim_after.duration(),
            off_after: settings.off_after.duration(),
            shift_every: settings.shift_every.duration(),
        }
    }
}

/// What a button event asks of the rest of the appliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    /// A press that may change the mode: the control loop decides (`control`).
    Control(Press),
}

/// The panel's state: the page, acknowledged alerts, the hold countdown, idle time.
#[derive(Debug)]
pub struct PanelState {
    page: Page,
    acknowledged: Vec<&'static str>,
    hold: Option<u64>,
    last_activity: Instant,
    started: Instant,
    timing: Timing,
}

impl PanelState {
    pub fn new(timing: Timing, now: Instant) -> PanelState {
        PanelState {
            page: Page::Ports,
            acknowledged: Vec::new(),
            hold: None,
            last_activity: now,
            started: now,
            timing,
        }
    }

    /// The screen for this status: shutdown, then the hold countdown, then the setup page while
    /// it is the current page in setup mode, then alerts not yet acknowledged, then the current
    /// page.
    pub fn screen(&self, status: &Status) -> Screen {
        if status.mode == Mode::ShuttingDown {
            return Screen::ShuttingDown;
        }
        if let Some(seconds) = self.hold {
            return Screen::Hold { seconds };
        }
        // A box being set up often has no Internet yet, so health alerts are expected then; the
        // setup page (hotspot words, address, why a join failed) is what the person needs.
        // Alerts follow one press later.
        if status.setup_mode && self.page == Page::Setup {
            return Screen::Page(Page::Setup);
        }
        let open: Vec<_> = status
            .alerts
            .iter()
            .filter(|a| !self.acknowledged.contains(&a.key()))
            .collect();
        if let Some(alert) = open.first() {
            let index = status.alerts.len() - open.len() + 1;
            return Screen::Alert {
                alert: (*alert).clone(),
                index,
                count: status.alerts.len(),
            };
        }
        match self.page {
            Page::Setup if !status.setup_mode => Screen::Page(Page::Ports),
            page => Screen::Page(page),
        }
    }

    pub fn light(&self, status: &Status, now: Instant) -> Light {
        let idle = now.saturating_duration_since(self.last_activity);
        let alert_open = matches!(self.screen(status), Screen::Alert { .. });
        if status.mode == Mode::ShuttingDown || self.hold.is_some() || idle < self.timing.dim_after
        {
            Light::Full
        } else if idle < self.timing.off_after || alert_open || status.setup_mode {
            // An open alert or setup mode keeps the panel readable (dimmed), never dark.
            Light::Dim
        } else {
            Light::Off
        }
    }

    /// The burn-in shift: (0,0), (1,0), (1,1), (0,1) in turn.
    pub fn shift(&self, now: Instant) -> (u32, u32) {
        let period = self.timing.shift_every.as_secs().max(1);
        let step = now.saturating_duration_since(self.started).as_secs() / period;
        [(0, 0), (1, 0), (1, 1), (0, 1)][(step % 4) as usize]
    }

    /// The status changed: new alerts and setup mode wake the panel.
    pub fn on_status(&mut self, old: &Status, new: &Status, now: Instant) {
        let keys: Vec<&'static str> = new.alerts.iter().map(|a| a.key()).collect();
        // An alert that cleared may be shown again when it comes back.
        self.acknowledged.retain(|k| keys.contains(k));
        let fresh = new
            .alerts
            .iter()
            .any(|a| !old.alerts.iter().any(|o| o.key() == a.key()));
        if fresh {
            self.last_activity = now;
        }
        if new.setup_mode && !old.setup_mode {
            self.page = Page::Setup;
            self.last_activity = now;
        }
        if !new.setup_mode && self.page == Page::Setup {
            self.page = Page::Ports;
        }
    }

    pub fn on_button(&mut self, event: ButtonEvent, status: &Status, now: Instant) -> Action {
        let was_lit = self.light(status, now) == Light::Full;
        self.last_activity = now;
        match event {
            ButtonEvent::Held(seconds) => {
                self.hold = Some(seconds);
                Action::None
            }
            ButtonEvent::Press(Press::Short) => {
                self.hold = None;
                if !was_lit {
                    return Action::None; // the press only wakes the panel
                }
                match self.screen(status) {
                    Screen::Alert { alert, .. } => self.acknowledged.push(alert.key()),
                    Screen::Page(page) => self.page = page.next(status.setup_mode),
                    Screen::Hold { .. } | Screen::ShuttingDown => {}
                }
                Action::None
            }
            // Setup mode and shutdown are the control loop's to decide; the panel follows
            // the mode it publishes (`on_status`).
            ButtonEvent::Press(press @ (Press::Long | Press::VeryLong)) => {
                self.hold = None;
                Action::Control(press)
            }
        }
    }
}

/// What the rest of the daemon holds of the panel: the current view (for
/// `letterbox panel --png` and `--text`) and the way to press the virtual button.
#[derive(Clone)]
pub struct Handle {
    pub screen: watch::Receiver<View>,
    pub buttons: mpsc::Sender<ButtonEvent>,
}

/// Starts the panel, the button and the system-facts refresher under `tracker`.
pub fn spawn(
    configs: watch::Receiver<Arc<Config>>,
    status: watch::Sender<Status>,
    control: Control,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> Handle {
    // The hardware is as it was at the start; the status facts follow the settings.
    let config = configs.borrow().clone();
    let hardware = match crate::board::resolve(
        &config.board,
        &config.panel,
        &config.button,
        std::path::Path::new(crate::board::DEVICE_TREE_MODEL),
    ) {
        Ok(hardware) => hardware,
        Err(error) => {
            tracing::warn!(%error, "board unknown; simulating the panel and button");
            let (kind, size) = config.panel.simulated();
            Hardware::Simulated { kind, size }
        }
    };
    let (events_tx, events_rx) = mpsc::channel(16);
    if let Hardware::Board(board) = &hardware {
        tracing::info!(board = %board.name, panel = board.panel.kind.name(), i2c = %board.panel.i2c.display(), "panel and button on the board");
        let (levels_tx, levels_rx) = mpsc::channel(16);
        tracker.spawn(button::gpio::watch(
            board.button.clone(),
            levels_tx,
            shutdown.clone(),
        ));
        tracker.spawn(button::classify(
            levels_rx,
            events_tx.clone(),
            button::DEBOUNCE,
            shutdown.clone(),
        ));
    }
    let display = displays::for_hardware(&config, &hardware);
    let first = view(
        &Screen::Page(Page::Ports),
        &status.borrow(),
        crate::store::now_unix(),
    );
    let (screen_tx, screen_rx) = watch::channel(first);
    tracker.spawn(system::refresh(configs, status.clone(), shutdown.clone()));
    tracker.spawn(run(
        display,
        Timing::from_settings(&config.panel),
        status.subscribe(),
        control,
        events_rx,
        screen_tx,
        shutdown,
    ));
    Handle {
        screen: screen_rx,
        buttons: events_tx,
    }
}

/// The panel loop: renders on every status change, button event and second, until shutdown.
pub async fn run(
    display: Box<dyn Display>,
    timing: Timing,
    mut status_rx: watch::Receiver<Status>,
    control: Control,
    mut events: mpsc::Receiver<ButtonEvent>,
    screen: watch::Sender<View>,
    shutdown: CancellationToken,
) {
    let mut state = PanelState::new(timing, Instant::now());
    let mut seen = status_rx.borrow_and_update().clone();
    let mut display = Some(display);
    let mut shown: Option<(View, Light, (u32, u32))> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut ticked = false;
        tokio::select! {
            changed = status_rx.changed() => {
                if changed.is_err() {
                    break;
                }
                let new = status_rx.borrow_and_update().clone();
                state.on_status(&seen, &new, Instant::now());
                seen = new;
            }
            event = events.recv() => {
                let Some(event) = event else { break };
                match state.on_button(event, &seen, Instant::now()) {
                    Action::None => {}
                    Action::Control(press) => {
                        tracing::info!(?press, "button press for the control loop");
                        if control.tell(Command::Press(press)).is_err() {
                            tracing::warn!(?press, "the control loop is busy or stopped; press ignored");
                        }
                    }
                }
            }
            _ = tick.tick() => ticked = true,
            () = shutdown.cancelled() => break,
        }
        let now = Instant::now();
        let current = view(&state.screen(&seen), &seen, crate::store::now_unix());
        screen.send_if_modified(|shared| {
            let changed = *shared != current;
            *shared = current.clone();
            changed
        });
        let wanted = (current, state.light(&seen, now), state.shift(now));
        if shown.as_ref() != Some(&wanted) {
            let (picture, light, shift) = wanted.clone();
            display = on_display(display, move |d| d.show(&picture, light, shift)).await;
            shown = Some(wanted);
        } else if ticked {
            display = on_display(display, |d| d.tick()).await;
        }
    }
    // Shutting down: say so while the services drain, then go dark.
    let last = view(&Screen::ShuttingDown, &seen, crate::store::now_unix());
    screen.send_replace(last.clone());
    display = on_display(display, move |d| d.show(&last, Light::Full, (0, 0))).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    on_display(display, |d| d.blank()).await;
}

/// The panel kind and size the config leads to (the board's, or `[panel]` when simulated).
pub fn configured(config: &Config) -> (PanelKind, DisplaySize) {
    match crate::board::resolve(
        &config.board,
        &config.panel,
        &config.button,
        std::path::Path::new(crate::board::DEVICE_TREE_MODEL),
    ) {
        Ok(Hardware::Board(board)) => (board.panel.kind, board.panel.size),
        Ok(Hardware::Simulated { kind, size }) => (kind, size),
        Err(_) => config.panel.simulated(),
    }
}

/// `letterbox button`: a virtual press on the running daemon's button.
pub async fn press(handle: Option<&Handle>, press: Press) -> Result<(), String> {
    let handle = handle.ok_or("the daemon is not running (start it with `letterbox run`)")?;
    handle
        .buttons
        .send(ButtonEvent::Press(press))
        .await
        .map_err(|_| "the panel has stopped".to_string())
}

/// `letterbox panel`: what the panel shows now, as `{kind, size, bits, text_size, text,
/// codes}`: the OLED's pixels (at the configured size, or 128×64 for a character panel) and
/// the characters (at the configured size, or 20×4 for an OLED; framed text and the LCD's
/// codes), both from the one view.
/// Offline, the first page drawn from the offline status.
pub fn picture(handle: Option<&Handle>, config: &Config, status: &Status) -> serde_json::Value {
    use base64::Engine;
    let current = match handle {
        Some(handle) => handle.screen.borrow().clone(),
        None => view(&Screen::Page(Page::Ports), status, crate::store::now_unix()),
    };
    let (kind, size) = configured(config);
    let (pixels, chars) = match size {
        DisplaySize::Pixels(pixels) => (pixels, TextSize::C20x4),
        DisplaySize::Chars(chars) => (PanelSize::default(), chars),
    };
    let frame = draw(&current, pixels);
    serde_json::json!({
        "kind": kind,
        "size": frame.size(),
        "bits": base64::engine::general_purpose::STANDARD.encode(frame.bytes()),
        "text_size": chars,
        "text": layout(&current, chars).framed(),
        "codes": base64::engine::general_purpose::STANDARD.encode(layout(&current, chars).codes()),
    })
}

/// The frame in a `picture` answer.
pub fn frame_of_picture(value: &serde_json::Value) -> Result<Frame, String> {
    use base64::Engine;
    let size: PanelSize =
        serde_json::from_value(value["size"].clone()).map_err(|e| format!("panel size: {e}"))?;
    let bits = base64::engine::general_purpose::STANDARD
        .decode(value["bits"].as_str().unwrap_or(""))
        .map_err(|e| format!("panel picture: {e}"))?;
    Frame::from_bytes(size, &bits).map_err(|e| e.to_string())
}

/// The character screen in a `picture` answer.
pub fn text_of_picture(value: &serde_json::Value) -> Result<TextScreen, String> {
    use base64::Engine;
    let size: TextSize = serde_json::from_value(value["text_size"].clone())
        .map_err(|e| format!("panel text size: {e}"))?;
    let codes = base64::engine::general_purpose::STANDARD
        .decode(value["codes"].as_str().unwrap_or(""))
        .map_err(|e| format!("panel characters: {e}"))?;
    TextScreen::from_codes(size, &codes).ok_or_else(|| "panel characters: wrong length".into())
}

/// Runs a display call on the blocking pool (I2C and file writes block).
async fn on_display(
    display: Option<Box<dyn Display>>,
    call: impl FnOnce(&mut dyn Display) + Send + 'static,
) -> Option<Box<dyn Display>> {
    let mut display = display?;
    tokio::task::spawn_blocking(move || {
        call(display.as_mut());
        display
    })
    .await
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Alert, Storage};

    fn timing() -> Timing {
        Timing {
            dim_after: Duration::from_secs(60),
            off_after: Duration::from_secs(600),
            shift_every: Duration::from_secs(120),
        }
    }

    fn low_storage() -> Alert {
        Alert::StorageLow {
            free_bytes: 1,
            total_bytes: 100,
        }
    }

    #[test]
    fn short_presses_step_pages_and_a_press_on_a_dark_panel_only_wakes() {
        let start = Instant::now();
        let mut state = PanelState::new(timing(), start);
        let status = Status::default();
        let short = ButtonEvent::Press(Press::Short);
        assert_eq!(state.screen(&status), Screen::Page(Page::Ports));
        state.on_button(short, &status, start);
        assert_eq!(state.screen(&status), Screen::Page(Page::Mail));
        let later = start + Duration::from_secs(700);
        assert_eq!(state.light(&status, later), Light::Off);
        state.on_button(short, &status, later);
        assert_eq!(state.screen(&status), Screen::Page(Page::Mail));
        assert_eq!(state.light(&status, later), Light::Full);
        assert_eq!(
            state.light(&status, later + Duration::from_secs(61)),
            Light::Dim
        );
    }

    #[test]
    fn alerts_take_over_until_acknowledged_and_return_when_raised_again() {
        let start = Instant::now();
        let mut state = PanelState::new(timing(), start);
        let calm = Status::default();
        let alarmed = Status {
            alerts: vec![low_storage()],
            storage: Some(Storage {
                total_bytes: 100,
                free_bytes: 1,
            }),
            ..Status::default()
        };
        state.on_status(&calm, &alarmed, start);
        assert!(matches!(
            state.screen(&alarmed),
            Screen::Alert {
                index: 1,
                count: 1,
                ..
            }
        ));
        // Idle for long: the alert keeps the panel dimmed, not dark.
        assert_eq!(
            state.light(&alarmed, start + Duration::from_secs(3600)),
            Light::Dim
        );
        state.on_button(ButtonEvent::Press(Press::Short), &alarmed, start);
        assert_eq!(state.screen(&alarmed), Screen::Page(Page::Ports));
        state.on_status(&alarmed, &calm, start);
        state.on_status(&calm, &alarmed, start);
        assert!(matches!(state.screen(&alarmed), Screen::Alert { .. }));
    }

    #[test]
    fn long_and_very_long_presses_go_to_the_control_loop_and_the_panel_follows_the_mode() {
        let start = Instant::now();
        let mut state = PanelState::new(timing(), start);
        let status = Status::default();
        assert_eq!(
            state.on_button(ButtonEvent::Held(4), &status, start),
            Action::None
        );
        assert_eq!(state.screen(&status), Screen::Hold { seconds: 4 });
        assert_eq!(
            state.on_button(ButtonEvent::Press(Press::Long), &status, start),
            Action::Control(Press::Long)
        );
        // The press alone changes nothing; the published mode does.
        assert_eq!(state.screen(&status), Screen::Page(Page::Ports));
        let setup = Status {
            mode: Mode::Setup,
            setup_mode: true,
            ..Status::default()
        };
        state.on_status(&status, &setup, start);
        assert_eq!(state.screen(&setup), Screen::Page(Page::Setup));
        assert_eq!(
            state.on_button(ButtonEvent::Press(Press::VeryLong), &setup, start),
            Action::Control(Press::VeryLong)
        );
        let stopping = Status {
            mode: Mode::ShuttingDown,
            ..Status::default()
        };
        assert_eq!(state.screen(&stopping), Screen::ShuttingDown);
    }

    #[test]
    fn in_setup_mode_the_setup_page_comes_before_alerts_and_a_press_shows_them() {
        let start = Instant::now();
        let mut state = PanelState::new(timing(), start);
        let calm = Status::default();
        let setup = Status {
            mode: Mode::Setup,
            setup_mode: true,
            alerts: vec![low_storage()],
            ..Status::default()
        };
        state.on_status(&calm, &setup, start);
        assert_eq!(state.screen(&setup), Screen::Page(Page::Setup));
        state.on_button(ButtonEvent::Press(Press::Short), &setup, start);
        assert!(matches!(state.screen(&setup), Screen::Alert { .. }));
    }

    #[test]
    fn the_shift_walks_a_one_pixel_square() {
        let start = Instant::now();
        let state = PanelState::new(timing(), start);
        let shifts: Vec<_> = (0..5)
            .map(|n| state.shift(start + Duration::from_secs(120 * n)))
            .collect();
        assert_eq!(shifts, vec![(0, 0), (1, 0), (1, 1), (0, 1), (0, 0)]);
    }
}
