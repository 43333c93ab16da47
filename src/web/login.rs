//! Logging in to the admin page and to each person's own page.
//!
//! A password crosses the network only over HTTPS: the login page and everything behind it
//! redirect a plain-HTTP request to the HTTPS listener (`[listen] web_tls`), and answer 403 when
//! there is none. Logins go through the same `Authenticator` (and its throttle: lockouts per
//! address and per account) as IMAP, POP3 and submission. A login gets a session: a random
//! cookie (`Secure`, `HttpOnly`, `SameSite=Strict`), kept in memory, ended by "Log out", by
//! `WEB_LOGIN_IDLE` without a request or after `WEB_LOGIN_LONGEST`; each session has its own
//! CSRF token. The login form itself is guarded by a double-submit token (a cookie and a hidden
//! field that must match), since there is no session yet. Whether an account is an
//! administrator is read from the store on every request, so taking the flag away takes effect
//! at once.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::pages::{self, Frame};
use super::{Connection, Web};
use crate::auth::AuthError;
use crate::limits::{WEB_LOGIN_IDLE, WEB_LOGIN_LONGEST, WEB_LOGIN_SESSIONS};
use crate::secret::{Secret, random_bytes, same_bytes};

const SESSION_COOKIE: &str = "letterbox_session";
const LOGIN_COOKIE: &str = "letterbox_login";

/// The logged-in people's sessions.
#[derive(Default)]
pub(super) struct People {
    /// Oldest first.
    sessions: Vec<PersonSession>,
}

struct PersonSession {
    id: String,
    account: String,
    csrf: String,
    /// The account's password hash when the session began (or last changed it): a session
    /// ends when the password changes by any other way (`letterbox user passwd` too).
    password: String,
    created: Instant,
    last_used: Instant,
}

/// A request from a logged-in person.
pub(super) struct Signed {
    pub account: String,
    pub administrator: bool,
    pub csrf: String,
}

impl Signed {
    pub(super) fn form_is_ours(&self, csrf: &str) -> bool {
        !csrf.is_empty() && same_bytes(csrf.as_bytes(), self.csrf.as_bytes())
    }
}

fn token() -> Option<String> {
    random_bytes::<32>().ok().map(|b| URL_SAFE_NO_PAD.encode(b))
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.to_string())
        })
}

fn set_cookie(name: &str, value: &str, max_age: Option<u64>) -> Option<HeaderValue> {
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Secure{age}"
    ))
    .ok()
}

pub(super) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/login", get(login_page).post(login_given))
        .route("/logout", post(logout))
}

impl Web {
    /// The HTTPS address of `path` for a request that came over plain HTTP, if HTTPS listens.
    fn https_of(&self, headers: &HeaderMap, connection: &Connection, path: &str) -> Option<String> {
        let port = self.config().listen.web_tls.first()?.port();
        // The name the browser used, if it is one (a name or an address, nothing else goes
        // into the Location); otherwise the address it reached.
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| match h.strip_prefix('[') {
                Some(v6) => format!("[{}]", v6.split(']').next().unwrap_or_default()),
                None => h.rsplit_once(':').map_or(h, |(name, _)| name).to_string(),
            })
            .filter(|host| {
                let name = host.trim_start_matches('[').trim_end_matches(']');
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
            })
            .unwrap_or_else(|| match connection.local.ip() {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            });
        Some(match port {
            443 => format!("https://{host}{path}"),
            port => format!("https://{host}:{port}{path}"),
        })
    }

    /// Plain HTTP is sent to HTTPS before any password or session cookie crosses it.
    pub(super) fn needs_https(
        &self,
        headers: &HeaderMap,
        connection: &Connection,
        path: &str,
    ) -> Option<Response> {
        if connection.tls {
            return None;
        }
        Some(match self.https_of(headers, connection, path) {
            Some(url) => Redirect::to(&url).into_response(),
            None => pages::message_with(
                StatusCode::FORBIDDEN,
                &self.config().hostname,
                "HTTPS is off",
                vec![
                    "Logging in needs HTTPS, so that passwords never cross the network in the \
                     clear. Turn on [listen] web_tls in the config."
                        .into(),
                ],
                None,
            ),
        })
    }

    /// The logged-in person of this request, or the response that sends them to log in.
    pub(super) async fn person(
        &self,
        headers: &HeaderMap,
        connection: &Connection,
        path: &str,
    ) -> Result<Signed, Response> {
        if let Some(response) = self.needs_https(headers, connection, path) {
            return Err(response);
        }
        let found = cookie(headers, SESSION_COOKIE).and_then(|id| {
            let mut people = self.people();
            let now = Instant::now();
            people.sessions.retain(|s| {
                now.duration_since(s.last_used) < WEB_LOGIN_IDLE
                    && now.duration_since(s.created) < WEB_LOGIN_LONGEST
            });
            let session = people
                .sessions
                .iter_mut()
                .find(|s| same_bytes(s.id.as_bytes(), id.as_bytes()))?;
            session.last_used = now;
            Some((
                session.account.clone(),
                session.csrf.clone(),
                session.password.clone(),
            ))
        });
        let Some((account, csrf, password)) = found else {
            let next = urlencode(path);
            return Err(Redirect::to(&format!("/login?next={next}")).into_response());
        };
        // An account deleted meanwhile ends its sessions, and so does a password changed
        // since the session began. Two point reads, not the account list (which sums every
        // message's size).
        let found = match self.store.password_hash(&account).await {
            Ok(hash) => match hash {
                Some(hash) if same_bytes(hash.as_bytes(), password.as_bytes()) => {
                    self.store.is_administrator(&account).await.map(Some)
                }
                Some(_) => {
                    self.people().sessions.retain(|s| s.csrf != csrf);
                    return Err(Redirect::to("/login").into_response());
                }
                None => Ok(None),
            },
            Err(error) => Err(error),
        };
        let administrator = match found {
            Ok(Some(administrator)) => administrator,
            Ok(None) => {
                self.people().sessions.retain(|s| s.account != account);
                return Err(Redirect::to("/login").into_response());
            }
            Err(error) => {
                tracing::error!(%error, "web: the accounts cannot be read");
                return Err(pages::message_with(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &self.config().hostname,
                    "Not available",
                    vec!["The accounts cannot be read right now; try again.".into()],
                    None,
                ));
            }
        };
        Ok(Signed {
            account,
            administrator,
            csrf,
        })
    }

    /// Like `person`, but only for administrators; others get 403.
    pub(super) async fn administrator(
        &self,
        headers: &HeaderMap,
        connection: &Connection,
        path: &str,
    ) -> Result<Signed, Response> {
        let signed = self.person(headers, connection, path).await?;
        if !signed.administrator {
            return Err(pages::message_with(
                StatusCode::FORBIDDEN,
                &self.config().hostname,
                "For administrators only",
                vec![format!(
                    "{} may not use the admin page. Ask the person who looks after the box.",
                    signed.account
                )],
                Some(("/me".into(), "Your own page".into())),
            ));
        }
        Ok(signed)
    }

    fn people(&self) -> std::sync::MutexGuard<'_, People> {
        self.sessions
            .people
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Ends the sessions of `account` (after a delete).
    pub(super) fn end_sessions(&self, account: &str) {
        self.people().sessions.retain(|s| s.account != account);
    }

    /// After `account`'s password was changed to `hash` from a page: its sessions end, but
    /// for `keep` (the one that changed it, if it is that account's own), which goes on under
    /// the new password.
    pub(super) fn password_changed(&self, account: &str, hash: &str, keep: &str) {
        let mut people = self.people();
        people
            .sessions
            .retain(|s| s.account != account || s.csrf == keep);
        for session in people.sessions.iter_mut().filter(|s| s.account == account) {
            session.password = hash.to_string();
        }
    }

    /// A frame for a logged-in page.
    pub(super) fn signed_frame(&self, signed: &Signed, title: &str) -> Frame {
        Frame {
            title: title.into(),
            hostname: self.config().hostname.clone(),
            csrf: signed.csrf.clone(),
            progress: None,
        }
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Where to go after logging in: only a path on this site (never another host).
fn safe_next(next: &str) -> Option<&str> {
    // A path on this box, in the form the pages' own links use (printable ASCII): it goes into
    // a Location header.
    (next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.bytes().all(|b| b.is_ascii_graphic()))
    .then_some(next)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NextQuery {
    next: String,
}

async fn login_page(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> Response {
    // Over plain HTTP, to the same form over HTTPS, with the page it leads to.
    let here = match safe_next(&query.next) {
        Some(next) => format!("/login?next={}", urlencode(next)),
        None => "/login".to_string(),
    };
    if let Some(response) = web.needs_https(&headers, &connection, &here) {
        return response;
    }
    login_form(&web, &query.next, "", None, StatusCode::OK)
}

/// The login form; `address` is what was typed before (kept after a wrong password).
fn login_form(
    web: &Web,
    next: &str,
    address: &str,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let Some(token) = token() else {
        return pages::message_with(
            StatusCode::SERVICE_UNAVAILABLE,
            &web.config().hostname,
            "Not available",
            vec!["The box's random number source failed.".into()],
            None,
        );
    };
    let page = pages::LoginPage {
        frame: Frame {
            title: "Log in".into(),
            hostname: web.config().hostname.clone(),
            csrf: token.clone(),
            progress: None,
        },
        next: safe_next(next).unwrap_or_default().to_string(),
        address: address.to_string(),
        error,
    };
    let mut response = pages::render(status, &page);
    if let Some(cookie) = set_cookie(LOGIN_COOKIE, &token, None) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginForm {
    csrf: String,
    address: String,
    password: String,
    next: String,
}

async fn login_given(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if let Some(response) = web.needs_https(&headers, &connection, "/login") {
        return response;
    }
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if form.csrf.is_empty() || !same_bytes(form.csrf.as_bytes(), expected.as_bytes()) {
        return login_form(
            &web,
            &form.next,
            &form.address,
            Some("The form expired; type the address and password again.".into()),
            StatusCode::FORBIDDEN,
        );
    }
    let password = Secret::new(form.password);
    let account = match web
        .auth
        .login(&form.address, &password, connection.peer.ip())
        .await
    {
        Ok(account) => account,
        Err(AuthError::Throttled) => {
            return login_form(
                &web,
                &form.next,
                &form.address,
                Some("Too many failed logins. Wait a few minutes, then try again.".into()),
                StatusCode::TOO_MANY_REQUESTS,
            );
        }
        Err(AuthError::Failed) => {
            return login_form(
                &web,
                &form.next,
                &form.address,
                Some("The address or the password is not right.".into()),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(error) => {
            tracing::error!(%error, "web: a login could not be checked");
            return login_form(
                &web,
                &form.next,
                &form.address,
                Some("The login could not be checked; try again.".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
    };
    let (Some(id), Some(csrf)) = (token(), token()) else {
        return login_form(&web, &form.next, "", None, StatusCode::SERVICE_UNAVAILABLE);
    };
    let Ok(Some(password)) = web.store.password_hash(&account).await else {
        return login_form(&web, &form.next, "", None, StatusCode::SERVICE_UNAVAILABLE);
    };
    {
        let mut people = web.people();
        if people.sessions.len() >= WEB_LOGIN_SESSIONS {
            people.sessions.remove(0);
        }
        let now = Instant::now();
        people.sessions.push(PersonSession {
            id: id.clone(),
            account: account.clone(),
            csrf,
            password,
            created: now,
            last_used: now,
        });
    }
    tracing::info!(%account, peer = %connection.peer, "web: logged in");
    let administrator = web.store.is_administrator(&account).await.unwrap_or(false);
    let next = safe_next(&form.next).unwrap_or(if administrator { "/admin" } else { "/me" });
    let mut response = Redirect::to(next).into_response();
    let headers = response.headers_mut();
    if let Some(cookie) = set_cookie(SESSION_COOKIE, &id, None) {
        headers.append(header::SET_COOKIE, cookie);
    }
    if let Some(cookie) = set_cookie(LOGIN_COOKIE, "", Some(0)) {
        headers.append(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let signed = match web.person(&headers, &connection, "/me").await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    if !signed.form_is_ours(&form.csrf) {
        return StatusCode::FORBIDDEN.into_response();
    }
    web.people().sessions.retain(|s| s.csrf != signed.csrf);
    let mut response = Redirect::to("/login").into_response();
    if let Some(cookie) = set_cookie(SESSION_COOKIE, "", Some(0)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_login_only_a_path_on_this_site() {
        assert_eq!(safe_next("/admin/queue"), Some("/admin/queue"));
        for bad in [
            "",
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "admin",
            "/admin/qu\u{e9}ue",
            "/admin\r\nSet-Cookie: x=1",
            "/admin queue",
        ] {
            assert_eq!(safe_next(bad), None, "{bad}");
        }
        assert_eq!(urlencode("/admin/queue?x=1"), "/admin/queue%3Fx%3D1");
    }

    #[test]
    fn session_cookies_are_secure_strict_and_http_only() {
        let value = set_cookie(SESSION_COOKIE, "abc", None).expect("value");
        assert_eq!(
            value.to_str().expect("ascii"),
            "letterbox_session=abc; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("letterbox_setup=x; letterbox_session=abc"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), None);
    }
}
