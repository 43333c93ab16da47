//! Can mail leave directly? Many home Internet providers block outgoing port 25; then mail
//! to other domains only leaves through a smarthost. The check connects to an SMTP server out
//! in the Internet (`[health] port25_probe`) and waits for its 220 greeting, then says QUIT.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{Check, Context, Finding, Verdict};

/// A greeting line longer than this is not an SMTP server's (RFC 5321 §4.5.3.1.5: 512).
const GREETING_MAX: u64 = crate::limits::SMTP_COMMAND_LINE as u64;

/// `host:port` (a bracketed IPv6 address allowed) as its parts.
pub(super) fn split_probe(probe: &str) -> Option<(&str, u16)> {
    let (host, port) = probe.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

pub(super) async fn outgoing_port(context: &Context<'_>) -> Finding {
    let config = context.config;
    if let Some(relay) = &config.outbound.relay {
        return Finding::new(
            Check::OutgoingPort,
            Verdict::NotNeeded,
            format!("Mail leaves through the smarthost {}.", relay.host),
            "Nothing to do: the smarthost sends the mail on.",
        );
    }
    let probe = &config.health.port25_probe;
    let Some((host, port)) = split_probe(probe) else {
        return could_not(format!("{probe:?} is not host:port."));
    };
    let resolver = match &context.resolver {
        Ok(resolver) => *resolver,
        Err(error) => return could_not(format!("No DNS resolver: {error}.")),
    };
    let addresses = match crate::outbound::dns::addresses(resolver, host).await {
        Ok(found) if !found.is_empty() => found,
        Ok(_) => return could_not(format!("{host} has no address in the DNS.")),
        Err(error) => return could_not(format!("{error}.")),
    };
    let mut failures = Vec::new();
    for ip in addresses.iter().take(2) {
        let address = SocketAddr::new(*ip, port);
        match greeting(address).await {
            Ok(()) => {
                let reached = if host == ip.to_string() {
                    probe.clone()
                } else {
                    format!("{probe} ({ip})")
                };
                return Finding::new(
                    Check::OutgoingPort,
                    Verdict::Ok,
                    format!("{reached} answered: port 25 to the outside is open."),
                    "Nothing to do.",
                );
            }
            Err(error) => failures.push(format!("{address}: {error}")),
        }
    }
    Finding::new(
        Check::OutgoingPort,
        Verdict::Problem,
        format!("No mail server answered ({}).", failures.join("; ")),
        "Your Internet provider probably blocks port 25: set a smarthost under Settings, \
         Outgoing mail.",
    )
}

fn could_not(found: String) -> Finding {
    Finding::new(
        Check::OutgoingPort,
        Verdict::CouldNotCheck,
        found,
        "Check the box's Internet connection and DNS, then check again.",
    )
}

/// Connects and reads the greeting; a 220 is the open port. Bounded by the caller's timeout.
async fn greeting(address: SocketAddr) -> Result<(), String> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    let mut reader = BufReader::new(&mut stream).take(GREETING_MAX);
    reader
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    if !line.starts_with("220") {
        return Err(format!("greeted with {:?}", line.trim_end()));
    }
    // Polite, and it lets the server close without logging a lost connection.
    let _ = stream.write_all(b"QUIT\r\n").await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_host_and_port() {
        assert_eq!(
            split_probe("gmail-smtp-in.l.google.com:25"),
            Some(("gmail-smtp-in.l.google.com", 25))
        );
        assert_eq!(split_probe("127.0.0.1:2525"), Some(("127.0.0.1", 2525)));
        assert_eq!(split_probe("[::1]:25"), Some(("::1", 25)));
        assert_eq!(split_probe("mail.example"), None);
        assert_eq!(split_probe(":25"), None);
        assert_eq!(split_probe("host:99999"), None);
    }
}
