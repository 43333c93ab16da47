//! The backup drive: found by its file system label, mounted for the time of one backup, then
//! unmounted so that it can be pulled out at any other time.

use std::path::{Path, PathBuf};
use std::process::Output;

use super::BackupError;

/// Where udev links each labelled file system.
const BY_LABEL: &str = "/dev/disk/by-label";

/// FAT and exFAT volume labels hold at most 11 characters (FAT32 spec, "BS_VolLab").
const FAT_LABEL_MAX: usize = 11;

/// The labels a backup drive may carry: `label`, and on FAT or exFAT (which most USB drives
/// come formatted with) its first 11 characters, all such a drive can hold.
pub(super) fn labels(label: &str) -> Vec<&str> {
    let mut labels = vec![label];
    if let Some((cut, _)) = label.char_indices().nth(FAT_LABEL_MAX) {
        labels.push(&label[..cut]);
    }
    labels
}

/// The block device of the first file system labelled with one of `labels(label)`.
pub(super) async fn find(label: &str) -> Result<Option<PathBuf>, BackupError> {
    for label in labels(label) {
        if let Some(device) = find_one(label).await? {
            return Ok(Some(device));
        }
    }
    Ok(None)
}

/// The block device whose file system is labelled `label`: udev's link when udev runs, else
/// what `blkid` finds by probing (a box without udev, a loop device).
async fn find_one(label: &str) -> Result<Option<PathBuf>, BackupError> {
    let link = Path::new(BY_LABEL).join(label);
    if let Ok(device) = std::fs::canonicalize(&link) {
        return Ok(Some(device));
    }
    // Exit status 2: no such label. The cache is bypassed: a drive plugged in since the last
    // probe would not be in it.
    let out = run("blkid", &["-c", "/dev/null", "-L", label]).await?;
    match out.status.code() {
        Some(0) => {
            let device = String::from_utf8_lossy(&out.stdout).trim().to_string();
            Ok((!device.is_empty()).then(|| PathBuf::from(device)))
        }
        Some(2) => Ok(None),
        _ => Err(failed("blkid", &out)),
    }
}

/// A mounted drive; `unmount` must be called (a drop cannot wait for umount).
pub(super) struct Mounted {
    pub dir: PathBuf,
}

pub(super) async fn mount(device: &Path, dir: &Path) -> Result<Mounted, BackupError> {
    std::fs::create_dir_all(dir)
        .map_err(|error| BackupError::Drive(format!("cannot make {}: {error}", dir.display())))?;
    let device_text = device.display().to_string();
    let dir_text = dir.display().to_string();
    // A backup cut short (a power cut, the daemon killed) may have left the drive mounted
    // there; mounting over it would hide the backups written so far.
    if is_mount_point(dir) {
        let out = run("umount", &[&dir_text]).await?;
        if !out.status.success() {
            return Err(failed("umount", &out));
        }
    }
    // Nothing on the drive is ever run.
    let out = run(
        "mount",
        &["-o", "nosuid,nodev,noexec", &device_text, &dir_text],
    )
    .await?;
    if !out.status.success() {
        return Err(failed("mount", &out));
    }
    Ok(Mounted {
        dir: dir.to_path_buf(),
    })
}

impl Mounted {
    /// Flushes and unmounts; the drive can be pulled out afterwards.
    pub(super) async fn unmount(self) -> Result<(), BackupError> {
        let dir = self.dir.display().to_string();
        let out = run("umount", &[&dir]).await?;
        if !out.status.success() {
            return Err(failed("umount", &out));
        }
        Ok(())
    }
}

/// Whether something is mounted at `dir`, as /proc/self/mounts lists it (a directory whose
/// name needs escaping there, with a space in it, is never found).
fn is_mount_point(dir: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    mounts
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .any(|point| Path::new(point) == dir)
}

async fn run(program: &str, args: &[&str]) -> Result<Output, BackupError> {
    tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|error| BackupError::Drive(format!("cannot run {program}: {error}")))
}

fn failed(program: &str, out: &Output) -> BackupError {
    let said = String::from_utf8_lossy(&out.stderr);
    BackupError::Drive(format!("{program} failed: {}", said.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fat_drive_may_carry_the_label_cut_to_11_characters() {
        assert_eq!(
            labels("LETTERBOX-BACKUP"),
            ["LETTERBOX-BACKUP", "LETTERBOX-B"]
        );
        assert_eq!(labels("BACKUP"), ["BACKUP"]);
    }
}
