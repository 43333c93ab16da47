//! The household's admin page (administrators only): the box's status, its log and the
//! backup download here; the outbound queue (`admin_queue`), the accounts and aliases
//! (`admin_accounts`), the settings (`admin_settings`) and the upkeep buttons
//! (`admin_upkeep`) beside it.
//!
//! Every change goes through the same store and account layer as the CLI; every form carries
//! the session's CSRF token; a deletion is confirmed on the form with what it deletes said
//! plainly. The status part refreshes itself from `/admin/status.json` (a small script served
//! as a file, so the CSP still forbids inline script).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};

use super::login::Signed;
use super::pages::{self, Fact};
use super::{Connection, Web};
use crate::status::{Status, human_age, human_bytes};
use crate::store::now_unix;

pub(super) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/admin", get(status_page))
        .route("/admin/status.json", get(status_json))
        .route("/admin/refresh.js", get(refresh_script))
        .route("/admin/log", get(log_page))
        .route("/admin/backup", get(backup_download))
        .merge(super::admin_queue::routes())
        .merge(super::admin_accounts::routes())
        .merge(super::admin_upkeep::routes())
}

/// Bytes of the backup tar sent to the browser at a time; the export waits while the
/// connection is slower than the disk (`BACKUP_CHUNKS` of them in flight at most).
const BACKUP_CHUNK: usize = 64 * 1024;
const BACKUP_CHUNKS: usize = 4;

/// The export's output as chunks of the response body: blocking writes from the export's
/// thread, handed over through a small channel, so a backup of any size takes a bounded
/// amount of memory.
struct ChunkWriter {
    chunk: Vec<u8>,
    sender: tokio::sync::mpsc::Sender<Result<axum::body::Bytes, std::io::Error>>,
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = BACKUP_CHUNK - self.chunk.len();
        let taken = bytes.len().min(room);
        self.chunk.extend_from_slice(&bytes[..taken]);
        if self.chunk.len() == BACKUP_CHUNK {
            self.flush()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(BACKUP_CHUNK));
        self.sender.blocking_send(Ok(chunk.into())).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the download was cancelled")
        })
    }
}

/// `/admin/backup`: the whole store as the tar `letterbox export` writes, streamed.
async fn backup_download(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
) -> Response {
    let signed = match web
        .administrator(&headers, &connection, "/admin/backup")
        .await
    {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let (sender, receiver) = tokio::sync::mpsc::channel(BACKUP_CHUNKS);
    let store = web.store.clone();
    let by = signed.account.clone();
    tokio::task::spawn_blocking(move || {
        let failure = sender.clone();
        let mut writer = ChunkWriter {
            chunk: Vec::with_capacity(BACKUP_CHUNK),
            sender,
        };
        let result = crate::export::write_tar(&store, None, &mut writer)
            .map_err(|e| e.to_string())
            .and_then(|summary| {
                std::io::Write::flush(&mut writer).map_err(|e| e.to_string())?;
                Ok(summary)
            });
        match result {
            Ok(_) => tracing::info!(%by, "web: backup downloaded"),
            Err(error) => {
                tracing::warn!(%error, "web: the backup download failed");
                // An error in the body ends the response abruptly, so the browser reports a
                // failed download rather than keeping a cut tar.
                let _ = failure.blocking_send(Err(std::io::Error::other(error)));
            }
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    let name = format!(
        "attachment; filename=\"letterbox-{}-{}.tar\"",
        web.config().hostname,
        now_unix()
    );
    let disposition = axum::http::HeaderValue::from_str(&name)
        .unwrap_or(axum::http::HeaderValue::from_static("attachment"));
    (
        [
            (
                header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/x-tar"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

async fn log_page(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
) -> Response {
    let signed = match web.administrator(&headers, &connection, "/admin/log").await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let page = pages::AdminLogPage {
        frame: web.signed_frame(&signed, "What the box did"),
        lines: web.recent_log.lines(),
    };
    pages::render(StatusCode::OK, &page)
}

/// What every admin form's handler does first: an administrator signed in (else the login
/// page, coming back to `page`) and the session's own form (else `foreign_form`).
pub(super) async fn admin_form(
    web: &Web,
    headers: &HeaderMap,
    connection: &Connection,
    page: &str,
    csrf: &str,
) -> Result<Signed, Response> {
    let signed = web.administrator(headers, connection, page).await?;
    if !signed.form_is_ours(csrf) {
        return Err(foreign_form(web));
    }
    Ok(signed)
}

pub(super) fn foreign_form(web: &Web) -> Response {
    pages::message_with(
        StatusCode::FORBIDDEN,
        &web.config().hostname,
        "This form has expired",
        vec!["The form did not come from this page (or you logged in again since). Nothing was changed.".into()],
        Some(("/me".into(), "Back".into())),
    )
}

/// The checks for a new password: strength (with the account's name and domain as context)
/// and the repetition.
pub(super) fn new_password(account: &str, password: &str, repeat: &str) -> Result<(), String> {
    let context: Vec<&str> = account.split(['@', '.']).collect();
    crate::auth::strength::check(password, &context).map_err(|w| w.to_string())?;
    if password != repeat {
        return Err("The two passwords are not the same; type them again.".into());
    }
    Ok(())
}

/// The status facts, each with a stable key (the refresh script finds them by it).
fn facts(status: &Status, now: i64) -> Vec<Fact> {
    let mut facts = Vec::new();
    let mut fact = |key: &'static str, label: &'static str, value: String| {
        facts.push(Fact { key, label, value })
    };
    let up = status.listeners.iter().filter(|l| l.up).count();
    let down: Vec<String> = status
        .listeners
        .iter()
        .filter(|l| !l.up)
        .map(|l| format!("{} {}", l.service, l.address))
        .collect();
    fact(
        "ports",
        "Services",
        if down.is_empty() {
            format!("all {up} up")
        } else {
            format!("{up} up; down: {}", down.join(", "))
        },
    );
    fact(
        "queue",
        "Waiting to go out",
        match (status.queue_depth, status.queue_oldest) {
            (0, _) => "nothing".into(),
            (depth, Some(oldest)) => format!(
                "{depth} message(s), the oldest for {}",
                human_age(now - oldest)
            ),
            (depth, None) => format!("{depth} message(s)"),
        },
    );
    fact(
        "messages",
        "Messages stored",
        status.messages_stored.to_string(),
    );
    let spam = status.spam_today.today(now);
    fact(
        "spam",
        "Spam today",
        format!(
            "{} refused, {} greylisted, {} sent to Junk",
            spam.refused, spam.greylisted, spam.junk
        ),
    );
    fact(
        "storage",
        "Storage",
        status.storage.as_ref().map_or("unknown".into(), |s| {
            format!(
                "{} free of {}",
                human_bytes(s.free_bytes),
                human_bytes(s.total_bytes)
            )
        }),
    );
    fact(
        "uptime",
        "Running for",
        status
            .started_at
            .map_or("-".into(), |started| human_age(now - started)),
    );
    fact(
        "temperature",
        "Temperature",
        status
            .soc_temperature_mc
            .map_or("-".into(), |mc| format!("{:.1} °C", f64::from(mc) / 1000.0)),
    );
    fact(
        "alerts",
        "Alerts",
        if status.alerts.is_empty() {
            "none".into()
        } else {
            status
                .alerts
                .iter()
                .map(|a| a.key().replace('_', " "))
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    fact(
        "certificate",
        "Certificate",
        status.certificate_expires.map_or("-".into(), |expires| {
            if expires > now {
                format!("valid for {} more", human_age(expires - now))
            } else {
                "expired".into()
            }
        }),
    );
    facts
}

async fn status_page(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
) -> Response {
    let signed = match web.administrator(&headers, &connection, "/admin").await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let status = web.status.borrow().clone();
    let now = now_unix();
    let page = pages::AdminStatusPage {
        frame: web.signed_frame(&signed, "The box"),
        facts: facts(&status, now),
        version: status.version.clone(),
        health_checked: status
            .health
            .as_ref()
            .map(|report| format!("{} ago", human_age(now - report.checked_at))),
        health: status
            .health
            .as_ref()
            .map(super::admin_upkeep::rows)
            .unwrap_or_default(),
        last_backup: status.backup.as_ref().map(|run| {
            (
                format!("{} ago", human_age(now - run.at)),
                run.ok,
                run.said.clone(),
            )
        }),
        backup_label: web.config().backup.label.clone(),
    };
    pages::render(StatusCode::OK, &page)
}

async fn status_json(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = web.administrator(&headers, &connection, "/admin").await {
        return response;
    }
    let status = web.status.borrow().clone();
    let facts: serde_json::Map<String, serde_json::Value> = facts(&status, now_unix())
        .into_iter()
        .map(|f| (f.key.to_string(), serde_json::Value::String(f.value)))
        .collect();
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::Value::Object(facts).to_string(),
    )
        .into_response()
}

const REFRESH_SCRIPT: &str = include_str!("refresh.js");

async fn refresh_script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        REFRESH_SCRIPT,
    )
        .into_response()
}
