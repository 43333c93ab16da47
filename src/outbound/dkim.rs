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
            body: RelaxedBody::default(),
            out: Vec::new(),
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
    body: RelaxedBody,
    out: Vec<u8>,
}

impl Signing<'_> {
    pub fn write(&mut self, bytes: &[u8]) {
        self.out.clear();
        self.body.filter(bytes, &mut self.out);
        self.stream.write(&self.out);
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

/// Rewrites a message's body into one with the same relaxed canonical form (RFC 6376
/// §3.4.4) that mail-auth 0.13 canonicalizes right. Its relaxed body canonicalization keeps
/// the line breaks around a whitespace-only line at the end of the body (`a\r\n \r\n`
/// hashes as `a\r\n\r\n`, not `a\r\n`), so signatures of such mail failed everywhere and
/// valid signatures on it failed here. Whitespace before a line break is what the relaxed
/// form drops, and a run of it before other text is one space there: writing it so leaves
/// mail-auth nothing to get wrong. (Later mail-auth versions fix this but no longer build
/// with ring.) The header section passes unchanged.
#[derive(Default)]
pub(crate) struct RelaxedBody {
    /// The header section has ended (a CRLF CRLF, or LF LF, has gone by).
    in_body: bool,
    /// The last octets of the header section seen, to find its end across writes.
    recent: [u8; 3],
    /// Whitespace seen and not yet written: one space, if text follows on its line.
    space: bool,
}

impl RelaxedBody {
    pub(crate) fn filter(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let mut rest = bytes;
        while !self.in_body {
            let Some((&byte, tail)) = rest.split_first() else {
                return;
            };
            out.push(byte);
            rest = tail;
            let [a, b, c] = self.recent;
            self.in_body = [a, b, c, byte] == *b"\r\n\r\n" || [c, byte] == *b"\n\n";
            self.recent = [b, c, byte];
        }
        for &byte in rest {
            match byte {
                b' ' | b'\t' => self.space = true,
                b'\r' | b'\n' => {
                    self.space = false;
                    out.push(byte);
                }
                _ => {
                    if std::mem::take(&mut self.space) {
                        out.push(b' ');
                    }
                    out.push(byte);
                }
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

    fn filtered(writes: &[&[u8]]) -> Vec<u8> {
        let mut body = RelaxedBody::default();
        let mut out = Vec::new();
        for bytes in writes {
            body.filter(bytes, &mut out);
        }
        out
    }

    #[test]
    fn the_relaxed_body_keeps_its_canonical_form_and_the_header_section_is_untouched() {
        let head: &[u8] = b"Subject:  two  spaces \r\n\tfolded \r\n\r\n";
        let cases: [(&[u8], &[u8]); 5] = [
            (b"a\r\n \r\n", b"a\r\n\r\n"),
            (b"a  \t b \r\n\t\r\n  \r\n", b"a b\r\n\r\n\r\n"),
            (b"  lead\r\nx\t\r\n", b" lead\r\nx\r\n"),
            (b" \r\n", b"\r\n"),
            (b"", b""),
        ];
        for (body, want) in cases {
            let whole = [head, body].concat();
            let mut expected = head.to_vec();
            expected.extend_from_slice(want);
            assert_eq!(filtered(&[&whole]), expected, "{body:?}");
            // Split anywhere, even inside the blank line that ends the header section.
            for cut in 1..whole.len() {
                assert_eq!(
                    filtered(&[&whole[..cut], &whole[cut..]]),
                    expected,
                    "{body:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn a_body_ending_in_a_whitespace_line_is_hashed_as_rfc_6376_says() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::development();
        config.data_dir = dir.path().to_path_buf();
        let dkim = Dkim::load_or_create(&config).expect("key");
        let mut signing = dkim.start("alice@home.test").expect("local domain");
        signing.write(b"From: alice@home.test\r\nSubject: hi\r\n\r\nline  one \r\n");
        signing.write(b"\t\r\n \r\n");
        let header = signing.finish().expect("signature");
        // RFC 6376 §3.4.4: "line one\r\n", its trailing whitespace and empty lines gone.
        let digest = ring::digest::digest(&ring::digest::SHA256, b"line one\r\n");
        let unfolded: String = header.split_whitespace().collect();
        assert!(
            unfolded.contains(&format!("bh={};", STANDARD.encode(digest.as_ref()))),
            "{header}"
        );
    }

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
