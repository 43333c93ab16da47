//! The wizard's steps about how the box is reached: the Wi-Fi it joins (at once, through the
//! control loop that owns the radio) and the certificate it shows.

use std::sync::Arc;

use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use serde::Deserialize;

use super::super::draft::{self, Step, TlsChoice};
use super::super::guard::Visit;
use super::super::pages::{self};
use super::super::{Connection, Web, finish};
use super::{Admitted, invalid, needs, page, with_cookie};
use crate::control::Joining;
use crate::secret::Secret;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct WifiForm {
    csrf: String,
    ssid: String,
    other: String,
    passphrase: String,
    country: String,
}

async fn wifi_view(
    web: &Web,
    visit: &Visit,
    form: &WifiForm,
    error: Option<String>,
) -> pages::WifiPage {
    let (networks, scan_error) = match web.network.scan().await {
        Ok(networks) => (networks, None),
        Err(error) => (Vec::new(), Some(error.to_string())),
    };
    // A join that failed over the hotspot is told here when the phone is back on it.
    let error = error.or_else(|| {
        let status = web.status.borrow();
        let problem = status.setup.as_ref()?.problem.as_ref()?;
        Some(format!("The box could not join: {}.", problem.reason))
    });
    pages::WifiPage {
        frame: web.frame(visit, Some(Step::Wifi)),
        networks,
        scan_error,
        ssid: form.ssid.clone(),
        other: form.other.clone(),
        country: form.country.clone(),
        countries: crate::country::by_name(),
        error,
    }
}

pub(super) async fn wifi_page(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
) -> Response {
    let Admitted { visit } = match web.admitted(&headers, &connection, None) {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    if !web.network.has_wifi() {
        return with_cookie(&visit, web.onwards());
    }
    if let Some(earlier) = needs(&web, Step::Wifi) {
        return with_cookie(&visit, earlier);
    }
    // The country: the one chosen before, the box's, or the browser's language's.
    let browser = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::country::default_country);
    let (ssid, chosen) = web.draft(|d| {
        d.wifi
            .as_ref()
            .map(|w| (w.ssid.clone(), Some(w.country.clone())))
            .unwrap_or_default()
    });
    let form = WifiForm {
        ssid,
        country: chosen
            .or_else(|| web.config().country.clone())
            .or(browser)
            .unwrap_or_default(),
        ..WifiForm::default()
    };
    let view = wifi_view(&web, &visit, &form, None).await;
    page(&visit, &view)
}

pub(super) async fn wifi_given(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<WifiForm>,
) -> Response {
    let Admitted { visit } = match web.admitted(&headers, &connection, Some(&form.csrf)) {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    if !web.network.has_wifi() {
        return with_cookie(&visit, web.onwards());
    }
    let ssid = if form.other.trim().is_empty() {
        form.ssid.as_str()
    } else {
        form.other.trim()
    };
    let choice = match draft::check_wifi(ssid, &form.passphrase, &form.country) {
        Ok(choice) => choice,
        Err(error) => {
            let view = wifi_view(&web, &visit, &form, Some(error)).await;
            return invalid(&visit, &view);
        }
    };
    // The country first: it decides the channels the radio may use to find the network.
    if let Err(error) = web.network.set_country(&choice.country).await {
        tracing::warn!(%error, country = choice.country, "Wi-Fi: regulatory domain not set");
    }
    match web.control.join(&choice.ssid, &choice.passphrase).await {
        Ok(Ok(Joining::Joined)) => {
            web.draft(|d| d.wifi = Some(choice));
            with_cookie(&visit, web.onwards())
        }
        Ok(Ok(Joining::AfterHotspot)) => {
            let hotspot = web
                .status
                .borrow()
                .setup
                .as_ref()
                .and_then(|s| s.network.clone());
            let ssid = choice.ssid.clone();
            web.draft(|d| d.wifi = Some(choice));
            with_cookie(&visit, handover_page(&web, &ssid, hotspot.as_deref()))
        }
        Ok(Err(error)) => {
            let view = wifi_view(&web, &visit, &form, Some(error.to_string())).await;
            invalid(&visit, &view)
        }
        Err(error) => with_cookie(
            &visit,
            pages::message_with(
                StatusCode::SERVICE_UNAVAILABLE,
                &web.config().hostname,
                "Setup is not available",
                vec![error.to_string()],
                None,
            ),
        ),
    }
}

/// The answer to a join over the hotspot: the phone is about to lose this network.
fn handover_page(web: &Web, ssid: &str, hotspot: Option<&str>) -> Response {
    let hostname = web.config().hostname.clone();
    let local = hostname.split('.').next().unwrap_or("letterbox");
    let hotspot = hotspot.unwrap_or("the setup network");
    pages::message_with(
        StatusCode::OK,
        &hostname,
        &format!("Joining {ssid}"),
        vec![
            format!(
                "The box now leaves {hotspot} and joins {ssid}; this phone will lose its \
                 connection in a moment."
            ),
            format!(
                "When the box's screen no longer shows {hotspot}, connect this phone to {ssid} \
                 and open http://{local}.local/setup to finish, with the code on the screen."
            ),
            format!(
                "If the box cannot join, {hotspot} comes back within a minute: join it again \
                 and this page says why."
            ),
        ],
        None,
    )
}

fn tls_view(web: &Web, visit: &Visit, upload: bool, error: Option<String>) -> pages::TlsPage {
    let (hostname, uploaded) = web.draft(|d| {
        (
            d.names
                .as_ref()
                .map(|n| n.hostname.clone())
                .unwrap_or_default(),
            match &d.tls {
                Some(TlsChoice::Upload { summary, .. }) => Some(summary.clone()),
                _ => None,
            },
        )
    });
    pages::TlsPage {
        frame: web.frame(visit, Some(Step::Tls)),
        hostname,
        upload: upload || uploaded.is_some(),
        uploaded,
        error,
    }
}

pub(super) async fn tls_page(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
) -> Response {
    let Admitted { visit } = match web.admitted(&headers, &connection, None) {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    if let Some(earlier) = needs(&web, Step::Tls) {
        return with_cookie(&visit, earlier);
    }
    page(&visit, &tls_view(&web, &visit, false, None))
}

/// The certificate form's fields (multipart: the files come as parts).
#[derive(Default)]
pub(super) struct TlsForm {
    csrf: String,
    choice: String,
    cert: Vec<u8>,
    key: Vec<u8>,
}

async fn read_tls_form(mut multipart: Multipart) -> Result<TlsForm, String> {
    let mut form = TlsForm::default();
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        format!("The upload could not be read ({e}).")
    };
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field.bytes().await.map_err(unreadable)?.to_vec();
        match name.as_str() {
            "csrf" => form.csrf = String::from_utf8_lossy(&bytes).into_owned(),
            "choice" => form.choice = String::from_utf8_lossy(&bytes).into_owned(),
            "cert" => form.cert = bytes,
            "key" => form.key = bytes,
            _ => {}
        }
    }
    Ok(form)
}

pub(super) async fn tls_given(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let form = read_tls_form(multipart).await;
    let csrf = form.as_ref().map(|f| f.csrf.clone()).unwrap_or_default();
    let Admitted { visit } = match web.admitted(&headers, &connection, Some(&csrf)) {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    if let Some(earlier) = needs(&web, Step::Tls) {
        return with_cookie(&visit, earlier);
    }
    let form = match form {
        Ok(form) => form,
        Err(error) => return invalid(&visit, &tls_view(&web, &visit, true, Some(error))),
    };
    if form.choice != "upload" {
        web.draft(|d| d.tls = Some(TlsChoice::SelfSigned));
        return with_cookie(&visit, web.onwards());
    }
    let already = web.draft(|d| matches!(d.tls, Some(TlsChoice::Upload { .. })));
    if form.cert.is_empty() && form.key.is_empty() && already {
        return with_cookie(&visit, web.onwards());
    }
    let hostname = web.draft(|d| {
        d.names
            .as_ref()
            .map(|n| n.hostname.clone())
            .unwrap_or_default()
    });
    match finish::check_certificate(&form.cert, &form.key, &hostname) {
        Ok(summary) => {
            web.draft(|d| {
                d.tls = Some(TlsChoice::Upload {
                    cert: form.cert,
                    key: Secret::new(form.key),
                    summary,
                })
            });
            with_cookie(&visit, web.onwards())
        }
        Err(error) => invalid(&visit, &tls_view(&web, &visit, true, Some(error))),
    }
}
