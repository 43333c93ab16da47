//! Who may use the setup wizard: browser sessions, CSRF tokens and the one-time code.
//!
//! A visit to any setup page gets a session (a random cookie, HttpOnly, SameSite=Strict, Secure
//! over TLS) with its own CSRF token, which every form carries and every POST must return.
//! A session is *admitted* to the wizard when its connection came over the setup hotspot (the
//! WPA2 passphrase already kept strangers out) or when it gave the one-time code the panel
//! shows; giving the code replaces the session's identifier, so a cookie planted before cannot
//! ride on it. Wrong codes are counted for the whole box, not per address: after
//! `SETUP_CODE_FREE_GUESSES` each further guess waits, doubling, and no code is checked while
//! the wait lasts.
//!
//! All of it belongs to one setup mode: the state remembers the code of the setup mode it was
//! made in, and a new code (setup mode left and entered again) clears the sessions, the count
//! and the wizard's draft.

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::draft::Draft;
use super::{Connection, Web};
use crate::limits::{
    SETUP_CODE_FIRST_WAIT, SETUP_CODE_FREE_GUESSES, SETUP_CODE_LONGEST_WAIT, WEB_SETUP_SESSIONS,
};
use crate::secret::{RandomError, random_bytes, same_bytes};

const COOKIE: &str = "letterbox_setup";

#[derive(Default)]
pub(super) struct SetupState {
    /// The one-time code of the setup mode this state belongs to.
    epoch: Option<String>,
    /// Oldest first.
    sessions: Vec<Session>,
    wrong_codes: u32,
    wait_until: Option<Instant>,
    pub draft: Draft,
}

struct Session {
    id: String,
    csrf: String,
    admitted: bool,
}

/// One request's session, as the handlers see it.
pub(super) struct Visit {
    id: String,
    pub csrf: String,
    pub admitted: bool,
    /// A new session (or a new identifier) to send back.
    pub set_cookie: Option<HeaderValue>,
}

/// What a code attempt came to.
pub(super) enum CodeOutcome {
    Admitted,
    Wrong,
    /// Too many wrong codes: try again after this long (this attempt was not checked).
    Wait(Duration),
    /// The box has no code (its random source failed); only the hotspot admits.
    NoCode,
}

fn token() -> Result<String, RandomError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

fn cookie_value(id: &str, tls: bool) -> Option<HeaderValue> {
    let secure = if tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{secure}"
    ))
    .ok()
}

fn cookie_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// A code as typed: case and the spaces or dashes a person adds do not matter.
fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

impl SetupState {
    /// Starts afresh when `code` belongs to a new setup mode.
    fn follow(&mut self, code: Option<&String>) {
        if self.epoch.as_ref() != code {
            *self = SetupState {
                epoch: code.cloned(),
                ..SetupState::default()
            };
        }
    }

    fn session(&mut self, id: &str) -> Option<&mut Session> {
        self.sessions
            .iter_mut()
            .find(|s| same_bytes(s.id.as_bytes(), id.as_bytes()))
    }

    fn open(&mut self, admitted: bool) -> Result<&mut Session, RandomError> {
        if self.sessions.len() >= WEB_SETUP_SESSIONS {
            // The oldest session that never got in goes first; only then the oldest at all.
            let index = self.sessions.iter().position(|s| !s.admitted).unwrap_or(0);
            self.sessions.remove(index);
        }
        self.sessions.push(Session {
            id: token()?,
            csrf: token()?,
            admitted,
        });
        let last = self.sessions.len() - 1;
        Ok(&mut self.sessions[last])
    }
}

impl Web {
    /// The session of this request, opened if it has none (or an old one).
    pub(super) fn visit(
        &self,
        headers: &HeaderMap,
        connection: &Connection,
    ) -> Result<Visit, RandomError> {
        let code = self
            .status
            .borrow()
            .setup
            .as_ref()
            .and_then(|s| s.code.clone());
        let over_hotspot = self.network.hotspot_address() == Some(connection.local.ip());
        let mut state = self.lock();
        state.follow(code.as_ref());
        if let Some(id) = cookie_of(headers)
            && let Some(session) = state.session(id)
        {
            session.admitted |= over_hotspot;
            return Ok(Visit {
                id: session.id.clone(),
                csrf: session.csrf.clone(),
                admitted: session.admitted,
                set_cookie: None,
            });
        }
        let session = state.open(over_hotspot)?;
        Ok(Visit {
            id: session.id.clone(),
            csrf: session.csrf.clone(),
            admitted: session.admitted,
            set_cookie: cookie_value(&session.id, connection.tls),
        })
    }

    /// Checks a typed one-time code for `visit`'s session; on success the session is admitted
    /// under a new identifier, set in `visit.set_cookie`.
    pub(super) fn try_code(
        &self,
        visit: &mut Visit,
        typed: &str,
        connection: &Connection,
    ) -> Result<CodeOutcome, RandomError> {
        let code = self
            .status
            .borrow()
            .setup
            .as_ref()
            .and_then(|s| s.code.clone());
        let mut state = self.lock();
        state.follow(code.as_ref());
        let Some(code) = code else {
            return Ok(CodeOutcome::NoCode);
        };
        let now = Instant::now();
        if let Some(until) = state.wait_until
            && until > now
        {
            return Ok(CodeOutcome::Wait(until - now));
        }
        if !same_bytes(normalise(typed).as_bytes(), code.as_bytes()) {
            state.wrong_codes += 1;
            tracing::warn!(
                peer = %connection.peer,
                wrong = state.wrong_codes,
                "setup page: a wrong one-time code"
            );
            if let Some(over) = state.wrong_codes.checked_sub(SETUP_CODE_FREE_GUESSES) {
                let wait = SETUP_CODE_FIRST_WAIT
                    .saturating_mul(2u32.saturating_pow(over.min(16)))
                    .min(SETUP_CODE_LONGEST_WAIT);
                state.wait_until = Some(now + wait);
            }
            return Ok(CodeOutcome::Wrong);
        }
        state.wrong_codes = 0;
        state.wait_until = None;
        let old = visit.id.clone();
        if let Some(index) = state
            .sessions
            .iter()
            .position(|s| same_bytes(s.id.as_bytes(), old.as_bytes()))
        {
            state.sessions.remove(index);
        }
        let session = state.open(true)?;
        visit.id = session.id.clone();
        visit.csrf = session.csrf.clone();
        visit.admitted = true;
        visit.set_cookie = cookie_value(&session.id, connection.tls);
        tracing::info!(peer = %connection.peer, "setup page: the one-time code was given");
        Ok(CodeOutcome::Admitted)
    }

    /// The wizard's draft, for a short synchronous look or change.
    pub(super) fn draft<R>(&self, f: impl FnOnce(&mut Draft) -> R) -> R {
        f(&mut self.lock().draft)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SetupState> {
        // A handler that panicked while holding the lock left the state whole (each change is
        // a few assignments); go on with it.
        self.sessions
            .setup
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

impl Visit {
    /// Whether a submitted form's token is this session's.
    pub(super) fn form_is_ours(&self, csrf: &str) -> bool {
        !csrf.is_empty() && same_bytes(csrf.as_bytes(), self.csrf.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_code_ignores_case_spaces_and_dashes() {
        assert_eq!(normalise(" abcd-efgh "), "ABCDEFGH");
        assert_eq!(normalise("AB CD EF GH"), "ABCDEFGH");
    }

    #[test]
    fn the_cookie_is_found_among_others_and_is_strict() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; letterbox_setup=xyz; b=2"),
        );
        assert_eq!(cookie_of(&headers), Some("xyz"));
        let value = cookie_value("xyz", true).expect("value");
        assert_eq!(
            value.to_str().expect("ascii"),
            "letterbox_setup=xyz; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
        let plain = cookie_value("xyz", false).expect("value");
        assert!(!plain.to_str().expect("ascii").contains("Secure"));
    }

    #[test]
    fn a_full_table_pushes_out_a_session_that_never_got_in() {
        let mut state = SetupState::default();
        state.follow(Some(&"CODE".to_string()));
        let admitted = state.open(true).expect("random").id.clone();
        for _ in 0..WEB_SETUP_SESSIONS + 5 {
            state.open(false).expect("random");
        }
        assert_eq!(state.sessions.len(), WEB_SETUP_SESSIONS);
        assert!(state.session(&admitted).is_some());
        // A new setup mode forgets everything.
        state.follow(Some(&"OTHER".to_string()));
        assert!(state.sessions.is_empty());
        assert!(state.session(&admitted).is_none());
    }
}
