//! Opening a connection to a next hop, up to the point where mail can be sent: connect (or
//! TLS from the first byte), EHLO, STARTTLS and EHLO again, AUTH. Delivery (MX and relay) and
//! the setup page's relay check share it; it returns what each step did, so the check can show
//! the server's answers, and on failure the step that failed.

use std::net::SocketAddr;

use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use super::client::{Client, ClientError, Reply};
use crate::config::RelayTls;
use crate::secret::Secret;

/// How TLS is used on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// STARTTLS when offered, certificate not checked (MX delivery).
    Opportunistic,
    /// STARTTLS required, certificate checked (relay).
    Required,
    /// TLS from the first byte, certificate checked (relay on 465).
    Implicit,
    Off,
}

impl From<RelayTls> for Tls {
    fn from(tls: RelayTls) -> Self {
        match tls {
            RelayTls::Starttls => Tls::Required,
            RelayTls::Tls => Tls::Implicit,
            RelayTls::None => Tls::Off,
        }
    }
}

/// One host to open a connection to.
pub struct Hop<'a> {
    pub peer: SocketAddr,
    /// The name its certificate must carry (for a checked certificate).
    pub name: &'a str,
    pub tls: Tls,
    pub credentials: Option<(&'a str, &'a Secret<String>)>,
}

/// The TLS client settings of the worker: checked for the relay, unchecked for MX hosts.
pub struct Connectors<'a> {
    pub verified: &'a TlsConnector,
    pub opportunistic: &'a TlsConnector,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The greeting's text.
    Connected(String),
    /// TLS is up (`implicit`: from the first byte, else after STARTTLS); `verified` when the
    /// certificate was checked for the hop's name.
    Tls {
        version: &'static str,
        implicit: bool,
        verified: bool,
    },
    /// Opportunistic STARTTLS failed and the connection went on without TLS (RFC 7435).
    PlaintextFallback(String),
    Authenticated(Reply),
}

/// The step a failure happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Ehlo,
    Starttls,
    Auth,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Connect => "Connecting",
            Stage::Ehlo => "EHLO",
            Stage::Starttls => "STARTTLS",
            Stage::Auth => "AUTH",
        })
    }
}

#[derive(Debug)]
pub struct OpenError {
    pub stage: Stage,
    pub error: ClientError,
}

/// Opens a connection to `hop`, saying EHLO as `hostname`; the client is ready for MAIL. Each
/// step that worked is added to `steps` as it happens, so a caller that gives up early (a
/// timeout around this future) still knows how far it got.
pub async fn open(
    hop: &Hop<'_>,
    connectors: &Connectors<'_>,
    hostname: &str,
    steps: &mut Vec<Step>,
) -> Result<Client, OpenError> {
    open_steps(hop, connectors, hostname, steps)
        .await
        .map_err(|(stage, error)| OpenError { stage, error })
}

async fn open_steps(
    hop: &Hop<'_>,
    connectors: &Connectors<'_>,
    hostname: &str,
    steps: &mut Vec<Step>,
) -> Result<Client, (Stage, ClientError)> {
    let at = |stage: Stage| move |error: ClientError| (stage, error);
    let peer = hop.peer;
    let server_name = ServerName::try_from(hop.name.to_string())
        .unwrap_or_else(|_| ServerName::IpAddress(peer.ip().into()));
    let mut client = match hop.tls {
        Tls::Implicit => Client::connect_tls(peer, connectors.verified, server_name.clone())
            .await
            .map_err(at(Stage::Connect))?,
        _ => Client::connect(peer).await.map_err(at(Stage::Connect))?,
    };
    steps.push(Step::Connected(client.last_reply_text()));
    if hop.tls == Tls::Implicit {
        steps.push(Step::Tls {
            version: client.tls_version(),
            implicit: true,
            verified: true,
        });
    }
    client.ehlo(hostname).await.map_err(at(Stage::Ehlo))?;
    match hop.tls {
        Tls::Required => {
            if !client.extensions.starttls {
                return Err((
                    Stage::Starttls,
                    ClientError::Protocol("the server does not offer STARTTLS".into()),
                ));
            }
            client
                .starttls(connectors.verified, server_name)
                .await
                .map_err(at(Stage::Starttls))?;
            steps.push(Step::Tls {
                version: client.tls_version(),
                implicit: false,
                verified: true,
            });
            client.ehlo(hostname).await.map_err(at(Stage::Ehlo))?;
        }
        Tls::Opportunistic if client.extensions.starttls => {
            match client.starttls(connectors.opportunistic, server_name).await {
                Ok(()) => steps.push(Step::Tls {
                    version: client.tls_version(),
                    implicit: false,
                    verified: false,
                }),
                Err(error) => {
                    // RFC 7435: a failed opportunistic handshake falls back to plaintext.
                    tracing::info!(%peer, %error, "STARTTLS failed; retrying without TLS");
                    steps.push(Step::PlaintextFallback(error.to_string()));
                    client = Client::connect(peer).await.map_err(at(Stage::Connect))?;
                }
            }
            client.ehlo(hostname).await.map_err(at(Stage::Ehlo))?;
        }
        _ => {}
    }
    if let Some((user, password)) = hop.credentials {
        let reply = client
            .authenticate(user, password)
            .await
            .map_err(at(Stage::Auth))?;
        steps.push(Step::Authenticated(reply));
    }
    Ok(client)
}
