//! The self-signed certificate made when no certificate is configured: valid for two years,
//! made again a month before it ends, and naming every way a client on the LAN reaches the
//! box — the host name, its short name, `letterbox.local` and the box's addresses — so that a
//! client that trusted it once goes on verifying it (issue #16 defect 6).

use std::net::IpAddr;
use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::{TlsError, file_error, validity, write_file};

/// Two years: long enough that a household rarely sees a renewal, short enough that a lost
/// key does not stay trusted for decades (the first version wrote 1975 to 4096).
const VALID_DAYS: i64 = 730;
/// Made again this long before it ends, so a client never meets an expired one.
const RENEW_BEFORE_DAYS: i64 = 30;
const DAY: i64 = 86_400;

/// The names and addresses one certificate covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub dns: Vec<String>,
    pub addresses: Vec<IpAddr>,
}

impl Names {
    /// The host name, its first label when it has more than one, `letterbox.local`, and
    /// `addresses` without link-local ones (they change with each interface and no client
    /// types them).
    pub fn new(hostname: &str, addresses: impl IntoIterator<Item = IpAddr>) -> Names {
        let hostname = hostname.to_ascii_lowercase();
        let mut dns = vec![hostname.clone()];
        if let Some((short, _)) = hostname.split_once('.')
            && !short.is_empty()
        {
            dns.push(short.to_string());
        }
        // The fixed mDNS name every box answers to.
        let fixed = format!("{}.local", crate::network::mdns::FIXED_NAME);
        if !dns.contains(&fixed) {
            dns.push(fixed);
        }
        let mut addresses: Vec<IpAddr> = addresses
            .into_iter()
            .filter(|address| !is_link_local(address))
            .collect();
        addresses.sort();
        addresses.dedup();
        Names { dns, addresses }
    }

    /// The names for this box now: its interfaces' addresses as the system lists them.
    pub fn of_this_box(hostname: &str) -> Names {
        let addresses = if_addrs::get_if_addrs()
            .map(|interfaces| interfaces.iter().map(if_addrs::Interface::ip).collect())
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "cannot list the network addresses for the certificate");
                Vec::new()
            });
        Names::new(hostname, addresses)
    }

    fn server_names(&self) -> impl Iterator<Item = ServerName<'static>> + '_ {
        let dns = self
            .dns
            .iter()
            .filter_map(|name| ServerName::try_from(name.clone()).ok());
        let addresses = self.addresses.iter().map(|a| ServerName::from(*a));
        dns.chain(addresses)
    }
}

fn is_link_local(address: &IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
    }
}

/// Whether the certificate at `path` covers every one of `names` and stays valid for more
/// than [`RENEW_BEFORE_DAYS`] after `now` (Unix seconds). One that cannot be read is ours to
/// replace too.
pub fn fits(path: &Path, names: &Names, now: i64) -> bool {
    let Ok(der) = CertificateDer::from_pem_file(path) else {
        return false;
    };
    let Some(period) = validity(&der) else {
        return false;
    };
    if period.not_before > now || period.not_after - now <= RENEW_BEFORE_DAYS * DAY {
        return false;
    }
    let Ok(leaf) = webpki::EndEntityCert::try_from(&der) else {
        return false;
    };
    names
        .server_names()
        .all(|name| leaf.verify_is_valid_for_subject_name(&name).is_ok())
}

/// Makes a key and a certificate for `names`, valid from the day before `now` (a clock a
/// little behind still accepts it) for [`VALID_DAYS`].
pub fn generate(names: &Names, now: i64, cert_path: &Path, key: &Path) -> Result<(), TlsError> {
    let generate = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let key_pair = rcgen::KeyPair::generate().map_err(generate)?;
    let mut params = rcgen::CertificateParams::new(names.dns.clone()).map_err(generate)?;
    params.subject_alt_names.extend(
        names
            .addresses
            .iter()
            .map(|address| rcgen::SanType::IpAddress(*address)),
    );
    let hostname = names
        .dns
        .first()
        .map(String::as_str)
        .unwrap_or(crate::network::mdns::FIXED_NAME);
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Letterbox");
    let (year, month, day) = civil_from_days((now - DAY).div_euclid(DAY));
    params.not_before = rcgen::date_time_ymd(year, month, day);
    let (year, month, day) = civil_from_days((now + VALID_DAYS * DAY).div_euclid(DAY));
    params.not_after = rcgen::date_time_ymd(year, month, day);
    let cert = params.self_signed(&key_pair).map_err(generate)?;
    if let Some(dir) = cert_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
    }
    write_file(key, key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_file(cert_path, cert.pem().as_bytes(), 0o644)?;
    tracing::info!(names = ?names.dns, addresses = ?names.addresses, "made a self-signed certificate");
    Ok(())
}

/// A proleptic Gregorian date from days since 1970-01-01 (H. Hinnant's algorithm, the inverse
/// of `validity::days_from_civil`).
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
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
    (
        i32::try_from(year).unwrap_or(i32::MAX),
        u8::try_from(month).unwrap_or(1),
        u8::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_000_000; // 2026-11-30

    fn lan() -> Vec<IpAddr> {
        vec![
            "192.168.1.20".parse().expect("ip"),
            "fe80::1".parse().expect("ip"),
            "127.0.0.1".parse().expect("ip"),
        ]
    }

    #[test]
    fn the_names_are_the_host_its_short_name_the_fixed_name_and_the_addresses() {
        let names = Names::new("Mail.Smith.Example", lan());
        assert_eq!(
            names.dns,
            ["mail.smith.example", "mail", "letterbox.local"].map(String::from)
        );
        assert_eq!(
            names.addresses,
            ["127.0.0.1", "192.168.1.20"].map(|a| a.parse::<IpAddr>().expect("ip"))
        );
        assert_eq!(
            Names::new("letterbox.local", []).dns,
            ["letterbox.local", "letterbox"].map(String::from)
        );
    }

    #[test]
    fn a_certificate_fits_while_it_names_everything_and_has_a_month_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let names = Names::new("mail.smith.example", lan());
        generate(&names, NOW, &cert, &key).expect("generate");
        let der = CertificateDer::from_pem_file(&cert).expect("pem");
        let period = validity(&der).expect("validity");
        assert_eq!(period.not_before, (NOW / DAY - 1) * DAY);
        assert_eq!(period.not_after, (NOW / DAY + VALID_DAYS) * DAY);

        assert!(fits(&cert, &names, NOW));
        assert!(fits(
            &cert,
            &names,
            NOW + (VALID_DAYS - RENEW_BEFORE_DAYS - 1) * DAY
        ));
        assert!(!fits(
            &cert,
            &names,
            NOW + (VALID_DAYS - RENEW_BEFORE_DAYS + 1) * DAY
        ));
        assert!(!fits(&cert, &names, NOW - 2 * DAY), "not yet valid");
        let moved = Names::new("mail.smith.example", ["192.168.1.77".parse().expect("ip")]);
        assert!(!fits(&cert, &moved, NOW), "a new address is not named");
        let renamed = Names::new("box.smith.example", lan());
        assert!(!fits(&cert, &renamed, NOW));
        assert!(!fits(&dir.path().join("missing.pem"), &names, NOW));
    }

    #[test]
    fn days_become_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(20_455), (2026, 1, 2));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
