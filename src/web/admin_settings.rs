//! The admin page's settings (administrators only): the names, the smarthost and the
//! certificate the wizard set, changed through the same settings layer (`settings.toml`,
//! written atomically, then an in-process reload) and checked by the same rules as the
//! wizard's steps.

use std::sync::Arc;

use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;

use super::admin::admin_form;
use super::draft::{self, PROVIDERS, RelayForm};
use super::login::Signed;
use super::pages::{self, ReportView};
use super::{Connection, Web};
use crate::config::RelayTls;
use crate::settings::OutboundSettings;

pub(super) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/admin/settings", get(settings_page))
        .route("/admin/settings/names", post(names_given))
        .route("/admin/settings/outgoing", post(outgoing_given))
        .route("/admin/settings/certificate", post(certificate_given))
}

fn view(
    web: &Web,
    signed: &Signed,
    message: Option<String>,
    error: Option<String>,
    report: Option<ReportView>,
) -> pages::AdminSettingsPage {
    let config = web.config();
    let relay = config.outbound.relay.as_ref();
    pages::AdminSettingsPage {
        frame: web.signed_frame(signed, "Settings"),
        hostname: config.hostname.clone(),
        domains: config.domains.join(", "),
        relay: relay.is_some(),
        providers: &PROVIDERS,
        host: relay.map(|r| r.host.clone()).unwrap_or_default(),
        port: relay.map_or("587".into(), |r| r.port.to_string()),
        tls: match relay.map(|r| r.tls) {
            Some(RelayTls::Tls) => "tls".into(),
            _ => "starttls".into(),
        },
        username: relay.and_then(|r| r.username.clone()).unwrap_or_default(),
        password_hint: if relay.is_some_and(|r| r.password.is_some()) {
            PASSWORD_KEPT.into()
        } else {
            PASSWORD_NEW.into()
        },
        certificate: match &config.tls {
            Some(files) => format!("uploaded ({})", files.cert.display()),
            None => format!("the box's own (self-signed) for {}", config.hostname),
        },
        message,
        error,
        report,
    }
}

const PASSWORD_KEPT: &str = "A password is stored; leave this empty to keep it.";
const PASSWORD_NEW: &str = "Stored on the box only, never shown again.";

/// The outgoing form as it was sent, back on the page after "Test connection" or a refusal,
/// so that nothing has to be typed again but a new password (never sent back to a browser).
fn as_typed(mut page: pages::AdminSettingsPage, form: &OutgoingForm) -> pages::AdminSettingsPage {
    let typed = &form.relay;
    page.relay = form.way != "direct";
    let provider = PROVIDERS.iter().find(|p| p.name == typed.provider);
    page.host = provider.map_or(typed.host.clone(), |p| p.host.to_string());
    page.port = provider.map_or(typed.port.clone(), |p| p.port.to_string());
    page.tls = match provider.map(|p| p.tls) {
        Some(RelayTls::Tls) => "tls".into(),
        Some(_) => "starttls".into(),
        None if typed.tls == "tls" => "tls".into(),
        None => "starttls".into(),
    };
    page.username = typed.username.clone();
    if !typed.password.is_empty() {
        page.password_hint =
            "Type the password again to save it: it is never sent back to the browser.".into();
    }
    page
}

fn show(
    web: &Web,
    signed: &Signed,
    status: StatusCode,
    message: Option<String>,
    error: Option<String>,
) -> Response {
    pages::render(status, &view(web, signed, message, error, None))
}

async fn settings_page(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
) -> Response {
    match web
        .administrator(&headers, &connection, "/admin/settings")
        .await
    {
        Ok(signed) => show(&web, &signed, StatusCode::OK, None, None),
        Err(response) => response,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NamesForm {
    csrf: String,
    hostname: String,
    domains: String,
}

async fn names_given(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<NamesForm>,
) -> Response {
    let signed = match admin_form(&web, &headers, &connection, "/admin/settings", &form.csrf).await
    {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    // A refusal shows the names as they were typed, to be corrected rather than typed again.
    let refuse = |error: String| {
        let mut page = view(&web, &signed, None, Some(error), None);
        page.domains = form.domains.clone();
        page.hostname = form.hostname.clone();
        pages::render(StatusCode::UNPROCESSABLE_ENTITY, &page)
    };
    let mut domains = Vec::new();
    for typed in form
        .domains
        .split([',', ' ', '\n'])
        .filter(|d| !d.trim().is_empty())
    {
        match draft::check_domain(typed) {
            Ok(domain) if !domains.contains(&domain) => domains.push(domain),
            Ok(_) => {}
            Err(error) => return refuse(error),
        }
    }
    let Some(first) = domains.first().cloned() else {
        return refuse("At least one mail domain is needed.".into());
    };
    // The host name as it is stays, even one the wizard would not take (`localhost` in
    // development); a new one must be a full host name.
    let current = web.config().hostname.clone();
    let hostname = if form.hostname.trim().eq_ignore_ascii_case(&current) {
        current
    } else {
        match draft::check_names(&first, &form.hostname) {
            Ok(names) => names.hostname,
            Err((_, hostname)) => {
                return refuse(hostname.unwrap_or_else(|| "The host name is not valid.".into()));
            }
        }
    };
    // A domain still in use by an account or a shared address cannot go: its mail would be
    // refused from then on.
    let in_use = match (web.store.accounts().await, web.store.aliases().await) {
        (Ok(accounts), Ok(aliases)) => accounts
            .into_iter()
            .map(|a| a.address)
            .chain(aliases.into_iter().map(|(a, _)| a))
            .find(|address| {
                address
                    .rsplit_once('@')
                    .is_some_and(|(_, d)| !domains.iter().any(|k| k == d))
            }),
        (Err(error), _) | (_, Err(error)) => return refuse(error.to_string()),
    };
    if let Some(address) = in_use {
        return refuse(format!(
            "{address} still uses its domain; delete or move it before removing the domain."
        ));
    }
    match web
        .change_settings(|s| {
            s.hostname = Some(hostname.clone());
            s.domains = Some(domains.clone());
        })
        .await
    {
        Ok(()) => {
            tracing::info!(%hostname, by = %signed.account, "web: names changed");
            show(
                &web,
                &signed,
                StatusCode::OK,
                Some("Saved. The mail services use the new names now.".into()),
                None,
            )
        }
        Err(error) => refuse(error),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OutgoingForm {
    csrf: String,
    way: String,
    action: String,
    #[serde(flatten)]
    relay: RelayForm,
}

async fn outgoing_given(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<OutgoingForm>,
) -> Response {
    let signed = match admin_form(&web, &headers, &connection, "/admin/settings", &form.csrf).await
    {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let refuse = |error: String| {
        pages::render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &as_typed(view(&web, &signed, None, Some(error), None), &form),
        )
    };
    if form.way == "direct" && form.action != "test" {
        return match web.change_settings(|s| s.outbound = None).await {
            Ok(()) => show(
                &web,
                &signed,
                StatusCode::OK,
                Some("Saved. Mail now goes directly to the recipients' servers.".into()),
                None,
            ),
            Err(error) => refuse(error),
        };
    }
    let kept = web
        .config()
        .outbound
        .relay
        .as_ref()
        .map(|r| crate::settings::RelaySettings {
            host: r.host.clone(),
            port: r.port,
            tls: r.tls,
            username: r.username.clone(),
            password: r.password.clone(),
        });
    let relay = match draft::check_relay(&form.relay, kept.as_ref()) {
        Ok((_, relay)) => relay,
        Err(error) => return refuse(error),
    };
    if form.action == "test" {
        let report = super::finish::test_relay(&web, &relay).await;
        return pages::render(
            StatusCode::OK,
            &as_typed(view(&web, &signed, None, None, Some(report)), &form),
        );
    }
    let host = relay.host.clone();
    match web
        .change_settings(|s| s.outbound = Some(OutboundSettings { relay: Some(relay) }))
        .await
    {
        Ok(()) => show(
            &web,
            &signed,
            StatusCode::OK,
            Some(format!("Saved. Mail now goes out through {host}.")),
            None,
        ),
        Err(error) => refuse(error),
    }
}

async fn certificate_given(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    let (mut csrf, mut choice, mut cert, mut key) =
        (String::new(), String::new(), Vec::new(), Vec::new());
    let mut unreadable = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_string();
                match field.bytes().await {
                    Ok(bytes) => match name.as_str() {
                        "csrf" => csrf = String::from_utf8_lossy(&bytes).into_owned(),
                        "choice" => choice = String::from_utf8_lossy(&bytes).into_owned(),
                        "cert" => cert = bytes.to_vec(),
                        "key" => key = bytes.to_vec(),
                        _ => {}
                    },
                    Err(error) => unreadable = Some(error.to_string()),
                }
            }
            Ok(None) => break,
            Err(error) => {
                unreadable = Some(error.to_string());
                break;
            }
        }
    }
    let signed = match admin_form(&web, &headers, &connection, "/admin/settings", &csrf).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let refuse = |error: String| {
        show(
            &web,
            &signed,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some(error),
        )
    };
    if let Some(error) = unreadable {
        return refuse(format!("The upload could not be read ({error})."));
    }
    if choice != "upload" {
        return match web.change_settings(|s| s.tls = None).await {
            Ok(()) => show(
                &web,
                &signed,
                StatusCode::OK,
                Some("Saved. The box uses its own certificate again.".into()),
                None,
            ),
            Err(error) => refuse(error),
        };
    }
    let config = web.config();
    if let Err(error) = super::finish::check_certificate(&cert, &key, &config.hostname) {
        return refuse(error);
    }
    let files = match crate::tls::install_upload(&config.data_dir, &cert, &key) {
        Ok(files) => files,
        Err(error) => return refuse(format!("The certificate could not be stored: {error}")),
    };
    match web.change_settings(|s| s.tls = Some(files)).await {
        Ok(()) => show(
            &web,
            &signed,
            StatusCode::OK,
            Some("Saved. The mail services and HTTPS use the uploaded certificate now.".into()),
            None,
        ),
        Err(error) => refuse(error),
    }
}
