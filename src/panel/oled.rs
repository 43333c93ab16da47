//! The real panel: an SSD1306 over I2C (`ssd1306` in buffered mode, any `embedded_hal::i2c::I2c`,
//! `linux-embedded-hal`'s `I2cdev` on a board), plus the retry/hot-plug logic around it.
//!
//! Only pixels that differ from what the panel already shows are set in the driver's buffer,
//! so `flush` sends only the changed rectangle — on a 100–400 kHz bus that matters.

use display_interface::DisplayError;
use embedded_hal::i2c::I2c;
use ssd1306::mode::BufferedGraphicsMode;
use ssd1306::prelude::{Brightness, DisplayConfig, DisplayRotation, I2CInterface};
use ssd1306::size::{DisplaySize128x32, DisplaySize128x64};
use ssd1306::{I2CDisplayInterface, Ssd1306};

use super::Light;
use super::attach::{Attached, Device};
use super::frame::{Frame, PanelSize};
use crate::board::{DisplaySize, PanelFacts, Rotation};

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

impl<I: I2c> Device for Oled<I> {
    type Picture = Frame;
    type Error = DisplayError;

    fn init(&mut self) -> Result<(), DisplayError> {
        Oled::init(self)
    }

    fn show(&mut self, frame: &Frame) -> Result<(), DisplayError> {
        Oled::show(self, frame)
    }

    fn set_light(&mut self, light: Light) -> Result<(), DisplayError> {
        Oled::set_light(self, light)
    }

    fn probe(&mut self) -> Result<(), DisplayError> {
        Oled::probe(self)
    }

    fn blank(&mut self) {
        let size = self.shown.size();
        let _ = Oled::show(self, &Frame::new(size));
        let _ = Oled::set_light(self, Light::Off);
    }
}

/// An SSD1306 kept going on a bus opened by `open` (see `Attached`).
pub fn driver<I: I2c>(
    mut open: impl FnMut() -> std::io::Result<I>,
    describe: String,
    facts: &PanelFacts,
) -> Attached<Oled<I>, impl FnMut() -> std::io::Result<Oled<I>>> {
    let (address, rotation, size) = (facts.address, facts.rotation, pixels(facts));
    Attached::new(
        move || open().map(|i2c| Oled::new(i2c, address, size, rotation)),
        describe,
        address,
    )
}

fn pixels(facts: &PanelFacts) -> PanelSize {
    match facts.size {
        DisplaySize::Pixels(size) => size,
        // Board data and the config are checked when read; this is not reached.
        DisplaySize::Chars(_) => PanelSize::default(),
    }
}

/// The board's OLED on `/dev/i2c-N`.
pub type BoardOled = Attached<
    Oled<linux_embedded_hal::I2cdev>,
    Box<dyn FnMut() -> std::io::Result<Oled<linux_embedded_hal::I2cdev>> + Send>,
>;

pub fn board_oled(facts: &PanelFacts) -> BoardOled {
    let mut bus = super::attach::open_i2c(facts.i2c.clone());
    let describe = format!(
        "SSD1306 on {} at {:#04x}",
        facts.i2c.display(),
        facts.address
    );
    let (address, rotation, size) = (facts.address, facts.rotation, pixels(facts));
    Attached::new(
        Box::new(move || bus().map(|i2c| Oled::new(i2c, address, size, rotation))),
        describe,
        address,
    )
}
