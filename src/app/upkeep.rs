//! The daemon's background work beside the services: the storage and Wi-Fi facts kept fresh
//! for the status, the self-signed certificate renewed, the radio's country, mDNS, and the
//! captive DNS that answers only in setup mode.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::settings::Reloader;
use crate::status::{Mode, Status, Storage};

/// How often free storage is measured for the status value.
const STORAGE_REFRESH: Duration = Duration::from_secs(60);
/// How often the Wi-Fi link (network, signal, address) in the status is read again.
const WIFI_REFRESH: Duration = Duration::from_secs(5);
/// How often the self-signed certificate is checked against the box's names and addresses
/// (a new DHCP lease) and its end; a reload makes it again when it no longer fits.
const CERTIFICATE_CHECK: Duration = Duration::from_secs(10 * 60);
/// The port phones send DNS to (RFC 1035 §4.2): the captive DNS answers there on the hotspot.
const CAPTIVE_DNS_PORT: u16 = 53;

/// Tells the radio which country it is in, in the background (the backend may run a
/// command); a refusal is logged, since the radio then keeps to the stricter world rules.
pub(super) fn apply_country(
    network: &Arc<dyn crate::network::Network>,
    country: Option<&str>,
    tracker: &TaskTracker,
) {
    // A box without a radio has no channels to choose.
    let Some(country) = country.filter(|_| network.has_wifi()).map(str::to_string) else {
        return;
    };
    let network = network.clone();
    tracker.spawn(async move {
        match network.set_country(&country).await {
            Ok(()) => tracing::info!(country, "Wi-Fi: regulatory domain set"),
            Err(error) => tracing::warn!(country, %error, "Wi-Fi: regulatory domain not set"),
        }
    });
}

/// The mDNS responder, when `[network] mdns` is on and the box can be reached from the
/// network at all. A failure is logged, not fatal: the box still works by address.
pub(super) fn start_mdns(config: &Config) -> Option<crate::network::mdns::Announcer> {
    use crate::network::mdns;
    let listen = &config.listen;
    let all = [
        &listen.smtp,
        &listen.submission,
        &listen.submissions,
        &listen.pop3,
        &listen.pop3s,
        &listen.imap,
        &listen.imaps,
        &listen.web,
        &listen.web_tls,
    ];
    let addresses = all.iter().flat_map(|list| list.iter().map(|a| a.ip()));
    if !config.network.mdns || !mdns::reachable_from_the_network(addresses) {
        return None;
    }
    let smtp_port = listen.smtp.first().map_or(25, |a| a.port());
    match mdns::Announcer::start(&config.hostname, smtp_port) {
        Ok(announcer) => Some(announcer),
        Err(error) => {
            tracing::warn!(%error, "mDNS: not answering");
            None
        }
    }
}

/// Runs the captive DNS responder on `addresses`, and on port 53 of the hotspot's address
/// while a hotspot is up, only while the box is in setup mode: bound when setup mode starts
/// (or the hotspot comes up), closed when it ends, so a box in normal use answers no DNS.
pub(super) async fn captive_dns_in_setup_mode(
    configured: Vec<SocketAddr>,
    network: Arc<dyn crate::network::Network>,
    mut status: watch::Receiver<Status>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    // What the responders depend on: setup mode, and the hotspot's address.
    let wanted = |s: &Status, network: &dyn crate::network::Network| {
        (s.mode == Mode::Setup).then(|| network.hotspot_address())
    };
    loop {
        // Wait for setup mode.
        let entered = tokio::select! {
            entered = status.wait_for(|s| s.mode == Mode::Setup) => entered.is_ok(),
            () = shutdown.cancelled() => false,
        };
        if !entered {
            return;
        }
        let now = wanted(&status.borrow(), network.as_ref());
        let mut addresses = configured.clone();
        if let Some(Some(hotspot)) = now
            && !network.answers_hotspot_dns()
        {
            addresses.push(SocketAddr::new(hotspot, CAPTIVE_DNS_PORT));
        }
        let responders = shutdown.child_token();
        for address in &addresses {
            // The answer is the hotspot's address, or the one this socket listens on.
            let answer = match (network.hotspot_address(), address.ip()) {
                (Some(std::net::IpAddr::V4(hotspot)), _) => hotspot,
                (_, std::net::IpAddr::V4(own)) if !own.is_unspecified() => own,
                _ => {
                    tracing::warn!(%address, "captive DNS: no IPv4 setup address to answer with");
                    continue;
                }
            };
            match tokio::net::UdpSocket::bind(address).await {
                Ok(socket) => {
                    tracing::info!(%address, %answer, "captive DNS answering for setup mode");
                    tracker.spawn(crate::network::captive_dns::serve(
                        socket,
                        answer,
                        responders.clone(),
                    ));
                }
                Err(error) => tracing::error!(%address, %error, "captive DNS cannot listen"),
            }
        }
        let left = tokio::select! {
            left = status.wait_for(|s| wanted(s, network.as_ref()) != now) => left.is_ok(),
            () = shutdown.cancelled() => false,
        };
        responders.cancel();
        if !left {
            return;
        }
    }
}

pub(super) async fn refresh_storage(
    config: Arc<Config>,
    status: watch::Sender<Status>,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(STORAGE_REFRESH);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let storage = Storage::of(&config.data_dir);
        status.send_if_modified(|s| {
            let changed = s.storage != storage;
            s.storage = storage;
            changed
        });
    }
}

/// The daemon's periodic work on the self-signed certificate: when it no longer names the box
/// or nears its end, the settings are reloaded, which makes it again (`tls::acceptor`) and
/// restarts the services with it.
pub(super) async fn renew_certificate(
    configs: watch::Receiver<Arc<Config>>,
    reloader: Reloader,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(CERTIFICATE_CHECK);
    // The first tick is at once; the start has just checked.
    interval.tick().await;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let config = configs.borrow().clone();
        let current =
            tokio::task::spawn_blocking(move || crate::tls::self_signed_is_current(&config))
                .await
                .unwrap_or(true);
        if !current {
            tracing::info!("the self-signed certificate is renewed: the services start again");
            if let Err(error) = reloader.reload().await {
                tracing::error!(%error, "cannot renew the self-signed certificate");
            }
        }
    }
}

/// Keeps `Status::wifi` up to date for the panel, the web page and `letterbox status`.
pub(super) async fn refresh_wifi(
    network: Arc<dyn crate::network::Network>,
    status: watch::Sender<Status>,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(WIFI_REFRESH);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let wifi = tokio::select! {
            wifi = network.link() => wifi,
            () = shutdown.cancelled() => return,
        };
        status.send_if_modified(|s| {
            let changed = s.wifi != wifi;
            s.wifi = wifi;
            changed
        });
    }
}
