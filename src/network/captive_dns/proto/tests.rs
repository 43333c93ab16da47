use hickory_proto::op::Query;
use hickory_proto::rr::Name;
use hickory_proto::rr::rdata::{NULL, TXT};

use super::*;

const SETUP: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 1);

/// Queries written by another library (python3-dnslib), as they arrive on the wire.
/// `captive.apple.com A`, id 0x1234, RD.
const DNSLIB_A: &str = "1234010000010000000000000763617074697665056170706c6503636f6d0000010001";
/// `CaPtIvE.apple.com AAAA`, id 0xbeef, RD, EDNS 1232 with DO.
const DNSLIB_AAAA_EDNS: &str =
    "beef010000010000000000010743615074497645056170706c6503636f6d00001c000100002904d0000080000000";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn query_message(id: u16, name: &str, record_type: RecordType) -> Message {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    let name = Name::from_ascii(name).expect("name");
    message.add_query(Query::query(name, record_type));
    message
}

fn query(id: u16, name: &str, record_type: RecordType) -> Vec<u8> {
    query_message(id, name, record_type)
        .to_vec()
        .expect("encode")
}

fn with_edns(mut message: Message, payload: u16, version: u8) -> Vec<u8> {
    let mut edns = Edns::new();
    edns.set_max_payload(payload).set_version(version);
    message.set_edns(edns);
    message.to_vec().expect("encode")
}

fn reply_to(query: &[u8]) -> Message {
    let reply = answer(query, SETUP).expect("a reply");
    assert!(reply.len() <= DNS_UDP_PLAIN_MAX, "{} octets", reply.len());
    Message::from_vec(&reply).expect("the reply parses")
}

fn a_records(reply: &Message) -> Vec<(String, u32, Ipv4Addr)> {
    reply
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(A(ip)) => Some((record.name.to_ascii(), record.ttl, *ip)),
            _ => None,
        })
        .collect()
}

#[test]
fn every_name_gets_the_setup_address() {
    let names = [
        "connectivitycheck.gstatic.com.",
        "captive.apple.com.",
        "www.msftconnecttest.com.",
        "detectportal.firefox.com.",
        "no-such-name.invalid.",
        "localhost.",
        "x.",
        ".",
    ];
    for (id, name) in (1u16..).zip(names) {
        let reply = reply_to(&query(id, name, RecordType::A));
        assert_eq!(reply.id, id, "{name}");
        assert_eq!(reply.message_type, MessageType::Response);
        assert_eq!(reply.op_code, OpCode::Query);
        assert_eq!(reply.response_code, ResponseCode::NoError, "{name}");
        assert!(reply.authoritative && reply.recursion_available);
        assert!(reply.recursion_desired, "RD is copied");
        assert_eq!(reply.queries.len(), 1);
        assert_eq!(reply.queries[0].name().to_ascii(), name);
        assert_eq!(reply.queries[0].query_type(), RecordType::A);
        assert_eq!(
            a_records(&reply),
            vec![(name.to_string(), CAPTIVE_TTL, SETUP)],
            "{name}"
        );
        assert!(
            reply.edns.is_none(),
            "no EDNS in the reply to a query without it"
        );
    }
}

#[test]
fn other_types_and_classes_get_no_answer() {
    let types = [
        RecordType::AAAA,
        RecordType::HTTPS,
        RecordType::MX,
        RecordType::TXT,
        RecordType::ANY,
        RecordType::PTR,
    ];
    for record_type in types {
        let reply = reply_to(&query(7, "captive.apple.com.", record_type));
        assert_eq!(reply.response_code, ResponseCode::NoError, "{record_type}");
        assert!(reply.answers.is_empty(), "{record_type}");
        assert_eq!(reply.queries[0].query_type(), record_type);
    }
    let mut chaos = query_message(8, "version.bind.", RecordType::A);
    chaos.queries[0].set_query_class(DNSClass::CH);
    let reply = reply_to(&chaos.to_vec().expect("encode"));
    assert_eq!(reply.response_code, ResponseCode::NoError);
    assert!(reply.answers.is_empty());
}

#[test]
fn packets_from_another_library_are_answered() {
    let query = hex(DNSLIB_A);
    let reply = reply_to(&query);
    assert_eq!(reply.id, 0x1234);
    assert_eq!(
        a_records(&reply),
        vec![("captive.apple.com.".into(), CAPTIVE_TTL, SETUP)]
    );
    // Header, then the question exactly as asked.
    let raw = answer(&query, SETUP).expect("reply");
    assert_eq!(raw[12..query.len()], query[12..]);

    let query = hex(DNSLIB_AAAA_EDNS);
    let reply = reply_to(&query);
    assert_eq!(reply.id, 0xbeef);
    assert_eq!(reply.response_code, ResponseCode::NoError);
    assert!(reply.answers.is_empty());
    let edns = reply.edns.as_ref().expect("EDNS is answered with EDNS");
    assert_eq!(usize::from(edns.max_payload()), CAPTIVE_DNS_PACKET_MAX);
    assert!(edns.flags().dnssec_ok, "DO is copied");
    // The letter case of the question is kept (resolvers that randomise it check it).
    let raw = answer(&query, SETUP).expect("reply");
    let question_end = 12 + "CaPtIvE.apple.com".len() + 2 + 4;
    assert_eq!(raw[12..question_end], query[12..question_end]);
}

#[test]
fn the_answer_keeps_the_case_of_the_question() {
    let query = query(9, "ConnectivityCheck.GSTATIC.com.", RecordType::A);
    let reply = reply_to(&query);
    assert_eq!(
        a_records(&reply)[0].0,
        "ConnectivityCheck.GSTATIC.com.",
        "the answer's name"
    );
    assert_eq!(
        reply.queries[0].name().to_ascii(),
        "ConnectivityCheck.GSTATIC.com."
    );
}

#[test]
fn edns_is_answered_and_a_newer_version_gets_badvers() {
    let reply = reply_to(&with_edns(
        query_message(10, "captive.apple.com.", RecordType::A),
        4096,
        0,
    ));
    assert_eq!(reply.response_code, ResponseCode::NoError);
    assert_eq!(a_records(&reply).len(), 1);
    let edns = reply.edns.as_ref().expect("edns");
    assert_eq!((edns.version(), edns.max_payload()), (0, 1232));
    assert!(!edns.flags().dnssec_ok);

    let reply = reply_to(&with_edns(
        query_message(11, "captive.apple.com.", RecordType::A),
        1232,
        1,
    ));
    assert_eq!(reply.id, 11);
    // BADVERS is 16, which hickory reads back as BADSIG (RFC 8945 gives both the number).
    assert_eq!(u16::from(reply.response_code), 16);
    assert!(reply.answers.is_empty());
    assert_eq!(reply.edns.as_ref().map(Edns::version), Some(0));
}

/// The reply's header: id, QR, opcode, rcode (low four bits) and the four counts.
fn header_of(reply: &[u8]) -> (u16, bool, u8, u8, [u16; 4]) {
    let word = |at: usize| u16::from_be_bytes([reply[at], reply[at + 1]]);
    (
        word(0),
        reply[2] & 0x80 != 0,
        (reply[2] >> 3) & 0x0f,
        reply[3] & 0x0f,
        [word(4), word(6), word(8), word(10)],
    )
}

const FORMERR: u8 = 1;
const NOTIMP: u8 = 4;

#[test]
fn malformed_queries_get_formerr_with_the_header_only() {
    let good = query(0x4242, "captive.apple.com.", RecordType::A);
    let mut two_questions = query_message(0x4242, "captive.apple.com.", RecordType::A);
    two_questions.add_query(Query::query(
        Name::from_ascii("example.com.").expect("name"),
        RecordType::A,
    ));
    let mut no_question = good[..12].to_vec();
    no_question[5] = 0;
    let mut name_past_the_end = good.clone();
    name_past_the_end[12] = 60;
    let mut pointer_loop = good[..12].to_vec();
    pointer_loop.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    let mut claims_many = good[..12].to_vec();
    claims_many[4..6].copy_from_slice(&u16::MAX.to_be_bytes());
    let cases: [(&str, Vec<u8>); 7] = [
        ("two questions", two_questions.to_vec().expect("encode")),
        ("no question", no_question),
        ("a header alone claiming one", good[..12].to_vec()),
        ("a question cut short", good[..good.len() - 1].to_vec()),
        ("a label past the end", name_past_the_end),
        ("a compression loop", pointer_loop),
        ("65535 questions claimed", claims_many),
    ];
    for (what, query) in cases {
        let reply = answer(&query, SETUP).unwrap_or_else(|| panic!("{what}: no reply"));
        assert_eq!(
            header_of(&reply),
            (0x4242, true, 0, FORMERR, [0; 4]),
            "{what}"
        );
        assert_eq!(reply.len(), 12, "{what}");
        assert!(Message::from_vec(&reply).is_ok(), "{what}");
    }
}

#[test]
fn other_opcodes_get_notimp() {
    for op_code in [OpCode::Status, OpCode::Notify, OpCode::Update] {
        let mut message = query_message(0x0101, "captive.apple.com.", RecordType::A);
        message.metadata.op_code = op_code;
        let reply = answer(&message.to_vec().expect("encode"), SETUP).expect("reply");
        let expected_op = u8::from(op_code);
        assert_eq!(
            header_of(&reply),
            (0x0101, true, expected_op, NOTIMP, [0; 4]),
            "{op_code:?}"
        );
    }
}

#[test]
fn responses_and_headless_scraps_get_no_reply() {
    let good = query(5, "captive.apple.com.", RecordType::A);
    let mut response = good.clone();
    response[2] |= 0x80;
    assert_eq!(answer(&response, SETUP), None, "a response (QR=1)");
    // Our own reply, sent back to us, is not answered either.
    let reply = answer(&good, SETUP).expect("reply");
    assert_eq!(answer(&reply, SETUP), None, "our own reply");
    for length in 0..12 {
        assert_eq!(answer(&good[..length], SETUP), None, "{length} octets");
    }
}

/// A query padded with a TXT record in the additional section to `length` octets.
fn padded(mut message: Message, length: usize) -> Vec<u8> {
    let base = message.to_vec().expect("encode").len();
    // Root name, type, class, TTL, rdlength: 11 octets; each string has a length octet.
    let mut text = length - base - 11;
    let mut strings = Vec::new();
    while text > 0 {
        let part = text.min(256);
        strings.push("p".repeat(part - 1));
        text -= part;
    }
    let record = Record::from_rdata(Name::root(), 0, RData::TXT(TXT::new(strings)));
    message.add_additional(record);
    let bytes = message.to_vec().expect("encode");
    assert_eq!(bytes.len(), length);
    bytes
}

#[test]
fn oversized_queries_get_formerr() {
    let plain = |length| {
        padded(
            query_message(3, "captive.apple.com.", RecordType::A),
            length,
        )
    };
    let extended = |length| {
        let mut message = query_message(3, "captive.apple.com.", RecordType::A);
        message.set_edns(Edns::new());
        padded(message, length)
    };
    let formerr = (3, true, 0, FORMERR, [0; 4]);

    let reply = reply_to(&plain(DNS_UDP_PLAIN_MAX));
    assert_eq!(a_records(&reply).len(), 1, "512 octets without EDNS");
    let reply = answer(&plain(DNS_UDP_PLAIN_MAX + 1), SETUP).expect("reply");
    assert_eq!(header_of(&reply), formerr, "513 octets without EDNS");

    let reply = reply_to(&extended(CAPTIVE_DNS_PACKET_MAX));
    assert_eq!(a_records(&reply).len(), 1, "1232 octets with EDNS");
    let reply = answer(&extended(CAPTIVE_DNS_PACKET_MAX + 1), SETUP).expect("reply");
    assert_eq!(header_of(&reply), formerr, "1233 octets with EDNS");
    let reply = answer(&extended(60_000), SETUP).expect("reply");
    assert_eq!(header_of(&reply), formerr, "60000 octets");
}

#[test]
fn the_longest_name_still_fits_in_512_octets() {
    // 255 octets on the wire (RFC 1035 §2.3.4): labels of 63, 63, 63 and 61 octets, each
    // with its length octet, and the root.
    let label = "a".repeat(63);
    let name = format!("{label}.{label}.{label}.{}.", "b".repeat(61));
    let query = with_edns(query_message(4, &name, RecordType::A), 4096, 0);
    let reply = reply_to(&query);
    assert_eq!(a_records(&reply), vec![(name, CAPTIVE_TTL, SETUP)]);
}

#[test]
fn an_unknown_record_in_the_query_does_not_matter() {
    let mut message = query_message(6, "captive.apple.com.", RecordType::A);
    let unknown = RData::Unknown {
        code: RecordType::Unknown(65280),
        rdata: NULL::with(vec![1, 2, 3]),
    };
    message.add_additional(Record::from_rdata(Name::root(), 0, unknown));
    let reply = reply_to(&message.to_vec().expect("encode"));
    assert_eq!(a_records(&reply).len(), 1);
}

/// A small deterministic fuzzer (the fuzz target `captive_dns` runs the same check at
/// length): every truncation and many one-octet changes of real queries never panic, and
/// every reply parses, keeps the id, is a response and fits in 512 octets.
#[test]
fn damaged_queries_never_panic_and_every_reply_parses() {
    let seeds = [
        hex(DNSLIB_A),
        hex(DNSLIB_AAAA_EDNS),
        query(1, "connectivitycheck.gstatic.com.", RecordType::A),
        with_edns(
            query_message(2, "www.msftconnecttest.com.", RecordType::A),
            1232,
            0,
        ),
    ];
    let mut checked = 0;
    for seed in &seeds {
        let mut inputs: Vec<Vec<u8>> = (0..=seed.len()).map(|n| seed[..n].to_vec()).collect();
        for at in 0..seed.len() {
            let original = seed[at];
            for changed in [0x00, 0xff, 0xc0, 0x3f, 0x40, original ^ 0x80, original ^ 1] {
                let mut input = seed.clone();
                input[at] = changed;
                inputs.push(input);
            }
        }
        for input in inputs {
            checked += 1;
            let Some(reply) = answer(&input, SETUP) else {
                continue;
            };
            let parsed = Message::from_vec(&reply)
                .unwrap_or_else(|e| panic!("reply to {input:02x?} does not parse: {e}"));
            assert_eq!(parsed.id, u16::from_be_bytes([input[0], input[1]]));
            assert_eq!(parsed.message_type, MessageType::Response);
            assert!(reply.len() <= DNS_UDP_PLAIN_MAX);
        }
    }
    assert!(checked > 1000, "only {checked} inputs");
}
