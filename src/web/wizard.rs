//! The setup wizard's pages, answering only in setup mode (404 otherwise).
//!
//! Each step is a GET that shows the form (filled with what the draft holds) and a POST that
//! checks the session's CSRF token, validates on the server, and either shows the form again
//! with a message beside the field or stores the answer in the draft and moves on. Nothing
//! changes on the box until "Finish" (`finish`), except that the Wi-Fi step joins the network
//! at once, through the control loop that owns the radio: over the setup hotspot the phone
//! gets its answer first and then loses the hotspot; if the join fails, the hotspot comes
//! back and this step says why.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;

use super::draft::{self, NewAccount, Outgoing, PROVIDERS, RelayForm, Step};
use super::guard::{CodeOutcome, Visit};
use super::pages::{self, AccountLine, Frame, Progress, ReportView};
use super::{Connection, Web, finish};
use crate::control::Command;
use crate::limits::WIZARD_ACCOUNTS;
use crate::secret::Secret;

mod network;

pub(super) fn routes(web: Arc<Web>) -> Router<Arc<Web>> {
    Router::new()
        .route("/", get(start))
        .route("/code", get(code_page).post(code_given))
        .route("/names", get(names_page).post(names_given))
        .route("/accounts", get(accounts_page).post(account_added))
        .route("/accounts/remove", post(account_removed))
        .route("/accounts/done", post(accounts_done))
        .route("/outgoing", get(outgoing_page).post(outgoing_given))
        .route("/wifi", get(network::wifi_page).post(network::wifi_given))
        .route("/tls", get(network::tls_page).post(network::tls_given))
        .route("/summary", get(finish::summary_page))
        .route("/finish", post(finish::finish))
        .route_layer(axum::middleware::from_fn_with_state(web, setup_only))
}

/// Outside setup mode no setup URL exists; inside, every request keeps setup mode alive.
async fn setup_only(State(web): State<Arc<Web>>, request: Request, next: Next) -> Response {
    if !web.in_setup_mode() {
        return pages::not_found(&web.config().hostname);
    }
    // The control loop answers at once; a full queue only means the timer is reset later.
    let _ = web.control.tell(Command::Touch);
    next.run(request).await
}

/// What a handler gets before its own work: the session, or the response that ends the
/// request (no random source; not admitted yet; a form that is not ours).
pub(super) struct Admitted {
    pub visit: Visit,
}

impl Web {
    /// The session of an admitted browser; others are sent to the code page.
    pub(super) fn admitted(
        &self,
        headers: &HeaderMap,
        connection: &Connection,
        csrf: Option<&str>,
    ) -> Result<Admitted, Response> {
        let visit = self
            .visit(headers, connection)
            .map_err(|_| self.no_random_source())?;
        if let Some(csrf) = csrf
            && !visit.form_is_ours(csrf)
        {
            return Err(with_cookie(&visit, self.foreign_form()));
        }
        if !visit.admitted {
            return Err(with_cookie(
                &visit,
                Redirect::to("/setup/code").into_response(),
            ));
        }
        Ok(Admitted { visit })
    }

    pub(super) fn frame(&self, visit: &Visit, step: Option<Step>) -> Frame {
        let has_wifi = self.network.has_wifi();
        let next = self.draft(|d| d.next_step(has_wifi));
        Frame {
            title: step.map_or("Set up this box", Step::title).into(),
            hostname: self.config().hostname.clone(),
            csrf: visit.csrf.clone(),
            progress: step.map(|step| Progress::of(has_wifi, step, next)),
        }
    }

    fn foreign_form(&self) -> Response {
        pages::message_with(
            StatusCode::FORBIDDEN,
            &self.config().hostname,
            "This form has expired",
            vec![
                "The form did not come from this page, or setup mode started again since it \
                 was shown. Nothing was changed."
                    .into(),
            ],
            Some(("/setup".into(), "Start again".into())),
        )
    }

    fn no_random_source(&self) -> Response {
        pages::message_with(
            StatusCode::SERVICE_UNAVAILABLE,
            &self.config().hostname,
            "Setup is not available",
            vec!["The box's random number source failed, so it cannot make a safe session.".into()],
            None,
        )
    }

    /// After a step: the next unanswered one, or the summary when all are answered.
    pub(super) fn onwards(&self) -> Response {
        let has_wifi = self.network.has_wifi();
        Redirect::to(self.draft(|d| d.next_step(has_wifi)).path()).into_response()
    }
}

/// Adds the session cookie to `response` when the visit made a new one.
pub(super) fn with_cookie(visit: &Visit, mut response: Response) -> Response {
    if let Some(cookie) = &visit.set_cookie {
        response
            .headers_mut()
            .append(header::SET_COOKIE, cookie.clone());
    }
    response
}

fn page(visit: &Visit, page: &impl askama::Template) -> Response {
    with_cookie(visit, pages::render(StatusCode::OK, page))
}

fn invalid(visit: &Visit, page: &impl askama::Template) -> Response {
    with_cookie(visit, pages::render(StatusCode::UNPROCESSABLE_ENTITY, page))
}

async fn start(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
) -> Response {
    match web.admitted(&headers, &connection, None) {
        Ok(Admitted { visit }) => with_cookie(&visit, web.onwards()),
        Err(response) => response,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CodeForm {
    csrf: String,
    code: String,
}

async fn code_page(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
) -> Response {
    let visit = match web.visit(&headers, &connection) {
        Ok(visit) => visit,
        Err(_) => return web.no_random_source(),
    };
    if visit.admitted {
        return with_cookie(&visit, web.onwards());
    }
    let mut frame = web.frame(&visit, None);
    frame.title = "Prove you are at the box".into();
    page(&visit, &pages::CodePage { frame, error: None })
}

async fn code_given(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let mut visit = match web.visit(&headers, &connection) {
        Ok(visit) => visit,
        Err(_) => return web.no_random_source(),
    };
    if !visit.form_is_ours(&form.csrf) {
        return with_cookie(&visit, web.foreign_form());
    }
    let (status, error) = match web.try_code(&mut visit, &form.code, &connection) {
        Ok(CodeOutcome::Admitted) => return with_cookie(&visit, web.onwards()),
        Ok(CodeOutcome::Wrong) => (
            StatusCode::FORBIDDEN,
            "That is not the code the box shows. Check the display (or letterbox status) \
             and type it again."
                .to_string(),
        ),
        Ok(CodeOutcome::Wait(wait)) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many wrong codes. Wait {} seconds, then type the code again.",
                wait.as_secs().max(1)
            ),
        ),
        Ok(CodeOutcome::NoCode) | Err(_) => return web.no_random_source(),
    };
    let mut frame = web.frame(&visit, None);
    frame.title = "Prove you are at the box".into();
    let mut response = pages::render(
        status,
        &pages::CodePage {
            frame,
            error: Some(error),
        },
    );
    if status == StatusCode::TOO_MANY_REQUESTS
        && let Ok(value) = HeaderValue::from_str("60")
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    with_cookie(&visit, response)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NamesForm {
    csrf: String,
    domain: String,
    hostname: String,
}

async fn names_page(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
) -> Response {
    let Admitted { visit } = match web.admitted(&headers, &connection, None) {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let config = web.config();
    let (domain, hostname) = web.draft(|d| match &d.names {
        Some(names) => (names.domain.clone(), names.hostname.clone()),
        // A box set up before shows its names; a fresh one (still on the development
        // defaults) shows empty fields.
        None if config.domains.first().is_some_and(|d| d != "home.test") => (
            config.domains.first().cloned().unwrap_or_default(),
            config.hostname.clone(),
        ),
        None => (String::new(), String::new()),
    });
    page(
        &visit,
        &pages::NamesPage {
            frame: web.frame(&visit, Some(Step::Names)),
            domain,
            hostname,
            domain_error: None,
            hostname_error: None,
        },
    )
}

async fn names_given(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<NamesForm>,
) -> Response {
    let Admitted { visit } = match web.admitted(&headers, &connection, Some(&form.csrf)) {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    match draft::check_names(&form.domain, &form.hostname) {
        Ok(names) => {
            web.draft(|d| d.names = Some(names));
            with_cookie(&visit, web.onwards())
        }
        Err((domain_error, hostname_error)) => invalid(
            &visit,
            &pages::NamesPage {
                frame: web.frame(&visit, Some(Step::Names)),
                domain: form.domain,
                hostname: form.hostname,
                domain_error,
                hostname_error,
            },
        ),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AccountForm {
    csrf: String,
    name: String,
    password: String,
    repeat: String,
    address: String,
}

async fn accounts_view(
    web: &Web,
    visit: &Visit,
    name: String,
    name_error: Option<String>,
    password_error: Option<String>,
) -> pages::AccountsPage {
    let (domain, addresses) = web.draft(|d| (d.domain().to_string(), d.addresses()));
    pages::AccountsPage {
        frame: web.frame(visit, Some(Step::Accounts)),
        domain,
        existing: existing_accounts(web).await,
        accounts: addresses
            .into_iter()
            .map(|address| AccountLine { address })
            .collect(),
        name,
        name_error,
        password_error,
    }
}

/// The accounts already on the box (setup run again): none need adding then. A store that
/// cannot be read counts as none, which only asks for a person more.
async fn existing_accounts(web: &Web) -> Vec<String> {
    web.store
        .accounts()
        .await
        .map(|accounts| accounts.into_iter().map(|a| a.address).collect())
        .unwrap_or_default()
}

/// The steps before this one must be answered (a bookmark or the back button may skip them).
fn needs(web: &Web, step: Step) -> Option<Response> {
    let has_wifi = web.network.has_wifi();
    let next = web.draft(|d| d.next_step(has_wifi));
    let steps = Step::all(has_wifi);
    let position = |s: Step| steps.iter().position(|x| *x == s);
    (position(next) < position(step)).then(|| Redirect::to(next.path()).into_response())
}

async fn accounts_page(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
) -> Response {
    let Admitted { visit } = match web.admitted(&headers, &connection, None) {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    if let Some(earlier) = needs(&web, Step::Accounts) {
        return with_cookie(&visit, earlier);
    }
    page(
        &visit,
        &accounts_view(&web, &visit, String::new(), None, None).await,
    )
}

async fn account_added(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let Admitted { visit } = match web.admitted(&headers, &connection, Some(&form.csrf)) {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    if let Some(earlier) = needs(&web, Step::Accounts) {
        return with_cookie(&visit, earlier);
    }
    let (domain, taken) = web.draft(|d| {
        (
            d.domain().to_string(),
            d.accounts
                .iter()
                .map(|a| a.local.clone())
                .collect::<Vec<_>>(),
        )
    });
    if taken.len() >= WIZARD_ACCOUNTS {
        let error = format!(
            "The wizard takes {WIZARD_ACCOUNTS} people at most; add more later on the admin page."
        );
        return invalid(
            &visit,
            &accounts_view(&web, &visit, form.name, Some(error), None).await,
        );
    }
    let local = match draft::check_local_part(&form.name, &taken) {
        Ok(local) => local,
        Err(error) => {
            return invalid(
                &visit,
                &accounts_view(&web, &visit, form.name, Some(error), None).await,
            );
        }
    };
    let mut context: Vec<&str> = vec![local.as_str()];
    context.extend(domain.split('.'));
    let password_error =
        if let Err(weakness) = crate::auth::strength::check(&form.password, &context) {
            Some(weakness.to_string())
        } else if form.password != form.repeat {
            Some("The two passwords are not the same; type them again.".to_string())
        } else {
            None
        };
    if let Some(error) = password_error {
        return invalid(
            &visit,
            &accounts_view(&web, &visit, form.name, None, Some(error)).await,
        );
    }
    web.draft(|d| {
        d.accounts.push(NewAccount {
            local,
            password: Secret::new(form.password),
        })
    });
    with_cookie(&visit, Redirect::to(Step::Accounts.path()).into_response())
}

async fn account_removed(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let Admitted { visit } = match web.admitted(&headers, &connection, Some(&form.csrf)) {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    web.draft(|d| {
        let domain = d.domain().to_string();
        d.accounts
            .retain(|a| format!("{}@{domain}", a.local) != form.address);
    });
    with_cookie(&visit, Redirect::to(Step::Accounts.path()).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CsrfOnly {
    csrf: String,
}

async fn accounts_done(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Response {
    let Admitted { visit } = match web.admitted(&headers, &connection, Some(&form.csrf)) {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    // Someone must get mail here: a person added now, or the box's people from before.
    let someone =
        web.draft(|d| !d.accounts.is_empty()) || !existing_accounts(&web).await.is_empty();
    if someone {
        web.draft(|d| d.people_done = true);
    }
    with_cookie(&visit, web.onwards())
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

fn outgoing_view(
    web: &Web,
    visit: &Visit,
    form: &OutgoingForm,
    error: Option<String>,
    report: Option<ReportView>,
) -> pages::OutgoingPage {
    let password_kept = web.draft(
        |d| matches!(&d.outgoing, Some(Outgoing::Relay { relay, .. }) if relay.password.is_some()),
    );
    pages::OutgoingPage {
        frame: web.frame(visit, Some(Step::Outgoing)),
        relay: form.way != "direct",
        providers: &PROVIDERS,
        chosen_provider: form.relay.provider.clone(),
        host: form.relay.host.clone(),
        port: form.relay.port.clone(),
        tls: form.relay.tls.clone(),
        username: form.relay.username.clone(),
        password_kept,
        error,
        report,
    }
}

async fn outgoing_page(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
) -> Response {
    let Admitted { visit } = match web.admitted(&headers, &connection, None) {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    if let Some(earlier) = needs(&web, Step::Outgoing) {
        return with_cookie(&visit, earlier);
    }
    let form = web.draft(|d| match &d.outgoing {
        Some(Outgoing::Direct) => OutgoingForm {
            way: "direct".into(),
            ..OutgoingForm::default()
        },
        Some(Outgoing::Relay { provider, relay }) => OutgoingForm {
            way: "relay".into(),
            relay: RelayForm {
                provider: provider.unwrap_or_default().into(),
                host: relay.host.clone(),
                port: relay.port.to_string(),
                tls: match relay.tls {
                    crate::config::RelayTls::Tls => "tls".into(),
                    _ => "starttls".into(),
                },
                username: relay.username.clone().unwrap_or_default(),
                password: String::new(),
            },
            ..OutgoingForm::default()
        },
        None => OutgoingForm {
            way: "relay".into(),
            relay: RelayForm {
                port: "587".into(),
                tls: "starttls".into(),
                ..RelayForm::default()
            },
            ..OutgoingForm::default()
        },
    });
    page(&visit, &outgoing_view(&web, &visit, &form, None, None))
}

async fn outgoing_given(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<OutgoingForm>,
) -> Response {
    let Admitted { visit } = match web.admitted(&headers, &connection, Some(&form.csrf)) {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    if let Some(earlier) = needs(&web, Step::Outgoing) {
        return with_cookie(&visit, earlier);
    }
    if form.way == "direct" && form.action != "test" {
        web.draft(|d| d.outgoing = Some(Outgoing::Direct));
        return with_cookie(&visit, web.onwards());
    }
    let kept = web.draft(|d| match &d.outgoing {
        Some(Outgoing::Relay { relay, .. }) => Some(relay.clone()),
        _ => None,
    });
    let (provider, relay) = match draft::check_relay(&form.relay, kept.as_ref()) {
        Ok(checked) => checked,
        Err(error) => {
            return invalid(
                &visit,
                &outgoing_view(&web, &visit, &form, Some(error), None),
            );
        }
    };
    if form.action == "test" {
        let report = finish::test_relay(&web, &relay).await;
        // A tested relay is kept (with its password) so that "Next" need not type it again.
        web.draft(|d| {
            d.outgoing = Some(Outgoing::Relay {
                provider,
                relay: relay.clone(),
            })
        });
        return page(
            &visit,
            &outgoing_view(&web, &visit, &form, None, Some(report)),
        );
    }
    web.draft(|d| d.outgoing = Some(Outgoing::Relay { provider, relay }));
    with_cookie(&visit, web.onwards())
}
