//! What reads a message anyone can send to port 25, beyond the MIME scanner and the text
//! SEARCH reads (`imap_command`): the rewrite's header filter gives the same output however
//! the message is cut and passes it on whole when it drops nothing; the structure stored for
//! it reads back the same from its JSON; the spam filter's tokenizer, the header helpers and
//! mail-auth's parser (DKIM, DMARC) never panic. With `panic = "abort"` a panic in any of
//! them would take the whole daemon down, from one message.
//!
//! Input: `split byte, message`.
#![no_main]

use letterbox::mime::{Part, field_values, sent_day, structure_of};
use letterbox::smtp::proto::header_filter::{
    HeaderFilter, is_authentication_results_from, is_field_named,
};
use letterbox::spam::Tokens;
use libfuzzer_sys::fuzz_target;

/// The rewrite's filter (`smtp/filter/rewrite.rs`), fed `pieces` in turn.
fn rewritten(pieces: &[&[u8]], drop_nothing: bool) -> Vec<u8> {
    let mut filter = HeaderFilter::new(move |field| {
        !drop_nothing
            && (is_authentication_results_from(field, "mx.example")
                || is_field_named(field, "X-Spam-Status"))
    });
    let mut out = Vec::new();
    for piece in pieces {
        filter.feed(piece, &mut out);
    }
    filter.finish(&mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&split_byte, message)) = data.split_first() else {
        return;
    };
    let split = usize::from(split_byte) % (message.len() + 1);
    let (head, tail) = message.split_at(split);

    let filtered = rewritten(&[message], false);
    assert_eq!(rewritten(&[head, tail], false), filtered);
    assert!(filtered.len() <= message.len());
    assert_eq!(rewritten(&[head, tail], true), message);

    let root = structure_of(message);
    let json = serde_json::to_vec(&root).expect("a structure serializes");
    let stored: Part = serde_json::from_slice(&json).expect("a stored structure reads back");
    assert_eq!(stored, root);

    let tokens = Tokens::of_message(message);
    assert_eq!(Tokens::of_message(message).as_slice(), tokens.as_slice());
    assert_eq!(tokens.hashes().len(), tokens.len());

    let header_end = usize::try_from(root.body_start).map_or(message.len(), |end| end.min(message.len()));
    let header = &message[..header_end];
    let _ = sent_day(header);
    for name in ["from", "received", "authentication-results"] {
        for value in field_values(header, name) {
            assert!(value.len() <= header.len());
        }
    }

    let _ = mail_auth::AuthenticatedMessage::parse(message);
});
