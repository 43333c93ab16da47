//! A certificate and key uploaded on the setup page: checked before anything is written (the
//! PEM parses, the key is one rustls can use and belongs to the certificate, the certificate
//! names the host and is valid now), then installed under `<data_dir>/tls/` for
//! `settings.tls`. Each refusal is one sentence a person can act on; none repeats the key.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::{TlsError, file_error, validity, write_file};
use crate::config::TlsFiles;

/// What the summary page says about an accepted certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    /// The DNS names of the leaf (its subjectAltName), wildcards included.
    pub names: Vec<String>,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// Certificates in the file, the leaf included.
    pub chain_length: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateProblem {
    #[error(
        "The certificate file holds no PEM certificate (it should start with -----BEGIN CERTIFICATE-----)."
    )]
    NoCertificate,
    #[error("The key file holds no PEM private key (PKCS#8, RSA or EC).")]
    NoKey,
    #[error("This kind of private key is not supported; use an RSA, ECDSA or Ed25519 key.")]
    UnsupportedKey,
    #[error(
        "The first certificate in the file could not be read; put the server's own certificate first."
    )]
    Unreadable,
    #[error("The private key does not belong to this certificate.")]
    KeyMismatch,
    #[error("{0:?} is not a host name a certificate can be for.")]
    BadHostname(String),
    #[error("The certificate is not valid for {hostname} (it is for {names}).")]
    WrongName { hostname: String, names: String },
    #[error("The certificate expired on {0}; upload a renewed one.")]
    Expired(String),
    #[error("The certificate is valid only from {0} on; check the box's clock or wait until then.")]
    NotYetValid(String),
}

/// Checks an uploaded certificate (chain allowed, leaf first) and key for `hostname` at `now`
/// (Unix seconds).
pub fn check_upload(
    cert_pem: &[u8],
    key_pem: &[u8],
    hostname: &str,
    now: i64,
) -> Result<CertificateSummary, CertificateProblem> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| CertificateProblem::NoCertificate)?;
    let Some(leaf_der) = chain.first().cloned() else {
        return Err(CertificateProblem::NoCertificate);
    };
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| CertificateProblem::NoKey)?;
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|_| CertificateProblem::UnsupportedKey)?;
    let leaf =
        webpki::EndEntityCert::try_from(&leaf_der).map_err(|_| CertificateProblem::Unreadable)?;
    let names: Vec<String> = leaf.valid_dns_names().map(str::to_string).collect();
    let chain_length = chain.len();
    // keys_match compares the key's SubjectPublicKeyInfo with the leaf's.
    rustls::sign::CertifiedKey::new(chain, signing_key)
        .keys_match()
        .map_err(|_| CertificateProblem::KeyMismatch)?;
    let name = ServerName::try_from(hostname)
        .map_err(|_| CertificateProblem::BadHostname(hostname.to_string()))?;
    if leaf.verify_is_valid_for_subject_name(&name).is_err() {
        return Err(CertificateProblem::WrongName {
            hostname: hostname.to_string(),
            names: if names.is_empty() {
                "no host name".to_string()
            } else {
                names.join(", ")
            },
        });
    }
    let validity = validity(&leaf_der).ok_or(CertificateProblem::Unreadable)?;
    if now < validity.not_before {
        return Err(CertificateProblem::NotYetValid(date(validity.not_before)));
    }
    if now > validity.not_after {
        return Err(CertificateProblem::Expired(date(validity.not_after)));
    }
    Ok(CertificateSummary {
        names,
        not_before: validity.not_before,
        not_after: validity.not_after,
        chain_length,
    })
}

/// Writes a checked upload to `<data_dir>/tls/uploaded-cert.pem` and `uploaded-key.pem` (the
/// key readable by the owner only), each atomically, and returns the paths for `settings.tls`.
pub fn install_upload(
    data_dir: &Path,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<TlsFiles, TlsError> {
    let dir = data_dir.join("tls");
    std::fs::create_dir_all(&dir).map_err(|e| file_error(&dir, e))?;
    let files = TlsFiles {
        cert: dir.join("uploaded-cert.pem"),
        key: dir.join("uploaded-key.pem"),
    };
    // The key first: a crash in between leaves the old certificate with a key nobody uses,
    // never a new certificate without its key.
    write_file(&files.key, key_pem, 0o600)?;
    write_file(&files.cert, cert_pem, 0o644)?;
    Ok(files)
}

/// `2026-12-06` (UTC) for Unix seconds.
pub fn date(unix: i64) -> String {
    // H. Hinnant's civil_from_days.
    let days = unix.div_euclid(86400) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// 2026-12-06T00:00:00Z.
    const NOW: i64 = 1_796_515_200;

    struct Made {
        cert: String,
        key: String,
    }

    fn make(names: &[&str], from: (i32, u8, u8), until: (i32, u8, u8)) -> Made {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        Made {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn good() -> Made {
        make(&["mail.smith.example"], (2026, 1, 1), (2027, 1, 1))
    }

    #[test]
    fn the_checks_and_their_reasons() {
        let good = good();
        let other = good_key_of_another();
        let wildcard = make(&["*.smith.example"], (2026, 1, 1), (2027, 1, 1));
        let expired = make(&["mail.smith.example"], (2025, 1, 1), (2026, 1, 1));
        let future = make(&["mail.smith.example"], (2027, 1, 1), (2028, 1, 1));
        let chain = format!("{}{}", good.cert, other.cert);
        let host = "mail.smith.example";
        let cases: Vec<(&str, &str, &str, Result<(), CertificateProblem>)> = vec![
            ("good", &good.cert, &good.key, Ok(())),
            ("chain, leaf first", &chain, &good.key, Ok(())),
            ("wildcard", &wildcard.cert, &wildcard.key, Ok(())),
            (
                "mismatched key",
                &good.cert,
                &other.key,
                Err(CertificateProblem::KeyMismatch),
            ),
            (
                "expired",
                &expired.cert,
                &expired.key,
                Err(CertificateProblem::Expired("2026-01-01".into())),
            ),
            (
                "not yet valid",
                &future.cert,
                &future.key,
                Err(CertificateProblem::NotYetValid("2027-01-01".into())),
            ),
            (
                "garbage certificate",
                "hello",
                &good.key,
                Err(CertificateProblem::NoCertificate),
            ),
            (
                "broken base64",
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
                &good.key,
                Err(CertificateProblem::NoCertificate),
            ),
            (
                "garbage key",
                &good.cert,
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                Err(CertificateProblem::UnsupportedKey),
            ),
            ("no key", &good.cert, "", Err(CertificateProblem::NoKey)),
            (
                "certificate for the key",
                &good.key,
                &good.key,
                Err(CertificateProblem::NoCertificate),
            ),
        ];
        for (what, cert, key, want) in cases {
            let got = check_upload(cert.as_bytes(), key.as_bytes(), host, NOW).map(|_| ());
            assert_eq!(got, want, "{what}");
        }
        let wildcard_deeper = check_upload(
            wildcard.cert.as_bytes(),
            wildcard.key.as_bytes(),
            "a.mail.smith.example",
            NOW,
        );
        assert!(
            matches!(wildcard_deeper, Err(CertificateProblem::WrongName { .. })),
            "a wildcard covers one label: {wildcard_deeper:?}"
        );
    }

    fn good_key_of_another() -> Made {
        make(&["other.example"], (2026, 1, 1), (2027, 1, 1))
    }

    #[test]
    fn a_wrong_name_says_which_names_it_has() {
        let good = good();
        let problem = check_upload(
            good.cert.as_bytes(),
            good.key.as_bytes(),
            "mail.jones.example",
            NOW,
        )
        .expect_err("refused");
        assert_eq!(
            problem.to_string(),
            "The certificate is not valid for mail.jones.example (it is for mail.smith.example)."
        );
    }

    #[test]
    fn the_summary_names_the_host_and_the_dates() {
        let good = good();
        let summary = check_upload(
            good.cert.as_bytes(),
            good.key.as_bytes(),
            "mail.smith.example",
            NOW,
        )
        .expect("accepted");
        assert_eq!(summary.names, vec!["mail.smith.example".to_string()]);
        assert_eq!(date(summary.not_before), "2026-01-01");
        assert_eq!(date(summary.not_after), "2027-01-01");
        assert_eq!(summary.chain_length, 1);
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
    }

    #[test]
    fn install_writes_both_files_with_a_private_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = good();
        let files =
            install_upload(dir.path(), good.cert.as_bytes(), good.key.as_bytes()).expect("install");
        assert_eq!(files.cert, dir.path().join("tls/uploaded-cert.pem"));
        assert_eq!(files.key, dir.path().join("tls/uploaded-key.pem"));
        assert_eq!(
            std::fs::read_to_string(&files.cert).expect("cert"),
            good.cert
        );
        assert_eq!(std::fs::read_to_string(&files.key).expect("key"), good.key);
        let mode = std::fs::metadata(&files.key)
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut config = crate::config::Config::development();
        config.hostname = "mail.smith.example".into();
        config.tls = Some(files);
        crate::tls::acceptor(&config).expect("the installed files load");
    }
}
