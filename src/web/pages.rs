//! The pages: askama templates under `templates/`, checked when the crate compiles, and the
//! values each one shows. No page carries script; `/style.css` is the only asset.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::draft::{Provider, Step};
use crate::network::WifiNetwork;

/// What every page's frame shows.
pub struct Frame {
    pub title: String,
    pub hostname: String,
    /// The session's CSRF token, put into every form.
    pub csrf: String,
    pub progress: Option<Progress>,
}

pub struct Progress {
    pub steps: Vec<ProgressStep>,
}

pub struct ProgressStep {
    pub name: &'static str,
    pub current: bool,
    pub done: bool,
}

impl Progress {
    /// The wizard's steps with `current` marked and those before `next` (the first one not
    /// answered yet) done.
    pub fn of(has_wifi: bool, current: Step, next: Step) -> Progress {
        let steps = Step::all(has_wifi);
        let next_index = steps.iter().position(|s| *s == next).unwrap_or(0);
        Progress {
            steps: steps
                .iter()
                .enumerate()
                .map(|(index, step)| ProgressStep {
                    name: step.name(),
                    current: *step == current,
                    done: index < next_index,
                })
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub frame: Frame,
    pub paragraphs: Vec<String>,
    pub link: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "code.html")]
pub struct CodePage {
    pub frame: Frame,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "names.html")]
pub struct NamesPage {
    pub frame: Frame,
    pub domain: String,
    pub hostname: String,
    pub domain_error: Option<String>,
    pub hostname_error: Option<String>,
}

pub struct AccountLine {
    pub address: String,
}

#[derive(Template)]
#[template(path = "accounts.html")]
pub struct AccountsPage {
    pub frame: Frame,
    pub domain: String,
    /// The accounts the box has from before (setup run again).
    pub existing: Vec<String>,
    pub accounts: Vec<AccountLine>,
    pub name: String,
    pub name_error: Option<String>,
    pub password_error: Option<String>,
}

/// A relay test's steps as shown.
pub struct ReportView {
    pub ok: bool,
    pub steps: Vec<String>,
}

#[derive(Template)]
#[template(path = "outgoing.html")]
pub struct OutgoingPage {
    pub frame: Frame,
    pub relay: bool,
    pub providers: &'static [Provider],
    pub chosen_provider: String,
    pub host: String,
    pub port: String,
    pub tls: String,
    pub username: String,
    pub password_kept: bool,
    pub error: Option<String>,
    pub report: Option<ReportView>,
}

#[derive(Template)]
#[template(path = "wifi.html")]
pub struct WifiPage {
    pub frame: Frame,
    pub networks: Vec<WifiNetwork>,
    pub scan_error: Option<String>,
    pub ssid: String,
    pub other: String,
    pub country: String,
    pub countries: &'static [(&'static str, &'static str)],
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "tls.html")]
pub struct TlsPage {
    pub frame: Frame,
    pub hostname: String,
    pub upload: bool,
    pub uploaded: Option<String>,
    pub error: Option<String>,
}

/// One person's client settings.
pub struct ClientSettings {
    pub address: String,
    pub imap: String,
    pub smtp: String,
}

#[derive(Template)]
#[template(path = "summary.html")]
pub struct SummaryPage {
    pub frame: Frame,
    pub domain: String,
    pub hostname: String,
    pub accounts: Vec<AccountLine>,
    pub outgoing: String,
    pub wifi: Option<String>,
    pub certificate: String,
    pub dns_records: String,
    pub clients: Vec<ClientSettings>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub frame: Frame,
    pub next: String,
    /// The address typed before, kept after a wrong password.
    pub address: String,
    pub error: Option<String>,
}

/// One fact of the admin page's status; `key` is what the refresh script looks up.
pub struct Fact {
    pub key: &'static str,
    pub label: &'static str,
    pub value: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
pub struct AdminStatusPage {
    pub frame: Frame,
    pub facts: Vec<Fact>,
    pub version: String,
    /// When the health checks last ran ("5m ago"); `None` before the first run ends.
    pub health_checked: Option<String>,
    pub health: Vec<HealthRow>,
    /// The last USB backup: when, and what happened.
    pub last_backup: Option<(String, bool, String)>,
    pub backup_label: String,
}

/// One health check's line on the admin page.
pub struct HealthRow {
    pub title: &'static str,
    /// `verdict-ok`, `verdict-warning`, `verdict-problem`, ...: the row's style.
    pub class: &'static str,
    pub verdict: &'static str,
    pub found: String,
    pub advice: String,
}

pub struct RecipientRow {
    pub address: String,
    pub attempts: u32,
    pub next: String,
    pub why: String,
}

pub struct QueueRow {
    pub id: u64,
    pub sender: String,
    pub size: String,
    pub waiting: String,
    pub recipients: Vec<RecipientRow>,
}

#[derive(Template)]
#[template(path = "admin_queue.html")]
pub struct AdminQueuePage {
    pub frame: Frame,
    pub rows: Vec<QueueRow>,
    pub message: Option<String>,
}

pub struct AccountRow {
    pub address: String,
    pub storage: String,
    /// The most mail it may hold, as the form shows it ("2 GiB"); empty for no limit.
    pub quota: String,
    /// Said when it is nearly or wholly full.
    pub space_warning: Option<String>,
    /// What deleting it deletes, said plainly.
    pub deletes: String,
    pub administrator: bool,
    /// The administrator's own account (not deletable from here).
    pub myself: bool,
}

pub struct AliasRow {
    pub address: String,
    pub targets: String,
}

#[derive(Template)]
#[template(path = "admin_accounts.html")]
pub struct AdminAccountsPage {
    pub frame: Frame,
    pub domains: Vec<String>,
    pub accounts: Vec<AccountRow>,
    pub aliases: Vec<AliasRow>,
    /// What the add forms show: empty, or as a refused one was sent.
    pub typed: TypedForms,
    pub message: Option<String>,
    pub error: Option<String>,
}

/// The add forms' fields as a refused one was sent (but the passwords), else empty.
#[derive(Default)]
pub struct TypedForms {
    pub person_name: String,
    pub person_domain: String,
    pub person_quota: String,
    pub person_administrator: bool,
    pub alias_name: String,
    pub alias_domain: String,
    pub alias_targets: String,
}

#[derive(Template)]
#[template(path = "admin_settings.html")]
pub struct AdminSettingsPage {
    pub frame: Frame,
    pub hostname: String,
    pub domains: String,
    pub relay: bool,
    pub providers: &'static [Provider],
    pub host: String,
    pub port: String,
    pub tls: String,
    pub username: String,
    /// Under the password field: whether one is stored, or must be typed again.
    pub password_hint: String,
    pub certificate: String,
    pub message: Option<String>,
    pub error: Option<String>,
    pub report: Option<ReportView>,
}

#[derive(Template)]
#[template(path = "admin_log.html")]
pub struct AdminLogPage {
    pub frame: Frame,
    /// Oldest first.
    pub lines: Vec<String>,
}

#[derive(Template)]
#[template(path = "me.html")]
pub struct PersonPage {
    pub frame: Frame,
    /// The Apple profile's address as a QR code (SVG made here from the URL).
    pub qr: Option<String>,
    pub address: String,
    pub administrator: bool,
    pub storage: String,
    pub client: ClientSettings,
    pub message: Option<String>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "done.html")]
pub struct DonePage {
    pub frame: Frame,
    pub clients: Vec<ClientSettings>,
}

/// Renders a page with `status`; a template error (none is expected: they are checked at
/// compile time, only a value's `Display` could fail) is a 500.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "a page did not render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "The page could not be shown.",
            )
                .into_response()
        }
    }
}

pub fn message(
    hostname: &str,
    title: &str,
    paragraphs: Vec<String>,
    link: Option<(String, String)>,
) -> Response {
    message_with(StatusCode::OK, hostname, title, paragraphs, link)
}

pub fn message_with(
    status: StatusCode,
    hostname: &str,
    title: &str,
    paragraphs: Vec<String>,
    link: Option<(String, String)>,
) -> Response {
    render(
        status,
        &MessagePage {
            frame: Frame {
                title: title.into(),
                hostname: hostname.into(),
                csrf: String::new(),
                progress: None,
            },
            paragraphs,
            link,
        },
    )
}

pub fn not_found(hostname: &str) -> Response {
    message_with(
        StatusCode::NOT_FOUND,
        hostname,
        "Not found",
        vec!["There is no page at this address.".into()],
        None,
    )
}
