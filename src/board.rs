//! Board facts as data (DESIGN.md rule 6): `board/<name>.toml` names the I2C bus, the panel's
//! kind (SSD1306 OLED or HD44780 character LCD), address, size and rotation, the button's GPIO chip and line, and the hotspot interface.
//!
//! The files are compiled into the binary (`include_str!`), so the static binary needs no
//! files next to it. `board = "auto"` reads `/proc/device-tree/model` and picks the board
//! whose `models` prefix matches; with no match (a laptop) the hardware is simulated.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::panel::frame::PanelSize;
use crate::panel::text::TextSize;
use crate::units::Seconds;

/// Every board file, by name.
const FILES: [(&str, &str); 5] = [
    ("rpi-zero-2w", include_str!("../board/rpi-zero-2w.toml")),
    ("rpi-3b", include_str!("../board/rpi-3b.toml")),
    ("rpi-4b", include_str!("../board/rpi-4b.toml")),
    ("rpi-5", include_str!("../board/rpi-5.toml")),
    ("radxa-zero-3", include_str!("../board/radxa-zero-3.toml")),
];

/// Where Linux tells which board it runs on.
pub const DEVICE_TREE_MODEL: &str = "/proc/device-tree/model";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub name: String,
    pub description: String,
    /// Prefixes of `/proc/device-tree/model` that mean this board.
    #[serde(default)]
    pub models: Vec<String>,
    /// The Wi-Fi interface setup mode raises its hotspot on.
    pub hotspot_interface: String,
    pub panel: PanelFacts,
    pub button: ButtonFacts,
    /// Header pin numbers, for the README's wiring table.
    pub wiring: Wiring,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelFacts {
    /// The I2C bus device, e.g. `/dev/i2c-1`.
    pub i2c: PathBuf,
    #[serde(default)]
    pub kind: PanelKind,
    /// SSD1306: 0x3C (most modules) or 0x3D (address jumper moved). HD44780 backpack:
    /// 0x20–0x27 (PCF8574) or 0x38–0x3F (PCF8574A), set by its A0–A2 jumpers.
    pub address: u8,
    pub size: DisplaySize,
    /// SSD1306 only: a character LCD cannot turn its picture.
    pub rotation: Rotation,
}

/// Which display the panel is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PanelKind {
    /// The 0.96"/0.91" OLED, 128×64 or 128×32 pixels.
    #[default]
    Ssd1306,
    /// A 16×2 or 20×4 character LCD on a PCF8574 I2C backpack.
    Hd44780,
}

impl PanelKind {
    pub fn name(self) -> &'static str {
        match self {
            PanelKind::Ssd1306 => "ssd1306",
            PanelKind::Hd44780 => "hd44780",
        }
    }

    /// Where most modules of this kind answer as sold.
    pub fn default_address(self) -> u8 {
        match self {
            PanelKind::Ssd1306 => 0x3C,
            PanelKind::Hd44780 => 0x27,
        }
    }

    pub fn default_size(self) -> DisplaySize {
        match self {
            PanelKind::Ssd1306 => DisplaySize::Pixels(PanelSize::W128H64),
            PanelKind::Hd44780 => DisplaySize::Chars(TextSize::C16x2),
        }
    }
}

/// A panel's size: pixels for the OLED, characters for the LCD. Written as in the config:
/// "128x64", "128x32", "16x2", "20x4".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum DisplaySize {
    Pixels(PanelSize),
    Chars(TextSize),
}

impl DisplaySize {
    /// The kind of display this size belongs to.
    pub fn kind(self) -> PanelKind {
        match self {
            DisplaySize::Pixels(_) => PanelKind::Ssd1306,
            DisplaySize::Chars(_) => PanelKind::Hd44780,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DisplaySize::Pixels(size) => size.name(),
            DisplaySize::Chars(size) => size.name(),
        }
    }
}

impl std::fmt::Display for DisplaySize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<String> for DisplaySize {
    type Error = String;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        let pixels = [PanelSize::W128H64, PanelSize::W128H32].map(DisplaySize::Pixels);
        let chars = TextSize::ALL.map(DisplaySize::Chars);
        pixels
            .into_iter()
            .chain(chars)
            .find(|size| size.name() == name)
            .ok_or_else(|| {
                format!(
                    "size {name:?}: use \"128x64\" or \"128x32\" (SSD1306), \"16x2\" or \"20x4\" (HD44780)"
                )
            })
    }
}

impl From<DisplaySize> for String {
    fn from(size: DisplaySize) -> String {
        size.name().to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonFacts {
    /// The GPIO chip: a path (`/dev/gpiochip0`) or a chip label (`pinctrl-rp1`).
    pub chip: String,
    /// The line offset on that chip.
    pub line: u32,
    /// The line's name in the device tree (`GPIO17` on a Raspberry Pi). When set, it is
    /// looked up first on every chip, which survives chips being renumbered.
    #[serde(default)]
    pub line_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wiring {
    pub vcc: u8,
    pub gnd: u8,
    pub sda: u8,
    pub scl: u8,
    pub button: u8,
    pub button_gnd: u8,
    /// How to turn the I2C bus on, for the README.
    pub enable_i2c: String,
}

/// Panel rotation: the SSD1306 can flip the picture; a panel mounted upside down uses 180.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(try_from = "u16", into = "u16")]
pub enum Rotation {
    #[default]
    Normal,
    UpsideDown,
}

impl From<Rotation> for u16 {
    fn from(rotation: Rotation) -> u16 {
        match rotation {
            Rotation::Normal => 0,
            Rotation::UpsideDown => 180,
        }
    }
}

impl TryFrom<u16> for Rotation {
    type Error = String;

    fn try_from(degrees: u16) -> Result<Self, Self::Error> {
        match degrees {
            0 => Ok(Rotation::Normal),
            180 => Ok(Rotation::UpsideDown),
            other => Err(format!(
                "rotation {other}: use 0 or 180 (the pages are drawn for a landscape panel)"
            )),
        }
    }
}

/// `[panel]` in the config: overrides of the board's panel facts, and the burn-in care.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PanelSettings {
    pub i2c: Option<PathBuf>,
    /// "ssd1306" or "hd44780"; a character size ("16x2") also means "hd44780".
    pub kind: Option<PanelKind>,
    pub address: Option<u8>,
    pub size: Option<DisplaySize>,
    pub rotation: Option<Rotation>,
    /// Dim after this long without a press.
    pub dim_after: Seconds,
    /// Turn the panel off after this long without a press (alerts keep it dimmed on).
    pub off_after: Seconds,
    /// Shift the picture by one pixel this often.
    pub shift_every: Seconds,
}

impl Default for PanelSettings {
    fn default() -> Self {
        PanelSettings {
            i2c: None,
            kind: None,
            address: None,
            size: None,
            rotation: None,
            dim_after: Seconds(60),
            off_after: Seconds(600),
            shift_every: Seconds(120),
        }
    }
}

impl PanelSettings {
    /// The kind the config asks for: `kind`, or the kind its `size` belongs to.
    pub fn kind_wanted(&self) -> Option<PanelKind> {
        self.kind.or(self.size.map(DisplaySize::kind))
    }

    /// Checks what the types cannot; returns the offending key and a reason.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let (Some(kind), Some(size)) = (self.kind, self.size)
            && size.kind() != kind
        {
            let reason = format!("size {size} is not a size of {} panels", kind.name());
            return Err(("size", reason));
        }
        if let Some(address) = self.address {
            check_address(self.kind_wanted().unwrap_or_default(), address)
                .map_err(|reason| ("address", reason))?;
        }
        Ok(())
    }

    /// The simulated panel's kind and size (no board to take them from).
    pub fn simulated(&self) -> (PanelKind, DisplaySize) {
        let kind = self.kind_wanted().unwrap_or_default();
        (kind, self.size.unwrap_or(kind.default_size()))
    }
}

/// `[button]` in the config: overrides of the board's button facts.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ButtonSettings {
    pub chip: Option<String>,
    pub line: Option<u32>,
    pub line_name: Option<String>,
}

/// What the daemon drives: a real board, or a simulated panel and button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hardware {
    Board(Box<Board>),
    Simulated { kind: PanelKind, size: DisplaySize },
}

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("board/{name}.toml: {reason}")]
    Invalid { name: String, reason: String },
    #[error("unknown board {0:?} (known: {1})")]
    Unknown(String, String),
}

/// Every built-in board.
pub fn all() -> Result<Vec<Board>, BoardError> {
    FILES
        .iter()
        .map(|(name, text)| {
            let board: Board = toml::from_str(text).map_err(|e| BoardError::Invalid {
                name: name.to_string(),
                reason: e.message().to_string(),
            })?;
            if board.name != *name {
                return Err(BoardError::Invalid {
                    name: name.to_string(),
                    reason: format!("its name is {:?}", board.name),
                });
            }
            let invalid = |reason| BoardError::Invalid {
                name: name.to_string(),
                reason,
            };
            check_address(board.panel.kind, board.panel.address).map_err(invalid)?;
            if board.panel.size.kind() != board.panel.kind {
                return Err(invalid(format!(
                    "panel size {} does not fit kind {}",
                    board.panel.size,
                    board.panel.kind.name()
                )));
            }
            Ok(board)
        })
        .collect()
}

pub fn names() -> Vec<&'static str> {
    FILES.iter().map(|(name, _)| *name).collect()
}

/// The board called `name`, or `auto`/`simulated`.
pub fn is_known(name: &str) -> bool {
    name == "auto" || name == "simulated" || names().contains(&name)
}

pub fn by_name(name: &str) -> Result<Board, BoardError> {
    all()?
        .into_iter()
        .find(|b| b.name == name)
        .ok_or_else(|| BoardError::Unknown(name.to_string(), names().join(", ")))
}

/// The board whose model prefix matches `/proc/device-tree/model` (NUL-terminated text).
pub fn detect(model: &str) -> Option<Board> {
    let model = model.trim_end_matches('\0').trim();
    all().ok()?.into_iter().find(|board| {
        board
            .models
            .iter()
            .any(|prefix| model.starts_with(prefix.as_str()))
    })
}

pub fn check_address(kind: PanelKind, address: u8) -> Result<(), String> {
    match (kind, address) {
        (PanelKind::Ssd1306, 0x3C | 0x3D) => Ok(()),
        (PanelKind::Hd44780, 0x20..=0x27 | 0x38..=0x3F) => Ok(()),
        (PanelKind::Ssd1306, other) => Err(format!(
            "panel address {other:#04x}: an SSD1306 answers at 0x3C or 0x3D (kind = \"hd44780\" for a character LCD)"
        )),
        (PanelKind::Hd44780, other) => Err(format!(
            "panel address {other:#04x}: a PCF8574 backpack answers at 0x20-0x27, a PCF8574A at 0x38-0x3F"
        )),
    }
}

/// Picks the hardware for `board` (a name, `auto` or `simulated`), reading the device tree
/// at `model_path` for `auto`, and applies the config's overrides.
pub fn resolve(
    board: &str,
    panel: &PanelSettings,
    button: &ButtonSettings,
    model_path: &Path,
) -> Result<Hardware, BoardError> {
    let found = match board {
        "simulated" => None,
        "auto" => std::fs::read_to_string(model_path)
            .ok()
            .and_then(|model| detect(&model)),
        name => Some(by_name(name)?),
    };
    let Some(mut board) = found else {
        let (kind, size) = panel.simulated();
        return Ok(Hardware::Simulated { kind, size });
    };
    // Another kind than the board file's: its address and size no longer apply.
    if let Some(kind) = panel.kind_wanted()
        && kind != board.panel.kind
    {
        board.panel.kind = kind;
        board.panel.address = kind.default_address();
        board.panel.size = kind.default_size();
    }
    if let Some(i2c) = &panel.i2c {
        board.panel.i2c = i2c.clone();
    }
    if let Some(address) = panel.address {
        board.panel.address = address;
    }
    if let Some(size) = panel.size {
        board.panel.size = size;
    }
    if let Some(rotation) = panel.rotation {
        board.panel.rotation = rotation;
    }
    if let Some(chip) = &button.chip {
        board.button.chip = chip.clone();
    }
    if let Some(line) = button.line {
        board.button.line = line;
        // A line given by number means that line, whatever a board file names.
        board.button.line_name = None;
    }
    if let Some(name) = &button.line_name {
        board.button.line_name = Some(name.clone());
    }
    Ok(Hardware::Board(Box::new(board)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_board_file_parses_and_has_a_sane_panel() {
        let boards = all().expect("board files");
        assert_eq!(boards.len(), FILES.len());
        for board in &boards {
            assert!(
                board.panel.i2c.to_string_lossy().starts_with("/dev/i2c-"),
                "{}",
                board.name
            );
            assert!(!board.hotspot_interface.is_empty());
            assert_ne!(board.wiring.sda, board.wiring.scl);
        }
        assert!(boards.iter().any(|b| !b.name.starts_with("rpi")));
    }

    #[test]
    fn raspberry_pi_models_are_detected() {
        let cases = [
            ("Raspberry Pi Zero 2 W Rev 1.0\0", Some("rpi-zero-2w")),
            ("Raspberry Pi 3 Model B Plus Rev 1.3\0", Some("rpi-3b")),
            ("Raspberry Pi 3 Model B Rev 1.2\0", Some("rpi-3b")),
            ("Raspberry Pi 4 Model B Rev 1.5\0", Some("rpi-4b")),
            ("Raspberry Pi 5 Model B Rev 1.0\0", Some("rpi-5")),
            ("Radxa ZERO 3\0", Some("radxa-zero-3")),
            ("QEMU virt machine", None),
        ];
        for (model, expected) in cases {
            assert_eq!(
                detect(model).map(|b| b.name),
                expected.map(String::from),
                "{model}"
            );
        }
    }

    #[test]
    fn the_config_picks_a_board_and_refuses_bad_keys_with_file_and_line() {
        use crate::config::Config;
        let text =
            "board = \"rpi-5\"\n[panel]\naddress = 0x3D\nrotation = 180\nsize = \"128x32\"\n";
        let config = Config::parse(text, "x.toml").expect("board config");
        assert_eq!(config.board, "rpi-5");
        assert_eq!(config.panel.address, Some(0x3D));
        assert_eq!(config.panel.rotation, Some(Rotation::UpsideDown));
        assert_eq!(Config::parse("", "x.toml").expect("empty").board, "auto");
        assert_eq!(Config::development().board, "simulated");
        let cases = [
            ("board = \"pdp-11\"\n", "x.toml:1:", "unknown board"),
            ("[panel]\n\naddress = 0x20\n", "x.toml:3:", "0x3C or 0x3D"),
            ("[panel]\nrotation = 90\n", "x.toml:2:", "0 or 180"),
            ("[panel]\nsize = \"96x16\"\n", "x.toml:2:", "16x2"),
            (
                "[panel]\nkind = \"hd44780\"\naddress = 0x50\n",
                "x.toml:3:",
                "PCF8574",
            ),
            (
                "[panel]\nkind = \"ssd1306\"\nsize = \"20x4\"\n",
                "x.toml:3:",
                "not a size of ssd1306",
            ),
            (
                "[panel]\nsize = \"16x2\"\naddress = 0x10\n",
                "x.toml:3:",
                "0x38-0x3F",
            ),
            ("[button]\npin = 4\n", "x.toml:2:", "pin"),
        ];
        for (text, location, reason) in cases {
            let error = match Config::parse(text, "x.toml") {
                Ok(_) => panic!("accepted {text:?}"),
                Err(error) => error.to_string(),
            };
            assert!(error.starts_with(location), "{text:?} gave {error}");
            assert!(error.contains(reason), "{text:?} gave {error}");
        }
    }

    #[test]
    fn overrides_apply_and_auto_without_a_device_tree_is_simulated() {
        let panel = PanelSettings {
            address: Some(0x3D),
            size: Some(DisplaySize::Pixels(PanelSize::W128H32)),
            ..PanelSettings::default()
        };
        let button = ButtonSettings {
            line: Some(27),
            ..ButtonSettings::default()
        };
        let missing = Path::new("/nonexistent/model");
        match resolve("rpi-4b", &panel, &button, missing).expect("resolve") {
            Hardware::Board(board) => {
                assert_eq!(board.panel.address, 0x3D);
                assert_eq!(board.panel.size, DisplaySize::Pixels(PanelSize::W128H32));
                assert_eq!(board.button.line, 27);
                assert_eq!(board.button.line_name, None);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            resolve("auto", &panel, &button, missing).expect("auto"),
            Hardware::Simulated {
                kind: PanelKind::Ssd1306,
                size: DisplaySize::Pixels(PanelSize::W128H32)
            }
        );
        assert!(resolve("pdp-11", &panel, &button, missing).is_err());
    }

    #[test]
    fn a_character_lcd_on_a_board_takes_its_own_address_and_size() {
        let missing = Path::new("/nonexistent/model");
        let button = ButtonSettings::default();
        let lcd = PanelSettings {
            kind: Some(PanelKind::Hd44780),
            ..PanelSettings::default()
        };
        match resolve("rpi-3b", &lcd, &button, missing).expect("resolve") {
            Hardware::Board(board) => {
                assert_eq!(board.panel.kind, PanelKind::Hd44780);
                assert_eq!(board.panel.address, 0x27);
                assert_eq!(board.panel.size, DisplaySize::Chars(TextSize::C16x2));
            }
            other => panic!("{other:?}"),
        }
        // A character size alone means a character LCD; the address jumpers are honoured.
        let wide = PanelSettings {
            size: Some(DisplaySize::Chars(TextSize::C20x4)),
            address: Some(0x3F),
            ..PanelSettings::default()
        };
        assert!(wide.validate().is_ok());
        match resolve("rpi-5", &wide, &button, missing).expect("resolve") {
            Hardware::Board(board) => {
                assert_eq!(board.panel.kind, PanelKind::Hd44780);
                assert_eq!(board.panel.address, 0x3F);
                assert_eq!(board.panel.size, DisplaySize::Chars(TextSize::C20x4));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            resolve("simulated", &wide, &button, missing).expect("simulated"),
            Hardware::Simulated {
                kind: PanelKind::Hd44780,
                size: DisplaySize::Chars(TextSize::C20x4)
            }
        );
    }
}
