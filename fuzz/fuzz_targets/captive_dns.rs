//! Captive DNS responder: `answer` never panics on any datagram, and every reply it gives
//! parses back as a DNS response with the query's id that fits in 512 octets (so it needs
//! neither EDNS nor truncation to reach any client).
//!
//! Input: the whole input is one UDP payload.
#![no_main]

use std::net::Ipv4Addr;

use hickory_proto::op::{Message, MessageType};
use letterbox::limits::DNS_UDP_PLAIN_MAX;
use letterbox::network::captive_dns::answer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(reply) = answer(data, Ipv4Addr::new(10, 42, 0, 1)) else {
        return;
    };
    let parsed = Message::from_vec(&reply).expect("every reply parses");
    assert_eq!(parsed.message_type, MessageType::Response);
    assert_eq!(parsed.id, u16::from_be_bytes([data[0], data[1]]));
    assert!(reply.len() <= DNS_UDP_PLAIN_MAX, "{} octets", reply.len());
});
