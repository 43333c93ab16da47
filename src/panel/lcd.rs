//! The character LCD: an HD44780 (or a clone: SPLC780, KS0066) in 4-bit mode behind a
//! PCF8574 or PCF8574A I2C backpack, on any `embedded_hal::i2c::I2c`.
//!
//! Our own small driver rather than a crate: `hd44780-driver` is still on embedded-hal 0.2,
//! and the backpack protocol is a page of code. Owning it lets a whole row go out in one I2C
//! write and only changed rows go at all (a 16×2 row is 68 bytes, ~6 ms at 100 kHz).
//!
//! The backpack's eight outputs, as on nearly every board sold (the "LCM1602" wiring):
//! P0 RS, P1 RW, P2 E, P3 backlight transistor, P4–P7 D4–D7. Each byte written to the
//! PCF8574 sets those pins; a nibble reaches the HD44780 on the falling edge of E, so it is
//! written twice, with E high and then low. RW stays low: the driver never reads the busy
//! flag; at 100–400 kHz one byte on the bus (22–90 µs) outlasts a 37 µs instruction, and the
//! two slow ones (clear, home) are followed by a delay.

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

use super::Light;
use super::attach::{Attached, Device};
use super::text::{Glyph, TextScreen, TextSize};
use crate::board::{DisplaySize, PanelFacts};

/// Register select: data (1) or instruction (0).
const RS: u8 = 0x01;
/// Enable: the HD44780 latches D4–D7 when it falls.
const E: u8 = 0x04;
const BACKLIGHT: u8 = 0x08;

/// Instructions (HD44780U datasheet, table 6).
const CLEAR: u8 = 0x01;
const ENTRY_INCREMENT: u8 = 0x06;
const DISPLAY_OFF: u8 = 0x08;
const DISPLAY_ON: u8 = 0x0C;
/// 4-bit interface, two lines (a 20×4 is two lines folded), 5×8 dots.
const FUNCTION_4BIT_2LINE: u8 = 0x28;
const SET_CGRAM: u8 = 0x40;
const SET_DDRAM: u8 = 0x80;

/// Where each row starts in display RAM: the second line at 0x40; a 20×4's rows 3 and 4
/// continue rows 1 and 2 (20 characters on).
const ROW_START: [u8; 4] = [0x00, 0x40, 0x14, 0x54];

/// One HD44780 on a PCF8574 backpack.
pub struct Lcd<I, D> {
    i2c: I,
    delay: D,
    address: u8,
    size: TextSize,
    backlight: bool,
    /// What the display holds now; `None` before `init`.
    shown: Option<TextScreen>,
}

impl<I: I2c, D: DelayNs> Lcd<I, D> {
    pub fn new(i2c: I, delay: D, address: u8, size: TextSize) -> Lcd<I, D> {
        Lcd {
            i2c,
            delay,
            address,
            size,
            backlight: true,
            shown: None,
        }
    }

    /// The power-up sequence: "initializing by instruction" (datasheet figure 24) to get a
    /// known state whatever the controller was doing, then 4-bit mode, a clear display, the
    /// eight custom characters, display on.
    pub fn init(&mut self) -> Result<(), I::Error> {
        self.backlight = true;
        self.shown = None;
        // More than 40 ms after Vcc reaches 2.7 V; it may just have been plugged in.
        self.delay.delay_ms(50);
        // "Function set: 8-bit" three times, whichever mode and nibble it was in...
        self.nibble(0x3, 0)?;
        self.delay.delay_us(4500);
        self.nibble(0x3, 0)?;
        self.delay.delay_us(150);
        self.nibble(0x3, 0)?;
        self.delay.delay_us(150);
        // ...then 4-bit, as a single nibble; from here on every byte is two nibbles.
        self.nibble(0x2, 0)?;
        self.command(FUNCTION_4BIT_2LINE)?;
        self.command(DISPLAY_OFF)?;
        self.command(CLEAR)?;
        self.delay.delay_us(2000);
        self.command(ENTRY_INCREMENT)?;
        let mut glyphs = encode(self.backlight_bit(), 0, SET_CGRAM).to_vec();
        for glyph in Glyph::ALL {
            for row in glyph.pattern() {
                glyphs.extend(encode(self.backlight_bit(), RS, row));
            }
        }
        self.i2c.write(self.address, &glyphs)?;
        self.command(DISPLAY_ON)?;
        self.shown = Some(TextScreen::blank(self.size));
        Ok(())
    }

    /// Writes the rows of `screen` that differ from what the display holds, each in one
    /// I2C write (set the address, then the characters).
    pub fn show(&mut self, screen: &TextScreen) -> Result<(), I::Error> {
        // Taken out: after a failed write what the display holds is unknown (and the next
        // `init` clears it), so every row is written again.
        let known = self.shown.take();
        let mut shown = known
            .clone()
            .unwrap_or_else(|| TextScreen::blank(self.size));
        for row in 0..self.size.rows() {
            let cells = screen.row(row);
            if known.is_some() && shown.row(row) == cells {
                continue;
            }
            let start = ROW_START.get(row).copied().unwrap_or(0);
            let mut bytes = encode(self.backlight_bit(), 0, SET_DDRAM | start).to_vec();
            for cell in cells {
                bytes.extend(encode(self.backlight_bit(), RS, cell.lcd_code()));
            }
            self.i2c.write(self.address, &bytes)?;
            shown.set_row(row, cells);
        }
        self.shown = Some(shown);
        Ok(())
    }

    /// The backlight is the only light an LCD has: on (full or dim), or off. The text
    /// stays; a reflective LCD is readable in daylight without it.
    pub fn set_backlight(&mut self, on: bool) -> Result<(), I::Error> {
        self.backlight = on;
        self.i2c.write(self.address, &[self.backlight_bit()])
    }

    /// The backpack's outputs as they are (E low): acknowledged by a present PCF8574, and
    /// nothing reaches the HD44780.
    pub fn probe(&mut self) -> Result<(), I::Error> {
        self.i2c.write(self.address, &[self.backlight_bit()])
    }

    fn backlight_bit(&self) -> u8 {
        if self.backlight { BACKLIGHT } else { 0 }
    }

    fn nibble(&mut self, nibble: u8, flags: u8) -> Result<(), I::Error> {
        let byte = (nibble << 4) | flags | self.backlight_bit();
        self.i2c.write(self.address, &[byte | E, byte])
    }

    fn command(&mut self, command: u8) -> Result<(), I::Error> {
        let bytes = encode(self.backlight_bit(), 0, command);
        self.i2c.write(self.address, &bytes)
    }
}

/// One byte for the HD44780 as the four PCF8574 writes that carry it: the high nibble with
/// E high, then low; the low nibble the same.
pub fn encode(backlight: u8, flags: u8, byte: u8) -> [u8; 4] {
    let high = (byte & 0xF0) | flags | backlight;
    let low = ((byte & 0x0F) << 4) | flags | backlight;
    [high | E, high, low | E, low]
}

impl<I: I2c, D: DelayNs> Device for Lcd<I, D> {
    type Picture = TextScreen;
    type Error = I::Error;

    fn init(&mut self) -> Result<(), I::Error> {
        Lcd::init(self)
    }

    fn show(&mut self, screen: &TextScreen) -> Result<(), I::Error> {
        Lcd::show(self, screen)
    }

    fn set_light(&mut self, light: Light) -> Result<(), I::Error> {
        let on = light != Light::Off;
        if on == self.backlight {
            return Ok(());
        }
        self.set_backlight(on)
    }

    fn probe(&mut self) -> Result<(), I::Error> {
        Lcd::probe(self)
    }

    fn blank(&mut self) {
        let _ = Lcd::show(self, &TextScreen::blank(self.size));
        let _ = self.set_backlight(false);
    }
}

/// The text size of a character panel's facts.
pub fn chars(facts: &PanelFacts) -> TextSize {
    match facts.size {
        DisplaySize::Chars(size) => size,
        // Board data and the config are checked when read; this is not reached.
        DisplaySize::Pixels(_) => TextSize::default(),
    }
}

/// An LCD kept going on a bus opened by `open` (see `Attached`).
pub fn driver<I: I2c, D: DelayNs>(
    mut open: impl FnMut() -> std::io::Result<I>,
    mut delay: impl FnMut() -> D,
    describe: String,
    facts: &PanelFacts,
) -> Attached<Lcd<I, D>, impl FnMut() -> std::io::Result<Lcd<I, D>>> {
    let (address, size) = (facts.address, chars(facts));
    Attached::new(
        move || open().map(|i2c| Lcd::new(i2c, delay(), address, size)),
        describe,
        address,
    )
}

/// The board's LCD on `/dev/i2c-N`.
pub type BoardLcd = Attached<
    Lcd<linux_embedded_hal::I2cdev, linux_embedded_hal::Delay>,
    Box<
        dyn FnMut() -> std::io::Result<Lcd<linux_embedded_hal::I2cdev, linux_embedded_hal::Delay>>
            + Send,
    >,
>;

pub fn board_lcd(facts: &PanelFacts) -> BoardLcd {
    let mut bus = super::attach::open_i2c(facts.i2c.clone());
    let describe = format!(
        "HD44780 {} on {} at {:#04x}",
        chars(facts),
        facts.i2c.display(),
        facts.address
    );
    let (address, size) = (facts.address, chars(facts));
    Attached::new(
        Box::new(move || bus().map(|i2c| Lcd::new(i2c, linux_embedded_hal::Delay, address, size))),
        describe,
        address,
    )
}
