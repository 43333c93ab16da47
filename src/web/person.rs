//! Each person's own page (`/me`, any account): their storage, their mail programs' settings
//! and device profile, and changing their password.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;

use super::login::Signed;
use super::pages::{self, ClientSettings};
use super::{Connection, Web};
use crate::auth::AuthError;
use crate::secret::Secret;
use crate::status::human_bytes;

pub(super) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/me", get(me_page))
        .route("/me/password", post(password_given))
}

/// A QR code (SVG) of the person's Apple profile at the address this page was reached on,
/// for a phone to open after logging in there. `None` if the address does not fit a QR code.
fn profile_qr(headers: &HeaderMap, connection: &Connection) -> Option<String> {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| connection.local.to_string());
    let url = format!("https://{host}/me/letterbox.mobileconfig");
    let code = qrcode::QrCode::new(url.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color>()
            .min_dimensions(160, 160)
            .quiet_zone(true)
            .build(),
    )
}

fn me_view(
    web: &Web,
    signed: &Signed,
    qr: Option<String>,
    storage: String,
    message: Option<String>,
    error: Option<String>,
) -> pages::PersonPage {
    let config = web.config();
    let client = super::finish::clients(
        &config.hostname,
        &web.mail_ports(),
        std::slice::from_ref(&signed.account),
    )
    .pop()
    .unwrap_or(ClientSettings {
        address: signed.account.clone(),
        imap: String::new(),
        smtp: String::new(),
    });
    pages::PersonPage {
        frame: web.signed_frame(signed, "Your mail"),
        qr,
        address: signed.account.clone(),
        administrator: signed.administrator,
        storage,
        client,
        message,
        error,
    }
}

async fn storage_of(web: &Web, account: &str) -> String {
    match web.store.quota(account).await {
        Ok(Some(quota)) if quota.used >= quota.limit => format!(
            "{} of {} allowed: full. New mail waits at the sender's server until you delete \
             some (and empty the Trash, which counts too).",
            human_bytes(quota.used),
            human_bytes(quota.limit)
        ),
        Ok(Some(quota)) => format!(
            "{} of {} allowed",
            human_bytes(quota.used),
            human_bytes(quota.limit)
        ),
        Ok(None) => match web.store.account_usage(account).await {
            Ok(used) => human_bytes(used),
            Err(_) => "(not available right now)".into(),
        },
        Err(_) => "(not available right now)".into(),
    }
}

async fn me_page(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
) -> Response {
    let signed = match web.person(&headers, &connection, "/me").await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let storage = storage_of(&web, &signed.account).await;
    let qr = profile_qr(&headers, &connection);
    pages::render(
        StatusCode::OK,
        &me_view(&web, &signed, qr, storage, None, None),
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PasswordForm {
    csrf: String,
    current: String,
    password: String,
    repeat: String,
}

async fn password_given(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    let signed = match web.person(&headers, &connection, "/me").await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    if !signed.form_is_ours(&form.csrf) {
        return super::admin::foreign_form(&web);
    }
    let storage = storage_of(&web, &signed.account).await;
    let qr = profile_qr(&headers, &connection);
    let refuse = |error: String, status: StatusCode| {
        pages::render(
            status,
            &me_view(
                &web,
                &signed,
                qr.clone(),
                storage.clone(),
                None,
                Some(error),
            ),
        )
    };
    // The current password again: a session left open on a shared computer must not be
    // enough to take the account over.
    match web
        .auth
        .login(
            &signed.account,
            &Secret::new(form.current),
            connection.peer.ip(),
        )
        .await
    {
        Ok(_) => {}
        Err(AuthError::Throttled) => {
            return refuse(
                "Too many wrong passwords. Wait a few minutes, then try again.".into(),
                StatusCode::TOO_MANY_REQUESTS,
            );
        }
        Err(_) => {
            return refuse(
                "The current password is not right.".into(),
                StatusCode::FORBIDDEN,
            );
        }
    }
    if let Err(problem) = super::admin::new_password(&signed.account, &form.password, &form.repeat)
    {
        return refuse(problem, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let hash = match web.auth.hash(&Secret::new(form.password)).await {
        Ok(hash) => hash,
        Err(error) => return refuse(error.to_string(), StatusCode::SERVICE_UNAVAILABLE),
    };
    if let Err(error) = web.store.set_password(&signed.account, &hash).await {
        return refuse(error.to_string(), StatusCode::SERVICE_UNAVAILABLE);
    }
    // Other sessions of this account end; this one goes on.
    web.password_changed(&signed.account, &hash, &signed.csrf);
    tracing::info!(account = %signed.account, "web: password changed by its owner");
    pages::render(
        StatusCode::OK,
        &me_view(
            &web,
            &signed,
            qr,
            storage,
            Some("Your password is changed. Mail programs ask for the new one.".into()),
            None,
        ),
    )
}
