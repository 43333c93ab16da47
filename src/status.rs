//! The status value (DESIGN.md): what the panel, `letterbox status` and the web page show.
//! Published on a `tokio::sync::watch` channel; every part reads the same value.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub hostname: String,
    /// False when `letterbox status` read the store because no daemon answered.
    pub running: bool,
    pub listeners: Vec<ListenerStatus>,
    pub messages_stored: u64,
    /// Octets of mail the store holds (each body once) and of disk its file takes.
    #[serde(default)]
    pub mail_bytes: u64,
    #[serde(default)]
    pub store_bytes: u64,
    pub queue_depth: u64,
    /// When the oldest queued message was queued (Unix seconds).
    pub queue_oldest: Option<i64>,
    /// When the last message was stored (Unix seconds).
    pub last_delivery: Option<i64>,
    pub storage: Option<Storage>,
    /// Normal, setup or shutting down, as the control loop (`control`) decided it.
    #[serde(default)]
    pub mode: Mode,
    /// `mode == Mode::Setup`, kept for scripts that read `letterbox status --json`.
    pub setup_mode: bool,
    /// When the daemon started (Unix seconds).
    pub started_at: Option<i64>,
    /// This machine's IP addresses (not loopback or link-local), IPv4 first.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// SoC temperature in thousandths of a degree Celsius (/sys/class/thermal).
    #[serde(default)]
    pub soc_temperature_mc: Option<i32>,
    /// When the last message left for another server (Unix seconds).
    #[serde(default)]
    pub last_outbound: Option<i64>,
    /// When the TLS certificate in use expires (Unix seconds).
    #[serde(default)]
    pub certificate_expires: Option<i64>,
    /// Problems a person should see (the panel shows them until a button press).
    #[serde(default)]
    pub alerts: Vec<Alert>,
    /// What to show while in setup mode: the hotspot to join and the page to open.
    #[serde(default)]
    pub setup: Option<SetupInfo>,
    /// The Wi-Fi network the box has joined (refreshed every few seconds by the daemon).
    #[serde(default)]
    pub wifi: Option<crate::network::WifiLink>,
    /// What port 25's filters did today (UTC).
    #[serde(default)]
    pub spam_today: SpamCounts,
    /// The last health check's report (`health`); `None` until the first run ends.
    #[serde(default)]
    pub health: Option<crate::health::Report>,
    /// The last backup to the USB drive (`backup`); `None` until one ran.
    #[serde(default)]
    pub backup: Option<crate::backup::BackupRun>,
}

/// Mail refused, greylisted and sent to Junk on one day (UTC), counted by the SMTP sessions;
/// kept in memory, so a restart starts the day's counts again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpamCounts {
    /// Days since 1970-01-01 (UTC) these counts are for.
    pub day: i64,
    /// Connections, recipients and messages refused (4xx other than greylisting, and 5xx).
    pub refused: u64,
    /// Recipients told to come back later by greylisting.
    pub greylisted: u64,
    /// Messages delivered to the Junk folder.
    pub junk: u64,
}

/// What a filter did, for [`SpamCounts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpamEvent {
    Refused,
    Greylisted,
    Junk,
}

impl SpamCounts {
    /// Today's counts (zero when the last count was on another day).
    pub fn today(&self, now: i64) -> SpamCounts {
        if self.day == now.div_euclid(86400) {
            *self
        } else {
            SpamCounts {
                day: now.div_euclid(86400),
                ..SpamCounts::default()
            }
        }
    }

    pub fn count(&mut self, event: SpamEvent, now: i64) {
        *self = self.today(now);
        let counter = match event {
            SpamEvent::Refused => &mut self.refused,
            SpamEvent::Greylisted => &mut self.greylisted,
            SpamEvent::Junk => &mut self.junk,
        };
        *counter += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.refused == 0 && self.greylisted == 0 && self.junk == 0
    }
}

/// What the appliance is doing as a whole; only the control loop changes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Normal,
    /// Waiting to be set up: the setup page answers and the panel shows how to reach it.
    Setup,
    /// Draining connections before the process ends.
    ShuttingDown,
}

/// Something wrong that the panel puts in front of everything else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Alert {
    /// Less than 10% (or less than `min_free_space`) free on the data device.
    StorageLow { free_bytes: u64, total_bytes: u64 },
    /// The TLS certificate expires within 14 days (or has expired).
    CertificateExpiring { expires_at: i64 },
    /// The oldest queued outgoing message has waited more than a day.
    QueueStuck { since: i64 },
    /// The data directory (or the store in it) is gone: the USB drive was pulled?
    DataDeviceMissing { path: String },
    /// A health check found a problem (the admin page's Health section says what to do).
    Health { check: crate::health::Check },
}

impl Alert {
    /// One stable word per kind, for acknowledgements and scripts.
    pub fn key(&self) -> &'static str {
        match self {
            Alert::StorageLow { .. } => "storage_low",
            Alert::CertificateExpiring { .. } => "certificate_expiring",
            Alert::QueueStuck { .. } => "queue_stuck",
            Alert::DataDeviceMissing { .. } => "data_device_missing",
            Alert::Health { check } => check.alert_key(),
        }
    }
}

/// How to reach the setup page: the hotspot to join (when the box raises one), the address
/// to open, and the one-time code the page asks for over a wired network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupInfo {
    /// The hotspot's name; `None` while no hotspot is up (a wired box).
    pub network: Option<String>,
    /// The hotspot's WPA2 passphrase.
    pub passphrase: Option<String>,
    pub url: String,
    /// New each time setup mode starts; `None` only if the random source failed.
    pub code: Option<String>,
    /// Why the network the wizard named last could not be joined; cleared by a join that
    /// works and when setup mode ends.
    #[serde(default)]
    pub problem: Option<JoinProblem>,
}

/// A join that failed, as the setup page, the panel and `letterbox status` say it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinProblem {
    pub ssid: String,
    /// One sentence a person can act on (the setup page, `letterbox status`).
    pub reason: String,
    /// A few words for the panel: "wrong password", "not found", ...
    pub short: String,
}

impl JoinProblem {
    pub fn of(ssid: &str, error: &crate::network::NetworkError) -> JoinProblem {
        JoinProblem {
            ssid: ssid.to_string(),
            reason: error.to_string(),
            short: error.short().to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerStatus {
    pub service: String,
    pub address: String,
    pub up: bool,
    /// Why it is down (bind failed: port in use, permission denied).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Storage {
    pub total_bytes: u64,
    pub free_bytes: u64,
}

impl Storage {
    /// Size and free space of the file system holding `path`.
    pub fn of(path: &std::path::Path) -> Option<Storage> {
        use std::os::unix::ffi::OsStrExt;
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        let mut stat = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
        // SAFETY: `c_path` is a valid NUL-terminated string and `stat` points to writable
        // memory of the right type; statvfs only writes into it.
        let result = unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) };
        if result != 0 {
            return None;
        }
        // SAFETY: statvfs returned 0, so it filled the struct.
        let stat = unsafe { stat.assume_init() };
        // The field types are 32-bit on armv7 and 64-bit on aarch64; the conversions are
        // needed there even though they are no-ops here.
        #[allow(clippy::useless_conversion)]
        let (block, blocks, available) = (
            u64::from(stat.f_frsize),
            u64::from(stat.f_blocks),
            u64::from(stat.f_bavail),
        );
        Some(Storage {
            total_bytes: blocks.saturating_mul(block),
            free_bytes: available.saturating_mul(block),
        })
    }
}

impl Status {
    /// The human form of `letterbox status`.
    pub fn render(&self, now: i64) -> String {
        let mut out = String::new();
        let state = if self.running {
            "running"
        } else {
            "not running"
        };
        out.push_str(&format!(
            "letterbox {} on {}: {state}\n",
            self.version, self.hostname
        ));
        if let Some(started) = self.started_at {
            out.push_str(&format!("uptime        {}\n", human_age(now - started)));
        }
        for listener in &self.listeners {
            let state = match (&listener.error, listener.up) {
                (_, true) => "up".to_string(),
                (Some(error), false) => format!("DOWN ({error})"),
                (None, false) => "down".to_string(),
            };
            out.push_str(&format!(
                "{:<13} {:<22} {state}\n",
                listener.service, listener.address
            ));
        }
        out.push_str(&format!("messages      {}\n", self.messages_stored));
        out.push_str(&format!(
            "store         {} on disk for {} of mail\n",
            human_bytes(self.store_bytes),
            human_bytes(self.mail_bytes)
        ));
        let oldest = self
            .queue_oldest
            .map(|t| format!(", oldest {}", human_age(now - t)))
            .unwrap_or_default();
        out.push_str(&format!("queue         {}{oldest}\n", self.queue_depth));
        if let Some(last) = self.last_delivery {
            out.push_str(&format!("last delivery {} ago\n", human_age(now - last)));
        }
        let spam = self.spam_today.today(now);
        out.push_str(&format!(
            "spam today    {} refused, {} greylisted, {} to Junk\n",
            spam.refused, spam.greylisted, spam.junk
        ));
        if let Some(storage) = self.storage {
            out.push_str(&format!(
                "storage       {} free of {}\n",
                human_bytes(storage.free_bytes),
                human_bytes(storage.total_bytes)
            ));
        }
        match self.mode {
            Mode::Normal => {}
            Mode::Setup => out.push_str("setup mode    on\n"),
            Mode::ShuttingDown => out.push_str("shutting down\n"),
        }
        if let Some(setup) = &self.setup {
            if let (Some(network), Some(passphrase)) = (&setup.network, &setup.passphrase) {
                out.push_str(&format!(
                    "hotspot       {network}, passphrase {passphrase}\n"
                ));
            }
            out.push_str(&format!("setup page    {}\n", setup.url));
            if let Some(code) = &setup.code {
                out.push_str(&format!("setup code    {code}\n"));
            }
            if let Some(problem) = &setup.problem {
                out.push_str(&format!("not joined    {}\n", problem.reason));
            }
        }
        if !self.addresses.is_empty() {
            out.push_str(&format!("addresses     {}\n", self.addresses.join(", ")));
        }
        if let Some(wifi) = &self.wifi {
            out.push_str(&format!("wi-fi         {}\n", wifi.describe()));
        }
        if let Some(mc) = self.soc_temperature_mc {
            out.push_str(&format!("temperature   {:.1} °C\n", f64::from(mc) / 1000.0));
        }
        if let Some(report) = &self.health {
            use crate::health::Verdict;
            out.push_str(&format!(
                "health        {} ok, {} warning(s), {} problem(s), checked {} ago\n",
                report.count(Verdict::Ok),
                report.count(Verdict::Warning),
                report.count(Verdict::Problem),
                human_age(now - report.checked_at)
            ));
        }
        if let Some(backup) = &self.backup {
            out.push_str(&format!(
                "backup        {} ago: {}\n",
                human_age(now - backup.at),
                backup.said
            ));
        }
        for alert in &self.alerts {
            out.push_str(&format!("ALERT         {}\n", alert.key()));
        }
        out
    }
}

pub fn human_age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spam_counts_start_again_each_day() {
        let day = 20_000 * 86400;
        let mut counts = SpamCounts::default();
        counts.count(SpamEvent::Refused, day + 10);
        counts.count(SpamEvent::Junk, day + 20);
        counts.count(SpamEvent::Greylisted, day + 86399);
        let today = counts.today(day + 86399);
        assert_eq!((today.refused, today.greylisted, today.junk), (1, 1, 1));
        assert!(counts.today(day + 86400).is_empty());
        counts.count(SpamEvent::Junk, day + 86400);
        assert_eq!(counts.today(day + 86400).junk, 1);
        assert_eq!(counts.today(day + 86400).refused, 0);
    }

    #[test]
    fn ages_and_sizes_read_well() {
        assert_eq!(human_age(42), "42s");
        assert_eq!(human_age(3 * 3600 + 5 * 60), "3h05m");
        assert_eq!(human_age(2 * 86400 + 3600), "2d1h");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
    }

    #[test]
    fn storage_of_the_temp_dir_is_known() {
        let storage = Storage::of(&std::env::temp_dir()).expect("statvfs");
        assert!(storage.total_bytes > 0);
        assert!(storage.free_bytes <= storage.total_bytes);
    }

    #[test]
    fn render_shows_down_listeners_with_reason() {
        let status = Status {
            version: "0.1.0".into(),
            hostname: "mail".into(),
            running: true,
            listeners: vec![ListenerStatus {
                service: "smtp".into(),
                address: "0.0.0.0:25".into(),
                up: false,
                error: Some("address in use".into()),
            }],
            ..Status::default()
        };
        let text = status.render(0);
        assert!(text.contains("DOWN (address in use)"), "{text}");
    }

    #[test]
    fn render_shows_the_store_beside_the_mail_it_holds() {
        let status = Status {
            mail_bytes: 10 << 20,
            store_bytes: 11 << 20,
            ..Status::default()
        };
        let text = status.render(0);
        assert!(
            text.contains("store         11.0 MiB on disk for 10.0 MiB of mail"),
            "{text}"
        );
    }
}
