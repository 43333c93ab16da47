//! IMAP protocol core: framing, the command parser, the APPEND prefix parsers and mailbox-name
//! decoding never panic on any input; the MIME scanner gives the same structure however the
//! message is cut into chunks, and its byte ranges stay inside the message; the text SEARCH
//! reads from it (`MessageText`) does not depend on the chunks either.
//!
//! Input: the whole input is a command; for the scanner it is `split byte, message`.
#![no_main]

use letterbox::imap::proto::framing::{literal_at_end, tag_of};
use letterbox::imap::proto::structure;
use letterbox::imap::proto::{
    mailbox_name, mutf7, parse_append_next, parse_append_prefix, parse_command_in,
};
use letterbox::mime::{MessageText, Part, Scanner, structure_of};
use libfuzzer_sys::fuzz_target;

fn check_ranges(part: &Part, size: u64) {
    assert!(part.header_start <= part.body_start);
    assert!(part.body_start <= part.end || part.end == part.body_start);
    assert!(part.end <= size);
    for child in &part.children {
        check_ranges(child, size);
    }
}

/// The text of a message fed in `pieces`.
fn text_of(root: &Part, pieces: &[&[u8]]) -> String {
    let mut text = MessageText::new(root);
    let mut out = String::new();
    let mut offset = 0;
    for piece in pieces {
        text.feed(offset, piece, &mut |_, t| out.push_str(t));
        offset += piece.len() as u64;
    }
    text.finish(&mut |_, t| out.push_str(t));
    out
}

fuzz_target!(|data: &[u8]| {
    for utf8 in [false, true] {
        let _ = parse_command_in(data, utf8);
        let _ = parse_append_prefix(data, utf8);
        let _ = mailbox_name::from_wire(data, utf8);
    }
    let _ = parse_append_next(data);
    let _ = literal_at_end(data);
    let _ = tag_of(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(decoded) = mutf7::decode(text) {
            assert_eq!(mutf7::decode(&mutf7::encode(&decoded)), Some(decoded));
        }
        let _ = mailbox_name::matches(text, text);
    }

    let Some((&split_byte, message)) = data.split_first() else {
        return;
    };
    let split = usize::from(split_byte) % (message.len() + 1);
    let (head, tail) = message.split_at(split);
    let whole = structure_of(message);
    let mut scanner = Scanner::new();
    scanner.feed(head);
    scanner.feed(tail);
    assert_eq!(scanner.finish(), whole);
    check_ranges(&whole, message.len() as u64);
    let mut out = Vec::new();
    structure::write(&mut out, &whole, true);
    assert_eq!(text_of(&whole, &[head, tail]), text_of(&whole, &[message]));
});
