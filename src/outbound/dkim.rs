//! DKIM signing (RFC 6376) of submitted mail, with an RSA-2048 key made at first start and
//! kept in `<data_dir>/dkim/<selector>.key` (PKCS#1 DER, mode 0600). Signing uses ring
//! through mail-auth; only key generation uses the pure-Rust `rsa` crate (ring cannot
//! generate RSA keys).
//!
//! The body is hashed as it streams into the spool (relaxed/relaxed canonicalization); only
//! the header section is held in memory, and only up to `submission::HEADER_SCAN`: a message
//! whose header section is longer is refused at submission, so what is signed always has the
//! one From: that was checked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer};

use crate::config::Config;

/// The DKIM selector: records are published at `letterbox._domainkey.<domain>`.
pub const SELECTOR: &str = "letterbox";
const KEY_BITS: usize = 2048;

/// Header fields signed (RFC 6376 §5.4.1's recommendations that a message may carry).
const SIGNED_HEADERS: [&str; 12] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("DKIM key: {0}")]
    Key(String),
}

/// One signer per local domain, all with the same key.
pub struct Dkim {
    signers: HashMap<String, DkimSigner<RsaKey<Sha256>, Done>>,
    public_key: Vec<u8>,
}

impl Dkim {
    /// Loads the key, making it first if there is none.
    pub fn load_or_create(config: &Config) -> Result<Dkim, DkimError> {
        let path = key_path(&config.data_dir);
        if !path.exists() {
            generate(&path)?;
        }
        Self::load_from(config, &path)
    }

    /// Loads the key if it has been made; for readers (the health checks) that must not race
    /// the daemon into making two.
    pub fn load(config: &Config) -> Result<Option<Dkim>, DkimError> {
        let path = key_path(&config.data_dir);
        if !path.exists() {
            return Ok(None);
        }
        Self::load_from(config, &path).map(Some)
    }

    fn load_from(config: &Config, path: &Path) -> Result<Dkim, DkimError> {
        let der = std::fs::read(path).map_err(|e| file_error(path, e))?;
        let mut signers = HashMap::new();
        let mut public_key = Vec::new();
        for domain in &config.domains {
            let key = RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs1(
                PrivatePkcs1KeyDer::from(der.clone()),
            ))
            .map_err(|e| DkimError::Key(e.to_string()))?;
            public_key = key.public_key();
            let signer = DkimSigner::from_key(key)
                .domain(domain.clone())
                .selector(SELECTOR)
                .headers(SIGNED_HEADERS)
                .header_canonicalization(Canonicalization::Relaxed)
                .body_canonicalization(Canonicalization::Relaxed);
            signers.insert(domain.to_ascii_lowercase(), signer);
        }
        Ok(Dkim {
            signers,
            public_key,
        })
    }

    /// Starts signing a message sent as `sender` (its domain picks the signing domain; a
    /// sender outside the local domains gets no signature).
    pub fn start(&self, sender: &str) -> Option<Signing<'_>> {
        let domain = sender.rsplit_once('@')?.1.to_ascii_lowercase();
        let signer = self.signers.get(&domain)?;
        Some(Signing {
            stream: signer.sign_streaming(),
        })
    }

    /// The TXT record to publish at `letterbox._domainkey.<domain>`.
    pub fn txt_record(&self) -> String {
        format!("v=DKIM1; k=rsa; p={}", STANDARD.encode(&self.public_key))
    }
}

/// A signature in progress: feed every byte of the message, then `finish`.
pub struct Signing<'a> {
    stream: mail_auth::dkim::streaming::DkimSigningStream<'a, RsaKey<Sha256>>,
}

impl Signing<'_> {
    pub fn write(&mut self, bytes: &[u8]) {
        self.stream.write(bytes);
    }

    /// The `DKIM-Signature:` header field with its CRLF, or `None` if signing failed.
    pub fn finish(self) -> Option<String> {
        match self.stream.finish() {
            Ok(signature) => Some(signature.to_header()),
            Err(error) => {
                tracing::warn!(%error, "DKIM signing failed; sending unsigned");
                None
            }
        }
    }
}

pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dkim").join(format!("{SELECTOR}.key"))
}

fn file_error(path: &Path, reason: impl ToString) -> DkimError {
    DkimError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Makes a key and writes it via a temporary file and rename, so a crash never leaves half.
fn generate(path: &Path) -> Result<(), DkimError> {
    tracing::info!(path = %path.display(), "making the DKIM key");
    let pair = mail_auth::dkim::generate::DkimKeyPair::generate_rsa(KEY_BITS)
        .map_err(|e| DkimError::Key(e.to_string()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
    }
    crate::tls::write_file(path, pair.private_key(), 0o600).map_err(|e| match e {
        crate::tls::TlsError::File { path, reason } => DkimError::File { path, reason },
        other => DkimError::Key(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_made_once_and_signs_a_streamed_message() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::development();
        config.data_dir = dir.path().to_path_buf();
        let dkim = Dkim::load_or_create(&config).expect("key");
        let first = std::fs::read(key_path(dir.path())).expect("key file");
        let again = Dkim::load_or_create(&config).expect("key again");
        assert_eq!(std::fs::read(key_path(dir.path())).expect("key"), first);
        assert_eq!(dkim.txt_record(), again.txt_record());
        assert!(dkim.start("someone@elsewhere.example").is_none());
        let mut signing = dkim.start("alice@home.test").expect("local domain");
        signing.write(b"From: alice@home.test\r\nSubject: hi\r\n\r\nline one\r\n");
        signing.write(b"line two\r\n");
        let header = signing.finish().expect("signature");
        assert!(header.starts_with("DKIM-Signature: "), "{header}");
        assert!(
            header.contains("d=home.test") && header.contains("s=letterbox"),
            "{header}"
        );
        assert!(header.ends_with("\r\n"));
    }
}
