//! The displays behind `Display`: the board's SSD1306 and HD44780 (each rendering the view
//! its own way and kept going by `attach`), and the simulated ones for a laptop: a PNG file
//! for the OLED, the log for the character LCD.

use std::path::PathBuf;

use super::frame::{Frame, PanelSize};
use super::text::{TextScreen, TextSize, layout};
use super::{Display, Light, View, draw, lcd, oled};
use crate::board::{DisplaySize, Hardware};
use crate::config::Config;

/// The simulated OLED: every new picture is written to a PNG file (lit pixels white).
pub struct PngDisplay {
    path: PathBuf,
    size: PanelSize,
    last: Option<Frame>,
    failed: bool,
}

impl PngDisplay {
    pub fn new(path: PathBuf, size: PanelSize) -> PngDisplay {
        PngDisplay {
            path,
            size,
            last: None,
            failed: false,
        }
    }

    fn write(&mut self, frame: &Frame) {
        if self.last.as_ref() == Some(frame) {
            return;
        }
        match frame.write_png(&self.path, 1) {
            Ok(()) => self.failed = false,
            Err(error) if !self.failed => {
                tracing::warn!(path = %self.path.display(), %error, "cannot write the panel picture");
                self.failed = true;
            }
            Err(_) => {}
        }
        self.last = Some(frame.clone());
    }
}

impl Display for PngDisplay {
    fn show(&mut self, view: &View, light: Light, (dx, dy): (u32, u32)) {
        // The picture shows what is on the panel; a panel that is off is dark.
        if light == Light::Off {
            self.write(&Frame::new(self.size));
        } else {
            self.write(&draw(view, self.size).shifted(dx, dy));
        }
    }

    fn blank(&mut self) {
        self.write(&Frame::new(self.size));
    }
}

/// The simulated character LCD: every new screen goes to the log, one line per row.
pub struct LogDisplay {
    size: TextSize,
    last: Option<(TextScreen, bool)>,
}

impl LogDisplay {
    pub fn new(size: TextSize) -> LogDisplay {
        LogDisplay { size, last: None }
    }
}

impl Display for LogDisplay {
    fn show(&mut self, view: &View, light: Light, _shift: (u32, u32)) {
        let shown = (layout(view, self.size), light != Light::Off);
        if self.last.as_ref() == Some(&shown) {
            return;
        }
        let rows = shown.0.lines().join(" | ");
        tracing::info!(backlight = shown.1, "panel [{rows}]");
        self.last = Some(shown);
    }

    fn blank(&mut self) {
        tracing::info!("panel blank, backlight off");
    }
}

/// The board's SSD1306.
struct OledPanel {
    size: PanelSize,
    driver: oled::BoardOled,
}

impl Display for OledPanel {
    fn show(&mut self, view: &View, light: Light, (dx, dy): (u32, u32)) {
        let frame = draw(view, self.size).shifted(dx, dy);
        self.driver.show(&frame, light, std::time::Instant::now());
    }

    fn tick(&mut self) {
        self.driver.poll(std::time::Instant::now());
    }

    fn blank(&mut self) {
        self.driver.blank();
    }
}

/// The board's character LCD. Characters cannot shift; an LCD does not burn in the way an
/// OLED does, and its backlight goes off after idle.
struct LcdPanel {
    size: TextSize,
    driver: lcd::BoardLcd,
}

impl Display for LcdPanel {
    fn show(&mut self, view: &View, light: Light, _shift: (u32, u32)) {
        let screen = layout(view, self.size);
        self.driver.show(&screen, light, std::time::Instant::now());
    }

    fn tick(&mut self) {
        self.driver.poll(std::time::Instant::now());
    }

    fn blank(&mut self) {
        self.driver.blank();
    }
}

/// The display the hardware has: the board's OLED or LCD, or a simulated one.
pub fn for_hardware(config: &Config, hardware: &Hardware) -> Box<dyn Display> {
    match hardware {
        Hardware::Board(board) => match board.panel.size {
            DisplaySize::Pixels(size) => Box::new(OledPanel {
                size,
                driver: oled::board_oled(&board.panel),
            }),
            DisplaySize::Chars(size) => Box::new(LcdPanel {
                size,
                driver: lcd::board_lcd(&board.panel),
            }),
        },
        Hardware::Simulated { size, .. } => match size {
            DisplaySize::Pixels(size) => {
                let path = config.data_dir.join("panel.png");
                tracing::info!(path = %path.display(), "simulated panel");
                Box::new(PngDisplay::new(path, *size))
            }
            DisplaySize::Chars(size) => {
                tracing::info!(%size, "simulated character panel: its screens go to the log");
                Box::new(LogDisplay::new(*size))
            }
        },
    }
}
