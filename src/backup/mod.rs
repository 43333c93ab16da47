//! The nightly backup to a USB drive: when a drive whose file system is labelled
//! `LETTERBOX-BACKUP` (`[backup] label`; on FAT and exFAT, which allow 11 characters,
//! `LETTERBOX-B`) is plugged in, it is mounted, the export's tar of every
//! account (`export::export_file`: one snapshot, streamed, written under a `.part` name and
//! renamed once it is durable) is written as `letterbox-YYYY-MM-DD-HHMMSS.tar`, all but the
//! newest `[backup] keep` of those files are deleted, and the drive is unmounted again.
//!
//! It runs every night at `[backup] hour` (the box's local time) and on demand (the admin page's
//! "Back up now", `letterbox backup`). The last run's outcome is in the status value.
//!
//! - `drive`: finding the drive by label, mounting and unmounting it.

mod drive;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::status::Status;
use crate::store::Store;

const NAME_PREFIX: &str = "letterbox-";
const NAME_SUFFIX: &str = ".tar";

/// `[backup]` in the config file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupSettings {
    /// The file system label of the backup drive.
    pub label: String,
    /// How many backups stay on the drive (the oldest go first).
    pub keep: u32,
    /// The hour of the night (0-23, local time) the backup runs at.
    pub hour: u8,
    /// Where the drive is mounted while the backup is written.
    pub mount_dir: PathBuf,
}

impl Default for BackupSettings {
    fn default() -> Self {
        BackupSettings {
            label: "LETTERBOX-BACKUP".into(),
            keep: 7,
            hour: 3,
            mount_dir: PathBuf::from("/run/letterbox/backup"),
        }
    }
}

impl BackupSettings {
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.label.is_empty() || self.label.contains('/') {
            return Err(("label", format!("{:?} is not a label", self.label)));
        }
        if self.keep == 0 {
            return Err(("keep", "backup.keep must be at least 1".into()));
        }
        if self.hour > 23 {
            return Err(("hour", "backup.hour is 0 to 23".into()));
        }
        if !self.mount_dir.is_absolute() {
            return Err((
                "mount_dir",
                "backup.mount_dir must be an absolute path".into(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no drive labelled {0} is plugged in")]
    NoDrive(String),
    #[error("backup drive: {0}")]
    Drive(String),
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
}

/// The outcome of the last backup, as the admin page and `letterbox status` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRun {
    /// When it ended (Unix seconds).
    pub at: i64,
    pub ok: bool,
    /// The file written, or why none was.
    pub said: String,
    /// The file's name on the drive, when one was written.
    pub file: Option<String>,
    pub messages: u64,
}

/// Backs up once: find, mount, write, prune, unmount.
pub async fn run_once(config: &Config, store: &Store) -> BackupRun {
    let at = crate::store::now_unix();
    let name = backup_name(at);
    match write(config, store, &name).await {
        Ok((file, messages, removed)) => {
            let removed = if removed == 0 {
                String::new()
            } else {
                format!("; {removed} older backup(s) removed")
            };
            BackupRun {
                at: crate::store::now_unix(),
                ok: true,
                said: format!("{messages} messages written to {file}{removed}."),
                file: Some(file),
                messages,
            }
        }
        Err(error) => BackupRun {
            at: crate::store::now_unix(),
            ok: false,
            said: format!("{}.", upper_first(&error.to_string())),
            file: None,
            messages: 0,
        },
    }
}

fn upper_first(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

async fn write(
    config: &Config,
    store: &Store,
    name: &str,
) -> Result<(String, u64, usize), BackupError> {
    let settings = &config.backup;
    let device = drive::find(&settings.label)
        .await?
        .ok_or_else(|| BackupError::NoDrive(settings.label.clone()))?;
    let mounted = drive::mount(&device, &settings.mount_dir).await?;
    let written = write_on(&mounted.dir, store, name, settings.keep).await;
    // Unmounted whatever happened, so the drive can be pulled out.
    let unmounted = mounted.unmount().await;
    let (file, messages, removed) = written?;
    unmounted?;
    Ok((file, messages, removed))
}

async fn write_on(
    dir: &Path,
    store: &Store,
    name: &str,
    keep: u32,
) -> Result<(String, u64, usize), BackupError> {
    let existing = backups_in(dir)?;
    let name = unique_name(name, &existing);
    let summary = crate::export::export_file(store, None, &dir.join(&name)).await?;
    let mut all = existing;
    all.push(name.clone());
    let mut removed = 0;
    for old in to_remove(all, keep) {
        match std::fs::remove_file(dir.join(&old)) {
            Ok(()) => removed += 1,
            Err(error) => tracing::warn!(file = %old, %error, "backup: an old backup stays"),
        }
    }
    Ok((name, summary.messages, removed))
}

/// The backup files on the drive (other files are left alone).
fn backups_in(dir: &Path) -> Result<Vec<String>, BackupError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|error| BackupError::Drive(format!("cannot read {}: {error}", dir.display())))?;
    Ok(entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| order_of(name).is_some())
        .collect())
}

/// `letterbox-2026-12-06-031500.tar` for Unix seconds, in UTC (a name that sorts by time).
pub fn backup_name(unix: i64) -> String {
    let seconds = unix.rem_euclid(86400);
    format!(
        "{NAME_PREFIX}{}-{:02}{:02}{:02}{NAME_SUFFIX}",
        crate::tls::date(unix),
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

/// Later backups in the same second get `-1`, `-2`, ... before `.tar`, always past the
/// highest one there, so the newest backup sorts last even after older ones were deleted.
fn unique_name(name: &str, existing: &[String]) -> String {
    let Some((stamp, _)) = order_of(name) else {
        return name.to_string();
    };
    let highest = existing
        .iter()
        .filter_map(|e| order_of(e))
        .filter(|(other, _)| *other == stamp)
        .map(|(_, counter)| counter)
        .max();
    match highest {
        None => name.to_string(),
        Some(counter) => format!(
            "{}-{}{NAME_SUFFIX}",
            name.trim_end_matches(NAME_SUFFIX),
            counter.saturating_add(1)
        ),
    }
}

/// A backup file's place in time: its stamp and its same-second counter.
fn order_of(name: &str) -> Option<(String, u32)> {
    let middle = name.strip_prefix(NAME_PREFIX)?.strip_suffix(NAME_SUFFIX)?;
    // YYYY-MM-DD-HHMMSS is 17 characters.
    let stamp = middle.get(..17)?;
    let shape_ok = stamp.bytes().enumerate().all(|(i, b)| {
        if [4, 7, 10].contains(&i) {
            b == b'-'
        } else {
            b.is_ascii_digit()
        }
    });
    if !shape_ok {
        return None;
    }
    let counter = match middle.get(17..)? {
        "" => 0,
        rest => rest.strip_prefix('-')?.parse().ok()?,
    };
    Some((stamp.to_string(), counter))
}

/// All but the newest `keep` backups.
fn to_remove(mut names: Vec<String>, keep: u32) -> Vec<String> {
    names.sort_by_key(|name| order_of(name));
    let keep = usize::try_from(keep).unwrap_or(usize::MAX);
    let excess = names.len().saturating_sub(keep);
    names.truncate(excess);
    names
}

/// Seconds from `now` to the next `hour`:00 local time, given the local time's offset from
/// UTC; a whole day when that is now.
pub fn until_hour(now: i64, utc_offset: i64, hour: u8) -> u64 {
    let local = (now + utc_offset).rem_euclid(86400);
    let target = i64::from(hour) * 3600;
    let wait = (target - local).rem_euclid(86400);
    u64::try_from(if wait == 0 { 86400 } else { wait }).unwrap_or(86400)
}

/// The local time's offset from UTC now (the TZ environment, /etc/localtime), in seconds.
// time_t and long are 32-bit on armv7 and 64-bit on aarch64; the conversions are needed there
// even though they are no-ops here. The libc crate marks musl's `time_t` deprecated (it became
// 64-bit on 32-bit targets in musl 1.2); the one musl target built here is 64-bit, where it
// always was.
#[allow(clippy::useless_conversion)]
#[cfg_attr(target_env = "musl", allow(deprecated))]
fn utc_offset(now: i64) -> i64 {
    let time: libc::time_t = match now.try_into() {
        Ok(time) => time,
        Err(_) => return 0,
    };
    let mut tm = std::mem::MaybeUninit::<libc::tm>::zeroed();
    // SAFETY: `time` is a valid time_t and `tm` points to writable memory of the right type;
    // localtime_r only writes into it and returns NULL on failure.
    let result = unsafe { libc::localtime_r(&time, tm.as_mut_ptr()) };
    if result.is_null() {
        return 0;
    }
    // SAFETY: localtime_r succeeded, so it filled the struct.
    let tm = unsafe { tm.assume_init() };
    i64::from(tm.tm_gmtoff)
}

/// Asks the running daemon's backup task for a backup now.
#[derive(Clone)]
pub struct Backup {
    requests: mpsc::Sender<oneshot::Sender<BackupRun>>,
}

impl Backup {
    /// Backs up now (or joins the backup in progress); `None` when shutting down.
    pub async fn now(&self) -> Option<BackupRun> {
        let (reply, run) = oneshot::channel();
        self.requests.send(reply).await.ok()?;
        run.await.ok()
    }
}

/// Starts the backup task: every night at `[backup] hour`, and on request.
pub fn spawn(
    configs: watch::Receiver<Arc<Config>>,
    store: Store,
    status: watch::Sender<Status>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> Backup {
    let (requests, mut incoming) = mpsc::channel::<oneshot::Sender<BackupRun>>(4);
    tracker.spawn(async move {
        loop {
            let config = configs.borrow().clone();
            let now = crate::store::now_unix();
            let wait = until_hour(now, utc_offset(now), config.backup.hour);
            let mut waiting = Vec::new();
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(wait)) => {}
                Some(reply) = incoming.recv() => waiting.push(reply),
                () = shutdown.cancelled() => return,
            }
            let config = configs.borrow().clone();
            let run = run_once(&config, &store).await;
            if run.ok {
                tracing::info!(said = %run.said, "backup written");
            } else {
                tracing::warn!(said = %run.said, "backup failed");
            }
            status.send_modify(|s| s.backup = Some(run.clone()));
            while let Ok(reply) = incoming.try_recv() {
                waiting.push(reply);
            }
            for reply in waiting {
                let _ = reply.send(run.clone());
            }
        }
    });
    Backup { requests }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_time_and_the_oldest_go() {
        // 2026-12-06T03:15:09Z.
        let name = backup_name(1_796_526_909);
        assert_eq!(name, "letterbox-2026-12-06-031509.tar");
        let existing = vec![name.clone()];
        assert_eq!(
            unique_name(&name, &existing),
            "letterbox-2026-12-06-031509-1.tar"
        );
        // The first of the second was deleted already: the next still sorts last.
        let existing = vec!["letterbox-2026-12-06-031509-2.tar".to_string()];
        assert_eq!(
            unique_name(&name, &existing),
            "letterbox-2026-12-06-031509-3.tar"
        );
        let names: Vec<String> = [
            "letterbox-2026-12-06-031509-1.tar",
            "letterbox-2026-12-05-031500.tar",
            "letterbox-2026-12-06-031509.tar",
            "letterbox-2026-12-06-031509-2.tar",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            to_remove(names, 2),
            vec![
                "letterbox-2026-12-05-031500.tar".to_string(),
                "letterbox-2026-12-06-031509.tar".to_string()
            ]
        );
        for foreign in [
            "notes.txt",
            "letterbox-2026-12-06.tar",
            "letterbox-2026-12-06-031509-x.tar",
        ] {
            assert_eq!(order_of(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn the_nightly_run_waits_for_the_local_hour() {
        let midnight = 1_796_515_200; // 2026-12-06T00:00:00Z
        assert_eq!(until_hour(midnight, 0, 3), 3 * 3600);
        assert_eq!(until_hour(midnight + 3 * 3600, 0, 3), 86400);
        assert_eq!(until_hour(midnight + 4 * 3600, 0, 3), 23 * 3600);
        // At 00:00 UTC it is 01:00 in UTC+1: two hours to go.
        assert_eq!(until_hour(midnight, 3600, 3), 2 * 3600);
    }

    #[test]
    fn settings_are_checked() {
        assert!(BackupSettings::default().validate().is_ok());
        let keep_none = BackupSettings {
            keep: 0,
            ..BackupSettings::default()
        };
        assert_eq!(keep_none.validate().map_err(|e| e.0), Err("keep"));
        let relative = BackupSettings {
            mount_dir: PathBuf::from("mnt"),
            ..BackupSettings::default()
        };
        assert_eq!(relative.validate().map_err(|e| e.0), Err("mount_dir"));
    }
}
