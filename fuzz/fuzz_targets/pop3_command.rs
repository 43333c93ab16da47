//! POP3 protocol core: `parse_command` and `decode_sasl_plain` never panic on any input, and
//! the `DotStuffer` / `TopFilter` output does not depend on where the chunks are cut.
//!
//! Input: the whole input is a command line; for the stuffer it is `split byte, message`.
#![no_main]

use letterbox::pop3::proto::{DotStuffer, TopFilter, decode_sasl_plain, parse_command};
use libfuzzer_sys::fuzz_target;

fn stuff(chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stuffer = DotStuffer::new();
    for chunk in chunks {
        stuffer.encode(chunk, &mut out);
    }
    stuffer.finish(&mut out);
    out
}

fn top(chunks: &[&[u8]], lines: u32) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut filter = TopFilter::new(lines);
    for chunk in chunks {
        if filter.feed(chunk, &mut out) {
            return (out, true);
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_command(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = decode_sasl_plain(text);
    }

    let Some((&split_byte, message)) = data.split_first() else {
        return;
    };
    let split = usize::from(split_byte) % (message.len() + 1);
    let (head, tail) = message.split_at(split);

    let whole = stuff(&[message]);
    assert_eq!(whole, stuff(&[head, tail]));

    // Well framed: the body ends with CRLF, and no line of it is a lone "." (the terminator).
    let body = whole.strip_suffix(b".\r\n").unwrap_or_default();
    assert!(body.is_empty() || body.ends_with(b"\r\n"));
    assert!(!body.windows(5).any(|w| w == b"\r\n.\r\n"));
    assert!(!body.starts_with(b".\r\n"));

    let lines = u32::from(split_byte % 4);
    let (top_whole, done) = top(&[message], lines);
    let (top_parts, done_parts) = top(&[head, tail], lines);
    assert_eq!(top_whole, top_parts);
    assert_eq!(done, done_parts);
    assert!(message.starts_with(&top_whole));
});
