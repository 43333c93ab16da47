//! The admin page's outbound queue: what waits, why, in words a person understands; retry a
//! message now or delete it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;

use super::admin::admin_form;
use super::login::Signed;
use super::pages::{self, QueueRow, RecipientRow};
use super::{Connection, Web};
use crate::status::{human_age, human_bytes};
use crate::store::now_unix;

pub(super) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/admin/queue", get(queue_page))
        .route("/admin/queue/retry", post(queue_retry))
        .route("/admin/queue/delete", post(queue_delete))
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
    let signed = match admin_form(&web, &headers, &connection, "/admin/queue", &form.csrf).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
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
    let signed = match admin_form(&web, &headers, &connection, "/admin/queue", &form.csrf).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
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
