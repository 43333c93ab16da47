//! The captive DNS responder (issue #11): in setup mode it answers every name with the box's
//! setup address, so that a phone's connectivity check (connectivitycheck.gstatic.com,
//! captive.apple.com, www.msftconnecttest.com, ...) reaches the box's web page and the phone
//! opens the setup page by itself.
//!
//! [`answer`] (in `proto`) decides each reply without I/O; [`serve`] only moves datagrams.
//! UDP only: every reply fits in 512 octets, so no client needs to retry over TCP.

mod proto;

use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::limits::CAPTIVE_DNS_PACKET_MAX;

pub use proto::{CAPTIVE_TTL, answer};

/// After a failed receive, wait this long before the next: an error that repeats (the
/// hotspot's interface went away) must not spin a core.
const RECEIVE_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Answers the queries arriving on `socket` with `address` until `shutdown` is cancelled.
/// Bad input gets FORMERR or nothing; everything is logged at debug level only, so a flood of
/// queries cannot flood the log.
pub async fn serve(socket: UdpSocket, address: Ipv4Addr, shutdown: CancellationToken) {
    // One octet more than the largest query read, so that a longer datagram (which the kernel
    // cuts to the buffer) shows as too long instead of as a shorter, different query.
    let mut buffer = [0u8; CAPTIVE_DNS_PACKET_MAX + 1];
    loop {
        let received = tokio::select! {
            () = shutdown.cancelled() => return,
            received = socket.recv_from(&mut buffer) => received,
        };
        let (length, peer) = match received {
            Ok(received) => received,
            Err(error) => {
                tracing::debug!(%error, "captive dns: receive failed");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(RECEIVE_ERROR_PAUSE) => continue,
                }
            }
        };
        let Some(reply) = answer(&buffer[..length], address) else {
            tracing::debug!(%peer, length, "captive dns: no reply to this datagram");
            continue;
        };
        tracing::debug!(%peer, length, reply = reply.len(), "captive dns: answered");
        if let Err(error) = socket.send_to(&reply, peer).await {
            tracing::debug!(%peer, %error, "captive dns: send failed");
        }
    }
}
