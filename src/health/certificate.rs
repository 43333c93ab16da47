//! Is the certificate in use for the host name, and how long is it valid?

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::{Check, Finding, Verdict};
use crate::config::Config;
use crate::panel::system::CERTIFICATE_WARNING;

pub(super) fn check(config: &Config, now: i64) -> Finding {
    let (path, _) = crate::tls::cert_paths(config);
    let host = &config.hostname;
    let finding = |verdict, found: String, advice: &str| {
        Finding::new(Check::Certificate, verdict, found, advice.to_string())
    };
    let upload = "Upload a certificate for this host name under Settings (Let's Encrypt gives \
                  them for free).";
    let Ok(der) = CertificateDer::from_pem_file(&path) else {
        return finding(
            Verdict::Problem,
            format!("{} cannot be read.", path.display()),
            upload,
        );
    };
    let Ok(leaf) = webpki::EndEntityCert::try_from(&der) else {
        return finding(
            Verdict::Problem,
            format!("{} is not a certificate this box can read.", path.display()),
            upload,
        );
    };
    let Some(validity) = crate::tls::validity(&der) else {
        return finding(
            Verdict::Problem,
            "The certificate's dates cannot be read.".into(),
            upload,
        );
    };
    let names: Vec<String> = leaf.valid_dns_names().map(str::to_string).collect();
    let name_fits = ServerName::try_from(host.as_str())
        .is_ok_and(|name| leaf.verify_is_valid_for_subject_name(&name).is_ok());
    let until = crate::tls::date(validity.not_after);
    if !name_fits {
        return finding(
            Verdict::Problem,
            format!(
                "The certificate is for {}, not {host}: mail programs will refuse it.",
                if names.is_empty() {
                    "no host name".to_string()
                } else {
                    names.join(", ")
                }
            ),
            upload,
        );
    }
    if validity.not_after < now {
        return finding(
            Verdict::Problem,
            format!("The certificate for {host} expired on {until}."),
            "Upload a renewed certificate under Settings.",
        );
    }
    if validity.not_before > now {
        return finding(
            Verdict::Problem,
            format!(
                "The certificate is valid only from {} on.",
                crate::tls::date(validity.not_before)
            ),
            "Check the box's clock (it needs the network time), or wait until then.",
        );
    }
    let left = crate::status::human_age(validity.not_after - now);
    if validity.not_after - now < CERTIFICATE_WARNING {
        return finding(
            Verdict::Warning,
            format!("The certificate for {host} expires on {until}, in {left}."),
            "Upload a renewed certificate under Settings before then.",
        );
    }
    if config.tls.is_none() {
        return finding(
            Verdict::Warning,
            format!("The box made its own certificate for {host}, valid until {until}."),
            "Phones and mail programs warn about it: install each person's profile from their \
             page, or upload a certificate from Let's Encrypt under Settings.",
        );
    }
    finding(
        Verdict::Ok,
        format!("The certificate is for {host} and valid until {until} ({left} left)."),
        "Nothing to do.",
    )
}
