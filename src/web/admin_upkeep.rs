//! The admin page's upkeep: the Health section (the last report of the box's own checks,
//! `health`, and "Check now", which runs them again) and "Back up to the USB drive now"
//! (`backup`). Both are forms with the session's CSRF token that come back to their section.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Extension, Form, Router};
use serde::Deserialize;

use super::admin::admin_form;
use super::pages::HealthRow;
use super::{Connection, Web};
use crate::health::{Report, Verdict};

pub(super) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/admin/health", post(check_now))
        .route("/admin/backup/usb", post(backup_now))
}

/// The report's rows, problems first, then what could not be checked, warnings and the rest.
pub(super) fn rows(report: &Report) -> Vec<HealthRow> {
    let order = [
        Verdict::Problem,
        Verdict::CouldNotCheck,
        Verdict::Warning,
        Verdict::Ok,
        Verdict::NotNeeded,
    ];
    order
        .iter()
        .flat_map(|verdict| {
            report
                .findings
                .iter()
                .filter(move |f| f.verdict == *verdict)
        })
        .map(|finding| HealthRow {
            title: finding.check.title(),
            class: match finding.verdict {
                Verdict::Ok => "verdict-ok",
                Verdict::NotNeeded => "verdict-not-needed",
                Verdict::Warning => "verdict-warning",
                Verdict::Problem => "verdict-problem",
                Verdict::CouldNotCheck => "verdict-could-not-check",
            },
            verdict: finding.verdict.words(),
            found: finding.found.clone(),
            advice: finding.advice.clone(),
        })
        .collect()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CheckForm {
    csrf: String,
}

async fn check_now(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<CheckForm>,
) -> Response {
    let signed = match admin_form(&web, &headers, &connection, "/admin", &form.csrf).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    // The report is published in the status value, which the page shows.
    if web.health.check_now().await.is_none() {
        tracing::warn!("web: the health checks did not run (shutting down)");
    }
    tracing::info!(by = %signed.account, "web: health checked");
    Redirect::to("/admin#health").into_response()
}

/// "Back up to the USB drive now": the page shows the outcome in its Backup section.
async fn backup_now(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<CheckForm>,
) -> Response {
    let signed = match admin_form(&web, &headers, &connection, "/admin", &form.csrf).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    tracing::info!(by = %signed.account, "web: backup to the USB drive asked for");
    if web.backup.now().await.is_none() {
        tracing::warn!("web: the backup did not run (shutting down)");
    }
    Redirect::to("/admin#last-backup").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{Check, Finding};

    #[test]
    fn problems_come_first() {
        let finding = |check, verdict| Finding {
            check,
            verdict,
            found: String::new(),
            advice: String::new(),
        };
        let report = Report {
            checked_at: 0,
            findings: vec![
                finding(Check::OutgoingPort, Verdict::Ok),
                finding(Check::Spf, Verdict::Warning),
                finding(Check::ReverseDns, Verdict::Problem),
            ],
        };
        let classes: Vec<&str> = rows(&report).iter().map(|r| r.class).collect();
        assert_eq!(
            classes,
            ["verdict-problem", "verdict-warning", "verdict-ok"]
        );
    }
}
