//! The household's admin page (administrators only): the box's status, the outbound queue
//! (retry now, delete), and the accounts and aliases (add, reset a password, delete).
//!
//! Every change goes through the same store and account layer as the CLI; every form carries
//! the session's CSRF token; a deletion is confirmed on the form with what it deletes said
//! plainly. The status part refreshes itself from `/admin/status.json` (a small script served
//! as a file, so the CSP still forbids inline script).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;

use super::login::Signed;
use super::pages::{self, AccountRow, AliasRow, Fact, QueueRow, RecipientRow};
use super::{Connection, Web};
use crate::secret::Secret;
use crate::status::{Status, human_age, human_bytes};
use crate::store::now_unix;

pub(super) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/admin", get(status_page))
        .route("/admin/status.json", get(status_json))
        .route("/admin/refresh.js", get(refresh_script))
        .route("/admin/queue", get(queue_page))
        .route("/admin/queue/retry", post(queue_retry))
        .route("/admin/queue/delete", post(queue_delete))
        .route("/admin/accounts", get(accounts_page))
        .route("/admin/accounts/add", post(account_add))
        .route("/admin/accounts/password", post(account_password))
        .route("/admin/accounts/delete", post(account_delete))
        .route("/admin/aliases/add", post(alias_add))
        .route("/admin/aliases/delete", post(alias_delete))
        .route("/admin/log", get(log_page))
        .route("/admin/backup", get(backup_download))
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

/// A delivery error in words a person understands, then the server's own words.
pub(super) fn explain(error: &str) -> String {
    let lower = error.to_ascii_lowercase();
    let what = if lower.contains("connection refused") || lower.contains("could be reached") {
        "The receiving mail server could not be reached; the box keeps trying."
    } else if lower.contains("timed out") || lower.contains("timeout") {
        "The receiving mail server did not answer in time; the box keeps trying."
    } else if lower.contains("no mx") || lower.contains("no address") || lower.contains("nxdomain")
    {
        "The recipient's domain has no mail server in the DNS (a typing error in the address?)."
    } else if let Some(code) = error.split_whitespace().find_map(|w| w.parse::<u16>().ok()) {
        match code {
            421 | 450 | 451 | 452 => {
                "The receiving server asked the box to try again later (it may be greylisting or busy)."
            }
            550..=554 => "The receiving server refused the message.",
            _ => "The receiving server answered with an error.",
        }
    } else if error.is_empty() {
        "Not tried yet."
    } else {
        "Delivery has not worked yet; the box keeps trying."
    };
    if error.is_empty() {
        what.into()
    } else {
        format!("{what} ({error})")
    }
}

async fn queue_page(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
) -> Response {
    let signed = match web
        .administrator(&headers, &connection, "/admin/queue")
        .await
    {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    queue_view(&web, &signed, None, StatusCode::OK).await
}

async fn queue_view(
    web: &Web,
    signed: &Signed,
    message: Option<String>,
    status: StatusCode,
) -> Response {
    let now = now_unix();
    let queue = match web.store.queue_list().await {
        Ok(queue) => queue,
        Err(error) => {
            return pages::message(
                &web.config().hostname,
                "Queue",
                vec![error.to_string()],
                None,
            );
        }
    };
    let rows = queue
        .into_iter()
        .map(|m| QueueRow {
            id: m.id,
            sender: if m.sender.is_empty() {
                "(a bounce)".into()
            } else {
                m.sender
            },
            size: human_bytes(m.size),
            waiting: human_age(now - m.queued_at),
            recipients: m
                .recipients
                .into_iter()
                .map(|r| RecipientRow {
                    address: r.address,
                    attempts: r.attempts,
                    next: if r.next_attempt <= now {
                        "now".into()
                    } else {
                        format!("in {}", human_age(r.next_attempt - now))
                    },
                    why: explain(&r.last_error),
                })
                .collect(),
        })
        .collect();
    pages::render(
        status,
        &pages::AdminQueuePage {
            frame: web.signed_frame(signed, "Waiting to go out"),
            rows,
            message,
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct QueueForm {
    csrf: String,
    id: u64,
    confirm: String,
}

async fn queue_retry(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<QueueForm>,
) -> Response {
    let signed = match web
        .administrator(&headers, &connection, "/admin/queue")
        .await
    {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    if !signed.form_is_ours(&form.csrf) {
        return foreign_form(&web);
    }
    match web.store.queue_retry(Some(form.id)).await {
        Ok(0) => {
            queue_view(
                &web,
                &signed,
                Some(format!("Message {} is no longer waiting.", form.id)),
                StatusCode::NOT_FOUND,
            )
            .await
        }
        Ok(_) => {
            tracing::info!(id = form.id, by = %signed.account, "web: queued message retried");
            Redirect::to("/admin/queue").into_response()
        }
        Err(error) => {
            queue_view(
                &web,
                &signed,
                Some(error.to_string()),
                StatusCode::SERVICE_UNAVAILABLE,
            )
            .await
        }
    }
}

async fn queue_delete(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<QueueForm>,
) -> Response {
    let signed = match web
        .administrator(&headers, &connection, "/admin/queue")
        .await
    {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    if !signed.form_is_ours(&form.csrf) {
        return foreign_form(&web);
    }
    if form.confirm != "yes" {
        return queue_view(
            &web,
            &signed,
            Some("Tick the box to confirm that the message is dropped without being sent.".into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    match web.store.queue_delete(form.id).await {
        Ok(()) => {
            tracing::info!(id = form.id, by = %signed.account, "web: queued message deleted");
            Redirect::to("/admin/queue").into_response()
        }
        Err(error) => {
            queue_view(
                &web,
                &signed,
                Some(error.to_string()),
                StatusCode::NOT_FOUND,
            )
            .await
        }
    }
}

async fn accounts_page(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
) -> Response {
    let signed = match web
        .administrator(&headers, &connection, "/admin/accounts")
        .await
    {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    accounts_view(&web, &signed, None, None, StatusCode::OK).await
}

async fn accounts_view(
    web: &Web,
    signed: &Signed,
    message: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let (accounts, aliases) = match (web.store.accounts().await, web.store.aliases().await) {
        (Ok(accounts), Ok(aliases)) => (accounts, aliases),
        (Err(error), _) | (_, Err(error)) => {
            return pages::message(
                &web.config().hostname,
                "Accounts",
                vec![error.to_string()],
                None,
            );
        }
    };
    pages::render(
        status,
        &pages::AdminAccountsPage {
            frame: web.signed_frame(signed, "People and addresses"),
            domains: web.config().domains.clone(),
            accounts: accounts
                .into_iter()
                .map(|a| AccountRow {
                    deletes: format!(
                        "{} and all {} of its messages ({})",
                        a.address,
                        a.messages,
                        human_bytes(a.bytes)
                    ),
                    storage: format!("{} messages, {}", a.messages, human_bytes(a.bytes)),
                    administrator: a.administrator,
                    myself: a.address == signed.account,
                    address: a.address,
                })
                .collect(),
            aliases: aliases
                .into_iter()
                .map(|(address, targets)| AliasRow {
                    address,
                    targets: targets.join(", "),
                })
                .collect(),
            message,
            error,
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AccountForm {
    csrf: String,
    name: String,
    domain: String,
    address: String,
    password: String,
    repeat: String,
    administrator: String,
    confirm: String,
    targets: String,
}

/// The admin's forms: the session and its token first.
async fn admin_form(
    web: &Web,
    headers: &HeaderMap,
    connection: &Connection,
    csrf: &str,
) -> Result<Signed, Response> {
    let signed = web
        .administrator(headers, connection, "/admin/accounts")
        .await?;
    if !signed.form_is_ours(csrf) {
        return Err(foreign_form(web));
    }
    Ok(signed)
}

async fn account_add(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let signed = match admin_form(&web, &headers, &connection, &form.csrf).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let config = web.config();
    let refuse = |error: String| {
        accounts_view(
            &web,
            &signed,
            None,
            Some(error),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    if !config.domains.contains(&form.domain) {
        return refuse(format!("{} is not one of this box's domains.", form.domain)).await;
    }
    let local = match super::draft::check_local_part(&form.name, &[]) {
        Ok(local) => local,
        Err(error) => return refuse(error).await,
    };
    let address = format!("{local}@{}", form.domain);
    if let Err(error) = new_password(&address, &form.password, &form.repeat) {
        return refuse(error).await;
    }
    let hash = match web.auth.hash(&Secret::new(form.password)).await {
        Ok(hash) => hash,
        Err(error) => return refuse(error.to_string()).await,
    };
    let administrator = form.administrator == "yes";
    if let Err(error) = web
        .store
        .create_account_as(&address, &hash, administrator)
        .await
    {
        return refuse(error.to_string()).await;
    }
    tracing::info!(%address, administrator, by = %signed.account, "web: account added");
    accounts_view(
        &web,
        &signed,
        Some(format!("{address} can now log in and get mail.")),
        None,
        StatusCode::OK,
    )
    .await
}

async fn account_password(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let signed = match admin_form(&web, &headers, &connection, &form.csrf).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    if let Err(error) = new_password(&form.address, &form.password, &form.repeat) {
        return accounts_view(
            &web,
            &signed,
            None,
            Some(error),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let result = match web.auth.hash(&Secret::new(form.password)).await {
        Ok(hash) => web
            .store
            .set_password(&form.address, &hash)
            .await
            .map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    if let Err(error) = result {
        return accounts_view(
            &web,
            &signed,
            None,
            Some(error),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    // Whoever was logged in with the old password is logged out.
    web.end_sessions(&form.address, Some(&signed.csrf));
    tracing::info!(address = %form.address, by = %signed.account, "web: password reset");
    accounts_view(
        &web,
        &signed,
        Some(format!("{} has a new password.", form.address)),
        None,
        StatusCode::OK,
    )
    .await
}

async fn account_delete(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let signed = match admin_form(&web, &headers, &connection, &form.csrf).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let refuse = |error: String| {
        accounts_view(
            &web,
            &signed,
            None,
            Some(error),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    if form.address == signed.account {
        return refuse("You cannot delete the account you are logged in with.".into()).await;
    }
    if form.confirm != "yes" {
        return refuse("Tick the box to confirm that the account and its mail are deleted.".into())
            .await;
    }
    if let Err(error) = web.store.delete_account(&form.address).await {
        return refuse(error.to_string()).await;
    }
    web.end_sessions(&form.address, None);
    tracing::info!(address = %form.address, by = %signed.account, "web: account deleted");
    accounts_view(
        &web,
        &signed,
        Some(format!("{} and its mail are deleted.", form.address)),
        None,
        StatusCode::OK,
    )
    .await
}

async fn alias_add(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let signed = match admin_form(&web, &headers, &connection, &form.csrf).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let config = web.config();
    let refuse = |error: String| {
        accounts_view(
            &web,
            &signed,
            None,
            Some(error),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    if !config.domains.contains(&form.domain) {
        return refuse(format!("{} is not one of this box's domains.", form.domain)).await;
    }
    let local = match super::draft::check_local_part(&form.name, &[]) {
        Ok(local) => local,
        Err(error) => return refuse(error).await,
    };
    let address = format!("{local}@{}", form.domain);
    let targets: Vec<String> = form
        .targets
        .split([',', ' ', '\n'])
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    if targets.is_empty() {
        return refuse("Name at least one account the address delivers to.".into()).await;
    }
    if let Some(bad) = targets.iter().find(|t| {
        !t.rsplit_once('@')
            .is_some_and(|(_, domain)| config.is_local_domain(domain))
    }) {
        return refuse(format!("{bad} is not an address of this box.")).await;
    }
    if let Err(error) = web.store.set_alias(&address, &targets).await {
        return refuse(error.to_string()).await;
    }
    accounts_view(
        &web,
        &signed,
        Some(format!(
            "Mail to {address} now goes to {}.",
            targets.join(", ")
        )),
        None,
        StatusCode::OK,
    )
    .await
}

async fn alias_delete(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let signed = match admin_form(&web, &headers, &connection, &form.csrf).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    if let Err(error) = web.store.delete_alias(&form.address).await {
        return accounts_view(
            &web,
            &signed,
            None,
            Some(error.to_string()),
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    accounts_view(
        &web,
        &signed,
        Some(format!("{} is deleted.", form.address)),
        None,
        StatusCode::OK,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_errors_are_said_in_words() {
        assert!(explain("").starts_with("Not tried yet"));
        assert!(
            explain("mx.example [192.0.2.1]: Connection refused (os error 111)")
                .starts_with("The receiving mail server could not be reached")
        );
        assert!(explain("451 4.7.1 Greylisted, try again").contains("try again later"));
        let refused = explain("550 5.1.1 No such user");
        assert!(
            refused.starts_with("The receiving server refused"),
            "{refused}"
        );
        assert!(refused.ends_with("(550 5.1.1 No such user)"), "{refused}");
    }
}
