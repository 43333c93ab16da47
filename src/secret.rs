//! `Secret<T>`: a value (password, AUTH payload) that never shows in `Debug` output or logs.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The hidden value; call sites that use it are the ones to review.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Secrets come from the config and settings files like any other string.
impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Secret<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Secret)
    }
}

/// For `#[serde(serialize_with)]` on a secret shown to people (`letterbox config show`):
/// only whether it is set, never the value.
pub fn shown_as_set<T, S: serde::Serializer>(
    secret: &Option<Secret<T>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => serializer.serialize_str("(set)"),
        None => serializer.serialize_none(),
    }
}

/// The system's random source failed (no entropy yet is the only known cause).
#[derive(Debug, thiserror::Error)]
#[error("the system's random number source failed")]
pub struct RandomError;

/// `N` bytes from the operating system's secure random source (ring's, through rustls, which
/// is linked anyway), for session identifiers, CSRF tokens and one-time codes.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut bytes = [0u8; N];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| RandomError)?;
    Ok(bytes)
}

/// Compares two secrets in time that depends only on their lengths.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn random_bytes_differ_and_compare() {
        let a = random_bytes::<16>().expect("random");
        let b = random_bytes::<16>().expect("random");
        assert_ne!(a, b);
        assert!(same_bytes(&a, &a));
        assert!(!same_bytes(&a, &b));
        assert!(!same_bytes(&a, &a[..15]));
    }
}
