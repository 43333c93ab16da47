//! The real panel: an SSD1306 over I2C (`ssd1306` in buffered mode, any `embedded_hal::i2c::I2c`,
//! `linux-embedded-hal`'s `I2cdev` on a board), plus the retry/hot-plug logic around it.
//!
//! Only pixels that differ from what the panel already shows are set in the driver's buffer,
//! so `flush` sends only the changed rectangle — on a 100–400 kHz bus that matters.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use display_interface::DisplayError;
use embedded_hal::i2c::I2c;
use ssd1306::mode::BufferedGraphicsMode;
use ssd1306::prelude::{Brightness, DisplayConfig, DisplayRotation, I2CInterface};
use ssd1306::size::{DisplaySize128x32, DisplaySize128x64};
use ssd1306::{I2CDisplayInterface, Ssd1306};

use super::Light;
use super::frame::{Frame, PanelSize};
use crate::board::{PanelFacts, Rotation};

const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(60);
/// How often a connected panel is checked (a write the panel must acknowledge).
const PROBE_EVERY: Duration = Duration::from_secs(5);

type Panel<I, S> = Ssd1306<I2CInterface<I>, S, BufferedGraphicsMode<S>>;

enum Inner<I> {
    Tall(Box<Panel<I, DisplaySize128x64>>),
    Short(Box<Panel<I, DisplaySize128x32>>),
}

/// Runs `$body` with `$panel` bound to whichever size the panel is.
macro_rules! with_panel {
    ($inner:expr, $panel:ident => $body:expr) => {
        match $inner {
            Inner::Tall($panel) => $body,
            Inner::Short($panel) => $body,
        }
    };
}

/// One SSD1306 on an I2C bus.
pub struct Oled<I> {
    inner: Inner<I>,
    /// What the driver's buffer holds, in our frame's terms.
    shown: Frame,
    light: Option<Light>,
}

impl<I: I2c> Oled<I> {
    pub fn new(i2c: I, address: u8, size: PanelSize, rotation: Rotation) -> Oled<I> {
        let interface = I2CDisplayInterface::new_custom_address(i2c, address);
        let rotation = match rotation {
            Rotation::Normal => DisplayRotation::Rotate0,
            Rotation::UpsideDown => DisplayRotation::Rotate180,
        };
        let inner = match size {
            PanelSize::W128H64 => Inner::Tall(Box::new(
                Ssd1306::new(interface, DisplaySize128x64, rotation).into_buffered_graphics_mode(),
            )),
            PanelSize::W128H32 => Inner::Short(Box::new(
                Ssd1306::new(interface, DisplaySize128x32, rotation).into_buffered_graphics_mode(),
            )),
        };
        Oled {
            inner,
            shown: Frame::new(size),
            light: None,
        }
    }

    /// The SSD1306 power-up sequence (display off, clock, multiplex, charge pump, addressing,
    /// rotation, contrast, display on) and a cleared buffer.
    pub fn init(&mut self) -> Result<(), DisplayError> {
        with_panel!(&mut self.inner, panel => panel.init())?;
        self.shown = Frame::new(self.shown.size());
        self.light = Some(Light::Full);
        Ok(())
    }

    /// Shows `frame`: sets the pixels that changed and sends their rectangle.
    pub fn show(&mut self, frame: &Frame) -> Result<(), DisplayError> {
        let size = self.shown.size();
        for y in 0..size.height() {
            for x in 0..size.width() {
                let on = frame.pixel(x, y);
                if on != self.shown.pixel(x, y) {
                    with_panel!(&mut self.inner, panel => panel.set_pixel(x, y, on));
                }
            }
        }
        // Whatever happens on the bus, the buffer now holds `frame`; after an error the next
        // `init` clears both.
        self.shown = frame.clone();
        with_panel!(&mut self.inner, panel => panel.flush())
    }

    pub fn set_light(&mut self, light: Light) -> Result<(), DisplayError> {
        if self.light == Some(light) {
            return Ok(());
        }
        match light {
            Light::Off => with_panel!(&mut self.inner, panel => panel.set_display_on(false))?,
            Light::Dim | Light::Full => {
                let brightness = if light == Light::Dim {
                    Brightness::DIMMEST
                } else {
                    Brightness::NORMAL
                };
                with_panel!(&mut self.inner, panel => panel.set_brightness(brightness))?;
                if self.light == Some(Light::Off) {
                    with_panel!(&mut self.inner, panel => panel.set_display_on(true))?;
                }
            }
        }
        self.light = Some(light);
        Ok(())
    }

    /// A write the panel must acknowledge, to notice it has gone: the display on/off command
    /// it is already in, which changes nothing.
    pub fn probe(&mut self) -> Result<(), DisplayError> {
        let on = self.light != Some(Light::Off);
        with_panel!(&mut self.inner, panel => panel.set_display_on(on))
    }

    pub fn release(self) -> I {
        with_panel!(self.inner, panel => panel.release().release())
    }
}

/// Keeps a panel going on a bus that may not be there: opens and initialises it, shows the
/// latest frame, and after any error logs once and retries with backoff (so a panel plugged
/// in later, or re-plugged, comes up by itself).
pub struct Driver<I, F> {
    open: F,
    describe: String,
    address: u8,
    size: PanelSize,
    rotation: Rotation,
    oled: Option<Oled<I>>,
    wanted: Option<(Frame, Light)>,
    retry_at: Option<Instant>,
    backoff: Duration,
    probe_at: Option<Instant>,
    /// The error last logged; the same error is not logged again.
    reported: Option<String>,
}

impl<I: I2c, F: FnMut() -> std::io::Result<I>> Driver<I, F> {
    pub fn new(open: F, describe: String, facts: &PanelFacts) -> Driver<I, F> {
        Driver {
            open,
            describe,
            address: facts.address,
            size: facts.size,
            rotation: facts.rotation,
            oled: None,
            wanted: None,
            retry_at: None,
            backoff: FIRST_RETRY,
            probe_at: None,
            reported: None,
        }
    }

    pub fn is_connected(&self) -> bool {
        self.oled.is_some()
    }

    /// Remembers what to show and shows it if the panel is there.
    pub fn show(&mut self, frame: &Frame, light: Light, now: Instant) {
        self.wanted = Some((frame.clone(), light));
        self.poll(now);
    }

    /// Connects when a retry is due, probes now and then, and pushes the wanted picture.
    pub fn poll(&mut self, now: Instant) {
        if self.oled.is_none() {
            if self.retry_at.is_some_and(|at| now < at) {
                return;
            }
            if let Err(error) = self.connect(now) {
                self.fail(error, now);
                return;
            }
        } else if self.probe_at.is_some_and(|at| now >= at) {
            if let Some(Err(error)) = self.oled.as_mut().map(Oled::probe) {
                self.fail(format!("{error:?}"), now);
                return;
            }
            self.probe_at = Some(now + PROBE_EVERY);
        }
        if let (Some(oled), Some((frame, light))) = (self.oled.as_mut(), &self.wanted) {
            let result = if *light == Light::Off {
                oled.set_light(Light::Off)
            } else {
                oled.show(frame).and_then(|()| oled.set_light(*light))
            };
            if let Err(error) = result {
                self.fail(format!("{error:?}"), now);
            }
        }
    }

    fn connect(&mut self, now: Instant) -> Result<(), String> {
        let i2c = (self.open)().map_err(|e| e.to_string())?;
        let mut oled = Oled::new(i2c, self.address, self.size, self.rotation);
        oled.init()
            .map_err(|e| format!("no answer at {:#04x} ({e:?})", self.address))?;
        if self.reported.take().is_some() {
            tracing::info!(panel = %self.describe, "panel is back");
        } else {
            tracing::info!(panel = %self.describe, "panel ready");
        }
        self.oled = Some(oled);
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
        self.oled = None;
        self.retry_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(LAST_RETRY);
    }

    /// Turns the panel off, for shutdown.
    pub fn blank(&mut self) {
        if let Some(oled) = self.oled.as_mut() {
            let size = oled.shown.size();
            let _ = oled.show(&Frame::new(size));
            let _ = oled.set_light(Light::Off);
        }
    }
}

/// The board's panel on `/dev/i2c-N`.
pub type BoardPanel = Driver<
    linux_embedded_hal::I2cdev,
    Box<dyn FnMut() -> std::io::Result<linux_embedded_hal::I2cdev> + Send>,
>;

pub fn board_panel(facts: &PanelFacts) -> BoardPanel {
    let path: PathBuf = facts.i2c.clone();
    let describe = format!("{} at {:#04x}", path.display(), facts.address);
    let open = Box::new(move || {
        linux_embedded_hal::I2cdev::new(&path)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))
    });
    Driver::new(open, describe, facts)
}
