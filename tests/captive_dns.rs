//! The captive DNS responder over real UDP on loopback, asked by a real resolver library
//! (hickory-resolver, as the outbound queue uses it): every name resolves to the setup
//! address, AAAA finds nothing, and a raw datagram that is not a query gets FORMERR or nothing.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use letterbox::network::captive_dns::{CAPTIVE_TTL, serve};
use letterbox::outbound::dns::resolver_config;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

const SETUP: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 1);

struct Responder {
    address: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start() -> Responder {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let address = socket.local_addr().expect("address");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve(socket, SETUP, shutdown.clone()));
    Responder {
        address,
        shutdown,
        task,
    }
}

fn resolver(server: SocketAddr) -> TokioResolver {
    let mut builder = TokioResolver::builder_with_config(
        resolver_config(&[server]),
        TokioRuntimeProvider::default(),
    );
    let options = builder.options_mut();
    options.timeout = Duration::from_secs(2);
    options.attempts = 1;
    // Each lookup must reach the responder, not the resolver's memory.
    options.cache_size = 0;
    // Names asked in mIxEd case (draft-vixie-dnsext-dns0x20): the resolver drops a reply
    // whose question does not keep the case it sent.
    options.case_randomization = true;
    builder.build().expect("resolver")
}

/// A name no one has asked for before.
fn random_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("x{nanos:x}-{}.example.org.", std::process::id())
}

#[tokio::test]
async fn every_name_resolves_to_the_setup_address() {
    let responder = start().await;
    let resolver = resolver(responder.address);
    let names = [
        "connectivitycheck.gstatic.com.".to_string(),
        "captive.apple.com.".to_string(),
        "www.msftconnecttest.com.".to_string(),
        "detectportal.firefox.com.".to_string(),
        "clients3.google.com.".to_string(),
        random_name(),
    ];
    for name in &names {
        let lookup = resolver.ipv4_lookup(name.as_str()).await;
        let lookup = lookup.unwrap_or_else(|e| panic!("{name}: {e}"));
        let answers: Vec<(Ipv4Addr, u32)> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::A(a) => Some((a.0, record.ttl)),
                _ => None,
            })
            .collect();
        assert_eq!(answers, vec![(SETUP, CAPTIVE_TTL)], "{name}");
    }
    // The lookup a browser makes (A and AAAA together) gives the setup address alone.
    let both = resolver
        .lookup_ip("captive.apple.com.")
        .await
        .expect("lookup_ip");
    let addresses: Vec<_> = both.iter().collect();
    assert_eq!(addresses, vec![std::net::IpAddr::V4(SETUP)]);
    responder.shutdown.cancel();
}

#[tokio::test]
async fn aaaa_finds_no_records() {
    let responder = start().await;
    let resolver = resolver(responder.address);
    for name in ["connectivitycheck.gstatic.com.", "captive.apple.com."] {
        match resolver.ipv6_lookup(name).await {
            Err(error) => assert!(error.is_no_records_found(), "{name}: {error}"),
            Ok(lookup) => panic!("{name}: {:?}", lookup.answers()),
        }
    }
    responder.shutdown.cancel();
}

/// Sends `datagram` and waits a moment for a reply.
async fn exchange(server: SocketAddr, datagram: &[u8]) -> Option<Vec<u8>> {
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    client.send_to(datagram, server).await.expect("send");
    let mut buffer = [0u8; 2048];
    let received = tokio::time::timeout(Duration::from_millis(300), client.recv(&mut buffer));
    match received.await {
        Ok(Ok(length)) => Some(buffer[..length].to_vec()),
        Ok(Err(error)) => panic!("receive: {error}"),
        Err(_) => None,
    }
}

#[tokio::test]
async fn bad_datagrams_get_formerr_or_nothing_and_the_responder_goes_on() {
    let responder = start().await;
    // `captive.apple.com A`, id 0x1234, as python3-dnslib writes it.
    let good: Vec<u8> = [
        &[0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0][..],
        b"\x07captive\x05apple\x03com\x00\x00\x01\x00\x01",
    ]
    .concat();
    let mut two_questions = good.clone();
    two_questions[5] = 2;
    let mut response = good.clone();
    response[2] |= 0x80;
    let oversized = [good.clone(), vec![0; 2000]].concat();

    let formerr = |reply: Option<Vec<u8>>| {
        let reply = reply.expect("a reply");
        assert_eq!(reply[..2], [0x12, 0x34], "the id is kept");
        assert_eq!(reply[2] & 0x80, 0x80, "a response");
        assert_eq!(reply[3] & 0x0f, 1, "FORMERR");
    };
    formerr(exchange(responder.address, &two_questions).await);
    formerr(exchange(responder.address, &oversized).await);
    formerr(exchange(responder.address, &good[..good.len() - 3]).await);
    assert_eq!(exchange(responder.address, &response).await, None);
    assert_eq!(exchange(responder.address, b"hello").await, None);
    assert_eq!(exchange(responder.address, &[]).await, None);

    // Still answering.
    let reply = exchange(responder.address, &good).await.expect("a reply");
    assert_eq!(reply[3] & 0x0f, 0, "NOERROR");
    assert!(
        reply.ends_with(&[10, 42, 0, 1]),
        "the A record: {reply:02x?}"
    );
    responder.shutdown.cancel();
}

#[tokio::test]
async fn the_responder_stops_when_cancelled() {
    let responder = start().await;
    responder.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), responder.task)
        .await
        .expect("stopped in time")
        .expect("no panic");
}
