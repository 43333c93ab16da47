//! What the panel shows: one pure function from (screen, status, time, size) to a frame.
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
use crate::status::{Alert, ListenerStatus, Status, human_age};

/// The pages a short press steps through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Page {
    Ports,
    Mail,
    System,
    /// Only while in setup mode.
    Setup,
}

impl Page {
    pub const NORMAL: [Page; 3] = [Page::Ports, Page::Mail, Page::System];

    pub fn name(self) -> &'static str {
        match self {
            Page::Ports => "ports",
            Page::Mail => "mail",
            Page::System => "system",
            Page::Setup => "setup",
        }
    }

    /// The page after this one; the setup page is part of the cycle only in setup mode.
    pub fn next(self, setup_mode: bool) -> Page {
        match (self, setup_mode) {
            (Page::Ports, _) => Page::Mail,
            (Page::Mail, _) => Page::System,
            (Page::System, true) => Page::Setup,
            (Page::System, false) | (Page::Setup, _) => Page::Ports,
        }
    }
}

/// Everything the panel can show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    Page(Page),
    /// An unacknowledged alert (`index` of `count`, counting from 1).
    Alert {
        alert: Alert,
        index: usize,
        count: usize,
    },
    /// The button has been held this many whole seconds (3 or more): release for setup
    /// mode, keep holding to power off.
    Hold {
        seconds: u64,
    },
    ShuttingDown,
}

/// Very long press: power off after this many seconds.
pub const POWER_OFF_SECONDS: u64 = 10;

const ROW: i32 = 10;
/// Characters in a 6×10 row across the panel.
const COLUMNS: usize = 21;

fn style() -> MonoTextStyle<'static, BinaryColor> {
    MonoTextStyle::new(&FONT_6X10, BinaryColor::On)
}

fn inverse() -> MonoTextStyle<'static, BinaryColor> {
    MonoTextStyle::new(&FONT_6X10, BinaryColor::Off)
}

/// Renders one screen.
pub fn render(screen: &Screen, status: &Status, now: i64, size: PanelSize) -> Frame {
    let mut frame = Frame::new(size);
    let mut canvas = Canvas {
        frame: &mut frame,
        tall: size == PanelSize::W128H64,
    };
    match screen {
        Screen::Page(Page::Ports) => canvas.ports(status),
        Screen::Page(Page::Mail) => canvas.mail(status, now),
        Screen::Page(Page::System) => canvas.system(status, now),
        Screen::Page(Page::Setup) => canvas.setup(status),
        Screen::Alert {
            alert,
            index,
            count,
        } => canvas.alert(alert, *index, *count, now),
        Screen::Hold { seconds } => canvas.hold(*seconds),
        Screen::ShuttingDown => canvas.shutting_down(),
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

    fn ports(&mut self, status: &Status) {
        let groups = port_groups(status);
        if self.tall {
            self.title("PORTS", "1/3");
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
        let trouble: Vec<String> = groups
            .iter()
            .filter(|g| g.state == PortState::Failed)
            .map(|g| format!("{} {}", g.label.to_lowercase(), g.state_detail))
            .collect();
        let line = match trouble.as_slice() {
            [] if groups.iter().all(|g| g.state == PortState::Up) => "all up".to_string(),
            [] => "mail services ok".to_string(),
            [one] => one.clone(),
            many => format!("{} services failed", many.len()),
        };
        self.text(1, 21, &line);
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

    fn mail(&mut self, status: &Status, now: i64) {
        let ago = |t: Option<i64>| {
            t.map_or("never".to_string(), |t| {
                format!("{} ago", human_age(now - t))
            })
        };
        let queue = match (status.queue_depth, status.queue_oldest) {
            (0, _) => "empty".to_string(),
            (depth, Some(oldest)) => format!("{depth}, {}", human_age(now - oldest)),
            (depth, None) => depth.to_string(),
        };
        if self.tall {
            self.title("MAIL", "2/3");
            let rows = [
                ("Stored", status.messages_stored.to_string()),
                ("Queue", queue),
                ("Last in", ago(status.last_delivery)),
                ("Last out", ago(status.last_outbound)),
            ];
            for (n, (label, value)) in rows.iter().enumerate() {
                let y = self.row(i32::try_from(n).unwrap_or(0));
                self.text(1, y, label);
                self.text(55, y, value);
            }
            return;
        }
        let short = |t: Option<i64>| t.map_or("-".to_string(), |t| human_age(now - t));
        self.icon(1, 2, &icons::ENVELOPE);
        self.text(12, 1, &format!("{} stored", status.messages_stored));
        self.icon(1, 12, &icons::CLOCK);
        let queue = match status.queue_depth {
            0 => "queue empty".to_string(),
            _ => format!("queue {queue}"),
        };
        self.text(12, 11, &queue);
        self.icon(1, 22, &icons::ARROW_IN);
        self.text(12, 21, &short(status.last_delivery));
        self.icon(64, 22, &icons::ARROW_OUT);
        self.text(75, 21, &short(status.last_outbound));
    }

    fn system(&mut self, status: &Status, now: i64) {
        let mut addresses = status.addresses.iter();
        let first = addresses.next().map_or("no network", String::as_str);
        let temperature = status
            .soc_temperature_mc
            .map(|mc| format!("{:.0}°C", f64::from(mc) / 1000.0))
            .unwrap_or_default();
        let uptime = status
            .started_at
            .map(|t| human_age(now - t))
            .unwrap_or_else(|| "-".into());
        let disk = status.storage.map(|s| {
            let used = s.total_bytes.saturating_sub(s.free_bytes);
            let percent = used
                .saturating_mul(100)
                .checked_div(s.total_bytes)
                .unwrap_or(0);
            (percent, format!("{} free", short_bytes(s.free_bytes)))
        });
        if self.tall {
            self.title("SYSTEM", "3/3");
            self.text(1, self.row(0), &format!("IP {first}"));
            if let Some(second) = addresses.next() {
                self.text(19, self.row(1), second);
            } else {
                self.text(1, self.row(1), &status.hostname);
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
            self.text_right(self.row(4), &temperature);
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
        self.text_right(21, &temperature);
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

    fn setup(&mut self, status: &Status) {
        let Some(setup) = &status.setup else {
            if self.tall {
                self.title("SETUP MODE", "");
                self.text(1, self.row(1), "Starting the");
                self.text(1, self.row(2), "setup hotspot...");
            } else {
                self.text(1, 1, "SETUP MODE");
                self.text(1, 11, "starting hotspot...");
            }
            return;
        };
        let Some(network) = &setup.network else {
            // A wired box: open the page from any device on the network, type the code.
            let code = setup
                .code
                .as_deref()
                .map_or_else(|| "(none)".into(), spaced_code);
            // Browsers add the scheme themselves; without it the address fits the line.
            let url = setup.url.strip_prefix("http://").unwrap_or(&setup.url);
            if self.tall {
                self.title("SETUP MODE", "");
                self.text(1, self.row(0), "On this network");
                self.text(1, self.row(1), "open:");
                self.text(7, self.row(2), url);
                self.text(1, self.row(3), "Code:");
                self.text(7, self.row(4), &code);
                return;
            }
            self.text(1, 1, "SETUP: open");
            self.icon(1, 12, &icons::GLOBE);
            self.text(12, 11, url);
            self.icon(1, 22, &icons::KEY);
            self.text(12, 21, &code);
            return;
        };
        let passphrase = setup.passphrase.as_deref().unwrap_or("(open network)");
        if self.tall {
            self.title("SETUP MODE", "");
            self.text(1, self.row(0), "Join Wi-Fi:");
            self.text(7, self.row(1), network);
            self.text(1, self.row(2), &format!("Key {passphrase}"));
            self.text(1, self.row(3), "Then open:");
            self.text(7, self.row(4), &setup.url);
            return;
        }
        self.icon(1, 2, &icons::WIFI);
        self.text(12, 1, network);
        self.icon(1, 12, &icons::KEY);
        self.text(12, 11, passphrase);
        self.icon(1, 22, &icons::GLOBE);
        self.text(12, 21, &setup.url);
    }

    fn alert(&mut self, alert: &Alert, index: usize, count: usize, now: i64) {
        let (title, detail) = describe(alert, now);
        let position = format!("{index}/{count}");
        if self.tall {
            self.title("! ALERT", &position);
            self.warning(2, 15);
            self.text(24, 14, &title);
            self.text(24, 24, &detail);
            self.text(1, 38, "Press the button");
            self.text(1, 48, "to dismiss.");
            return;
        }
        self.warning(1, 2);
        self.text(22, 1, &title);
        self.text(22, 11, &detail);
        self.text(22, 21, &format!("press=OK {position}"));
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

    fn hold(&mut self, seconds: u64) {
        let left = POWER_OFF_SECONDS.saturating_sub(seconds);
        if self.tall {
            self.title("BUTTON", &format!("{seconds}s"));
            self.text(1, self.row(0), "Release now:");
            self.text(7, self.row(1), "setup mode");
            self.text(1, self.row(2), "Keep holding:");
            self.text(7, self.row(3), &format!("power off in {left}s"));
            self.bar(
                1,
                self.row(4) + 2,
                125,
                seconds.saturating_mul(100) / POWER_OFF_SECONDS,
            );
            return;
        }
        self.text(1, 1, "Release: setup mode");
        self.text(1, 11, &format!("Hold: power off {left}s"));
        self.bar(1, 24, 125, seconds.saturating_mul(100) / POWER_OFF_SECONDS);
    }

    fn shutting_down(&mut self) {
        if self.tall {
            self.title("POWER OFF", "");
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

/// How a service shows: listening, not configured, or failed to listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortState {
    Up,
    Off,
    Failed,
}

impl PortState {
    fn word(self) -> &'static str {
        match self {
            PortState::Up => "up",
            PortState::Off => "off",
            PortState::Failed => "FAIL",
        }
    }
}

/// One line of the ports page: a service and its TLS twin (IMAP and IMAPS, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortGroup {
    pub label: &'static str,
    pub short: &'static str,
    pub ports: String,
    pub state: PortState,
    /// "in use", "denied" or "failed", for the 128×32 summary.
    pub state_detail: &'static str,
}

/// The five lines of the ports page, from the status listeners.
pub fn port_groups(status: &Status) -> Vec<PortGroup> {
    const GROUPS: [(&str, &str, &[&str]); 5] = [
        ("SMTP", "SMTP", &["smtp"]),
        ("Submit", "SUB", &["submission", "submissions"]),
        ("IMAP", "IMAP", &["imap", "imaps"]),
        ("POP3", "POP", &["pop3", "pop3s"]),
        ("Web", "WEB", &["web"]),
    ];
    GROUPS
        .iter()
        .map(|(label, short, services)| {
            let listeners: Vec<&ListenerStatus> = status
                .listeners
                .iter()
                .filter(|l| services.contains(&l.service.as_str()))
                .collect();
            let mut ports: Vec<String> = Vec::new();
            for listener in &listeners {
                let port = listener
                    .address
                    .rsplit(':')
                    .next()
                    .unwrap_or("")
                    .to_string();
                if !ports.contains(&port) {
                    ports.push(port);
                }
            }
            let failed = listeners.iter().find(|l| is_failure(l));
            let state = if failed.is_some() {
                PortState::Failed
            } else if listeners.iter().any(|l| l.up) {
                PortState::Up
            } else {
                PortState::Off
            };
            let state_detail = failed
                .and_then(|l| l.error.as_deref())
                .map(|e| {
                    let e = e.to_ascii_lowercase();
                    if e.contains("in use") {
                        "in use"
                    } else if e.contains("denied") || e.contains("permission") {
                        "denied"
                    } else {
                        "failed"
                    }
                })
                .unwrap_or("");
            PortGroup {
                label,
                short,
                ports: if ports.is_empty() {
                    "-".into()
                } else {
                    ports.join(" ")
                },
                state,
                state_detail,
            }
        })
        .collect()
}

/// Down with a reason other than "this build does not have it yet" (which shows as off).
fn is_failure(listener: &ListenerStatus) -> bool {
    !listener.up
        && listener
            .error
            .as_deref()
            .is_some_and(|e| !e.contains("not available"))
}

/// The one-time code in two halves, easier to read off a small display ("ABCD-EFGH"); the
/// setup page ignores the dash.
fn spaced_code(code: &str) -> String {
    let half = code.len() / 2;
    match (code.get(..half), code.get(half..)) {
        (Some(first), Some(second)) if code.len() >= 8 => format!("{first}-{second}"),
        _ => code.to_string(),
    }
}

/// A title (at most 16 characters) and a detail line for an alert.
pub fn describe(alert: &Alert, now: i64) -> (String, String) {
    match alert {
        Alert::StorageLow {
            free_bytes,
            total_bytes,
        } => (
            "Disk almost full".into(),
            format!(
                "{} of {} free",
                short_bytes(*free_bytes),
                short_bytes(*total_bytes)
            ),
        ),
        Alert::CertificateExpiring { expires_at } => {
            let detail = if *expires_at <= now {
                "TLS cert expired".to_string()
            } else {
                format!("expires in {}", human_age(expires_at - now))
            };
            ("Certificate".into(), detail)
        }
        Alert::QueueStuck { since } => (
            "Mail stuck".into(),
            format!("queued {} ago", human_age(now - since)),
        ),
        Alert::DataDeviceMissing { path } => ("Data drive gone".into(), path.clone()),
    }
}

/// "12G", "950M", "3.4G": at most five characters.
pub fn short_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 10.0 {
        format!("{value:.0}{}", UNITS[unit])
    } else {
        format!("{value:.1}{}", UNITS[unit])
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
    use crate::status::ListenerStatus;

    fn listener(service: &str, address: &str, up: bool, error: Option<&str>) -> ListenerStatus {
        ListenerStatus {
            service: service.into(),
            address: address.into(),
            up,
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn ports_group_services_and_name_failures() {
        let status = Status {
            listeners: vec![
                listener("smtp", "0.0.0.0:25", true, None),
                listener(
                    "imap",
                    "0.0.0.0:143",
                    false,
                    Some("not available in this version"),
                ),
                listener("pop3", "0.0.0.0:110", true, None),
                listener("pop3s", "0.0.0.0:995", true, None),
                listener(
                    "web",
                    "0.0.0.0:80",
                    false,
                    Some("Address in use (os error 98)"),
                ),
            ],
            ..Status::default()
        };
        let groups = port_groups(&status);
        let states: Vec<PortState> = groups.iter().map(|g| g.state).collect();
        use PortState::*;
        assert_eq!(states, vec![Up, Off, Off, Up, Failed]);
        assert_eq!(groups[3].ports, "110 995");
        assert_eq!(groups[4].state_detail, "in use");
    }

    #[test]
    fn short_press_cycles_pages_and_setup_only_in_setup_mode() {
        let mut page = Page::Ports;
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(page);
            page = page.next(false);
        }
        assert_eq!(
            seen,
            vec![Page::Ports, Page::Mail, Page::System, Page::Ports]
        );
        assert_eq!(Page::System.next(true), Page::Setup);
        assert_eq!(Page::Setup.next(true), Page::Ports);
    }

    #[test]
    fn sizes_and_cuts_stay_short() {
        assert_eq!(short_bytes(512), "512B");
        assert_eq!(short_bytes(3 * 1024 * 1024 * 1024 / 2), "1.5G");
        assert_eq!(short_bytes(29 * 1024 * 1024 * 1024), "29G");
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
