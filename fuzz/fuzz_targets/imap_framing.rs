//! IMAP framing: the framer never panics, takes every octet it is given before asking for
//! more, keeps each command within the limits, and says the same whatever the input's split
//! (one octet at a time, or in the pieces the first input octet picks).
//!
//! Input: `split byte, client bytes`.
#![no_main]

use letterbox::imap::proto::framing::{Frame, Framer, Step};
use letterbox::limits::{IMAP_COMMAND_LINE, IMAP_COMMAND_MAX};
use libfuzzer_sys::fuzz_target;

fn steps(input: &[u8], piece: usize) -> Vec<Step> {
    let mut framer = Framer::new(false);
    let mut out = Vec::new();
    for chunk in input.chunks(piece) {
        let mut at = 0;
        loop {
            let (used, step) = framer.feed(&chunk[at..]);
            assert!(used <= chunk.len() - at);
            at += used;
            match step {
                Step::NeedInput => break,
                step => {
                    if let Step::Done(Frame::Command(command)) = &step {
                        // Lines and literals up to the last literal, then one last line.
                        assert!(command.len() <= IMAP_COMMAND_MAX + 2 + IMAP_COMMAND_LINE);
                    }
                    out.push(step);
                }
            }
        }
        assert_eq!(at, chunk.len(), "NeedInput before all input was taken");
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let whole = steps(input, input.len().max(1));
    assert_eq!(steps(input, 1), whole);
    assert_eq!(steps(input, usize::from(split).max(1)), whole);
});
