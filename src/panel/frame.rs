//! A 1-bit framebuffer that pages are drawn into, and its PNG form.
//!
//! The frame is ours, not the driver's: rendering is pure and the same frame goes to the
//! SSD1306, to `<data_dir>/panel.png` and to the golden-image tests.

use std::fmt;
use std::io::Write;

use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::{DrawTarget, OriginDimensions, Pixel, Size};
use serde::{Deserialize, Serialize};

/// The two SSD1306 panels sold as 0.96" (128×64) and 0.91" (128×32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum PanelSize {
    #[default]
    #[serde(rename = "128x64")]
    W128H64,
    #[serde(rename = "128x32")]
    W128H32,
}

impl PanelSize {
    pub const WIDTH: u32 = 128;

    pub fn width(self) -> u32 {
        Self::WIDTH
    }

    pub fn height(self) -> u32 {
        match self {
            PanelSize::W128H64 => 64,
            PanelSize::W128H32 => 32,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PanelSize::W128H64 => "128x64",
            PanelSize::W128H32 => "128x32",
        }
    }
}

impl fmt::Display for PanelSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Bytes in one row of pixels.
const STRIDE: usize = (PanelSize::WIDTH / 8) as usize;
/// The largest frame: 128×64 bits.
const MAX_BYTES: usize = STRIDE * 64;

/// One screenful of pixels, row-major, most significant bit leftmost.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    size: PanelSize,
    bits: [u8; MAX_BYTES],
}

impl fmt::Debug for Frame {
    /// The frame as text art, so a failing test shows the picture.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Frame {}:", self.size)?;
        for y in 0..self.size.height() {
            let row: String = (0..self.size.width())
                .map(|x| if self.pixel(x, y) { '#' } else { '.' })
                .collect();
            writeln!(f, "{row}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("PNG: {0}")]
    Encode(#[from] png::EncodingError),
    #[error("PNG: {0}")]
    Decode(#[from] png::DecodingError),
    #[error("the picture is {0}×{1}, not a panel size at scale {2}")]
    WrongSize(u32, u32, u32),
    #[error("frame data has the wrong length")]
    WrongLength,
}

impl Frame {
    pub fn new(size: PanelSize) -> Frame {
        Frame {
            size,
            bits: [0; MAX_BYTES],
        }
    }

    pub fn size(&self) -> PanelSize {
        self.size
    }

    pub fn pixel(&self, x: u32, y: u32) -> bool {
        if x >= self.size.width() || y >= self.size.height() {
            return false;
        }
        let index = y as usize * STRIDE + x as usize / 8;
        self.bits[index] & (0x80 >> (x % 8)) != 0
    }

    pub fn set(&mut self, x: u32, y: u32, on: bool) {
        if x >= self.size.width() || y >= self.size.height() {
            return;
        }
        let index = y as usize * STRIDE + x as usize / 8;
        let mask = 0x80 >> (x % 8);
        if on {
            self.bits[index] |= mask;
        } else {
            self.bits[index] &= !mask;
        }
    }

    /// The frame moved by (dx, dy) pixels; what leaves the edge is lost. Used to shift the
    /// content now and then against burn-in.
    pub fn shifted(&self, dx: u32, dy: u32) -> Frame {
        let mut out = Frame::new(self.size);
        for y in 0..self.size.height() {
            for x in 0..self.size.width() {
                if self.pixel(x, y) {
                    out.set(x + dx, y + dy, true);
                }
            }
        }
        out
    }

    pub fn is_blank(&self) -> bool {
        self.bytes().iter().all(|b| *b == 0)
    }

    /// The packed rows (16 bytes each).
    pub fn bytes(&self) -> &[u8] {
        &self.bits[..STRIDE * self.size.height() as usize]
    }

    pub fn from_bytes(size: PanelSize, bytes: &[u8]) -> Result<Frame, FrameError> {
        let mut frame = Frame::new(size);
        let length = frame.bytes().len();
        if bytes.len() != length {
            return Err(FrameError::WrongLength);
        }
        frame.bits[..length].copy_from_slice(bytes);
        Ok(frame)
    }

    /// A grayscale PNG, each panel pixel `scale`×`scale` picture pixels (lit = white).
    pub fn to_png(&self, scale: u32) -> Result<Vec<u8>, FrameError> {
        let scale = scale.max(1);
        let (width, height) = (self.size.width() * scale, self.size.height() * scale);
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        let mut data = Vec::with_capacity((width * height) as usize);
        for y in 0..height {
            for x in 0..width {
                data.push(if self.pixel(x / scale, y / scale) {
                    0xff
                } else {
                    0
                });
            }
        }
        writer.write_image_data(&data)?;
        writer.finish()?;
        Ok(out)
    }

    /// Reads a picture written by `to_png` at `scale` (any PNG: a pixel brighter than half
    /// is lit; each `scale`×`scale` block is read at its top-left picture pixel).
    pub fn from_png(bytes: &[u8], scale: u32) -> Result<Frame, FrameError> {
        let scale = scale.max(1);
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info()?;
        let mut data = vec![0; reader.output_buffer_size().unwrap_or(0)];
        let info = reader.next_frame(&mut data)?;
        let size = match (info.width, info.height) {
            (w, h) if w == 128 * scale && h == 64 * scale => PanelSize::W128H64,
            (w, h) if w == 128 * scale && h == 32 * scale => PanelSize::W128H32,
            (w, h) => return Err(FrameError::WrongSize(w, h, scale)),
        };
        let channels = info.color_type.samples();
        let mut frame = Frame::new(size);
        for y in 0..size.height() {
            for x in 0..size.width() {
                let offset =
                    (y * scale) as usize * info.line_size + (x * scale) as usize * channels;
                let lit = data.get(offset).is_some_and(|v| *v >= 0x80);
                frame.set(x, y, lit);
            }
        }
        Ok(frame)
    }

    /// Writes the PNG to `path` through a temporary file, so a reader never sees half a picture.
    pub fn write_png(&self, path: &std::path::Path, scale: u32) -> std::io::Result<()> {
        let bytes = self.to_png(scale).map_err(std::io::Error::other)?;
        let temporary = path.with_extension("png.tmp");
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(&bytes)?;
        drop(file);
        std::fs::rename(&temporary, path)
    }
}

impl OriginDimensions for Frame {
    fn size(&self) -> Size {
        Size::new(self.size.width(), self.size.height())
    }
}

impl DrawTarget for Frame {
    type Color = BinaryColor;
    type Error = std::convert::Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(point, color) in pixels {
            if let (Ok(x), Ok(y)) = (u32::try_from(point.x), u32::try_from(point.y)) {
                self.set(x, y, color.is_on());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_round_trip_through_png_at_any_scale() {
        let mut frame = Frame::new(PanelSize::W128H32);
        frame.set(0, 0, true);
        frame.set(127, 31, true);
        frame.set(64, 7, true);
        frame.set(200, 200, true); // off the panel: ignored
        for scale in [1, 3] {
            let png = frame.to_png(scale).expect("encode");
            let back = Frame::from_png(&png, scale).expect("decode");
            assert_eq!(back, frame);
        }
        assert!(Frame::from_png(&frame.to_png(2).expect("png"), 1).is_err());
    }

    #[test]
    fn shifting_moves_every_pixel() {
        let mut frame = Frame::new(PanelSize::W128H64);
        frame.set(10, 10, true);
        frame.set(127, 63, true);
        let moved = frame.shifted(1, 1);
        assert!(moved.pixel(11, 11));
        assert!(!moved.pixel(10, 10));
        assert_eq!(moved.bytes().iter().map(|b| b.count_ones()).sum::<u32>(), 1);
    }
}
