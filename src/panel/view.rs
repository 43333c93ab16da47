//! What the panel says, decided once for every display: `view(screen, status, now) -> View`.
//!
//! A `View` holds the facts of one screen already chosen and worded (ages, sizes, the port
//! groups and their states, the setup address) but no layout. Each renderer lays it out for
//! its own display: `pages` draws pixels for the SSD1306, `text` lays out character rows for
//! the HD44780 and the terminal. So a page reads the same on every display, and a new display
//! is a renderer, not a second copy of the appliance's decisions.

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

/// One screen's facts: a title with a note at its right ("PORTS", "1/3") and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub title: &'static str,
    pub note: String,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Ports {
        groups: Vec<PortGroup>,
        /// One line saying what is wrong ("all up", "web in use", "2 services failed").
        summary: String,
    },
    Mail(MailFacts),
    System(SystemFacts),
    Setup(SetupFacts),
    Alert(AlertFacts),
    Hold {
        seconds: u64,
        /// Seconds until power off.
        left: u64,
        /// How far towards power off, 0–100.
        percent: u64,
    },
    ShuttingDown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFacts {
    pub stored: u64,
    pub queue_depth: u64,
    /// "empty", "2, 2h05m" (depth and the oldest's age), or the depth alone.
    pub queue: String,
    /// Ages of the last mail in and out ("5m"); `None` when there was none.
    pub last_in: Option<String>,
    pub last_out: Option<String>,
    /// Today's mail refused, greylisted (asked to come back later) and sent to Junk, once there
    /// is any: "Ref3 Grey12 Junk1" (a 20-character LCD row holds three-digit counts).
    pub spam: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemFacts {
    /// The first address, or "no network".
    pub address: String,
    pub second_address: Option<String>,
    pub hostname: String,
    /// Percent used and "12G free"; `None` when the data device was not measured.
    pub disk: Option<(u64, String)>,
    /// "3d4h", or "-" when unknown.
    pub uptime: String,
    /// "48°C", or empty when unknown.
    pub temperature: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupFacts {
    /// Setup mode has begun but has not said where its page is yet.
    Starting,
    /// The box raised a hotspot: join it, then open the page.
    Hotspot {
        network: String,
        /// The passphrase, or "(open network)".
        passphrase: String,
        url: String,
        /// Why the network the wizard named was not joined, in a few words ("wrong
        /// password"): the person who typed it knows which network.
        problem: Option<String>,
    },
    /// A wired box: open the page from any device on the network and type the code.
    Wired {
        /// The address without "http://" (browsers add the scheme themselves).
        url: String,
        /// The one-time code in two halves ("K7MQ-4XRT"), or "(none)".
        code: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertFacts {
    /// At most 16 characters ("Disk almost full").
    pub title: String,
    /// At most 10 characters ("Disk low"), for a 16-column line with a mark and "1/2".
    pub short_title: &'static str,
    pub detail: String,
    /// "1/2": which alert of how many.
    pub position: String,
}

/// Decides what `screen` says about `status` at `now` (Unix seconds).
pub fn view(screen: &Screen, status: &Status, now: i64) -> View {
    match screen {
        Screen::Page(Page::Ports) => {
            let groups = port_groups(status);
            let summary = ports_summary(&groups);
            View {
                title: "PORTS",
                note: "1/3".into(),
                body: Body::Ports { groups, summary },
            }
        }
        Screen::Page(Page::Mail) => View {
            title: "MAIL",
            note: "2/3".into(),
            body: Body::Mail(mail(status, now)),
        },
        Screen::Page(Page::System) => View {
            title: "SYSTEM",
            note: "3/3".into(),
            body: Body::System(system(status, now)),
        },
        Screen::Page(Page::Setup) => View {
            title: "SETUP MODE",
            note: String::new(),
            body: Body::Setup(setup(status)),
        },
        Screen::Alert {
            alert,
            index,
            count,
        } => {
            let (title, detail) = describe(alert, now);
            View {
                title: "! ALERT",
                note: format!("{index}/{count}"),
                body: Body::Alert(AlertFacts {
                    title,
                    short_title: short_title(alert),
                    detail,
                    position: format!("{index}/{count}"),
                }),
            }
        }
        Screen::Hold { seconds } => View {
            title: "BUTTON",
            note: format!("{seconds}s"),
            body: Body::Hold {
                seconds: *seconds,
                left: POWER_OFF_SECONDS.saturating_sub(*seconds),
                percent: seconds.saturating_mul(100) / POWER_OFF_SECONDS,
            },
        },
        Screen::ShuttingDown => View {
            title: "POWER OFF",
            note: String::new(),
            body: Body::ShuttingDown,
        },
    }
}

fn mail(status: &Status, now: i64) -> MailFacts {
    let queue = match (status.queue_depth, status.queue_oldest) {
        (0, _) => "empty".to_string(),
        (depth, Some(oldest)) => format!("{depth}, {}", human_age(now - oldest)),
        (depth, None) => depth.to_string(),
    };
    MailFacts {
        stored: status.messages_stored,
        queue_depth: status.queue_depth,
        queue,
        last_in: status.last_delivery.map(|t| human_age(now - t)),
        last_out: status.last_outbound.map(|t| human_age(now - t)),
        spam: {
            let today = status.spam_today.today(now);
            (today.refused + today.greylisted + today.junk > 0).then(|| {
                format!(
                    "Ref{} Grey{} Junk{}",
                    today.refused, today.greylisted, today.junk
                )
            })
        },
    }
}

fn system(status: &Status, now: i64) -> SystemFacts {
    let mut addresses = status.addresses.iter();
    let address = addresses
        .next()
        .map_or_else(|| "no network".to_string(), String::clone);
    let disk = status.storage.map(|s| {
        let used = s.total_bytes.saturating_sub(s.free_bytes);
        let percent = used
            .saturating_mul(100)
            .checked_div(s.total_bytes)
            .unwrap_or(0);
        (percent, format!("{} free", short_bytes(s.free_bytes)))
    });
    SystemFacts {
        address,
        second_address: addresses.next().cloned(),
        hostname: status.hostname.clone(),
        disk,
        uptime: status
            .started_at
            .map(|t| human_age(now - t))
            .unwrap_or_else(|| "-".into()),
        temperature: status
            .soc_temperature_mc
            .map(|mc| format!("{:.0}°C", f64::from(mc) / 1000.0))
            .unwrap_or_default(),
    }
}

fn setup(status: &Status) -> SetupFacts {
    let Some(setup) = &status.setup else {
        return SetupFacts::Starting;
    };
    match &setup.network {
        Some(network) => SetupFacts::Hotspot {
            network: network.clone(),
            passphrase: setup
                .passphrase
                .clone()
                .unwrap_or_else(|| "(open network)".into()),
            url: setup.url.clone(),
            problem: setup.problem.as_ref().map(|p| p.short.clone()),
        },
        None => SetupFacts::Wired {
            url: setup
                .url
                .strip_prefix("http://")
                .unwrap_or(&setup.url)
                .to_string(),
            code: setup
                .code
                .as_deref()
                .map_or_else(|| "(none)".into(), spaced_code),
        },
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
    pub fn word(self) -> &'static str {
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
    /// "in use", "denied" or "failed", for the one-line summary.
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

/// What is wrong with the ports, in one line.
fn ports_summary(groups: &[PortGroup]) -> String {
    let trouble: Vec<String> = groups
        .iter()
        .filter(|g| g.state == PortState::Failed)
        .map(|g| format!("{} {}", g.label.to_lowercase(), g.state_detail))
        .collect();
    match trouble.as_slice() {
        [] if groups.iter().all(|g| g.state == PortState::Up) => "all up".to_string(),
        [] => "mail services ok".to_string(),
        [one] => one.clone(),
        many => format!("{} services failed", many.len()),
    }
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
        Alert::Health { check } => (check.short_title().into(), "see the admin page".into()),
    }
}

fn short_title(alert: &Alert) -> &'static str {
    match alert {
        Alert::StorageLow { .. } => "Disk low",
        Alert::CertificateExpiring { .. } => "TLS cert",
        Alert::QueueStuck { .. } => "Mail stuck",
        Alert::DataDeviceMissing { .. } => "Drive gone",
        Alert::Health { check } => check.label(),
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
        assert_eq!(ports_summary(&groups), "web in use");
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
    fn sizes_stay_short() {
        assert_eq!(short_bytes(512), "512B");
        assert_eq!(short_bytes(3 * 1024 * 1024 * 1024 / 2), "1.5G");
        assert_eq!(short_bytes(29 * 1024 * 1024 * 1024), "29G");
    }

    #[test]
    fn alert_short_titles_fit_beside_a_mark_and_the_position() {
        let alerts = [
            Alert::StorageLow {
                free_bytes: 1,
                total_bytes: 2,
            },
            Alert::CertificateExpiring { expires_at: 0 },
            Alert::QueueStuck { since: 0 },
            Alert::DataDeviceMissing { path: "/x".into() },
        ];
        for alert in &alerts {
            assert!(short_title(alert).len() <= 10, "{alert:?}");
            assert!(describe(alert, 0).0.len() <= 16, "{alert:?}");
        }
    }
}
