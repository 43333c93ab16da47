//! Accounts' passwords: argon2id hashing with bounded concurrency, verification, and the
//! failed-login throttle shared by every protocol.

pub mod strength;
mod throttle;
mod verified;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::Semaphore;

use crate::limits::Limits;
use crate::secret::Secret;
use crate::store::{Store, StoreError};
pub use throttle::Throttle;
use verified::VerifiedLogins;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authentication failed")]
    Failed,
    #[error("too many failed logins; try again later")]
    Throttled,
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Argon2id with the memory cost from `Limits` (19 MiB by default: OWASP's minimum, and small
/// enough that `password_hash_concurrency` of them fit a 512 MB board), 2 passes, 1 lane.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    params: Params,
    hashing: Semaphore,
    throttle: Throttle,
    /// Right passwords presented again soon skip argon2; `None` if no key could be made.
    verified: Option<VerifiedLogins>,
    /// A hash of a random password, verified against when the account does not exist, so a
    /// failed login takes the same time whether or not the address is known.
    decoy: String,
    default_domain: String,
}

impl Authenticator {
    pub fn new(store: Store, limits: &Limits, default_domain: &str) -> Result<Self, AuthError> {
        let memory_kib = u32::try_from(limits.argon2_memory.0 / 1024).unwrap_or(u32::MAX);
        let params =
            Params::new(memory_kib, 2, 1, None).map_err(|e| AuthError::Hash(e.to_string()))?;
        let decoy = hash_with(&params, b"decoy password that no account has")?;
        Ok(Authenticator {
            inner: Arc::new(Inner {
                store,
                params,
                hashing: Semaphore::new(limits.password_hash_concurrency),
                throttle: Throttle::new(limits),
                verified: VerifiedLogins::new(),
                decoy,
                default_domain: default_domain.to_string(),
            }),
        })
    }

    /// The account name a login string means: lowercase, and a bare local part ("alice")
    /// is taken in the first local domain.
    pub fn account_name(&self, login: &str) -> String {
        let login = login.trim().to_ascii_lowercase();
        if login.contains('@') {
            login
        } else {
            format!("{login}@{}", self.inner.default_domain)
        }
    }

    pub async fn hash(&self, password: &Secret<String>) -> Result<String, AuthError> {
        let params = self.inner.params.clone();
        let password = password.expose().clone();
        self.hashing(move || hash_with(&params, password.as_bytes()))
            .await
    }

    /// Runs argon2 work on the blocking pool, at most `password_hash_concurrency` at once
    /// (each run holds `argon2_memory` of RAM).
    async fn hashing<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
    ) -> Result<T, AuthError> {
        let _permit = self
            .inner
            .hashing
            .acquire()
            .await
            .map_err(|_| AuthError::Hash("shutting down".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| AuthError::Hash(e.to_string()))?
    }

    /// Checks a login. Failures are delayed and counted per peer address and per account; past
    /// the limit, logins are refused without checking the password until the lockout ends.
    /// The attempt is reserved in the throttle before the password is verified, so attempts
    /// sent at once cannot all pass the check (see `throttle`). Returns the account name on
    /// success.
    pub async fn login(
        &self,
        login: &str,
        password: &Secret<String>,
        peer: IpAddr,
    ) -> Result<String, AuthError> {
        let account = self.account_name(login);
        let stored = self.inner.store.password_hash(&account).await?;
        let known = stored.is_some();
        // Unknown names are counted against the address only: the account table holds only
        // accounts that exist, so made-up names cannot flood it.
        let Some(attempt) = self
            .inner
            .throttle
            .begin(peer, known.then_some(account.as_str()))
            .await
        else {
            return Err(AuthError::Throttled);
        };
        // A right password verified a little while ago is taken without argon2 (still inside
        // the throttle's attempt, so a lockout holds); anything else pays the full price.
        let verified = self.inner.verified.as_ref();
        if let (Some(verified), Some(hash)) = (verified, &stored)
            && verified.holds(&account, password.expose().as_bytes(), hash, Instant::now())
        {
            attempt.succeeded();
            return Ok(account);
        }
        let hash = stored.unwrap_or_else(|| self.inner.decoy.clone());
        // An error here drops the attempt, which counts it as a failure: a check that could not
        // be made must not be a free guess.
        if self.verify(&hash, password).await? && known {
            if let Some(verified) = verified {
                verified.remember(
                    &account,
                    password.expose().as_bytes(),
                    &hash,
                    Instant::now(),
                );
            }
            attempt.succeeded();
            return Ok(account);
        }
        let delay = attempt.failed();
        tokio::time::sleep(delay).await;
        Err(AuthError::Failed)
    }

    async fn verify(&self, hash: &str, password: &Secret<String>) -> Result<bool, AuthError> {
        let hash = hash.to_string();
        let password = password.expose().clone();
        self.hashing(move || {
            let parsed = PasswordHash::new(&hash).map_err(|e| AuthError::Hash(e.to_string()))?;
            Ok(Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await
    }
}

fn hash_with(params: &Params, password: &[u8]) -> Result<String, AuthError> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}
