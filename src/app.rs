//! Wires the services together: opens the store, makes TLS ready, binds every listener,
//! supervises the sessions and shuts down cleanly (drain connections, then release the store).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{self, Admin};
use crate::auth::{AuthError, Authenticator};
use crate::config::Config;
use crate::imap::session::ImapContext;
use crate::net::{QuickAck, Stream, accept_tls};
use crate::pop3::session::{MaildropLocks, Pop3Context};
use crate::recent_log::RecentLog;
use crate::settings::{Reload, Reloader};
use crate::slots::Slots;
use crate::smtp::session::{Role, SmtpContext};
use crate::status::{ListenerStatus, Mode, Status, Storage};
use crate::store::{Store, StoreError, now_unix};
use crate::tls::TlsError;
use crate::web::Web;

/// How long sessions get to finish after shutdown is requested.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often free storage is measured for the status value.
const STORAGE_REFRESH: Duration = Duration::from_secs(60);
/// How often the Wi-Fi link (network, signal, address) in the status is read again.
const WIFI_REFRESH: Duration = Duration::from_secs(5);
/// How often the self-signed certificate is checked against the box's names and addresses
/// (a new DHCP lease) and its end; a reload makes it again when it no longer fits.
const CERTIFICATE_CHECK: Duration = Duration::from_secs(10 * 60);
/// The port phones send DNS to (RFC 1035 §4.2): the captive DNS answers there on the hotspot.
const CAPTIVE_DNS_PORT: u16 = 53;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("accounts: {0}")]
    Auth(#[from] AuthError),
    #[error("outbound: {0}")]
    Outbound(#[from] crate::outbound::OutboundError),
    #[error("{0}")]
    Dkim(#[from] crate::outbound::dkim::DkimError),
    #[error("control socket {path}: {source}")]
    Control {
        path: String,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Smtp,
    Submission,
    Submissions,
    Pop3,
    Pop3s,
    Imap,
    Imaps,
    Web,
    WebTls,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Smtp => "smtp",
            Service::Submission => "submission",
            Service::Submissions => "submissions",
            Service::Pop3 => "pop3",
            Service::Pop3s => "pop3s",
            Service::Imap => "imap",
            Service::Imaps => "imaps",
            Service::Web => "web",
            Service::WebTls => "web_tls",
        }
    }

    /// The web service lives for the daemon's whole life; the mail services restart with
    /// each settings change.
    fn is_web(self) -> bool {
        matches!(self, Service::Web | Service::WebTls)
    }

    fn addresses(self, config: &Config) -> &[SocketAddr] {
        let listen = &config.listen;
        match self {
            Service::Smtp => &listen.smtp,
            Service::Submission => &listen.submission,
            Service::Submissions => &listen.submissions,
            Service::Pop3 => &listen.pop3,
            Service::Pop3s => &listen.pop3s,
            Service::Imap => &listen.imap,
            Service::Imaps => &listen.imaps,
            Service::Web => &listen.web,
            Service::WebTls => &listen.web_tls,
        }
    }

    const ALL: [Service; 9] = [
        Service::Smtp,
        Service::Submission,
        Service::Submissions,
        Service::Pop3,
        Service::Pop3s,
        Service::Imap,
        Service::Imaps,
        Service::Web,
        Service::WebTls,
    ];
}

/// Everything a connection handler needs, cloned into each listener.
#[derive(Clone)]
struct Services {
    smtp: SmtpContext,
    submission: SmtpContext,
    pop3: Pop3Context,
    imap: ImapContext,
    tls: TlsAcceptor,
}

fn initial_status(config: &Config) -> Status {
    Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        hostname: config.hostname.clone(),
        storage: Storage::of(&config.data_dir),
        ..Status::default()
    }
}

/// The status shown by `letterbox status` when no daemon runs: counts from the store, every
/// listener down.
pub fn offline_status(config: &Config, store: &Store) -> Result<Status, StoreError> {
    let totals = store.totals()?;
    let mut status = initial_status(config);
    status.messages_stored = totals.messages;
    status.mail_bytes = totals.mail_bytes;
    status.store_bytes = totals.store_bytes;
    status.queue_depth = totals.queue_depth;
    status.queue_oldest = totals.oldest_queued;
    for service in Service::ALL {
        for address in service.addresses(config) {
            status.listeners.push(ListenerStatus {
                service: service.name().into(),
                address: address.to_string(),
                up: false,
                error: None,
            });
        }
    }
    Ok(status)
}

/// Opens the store and the account layer, as the daemon and the offline CLI both do.
pub fn open(config: &Config) -> Result<(Store, Authenticator, watch::Sender<Status>), AppError> {
    let (status, _) = watch::channel(initial_status(config));
    let store = Store::open(&config.data_dir, &config.limits, status.clone())?;
    let default_domain = config.domains.first().map(String::as_str).unwrap_or("");
    let auth = Authenticator::new(store.clone(), &config.limits, default_domain)?;
    Ok((store, auth, status))
}

/// Runs every service until `shutdown` is cancelled. Prints one line per listener
/// (`listening SERVICE ADDRESS`) and then `ready`, which scripts and tests wait for.
///
/// Each config that arrives on `reloads` (the settings changed) replaces the running one
/// inside the process: the new TLS certificate and DKIM key are loaded first (on failure the
/// old services go on, and the one who asked is told why), then the mail services and the
/// outbound worker drain and start again on the new config, printing their `listening` lines
/// and `ready` again; then the one who asked is told it applied. The store, the
/// panel, the control loop and the control socket stay up throughout, so no stored message
/// or acknowledged delivery is touched; sessions open at that moment are closed as at
/// shutdown. The data directory and the account layer stay as they were at start.
pub async fn run(
    config: Config,
    shutdown: CancellationToken,
    reloader: Reloader,
    mut reloads: mpsc::Receiver<Reload>,
    recent_log: RecentLog,
) -> Result<(), AppError> {
    let mut config = Arc::new(config);
    let (store, auth, status) = open(&config)?;
    status.send_modify(|s| {
        s.running = true;
        s.started_at = Some(now_unix());
    });

    let tracker = TaskTracker::new();
    // A box with no account yet has not been set up: it starts in setup mode.
    let first_start = store.accounts().await?.is_empty();
    let network = crate::network::from_config(&config);
    let control = crate::control::spawn(
        status.clone(),
        first_start,
        config.listen.web.clone(),
        network.clone(),
        shutdown.clone(),
        &tracker,
    );
    // The panel and button come first: they show the start, and never stop it.
    let panel = crate::panel::spawn(
        config.clone(),
        status.clone(),
        control.clone(),
        shutdown.clone(),
        &tracker,
    );
    // Made before the health checks start: they read the DKIM key it makes at first start.
    let mut prepared = Prepared::new(&config, &store, &auth, &status)?;
    let (configs, _) = watch::channel(config.clone());
    let health = crate::health::spawn(
        configs.subscribe(),
        status.clone(),
        shutdown.clone(),
        &tracker,
    );
    let backup = crate::backup::spawn(
        configs.subscribe(),
        store.clone(),
        status.clone(),
        shutdown.clone(),
        &tracker,
    );
    let admin = Admin {
        config: config.clone(),
        store: store.clone(),
        auth: auth.clone(),
        status: status.clone(),
        panel: Some(panel),
        control: Some(control.clone()),
        health: Some(health.clone()),
        backup: Some(backup.clone()),
    };
    let control_path = admin::socket_path(&config.data_dir);
    // We hold the store's lock, so a socket file left behind is stale.
    let _ = std::fs::remove_file(&control_path);
    let control_listener =
        UnixListener::bind(&control_path).map_err(|source| AppError::Control {
            path: control_path.display().to_string(),
            source,
        })?;
    restrict_to_owner(&control_path);
    tracker.spawn(admin::serve(
        control_listener,
        admin,
        configs.subscribe(),
        shutdown.clone(),
        tracker.clone(),
    ));
    tracker.spawn(refresh_storage(
        config.clone(),
        status.clone(),
        shutdown.clone(),
    ));

    let (certificate, _) = watch::channel(prepared.services.tls.clone());
    let mut mdns = start_mdns(&config);
    let radio = network.clone();
    apply_country(&radio, config.country.as_deref(), &tracker);
    tracker.spawn({
        let network = network.clone();
        async move { network.start().await }
    });
    tracker.spawn(refresh_wifi(
        network.clone(),
        status.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(renew_certificate(
        configs.subscribe(),
        reloader.clone(),
        shutdown.clone(),
    ));
    let web = Arc::new(Web {
        config: configs.subscribe(),
        status: status.clone(),
        control: control.clone(),
        store: store.clone(),
        auth: auth.clone(),
        network: network.clone(),
        reloader,
        recent_log,
        health,
        backup,
        sessions: Default::default(),
    });
    let web_listeners = start_web(&config, web, &certificate, &shutdown, &tracker).await;
    tracker.spawn(captive_dns_in_setup_mode(
        config.listen.captive_dns.clone(),
        network,
        status.subscribe(),
        shutdown.clone(),
        tracker.clone(),
    ));
    // Whoever asked for the config being started, told once its listeners are bound.
    let mut asked: Option<oneshot::Sender<Result<(), String>>> = None;
    loop {
        let generation = shutdown.child_token();
        let sessions = TaskTracker::new();
        start(
            &config,
            prepared,
            &store,
            &status,
            &web_listeners,
            &generation,
            &sessions,
        )
        .await;
        // Published once the listeners are bound again: whoever sees the new name (a test,
        // the panel) finds the services there.
        status.send_modify(|s| s.hostname = config.hostname.clone());
        println!("ready");
        if let Some(applied) = asked.take() {
            let _ = applied.send(Ok(()));
        }
        let next = loop {
            let next = tokio::select! {
                next = reloads.recv() => next,
                () = shutdown.cancelled() => None,
            };
            let Some(Reload {
                config: next,
                applied,
            }) = next
            else {
                break None;
            };
            if next.data_dir != config.data_dir {
                tracing::error!("a new data_dir needs a restart; the settings change is ignored");
                let _ = applied.send(Err("a new data directory needs a restart".into()));
                continue;
            }
            match Prepared::new(&next, &store, &auth, &status) {
                Ok(ready) => break Some((next, ready, applied)),
                Err(error) => {
                    tracing::error!(%error, "the new settings cannot be used; the services go on as they were");
                    let _ = applied.send(Err(error.to_string()));
                }
            }
        };
        generation.cancel();
        drain(sessions).await;
        let Some((next, ready, applied)) = next else {
            break;
        };
        asked = Some(applied);
        tracing::info!(hostname = %next.hostname, "the settings changed: services started again");
        if let Some(announcer) = &mut mdns
            && next.hostname != config.hostname
            && let Err(error) = announcer.set_hostname(&next.hostname)
        {
            tracing::warn!(%error, "mDNS: the new host name is not announced");
        }
        if next.country != config.country {
            apply_country(&radio, next.country.as_deref(), &tracker);
        }
        config = Arc::new(next);
        configs.send_replace(config.clone());
        certificate.send_replace(ready.services.tls.clone());
        prepared = ready;
    }

    // Shutting down: the services have drained; now everything else.
    tracing::info!("shutting down");
    drain(tracker).await;
    status.send_modify(|s| {
        s.running = false;
        for listener in &mut s.listeners {
            listener.up = false;
        }
    });
    let _ = std::fs::remove_file(&control_path);
    // Every acknowledged message is already durable; dropping the store ends its writer.
    drop(store);
    Ok(())
}

/// Tells the radio which country it is in, in the background (the backend may run a
/// command); a refusal is logged, since the radio then keeps to the stricter world rules.
fn apply_country(
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
fn start_mdns(config: &Config) -> Option<crate::network::mdns::Announcer> {
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

async fn drain(tracker: TaskTracker) {
    tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("sessions still open after the drain timeout; closing them");
    }
}

/// The SPF/DKIM/DMARC checker of port 25, when `[auth] check_inbound` is on. Without a
/// resolver (no CA bundle, no resolv.conf) mail is still received, only unchecked.
fn inbound_auth(config: &Config) -> Option<Arc<crate::smtp::verify::InboundAuth>> {
    if !config.auth.check_inbound {
        return None;
    }
    match crate::smtp::verify::InboundAuth::new(config) {
        Ok(checker) => Some(Arc::new(checker)),
        Err(error) => {
            tracing::error!(%error, "SPF/DKIM/DMARC checks are off: no DNS resolver");
            None
        }
    }
}

/// What a config needs loaded before its services start; made before the old services stop,
/// so a bad certificate or key leaves them running.
struct Prepared {
    services: Services,
}

impl Prepared {
    fn new(
        config: &Config,
        store: &Store,
        auth: &Authenticator,
        status: &watch::Sender<Status>,
    ) -> Result<Prepared, AppError> {
        let config = Arc::new(config.clone());
        let tls = crate::tls::acceptor(&config)?;
        let smtp = SmtpContext {
            config: config.clone(),
            store: store.clone(),
            tls: Some(tls.clone()),
            status: status.clone(),
            role: Role::Mx,
            auth: None,
            dkim: None,
            filters: Some(Arc::new(crate::smtp::filter::Pipeline::inbound(
                &config,
                store,
                inbound_auth(&config),
            ))),
        };
        let services = Services {
            submission: SmtpContext {
                role: Role::Submission,
                auth: Some(auth.clone()),
                filters: None,
                dkim: if config.outbound.dkim {
                    Some(Arc::new(crate::outbound::dkim::Dkim::load_or_create(
                        &config,
                    )?))
                } else {
                    None
                },
                ..smtp.clone()
            },
            smtp,
            pop3: Pop3Context {
                config: config.clone(),
                store: store.clone(),
                auth: auth.clone(),
                tls: Some(tls.clone()),
                locks: MaildropLocks::default(),
            },
            imap: ImapContext {
                config: config.clone(),
                store: store.clone(),
                auth: auth.clone(),
                tls: Some(tls.clone()),
            },
            tls,
        };
        Ok(Prepared { services })
    }
}

/// Runs the captive DNS responder on `addresses`, and on port 53 of the hotspot's address
/// while a hotspot is up, only while the box is in setup mode: bound when setup mode starts
/// (or the hotspot comes up), closed when it ends, so a box in normal use answers no DNS.
async fn captive_dns_in_setup_mode(
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
        if let Some(Some(hotspot)) = now {
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

/// Binds the web listeners (HTTP and HTTPS) for the daemon's whole life; returns their
/// entries for the status value.
async fn start_web(
    config: &Config,
    web: Arc<Web>,
    certificate: &watch::Sender<TlsAcceptor>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Vec<ListenerStatus> {
    let router = crate::web::router(web);
    let max_header = usize::try_from(config.limits.web_max_header.0).unwrap_or(usize::MAX);
    // HTTP and HTTPS share the slots, as a mail service's plain and TLS ports do.
    let slots = Slots::new(
        config.limits.max_connections,
        config.limits.max_connections_per_address,
    );
    let mut entries = Vec::new();
    for service in [Service::Web, Service::WebTls] {
        for address in service.addresses(config) {
            let (entry, listener) = bind(service, *address).await;
            if let Some(listener) = listener {
                let tls = (service == Service::WebTls).then(|| certificate.subscribe());
                tracker.spawn(crate::web::serve(
                    listener,
                    tls,
                    router.clone(),
                    slots.clone(),
                    max_header,
                    shutdown.clone(),
                    tracker.clone(),
                ));
            }
            entries.push(entry);
        }
    }
    entries
}

/// Binds one listener, printing `listening SERVICE ADDRESS` (or `failed ...`).
async fn bind(service: Service, address: SocketAddr) -> (ListenerStatus, Option<TcpListener>) {
    let mut entry = ListenerStatus {
        service: service.name().into(),
        address: address.to_string(),
        up: false,
        error: None,
    };
    match TcpListener::bind(address).await {
        Ok(listener) => {
            let local = listener.local_addr().unwrap_or(address);
            entry.address = local.to_string();
            entry.up = true;
            println!("listening {} {local}", service.name());
            (entry, Some(listener))
        }
        Err(error) => {
            tracing::error!(service = service.name(), %address, %error, "cannot listen");
            println!("failed {} {address}: {error}", service.name());
            entry.error = Some(error.to_string());
            (entry, None)
        }
    }
}

/// Binds every mail listener and starts the outbound worker, all under `generation`.
async fn start(
    config: &Arc<Config>,
    prepared: Prepared,
    store: &Store,
    status: &watch::Sender<Status>,
    web_listeners: &[ListenerStatus],
    generation: &CancellationToken,
    sessions: &TaskTracker,
) {
    let services = prepared.services;
    let mut listeners = Vec::new();
    for service in Service::ALL.into_iter().filter(|s| !s.is_web()) {
        let connections = Slots::new(
            config.limits.max_connections,
            config.limits.max_connections_per_address,
        );
        for address in service.addresses(config) {
            let (entry, listener) = bind(service, *address).await;
            if let Some(listener) = listener {
                sessions.spawn(accept_loop(
                    service,
                    listener,
                    services.clone(),
                    connections.clone(),
                    generation.clone(),
                    sessions.clone(),
                ));
            }
            listeners.push(entry);
        }
    }
    listeners.extend_from_slice(web_listeners);
    status.send_modify(|s| s.listeners = listeners);
    // Local mail does not depend on outbound delivery: without it, mail for other domains
    // waits in the queue until the cause (usually the resolver) is fixed and the daemon restarts.
    match crate::outbound::Outbound::new(config.clone(), store.clone()) {
        Ok(outbound) => {
            sessions.spawn(outbound.run(generation.clone(), sessions.clone()));
        }
        Err(error) => {
            tracing::error!(%error, "outbound delivery is off; outgoing mail stays queued");
        }
    }
}

fn restrict_to_owner(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(error) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(%error, "cannot restrict the control socket to its owner");
    }
}

async fn refresh_storage(
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
async fn renew_certificate(
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
async fn refresh_wifi(
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

async fn accept_loop(
    service: Service,
    listener: TcpListener,
    services: Services,
    connections: Slots,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff = Duration::from_millis(10);
                    accepted
                }
                Err(error) => {
                    // Out of file descriptors and the like: wait and try again.
                    tracing::warn!(service = service.name(), %error, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            () = shutdown.cancelled() => return,
        };
        let Some(slot) = connections.take(peer.ip()) else {
            refuse_busy(service, &socket);
            continue;
        };
        let services = services.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            handle(service, socket, peer, services, shutdown).await;
            drop(slot);
        });
    }
}

/// Answers a connection that got no slot with the protocol's busy reply and closes it. The
/// reply is one short line into an empty socket buffer, so it is written without waiting (if
/// it does not fit, the peer just sees the close). On the TLS ports the connection is closed
/// without a reply: a handshake would cost the CPU the limit is there to save.
fn refuse_busy(service: Service, socket: &TcpStream) {
    let reply: &[u8] = match service {
        Service::Smtp | Service::Submission => {
            b"421 4.3.2 Too many connections, try again later\r\n"
        }
        Service::Pop3 => b"-ERR [SYS/TEMP] Too many connections\r\n",
        Service::Imap => b"* BYE [UNAVAILABLE] Too many connections\r\n",
        _ => b"",
    };
    if !reply.is_empty() {
        let _ = socket.try_write(reply);
    }
    tracing::debug!(service = service.name(), "connection refused: no slot free");
}

async fn handle(
    service: Service,
    socket: TcpStream,
    peer: SocketAddr,
    services: Services,
    shutdown: CancellationToken,
) {
    let _ = socket.set_nodelay(true);
    let socket = QuickAck(socket);
    // Each protocol's session future goes in a box of its own: unboxed, every connection's task
    // would be as large as the largest of the three (an idle IMAP session paid for SMTP's).
    match service {
        Service::Smtp => {
            Box::pin(crate::smtp::session::serve(
                services.smtp,
                Stream::Plain(socket),
                peer,
                shutdown,
            ))
            .await;
        }
        Service::Submission => {
            Box::pin(crate::smtp::session::serve(
                services.submission,
                Stream::Plain(socket),
                peer,
                shutdown,
            ))
            .await;
        }
        Service::Submissions => {
            if let Some(stream) = accept_tls(&services.tls, socket).await {
                Box::pin(crate::smtp::session::serve(
                    services.submission,
                    stream,
                    peer,
                    shutdown,
                ))
                .await;
            }
        }
        Service::Pop3 => {
            Box::pin(crate::pop3::session::serve(
                services.pop3,
                Stream::Plain(socket),
                peer,
                shutdown,
            ))
            .await;
        }
        Service::Pop3s => {
            if let Some(stream) = accept_tls(&services.tls, socket).await {
                Box::pin(crate::pop3::session::serve(
                    services.pop3,
                    stream,
                    peer,
                    shutdown,
                ))
                .await;
            }
        }
        Service::Imap => {
            Box::pin(crate::imap::session::serve(
                services.imap,
                Stream::Plain(socket),
                peer,
                shutdown,
            ))
            .await;
        }
        Service::Imaps => {
            if let Some(stream) = accept_tls(&services.tls, socket).await {
                Box::pin(crate::imap::session::serve(
                    services.imap,
                    stream,
                    peer,
                    shutdown,
                ))
                .await;
            }
        }
        _ => {}
    }
}
