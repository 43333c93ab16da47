//! The network seam (issue #11): what the setup wizard needs from the box's networking —
//! whether it has Wi-Fi, which networks are in range, joining one, and the address of the
//! setup hotspot — behind one trait, so the wizard never knows which backend it talks to.
//!
//! Backends here: [`Wired`] (no radio: the wizard skips its Wi-Fi step and guards setup with
//! a one-time code), [`Simulated`] (a fixed list of networks from `[network]` in the
//! config, for development and tests), [`NetworkManager`] (`nmcli`, for the .deb on
//! Raspberry Pi OS) and [`Wpa`] (wpa_supplicant's control socket: the SD image).
//! `[network] backend = "auto"` (the default) picks from what the system has.
//!
//! Beside it, [`captive_dns`]: the DNS responder that answers every name with the box's
//! setup address while setup mode is on.
//!
//! The setup hotspot ([`Network::raise_hotspot`], [`Network::lower_hotspot`]) is raised
//! and lowered only by the control loop (`crate::control`), which owns the network state;
//! [`hotspot`] makes its name and passphrase.

pub mod captive_dns;
pub mod credentials;
pub mod hotspot;
pub mod mdns;
pub mod nm;
pub mod nm_terse;
mod simulated;
mod uplink;
pub mod wpa;

use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::secret::Secret;

pub use hotspot::Hotspot;
pub use nm::NetworkManager;
pub use simulated::{JOINED_FILE, Simulated};
pub use uplink::wired_uplink;
pub use wpa::Wpa;

/// A boxed future that may move between threads; the trait returns these so that it stays
/// object-safe (`Arc<dyn Network>`) without a crate for async traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// IEEE 802.11-2020 §9.4.2.2: an SSID is 0 to 32 octets; an empty one is a hidden network,
/// which cannot be picked from a list.
pub const SSID_MAX: usize = 32;
/// IEEE 802.11-2020 Annex J.4.1: a WPA2-PSK passphrase is 8 to 63 printable ASCII characters
/// (codes 32 to 126).
pub const PASSPHRASE_MIN: usize = 8;
pub const PASSPHRASE_MAX: usize = 63;

/// A network in range, as the wizard lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WifiNetwork {
    pub ssid: String,
    /// 0 (barely heard) to 100 (next to the box).
    pub signal_percent: u8,
    /// Asks for a passphrase (WPA2/WPA3-Personal); false for an open network.
    pub secured: bool,
}

/// The Wi-Fi network the box is on, as the System page and `letterbox status` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub ssid: String,
    /// 0 (barely heard) to 100 (next to the router).
    pub signal_percent: u8,
    /// The box's IPv4 address there; `None` while DHCP has not answered.
    pub address: Option<IpAddr>,
}

/// The network the box has joined, as `letterbox status` and the System page show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WifiLink {
    pub ssid: String,
    /// 0 to 100, as in [`WifiNetwork`]; `None` when the driver does not say.
    pub signal_percent: Option<u8>,
    /// The interface's IPv4 address, once DHCP has given one.
    pub address: Option<String>,
}

impl WifiLink {
    /// One line: `Home, signal 80 %, 192.168.1.23`.
    pub fn describe(&self) -> String {
        let mut line = self.ssid.clone();
        if let Some(signal) = self.signal_percent {
            line.push_str(&format!(", signal {signal} %"));
        }
        line.push_str(", ");
        line.push_str(self.address.as_deref().unwrap_or("no address yet"));
        line
    }
}

/// Why a network operation failed; each message is one line a person can act on.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum NetworkError {
    #[error("this box has no Wi-Fi")]
    NoWifi,
    #[error("a network name must be 1 to {SSID_MAX} bytes long")]
    BadSsid,
    #[error("no network named {0:?} is in range")]
    NotInRange(String),
    #[error("the network {0:?} refused the passphrase: check it and try again")]
    WrongPassphrase(String),
    #[error("the network {0:?} did not let this box in within {secs} s", secs = crate::limits::WIFI_JOIN_TIMEOUT.as_secs())]
    JoinTimedOut(String),
    #[error("the passphrase must be {PASSPHRASE_MIN} to {PASSPHRASE_MAX} characters long")]
    PassphraseLength,
    #[error(
        "the passphrase may hold only letters, digits, spaces and punctuation \
         (printable ASCII characters)"
    )]
    PassphraseCharacters,
    /// The backend itself failed (a service that does not answer, a file that cannot be
    /// written); the text says what.
    #[error("the Wi-Fi service failed: {0}")]
    Backend(String),
}

impl NetworkError {
    /// A few words for the panel's one line.
    pub fn short(&self) -> &'static str {
        match self {
            NetworkError::WrongPassphrase(_) => "wrong password",
            NetworkError::NotInRange(_) => "not found",
            NetworkError::JoinTimedOut(_) => "no answer",
            NetworkError::NoWifi => "no Wi-Fi",
            NetworkError::BadSsid
            | NetworkError::PassphraseLength
            | NetworkError::PassphraseCharacters => "not valid",
            NetworkError::Backend(_) => "failed",
        }
    }
}

/// The box's networking as the setup wizard sees it.
pub trait Network: Send + Sync + 'static {
    /// False on a wired box: the wizard skips its Wi-Fi step.
    fn has_wifi(&self) -> bool;

    /// Networks in range, strongest first, each SSID once (see [`strongest_first`]).
    fn scan(&self) -> BoxFuture<'_, Result<Vec<WifiNetwork>, NetworkError>>;

    /// Remembers and joins `ssid`. The SSID and the passphrase (WPA2-PSK: 8 to 63 printable
    /// ASCII characters) are checked here, with [`check_ssid`] and [`check_passphrase`], so
    /// every backend refuses the same things with the same words.
    fn join<'a>(
        &'a self,
        ssid: &'a str,
        passphrase: &'a Secret<String>,
    ) -> BoxFuture<'a, Result<(), NetworkError>>;

    /// The box's own address on the setup hotspot while it is raised. Connections that
    /// arrive on it come over the hotspot, whose WPA2 passphrase is the guard; any other
    /// connection to the setup page must give the one-time code.
    fn hotspot_address(&self) -> Option<IpAddr>;

    /// Sets the radio's regulatory domain (`country`, ISO 3166-1 alpha-2, checked by
    /// [`crate::country::check`]), which decides the channels it may use. A box without a
    /// radio has nothing to set.
    fn set_country<'a>(&'a self, _country: &'a str) -> BoxFuture<'a, Result<(), NetworkError>> {
        Box::pin(async { Ok(()) })
    }

    /// The network joined now, if any.
    fn link(&self) -> BoxFuture<'_, Option<WifiLink>> {
        Box::pin(async { None })
    }

    /// Called once when the daemon starts: a backend that stores a network joins it again.
    fn start(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Whether the box can be reached without a hotspot: a joined Wi-Fi network with an
    /// address, or a wired interface with one. Setup mode raises a hotspot only when not
    /// (or when a person asked for it with a long press).
    fn has_uplink(&self) -> BoxFuture<'_, bool> {
        Box::pin(async { true })
    }

    /// Raises the WPA2-PSK setup hotspot (the radio leaves any network it was on) and
    /// returns the box's address on it, which [`Network::hotspot_address`] reports from
    /// then on. Phones that join get an address by DHCP, with the URL of the captive-portal
    /// API (`captive_path` on port 80 of that address) as option 114 (RFC 8910). Call
    /// [`Network::scan`] first: while the radio serves the hotspot, a scan answers what was
    /// heard before.
    fn raise_hotspot<'a>(
        &'a self,
        _hotspot: &'a Hotspot,
        _captive_path: &'a str,
    ) -> BoxFuture<'a, Result<IpAddr, NetworkError>> {
        Box::pin(async { Err(NetworkError::NoWifi) })
    }

    /// Takes the hotspot down; the radio goes back to the stored network, if any. Lowering a
    /// hotspot that is not up is not an error.
    fn lower_hotspot(&self) -> BoxFuture<'_, Result<(), NetworkError>> {
        Box::pin(async { Ok(()) })
    }

    /// Whether the hotspot's own DHCP server also answers DNS on its address (port 53
    /// there is taken), so the captive DNS must not listen there: NetworkManager's.
    fn answers_hotspot_dns(&self) -> bool {
        false
    }
}

/// The backend `[network] backend` names; `auto` is [`Auto`].
pub fn from_config(config: &Config) -> Arc<dyn Network> {
    let wpa = || Wpa::new(&config.network.wpa_control, &config.data_dir);
    match config.network.backend {
        Backend::Auto => Arc::new(Auto::new(
            wpa(),
            &config.network.wpa_control,
            Path::new(NETWORK_MANAGER_RUN_DIR),
        )),
        Backend::Wired => Arc::new(Wired),
        Backend::Wpa => Arc::new(wpa()),
        Backend::Simulated => Arc::new(Simulated::new(
            &config.network.simulated_networks,
            config.network.simulated_hotspot,
            config.network.simulated_passphrase.clone(),
            &config.data_dir,
        )),
        Backend::NetworkManager => Arc::new(NetworkManager::new(
            nm::Processes,
            &config.network.interface,
            &config.network.hotspot_hosts,
        )),
    }
}

/// A box without Wi-Fi: nothing to scan or join, no hotspot.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wired;

impl Network for Wired {
    fn has_wifi(&self) -> bool {
        false
    }

    fn scan(&self) -> BoxFuture<'_, Result<Vec<WifiNetwork>, NetworkError>> {
        Box::pin(async { Err(NetworkError::NoWifi) })
    }

    fn join<'a>(
        &'a self,
        _ssid: &'a str,
        _passphrase: &'a Secret<String>,
    ) -> BoxFuture<'a, Result<(), NetworkError>> {
        Box::pin(async { Err(NetworkError::NoWifi) })
    }

    fn hotspot_address(&self) -> Option<IpAddr> {
        None
    }
}

/// `[network] backend = "auto"`: wpa_supplicant while its control socket is there and
/// NetworkManager does not run, a wired box otherwise. Decided at each call, not once: on a Pi the Wi-Fi interface (and so
/// wpa_supplicant's socket) appears when its firmware has loaded, which may be after
/// Letterbox started.
#[derive(Debug)]
pub struct Auto {
    wpa: Wpa,
    control: PathBuf,
    network_manager: PathBuf,
}

/// NetworkManager's run-time directory: while it exists NetworkManager owns the radio (it
/// runs wpa_supplicant itself, on Raspberry Pi OS with a control socket too), and driving
/// wpa_supplicant behind its back would undo what it does.
pub const NETWORK_MANAGER_RUN_DIR: &str = "/run/NetworkManager";

impl Auto {
    /// `wpa` for the socket at `control`, unless `network_manager` (its run-time directory)
    /// shows that NetworkManager owns the radio.
    pub fn new(wpa: Wpa, control: &Path, network_manager: &Path) -> Auto {
        Auto {
            wpa,
            control: control.to_path_buf(),
            network_manager: network_manager.to_path_buf(),
        }
    }

    fn wpa_usable(&self) -> bool {
        Wpa::present(&self.control) && !self.network_manager.exists()
    }

    fn current(&self) -> &dyn Network {
        if self.wpa_usable() { &self.wpa } else { &Wired }
    }
}

impl Network for Auto {
    fn has_wifi(&self) -> bool {
        self.current().has_wifi()
    }

    fn scan(&self) -> BoxFuture<'_, Result<Vec<WifiNetwork>, NetworkError>> {
        self.current().scan()
    }

    fn join<'a>(
        &'a self,
        ssid: &'a str,
        passphrase: &'a Secret<String>,
    ) -> BoxFuture<'a, Result<(), NetworkError>> {
        self.current().join(ssid, passphrase)
    }

    fn hotspot_address(&self) -> Option<IpAddr> {
        self.current().hotspot_address()
    }

    fn link(&self) -> BoxFuture<'_, Option<WifiLink>> {
        self.current().link()
    }

    fn has_uplink(&self) -> BoxFuture<'_, bool> {
        self.current().has_uplink()
    }

    fn raise_hotspot<'a>(
        &'a self,
        hotspot: &'a Hotspot,
        captive_path: &'a str,
    ) -> BoxFuture<'a, Result<IpAddr, NetworkError>> {
        self.current().raise_hotspot(hotspot, captive_path)
    }

    fn lower_hotspot(&self) -> BoxFuture<'_, Result<(), NetworkError>> {
        self.current().lower_hotspot()
    }

    fn answers_hotspot_dns(&self) -> bool {
        self.current().answers_hotspot_dns()
    }

    /// Waits for wpa_supplicant's socket (up to `WIFI_APPEAR_TIMEOUT`), then lets it rejoin
    /// the stored network; a box without Wi-Fi just waits that long for nothing.
    fn start(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            let deadline = tokio::time::Instant::now() + crate::limits::WIFI_APPEAR_TIMEOUT;
            while !self.wpa_usable() {
                if tokio::time::Instant::now() >= deadline {
                    return;
                }
                tokio::time::sleep(WIFI_APPEAR_POLL).await;
            }
            self.wpa.start().await;
        })
    }
}

/// How often [`Auto`] looks for wpa_supplicant's socket at start.
const WIFI_APPEAR_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// A name the wizard may offer or join: 1 to 32 bytes.
pub fn check_ssid(ssid: &str) -> Result<(), NetworkError> {
    if ssid.is_empty() || ssid.len() > SSID_MAX {
        return Err(NetworkError::BadSsid);
    }
    Ok(())
}

/// A WPA2-PSK passphrase: 8 to 63 printable ASCII characters. (A raw 64-hex-digit PSK is
/// not offered: nobody types one on a phone.)
pub fn check_passphrase(passphrase: &Secret<String>) -> Result<(), NetworkError> {
    let passphrase = passphrase.expose();
    if !passphrase.bytes().all(|b| (32..=126).contains(&b)) {
        return Err(NetworkError::PassphraseCharacters);
    }
    if !(PASSPHRASE_MIN..=PASSPHRASE_MAX).contains(&passphrase.len()) {
        return Err(NetworkError::PassphraseLength);
    }
    Ok(())
}

/// A scan's raw results as the wizard lists them: one entry per SSID (an SSID heard from
/// several access points keeps its strongest signal, and is secured if any of them is, so a
/// look-alike open access point cannot make a home network look open), strongest first,
/// hidden networks left out.
pub fn strongest_first(heard: impl IntoIterator<Item = WifiNetwork>) -> Vec<WifiNetwork> {
    let mut networks: Vec<WifiNetwork> = Vec::new();
    for network in heard {
        if check_ssid(&network.ssid).is_err() {
            continue;
        }
        match networks.iter_mut().find(|n| n.ssid == network.ssid) {
            Some(known) => {
                known.signal_percent = known.signal_percent.max(network.signal_percent);
                known.secured |= network.secured;
            }
            None => networks.push(network),
        }
    }
    // Stable: equally strong networks keep the order they were heard in.
    networks.sort_by_key(|n| std::cmp::Reverse(n.signal_percent));
    networks
}

/// `[network]` in the config.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSettings {
    pub backend: Backend,
    /// wpa_supplicant's control socket for the Wi-Fi interface (`ctrl_interface` directory
    /// and the interface's name).
    pub wpa_control: PathBuf,
    /// The networks the simulated backend hears, strongest first (all WPA2-secured).
    pub simulated_networks: Vec<String>,
    /// An address of this machine that the simulated backend calls its hotspot address
    /// (e.g. 127.0.0.2, so a test can reach the setup page "over the hotspot" there and
    /// over the "wired LAN" at 127.0.0.1). Unset: no hotspot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub simulated_hotspot: Option<IpAddr>,
    /// The passphrase every simulated network takes; any other is refused as a wrong one.
    /// Unset: any valid passphrase is taken.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::secret::shown_as_set"
    )]
    pub simulated_passphrase: Option<Secret<String>>,
    /// The Wi-Fi interface the real backends drive.
    #[serde(default = "default_interface")]
    pub interface: String,
    /// Answer mDNS for `<first label of hostname>.local` and `letterbox.local` (only when
    /// some service listens beyond 127.0.0.1, so tests stay quiet).
    #[serde(default = "yes")]
    pub mdns: bool,
    /// The hosts file the NetworkManager backend writes while its hotspot is up, for
    /// NetworkManager's dnsmasq (`nm::DEFAULT_HOTSPOT_HOSTS`, which the .deb's drop-in names).
    pub hotspot_hosts: PathBuf,
}

fn yes() -> bool {
    true
}

fn default_interface() -> String {
    "wlan0".into()
}

impl Default for NetworkSettings {
    fn default() -> Self {
        NetworkSettings {
            backend: Backend::default(),
            wpa_control: Path::new(wpa::DEFAULT_CONTROL_DIR).join("wlan0"),
            simulated_networks: Vec::new(),
            simulated_hotspot: None,
            simulated_passphrase: None,
            interface: default_interface(),
            mdns: true,
            hotspot_hosts: PathBuf::from(nm::DEFAULT_HOTSPOT_HOSTS),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// From what the system has: wpa_supplicant's control socket, else wired.
    #[default]
    Auto,
    Wired,
    Simulated,
    Wpa,
    /// NetworkManager through `nmcli` (the .deb on Raspberry Pi OS Bookworm and later).
    NetworkManager,
}

impl NetworkSettings {
    /// Checks what the types cannot; returns the offending key and a reason.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        for (index, ssid) in self.simulated_networks.iter().enumerate() {
            if check_ssid(ssid).is_err() {
                let reason = format!("{ssid:?}: a network name is 1 to {SSID_MAX} bytes long");
                return Err(("simulated_networks", reason));
            }
            if self.simulated_networks[..index].contains(ssid) {
                return Err(("simulated_networks", format!("{ssid:?} is listed twice")));
            }
        }
        // Linux: an interface name is 1 to 15 bytes (IFNAMSIZ less the NUL), no '/' or space.
        let interface_ok = (1..16).contains(&self.interface.len())
            && !self.interface.contains(['/', ' ', ':'])
            && !self.interface.starts_with('-');
        if !interface_ok {
            let reason = format!("{:?} is not a network interface name", self.interface);
            return Err(("interface", reason));
        }
        if let Some(address) = self.simulated_hotspot
            && address.is_unspecified()
        {
            return Err((
                "simulated_hotspot",
                format!("{address} is not an address a connection can arrive on"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod nm_tests;
#[cfg(test)]
mod tests;
