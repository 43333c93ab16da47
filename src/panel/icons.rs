//! 8×8 icons for the 128×32 panel, where a word does not fit. One byte per row, the most
//! significant bit leftmost.

use super::frame::Frame;

pub type Icon = [u8; 8];

pub const ENVELOPE: Icon = [
    0b1111_1111,
    0b1100_0011,
    0b1010_0101,
    0b1001_1001,
    0b1000_0001,
    0b1000_0001,
    0b1111_1111,
    0b0000_0000,
];

pub const CLOCK: Icon = [
    0b0011_1100,
    0b0100_1010,
    0b1000_1001,
    0b1000_1001,
    0b1000_0101,
    0b1000_0001,
    0b0100_0010,
    0b0011_1100,
];

/// Mail coming in: an arrow down into a tray.
pub const ARROW_IN: Icon = [
    0b0001_1000,
    0b0001_1000,
    0b0111_1110,
    0b0011_1100,
    0b0001_1000,
    0b1000_0001,
    0b1111_1111,
    0b0000_0000,
];

/// Mail going out: an arrow up out of a tray.
pub const ARROW_OUT: Icon = [
    0b0001_1000,
    0b0011_1100,
    0b0111_1110,
    0b0001_1000,
    0b0001_1000,
    0b1000_0001,
    0b1111_1111,
    0b0000_0000,
];

/// Three connected boxes: the network.
pub const NETWORK: Icon = [
    0b0011_1100,
    0b0011_1100,
    0b0001_1000,
    0b1111_1111,
    0b1000_0001,
    0b1110_0111,
    0b1110_0111,
    0b0000_0000,
];

pub const DISK: Icon = [
    0b0111_1110,
    0b1000_0001,
    0b0111_1110,
    0b1000_0001,
    0b1000_0001,
    0b1000_0101,
    0b0111_1110,
    0b0000_0000,
];

pub const WIFI: Icon = [
    0b0111_1110,
    0b1000_0001,
    0b0011_1100,
    0b0100_0010,
    0b0001_1000,
    0b0000_0000,
    0b0001_1000,
    0b0001_1000,
];

pub const KEY: Icon = [
    0b0111_0000,
    0b1000_1000,
    0b1000_1111,
    0b1000_1111,
    0b0111_0101,
    0b0000_0000,
    0b0000_0000,
    0b0000_0000,
];

pub const GLOBE: Icon = [
    0b0011_1100,
    0b0101_1010,
    0b1111_1111,
    0b1001_1001,
    0b1111_1111,
    0b0101_1010,
    0b0011_1100,
    0b0000_0000,
];

/// Draws `icon` with its top-left corner at (x, y); lit bits only.
pub fn draw(frame: &mut Frame, x: i32, y: i32, icon: &Icon) {
    for (dy, row) in (0u32..).zip(icon) {
        for dx in 0..8u32 {
            if row & (0x80 >> dx) != 0
                && let (Ok(px), Ok(py)) = (u32::try_from(x), u32::try_from(y))
            {
                frame.set(px + dx, py + dy, true);
            }
        }
    }
}
