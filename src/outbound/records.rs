//! The DNS records the local domains need for mail to reach this box and for its mail to be
//! trusted: what `letterbox dns-records` prints, and what the health checks (`health`) compare
//! the published records with — one list, so the two never disagree.

use crate::config::Config;
use crate::outbound::dkim::{Dkim, SELECTOR};

/// The records one local domain needs; values as they are published (TXT values unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRecords {
    pub domain: String,
    /// The host its MX record names (this box's host name, without the final dot).
    pub mx: String,
    pub spf: String,
    /// The DKIM key's TXT value at `dkim_name`; `None` when outgoing mail is not signed.
    pub dkim: Option<String>,
    pub dkim_name: String,
    pub dmarc: String,
    pub dmarc_name: String,
}

/// The records of every local domain; `dkim` is the key in use, if mail is signed.
pub fn expected(config: &Config, dkim: Option<&Dkim>) -> Vec<DomainRecords> {
    let host = config.hostname.trim_end_matches('.');
    config
        .domains
        .iter()
        .map(|domain| DomainRecords {
            domain: domain.clone(),
            mx: host.to_string(),
            spf: "v=spf1 mx -all".into(),
            dkim: dkim.map(Dkim::txt_record),
            dkim_name: format!("{SELECTOR}._domainkey.{domain}"),
            dmarc: format!(
                "v=DMARC1; p=quarantine; adkim=r; aspf=r; rua=mailto:postmaster@{domain}"
            ),
            dmarc_name: format!("_dmarc.{domain}"),
        })
        .collect()
}

/// What `letterbox dns-records` prints: zone-file lines for every local domain, and advice.
pub fn dns_records(config: &Config, dkim: &Dkim) -> String {
    let host = config.hostname.trim_end_matches('.');
    let mut out =
        String::from("; Publish these records at your DNS provider (zone-file syntax).\n");
    for records in expected(config, Some(dkim)) {
        let domain = &records.domain;
        out.push_str(&format!(
            "\n; {domain}\n\
             {domain}.\t\tMX\t10 {}.\n\
             {domain}.\t\tTXT\t{}\n",
            records.mx,
            quoted_strings(&records.spf)
        ));
        if let Some(key) = &records.dkim {
            out.push_str(&format!(
                "{}.\tTXT\t{}\n",
                records.dkim_name,
                quoted_strings(key)
            ));
        }
        out.push_str(&format!(
            "{}.\tTXT\t{}\n",
            records.dmarc_name,
            quoted_strings(&records.dmarc)
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
            "smith.example.\t\tMX\t10 mail.smith.example.",
            "smith.example.\t\tTXT\t\"v=spf1 mx -all\"",
            "_imaps._tcp.smith.example.\tSRV\t0 1 2993 mail.smith.example.",
            "_submissions._tcp.smith.example.\tSRV\t0 1 2465 mail.smith.example.",
            "_submission._tcp.smith.example.\tSRV\t0 1 2587 mail.smith.example.",
            "autoconfig.smith.example.\tCNAME\tmail.smith.example.",
            "autodiscover.smith.example.\tCNAME\tmail.smith.example.",
        ] {
            assert!(records.lines().any(|l| l == line), "{line}\n{records}");
        }
        let key = dkim.txt_record();
        assert!(
            records.contains(&format!(
                "letterbox._domainkey.smith.example.\tTXT\t\"{}",
                &key[..40]
            )),
            "{records}"
        );
        config.listen.imaps = vec!["127.0.0.1:0".parse().expect("address")];
        assert!(!dns_records(&config, &dkim).contains("_imaps._tcp"));
    }
}
