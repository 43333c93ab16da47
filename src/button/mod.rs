//! The one push button: debouncing and press classification in pure code (time is an input),
//! a task that feeds it from a line, and the GPIO character-device line itself (`gpio`).
//!
//! - short press (< 3 s): wake the panel / next page;
//! - long press (≥ 3 s, released before 10 s): enter setup mode;
//! - very long press (10 s held): flush the store and shut down; it fires while still held,
//!   after a countdown on the panel (`Held` events from 3 s on).
//!
//! A simulated button (`letterbox button short|long|verylong`) sends `Press` events straight
//! into the same channel, so nothing downstream knows which button it was.

pub mod gpio;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A level must stay this long before it counts (contact bounce is a few milliseconds).
pub const DEBOUNCE: Duration = Duration::from_millis(30);
pub const LONG_PRESS: Duration = Duration::from_secs(3);
pub const VERY_LONG_PRESS: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Press {
    Short,
    Long,
    #[serde(rename = "verylong")]
    VeryLong,
}

impl Press {
    pub fn of(held: Duration) -> Press {
        if held >= VERY_LONG_PRESS {
            Press::VeryLong
        } else if held >= LONG_PRESS {
            Press::Long
        } else {
            Press::Short
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonEvent {
    /// Still held, this many whole seconds (from 3 on): the panel counts down.
    Held(u64),
    Press(Press),
}

/// Debounce and classification. Feed it raw levels with `edge` and ask `poll` what happened;
/// `deadline` says when asking again can give a new answer.
#[derive(Debug)]
pub struct Classifier {
    debounce: Duration,
    /// The debounced level (true = pressed).
    stable: bool,
    /// The latest raw level and when it started.
    raw: bool,
    raw_since: Instant,
    pressed_at: Option<Instant>,
    held_reported: u64,
    very_long_fired: bool,
}

impl Classifier {
    pub fn new(debounce: Duration, now: Instant) -> Classifier {
        Classifier {
            debounce,
            stable: false,
            raw: false,
            raw_since: now,
            pressed_at: None,
            held_reported: 0,
            very_long_fired: false,
        }
    }

    /// The line went to `pressed` at `at`.
    pub fn edge(&mut self, at: Instant, pressed: bool) {
        if pressed != self.raw {
            self.raw = pressed;
            self.raw_since = at;
        }
    }

    /// The next event that has happened by `now`, if any; call until `None`.
    pub fn poll(&mut self, now: Instant) -> Option<ButtonEvent> {
        if self.raw != self.stable && now >= self.raw_since + self.debounce {
            self.stable = self.raw;
            if self.stable {
                self.pressed_at = Some(self.raw_since);
                self.held_reported = 0;
                self.very_long_fired = false;
            } else if let Some(pressed_at) = self.pressed_at.take()
                && !self.very_long_fired
            {
                let held = self.raw_since.saturating_duration_since(pressed_at);
                return Some(ButtonEvent::Press(Press::of(held)));
            }
        }
        let pressed_at = self
            .pressed_at
            .filter(|_| self.stable && !self.very_long_fired)?;
        let held = now.saturating_duration_since(pressed_at);
        if held >= VERY_LONG_PRESS {
            self.very_long_fired = true;
            return Some(ButtonEvent::Press(Press::VeryLong));
        }
        let seconds = held.as_secs();
        if held >= LONG_PRESS && seconds > self.held_reported {
            self.held_reported = seconds;
            return Some(ButtonEvent::Held(seconds));
        }
        None
    }

    /// When `poll` may next have something to say without a new edge.
    pub fn deadline(&self) -> Option<Instant> {
        if self.raw != self.stable {
            return Some(self.raw_since + self.debounce);
        }
        let pressed_at = self
            .pressed_at
            .filter(|_| self.stable && !self.very_long_fired)?;
        let next = (self.held_reported + 1).max(LONG_PRESS.as_secs());
        Some(pressed_at + Duration::from_secs(next))
    }
}

/// Turns raw levels (true = pressed) into button events until the levels end or shutdown.
pub async fn classify(
    mut levels: mpsc::Receiver<bool>,
    events: mpsc::Sender<ButtonEvent>,
    debounce: Duration,
    shutdown: CancellationToken,
) {
    let mut classifier = Classifier::new(debounce, Instant::now());
    loop {
        let deadline = classifier.deadline();
        tokio::select! {
            level = levels.recv() => match level {
                Some(level) => classifier.edge(Instant::now(), level),
                None => return,
            },
            () = sleep_until(deadline) => {}
            () = shutdown.cancelled() => return,
        }
        while let Some(event) = classifier.poll(Instant::now()) {
            if events.send(event).await.is_err() {
                return;
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Runs a script of (time in ms, level) edges through the classifier, polling every
    /// 10 ms up to `end` ms; returns (time in ms, event).
    fn run(script: &[(u64, bool)], end: u64) -> Vec<(u64, ButtonEvent)> {
        let start = Instant::now();
        let mut classifier = Classifier::new(DEBOUNCE, start);
        let mut out = Vec::new();
        let mut script = script.iter().peekable();
        for t in (0..=end).step_by(10) {
            while let Some((at, level)) = script.next_if(|(at, _)| *at <= t) {
                classifier.edge(start + ms(*at), *level);
            }
            while let Some(event) = classifier.poll(start + ms(t)) {
                out.push((t, event));
            }
        }
        out
    }

    #[test]
    fn bounces_are_one_short_press() {
        let events = run(
            &[
                (100, true),
                (102, false),
                (104, true),
                (400, false),
                (403, true),
                (406, false),
            ],
            1000,
        );
        assert_eq!(events, vec![(440, ButtonEvent::Press(Press::Short))]);
    }

    #[test]
    fn a_glitch_shorter_than_the_debounce_is_nothing() {
        assert_eq!(run(&[(100, true), (110, false)], 1000), vec![]);
    }

    #[test]
    fn long_press_counts_seconds_then_classifies_on_release() {
        let events = run(&[(0, true), (4500, false)], 6000);
        assert_eq!(
            events,
            vec![
                (3000, ButtonEvent::Held(3)),
                (4000, ButtonEvent::Held(4)),
                (4530, ButtonEvent::Press(Press::Long)),
            ]
        );
    }

    #[test]
    fn very_long_press_fires_while_held_and_release_adds_nothing() {
        let events = run(&[(0, true), (12_000, false)], 13_000);
        let presses: Vec<_> = events
            .iter()
            .filter(|(_, e)| matches!(e, ButtonEvent::Press(_)))
            .collect();
        assert_eq!(
            presses,
            vec![&(10_000, ButtonEvent::Press(Press::VeryLong))]
        );
        assert_eq!(
            events
                .iter()
                .filter(|(_, e)| matches!(e, ButtonEvent::Held(_)))
                .count(),
            7
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_classifies_in_paused_time() {
        let (level_tx, level_rx) = mpsc::channel(8);
        let (event_tx, mut event_rx) = mpsc::channel(32);
        let shutdown = CancellationToken::new();
        tokio::spawn(classify(level_rx, event_tx, DEBOUNCE, shutdown.clone()));
        let sleep = |ms: u64| tokio::time::sleep(Duration::from_millis(ms));

        // Short: 200 ms with a bounce at the start.
        level_tx.send(true).await.expect("send");
        sleep(2).await;
        level_tx.send(false).await.expect("send");
        sleep(2).await;
        level_tx.send(true).await.expect("send");
        sleep(200).await;
        level_tx.send(false).await.expect("send");
        assert_eq!(
            event_rx.recv().await,
            Some(ButtonEvent::Press(Press::Short))
        );

        // Long: 3.5 s.
        sleep(500).await;
        level_tx.send(true).await.expect("send");
        sleep(3500).await;
        level_tx.send(false).await.expect("send");
        assert_eq!(event_rx.recv().await, Some(ButtonEvent::Held(3)));
        assert_eq!(event_rx.recv().await, Some(ButtonEvent::Press(Press::Long)));

        // Very long: fires at 10 s while still held.
        sleep(500).await;
        let pressed = Instant::now();
        level_tx.send(true).await.expect("send");
        let mut held = Vec::new();
        loop {
            match event_rx.recv().await {
                Some(ButtonEvent::Held(s)) => held.push(s),
                Some(ButtonEvent::Press(press)) => {
                    assert_eq!(press, Press::VeryLong);
                    break;
                }
                None => panic!("classifier ended"),
            }
        }
        assert_eq!(held, vec![3, 4, 5, 6, 7, 8, 9]);
        let elapsed = pressed.elapsed();
        assert!(
            elapsed >= VERY_LONG_PRESS && elapsed < VERY_LONG_PRESS + ms(100),
            "{elapsed:?}"
        );
        shutdown.cancel();
    }
}
