//! A picture of a character LCD showing a screen: white dots on blue glass, each character a
//! 5×8 cell as the HD44780 draws it. The README shows every page this way, rendered from
//! the same screens as the golden text (`tests/panel_golden.rs`).

use embedded_graphics::Drawable;
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::mono_font::iso_8859_1::FONT_5X8;
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::{DrawTarget, OriginDimensions, Pixel, Point, Size};
use embedded_graphics::text::{Baseline, Text};

use super::frame::FrameError;
use super::text::{Cell, TextScreen};

/// Dots of glass around the characters.
const BORDER: u32 = 4;
const GLASS: [u8; 3] = [0x1D, 0x3F, 0xC4];
/// A dot that is off still shows faintly on a real LCD.
const DOT_OFF: [u8; 3] = [0x27, 0x4C, 0xD6];
const DOT_ON: [u8; 3] = [0xE8, 0xF0, 0xFF];

/// The HD44780's 0x7E, which marks a cut line.
const ARROW: [u8; 8] = [0x00, 0x04, 0x02, 0x1F, 0x02, 0x04, 0x00, 0x00];

/// One 5×8 character cell being drawn into.
struct CellDots([u8; 8]);

impl OriginDimensions for CellDots {
    fn size(&self) -> Size {
        Size::new(5, 8)
    }
}

impl DrawTarget for CellDots {
    type Color = BinaryColor;
    type Error = std::convert::Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(point, color) in pixels {
            let (Ok(x), Ok(y)) = (u32::try_from(point.x), u32::try_from(point.y)) else {
                continue;
            };
            if let Some(row) = self.0.get_mut(y as usize)
                && x < 5
                && color.is_on()
            {
                *row |= 0x10 >> x;
            }
        }
        Ok(())
    }
}

/// The cell's dots: rows of five, the most significant of the low five bits leftmost.
fn dots(cell: Cell) -> [u8; 8] {
    match cell {
        Cell::Glyph(glyph) => glyph.pattern(),
        Cell::Block => [0x1F; 8],
        Cell::Cut => ARROW,
        Cell::Char(c) => {
            let mut dots = CellDots([0; 8]);
            let mut text = [0u8; 4];
            let style = MonoTextStyle::new(&FONT_5X8, BinaryColor::On);
            let drawn = Text::with_baseline(
                c.encode_utf8(&mut text),
                Point::zero(),
                style,
                Baseline::Top,
            )
            .draw(&mut dots);
            match drawn {
                Ok(_) => dots.0,
                Err(never) => match never {},
            }
        }
    }
}

/// The screen as an RGB PNG, each dot `scale`×`scale` pixels with a one-pixel seam.
pub fn to_png(screen: &TextScreen, scale: u32) -> Result<Vec<u8>, FrameError> {
    let size = screen.size();
    let columns = u32::try_from(size.columns()).unwrap_or(0);
    let rows = u32::try_from(size.rows()).unwrap_or(0);
    // A cell is 5×8 dots with one dot between cells.
    let dots_wide = 2 * BORDER + columns * 6 - 1;
    let dots_high = 2 * BORDER + rows * 9 - 1;
    let scale = scale.max(2);
    let (width, height) = (dots_wide * scale, dots_high * scale);
    let mut rgb = vec![0u8; (width * height * 3) as usize];
    let mut paint = |dx: u32, dy: u32, color: [u8; 3]| {
        for y in dy * scale..(dy + 1) * scale - 1 {
            for x in dx * scale..(dx + 1) * scale - 1 {
                let at = ((y * width + x) * 3) as usize;
                if let Some(pixel) = rgb.get_mut(at..at + 3) {
                    pixel.copy_from_slice(&color);
                }
            }
        }
    };
    for row in 0..rows {
        for (column, cell) in (0..columns).zip(screen.row(row as usize)) {
            let cell_dots = dots(*cell);
            for (y, bits) in (0..8).zip(cell_dots) {
                for x in 0..5 {
                    let on = bits & (0x10 >> x) != 0;
                    let color = if on { DOT_ON } else { DOT_OFF };
                    paint(BORDER + column * 6 + x, BORDER + row * 9 + y, color);
                }
            }
        }
    }
    // The glass between the dots, seams included.
    for pixel in rgb.chunks_exact_mut(3) {
        if pixel == [0, 0, 0] {
            pixel.copy_from_slice(&GLASS);
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&rgb)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::text::{Glyph, TextSize};

    #[test]
    fn characters_come_from_the_5x8_font_and_glyphs_from_their_patterns() {
        let i = dots(Cell::Char('I'));
        assert!(i.iter().any(|row| *row != 0), "an I has dots");
        assert_eq!(dots(Cell::Char(' ')), [0; 8]);
        assert_eq!(dots(Cell::Glyph(Glyph::Up)), Glyph::Up.pattern());
        let png = to_png(&TextScreen::blank(TextSize::C16x2), 3).expect("png");
        assert!(png.starts_with(b"\x89PNG"));
    }
}
