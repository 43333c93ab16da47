//! The facts of the System page and the alerts, gathered into the status value: IP addresses
//! (getifaddrs), SoC temperature (/sys/class/thermal), the certificate's expiry (its DER
//! `notAfter`), and whether the data device is still there.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::status::{Alert, Status};

/// How often the facts are gathered.
pub const REFRESH: Duration = Duration::from_secs(15);
/// A certificate this close to expiry raises an alert.
pub const CERTIFICATE_WARNING: i64 = 14 * 86400;
/// A queued message older than this raises an alert.
pub const QUEUE_STUCK_AFTER: i64 = 86400;
const THERMAL: &str = "/sys/class/thermal";

/// Keeps addresses, temperature, certificate expiry and alerts in the status value fresh.
/// The config is read again at each round, and a new one starts a round at once: the
/// settings can name another certificate.
pub async fn refresh(
    mut configs: watch::Receiver<Arc<Config>>,
    status: watch::Sender<Status>,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(REFRESH);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            changed = configs.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = shutdown.cancelled() => return,
        }
        let config = configs.borrow().clone();
        let certificate = crate::tls::cert_paths(&config).0;
        let addresses = addresses();
        let temperature = soc_temperature(Path::new(THERMAL));
        let expires = std::fs::read(&certificate)
            .ok()
            .and_then(|pem| certificate_not_after(&pem));
        let data_present = config.data_dir.join("letterbox.redb").exists();
        let now = crate::store::now_unix();
        let min_free = config.limits.min_free_space.0;
        let data_dir = config.data_dir.clone();
        status.send_if_modified(|s| {
            let before = s.clone();
            s.addresses = addresses;
            s.soc_temperature_mc = temperature;
            s.certificate_expires = expires;
            s.alerts = alerts(s, now, min_free, data_present, &data_dir);
            *s != before
        });
    }
}

/// What is wrong, most serious first.
pub fn alerts(
    status: &Status,
    now: i64,
    min_free: u64,
    data_present: bool,
    data_dir: &Path,
) -> Vec<Alert> {
    let mut out = Vec::new();
    if !data_present {
        out.push(Alert::DataDeviceMissing {
            path: data_dir.display().to_string(),
        });
    }
    if let Some(storage) = status.storage {
        let low = storage.free_bytes < storage.total_bytes / 20
            || storage.free_bytes < min_free.saturating_mul(2);
        if low {
            out.push(Alert::StorageLow {
                free_bytes: storage.free_bytes,
                total_bytes: storage.total_bytes,
            });
        }
    }
    if let Some(since) = status.queue_oldest
        && status.queue_depth > 0
        && now - since > QUEUE_STUCK_AFTER
    {
        out.push(Alert::QueueStuck { since });
    }
    if let Some(expires_at) = status.certificate_expires
        && expires_at - now < CERTIFICATE_WARNING
    {
        out.push(Alert::CertificateExpiring { expires_at });
    }
    out.extend(crate::health::alerts(status.health.as_ref()));
    out
}

/// This machine's addresses, IPv4 first, without loopback and link-local ones.
pub fn addresses() -> Vec<String> {
    let mut found: Vec<IpAddr> = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head into `list` and returns 0, or returns -1.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Vec::new();
    }
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned, freed only below.
        let entry = unsafe { &*cursor };
        if !entry.ifa_addr.is_null() {
            // SAFETY: ifa_addr is non-null and points to a sockaddr of the family it names.
            let family = i32::from(unsafe { (*entry.ifa_addr).sa_family });
            let address = match family {
                libc::AF_INET => {
                    // SAFETY: the family says this is a sockaddr_in.
                    let sin = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in) };
                    Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                        sin.sin_addr.s_addr,
                    ))))
                }
                libc::AF_INET6 => {
                    // SAFETY: the family says this is a sockaddr_in6.
                    let sin6 = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in6) };
                    Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
                }
                _ => None,
            };
            if let Some(address) = address.filter(is_shown)
                && !found.contains(&address)
            {
                found.push(address);
            }
        }
        cursor = entry.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found.sort_by_key(|a| a.is_ipv6());
    found.iter().map(IpAddr::to_string).collect()
}

fn is_shown(address: &IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified(),
        IpAddr::V6(v6) => {
            !v6.is_loopback() && !v6.is_unspecified() && (v6.segments()[0] & 0xffc0) != 0xfe80
        }
    }
}

/// The SoC temperature in millidegrees: the thermal zone whose type names the CPU or SoC,
/// else the first zone.
pub fn soc_temperature(thermal: &Path) -> Option<i32> {
    let mut zones: Vec<PathBuf> = std::fs::read_dir(thermal)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("thermal_zone"))
        })
        .collect();
    zones.sort();
    let kind = |zone: &PathBuf| {
        std::fs::read_to_string(zone.join("type"))
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    let zone = zones
        .iter()
        .find(|zone| {
            let kind = kind(zone);
            kind.contains("cpu") || kind.contains("soc")
        })
        .or(zones.first())?;
    std::fs::read_to_string(zone.join("temp"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The `notAfter` of the first certificate in a PEM file, as Unix seconds.
pub fn certificate_not_after(pem: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(pem).ok()?;
    let begin = "-----BEGIN CERTIFICATE-----";
    let start = text.find(begin)? + begin.len();
    let end = start + text[start..].find("-----END CERTIFICATE-----")?;
    let body: String = text[start..end].split_whitespace().collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    crate::tls::validity(&der).map(|validity| validity.not_after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Storage;

    #[test]
    fn certificate_expiry_is_read_from_the_der() {
        let mut params =
            rcgen::CertificateParams::new(vec!["mail.home.test".into()]).expect("params");
        params.not_after = rcgen::date_time_ymd(2031, 7, 4);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        let expires = certificate_not_after(cert.pem().as_bytes()).expect("notAfter");
        assert_eq!(expires, 1_940_889_600); // 2031-07-04T00:00:00Z
        assert_eq!(certificate_not_after(b"not a certificate"), None);
    }

    #[test]
    fn alerts_come_from_the_status() {
        let now = 10_000_000;
        let status = Status {
            storage: Some(Storage {
                total_bytes: 32 << 30,
                free_bytes: 1 << 30,
            }),
            queue_depth: 2,
            queue_oldest: Some(now - 2 * 86400),
            certificate_expires: Some(now + 86400),
            ..Status::default()
        };
        let kinds: Vec<&str> = alerts(&status, now, 64 << 20, false, Path::new("/data"))
            .iter()
            .map(Alert::key)
            .collect();
        assert_eq!(
            kinds,
            vec![
                "data_device_missing",
                "storage_low",
                "queue_stuck",
                "certificate_expiring"
            ]
        );
        let healthy = Status {
            storage: Some(Storage {
                total_bytes: 32 << 30,
                free_bytes: 20 << 30,
            }),
            ..Status::default()
        };
        assert!(alerts(&healthy, now, 64 << 20, true, Path::new("/data")).is_empty());
    }

    #[test]
    fn temperature_prefers_the_cpu_zone() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (zone, kind, temp) in [
            ("thermal_zone0", "gpu-thermal", "39000"),
            ("thermal_zone1", "cpu-thermal", "48312"),
        ] {
            let path = dir.path().join(zone);
            std::fs::create_dir(&path).expect("zone");
            std::fs::write(path.join("type"), kind).expect("type");
            std::fs::write(path.join("temp"), format!("{temp}\n")).expect("temp");
        }
        assert_eq!(soc_temperature(dir.path()), Some(48_312));
        assert_eq!(soc_temperature(Path::new("/nonexistent")), None);
    }

    #[test]
    fn addresses_leave_out_loopback() {
        assert!(addresses().iter().all(|a| a != "127.0.0.1" && a != "::1"));
    }
}
