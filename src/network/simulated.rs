//! The simulated Wi-Fi backend: hears a fixed list of networks (`[network]
//! simulated_networks`), joins any of them with a valid passphrase, and records the network
//! it joined twice over — in memory ([`Simulated::joined`], for unit tests) and in
//! `<data_dir>/network-simulated.toml` (for tests that drive the real daemon from outside).
//! The passphrase is recorded nowhere. With `simulated_passphrase` set, every other
//! passphrase is refused as a wrong one. Its hotspot "rises" on `simulated_hotspot` (an
//! address of this machine); the box has an uplink once it has joined a network, or when it
//! has no hotspot address to simulate.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use super::{
    BoxFuture, Hotspot, Network, NetworkError, WifiNetwork, check_passphrase, check_ssid,
    strongest_first,
};
use crate::secret::Secret;

/// The record of the joined network, in the data directory.
pub const JOINED_FILE: &str = "network-simulated.toml";

/// The signal of the first listed network, and how much weaker each next one is heard, so
/// the list shows a plausible spread of bars.
const FIRST_SIGNAL: u8 = 90;
const SIGNAL_STEP: u8 = 15;
const WEAKEST_SIGNAL: u8 = 5;

#[derive(Debug)]
pub struct Simulated {
    networks: Vec<WifiNetwork>,
    hotspot: Option<IpAddr>,
    passphrase: Option<Secret<String>>,
    record: PathBuf,
    joined: Mutex<Option<String>>,
    /// The hotspot's address while it is up.
    raised: Mutex<Option<IpAddr>>,
}

#[derive(Serialize)]
struct Record<'a> {
    joined: &'a str,
}

impl Simulated {
    /// `ssids` as heard, the first the strongest; `hotspot` is the address it reports as the
    /// hotspot's; `passphrase`, if any, the only one the networks take; the joined network
    /// is recorded under `data_dir`.
    pub fn new(
        ssids: &[String],
        hotspot: Option<IpAddr>,
        passphrase: Option<Secret<String>>,
        data_dir: &Path,
    ) -> Simulated {
        let mut signal = FIRST_SIGNAL;
        let heard = ssids.iter().map(|ssid| {
            let network = WifiNetwork {
                ssid: ssid.clone(),
                signal_percent: signal,
                secured: true,
            };
            signal = signal.saturating_sub(SIGNAL_STEP).max(WEAKEST_SIGNAL);
            network
        });
        Simulated {
            networks: strongest_first(heard),
            hotspot,
            passphrase,
            record: data_dir.join(JOINED_FILE),
            joined: Mutex::new(None),
            raised: Mutex::new(None),
        }
    }

    /// The network joined last, if any.
    pub fn joined(&self) -> Option<String> {
        // The lock guards one assignment, which cannot be left half done by a panic.
        self.joined
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn join_listed(
        &self,
        ssid: &str,
        passphrase: &Secret<String>,
    ) -> Result<(), NetworkError> {
        check_ssid(ssid)?;
        check_passphrase(passphrase)?;
        if !self.networks.iter().any(|n| n.ssid == ssid) {
            return Err(NetworkError::NotInRange(ssid.to_string()));
        }
        if self.passphrase.as_ref().is_some_and(|p| p != passphrase) {
            return Err(NetworkError::WrongPassphrase(ssid.to_string()));
        }
        let text = toml::to_string(&Record { joined: ssid })
            .map_err(|e| NetworkError::Backend(e.to_string()))?;
        tokio::fs::write(&self.record, text)
            .await
            .map_err(|e| NetworkError::Backend(format!("{}: {e}", self.record.display())))?;
        *self.joined.lock().unwrap_or_else(PoisonError::into_inner) = Some(ssid.to_string());
        tracing::info!(ssid, "simulated Wi-Fi: joined");
        Ok(())
    }
}

impl Network for Simulated {
    fn has_wifi(&self) -> bool {
        true
    }

    fn scan(&self) -> BoxFuture<'_, Result<Vec<WifiNetwork>, NetworkError>> {
        Box::pin(async { Ok(self.networks.clone()) })
    }

    fn join<'a>(
        &'a self,
        ssid: &'a str,
        passphrase: &'a Secret<String>,
    ) -> BoxFuture<'a, Result<(), NetworkError>> {
        Box::pin(self.join_listed(ssid, passphrase))
    }

    fn hotspot_address(&self) -> Option<IpAddr> {
        *self.raised.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Without a hotspot address to simulate, the box counts as wired (it has its uplink).
    fn has_uplink(&self) -> BoxFuture<'_, bool> {
        Box::pin(async { self.hotspot.is_none() || self.joined().is_some() })
    }

    fn raise_hotspot<'a>(
        &'a self,
        hotspot: &'a Hotspot,
        _captive_path: &'a str,
    ) -> BoxFuture<'a, Result<IpAddr, NetworkError>> {
        Box::pin(async move {
            check_ssid(&hotspot.ssid)?;
            check_passphrase(&hotspot.passphrase)?;
            let address = self.hotspot.ok_or_else(|| {
                NetworkError::Backend("no simulated_hotspot address is configured".into())
            })?;
            *self.raised.lock().unwrap_or_else(PoisonError::into_inner) = Some(address);
            tracing::info!(ssid = hotspot.ssid, %address, "simulated Wi-Fi: hotspot up");
            Ok(address)
        })
    }

    fn lower_hotspot(&self) -> BoxFuture<'_, Result<(), NetworkError>> {
        Box::pin(async {
            *self.raised.lock().unwrap_or_else(PoisonError::into_inner) = None;
            Ok(())
        })
    }
}
