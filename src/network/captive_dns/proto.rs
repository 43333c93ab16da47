//! The captive DNS responder's core: one query in, one reply (or none) out; no sockets, no
//! clock. Parsing and encoding are hickory-proto's.
//!
//! What it answers:
//! - a standard query (QR=0, OPCODE=QUERY) with one question:
//!   - class IN, type A: NOERROR and one A record, the setup address, for any name;
//!   - any other type (AAAA, HTTPS, MX, ...): NOERROR with no answer, so clients use IPv4
//!     and never learn another address for a name;
//! - no question or several (RFC 9619 §4: a QUERY with QDCOUNT above 1 gets FORMERR), an
//!   unparsable message, or one longer than allowed: FORMERR, header only (the question may
//!   be what could not be read);
//! - another opcode (NOTIFY, UPDATE, ...): NOTIMP (RFC 1035 §4.1.1), header only;
//! - an EDNS version above 0: BADVERS with a version-0 OPT (RFC 6891 §6.1.3);
//! - fewer octets than a header, or a response (QR=1): no reply at all. Nothing identifies
//!   the asker of a headless packet, and answering responses could make two responders
//!   answer each other for ever.
//!
//! The reply keeps the query's id and question (with its letter case: resolvers that
//! randomise case check it), copies RD and CD, and sets AA (the answer is this box's own
//! data, not a cache's) and RA (to the phone this is the resolver DHCP named, and it answers
//! every name; dnsmasq, which most captive portals run, says the same). Replies never need
//! truncation: a question (at most 259 octets), one compressed A record and an OPT record
//! make under 300 octets, within the 512 any client accepts.

use std::net::Ipv4Addr;

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use crate::limits::{CAPTIVE_DNS_PACKET_MAX, DNS_UDP_PLAIN_MAX};

/// Seconds a phone may keep a captive answer: long enough for the page's own requests, short
/// enough that after setup the real addresses come back within moments.
pub const CAPTIVE_TTL: u32 = 10;

/// The reply to `query` (one UDP payload), answering every A question with `address`; `None`
/// when nothing should be sent back (see the module comment).
pub fn answer(query: &[u8], address: Ipv4Addr) -> Option<Vec<u8>> {
    let header = Header::read(&mut BinDecoder::new(query)).ok()?;
    if header.message_type != MessageType::Query {
        return None;
    }
    if header.op_code != OpCode::Query {
        return header_only(&header, ResponseCode::NotImp);
    }
    // Checked before the full parse, which would allocate for every question the header
    // claims.
    if header.counts.queries != 1 || query.len() > CAPTIVE_DNS_PACKET_MAX {
        return header_only(&header, ResponseCode::FormErr);
    }
    let Ok(message) = Message::from_vec(query) else {
        return header_only(&header, ResponseCode::FormErr);
    };
    if message.edns.is_none() && query.len() > DNS_UDP_PLAIN_MAX {
        return header_only(&header, ResponseCode::FormErr);
    }
    let question = message.queries.first()?.clone();

    let mut reply = Message::response(header.id, OpCode::Query);
    reply.metadata.authoritative = true;
    reply.metadata.recursion_available = true;
    reply.metadata.recursion_desired = header.recursion_desired;
    reply.metadata.checking_disabled = header.checking_disabled;
    if let Some(asked) = &message.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(CAPTIVE_DNS_PACKET_MAX as u16);
        // RFC 3225 §3: the DO bit is copied into the response.
        edns.set_dnssec_ok(asked.flags().dnssec_ok);
        reply.set_edns(edns);
        if asked.version() > 0 {
            reply.metadata.response_code = ResponseCode::BADVERS;
            reply.add_query(question);
            return reply.to_vec().ok();
        }
    }
    if question.query_type == RecordType::A && question.query_class == DNSClass::IN {
        let record = Record::from_rdata(question.name.clone(), CAPTIVE_TTL, RData::A(A(address)));
        reply.add_answer(record);
    }
    reply.add_query(question);
    reply.to_vec().ok()
}

/// An error reply that repeats only the query's id, opcode and RD bit.
fn header_only(query: &Header, code: ResponseCode) -> Option<Vec<u8>> {
    let mut reply = Message::error_msg(query.id, query.op_code, code);
    reply.metadata.recursion_desired = query.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.to_vec().ok()
}

#[cfg(test)]
mod tests;
