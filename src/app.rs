//! Wires the services together: opens the store, makes TLS ready, binds every listener
//! (`listeners`), starts the background work (`upkeep`), restarts the mail services on a
//! settings change, and shuts down cleanly (drain connections, then release the store).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{self, Admin};
use crate::auth::{AuthError, Authenticator};
use crate::config::Config;
use crate::imap::session::ImapContext;
use crate::pop3::maildrop::MaildropLocks;
use crate::pop3::session::Pop3Context;
use crate::recent_log::RecentLog;
use crate::settings::{Reload, Reloader};
use crate::smtp::session::{Role, SmtpContext};
use crate::status::{ListenerStatus, Status, Storage};
use crate::store::{Store, StoreError, now_unix};
use crate::tls::TlsError;
use crate::web::Web;

mod listeners;
mod upkeep;

pub use listeners::Service;
use listeners::{Services, start, start_web};
use upkeep::{
    apply_country, captive_dns_in_setup_mode, refresh_storage, refresh_wifi, renew_certificate,
    start_mdns,
};

/// How long sessions get to finish after shutdown is requested.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

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
    // The config in effect, replaced when the settings change.
    let (configs, _) = watch::channel(config.clone());
    // The panel and button come first: they show the start, and never stop it.
    let panel = crate::panel::spawn(
        configs.subscribe(),
        status.clone(),
        control.clone(),
        shutdown.clone(),
        &tracker,
    );
    // Made before the health checks start: they read the DKIM key it makes at first start.
    let mut prepared = Prepared::new(&config, &store, &auth, &status)?;
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
    tracker.spawn({
        let store = store.clone();
        let shutdown = shutdown.clone();
        async move { store.record_allocator_state_when_quiet(shutdown).await }
    });
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
        // Waiting for a radio (up to `WIFI_APPEAR_TIMEOUT` on a box without one) must not
        // hold a shutdown back: every stop in those two minutes sat out the drain timeout.
        let network = network.clone();
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                () = network.start() => {}
                () = shutdown.cancelled() => {}
            }
        }
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
        settings_change: Default::default(),
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

fn restrict_to_owner(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(error) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(%error, "cannot restrict the control socket to its owner");
    }
}
