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
        let der = std::fs::read(&path).map_err(|e| file_error(&path, e))?;
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

/// What `letterbox dns-records` prints: zone-file lines for every local domain, and advice.
pub fn dns_records(config: &Config, dkim: &Dkim) -> String {
    let host = config.hostname.trim_end_matches('.');
    let dkim_txt = quoted_strings(&dkim.txt_record());
    let mut out =
        String::from("; Publish these records at your DNS provider (zone-file syntax).\n");
    for domain in &config.domains {
        out.push_str(&format!(
            "\n; {domain}\n\
             {domain}.\t\tMX\t10 {host}.\n\
             {domain}.\t\tTXT\t\"v=spf1 mx -all\"\n\
             {SELECTOR}._domainkey.{domain}.\tTXT\t{dkim_txt}\n\
             _dmarc.{domain}.\tTXT\t\"v=DMARC1; p=quarantine; adkim=r; aspf=r; rua=mailto:postmaster@{domain}\"\n"
        ));
        // RFC 6186 and RFC 8314 §5.1: where mail programs find the servers; and the names
        // Thunderbird (autoconfig) and Outlook (autodiscover) ask for their settings.
        let services = [
            ("_imaps._tcp", &config.listen.imaps),
            ("_imap._tcp", &config.listen.imap),
            ("_submissions._tcp", &config.listen.submissions),
            ("_submission._tcp", &config.listen.submission),
            ("_pop3s._tcp", &config.listen.pop3s),
        ];
        for (service, listen) in services {
            // Port 0 (a test's "any free port") is nothing a client could use.
            if let Some(address) = listen.first().filter(|a| a.port() != 0) {
                out.push_str(&format!(
                    "{service}.{domain}.\tSRV\t0 1 {} {host}.\n",
                    address.port()
                ));
            }
        }
        if !config.listen.web.is_empty() || !config.listen.web_tls.is_empty() {
            out.push_str(&format!(
                "autoconfig.{domain}.\tCNAME\t{host}.\nautodiscover.{domain}.\tCNAME\t{host}.\n"
            ));
        }
    }
    out.push_str(&format!(
        "\n; {host} needs an A (and AAAA, if you have IPv6) record with your public address:\n\
         ; {host}.\tA\t<your public IPv4 address>\n\
         ;\n\
         ; Reverse DNS (PTR): big providers distrust mail from an address whose PTR record\n\
         ; does not name {host} (and whose {host} does not point back). The PTR record belongs\n\
         ; to whoever owns the address, usually your ISP: ask them to set it, or send through\n\
         ; a smarthost ([outbound.relay]), which most home connections need anyway.\n"
    ));
    if let Some(relay) = &config.outbound.relay {
        out.push_str(&format!(
            "; Mail leaves through {}: add the SPF mechanism your provider documents\n\
             ; (e.g. \"v=spf1 mx include:<provider's SPF domain> -all\") so its servers may send\n\
             ; for your domains.\n",
            relay.host
        ));
    }
    out
}

/// A TXT value as quoted strings of at most 255 octets each (RFC 1035 §3.3.14).
fn quoted_strings(value: &str) -> String {
    value
        .as_bytes()
        .chunks(255)
        .map(|chunk| format!("\"{}\"", String::from_utf8_lossy(chunk)))
        .collect::<Vec<_>>()
        .join(" ")
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
    fn the_records_name_the_mail_services_for_clients() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::development();
        config.data_dir = dir.path().to_path_buf();
        config.hostname = "mail.smith.example".into();
        config.domains = vec!["smith.example".into()];
        let dkim = Dkim::load_or_create(&config).expect("key");
        let records = dns_records(&config, &dkim);
        for line in [
            "_imaps._tcp.smith.example.\tSRV\t0 1 2993 mail.smith.example.",
            "_submissions._tcp.smith.example.\tSRV\t0 1 2465 mail.smith.example.",
            "_submission._tcp.smith.example.\tSRV\t0 1 2587 mail.smith.example.",
            "autoconfig.smith.example.\tCNAME\tmail.smith.example.",
            "autodiscover.smith.example.\tCNAME\tmail.smith.example.",
        ] {
            assert!(records.lines().any(|l| l == line), "{line}\n{records}");
        }
        config.listen.imaps = vec!["127.0.0.1:0".parse().expect("address")];
        assert!(!dns_records(&config, &dkim).contains("_imaps._tcp"));
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
