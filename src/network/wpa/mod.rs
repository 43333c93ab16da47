//! The wpa_supplicant backend (the SD image): scans and joins through wpa_supplicant's
//! control socket (`/run/wpa_supplicant/wlan0`, started by the image's init), never by
//! parsing a tool's human output. Addresses come from busybox `udhcpc`, which the init runs
//! on the Wi-Fi interface; after a join Letterbox asks it to renew at once.
//!
//! The joined network is stored in `<data_dir>/wifi.toml` (mode 0600) as its name and the
//! 256-bit PSK derived from the passphrase; the passphrase itself is kept nowhere, so it is
//! never shown again. At start the stored network is handed to wpa_supplicant, which from
//! then on reconnects by itself whenever the router comes back.
//!
//! [`proto`] holds the request lines and the reply and event parsing, without I/O; [`ctrl`]
//! moves the datagrams.
//!
//! Not here yet: the setup hotspot (`mode 2` networks) and the link report for the System
//! page; see the README.

mod ctrl;
pub mod proto;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use self::ctrl::Ctrl;
use self::proto::{DisabledReason, Event, Field, ReplyError, Request};
use super::{
    BoxFuture, Network, NetworkError, WifiLink, WifiNetwork, check_passphrase, check_ssid,
};
use crate::limits::{WIFI_JOIN_TIMEOUT, WIFI_SCAN_TIMEOUT, WPA_CTRL_REPLY_TIMEOUT};
use crate::secret::Secret;

/// The stored network, in the data directory.
pub const CREDENTIALS_FILE: &str = "wifi.toml";
/// Where wpa_supplicant puts its control sockets by default (`ctrl_interface=`).
pub const DEFAULT_CONTROL_DIR: &str = "/run/wpa_supplicant";

/// Why talking to wpa_supplicant failed.
#[derive(Debug, thiserror::Error)]
pub enum WpaError {
    #[error("{}: {error}", path.display())]
    Socket { path: PathBuf, error: String },
    #[error("wpa_supplicant control socket: {0}")]
    Io(String),
    #[error("wpa_supplicant did not answer {0} within {secs} s", secs = WPA_CTRL_REPLY_TIMEOUT.as_secs())]
    NoReply(String),
    #[error(transparent)]
    Reply(#[from] ReplyError),
    #[error("{}: {error}", path.display())]
    Credentials { path: PathBuf, error: String },
}

impl From<WpaError> for NetworkError {
    fn from(error: WpaError) -> NetworkError {
        NetworkError::Backend(error.to_string())
    }
}

/// `<data_dir>/wifi.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    ssid: String,
    /// 64 hex digits: PBKDF2 of the passphrase and the SSID (IEEE 802.11 Annex J.4.1).
    psk: String,
}

#[derive(Debug)]
pub struct Wpa {
    /// wpa_supplicant's control socket for the Wi-Fi interface.
    control: PathBuf,
    /// The interface's name (the socket's file name): `wlan0`.
    interface: String,
    credentials: PathBuf,
    /// One conversation with the radio at a time: a scan during a join would confuse both.
    radio: Mutex<()>,
}

impl Wpa {
    pub fn new(control: &Path, data_dir: &Path) -> Wpa {
        let interface = control
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        Wpa {
            control: control.to_path_buf(),
            interface,
            credentials: data_dir.join(CREDENTIALS_FILE),
            radio: Mutex::new(()),
        }
    }

    /// Whether wpa_supplicant's control socket for `control` exists.
    pub fn present(control: &Path) -> bool {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata(control).is_ok_and(|m| m.file_type().is_socket())
    }

    fn open(&self) -> Result<Ctrl, WpaError> {
        Ctrl::open(&self.control, &std::env::temp_dir())
    }

    async fn scan_now(&self) -> Result<Vec<WifiNetwork>, WpaError> {
        let _radio = self.radio.lock().await;
        let mut ctrl = self.open()?;
        proto::parse_ok(&ctrl.request(&Request::Attach).await?)?;
        match proto::parse_ok(&ctrl.request(&Request::Scan).await?) {
            // Busy: a scan is already running; its results serve as well.
            Ok(()) | Err(ReplyError::Busy) => {}
            Err(error) => return Err(error.into()),
        }
        let deadline = tokio::time::Instant::now() + WIFI_SCAN_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match ctrl.next_event(left).await? {
                Some(Event::ScanResults) | None => break,
                Some(_) => {}
            }
        }
        let heard = proto::parse_scan_results(&ctrl.request(&Request::ScanResults).await?)?;
        Ok(super::strongest_first(heard))
    }

    async fn join_network(
        &self,
        ssid: &str,
        passphrase: &Secret<String>,
    ) -> Result<(), NetworkError> {
        check_ssid(ssid)?;
        check_passphrase(passphrase)?;
        let psk = proto::psk(passphrase.expose(), ssid.as_bytes());
        let _radio = self.radio.lock().await;
        let mut ctrl = self.open()?;
        proto::parse_ok(&ctrl.request(&Request::Attach).await?).map_err(WpaError::from)?;
        let id = add_station(&mut ctrl, ssid.as_bytes(), &psk).await?;
        proto::parse_ok(&ctrl.request(&Request::SelectNetwork(id)).await?)
            .map_err(WpaError::from)?;
        let outcome = wait_for_join(&mut ctrl, ssid).await;
        if let Err(error) = outcome {
            tracing::warn!(ssid, %error, "Wi-Fi: joining failed");
            let _ = ctrl.request(&Request::RemoveNetwork(id)).await;
            // Back to the network that worked before, if there was one.
            if let Ok(Some(stored)) = self.load().await
                && let Err(error) = self.hand_over(&mut ctrl, &stored).await
            {
                tracing::warn!(%error, "Wi-Fi: the stored network could not be restored");
            }
            return Err(error);
        }
        tracing::info!(ssid, "Wi-Fi: joined");
        self.store(&Credentials {
            ssid: ssid.to_string(),
            psk: proto::psk_hex(&psk),
        })
        .await?;
        remove_others(&mut ctrl, id).await?;
        self.renew_address().await;
        Ok(())
    }

    /// STATUS and SIGNAL_POLL: the joined network, its signal and address.
    async fn current_link(&self) -> Result<Option<WifiLink>, WpaError> {
        let mut ctrl = self.open()?;
        let status = proto::parse_status(&ctrl.request(&Request::Status).await?)?;
        let (true, Some(ssid)) = (status.completed(), status.ssid) else {
            return Ok(None);
        };
        let signal = proto::parse_signal_dbm(&ctrl.request(&Request::SignalPoll).await?);
        Ok(Some(WifiLink {
            ssid,
            signal_percent: signal.map(proto::signal_percent),
            address: status.ip_address,
        }))
    }

    /// Hands the stored network to wpa_supplicant (at start): it joins it whenever it is in
    /// range, now and after every loss of the link.
    async fn rejoin_stored(&self) -> Result<(), WpaError> {
        let Some(stored) = self.load().await? else {
            return Ok(());
        };
        let _radio = self.radio.lock().await;
        let mut ctrl = self.open()?;
        self.hand_over(&mut ctrl, &stored).await?;
        tracing::info!(ssid = stored.ssid, "Wi-Fi: joining the stored network");
        Ok(())
    }

    async fn hand_over(&self, ctrl: &mut Ctrl, stored: &Credentials) -> Result<(), WpaError> {
        let psk = proto::parse_psk(&stored.psk).ok_or_else(|| WpaError::Credentials {
            path: self.credentials.clone(),
            error: "psk is not 64 hex digits".into(),
        })?;
        let id = add_station(ctrl, stored.ssid.as_bytes(), &psk).await?;
        proto::parse_ok(&ctrl.request(&Request::SelectNetwork(id)).await?)?;
        remove_others(ctrl, id).await
    }

    async fn load(&self) -> Result<Option<Credentials>, WpaError> {
        let text = match tokio::fs::read_to_string(&self.credentials).await {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(self.credentials_error(error)),
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|e| self.credentials_error(e))
    }

    /// Writes the credentials with mode 0600 beside the file, then renames it over the old
    /// one: a power cut leaves the old network or the new one, never half a file.
    async fn store(&self, credentials: &Credentials) -> Result<(), WpaError> {
        let text = format!(
            "# The Wi-Fi network this box joins, written by the setup wizard. The key is\n\
             # derived from the passphrase (IEEE 802.11 Annex J.4.1); the passphrase is not kept.\n{}",
            toml::to_string(credentials).map_err(|e| self.credentials_error(e))?
        );
        let partial = self.credentials.with_extension("toml.new");
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .await
            .map_err(|e| self.credentials_error(e))?;
        file.write_all(text.as_bytes())
            .await
            .map_err(|e| self.credentials_error(e))?;
        file.sync_all()
            .await
            .map_err(|e| self.credentials_error(e))?;
        tokio::fs::rename(&partial, &self.credentials)
            .await
            .map_err(|e| self.credentials_error(e))?;
        // The rename itself is durable only once the directory is synced.
        if let Some(dir) = self.credentials.parent() {
            let dir = tokio::fs::File::open(dir)
                .await
                .map_err(|e| self.credentials_error(e))?;
            dir.sync_all()
                .await
                .map_err(|e| self.credentials_error(e))?;
        }
        Ok(())
    }

    fn credentials_error(&self, error: impl std::fmt::Display) -> WpaError {
        WpaError::Credentials {
            path: self.credentials.clone(),
            error: error.to_string(),
        }
    }

    /// Asks the interface's udhcpc (pid in `/run/udhcpc.<interface>.pid`, as the image's
    /// init starts it) for a lease now rather than at its next retry.
    async fn renew_address(&self) {
        let pidfile = format!("/run/udhcpc.{}.pid", self.interface);
        let Ok(text) = tokio::fs::read_to_string(&pidfile).await else {
            tracing::debug!(pidfile, "Wi-Fi: no DHCP client to wake");
            return;
        };
        let Ok(pid) = text.trim().parse::<libc::pid_t>() else {
            return;
        };
        // SAFETY: kill(2) with a plain pid and signal number touches no memory of ours.
        if unsafe { libc::kill(pid, libc::SIGUSR1) } != 0 {
            tracing::debug!(pid, "Wi-Fi: the DHCP client is gone");
        }
    }
}

/// Adds a WPA2-Personal station network and returns its id (not yet enabled).
async fn add_station(ctrl: &mut Ctrl, ssid: &[u8], psk: &[u8; 32]) -> Result<u32, WpaError> {
    let id = proto::parse_network_id(&ctrl.request(&Request::AddNetwork).await?)?;
    for field in [
        Field::Ssid(ssid.to_vec()),
        Field::Psk(*psk),
        Field::KeyMgmtPsk,
        Field::ScanSsid,
    ] {
        let reply = ctrl.request(&Request::SetNetwork { id, field }).await?;
        if let Err(error) = proto::parse_ok(&reply) {
            let _ = ctrl.request(&Request::RemoveNetwork(id)).await;
            return Err(error.into());
        }
    }
    Ok(id)
}

/// Removes every network but `keep` (the box joins one network).
async fn remove_others(ctrl: &mut Ctrl, keep: u32) -> Result<(), WpaError> {
    let reply = ctrl.request(&Request::ListNetworks).await?;
    for id in proto::parse_network_ids(&reply) {
        if id != keep {
            proto::parse_ok(&ctrl.request(&Request::RemoveNetwork(id)).await?)?;
        }
    }
    Ok(())
}

/// Waits for wpa_supplicant to say how the join went.
async fn wait_for_join(ctrl: &mut Ctrl, ssid: &str) -> Result<(), NetworkError> {
    let deadline = tokio::time::Instant::now() + WIFI_JOIN_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ctrl.next_event(left).await? {
            Some(Event::Connected) => return Ok(()),
            Some(Event::TempDisabled(DisabledReason::WrongKey)) => {
                return Err(NetworkError::WrongPassphrase(ssid.to_string()));
            }
            Some(Event::NetworkNotFound) => {
                return Err(NetworkError::NotInRange(ssid.to_string()));
            }
            Some(_) => {}
            None => return Err(NetworkError::JoinTimedOut(ssid.to_string())),
        }
    }
}

impl Network for Wpa {
    fn has_wifi(&self) -> bool {
        true
    }

    fn scan(&self) -> BoxFuture<'_, Result<Vec<WifiNetwork>, NetworkError>> {
        Box::pin(async { Ok(self.scan_now().await?) })
    }

    fn join<'a>(
        &'a self,
        ssid: &'a str,
        passphrase: &'a Secret<String>,
    ) -> BoxFuture<'a, Result<(), NetworkError>> {
        Box::pin(self.join_network(ssid, passphrase))
    }

    fn hotspot_address(&self) -> Option<IpAddr> {
        None
    }

    fn link(&self) -> BoxFuture<'_, Option<WifiLink>> {
        Box::pin(async {
            self.current_link().await.unwrap_or_else(|error| {
                tracing::debug!(%error, "Wi-Fi: no link status");
                None
            })
        })
    }

    fn start(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            if let Err(error) = self.rejoin_stored().await {
                tracing::error!(%error, "Wi-Fi: the stored network was not handed to wpa_supplicant");
            }
        })
    }
}

#[cfg(test)]
mod tests;
