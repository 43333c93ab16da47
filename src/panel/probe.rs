//! What answers on an I2C bus (`letterbox panel --probe`), and what it probably is.
//!
//! Each address in 0x08–0x77 gets a one-byte read, as `i2cdetect -r` does: a read changes
//! nothing on the chips a panel uses (the PCF8574 returns its pins, the SSD1306 its status
//! byte), while a zero-length write, the other usual probe, can upset some EEPROMs.

use embedded_hal::i2c::{Error, ErrorKind, I2c};

/// 0x00–0x07 and 0x78–0x7F are reserved addresses (I2C specification, UM10204 table 4).
pub const FIRST_ADDRESS: u8 = 0x08;
pub const LAST_ADDRESS: u8 = 0x77;

/// The addresses that answered, and how many others failed with something other than
/// "no acknowledge" (a sign of a wiring or pull-up problem rather than an empty address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub found: Vec<u8>,
    pub bus_errors: usize,
    /// The first such error, for the report.
    pub first_error: Option<String>,
}

/// Reads one byte at every address.
pub fn scan<I: I2c>(i2c: &mut I) -> Scan {
    let mut scan = Scan {
        found: Vec::new(),
        bus_errors: 0,
        first_error: None,
    };
    for address in FIRST_ADDRESS..=LAST_ADDRESS {
        let mut byte = [0u8; 1];
        match i2c.read(address, &mut byte) {
            Ok(()) => scan.found.push(address),
            Err(error) => match error.kind() {
                ErrorKind::NoAcknowledge(_) => {}
                // Many Linux bus drivers report a missing device as EREMOTEIO or EIO,
                // which arrive as Other or Bus: counted, but the address is empty.
                kind => {
                    scan.bus_errors += 1;
                    if scan.first_error.is_none() {
                        scan.first_error = Some(format!("{kind:?}"));
                    }
                }
            },
        }
    }
    scan
}

/// What a device at `address` most likely is, for a person wiring a panel.
pub fn guess(address: u8) -> &'static str {
    match address {
        0x3C | 0x3D => "SSD1306 OLED: kind = \"ssd1306\" (a PCF8574A backpack can also sit here)",
        0x20..=0x27 => "PCF8574 backpack, an HD44780 character LCD: kind = \"hd44780\"",
        0x38..=0x3F => "PCF8574A backpack, an HD44780 character LCD: kind = \"hd44780\"",
        _ => "not a panel Letterbox drives",
    }
}

/// The scan as lines for a person: one per device, then what to set.
pub fn report(bus: &str, scan: &Scan) -> String {
    let mut out = String::new();
    if scan.found.is_empty() {
        out.push_str(&format!("{bus}: nothing answered\n"));
    }
    for address in &scan.found {
        out.push_str(&format!("{bus}: {address:#04x}  {}\n", guess(*address)));
    }
    if scan.bus_errors > 0 {
        // Some bus drivers say "no device" this way; only a whole bus of them is telling.
        let all = usize::from(LAST_ADDRESS - FIRST_ADDRESS + 1) - scan.found.len();
        let error = scan.first_error.as_deref().unwrap_or("");
        out.push_str(&format!(
            "{} of {all} empty addresses gave a bus error ({error}){}\n",
            scan.bus_errors,
            if scan.found.is_empty() {
                ": check SDA/SCL, power and that the I2C bus is enabled"
            } else {
                ""
            }
        ));
    }
    if let Some(address) = scan.found.iter().find(|a| guess(**a) != guess(0)) {
        let kind = match address {
            0x3C | 0x3D => "ssd1306",
            _ => "hd44780",
        };
        out.push_str(&format!(
            "In the config: [panel] kind = \"{kind}\", address = {address:#04x}\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_name_both_backpacks_and_the_oled() {
        assert!(guess(0x27).starts_with("PCF8574 "));
        assert!(guess(0x3F).starts_with("PCF8574A"));
        assert!(guess(0x3C).starts_with("SSD1306"));
        assert!(guess(0x50).starts_with("not a panel"));
        let scan = Scan {
            found: vec![0x27, 0x50],
            bus_errors: 0,
            first_error: None,
        };
        let text = report("/dev/i2c-1", &scan);
        assert!(text.contains("/dev/i2c-1: 0x27  PCF8574"), "{text}");
        assert!(
            text.contains("kind = \"hd44780\", address = 0x27"),
            "{text}"
        );
    }
}
