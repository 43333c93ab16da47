//! The SSD1306 renderer: one pure function from a view (`view.rs`) and a panel size to a
//! frame.
//!
//! Layout: on 128×64 a title bar and five rows of 6×10 text; on 128×32 three rows of 6×10
//! text, with 8×8 icons where a word does not fit. Everything stays inside 127×63 (127×31)
//! so the burn-in shift by one pixel never cuts a glyph.

use embedded_graphics::Drawable;
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::mono_font::iso_8859_1::FONT_6X10;
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::{Point, Primitive, Size};
use embedded_graphics::primitives::{Circle, Line, PrimitiveStyle, Rectangle, Triangle};
use embedded_graphics::text::{Baseline, Text};

use super::frame::{Frame, PanelSize};
use super::icons::{self, Icon};
use super::view::{
    AlertFacts, Body, MailFacts, PortGroup, PortState, Screen, SetupFacts, SystemFacts, View, view,
};
use crate::status::Status;

const ROW: i32 = 10;
/// Characters in a 6×10 row across the panel.
const COLUMNS: usize = 21;

fn style() -> MonoTextStyle<'static, BinaryColor> {
    MonoTextStyle::new(&FONT_6X10, BinaryColor::On)
}

fn inverse() -> MonoTextStyle<'static, BinaryColor> {
    MonoTextStyle::new(&FONT_6X10, BinaryColor::Off)
}

/// Decides and draws one screen: `draw(&view(screen, status, now), size)`.
pub fn render(screen: &Screen, status: &Status, now: i64, size: PanelSize) -> Frame {
    draw(&view(screen, status, now), size)
}

/// Draws a view at `size`.
pub fn draw(view: &View, size: PanelSize) -> Frame {
    let mut frame = Frame::new(size);
    let mut canvas = Canvas {
        frame: &mut frame,
        tall: size == PanelSize::W128H64,
    };
    let (title, note) = (view.title, view.note.as_str());
    match &view.body {
        Body::Ports { groups, summary } => canvas.ports(title, note, groups, summary),
        Body::Mail(mail) => canvas.mail(title, note, mail),
        Body::System(system) => canvas.system(title, note, system),
        Body::Setup(setup) => canvas.setup(title, setup),
        Body::Alert(alert) => canvas.alert(title, alert),
        Body::Hold { left, percent, .. } => canvas.hold(title, note, *left, *percent),
        Body::ShuttingDown => canvas.shutting_down(title),
    }
    frame
}

struct Canvas<'a> {
    frame: &'a mut Frame,
    tall: bool,
}

/// Drawing into our own frame cannot fail (its error type is `Infallible`).
fn ignore<T>(_: Result<T, std::convert::Infallible>) {}

impl Canvas<'_> {
    fn text(&mut self, x: i32, y: i32, text: &str) {
        let max = usize::try_from((127 - x) / 6).unwrap_or(0);
        let text = fit(text, max);
        ignore(
            Text::with_baseline(&text, Point::new(x, y), style(), Baseline::Top).draw(self.frame),
        );
    }

    /// Text ending at column 126.
    fn text_right(&mut self, y: i32, text: &str) {
        let width = i32::try_from(text.chars().count()).unwrap_or(0) * 6;
        self.text((127 - width).max(0), y, text);
    }

    fn icon(&mut self, x: i32, y: i32, icon: &Icon) {
        icons::draw(self.frame, x, y, icon);
    }

    /// The 128×64 title bar: inverted, title at the left and a note at the right.
    fn title(&mut self, title: &str, note: &str) {
        ignore(
            Rectangle::new(Point::new(0, 0), Size::new(127, 10))
                .into_styled(PrimitiveStyle::with_fill(BinaryColor::On))
                .draw(self.frame),
        );
        ignore(
            Text::with_baseline(title, Point::new(2, 0), inverse(), Baseline::Top).draw(self.frame),
        );
        let width = i32::try_from(note.chars().count()).unwrap_or(0) * 6;
        ignore(
            Text::with_baseline(note, Point::new(125 - width, 0), inverse(), Baseline::Top)
                .draw(self.frame),
        );
    }

    /// Row `n` (0-based) under the title bar on 128×64, or from the top on 128×32.
    fn row(&self, n: i32) -> i32 {
        if self.tall { 12 + n * ROW } else { 1 + n * ROW }
    }

    fn ports(&mut self, title: &str, note: &str, groups: &[PortGroup], summary: &str) {
        if self.tall {
            self.title(title, note);
            for (n, group) in groups.iter().enumerate() {
                let y = self.row(i32::try_from(n).unwrap_or(0));
                self.state_mark(1, y, group.state);
                self.text(13, y, group.label);
                self.text(55, y, &group.ports);
                self.text_right(y, group.state.word());
            }
            return;
        }
        // 128×32: five columns of label and mark, then one line saying what is wrong.
        for (n, group) in groups.iter().enumerate() {
            let column = i32::try_from(n).unwrap_or(0) * 25 + 1;
            let width = i32::try_from(group.short.len()).unwrap_or(0) * 6;
            self.text(column + (25 - width) / 2, 1, group.short);
            self.state_mark(column + 8, 11, group.state);
        }
        self.text(1, 21, summary);
    }

    /// A filled dot (up), a ring (off) or a crossed box (failed), 9×9 at (x, y).
    fn state_mark(&mut self, x: i32, y: i32, state: PortState) {
        let top_left = Point::new(x, y);
        match state {
            PortState::Up => ignore(
                Circle::new(top_left, 9)
                    .into_styled(PrimitiveStyle::with_fill(BinaryColor::On))
                    .draw(self.frame),
            ),
            PortState::Off => ignore(
                Circle::new(top_left, 9)
                    .into_styled(PrimitiveStyle::with_stroke(BinaryColor::On, 1))
                    .draw(self.frame),
            ),
            PortState::Failed => {
                let stroke = PrimitiveStyle::with_stroke(BinaryColor::On, 1);
                ignore(
                    Rectangle::new(top_left, Size::new(9, 9))
                        .into_styled(stroke)
                        .draw(self.frame),
                );
                ignore(
                    Line::new(top_left, top_left + Point::new(8, 8))
                        .into_styled(stroke)
                        .draw(self.frame),
                );
                ignore(
                    Line::new(top_left + Point::new(8, 0), top_left + Point::new(0, 8))
                        .into_styled(stroke)
                        .draw(self.frame),
                );
            }
        }
    }

    fn mail(&mut self, title: &str, note: &str, mail: &MailFacts) {
        let ago = |age: &Option<String>| {
            age.as_ref()
                .map_or("never".to_string(), |age| format!("{age} ago"))
        };
        if self.tall {
            self.title(title, note);
            let rows = [
                ("Stored", mail.stored.to_string()),
                ("Queue", mail.queue.clone()),
                ("Last in", ago(&mail.last_in)),
                ("Last out", ago(&mail.last_out)),
            ];
            for (n, (label, value)) in rows.iter().enumerate() {
                let y = self.row(i32::try_from(n).unwrap_or(0));
                self.text(1, y, label);
                self.text(55, y, value);
            }
            // The last row of a 64-pixel screen: 21 characters, label and counts together.
            if let Some(spam) = &mail.spam {
                let y = self.row(i32::try_from(rows.len()).unwrap_or(0));
                self.text(1, y, spam);
            }
            return;
        }
        let short = |age: &Option<String>| age.clone().unwrap_or_else(|| "-".to_string());
        self.icon(1, 2, &icons::ENVELOPE);
        let ages_row = if let Some(spam) = &mail.spam {
            // Three rows for four facts: stored and queue share the first (as on the 16×2
            // LCD), and the day's spam takes the last.
            self.text(12, 1, &mail.stored.to_string());
            self.icon(64, 2, &icons::CLOCK);
            self.text(75, 1, &mail.queue);
            self.text(1, 21, spam);
            11
        } else {
            self.text(12, 1, &format!("{} stored", mail.stored));
            self.icon(1, 12, &icons::CLOCK);
            let queue = match mail.queue_depth {
                0 => "queue empty".to_string(),
                _ => format!("queue {}", mail.queue),
            };
            self.text(12, 11, &queue);
            21
        };
        self.icon(1, ages_row + 1, &icons::ARROW_IN);
        self.text(12, ages_row, &short(&mail.last_in));
        self.icon(64, ages_row + 1, &icons::ARROW_OUT);
        self.text(75, ages_row, &short(&mail.last_out));
    }

    fn system(&mut self, title: &str, note: &str, system: &SystemFacts) {
        let first = system.address.as_str();
        let (temperature, uptime) = (&system.temperature, &system.uptime);
        let disk = system.disk.clone();
        if self.tall {
            self.title(title, note);
            self.text(1, self.row(0), &format!("IP {first}"));
            if let Some(second) = &system.second_address {
                self.text(19, self.row(1), second);
            } else {
                self.text(1, self.row(1), &system.hostname);
            }
            match disk {
                Some((percent, free)) => {
                    self.text(1, self.row(2), &format!("Used {percent}%"));
                    self.text_right(self.row(2), &free);
                    self.bar(1, self.row(3) + 2, 125, percent);
                }
                None => self.text(1, self.row(2), "Disk unknown"),
            }
            self.text(1, self.row(4), &format!("Up {uptime}"));
            self.text_right(self.row(4), temperature);
            return;
        }
        self.icon(1, 2, &icons::NETWORK);
        self.text(12, 1, first);
        self.icon(1, 12, &icons::DISK);
        match disk {
            Some((percent, free)) => {
                self.bar(12, 13, 40, percent);
                self.text(56, 11, &free);
            }
            None => self.text(12, 11, "unknown"),
        }
        self.text(1, 21, &format!("up {uptime}"));
        self.text_right(21, temperature);
    }

    /// A horizontal bar `width` wide and 6 high, filled to `percent`.
    fn bar(&mut self, x: i32, y: i32, width: u32, percent: u64) {
        let stroke = PrimitiveStyle::with_stroke(BinaryColor::On, 1);
        ignore(
            Rectangle::new(Point::new(x, y), Size::new(width, 6))
                .into_styled(stroke)
                .draw(self.frame),
        );
        let inner =
            u32::try_from(u64::from(width.saturating_sub(4)) * percent.min(100) / 100).unwrap_or(0);
        if inner > 0 {
            ignore(
                Rectangle::new(Point::new(x + 2, y + 2), Size::new(inner, 2))
                    .into_styled(PrimitiveStyle::with_fill(BinaryColor::On))
                    .draw(self.frame),
            );
        }
    }

    fn setup(&mut self, title: &str, setup: &SetupFacts) {
        match setup {
            SetupFacts::Starting => {
                if self.tall {
                    self.title(title, "");
                    self.text(1, self.row(1), "Starting the");
                    self.text(1, self.row(2), "setup hotspot...");
                } else {
                    self.text(1, 1, title);
                    self.text(1, 11, "starting hotspot...");
                }
            }
            SetupFacts::Wired { url, code } => {
                if self.tall {
                    self.title(title, "");
                    self.text(1, self.row(0), "On this network");
                    self.text(1, self.row(1), "open:");
                    self.text(7, self.row(2), url);
                    self.text(1, self.row(3), "Code:");
                    self.text(7, self.row(4), code);
                    return;
                }
                self.text(1, 1, "SETUP: open");
                self.icon(1, 12, &icons::GLOBE);
                self.text(12, 11, url);
                self.icon(1, 22, &icons::KEY);
                self.text(12, 21, code);
            }
            SetupFacts::Hotspot {
                network,
                passphrase,
                url,
                problem,
            } => {
                // A failed join replaces the address: the phone finds the page by itself.
                let (label, last) = match problem {
                    Some(problem) => ("Not joined:", problem),
                    None => ("Then open:", url),
                };
                if self.tall {
                    self.title(title, "");
                    self.text(1, self.row(0), "Join Wi-Fi:");
                    self.text(7, self.row(1), network);
                    self.text(1, self.row(2), &format!("Key {passphrase}"));
                    self.text(1, self.row(3), label);
                    self.text(7, self.row(4), last);
                    return;
                }
                self.icon(1, 2, &icons::WIFI);
                self.text(12, 1, network);
                self.icon(1, 12, &icons::KEY);
                self.text(12, 11, passphrase);
                match problem {
                    Some(problem) => self.text(1, 21, &format!("! {problem}")),
                    None => {
                        self.icon(1, 22, &icons::GLOBE);
                        self.text(12, 21, url);
                    }
                }
            }
        }
    }

    fn alert(&mut self, title: &str, alert: &AlertFacts) {
        if self.tall {
            self.title(title, &alert.position);
            self.warning(2, 15);
            self.text(24, 14, &alert.title);
            self.text(24, 24, &alert.detail);
            self.text(1, 38, "Press the button");
            self.text(1, 48, "to dismiss.");
            return;
        }
        self.warning(1, 2);
        self.text(22, 1, &alert.title);
        self.text(22, 11, &alert.detail);
        self.text(22, 21, &format!("press=OK {}", alert.position));
    }

    /// A warning triangle, 17×15, at (x, y).
    fn warning(&mut self, x: i32, y: i32) {
        ignore(
            Triangle::new(
                Point::new(x + 8, y),
                Point::new(x, y + 14),
                Point::new(x + 16, y + 14),
            )
            .into_styled(PrimitiveStyle::with_fill(BinaryColor::On))
            .draw(self.frame),
        );
        let off = PrimitiveStyle::with_fill(BinaryColor::Off);
        ignore(
            Rectangle::new(Point::new(x + 7, y + 4), Size::new(3, 6))
                .into_styled(off)
                .draw(self.frame),
        );
        ignore(
            Rectangle::new(Point::new(x + 7, y + 11), Size::new(3, 2))
                .into_styled(off)
                .draw(self.frame),
        );
    }

    fn hold(&mut self, title: &str, note: &str, left: u64, percent: u64) {
        if self.tall {
            self.title(title, note);
            self.text(1, self.row(0), "Release now:");
            self.text(7, self.row(1), "setup mode");
            self.text(1, self.row(2), "Keep holding:");
            self.text(7, self.row(3), &format!("power off in {left}s"));
            self.bar(1, self.row(4) + 2, 125, percent);
            return;
        }
        self.text(1, 1, "Release: setup mode");
        self.text(1, 11, &format!("Hold: power off {left}s"));
        self.bar(1, 24, 125, percent);
    }

    fn shutting_down(&mut self, title: &str) {
        if self.tall {
            self.title(title, "");
            self.text(1, self.row(0), "Shutting down...");
            self.text(1, self.row(2), "Unplug when the");
            self.text(1, self.row(3), "screen is dark.");
            return;
        }
        self.text(1, 1, "Shutting down...");
        self.text(1, 11, "Unplug when the");
        self.text(1, 21, "screen is dark.");
    }
}

/// At most `max` characters; a cut is marked with '~'.
fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('~');
    out
}

/// Characters per row, for tests and callers that lay out their own text.
pub const fn columns() -> usize {
    COLUMNS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::view::Page;

    #[test]
    fn cuts_stay_short() {
        assert_eq!(fit("abcdef", 4), "abc~");
        assert_eq!(fit("abc", 4), "abc");
    }

    #[test]
    fn nothing_is_drawn_in_the_shift_margin() {
        let status = Status::default();
        for size in [PanelSize::W128H64, PanelSize::W128H32] {
            for page in [Page::Ports, Page::Mail, Page::System, Page::Setup] {
                let frame = render(&Screen::Page(page), &status, 0, size);
                let last_column = (0..size.height()).any(|y| frame.pixel(127, y));
                assert!(!last_column, "{page:?} {size} uses column 127");
                let last_row = (0..128).any(|x| frame.pixel(x, size.height() - 1));
                assert!(!last_row, "{page:?} {size} uses the last row");
            }
        }
    }
}
