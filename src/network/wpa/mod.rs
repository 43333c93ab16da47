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
//! The setup hotspot is a `mode 2` network of wpa_supplicant's (WPA2-PSK, CCMP only, on
//! channel 1, which every phone hears); the image's `/sbin/letterbox-hotspot` then puts the
//! box's static address on the interface, holds the interface's DHCP client and runs busybox
//! `udhcpd` for phones, with the captive-portal URL as option 114 (RFC 8910). Lowering it
//! undoes that and hands the stored network back to wpa_supplicant. While the hotspot is up
//! the radio does not scan: a scan answers what was heard just before it was raised.

mod ctrl;
pub mod proto;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::PoisonError;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use self::ctrl::Ctrl;
use self::proto::{DisabledReason, Event, Field, ReplyError, Request};
use super::{
    BoxFuture, Hotspot, Network, NetworkError, WifiLink, WifiNetwork, check_passphrase, check_ssid,
};
use crate::limits::{WIFI_JOIN_TIMEOUT, WIFI_SCAN_TIMEOUT, WPA_CTRL_REPLY_TIMEOUT};
use crate::secret::Secret;

/// The stored network, in the data directory.
pub const CREDENTIALS_FILE: &str = "wifi.toml";
/// Where wpa_supplicant puts its control sockets by default (`ctrl_interface=`).
pub const DEFAULT_CONTROL_DIR: &str = "/run/wpa_supplicant";
/// The image's script that configures the hotspot's address and DHCP server:
/// `letterbox-hotspot up IFACE ADDRESS/24 OPTION114-HEX` and `letterbox-hotspot down IFACE`.
pub const HOTSPOT_SCRIPT: &str = "/sbin/letterbox-hotspot";
/// The box's address on its hotspot (a /24; phones get .10 to .250), as NetworkManager's.
pub const HOTSPOT_ADDRESS: Ipv4Addr = super::nm::HOTSPOT_ADDRESS;
/// Channel 1 (IEEE 802.11-2020 Table E-4): allowed in every regulatory domain.
const HOTSPOT_FREQUENCY_MHZ: u32 = 2412;

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
    #[error("the hotspot script failed: {0}")]
    Script(String),
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
    hotspot_script: PathBuf,
    /// The hotspot's address while it is up.
    hotspot: std::sync::Mutex<Option<IpAddr>>,
    /// What the last scan heard, answered while the hotspot holds the radio.
    heard: std::sync::Mutex<Vec<WifiNetwork>>,
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
            hotspot_script: PathBuf::from(HOTSPOT_SCRIPT),
            hotspot: std::sync::Mutex::new(None),
            heard: std::sync::Mutex::new(Vec::new()),
        }
    }

    #[cfg(test)]
    fn with_hotspot_script(mut self, script: &Path) -> Wpa {
        self.hotspot_script = script.to_path_buf();
        self
    }

    fn raised(&self) -> Option<IpAddr> {
        *self.hotspot.lock().unwrap_or_else(PoisonError::into_inner)
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
        if self.raised().is_some() {
            return Ok(self
                .heard
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone());
        }
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
        let heard = super::strongest_first(heard);
        *self.heard.lock().unwrap_or_else(PoisonError::into_inner) = heard.clone();
        Ok(heard)
    }

    /// Raises the hotspot: a `mode 2` network, then the address and DHCP (the script).
    async fn raise(&self, hotspot: &Hotspot, captive_path: &str) -> Result<IpAddr, NetworkError> {
        check_ssid(&hotspot.ssid)?;
        check_passphrase(&hotspot.passphrase)?;
        let psk = proto::psk(hotspot.passphrase.expose(), hotspot.ssid.as_bytes());
        let _radio = self.radio.lock().await;
        let mut ctrl = self.open()?;
        proto::parse_ok(&ctrl.request(&Request::Attach).await?).map_err(WpaError::from)?;
        remove_all(&mut ctrl).await?;
        let id = proto::parse_network_id(&ctrl.request(&Request::AddNetwork).await?)
            .map_err(WpaError::from)?;
        for field in [
            Field::Ssid(hotspot.ssid.as_bytes().to_vec()),
            Field::AccessPoint,
            Field::FrequencyMhz(HOTSPOT_FREQUENCY_MHZ),
            Field::KeyMgmtPsk,
            Field::ProtoRsn,
            Field::PairwiseCcmp,
            Field::GroupCcmp,
            Field::Psk(psk),
        ] {
            let reply = ctrl.request(&Request::SetNetwork { id, field }).await?;
            proto::parse_ok(&reply).map_err(WpaError::from)?;
        }
        proto::parse_ok(&ctrl.request(&Request::SelectNetwork(id)).await?)
            .map_err(WpaError::from)?;
        let deadline = tokio::time::Instant::now() + WIFI_JOIN_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match ctrl.next_event(left).await? {
                Some(Event::ApEnabled | Event::Connected) => break,
                Some(_) => {}
                None => {
                    let _ = ctrl.request(&Request::RemoveNetwork(id)).await;
                    return Err(NetworkError::Backend(
                        "wpa_supplicant did not start the access point".into(),
                    ));
                }
            }
        }
        let address = IpAddr::V4(HOTSPOT_ADDRESS);
        self.run_script(&[
            "up",
            &self.interface,
            &format!("{HOTSPOT_ADDRESS}/24"),
            &proto::hex(format!("http://{HOTSPOT_ADDRESS}{captive_path}").as_bytes()),
        ])
        .await?;
        *self.hotspot.lock().unwrap_or_else(PoisonError::into_inner) = Some(address);
        tracing::info!(ssid = hotspot.ssid, %address, "Wi-Fi: hotspot up");
        Ok(address)
    }

    /// Lowers the hotspot and hands the stored network back to wpa_supplicant.
    async fn lower(&self) -> Result<(), NetworkError> {
        if self.raised().is_none() {
            return Ok(());
        }
        let _radio = self.radio.lock().await;
        self.run_script(&["down", &self.interface]).await?;
        let mut ctrl = self.open()?;
        remove_all(&mut ctrl).await?;
        *self.hotspot.lock().unwrap_or_else(PoisonError::into_inner) = None;
        if let Some(stored) = self.load().await? {
            self.hand_over(&mut ctrl, &stored).await?;
        }
        tracing::info!("Wi-Fi: hotspot down");
        Ok(())
    }

    async fn run_script(&self, args: &[&str]) -> Result<(), WpaError> {
        let script = self.hotspot_script.display().to_string();
        let output = tokio::process::Command::new(&self.hotspot_script)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| WpaError::Script(format!("{script}: {e}")))?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(WpaError::Script(format!(
            "{script} {}: {}",
            args.first().unwrap_or(&""),
            stderr.lines().last().unwrap_or("failed")
        )))
    }

    /// The interface has an address from its DHCP client (not the hotspot's own).
    async fn station_has_address(&self) -> bool {
        if self.raised().is_some() {
            return false;
        }
        self.current_link()
            .await
            .ok()
            .flatten()
            .is_some_and(|link| link.address.is_some())
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

/// Removes every network (before the hotspot takes the radio).
async fn remove_all(ctrl: &mut Ctrl) -> Result<(), WpaError> {
    let reply = ctrl.request(&Request::ListNetworks).await?;
    for id in proto::parse_network_ids(&reply) {
        proto::parse_ok(&ctrl.request(&Request::RemoveNetwork(id)).await?)?;
    }
    Ok(())
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
        self.raised()
    }

    fn has_uplink(&self) -> BoxFuture<'_, bool> {
        Box::pin(async { self.station_has_address().await || super::wired_uplink(&self.interface) })
    }

    fn raise_hotspot<'a>(
        &'a self,
        hotspot: &'a Hotspot,
        captive_path: &'a str,
    ) -> BoxFuture<'a, Result<IpAddr, NetworkError>> {
        Box::pin(self.raise(hotspot, captive_path))
    }

    fn lower_hotspot(&self) -> BoxFuture<'_, Result<(), NetworkError>> {
        Box::pin(self.lower())
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
