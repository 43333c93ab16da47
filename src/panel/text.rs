//! The character renderer: a view laid out in rows of characters, for the HD44780 LCDs
//! (16×2, 20×4) and the terminal (`letterbox panel --text`, the simulated panel's log).
//!
//! Each page gives its lines in display order, each with a priority; when the display has
//! fewer rows than lines, the least important lines go first (on a 16×2: the second
//! address, then uptime and temperature, before the disk; the hotspot's address before its
//! name and passphrase). A 20×4 display adds a title row; a 16×2 display
//! has no room for one, so its lines carry their own marks. A line longer than the display
//! is cut, and the cut is marked (→, the HD44780's 0x7E).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::view::{AlertFacts, Body, MailFacts, PortGroup, PortState, SetupFacts, View};

/// The character LCDs sold with PCF8574 backpacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum TextSize {
    #[default]
    #[serde(rename = "16x2")]
    C16x2,
    #[serde(rename = "20x4")]
    C20x4,
}

impl TextSize {
    pub const ALL: [TextSize; 2] = [TextSize::C16x2, TextSize::C20x4];

    pub fn columns(self) -> usize {
        match self {
            TextSize::C16x2 => 16,
            TextSize::C20x4 => 20,
        }
    }

    pub fn rows(self) -> usize {
        match self {
            TextSize::C16x2 => 2,
            TextSize::C20x4 => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TextSize::C16x2 => "16x2",
            TextSize::C20x4 => "20x4",
        }
    }
}

impl fmt::Display for TextSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The custom characters: an HD44780 holds eight (CGRAM 0–7), so these are all there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Glyph {
    /// A service listening: a filled dot.
    Up,
    /// A service not configured: a ring.
    Off,
    /// A service that failed to listen: a crossed box.
    Failed,
    /// The outbound queue: an hourglass.
    Queue,
    Envelope,
    /// Mail in: an arrow down into a tray.
    In,
    /// Mail out: an arrow up out of a tray.
    Out,
    Warning,
}

impl Glyph {
    /// In CGRAM order: a glyph's index is its character code.
    pub const ALL: [Glyph; 8] = [
        Glyph::Up,
        Glyph::Off,
        Glyph::Failed,
        Glyph::Queue,
        Glyph::Envelope,
        Glyph::In,
        Glyph::Out,
        Glyph::Warning,
    ];

    /// The character code (0–7) that shows this glyph once it is in CGRAM.
    pub fn code(self) -> u8 {
        match self {
            Glyph::Up => 0,
            Glyph::Off => 1,
            Glyph::Failed => 2,
            Glyph::Queue => 3,
            Glyph::Envelope => 4,
            Glyph::In => 5,
            Glyph::Out => 6,
            Glyph::Warning => 7,
        }
    }

    /// The 5×8 picture: one byte per row, the low five bits, the most significant leftmost.
    pub fn pattern(self) -> [u8; 8] {
        match self {
            Glyph::Up => [0x00, 0x0E, 0x1F, 0x1F, 0x1F, 0x0E, 0x00, 0x00],
            Glyph::Off => [0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E, 0x00, 0x00],
            Glyph::Failed => [0x1F, 0x1B, 0x15, 0x1B, 0x1F, 0x00, 0x00, 0x00],
            Glyph::Queue => [0x1F, 0x11, 0x0A, 0x04, 0x0A, 0x1F, 0x1F, 0x00],
            Glyph::Envelope => [0x00, 0x1F, 0x1B, 0x15, 0x11, 0x1F, 0x00, 0x00],
            Glyph::In => [0x04, 0x04, 0x15, 0x0E, 0x04, 0x11, 0x1F, 0x00],
            Glyph::Out => [0x04, 0x0E, 0x15, 0x04, 0x04, 0x11, 0x1F, 0x00],
            Glyph::Warning => [0x04, 0x0E, 0x0E, 0x1B, 0x1F, 0x1B, 0x1F, 0x00],
        }
    }

    /// The glyph in a terminal.
    pub fn terminal(self) -> char {
        match self {
            Glyph::Up => '●',
            Glyph::Off => '○',
            Glyph::Failed => '☒',
            Glyph::Queue => '⧗',
            Glyph::Envelope => '✉',
            Glyph::In => '↓',
            Glyph::Out => '↑',
            Glyph::Warning => '▲',
        }
    }
}

/// One character position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Char(char),
    Glyph(Glyph),
    /// A full block, for bars (the HD44780's 0xFF).
    Block,
    /// Here a line was cut short.
    Cut,
}

impl Cell {
    /// The cell in a terminal.
    pub fn terminal(self) -> char {
        match self {
            Cell::Char(c) => c,
            Cell::Glyph(glyph) => glyph.terminal(),
            Cell::Block => '█',
            Cell::Cut => '→',
        }
    }

    /// The character code in the HD44780's A00 ROM (the common Japanese-standard one) or
    /// CGRAM. Its 0x20–0x7D are ASCII except 0x5C (¥); what the ROM lacks shows as '?'.
    pub fn lcd_code(self) -> u8 {
        match self {
            Cell::Char('°') => 0xDF,
            Cell::Char('\\') => b'/',
            Cell::Char('~') => b'-',
            Cell::Char(c) if (' '..='}').contains(&c) => c as u8,
            Cell::Char(_) => b'?',
            Cell::Glyph(glyph) => glyph.code(),
            Cell::Block => 0xFF,
            Cell::Cut => 0x7E,
        }
    }
}

impl Cell {
    /// The cell a code from `lcd_code` stands for (what the display shows at that code).
    pub fn from_lcd_code(code: u8) -> Cell {
        match code {
            0..=7 => Glyph::ALL
                .get(usize::from(code))
                .map_or(Cell::Char('?'), |glyph| Cell::Glyph(*glyph)),
            0x7E => Cell::Cut,
            0xDF => Cell::Char('°'),
            0xFF => Cell::Block,
            0x20..=0x7D => Cell::Char(char::from(code)),
            _ => Cell::Char('?'),
        }
    }
}

/// A screenful of characters.
#[derive(Clone, PartialEq, Eq)]
pub struct TextScreen {
    size: TextSize,
    cells: Vec<Cell>,
}

impl TextScreen {
    pub fn blank(size: TextSize) -> TextScreen {
        TextScreen {
            size,
            cells: vec![Cell::Char(' '); size.columns() * size.rows()],
        }
    }

    pub fn size(&self) -> TextSize {
        self.size
    }

    /// Row `n` (0-based); empty past the last row.
    pub fn row(&self, n: usize) -> &[Cell] {
        let columns = self.size.columns();
        self.cells
            .get(n * columns..(n + 1) * columns)
            .unwrap_or(&[])
    }

    /// Puts `line` in row `n`, cut to the width; the rest of the row keeps what it had.
    pub fn set_row(&mut self, n: usize, line: &[Cell]) {
        let columns = self.size.columns();
        let Some(row) = self.cells.get_mut(n * columns..(n + 1) * columns) else {
            return;
        };
        for (slot, cell) in row.iter_mut().zip(cut(line, columns)) {
            *slot = cell;
        }
    }

    /// The screen framed in a box, as a terminal shows it (and the golden files hold it).
    pub fn framed(&self) -> String {
        let edge = format!("+{}+\n", "-".repeat(self.size.columns()));
        let mut out = edge.clone();
        for n in 0..self.size.rows() {
            out.push('|');
            out.extend(self.row(n).iter().map(|c| c.terminal()));
            out.push_str("|\n");
        }
        out.push_str(&edge);
        out
    }

    /// Every cell's code as the LCD receives it, row after row.
    pub fn codes(&self) -> Vec<u8> {
        self.cells.iter().map(|c| c.lcd_code()).collect()
    }

    /// The screen that `codes` (from `codes()`) describe; `None` for the wrong length.
    pub fn from_codes(size: TextSize, codes: &[u8]) -> Option<TextScreen> {
        (codes.len() == size.columns() * size.rows()).then(|| TextScreen {
            size,
            cells: codes.iter().map(|c| Cell::from_lcd_code(*c)).collect(),
        })
    }

    /// The rows as plain lines (trailing blanks kept), for a log line.
    pub fn lines(&self) -> Vec<String> {
        (0..self.size.rows())
            .map(|n| self.row(n).iter().map(|c| c.terminal()).collect())
            .collect()
    }
}

impl fmt::Debug for TextScreen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TextScreen {}:\n{}", self.size, self.framed())
    }
}

/// At most `columns` cells; a longer line ends in a cut mark.
fn cut(line: &[Cell], columns: usize) -> Vec<Cell> {
    if line.len() <= columns {
        return line.to_vec();
    }
    let mut out: Vec<Cell> = line[..columns.saturating_sub(1)].to_vec();
    out.push(Cell::Cut);
    out
}

/// One line a page would like to show, and how much it matters (0 most).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    priority: u8,
    cells: Vec<Cell>,
}

fn chars(text: &str) -> Vec<Cell> {
    text.chars().map(Cell::Char).collect()
}

fn line(priority: u8, cells: Vec<Cell>) -> Line {
    Line { priority, cells }
}

fn text_line(priority: u8, text: &str) -> Line {
    line(priority, chars(text))
}

fn with_glyph(glyph: Glyph, text: &str) -> Vec<Cell> {
    let mut cells = vec![Cell::Glyph(glyph)];
    cells.extend(chars(text));
    cells
}

/// `left` at the left edge and `right` at the right; one space between when they do not fit.
fn spread(mut left: Vec<Cell>, right: Vec<Cell>, columns: usize) -> Vec<Cell> {
    let gap = columns.saturating_sub(left.len() + right.len()).max(1);
    left.extend(std::iter::repeat_n(Cell::Char(' '), gap));
    left.extend(right);
    left
}

/// "label value" when it fits, else the value alone (the value is what a person types).
fn labelled(label: &str, value: &str, columns: usize) -> Vec<Cell> {
    if label.chars().count() + 1 + value.chars().count() <= columns {
        chars(&format!("{label} {value}"))
    } else {
        chars(value)
    }
}

/// Lays `view` out on a character display of `size`.
pub fn layout(view: &View, size: TextSize) -> TextScreen {
    let columns = size.columns();
    let titled = size.rows() >= 4;
    let mut lines = lines(view, columns, titled);
    let room = size.rows() - usize::from(titled);
    // Drop the least important line (the last of equals) until the rest fit.
    while lines.len() > room {
        let Some(worst) = lines.iter().map(|l| l.priority).max() else {
            break;
        };
        let Some(at) = lines.iter().rposition(|l| l.priority == worst) else {
            break;
        };
        lines.remove(at);
    }
    let mut screen = TextScreen::blank(size);
    let mut row = 0;
    if titled {
        screen.set_row(0, &spread(chars(view.title), chars(&view.note), columns));
        row = 1;
    }
    for line in lines {
        screen.set_row(row, &line.cells);
        row += 1;
    }
    screen
}

/// A page's lines in display order. `titled`: a title row shows the page's name above
/// them (20×4); without it (16×2) the lines say what they are themselves.
fn lines(view: &View, columns: usize, titled: bool) -> Vec<Line> {
    match &view.body {
        Body::Ports { groups, summary } => ports(groups, summary, columns, titled),
        Body::Mail(mail) => self::mail(mail, columns, titled),
        Body::System(system) => {
            let address = if titled {
                format!("IP {}", system.address)
            } else {
                system.address.clone()
            };
            let disk = match &system.disk {
                Some((percent, free)) if titled => {
                    spread(chars(&format!("Used {percent}%")), chars(free), columns)
                }
                Some((percent, free)) => {
                    spread(chars(&format!("{percent}%")), chars(free), columns)
                }
                None => chars("Disk unknown"),
            };
            let mut lines = vec![text_line(0, &address)];
            if let Some(second) = &system.second_address {
                lines.push(text_line(3, &format!("   {second}")));
            }
            lines.push(line(1, disk));
            lines.push(line(
                2,
                spread(
                    chars(&format!("up {}", system.uptime)),
                    chars(&system.temperature),
                    columns,
                ),
            ));
            lines
        }
        Body::Setup(setup) => self::setup(setup, columns, titled),
        Body::Alert(alert) => self::alert(alert, columns, titled),
        Body::Hold { left, percent, .. } => {
            let mut lines = vec![
                text_line(
                    0,
                    if titled {
                        "Release: setup mode"
                    } else {
                        "Release: setup"
                    },
                ),
                text_line(
                    0,
                    &if titled {
                        format!("Hold: power off {left}s")
                    } else {
                        format!("Hold: off in {left}s")
                    },
                ),
            ];
            let blocks = usize::try_from(*percent).unwrap_or(100).min(100) * columns / 100;
            lines.push(line(1, vec![Cell::Block; blocks]));
            lines
        }
        Body::ShuttingDown => {
            if titled {
                vec![
                    text_line(0, "Shutting down..."),
                    text_line(1, "Unplug when the"),
                    text_line(1, "screen is dark."),
                ]
            } else {
                vec![
                    text_line(0, "Shutting down..."),
                    text_line(0, "Unplug when dark"),
                ]
            }
        }
    }
}

fn mark(state: PortState) -> Glyph {
    match state {
        PortState::Up => Glyph::Up,
        PortState::Off => Glyph::Off,
        PortState::Failed => Glyph::Failed,
    }
}

/// Five marks with short names in two lines ("●SMTP ●SUB ●IMAP" fills 16 columns), then
/// what is wrong.
fn ports(groups: &[PortGroup], summary: &str, columns: usize, titled: bool) -> Vec<Line> {
    let marks = |part: &[PortGroup]| {
        let mut cells = Vec::new();
        for (n, group) in part.iter().enumerate() {
            if n > 0 {
                cells.push(Cell::Char(' '));
            }
            cells.extend(with_glyph(mark(group.state), group.short));
        }
        cells
    };
    let (first, second) = groups.split_at(groups.len().min(3));
    let mut second = marks(second);
    if !titled {
        // No summary row: the first failure's reason goes beside the marks, if it fits.
        if let Some(failed) = groups.iter().find(|g| g.state == PortState::Failed) {
            let reason = chars(failed.state_detail);
            if second.len() + 1 + reason.len() <= columns {
                second = spread(second, reason, columns);
            }
        }
    }
    vec![
        line(0, marks(first)),
        line(0, second),
        text_line(1, summary),
    ]
}

fn mail(mail: &MailFacts, columns: usize, titled: bool) -> Vec<Line> {
    let age = |age: &Option<String>, suffix: &str| {
        age.as_ref()
            .map_or_else(|| "-".to_string(), |age| format!("{age}{suffix}"))
    };
    let in_out = |suffix: &str| {
        spread(
            with_glyph(Glyph::In, &age(&mail.last_in, suffix)),
            with_glyph(Glyph::Out, &age(&mail.last_out, suffix)),
            columns,
        )
    };
    if let (true, Some(spam)) = (titled, &mail.spam) {
        // Three rows for four facts: stored and queue share the first (as on the 16×2),
        // and the day's spam takes the last. A 16×2 has no row to spare for it.
        let mut first = with_glyph(Glyph::Envelope, &format!(" {}", mail.stored));
        first.extend(chars("  "));
        first.extend(with_glyph(Glyph::Queue, &format!(" {}", mail.queue)));
        return vec![line(0, first), line(1, in_out(" ago")), text_line(1, spam)];
    }
    if titled {
        let queue = if mail.queue_depth == 0 {
            "queue empty".to_string()
        } else {
            format!("queue {}", mail.queue)
        };
        return vec![
            line(
                0,
                with_glyph(Glyph::Envelope, &format!(" {} stored", mail.stored)),
            ),
            line(0, with_glyph(Glyph::Queue, &format!(" {queue}"))),
            line(1, in_out(" ago")),
        ];
    }
    let mut first = with_glyph(Glyph::Envelope, &mail.stored.to_string());
    first.push(Cell::Char(' '));
    first.extend(with_glyph(Glyph::Queue, &mail.queue));
    let mut second = with_glyph(Glyph::In, &age(&mail.last_in, ""));
    // The two ages in two columns, so they stay in place as they grow.
    while second.len() < columns / 2 {
        second.push(Cell::Char(' '));
    }
    second.extend(with_glyph(Glyph::Out, &age(&mail.last_out, "")));
    vec![line(0, first), line(0, second)]
}

fn setup(setup: &SetupFacts, columns: usize, titled: bool) -> Vec<Line> {
    // The root of the web service leads to the setup page in setup mode, so a short line
    // may drop the path.
    let short_url = |url: &str| {
        let url = url.strip_prefix("http://").unwrap_or(url);
        let url = url.strip_suffix('/').unwrap_or(url);
        if url.chars().count() <= columns {
            url.to_string()
        } else {
            url.trim_end_matches("/setup").to_string()
        }
    };
    match setup {
        SetupFacts::Starting if titled => vec![
            text_line(0, "Starting the"),
            text_line(0, "setup hotspot..."),
        ],
        SetupFacts::Starting => vec![text_line(0, "SETUP MODE"), text_line(0, "starting hotspot")],
        SetupFacts::Hotspot {
            network,
            passphrase,
            url,
            problem,
        } => vec![
            line(0, labelled("Wi-Fi", network, columns)),
            line(0, labelled("Key", passphrase, columns)),
            match problem {
                Some(problem) => line(1, labelled("Not joined", problem, columns)),
                None => line(1, labelled("Open", &short_url(url), columns)),
            },
        ],
        SetupFacts::Wired { url, code } => {
            let mut lines = Vec::new();
            if titled {
                lines.push(text_line(1, "Open in a browser:"));
            }
            lines.push(line(0, labelled("Open", &short_url(url), columns)));
            lines.push(line(0, labelled("Code", code, columns)));
            lines
        }
    }
}

fn alert(alert: &AlertFacts, columns: usize, titled: bool) -> Vec<Line> {
    if titled {
        return vec![
            line(0, with_glyph(Glyph::Warning, &format!(" {}", alert.title))),
            text_line(0, &alert.detail),
            text_line(1, "Press to dismiss."),
        ];
    }
    vec![
        line(
            0,
            spread(
                with_glyph(Glyph::Warning, alert.short_title),
                chars(&alert.position),
                columns,
            ),
        ),
        text_line(0, &alert.detail),
    ]
}

#[cfg(test)]
mod tests;
