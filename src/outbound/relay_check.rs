//! The setup page's "test connection" for a smarthost: really connect, do TLS or STARTTLS as
//! the relay says (certificate checked against the Mozilla roots and the extra CA, as delivery
//! does), EHLO, AUTH when credentials are given, QUIT — and say what each step did, with the
//! server's own answer, or which step failed and why. Nothing is sent, and the password never
//! appears in the report (only the server's replies and our own words do).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use rustls::pki_types::CertificateDer;

use super::client::ClientError;
use super::connect::{self, Connectors, Hop, Stage, Step, Tls};
use super::dns;
use super::peer_tls;
use crate::config::Relay;

/// The whole check gives up after this long, so the page answers while the person waits; each
/// step also has the client's own timeout (RFC 5321 §4.5.3.2), which is longer, and QUIT its
/// own 10 seconds.
pub const RELAY_CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// What the check found: `ok` when every step worked; `steps` in order, one sentence each,
/// the last one saying what failed when `ok` is false.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RelayReport {
    pub ok: bool,
    pub steps: Vec<String>,
}

/// Tries `relay` as delivery would, announcing itself as `hostname`. `extra_ca` are the extra
/// CA certificates trusted for the relay (`super::relay_extra_ca`).
pub async fn test_relay(
    resolver: &TokioResolver,
    relay: &Relay,
    extra_ca: &[CertificateDer<'static>],
    hostname: &str,
) -> RelayReport {
    let mut steps = Vec::new();
    let ok = check(resolver, relay, extra_ca, hostname, &mut steps).await;
    RelayReport { ok, steps }
}

fn gave_up() -> String {
    format!(
        "No answer within {} seconds; gave up.",
        RELAY_CHECK_TIMEOUT.as_secs()
    )
}

async fn check(
    resolver: &TokioResolver,
    relay: &Relay,
    extra_ca: &[CertificateDer<'static>],
    hostname: &str,
    steps: &mut Vec<String>,
) -> bool {
    let deadline = tokio::time::Instant::now() + RELAY_CHECK_TIMEOUT;
    let verified = match peer_tls::verified_tls(extra_ca) {
        Ok(verified) => verified,
        Err(error) => {
            steps.push(format!(
                "The extra CA certificates cannot be used: {error}."
            ));
            return false;
        }
    };
    let opportunistic = peer_tls::opportunistic_tls();
    let connectors = Connectors {
        verified: &verified,
        opportunistic: &opportunistic,
    };
    let host = relay.host.as_str();
    let addresses = match tokio::time::timeout_at(deadline, dns::addresses(resolver, host)).await {
        Err(_) => {
            steps.push(gave_up());
            return false;
        }
        Ok(Ok(addresses)) if !addresses.is_empty() => addresses,
        Ok(Ok(_)) => {
            steps.push(format!("{host} has no address in the DNS."));
            return false;
        }
        Ok(Err(error)) => {
            steps.push(format!("Looking up {host} failed: {error}."));
            return false;
        }
    };
    let credentials = match (&relay.username, &relay.password) {
        (Some(user), Some(password)) => Some((user.as_str(), password)),
        _ => None,
    };
    let tls = Tls::from(relay.tls);
    for ip in addresses {
        let peer = SocketAddr::new(ip, relay.port);
        let hop = Hop {
            peer,
            name: host,
            tls,
            credentials,
        };
        let place = format!("{host} [{ip}]:{}", relay.port);
        let mut done = Vec::new();
        let opened = tokio::time::timeout_at(
            deadline,
            connect::open(&hop, &connectors, hostname, &mut done),
        )
        .await;
        describe(&done, &place, host, steps);
        let opened = match opened {
            Ok(opened) => opened,
            Err(_) => {
                steps.push(gave_up());
                return false;
            }
        };
        match opened {
            Ok(client) => {
                if tls == Tls::Off {
                    steps.push(
                        "No TLS: the password and the mail would cross the network unencrypted."
                            .into(),
                    );
                }
                if credentials.is_none() {
                    steps.push("AUTH: not tried (no user name and password given).".into());
                }
                client.quit().await;
                steps.push("QUIT: done; the smarthost can be used.".into());
                return true;
            }
            Err(failed) => {
                let what = match failed.stage {
                    Stage::Connect if tls == Tls::Implicit => {
                        format!("Connecting with TLS to {place}")
                    }
                    Stage::Connect => format!("Connecting to {place}"),
                    stage => stage.to_string(),
                };
                steps.push(format!("{what} failed: {}.", reason(&failed.error)));
                // Only a host that cannot be reached is worth trying at its next address.
                if failed.stage != Stage::Connect || !done.is_empty() {
                    return false;
                }
            }
        }
    }
    false
}

fn describe(done: &[Step], place: &str, host: &str, steps: &mut Vec<String>) {
    for step in done {
        steps.push(match step {
            Step::Connected(greeting) => format!("Connected to {place}: 220 {greeting}"),
            Step::Tls {
                version,
                implicit,
                verified,
            } => format!(
                "{}: {version}, certificate {}",
                if *implicit { "TLS" } else { "STARTTLS" },
                if *verified {
                    format!("valid for {host}")
                } else {
                    "not checked".to_string()
                }
            ),
            Step::PlaintextFallback(error) => {
                format!("STARTTLS failed ({error}); went on without TLS")
            }
            Step::Authenticated(reply) => format!("AUTH: {reply}"),
        });
    }
}

/// The error in words; a refusal is the server's own reply, code and text.
fn reason(error: &ClientError) -> String {
    match error {
        ClientError::Reply(reply) => format!("the server answered {reply}"),
        ClientError::Connect(_, error) => error.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, RelayTls};

    /// A server that takes the connection and never says a word: the check gives up at its
    /// deadline (tokio's clock is paused, so the minute passes at once) and says so.
    #[tokio::test(start_paused = true)]
    async fn a_silent_server_is_given_up_on() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let relay = Relay {
            host: "127.0.0.1".into(),
            port: silent.local_addr().expect("addr").port(),
            tls: RelayTls::Starttls,
            username: None,
            password: None,
            ca_file: None,
        };
        let resolver = dns::resolver(&Config::development()).expect("resolver");
        let report = test_relay(&resolver, &relay, &[], "mail.home.test").await;
        assert_eq!(
            report,
            RelayReport {
                ok: false,
                steps: vec!["No answer within 60 seconds; gave up.".into()],
            }
        );
    }
}
