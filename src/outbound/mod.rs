//! Outbound delivery: the worker that takes due recipients from the queue (in the store),
//! finds their next hop (`dns`: MX, implicit MX, null MX; or the smarthost of
//! `[outbound.relay]`), sends with the SMTP `client` — one connection per destination host
//! carrying every recipient of the message there — and records the outcome: delivered,
//! retry later (exponential backoff with jitter), or failed with a DSN to the sender (`dsn`).
//!
//! - `dkim`: the signing key made at first start, signing at submission, and the DNS records
//!   to publish.
//! - `connect`: connect, EHLO, STARTTLS, AUTH — shared with `relay_check`, the setup page's
//!   "test connection" for a smarthost.
//!
//! What this does not do: MTA-STS, DANE, DSNs requested with the DSN extension (RET/NOTIFY),
//! or checking SPF/DKIM/DMARC of received mail.

pub mod client;
pub mod connect;
pub mod dkim;
pub mod dns;
pub mod dsn;
pub mod peer_tls;
pub mod records;
pub mod relay_check;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_resolver::TokioResolver;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::{Notify, Semaphore};
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::secret::Secret;
use crate::store::{QueuedMessage, RecipientUpdate, Store, StoreError, now_unix, queue_flags};
use client::{ClientError, RecipientResult};
use connect::{Connectors, Hop, Tls};
use dsn::{Action, RecipientStatus};

/// Messages being delivered at once.
const PARALLEL_DELIVERIES: usize = 4;
/// The queue is looked at at least this often, even when nothing wakes the worker.
const IDLE_POLL_SECONDS: i64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error(transparent)]
    Dns(#[from] dns::DnsError),
    #[error("relay CA file {path}: {reason}")]
    RelayCa { path: String, reason: String },
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// The extra CA certificates trusted for the relay in effect: `[outbound] relay_ca_file`
/// (which also covers a relay set in the settings file) and `[outbound.relay] ca_file`.
pub fn relay_extra_ca(config: &Config) -> Result<Vec<CertificateDer<'static>>, OutboundError> {
    let files = [
        config.outbound.relay_ca_file.as_ref(),
        config
            .outbound
            .relay
            .as_ref()
            .and_then(|r| r.ca_file.as_ref()),
    ];
    let mut extra = Vec::new();
    for path in files.into_iter().flatten() {
        let error = |reason: String| OutboundError::RelayCa {
            path: path.display().to_string(),
            reason,
        };
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| error(e.to_string()))? {
            extra.push(cert.map_err(|e| error(e.to_string()))?);
        }
    }
    Ok(extra)
}

/// What the worker and its delivery tasks share.
#[derive(Clone)]
pub struct Outbound {
    config: Arc<Config>,
    store: Store,
    resolver: TokioResolver,
    opportunistic: TlsConnector,
    relay_tls: TlsConnector,
}

impl Outbound {
    pub fn new(config: Arc<Config>, store: Store) -> Result<Self, OutboundError> {
        let resolver = dns::resolver(&config)?;
        let extra = relay_extra_ca(&config)?;
        Ok(Outbound {
            relay_tls: peer_tls::verified_tls(&extra)?,
            opportunistic: peer_tls::opportunistic_tls(),
            config,
            store,
            resolver,
        })
    }

    pub fn resolver(&self) -> &TokioResolver {
        &self.resolver
    }

    /// Runs the queue until shutdown.
    pub async fn run(self, shutdown: CancellationToken, tracker: TaskTracker) {
        let in_flight: Arc<Mutex<HashSet<u64>>> = Arc::default();
        let finished = Arc::new(Notify::new());
        let slots = Arc::new(Semaphore::new(PARALLEL_DELIVERIES));
        loop {
            let now = now_unix();
            let mut wake_at = now + IDLE_POLL_SECONDS;
            match self.store.queue_list().await {
                Ok(queue) => {
                    for message in queue {
                        if in_flight
                            .lock()
                            .map(|s| s.contains(&message.id))
                            .unwrap_or(true)
                        {
                            continue;
                        }
                        let due: Vec<String> = message
                            .recipients
                            .iter()
                            .filter(|r| r.next_attempt <= now)
                            .map(|r| r.address.clone())
                            .collect();
                        if due.is_empty() {
                            if let Some(next) =
                                message.recipients.iter().map(|r| r.next_attempt).min()
                            {
                                wake_at = wake_at.min(next);
                            }
                            continue;
                        }
                        let Ok(permit) = slots.clone().try_acquire_owned() else {
                            break;
                        };
                        if let Ok(mut set) = in_flight.lock() {
                            set.insert(message.id);
                        }
                        let worker = self.clone();
                        let in_flight = in_flight.clone();
                        let finished = finished.clone();
                        let shutdown = shutdown.clone();
                        tracker.spawn(async move {
                            let id = message.id;
                            if !shutdown.is_cancelled() {
                                worker.deliver(message, due).await;
                            }
                            if let Ok(mut set) = in_flight.lock() {
                                set.remove(&id);
                            }
                            drop(permit);
                            finished.notify_one();
                        });
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "cannot read the outbound queue");
                    wake_at = now + 30;
                }
            }
            let sleep =
                std::time::Duration::from_secs(u64::try_from(wake_at - now).unwrap_or(0).max(1));
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = self.store.queue_changed() => {}
                () = finished.notified() => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// One attempt for the due recipients of one message, and its bookkeeping.
    async fn deliver(&self, listed: QueuedMessage, due: Vec<String>) {
        // The list `listed` came from may predate the last attempt's results (its attempts,
        // its flags): read the message as it is now.
        let message = match self.store.queue_message(listed.id).await {
            Ok(Some(message)) => message,
            Ok(None) => return,
            Err(error) => {
                tracing::error!(%error, id = listed.id, "cannot read a queued message");
                return;
            }
        };
        let now = now_unix();
        let due = due.into_iter().filter(|address| {
            message
                .recipients
                .iter()
                .any(|r| r.address == *address && r.next_attempt <= now)
        });
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for recipient in due {
            let key = if self.config.outbound.relay.is_some() {
                String::new()
            } else {
                domain_of(&recipient).to_ascii_lowercase()
            };
            groups.entry(key).or_default().push(recipient);
        }
        let mut outcomes = Vec::new();
        for (domain, recipients) in groups {
            let results = if self.config.outbound.relay.is_some() {
                self.via_relay(&message, &recipients).await
            } else {
                self.via_mx(&message, &domain, &recipients).await
            };
            outcomes.extend(results);
        }
        self.record(&message, outcomes).await;
    }

    async fn via_mx(
        &self,
        message: &QueuedMessage,
        domain: &str,
        recipients: &[String],
    ) -> Vec<(String, Outcome)> {
        let all = |outcome: Outcome| for_all(recipients, outcome);
        let hosts = match dns::mail_hosts(&self.resolver, domain).await {
            Ok(hosts) => hosts,
            Err(error) => {
                let status = match &error {
                    dns::DnsError::NullMx(_) => "5.1.10",
                    e if e.is_permanent() => "5.1.2",
                    _ => "4.4.3",
                };
                return all(Outcome::new(
                    error.is_permanent(),
                    status,
                    error.to_string(),
                    None,
                ));
            }
        };
        let mut last_error = format!("no mail server of {domain} could be reached");
        for host in hosts {
            let addresses = match dns::addresses(&self.resolver, &host).await {
                Ok(addresses) => addresses,
                Err(error) => {
                    last_error = error.to_string();
                    continue;
                }
            };
            let name = host.trim_end_matches('.').to_string();
            for ip in addresses {
                let peer = SocketAddr::new(ip, self.config.outbound.mx_port);
                match self
                    .attempt(peer, &name, Tls::Opportunistic, None, message, recipients)
                    .await
                {
                    Ok(results) => return results,
                    Err(error) => {
                        tracing::info!(%peer, %error, "mail server not usable");
                        last_error = format!("{name} [{ip}]: {error}");
                    }
                }
            }
        }
        all(Outcome::new(false, "4.4.1", last_error, None))
    }

    async fn via_relay(
        &self,
        message: &QueuedMessage,
        recipients: &[String],
    ) -> Vec<(String, Outcome)> {
        let all = |outcome: Outcome| for_all(recipients, outcome);
        let Some(relay) = self.config.outbound.relay.clone() else {
            return all(Outcome::new(
                false,
                "4.3.5",
                "no relay configured".into(),
                None,
            ));
        };
        let tls = Tls::from(relay.tls);
        let credentials = match (&relay.username, &relay.password) {
            (Some(user), Some(password)) => Some((user.clone(), password.clone())),
            _ => None,
        };
        let addresses = match dns::addresses(&self.resolver, &relay.host).await {
            Ok(addresses) if !addresses.is_empty() => addresses,
            Ok(_) => {
                return all(Outcome::new(
                    false,
                    "4.4.3",
                    format!("relay {} has no address", relay.host),
                    None,
                ));
            }
            Err(error) => return all(Outcome::new(false, "4.4.3", error.to_string(), None)),
        };
        let mut last_error = String::new();
        for ip in addresses {
            let peer = SocketAddr::new(ip, relay.port);
            match self
                .attempt(
                    peer,
                    &relay.host,
                    tls,
                    credentials.as_ref(),
                    message,
                    recipients,
                )
                .await
            {
                Ok(results) => return results,
                Err(error) => {
                    tracing::warn!(%peer, %error, "relay not usable");
                    last_error = format!("relay {} [{ip}]: {error}", relay.host);
                }
            }
        }
        all(Outcome::new(false, "4.4.1", last_error, None))
    }

    /// One connection to one host. `Err` means the host could not be used (try the next
    /// one); `Ok` holds a result for every recipient.
    async fn attempt(
        &self,
        peer: SocketAddr,
        name: &str,
        tls: Tls,
        credentials: Option<&(String, Secret<String>)>,
        message: &QueuedMessage,
        recipients: &[String],
    ) -> Result<Vec<(String, Outcome)>, ClientError> {
        let hop = Hop {
            peer,
            name,
            tls,
            credentials: credentials.map(|(user, password)| (user.as_str(), password)),
        };
        let connectors = Connectors {
            verified: &self.relay_tls,
            opportunistic: &self.opportunistic,
        };
        let mut client = connect::open(&hop, &connectors, &self.config.hostname, &mut Vec::new())
            .await
            .map_err(|failed| failed.error)?;
        let remote = Some(name.to_string());
        // What this server cannot be sent at all (RFC 6531 §3.2, RFC 6152 §3): a bounce that
        // says why, rather than a message the server would garble or refuse. Without
        // SMTPUTF8 an internationalized domain goes in its ASCII form (xn--); only a
        // non-ASCII local part cannot go.
        let mut outcomes: Vec<(String, Outcome)> = Vec::with_capacity(recipients.len());
        let mut sendable: Vec<String> = Vec::with_capacity(recipients.len());
        let mut wire: Vec<String> = Vec::with_capacity(recipients.len());
        let eight_bit_refused =
            !client.extensions.eight_bit && self.has_eight_bit_octets(message).await?;
        let sender = if client.extensions.smtputf8 {
            Some(message.sender.clone())
        } else {
            ascii_address(&message.sender)
        };
        for recipient in recipients {
            let on_the_wire = if client.extensions.smtputf8 {
                Some(recipient.clone())
            } else {
                ascii_address(recipient)
            };
            let refused = |status: &str, text: String| {
                (
                    recipient.clone(),
                    Outcome::new(true, status, text, remote.clone()),
                )
            };
            match sender.as_ref().and(on_the_wire) {
                _ if eight_bit_refused => outcomes.push(refused(
                    "5.6.3",
                    format!(
                        "{name} takes only 7-bit text (no 8BITMIME), and this message has \
                         8-bit characters; the box does not convert them"
                    ),
                )),
                Some(on_the_wire) => {
                    sendable.push(recipient.clone());
                    wire.push(on_the_wire);
                }
                None => outcomes.push(refused(
                    "5.6.7",
                    format!(
                        "{name} does not take addresses with non-ASCII characters before the @ \
                         (no SMTPUTF8)"
                    ),
                )),
            }
        }
        let Some(sender) = sender.filter(|_| !sendable.is_empty()) else {
            client.quit().await;
            return Ok(outcomes);
        };
        let sent = client
            .send(
                &sender,
                &wire,
                message.size,
                message.dkim.as_bytes(),
                self.store.body(message.blob),
            )
            .await;
        let (replies, failure) = match sent {
            Ok(replies) => (replies, None),
            Err(client::Failed { replies, error }) => {
                let outcome = match error {
                    ClientError::Reply(reply) => Outcome::from_reply(&reply, remote.clone()),
                    error => Outcome::new(false, "4.4.2", error.to_string(), remote.clone()),
                };
                (replies, Some(outcome))
            }
        };
        for (index, recipient) in sendable.into_iter().enumerate() {
            // A refusal at RCPT stands whatever came after it; the rest share the
            // transaction's fate.
            let outcome = match (replies.get(index), &failure) {
                (Some(RecipientResult::Refused(reply)), _) => {
                    Outcome::from_reply(reply, remote.clone())
                }
                (_, Some(failed)) => failed.clone(),
                (Some(RecipientResult::Accepted), None) => Outcome::Delivered,
                (None, None) => Outcome::new(
                    false,
                    "4.4.2",
                    "the server gave no reply for this recipient".into(),
                    remote.clone(),
                ),
            };
            outcomes.push((recipient, outcome));
        }
        let results = outcomes;
        client.quit().await;
        Ok(results)
    }

    /// Whether the message (as stored; the DKIM field in front of it is ASCII) has an octet
    /// outside US-ASCII. Read only for a server without 8BITMIME, which is rare.
    async fn has_eight_bit_octets(&self, message: &QueuedMessage) -> Result<bool, StoreError> {
        let mut body = self.store.body(message.blob);
        while let Some(chunk) = body.next_chunk().await? {
            if !chunk.is_ascii() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Turns outcomes into queue updates and DSNs. DSNs are delivered before the queue
    /// changes, so a crash in between repeats a DSN rather than losing one.
    async fn record(&self, message: &QueuedMessage, outcomes: Vec<(String, Outcome)>) {
        let now = now_unix();
        let settings = &self.config.outbound;
        let expires =
            message.queued_at + i64::try_from(settings.max_queue_time.0).unwrap_or(i64::MAX);
        let warn_after =
            message.queued_at + i64::try_from(settings.delay_warning.0).unwrap_or(i64::MAX);
        let mut updates = Vec::new();
        let mut failed = Vec::new();
        let mut delayed = Vec::new();
        for (address, outcome) in outcomes {
            match outcome {
                Outcome::Delivered => {
                    tracing::info!(id = message.id, recipient = %address, "delivered");
                    updates.push((address, RecipientUpdate::Done));
                }
                Outcome::Failed {
                    permanent,
                    status,
                    diagnostic,
                    remote,
                } => {
                    let attempts = message
                        .recipients
                        .iter()
                        .find(|r| r.address == address)
                        .map(|r| r.attempts)
                        .unwrap_or(0)
                        + 1;
                    let give_up = permanent || now >= expires;
                    tracing::info!(id = message.id, recipient = %address, %diagnostic, give_up, "not delivered");
                    let status_line = RecipientStatus {
                        address: address.clone(),
                        status: if permanent {
                            status
                        } else if give_up {
                            "4.4.7".into()
                        } else {
                            status
                        },
                        diagnostic: if give_up && !permanent {
                            format!("{diagnostic} (gave up after {attempts} attempts)")
                        } else {
                            diagnostic.clone()
                        },
                        remote,
                    };
                    if give_up {
                        failed.push(status_line);
                        updates.push((address, RecipientUpdate::Done));
                    } else {
                        if now >= warn_after && message.flags & queue_flags::DELAY_NOTIFIED == 0 {
                            delayed.push(status_line);
                        }
                        let next_attempt = (now
                            + backoff(
                                settings.retry_initial.0,
                                settings.retry_max.0,
                                attempts,
                                message.id,
                            ))
                        .min(expires.max(now + 1));
                        updates.push((
                            address,
                            RecipientUpdate::Retry {
                                attempts,
                                next_attempt,
                                error: diagnostic,
                            },
                        ));
                    }
                }
            }
        }
        let hostname = &self.config.hostname;
        if let Err(error) = dsn::notify(
            &self.store,
            hostname,
            message,
            Action::Failed,
            &failed,
            expires,
        )
        .await
        {
            tracing::error!(%error, id = message.id, "cannot deliver a failure DSN");
        }
        let mut flags = 0;
        if !delayed.is_empty() {
            // One notice, naming every recipient still waiting, also those whose next try
            // is not due yet (another destination's).
            delayed.extend(not_tried_now(message, &updates));
            match dsn::notify(
                &self.store,
                hostname,
                message,
                Action::Delayed,
                &delayed,
                expires,
            )
            .await
            {
                Ok(()) => flags |= queue_flags::DELAY_NOTIFIED,
                Err(error) => {
                    tracing::error!(%error, id = message.id, "cannot deliver a delay DSN")
                }
            }
        }
        if let Err(error) = self.store.queue_record(message.id, updates, flags).await {
            tracing::error!(%error, id = message.id, "cannot record delivery results");
        }
    }
}

#[derive(Debug, Clone)]
enum Outcome {
    Delivered,
    Failed {
        permanent: bool,
        status: String,
        diagnostic: String,
        remote: Option<String>,
    },
}

impl Outcome {
    fn new(permanent: bool, status: &str, diagnostic: String, remote: Option<String>) -> Self {
        Outcome::Failed {
            permanent,
            status: status.to_string(),
            diagnostic,
            remote,
        }
    }

    fn from_reply(reply: &client::Reply, remote: Option<String>) -> Self {
        let permanent = reply.is_permanent();
        let status = reply
            .enhanced()
            .map(str::to_string)
            .unwrap_or_else(|| if permanent { "5.0.0" } else { "4.0.0" }.to_string());
        Outcome::Failed {
            permanent,
            status,
            diagnostic: reply.to_string(),
            remote,
        }
    }
}

/// `address` with its domain in ASCII (IDNA A-labels, RFC 5891), as a server without
/// SMTPUTF8 takes it; `None` when the local part is not ASCII, which only SMTPUTF8 carries.
fn ascii_address(address: &str) -> Option<String> {
    if address.is_ascii() {
        return Some(address.to_string());
    }
    let (local, domain) = address.rsplit_once('@')?;
    if !local.is_ascii() {
        return None;
    }
    let domain = hickory_resolver::proto::rr::Name::from_utf8(domain).ok()?;
    Some(format!(
        "{local}@{}",
        domain.to_ascii().trim_end_matches('.')
    ))
}

/// The recipients of `message` that this attempt did not try (their next try is not due),
/// with what stopped them last time.
fn not_tried_now(
    message: &QueuedMessage,
    updates: &[(String, RecipientUpdate)],
) -> Vec<RecipientStatus> {
    message
        .recipients
        .iter()
        .filter(|waiting| {
            !updates
                .iter()
                .any(|(address, _)| *address == waiting.address)
        })
        .map(|waiting| RecipientStatus {
            address: waiting.address.clone(),
            status: enhanced_status(&waiting.last_error)
                .unwrap_or("4.0.0")
                .to_string(),
            diagnostic: if waiting.last_error.is_empty() {
                "not tried yet".into()
            } else {
                waiting.last_error.clone()
            },
            remote: None,
        })
        .collect()
}

/// The enhanced status code (RFC 3463) of a recorded error that carries one after its reply
/// code ("451 4.7.1 Try later" -> "4.7.1").
fn enhanced_status(error: &str) -> Option<&str> {
    client::enhanced_at_start(error.split_once(' ')?.1)
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

/// Seconds until the next attempt: `initial` doubled per earlier attempt, at most `max`,
/// spread by ±20 % so that many messages do not retry in lockstep.
pub fn backoff(initial: u64, max: u64, attempts: u32, salt: u64) -> i64 {
    let exponent = attempts.saturating_sub(1).min(30);
    let base = initial.saturating_mul(1u64 << exponent).min(max).max(1);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0);
    let mut x = nanos ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(attempts);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    // A factor between 0.8 and 1.2.
    let jitter = 800 + x % 401;
    i64::try_from(base.saturating_mul(jitter) / 1000)
        .unwrap_or(i64::MAX)
        .max(1)
}

/// One outcome for every recipient of a transaction that failed as a whole.
fn for_all(recipients: &[String], outcome: Outcome) -> Vec<(String, Outcome)> {
    recipients
        .iter()
        .map(|r| (r.clone(), outcome.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::QueuedRecipient;

    #[test]
    fn a_delay_notice_also_names_the_recipients_not_tried_this_time() {
        let waiting = |address: &str, last_error: &str| QueuedRecipient {
            address: address.into(),
            attempts: 2,
            next_attempt: 0,
            last_error: last_error.into(),
        };
        let message = QueuedMessage {
            id: 1,
            sender: "alice@home.test".into(),
            blob: 1,
            size: 10,
            queued_at: 0,
            dkim: String::new(),
            flags: 0,
            recipients: vec![
                waiting("a@one.test", "451 4.7.1 Greylisted"),
                waiting("b@two.test", "mx.two.test [192.0.2.1]: connection refused"),
                waiting("c@three.test", ""),
            ],
        };
        let updates = vec![(
            "a@one.test".to_string(),
            RecipientUpdate::Retry {
                attempts: 3,
                next_attempt: 60,
                error: "451 4.7.1 Greylisted".into(),
            },
        )];
        let others = not_tried_now(&message, &updates);
        let summary: Vec<(&str, &str, &str)> = others
            .iter()
            .map(|r| (r.address.as_str(), r.status.as_str(), r.diagnostic.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "b@two.test",
                    "4.0.0",
                    "mx.two.test [192.0.2.1]: connection refused"
                ),
                ("c@three.test", "4.0.0", "not tried yet"),
            ]
        );
        assert_eq!(enhanced_status("451 4.7.1 Greylisted"), Some("4.7.1"));
        assert_eq!(enhanced_status("451 try later"), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        for attempts in 1..=3u32 {
            let expected = 300 * (1 << (attempts - 1));
            let got = backoff(300, 14_400, attempts, 7);
            assert!(
                got >= expected * 8 / 10 && got <= expected * 12 / 10,
                "{attempts}: {got}"
            );
        }
        let capped = backoff(300, 14_400, 20, 7);
        assert!((11_520..=17_280).contains(&capped), "{capped}");
        assert!(backoff(0, 0, 1, 1) >= 1);
    }
}
