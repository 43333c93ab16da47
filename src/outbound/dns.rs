//! Where mail for a domain goes (RFC 5321 §5.1): MX records by preference, the domain's own
//! A/AAAA records when it has no MX (the implicit MX), nothing at all for a null MX
//! (RFC 7505). CNAMEs are followed by the resolver. `[dns] nameservers` replaces the
//! system's resolvers (tests run a DNS server on loopback).

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The domain does not exist (NXDOMAIN): permanent.
    #[error("domain {0} does not exist")]
    NoDomain(String),
    /// RFC 7505 null MX: the domain accepts no mail. Permanent.
    #[error("domain {0} does not accept mail (null MX)")]
    NullMx(String),
    /// Neither MX nor address records: permanent.
    #[error("domain {0} has no mail server")]
    NoHost(String),
    /// SERVFAIL, timeouts and the like: try again later.
    #[error("DNS lookup for {0} failed: {1}")]
    Temporary(String, String),
    #[error("cannot set up the DNS resolver: {0}")]
    Setup(String),
}

impl DnsError {
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            DnsError::NoDomain(_) | DnsError::NullMx(_) | DnsError::NoHost(_)
        )
    }
}

/// The resolver Letterbox uses for MX lookups (and for SPF/DKIM/DMARC through mail-auth).
pub fn resolver(config: &Config) -> Result<TokioResolver, DnsError> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = if config.dns.nameservers.is_empty() {
        TokioResolver::builder(provider).map_err(|e| DnsError::Setup(e.to_string()))?
    } else {
        TokioResolver::builder_with_config(resolver_config(&config.dns.nameservers), provider)
    };
    let options = builder.options_mut();
    options.timeout = std::time::Duration::from_secs(5);
    options.attempts = 2;
    builder.build().map_err(|e| DnsError::Setup(e.to_string()))
}

pub fn resolver_config(nameservers: &[SocketAddr]) -> ResolverConfig {
    let servers = nameservers
        .iter()
        .map(|address| {
            let mut udp = ConnectionConfig::udp();
            udp.port = address.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = address.port();
            NameServerConfig::new(address.ip(), true, vec![udp, tcp])
        })
        .collect();
    ResolverConfig::from_parts(None, vec![], servers)
}

/// The mail hosts of `domain`, best first (equal preferences keep the DNS order, which the
/// server rotates).
pub async fn mail_hosts(resolver: &TokioResolver, domain: &str) -> Result<Vec<String>, DnsError> {
    let fqdn = format!("{}.", domain.trim_end_matches('.'));
    match resolver.mx_lookup(fqdn.as_str()).await {
        Ok(lookup) => {
            let mut hosts: Vec<(u16, String)> = lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                    _ => None,
                })
                .collect();
            if hosts.is_empty() {
                return implicit_mx(resolver, domain).await;
            }
            // RFC 7505 §3: a single MX with the root as exchange.
            if hosts.len() == 1 && hosts[0].1.trim_end_matches('.').is_empty() {
                return Err(DnsError::NullMx(domain.to_string()));
            }
            hosts.retain(|(_, host)| !host.trim_end_matches('.').is_empty());
            hosts.sort_by_key(|(preference, _)| *preference);
            Ok(hosts.into_iter().map(|(_, host)| host).collect())
        }
        Err(error) if error.is_nx_domain() => Err(DnsError::NoDomain(domain.to_string())),
        Err(error) if error.is_no_records_found() => implicit_mx(resolver, domain).await,
        Err(error) => Err(temporary(domain, &error)),
    }
}

/// RFC 5321 §5.1: without MX records the domain itself is the host, if it has an address.
async fn implicit_mx(resolver: &TokioResolver, domain: &str) -> Result<Vec<String>, DnsError> {
    let host = format!("{}.", domain.trim_end_matches('.'));
    match addresses(resolver, &host).await {
        Ok(found) if !found.is_empty() => Ok(vec![host]),
        Ok(_) => Err(DnsError::NoHost(domain.to_string())),
        Err(error) => Err(error),
    }
}

/// The addresses of a host, IPv6 and IPv4.
pub async fn addresses(resolver: &TokioResolver, host: &str) -> Result<Vec<IpAddr>, DnsError> {
    if let Ok(ip) = host.trim_end_matches('.').parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    match resolver.lookup_ip(host).await {
        Ok(lookup) => Ok(lookup.iter().collect()),
        Err(error) if error.is_nx_domain() => Err(DnsError::NoDomain(host.to_string())),
        Err(error) if error.is_no_records_found() => Ok(Vec::new()),
        Err(error) => Err(temporary(host, &error)),
    }
}

fn temporary(name: &str, error: &NetError) -> DnsError {
    DnsError::Temporary(name.to_string(), error.to_string())
}
