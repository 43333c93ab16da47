//! The simulated Wi-Fi backend: hears a fixed list of networks (`[network]
//! simulated_networks`), joins any of them with a valid passphrase, and records the network
//! it joined twice over — in memory ([`Simulated::joined`], for unit tests) and in
//! `<data_dir>/network-simulated.toml` (for tests that drive the real daemon from outside).
//! The passphrase is recorded nowhere.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use super::{
    BoxFuture, Network, NetworkError, WifiNetwork, check_passphrase, check_ssid, strongest_first,
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
    record: PathBuf,
    joined: Mutex<Option<String>>,
}

#[derive(Serialize)]
struct Record<'a> {
    joined: &'a str,
}

impl Simulated {
    /// `ssids` as heard, the first the strongest; `hotspot` is the address it reports as the
    /// hotspot's; the joined network is recorded under `data_dir`.
    pub fn new(ssids: &[String], hotspot: Option<IpAddr>, data_dir: &Path) -> Simulated {
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
            record: data_dir.join(JOINED_FILE),
            joined: Mutex::new(None),
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
        self.hotspot
    }
}
