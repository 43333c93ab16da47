//! Keeping a display going on a bus that may not be there, whichever display it is: open and
//! initialise it, show the latest picture, and after any error log once and retry with
//! backoff, so a panel plugged in later, or re-plugged, comes up by itself. The OLED and the
//! character LCD share this; each only says how to talk to its chip (`Device`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::Light;

const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(60);
/// How often a connected panel is checked (a write the panel must acknowledge).
const PROBE_EVERY: Duration = Duration::from_secs(5);

/// One display chip on a bus.
pub trait Device {
    /// What it shows: a frame of pixels, a screen of characters.
    type Picture: Clone + PartialEq;
    type Error: std::fmt::Debug;

    /// The power-up sequence; afterwards the display is blank and lit.
    fn init(&mut self) -> Result<(), Self::Error>;
    fn show(&mut self, picture: &Self::Picture) -> Result<(), Self::Error>;
    fn set_light(&mut self, light: Light) -> Result<(), Self::Error>;
    /// A write the chip must acknowledge and that changes nothing, to notice it has gone.
    fn probe(&mut self) -> Result<(), Self::Error>;
    /// Blank and dark, as far as the bus lets it (for shutdown).
    fn blank(&mut self);
}

/// A display that may come and go: `open` makes a fresh, uninitialised device.
pub struct Attached<D: Device, F> {
    open: F,
    describe: String,
    address: u8,
    device: Option<D>,
    wanted: Option<(D::Picture, Light)>,
    retry_at: Option<Instant>,
    backoff: Duration,
    probe_at: Option<Instant>,
    /// The error last logged; the same error is not logged again.
    reported: Option<String>,
}

impl<D: Device, F: FnMut() -> std::io::Result<D>> Attached<D, F> {
    pub fn new(open: F, describe: String, address: u8) -> Attached<D, F> {
        Attached {
            open,
            describe,
            address,
            device: None,
            wanted: None,
            retry_at: None,
            backoff: FIRST_RETRY,
            probe_at: None,
            reported: None,
        }
    }

    pub fn is_connected(&self) -> bool {
        self.device.is_some()
    }

    /// Remembers what to show and shows it if the panel is there.
    pub fn show(&mut self, picture: &D::Picture, light: Light, now: Instant) {
        self.wanted = Some((picture.clone(), light));
        self.poll(now);
    }

    /// Connects when a retry is due, probes now and then, and pushes the wanted picture.
    pub fn poll(&mut self, now: Instant) {
        if self.device.is_none() {
            if self.retry_at.is_some_and(|at| now < at) {
                return;
            }
            if let Err(error) = self.connect(now) {
                self.fail(error, now);
                return;
            }
        } else if self.probe_at.is_some_and(|at| now >= at) {
            if let Some(Err(error)) = self.device.as_mut().map(D::probe) {
                self.fail(format!("{error:?}"), now);
                return;
            }
            self.probe_at = Some(now + PROBE_EVERY);
        }
        if let (Some(device), Some((picture, light))) = (self.device.as_mut(), &self.wanted) {
            let result = if *light == Light::Off {
                device.set_light(Light::Off)
            } else {
                device.show(picture).and_then(|()| device.set_light(*light))
            };
            if let Err(error) = result {
                self.fail(format!("{error:?}"), now);
            }
        }
    }

    fn connect(&mut self, now: Instant) -> Result<(), String> {
        let mut device = (self.open)().map_err(|e| e.to_string())?;
        device
            .init()
            .map_err(|e| format!("no answer at {:#04x} ({e:?})", self.address))?;
        if self.reported.take().is_some() {
            tracing::info!(panel = %self.describe, "panel is back");
        } else {
            tracing::info!(panel = %self.describe, "panel ready");
        }
        self.device = Some(device);
        self.backoff = FIRST_RETRY;
        self.retry_at = None;
        self.probe_at = Some(now + PROBE_EVERY);
        Ok(())
    }

    fn fail(&mut self, error: String, now: Instant) {
        if self.reported.as_deref() != Some(error.as_str()) {
            tracing::warn!(panel = %self.describe, %error, "panel unavailable; mail goes on, retrying");
            self.reported = Some(error);
        }
        self.device = None;
        self.retry_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(LAST_RETRY);
    }

    /// Turns the panel off, for shutdown.
    pub fn blank(&mut self) {
        if let Some(device) = self.device.as_mut() {
            device.blank();
        }
    }
}

/// Opens `/dev/i2c-N` anew on each call (a re-plugged adapter may have been away).
pub fn open_i2c(
    path: PathBuf,
) -> impl FnMut() -> std::io::Result<linux_embedded_hal::I2cdev> + Send {
    move || {
        linux_embedded_hal::I2cdev::new(&path)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))
    }
}
