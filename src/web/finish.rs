//! The wizard's last page and its "Finish": the summary of what will change (with the DNS
//! records to publish and each person's client settings), and applying it all.
//!
//! Finishing checks once more that no address is taken, then: installs an uploaded
//! certificate, writes the settings file (atomically, with the Wi-Fi step's country; the
//! network itself was joined at that step), creates the accounts, reloads the services
//! in-process with the new names and leaves setup mode. The answer page is rendered before
//! setup mode ends, so the browser gets it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use serde::Deserialize;

use super::draft::{Draft, Outgoing, Step, TlsChoice};
use super::pages::{self, AccountLine, ClientSettings, ReportView};
use super::wizard::{Admitted, with_cookie};
use super::{Connection, MailPorts, Web};
use crate::config::{Config, Relay};
use crate::control::Command;
use crate::settings::{OutboundSettings, RelaySettings};

/// The config as it will be once the draft is applied (for the DNS records and client
/// settings shown before anything changes).
fn config_after(config: &Config, draft: &Draft) -> Config {
    let mut next = config.clone();
    if let Some(names) = &draft.names {
        next.hostname = names.hostname.clone();
        next.domains = vec![names.domain.clone()];
    }
    match &draft.outgoing {
        Some(Outgoing::Relay { relay, .. }) => next.outbound.relay = Some(relay_of(relay)),
        Some(Outgoing::Direct) => next.outbound.relay = None,
        None => {}
    }
    next
}

/// The mail domains after setup: `named` first, then the domains of `in_use` addresses.
fn domains_after<'a>(named: &str, in_use: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut domains = vec![named.to_string()];
    for address in in_use {
        if let Some((_, domain)) = address.rsplit_once('@')
            && !domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
        {
            domains.push(domain.to_ascii_lowercase());
        }
    }
    domains
}

fn relay_of(relay: &RelaySettings) -> Relay {
    Relay {
        host: relay.host.clone(),
        port: relay.port,
        tls: relay.tls,
        username: relay.username.clone(),
        password: relay.password.clone(),
        ca_file: None,
    }
}

pub(super) fn clients(
    hostname: &str,
    ports: &MailPorts,
    addresses: &[String],
) -> Vec<ClientSettings> {
    let host = hostname;
    let imap = match (ports.imaps, ports.imap) {
        (Some(port), _) => format!("{host}, port {port}, SSL/TLS"),
        (None, Some(port)) => format!("{host}, port {port}, STARTTLS"),
        (None, None) => "IMAP is turned off on this box".into(),
    };
    let smtp = match (ports.submission, ports.submissions) {
        (Some(starttls), Some(tls)) => {
            format!("{host}, port {starttls}, STARTTLS (or port {tls}, SSL/TLS), with password")
        }
        (Some(starttls), None) => format!("{host}, port {starttls}, STARTTLS, with password"),
        (None, Some(tls)) => format!("{host}, port {tls}, SSL/TLS, with password"),
        (None, None) => "sending is turned off on this box".into(),
    };
    addresses
        .iter()
        .map(|address| ClientSettings {
            address: address.clone(),
            imap: imap.clone(),
            smtp: smtp.clone(),
        })
        .collect()
}

fn dns_records(config: &Config) -> String {
    match crate::outbound::dkim::Dkim::load_or_create(config) {
        Ok(dkim) => crate::outbound::records::dns_records(config, &dkim),
        Err(error) => format!("; the DKIM key could not be read: {error}"),
    }
}

/// The summary page; `error` is what went wrong with a finish.
fn summary(web: &Web, visit: &super::guard::Visit, error: Option<String>) -> pages::SummaryPage {
    let config = web.config();
    let ports = web.mail_ports();
    // Made before the draft is locked: the frame looks at the draft too.
    let frame = web.frame(visit, Some(Step::Summary));
    web.draft(|draft| {
        let next = config_after(&config, draft);
        let addresses = draft.addresses();
        pages::SummaryPage {
            frame,
            domain: draft.domain().to_string(),
            hostname: next.hostname.clone(),
            accounts: addresses
                .iter()
                .map(|address| AccountLine {
                    address: address.clone(),
                })
                .collect(),
            outgoing: match &draft.outgoing {
                Some(Outgoing::Relay { relay, .. }) => format!(
                    "through {}:{}{}",
                    relay.host,
                    relay.port,
                    relay
                        .username
                        .as_ref()
                        .map(|u| format!(" as {u}"))
                        .unwrap_or_default()
                ),
                _ => "directly to the recipients' servers".into(),
            },
            wifi: draft
                .wifi
                .as_ref()
                .map(|w| format!("joined \"{}\"", w.ssid)),
            certificate: match &draft.tls {
                Some(TlsChoice::Upload { summary, .. }) => format!("uploaded: {summary}"),
                _ => format!(
                    "the box's own (self-signed) certificate for {}",
                    next.hostname
                ),
            },
            dns_records: dns_records(&next),
            clients: clients(&next.hostname, &ports, &addresses),
            error,
        }
    })
}

pub(super) async fn summary_page(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
) -> Response {
    let Admitted { visit } = match web.admitted(&headers, &connection, None) {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let has_wifi = web.network.has_wifi();
    if web.draft(|d| d.next_step(has_wifi)) != Step::Summary {
        return with_cookie(&visit, web.onwards());
    }
    let page = summary(&web, &visit, None);
    with_cookie(&visit, pages::render(StatusCode::OK, &page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct FinishForm {
    csrf: String,
}

pub(super) async fn finish(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<FinishForm>,
) -> Response {
    let Admitted { visit } = match web.admitted(&headers, &connection, Some(&form.csrf)) {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let has_wifi = web.network.has_wifi();
    if web.draft(|d| d.next_step(has_wifi)) != Step::Summary {
        return with_cookie(&visit, web.onwards());
    }
    match apply(&web).await {
        Ok(clients) => {
            tracing::info!(peer = %connection.peer, "setup finished from the setup page");
            let mut frame = web.frame(&visit, None);
            frame.title = "All set".into();
            let page = pages::render(StatusCode::OK, &pages::DonePage { frame, clients });
            // Setup mode ends after the page is made: from now on every setup URL is a 404.
            let _ = web.control.ask(Command::Setup(false)).await;
            page
        }
        Err(error) => {
            tracing::warn!(%error, "setup could not finish");
            let page = summary(&web, &visit, Some(error));
            with_cookie(&visit, pages::render(StatusCode::CONFLICT, &page))
        }
    }
}

/// Applies the draft: the settings first, in effect once the services listen on them (when
/// they cannot use them, the file is put back and nothing has changed), then the accounts.
/// Returns the client settings to show, with the ports the services listen on now.
async fn apply(web: &Web) -> Result<Vec<ClientSettings>, String> {
    let config = web.config();
    let (names, accounts, outgoing, wifi, tls) = web.draft(|d| {
        (
            d.names.clone(),
            d.accounts.clone(),
            d.outgoing.clone(),
            d.wifi.clone(),
            d.tls.clone(),
        )
    });
    let names = names.ok_or("the names step is not answered")?;
    let addresses: Vec<String> = accounts
        .iter()
        .map(|a| format!("{}@{}", a.local, names.domain))
        .collect();
    let existing = web
        .store
        .accounts()
        .await
        .map_err(|e| format!("The accounts could not be read: {e}"))?;
    if let Some(taken) = addresses
        .iter()
        .find(|a| existing.iter().any(|e| &e.address == *a))
    {
        return Err(format!(
            "{taken} exists already; remove it from the list of people."
        ));
    }
    // A setup run again on a box in use keeps the domains its people and shared addresses
    // still use, after the one named now: dropping one would refuse their mail.
    let aliases = web
        .store
        .aliases()
        .await
        .map_err(|e| format!("The shared addresses could not be read: {e}"))?;
    let domains = domains_after(
        &names.domain,
        existing
            .iter()
            .map(|e| e.address.as_str())
            .chain(aliases.iter().map(|(address, _)| address.as_str())),
    );

    let tls = match tls {
        Some(TlsChoice::Upload { cert, key, .. }) => Some(
            crate::tls::install_upload(&config.data_dir, &cert, key.expose())
                .map_err(|e| format!("The certificate could not be stored: {e}"))?,
        ),
        _ => None,
    };
    // The settings first: if the services cannot use them, nothing else has changed and the
    // summary can be sent again.
    web.change_settings(|settings| {
        settings.hostname = Some(names.hostname.clone());
        if let Some(wifi) = &wifi {
            settings.country = Some(wifi.country.clone());
        }
        settings.domains = Some(domains.clone());
        settings.outbound = match outgoing {
            Some(Outgoing::Relay { relay, .. }) => Some(OutboundSettings { relay: Some(relay) }),
            _ => None,
        };
        settings.tls = tls;
    })
    .await?;

    // The first person looks after the box, unless someone already does.
    let administrator = (!existing.iter().any(|e| e.administrator))
        .then(|| addresses.first().cloned())
        .flatten();
    for (account, address) in accounts.iter().zip(&addresses) {
        let hash = web
            .auth
            .hash(&account.password)
            .await
            .map_err(|e| format!("{address}: {e}"))?;
        web.store
            .create_account_as(address, &hash, administrator.as_ref() == Some(address))
            .await
            .map_err(|e| format!("{address}: {e}"))?;
    }
    Ok(clients(&names.hostname, &web.mail_ports(), &addresses))
}

/// The "test connection" button: connects to the relay as delivery would and reports each step.
pub(super) async fn test_relay(web: &Web, relay: &RelaySettings) -> ReportView {
    let config = web.config();
    let failed = |reason: String| ReportView {
        ok: false,
        steps: vec![reason],
    };
    let extra = match crate::outbound::relay_extra_ca(&config) {
        Ok(extra) => extra,
        Err(error) => return failed(error.to_string()),
    };
    let resolver = match crate::outbound::dns::resolver(&config) {
        Ok(resolver) => resolver,
        Err(error) => return failed(format!("No DNS resolver: {error}")),
    };
    let report = crate::outbound::relay_check::test_relay(
        &resolver,
        &relay_of(relay),
        &extra,
        &config.hostname,
    )
    .await;
    ReportView {
        ok: report.ok,
        steps: report.steps,
    }
}

/// An uploaded certificate and key, checked for the host name; the summary line or why not.
pub(super) fn check_certificate(cert: &[u8], key: &[u8], hostname: &str) -> Result<String, String> {
    if cert.is_empty() || key.is_empty() {
        return Err("Choose both files: the certificate chain and its private key.".into());
    }
    let now = crate::store::now_unix();
    crate::tls::check_upload(cert, key, hostname, now)
        .map(|summary| {
            format!(
                "for {}, valid for {} more days",
                summary.names.join(", "),
                (summary.not_after - now) / 86_400
            )
        })
        .map_err(|problem| problem.to_string())
}
