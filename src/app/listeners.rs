//! The listeners: every service's name and addresses, binding them (the web's for the
//! daemon's life, the mail services' for one config), accepting under the connection slots,
//! and handing each connection to its protocol's session.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Prepared;
use crate::config::Config;
use crate::imap::session::ImapContext;
use crate::net::{QuickAck, Stream, accept_tls};
use crate::pop3::session::Pop3Context;
use crate::slots::Slots;
use crate::smtp::session::SmtpContext;
use crate::status::{ListenerStatus, Status};
use crate::store::Store;
use crate::web::Web;

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

    pub(super) fn addresses(self, config: &Config) -> &[SocketAddr] {
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

    pub(super) const ALL: [Service; 9] = [
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
pub(super) struct Services {
    pub(super) smtp: SmtpContext,
    pub(super) submission: SmtpContext,
    pub(super) pop3: Pop3Context,
    pub(super) imap: ImapContext,
    pub(super) tls: TlsAcceptor,
}

/// Binds the web listeners (HTTP and HTTPS) for the daemon's whole life; returns their
/// entries for the status value.
pub(super) async fn start_web(
    config: &Config,
    web: Arc<Web>,
    certificate: &watch::Sender<TlsAcceptor>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Vec<ListenerStatus> {
    let router = crate::web::router(web);
    let limits = crate::web::RequestLimits {
        max_header: usize::try_from(config.limits.web_max_header.0).unwrap_or(usize::MAX),
        body_timeout: config.limits.web_body_timeout.duration(),
    };
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
                    limits,
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
pub(super) async fn start(
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
