//! The network state that setup mode owns: the hotspot (raised when setup mode starts on a
//! box with Wi-Fi and no uplink, or on a long press; lowered when it ends) and joining the
//! network the wizard names. Only the control loop calls this, one operation at a time, so
//! the radio has one owner.
//!
//! Joining over the hotspot is a handover: the page that asked gets its answer first, the
//! hotspot goes down after `HANDOVER_GRACE` (the radio cannot serve it and join at once),
//! and when the join fails the same hotspot comes back — a phone that knew it rejoins by
//! itself — with the reason published for the setup page and the panel.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::network::{Hotspot, Network, NetworkError};
use crate::secret::Secret;
use crate::status::JoinProblem;

/// How long the hotspot stays up after the wizard named a network: time for the answer page
/// to reach the phone before the radio leaves.
pub const HANDOVER_GRACE: Duration = Duration::from_secs(2);

/// What the panel and `letterbox status` show of a raised hotspot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub network: String,
    pub passphrase: String,
    pub url: String,
}

/// What starting setup mode did with the radio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entered {
    Raised(Shown),
    /// No hotspot: the box has an uplink, it is up already, or raising it failed (logged).
    NoHotspot,
    /// No radio (yet: a Pi's Wi-Fi interface appears when its firmware has loaded).
    NoRadio,
}

/// How a join the wizard asked for goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joining {
    /// Joined already (no hotspot held the radio).
    Joined,
    /// The hotspot goes down in `HANDOVER_GRACE`, then the box tries the network; the outcome
    /// shows in `Status::setup` (a problem, and the hotspot again, if it failed).
    AfterHotspot,
}

pub struct Radio {
    network: Arc<dyn Network>,
    /// Where the setup page listens (for the URL shown with the hotspot).
    web: Vec<SocketAddr>,
    /// This setup mode's hotspot, kept while it is down for a join.
    hotspot: Option<Hotspot>,
    /// Its address while it is up.
    up: Option<IpAddr>,
}

impl Radio {
    pub fn new(network: Arc<dyn Network>, web: Vec<SocketAddr>) -> Radio {
        Radio {
            network,
            web,
            hotspot: None,
            up: None,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up.is_some()
    }

    /// Setup mode starts: raises a hotspot when the box has Wi-Fi and no uplink, or when
    /// `asked` (a long press).
    pub async fn enter(&mut self, asked: bool) -> Entered {
        if self.up.is_some() {
            return Entered::NoHotspot;
        }
        if !self.network.has_wifi() {
            return Entered::NoRadio;
        }
        if !asked && self.network.has_uplink().await {
            tracing::info!("setup mode: the box has an uplink; the setup page asks for the code");
            return Entered::NoHotspot;
        }
        let hotspot = match Hotspot::new() {
            Ok(hotspot) => hotspot,
            Err(error) => {
                tracing::error!(%error, "no hotspot: no passphrase can be made");
                return Entered::NoHotspot;
            }
        };
        self.hotspot = Some(hotspot);
        self.raise()
            .await
            .map_or(Entered::NoHotspot, Entered::Raised)
    }

    /// Setup mode ends: the hotspot goes down and is forgotten.
    pub async fn leave(&mut self) {
        self.hotspot = None;
        self.lower().await;
    }

    /// Scans first (the radio cannot while it serves the hotspot), then raises this setup
    /// mode's hotspot.
    async fn raise(&mut self) -> Option<Shown> {
        let hotspot = self.hotspot.clone()?;
        match self.network.scan().await {
            Ok(heard) => {
                tracing::info!(networks = heard.len(), "Wi-Fi: scanned before the hotspot")
            }
            Err(error) => tracing::warn!(%error, "Wi-Fi: no scan before the hotspot"),
        }
        let captive_path = crate::web::CAPTIVE_API_PATH;
        match self.network.raise_hotspot(&hotspot, captive_path).await {
            Ok(address) => {
                self.up = Some(address);
                Some(Shown {
                    network: hotspot.ssid.clone(),
                    passphrase: hotspot.passphrase.expose().clone(),
                    url: crate::web::setup_url(&self.web, &[address.to_string()]),
                })
            }
            Err(error) => {
                tracing::error!(%error, ssid = hotspot.ssid, "the setup hotspot did not come up");
                None
            }
        }
    }

    async fn lower(&mut self) {
        if self.up.take().is_some()
            && let Err(error) = self.network.lower_hotspot().await
        {
            tracing::error!(%error, "the setup hotspot did not go down");
        }
    }

    /// Joins `ssid` now, with no hotspot up.
    pub async fn join_now(
        &mut self,
        ssid: &str,
        passphrase: &Secret<String>,
    ) -> Result<(), NetworkError> {
        self.network.join(ssid, passphrase).await
    }

    /// The handover (see the module comment): `Ok` once joined; on failure the hotspot is up
    /// again and the reason is returned with what to show of the hotspot.
    pub async fn join_over_hotspot(
        &mut self,
        ssid: &str,
        passphrase: &Secret<String>,
    ) -> Result<(), (JoinProblem, Option<Shown>)> {
        tokio::time::sleep(HANDOVER_GRACE).await;
        self.lower().await;
        match self.network.join(ssid, passphrase).await {
            Ok(()) => {
                self.hotspot = None;
                Ok(())
            }
            Err(error) => {
                tracing::warn!(%error, ssid, "Wi-Fi: joining failed; the hotspot comes back");
                Err((JoinProblem::of(ssid, &error), self.raise().await))
            }
        }
    }
}
