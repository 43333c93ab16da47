//! mDNS over the machine's real network: the responder answers for `<first label>.local`
//! and `letterbox.local`, asked two ways by clients it did not write —
//! - a second `mdns-sd` daemon resolving the names with multicast queries (what a phone's
//!   or a laptop's mDNS resolver does), and
//! - a plain DNS query from an ordinary UDP port to 224.0.0.251:5353, answered by unicast
//!   (RFC 6762 §6.7 "legacy unicast": what `dig @224.0.0.251 -p 5353` and simple resolvers do).
//!
//! Multicast on the loopback interface is not available here (`lo` has no MULTICAST flag),
//! and the responder leaves loopback out anyway; the queries go out on the machine's
//! Ethernet interface and come back through the kernel's multicast loop. A machine with no
//! multicast-capable interface fails this test: it cannot pass without a real answer.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use letterbox::network::mdns::Announcer;
use mdns_sd::{HostnameResolutionEvent, ServiceDaemon};

const WAIT: Duration = Duration::from_secs(10);

/// The addresses a second mDNS daemon finds for `name` (multicast queries).
fn resolve(resolver: &ServiceDaemon, name: &str) -> BTreeSet<IpAddr> {
    let events = resolver
        .resolve_hostname(name, Some(WAIT.as_millis() as u64))
        .expect("resolve");
    let deadline = Instant::now() + WAIT;
    while let Ok(event) = events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        match event {
            HostnameResolutionEvent::AddressesFound(_, found) => {
                return found.iter().map(|ip| ip.to_ip_addr()).collect();
            }
            HostnameResolutionEvent::SearchTimeout(_) => break,
            _ => {}
        }
    }
    panic!("{name} was not resolved over mDNS within {WAIT:?}");
}

/// The A records of a legacy unicast query for `name`.
fn legacy_unicast(name: &str) -> BTreeSet<IpAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut query = Message::new(0x5a17, MessageType::Query, OpCode::Query);
    query.add_query(Query::query(
        Name::from_ascii(name).expect("name"),
        RecordType::A,
    ));
    let bytes = query.to_vec().expect("encode");
    let group = SocketAddr::from(([224, 0, 0, 251], 5353));
    let deadline = Instant::now() + WAIT;
    let mut buffer = [0u8; 9000];
    while Instant::now() < deadline {
        socket.send_to(&bytes, group).expect("send");
        let Ok((length, _)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        let Ok(reply) = Message::from_vec(&buffer[..length]) else {
            continue;
        };
        if reply.metadata.id != 0x5a17 || reply.metadata.message_type != MessageType::Response {
            continue;
        }
        let wanted = Name::from_ascii(name).expect("name");
        return reply
            .answers
            .iter()
            .filter(|record| record.name == wanted)
            .filter_map(|record| match &record.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                _ => None,
            })
            .collect();
    }
    panic!("no unicast answer for {name} within {WAIT:?}");
}

/// True when `address` belongs to this machine: only then can a socket be bound to it.
fn is_ours(address: IpAddr) -> bool {
    UdpSocket::bind((address, 0)).is_ok()
}

#[test]
fn the_box_answers_for_its_own_name_and_letterbox_local() {
    let announcer = Announcer::start("Post.family.example", 25).expect("start mDNS");
    let resolver = ServiceDaemon::new().expect("resolver");

    for name in ["post.local.", "letterbox.local."] {
        let found = resolve(&resolver, name);
        assert!(!found.is_empty(), "{name}: no address");
        for address in &found {
            assert!(address.is_ipv4(), "{name}: {address} (A records only)");
            assert!(!address.is_loopback(), "{name}: {address}");
            assert!(is_ours(*address), "{name}: {address} is not this machine's");
        }
        let unicast = legacy_unicast(name);
        assert_eq!(unicast, found, "{name}: the two ways disagree");
    }

    // A name it does not own gets no answer (nobody else on this network claims it).
    let socket_names = ["mail.local."];
    for name in socket_names {
        let events = resolver
            .resolve_hostname(name, Some(1500))
            .expect("resolve");
        let found = std::iter::from_fn(|| events.recv_timeout(Duration::from_secs(3)).ok())
            .any(|event| matches!(event, HostnameResolutionEvent::AddressesFound(..)));
        assert!(!found, "{name} was answered");
    }

    drop(announcer);
    let _ = resolver.shutdown();
}
