//! The web service: the setup wizard (only in setup mode), the operating systems' captive
//! portal probes, and later the admin page and client autoconfig.
//!
//! HTTP on `[listen] web` and HTTPS with the mail services' certificate on `[listen] web_tls`.
//! Routes are grouped by who may use them: `probes` (anyone), `wizard` (setup mode only, behind
//! `guard`). The web service runs for the daemon's whole life, beside the control socket: a
//! settings change restarts the mail services, not the page that made it.
//!
//! Every response carries the security headers (`security_headers`); request heads and bodies
//! are bounded by `Limits::web_max_header` and `web_max_body`, and must arrive within
//! `WEB_HEADER_TIMEOUT` and `web_body_timeout`; every connection holds a slot
//! (per service and per client address, as the mail services do) and lives at most
//! `WEB_CONNECTION_LIFETIME`.

mod admin;
mod admin_accounts;
mod admin_queue;
mod admin_settings;
mod admin_upkeep;
mod autoconfig;
mod deadline;
mod draft;
mod finish;
mod guard;
mod login;
mod pages;
mod person;
mod probes;
pub use probes::CAPTIVE_API_PATH;
mod wizard;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::control::Control;
use crate::limits::{WEB_CONNECTION_LIFETIME, WEB_HEADER_TIMEOUT};
use crate::network::Network;
use crate::recent_log::RecentLog;
use crate::settings::{ReloadError, Reloader, Settings};
use crate::slots::Slots;
use crate::status::{Mode, Status};
use crate::store::Store;

/// What the pages share; one per daemon.
pub struct Web {
    /// The config in effect; replaced when the settings change.
    pub config: watch::Receiver<Arc<Config>>,
    pub status: watch::Sender<Status>,
    pub control: Control,
    pub store: Store,
    pub auth: Authenticator,
    pub network: Arc<dyn Network>,
    pub reloader: Reloader,
    /// The last log lines, for the admin page.
    pub recent_log: RecentLog,
    /// The health checker, for the admin page's "Check now".
    pub health: crate::health::Health,
    /// The USB backup task, for the admin page's "Back up now".
    pub backup: crate::backup::Backup,
    /// The browsers' sessions: the setup wizard's and logged-in people's.
    pub sessions: Sessions,
    /// Held through a whole change of the settings file (read, write, apply, put back):
    /// two at once lost one of them, or failed on the other's temporary file.
    pub settings_change: tokio::sync::Mutex<()>,
}

/// The web service's sessions, in memory; each lock is never held across an await.
#[derive(Default)]
pub struct Sessions {
    /// The setup wizard's sessions, code guard and draft.
    setup: Mutex<guard::SetupState>,
    /// Logged-in people's sessions.
    people: Mutex<login::People>,
}

impl Web {
    fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    fn mail_ports(&self) -> MailPorts {
        MailPorts::of(&self.config(), &self.status.borrow())
    }

    fn in_setup_mode(&self) -> bool {
        self.status.borrow().mode == Mode::Setup
    }

    /// Changes `settings.toml` with `change` and waits until the running services listen on
    /// the result. When they cannot use it, the file is put back as it was (the next start
    /// would trip on it too) and the services go on as they were. The error is for the page.
    async fn change_settings(&self, change: impl FnOnce(&mut Settings)) -> Result<(), String> {
        let _changing = self.settings_change.lock().await;
        let data_dir = self.config().data_dir.clone();
        let before = match Settings::load(&data_dir) {
            Ok(loaded) => loaded.map(|(settings, _)| settings),
            Err(error) => return Err(format!("The settings file cannot be read: {error}")),
        };
        let mut settings = before.clone().unwrap_or_default();
        change(&mut settings);
        settings
            .save(&data_dir)
            .map_err(|e| format!("The settings could not be written: {e}"))?;
        let error = match self.reloader.reload().await {
            Ok(()) => return Ok(()),
            // Going down: the file is good, and the next start applies it.
            Err(error @ ReloadError::Stopped) => error,
            Err(error) => {
                let restored = match &before {
                    Some(before) => before.save(&data_dir),
                    None => std::fs::remove_file(data_dir.join(crate::settings::FILE_NAME)),
                };
                if let Err(restore) = restored {
                    tracing::error!(%restore, "the settings file could not be put back");
                }
                error
            }
        };
        Err(format!("The new settings could not be applied: {error}"))
    }
}

/// The connection a request came on, put into every request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub tls: bool,
}

/// The mail ports as clients reach them: the port of each service's first listener that is
/// up (the status value has the bound address, so a configured port 0 becomes the real one),
/// else the configured one.
pub(crate) struct MailPorts {
    pub imaps: Option<u16>,
    pub imap: Option<u16>,
    pub submissions: Option<u16>,
    pub submission: Option<u16>,
}

impl MailPorts {
    pub(crate) fn of(config: &Config, status: &Status) -> MailPorts {
        let port = |service: &str, configured: &[SocketAddr]| {
            status
                .listeners
                .iter()
                .filter(|l| l.service == service && l.up)
                .find_map(|l| l.address.parse::<SocketAddr>().ok())
                .or_else(|| configured.first().copied())
                .map(|address| address.port())
        };
        let listen = &config.listen;
        MailPorts {
            imaps: port("imaps", &listen.imaps),
            imap: port("imap", &listen.imap),
            submissions: port("submissions", &listen.submissions),
            submission: port("submission", &listen.submission),
        }
    }
}

/// The setup page's address as the panel shows it: `http://HOST[:PORT]/setup`, where HOST is
/// the first web listener's address, or the machine's first address when that listener is
/// on every interface (0.0.0.0 or ::).
pub fn setup_url(web: &[SocketAddr], machine: &[String]) -> String {
    let Some(listen) = web.first() else {
        return "(the web service is off)".into();
    };
    let host = if listen.ip().is_unspecified() {
        machine
            .first()
            .cloned()
            .unwrap_or_else(|| "this box's address".into())
    } else {
        listen.ip().to_string()
    };
    let host = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => host,
    };
    match listen.port() {
        80 => format!("http://{host}/setup"),
        port => format!("http://{host}:{port}/setup"),
    }
}

/// Every route, with the layers that apply to all of them.
pub fn router(web: Arc<Web>) -> Router {
    let max_body = usize::try_from(web.config().limits.web_max_body.0).unwrap_or(usize::MAX);
    Router::new()
        .route("/style.css", axum::routing::get(style))
        .route("/", axum::routing::get(home))
        .merge(probes::routes())
        .merge(login::routes())
        .merge(person::routes())
        .merge(admin::routes())
        .merge(admin_settings::routes())
        .merge(autoconfig::routes())
        .nest("/setup", wizard::routes(web.clone()))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            web.clone(),
            probes::captive_redirect,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(security_headers))
        .with_state(web)
}

const STYLE: &str = include_str!("style.css");

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

/// `/`: the wizard while in setup mode; otherwise a page that says what this is.
async fn home(State(web): State<Arc<Web>>) -> Response {
    if web.in_setup_mode() {
        return axum::response::Redirect::to("/setup").into_response();
    }
    let config = web.config();
    pages::message(
        &config.hostname,
        "Letterbox",
        vec![
            format!("This is the household mail box {}.", config.hostname),
            "Log in to see your mail settings, or, if you look after the box, its admin page. \
             To set it up again, hold its button for a few seconds, or run \"letterbox setup\" \
             on it."
                .into(),
        ],
        Some(("/login".into(), "Log in".into())),
    )
}

async fn not_found(State(web): State<Arc<Web>>) -> Response {
    pages::not_found(&web.config().hostname)
}

/// The headers every response carries: no inline script (the only script is the admin page's
/// refresh, served as a file), no framing, no referrer, no sniffing; pages are never cached
/// (they show settings).
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; \
             img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// What bounds one request on the wire.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// The largest request head buffered.
    pub max_header: usize,
    /// The time for a body to arrive once its head has.
    pub body_timeout: Duration,
}

/// Accepts connections on `listener` until `shutdown`; `tls` (the current acceptor, replaced
/// when the certificate changes) makes it the HTTPS listener.
pub async fn serve(
    listener: TcpListener,
    tls: Option<watch::Receiver<TlsAcceptor>>,
    router: Router,
    slots: Slots,
    limits: RequestLimits,
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
                    tracing::warn!(%error, "web: accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            () = shutdown.cancelled() => return,
        };
        // A client over its share gets the connection closed at once: HTTP has no greeting to
        // say "busy" in, and a browser simply tries again.
        let Some(slot) = slots.take(peer.ip()) else {
            tracing::debug!(%peer, "web: no connection slot free");
            continue;
        };
        let Ok(local) = socket.local_addr() else {
            continue;
        };
        let _ = socket.set_nodelay(true);
        let acceptor = tls.as_ref().map(|tls| tls.borrow().clone());
        let router = router.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let _slot = slot;
            let info = Connection {
                peer,
                local,
                tls: acceptor.is_some(),
            };
            match acceptor {
                None => http(socket, info, router, limits, shutdown).await,
                Some(acceptor) => {
                    if let Some(stream) = crate::net::accept_tls(&acceptor, socket).await {
                        http(stream, info, router, limits, shutdown).await;
                    }
                }
            }
        });
    }
}

/// HTTP/1.1 on one connection, with keep-alive, until the client closes it, its lifetime
/// ends or the daemon stops (then the request in progress is answered first).
async fn http<S>(
    stream: S,
    info: Connection,
    router: Router,
    limits: RequestLimits,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router.map_request(
        move |request: axum::http::Request<hyper::body::Incoming>| {
            let (mut parts, body) = request.into_parts();
            parts.extensions.insert(info);
            let body = deadline::DeadlineBody::new(body, limits.body_timeout);
            axum::http::Request::from_parts(parts, axum::body::Body::new(body))
        },
    ));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(WEB_HEADER_TIMEOUT)
        .max_buf_size(limits.max_header);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let lifetime = tokio::time::sleep(WEB_CONNECTION_LIFETIME);
    tokio::pin!(lifetime);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        () = &mut lifetime => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(peer = %info.peer, %error, "web: connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setup_url_names_an_address_a_phone_can_open() {
        let machine = vec!["192.168.1.20".to_string(), "fd00::20".to_string()];
        let any: SocketAddr = "0.0.0.0:80".parse().unwrap();
        assert_eq!(setup_url(&[any], &machine), "http://192.168.1.20/setup");
        let dev: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(setup_url(&[dev], &machine), "http://127.0.0.1:8080/setup");
        let v6: SocketAddr = "[::1]:8080".parse().unwrap();
        assert_eq!(setup_url(&[v6], &machine), "http://[::1]:8080/setup");
        assert_eq!(setup_url(&[], &machine), "(the web service is off)");
        assert_eq!(setup_url(&[any], &[]), "http://this box's address/setup");
    }
}
