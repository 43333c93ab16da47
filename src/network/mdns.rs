//! Multicast DNS (RFC 6762): the box answers for `<first label of hostname>.local` and
//! `letterbox.local` with the IPv4 addresses of its interfaces, so a person types
//! `http://letterbox.local` instead of an address the router picked.
//!
//! The responder is the `mdns-sd` crate: it probes for the names before claiming them
//! (RFC 6762 §8.1), announces them (§8.3), answers queries on every interface, including
//! legacy unicast queries from an ordinary resolver's port (§6.7), and follows addresses
//! as they come and go (the Wi-Fi joins after the daemon starts). It runs on a thread of its
//! own, not on tokio. Each name is the host of one registered `_smtp._tcp` service — the
//! crate answers address queries only for the hosts of services it publishes — which also
//! lets a DNS-SD browser list the box's mail service.
//!
//! Not done: IPv6 (AAAA) records; and two boxes on one network both claim
//! `letterbox.local` — what the crate's probing does then is not tested here, so the README
//! tells people with two boxes to use each one's own name.

use std::net::IpAddr;

use mdns_sd::{DaemonEvent, IfKind, ServiceDaemon, ServiceInfo};

/// The service type each name is published under (RFC 6763 §7).
const SERVICE_TYPE: &str = "_smtp._tcp.local.";
/// The name every box answers to, beside its own.
pub const FIXED_NAME: &str = "letterbox";

#[derive(Debug, thiserror::Error)]
#[error("mDNS: {0}")]
pub struct MdnsError(String);

impl From<mdns_sd::Error> for MdnsError {
    fn from(error: mdns_sd::Error) -> MdnsError {
        MdnsError(error.to_string())
    }
}

/// The `.local.` names a box called `hostname` answers to: its first label, and
/// `letterbox.local.`, each once, lower case.
pub fn names(hostname: &str) -> Vec<String> {
    let first = hostname
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut names = Vec::new();
    if !first.is_empty() && first != "localhost" {
        names.push(format!("{first}.local."));
    }
    let fixed = format!("{FIXED_NAME}.local.");
    if !names.contains(&fixed) {
        names.push(fixed);
    }
    names
}

/// Whether any of the box's services can be reached from another machine: mDNS is only
/// started then (tests listen on 127.0.0.1 only, so they do not announce themselves).
pub fn reachable_from_the_network(addresses: impl IntoIterator<Item = IpAddr>) -> bool {
    addresses.into_iter().any(|address| !address.is_loopback())
}

/// The running responder; dropping it withdraws the names (goodbye packets, §10.1).
pub struct Announcer {
    daemon: ServiceDaemon,
    port: u16,
    published: Vec<String>,
}

impl Announcer {
    /// Starts answering for [`names`] of `hostname`; `smtp_port` is the port the published
    /// mail service names.
    pub fn start(hostname: &str, smtp_port: u16) -> Result<Announcer, MdnsError> {
        Announcer::start_on(mdns_sd::MDNS_PORT, hostname, smtp_port)
    }

    /// [`Announcer::start`] on another UDP port than 5353, for tests beside a system
    /// responder.
    pub fn start_on(
        mdns_port: u16,
        hostname: &str,
        smtp_port: u16,
    ) -> Result<Announcer, MdnsError> {
        let daemon = ServiceDaemon::new_with_port(mdns_port)?;
        report(daemon.monitor()?);
        // A records only, and not for 127.0.0.1: nobody else can reach it.
        daemon.disable_interface(vec![IfKind::IPv6, IfKind::LoopbackV4, IfKind::LoopbackV6])?;
        let mut announcer = Announcer {
            daemon,
            port: smtp_port,
            published: Vec::new(),
        };
        announcer.set_hostname(hostname)?;
        Ok(announcer)
    }

    /// Answers for the names of a new `hostname` instead (the wizard may change it).
    pub fn set_hostname(&mut self, hostname: &str) -> Result<(), MdnsError> {
        for fullname in self.published.drain(..) {
            self.daemon.unregister(&fullname)?;
        }
        for name in names(hostname) {
            let instance = name.trim_end_matches(".local.");
            let no_txt = None::<std::collections::HashMap<String, String>>;
            let service = ServiceInfo::new(SERVICE_TYPE, instance, &name, (), self.port, no_txt)?
                .enable_addr_auto();
            self.published.push(service.get_fullname().to_string());
            self.daemon.register(service)?;
            tracing::info!(name = %name.trim_end_matches('.'), "mDNS: answering");
        }
        Ok(())
    }
}

/// Logs what the responder's thread reports (a socket it cannot open, a name another
/// machine already holds), on a thread that ends when the daemon does.
fn report(events: mdns_sd::Receiver<DaemonEvent>) {
    let spawned = std::thread::Builder::new()
        .name("mdns-events".into())
        .spawn(move || {
            while let Ok(event) = events.recv() {
                match event {
                    DaemonEvent::Error(error) => tracing::warn!(%error, "mDNS"),
                    DaemonEvent::NameChange(change) => {
                        tracing::warn!(?change, "mDNS: a name is taken on the network")
                    }
                    DaemonEvent::IpAdd(address) => tracing::info!(%address, "mDNS: answering on"),
                    _ => {}
                }
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "mDNS: its events are not logged");
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        // Unregistering sends the goodbyes; the daemon's thread then ends.
        for fullname in &self.published {
            let _ = self.daemon.unregister(fullname);
        }
        let _ = self.daemon.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_answers_to_its_first_label_and_to_letterbox() {
        let cases: [(&str, &[&str]); 5] = [
            ("mail.example.org", &["mail.local.", "letterbox.local."]),
            ("Post.Family.example", &["post.local.", "letterbox.local."]),
            ("letterbox", &["letterbox.local."]),
            ("LetterBox.home.arpa", &["letterbox.local."]),
            ("localhost", &["letterbox.local."]),
        ];
        for (hostname, expected) in cases {
            assert_eq!(names(hostname), expected, "{hostname}");
        }
    }

    #[test]
    fn only_a_box_reachable_beyond_loopback_announces_itself() {
        let loopback = [
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
        ];
        assert!(!reachable_from_the_network(loopback));
        assert!(reachable_from_the_network([IpAddr::from([0, 0, 0, 0])]));
        assert!(reachable_from_the_network([IpAddr::from([192, 168, 1, 9])]));
        assert!(!reachable_from_the_network([]));
    }
}
