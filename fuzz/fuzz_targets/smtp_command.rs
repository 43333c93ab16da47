//! SMTP protocol core: `parse_command` never panics, parsed addresses survive a
//! Display → parse round trip, and the `DataReceiver` / `MessageChecker` results do not
//! depend on where the input is cut.
//!
//! Input: the whole input is a command line; for the DATA receiver it is
//! `split byte, stream`.
#![no_main]

use letterbox::smtp::proto::{
    Command, DataError, DataReceiver, MailParams, MessageChecker, parse_command,
};
use libfuzzer_sys::fuzz_target;

/// Small limits so the size and line checks are reached.
const MAX_SIZE: u64 = 512;
const MAX_LINE: usize = 80;

type Outcome = (
    usize,
    bool,
    Vec<u8>,
    Option<DataError>,
    Result<u64, DataError>,
);

fn receive(chunks: &[&[u8]]) -> Outcome {
    let mut rx = DataReceiver::new(MAX_SIZE, MAX_LINE);
    let mut out = Vec::new();
    let mut consumed = 0;
    for chunk in chunks {
        let before = out.len();
        let (n, done) = rx.ingest(chunk, &mut out);
        assert!(n <= chunk.len());
        assert!(out.len() - before <= chunk.len(), "out grew past the input");
        consumed += n;
        if done {
            assert_eq!(rx.ingest(b"X", &mut out), (0, true));
            return (consumed, true, out, rx.error(), rx.finish());
        }
        assert_eq!(n, chunk.len(), "unfinished receiver consumes everything");
    }
    (consumed, false, out, rx.error(), rx.finish())
}

fn check(chunks: &[&[u8]]) -> (Option<DataError>, Result<u64, DataError>, u64) {
    let mut checker = MessageChecker::new(MAX_SIZE, MAX_LINE);
    for chunk in chunks {
        checker.feed(chunk);
    }
    (checker.error(), checker.finish(), checker.size())
}

fuzz_target!(|data: &[u8]| {
    if let Ok(command) = parse_command(data) {
        let again = match &command {
            Command::Rcpt { to } => Some((format!("RCPT TO:<{to}>"), command.clone())),
            Command::Mail {
                from: Some(from), ..
            } => Some((
                format!("MAIL FROM:<{from}>"),
                Command::Mail {
                    from: Some(from.clone()),
                    params: MailParams::default(),
                },
            )),
            _ => None,
        };
        if let Some((line, want)) = again {
            assert_eq!(parse_command(line.as_bytes()), Ok(want), "{line:?}");
        }
    }

    let Some((&split_byte, stream)) = data.split_first() else {
        return;
    };
    let split = usize::from(split_byte) % (stream.len() + 1);
    let (head, tail) = stream.split_at(split);

    let whole = receive(&[stream]);
    assert_eq!(whole, receive(&[head, tail]));
    if whole.1 {
        assert!(stream[..whole.0].ends_with(b".\r\n"));
        if whole.3.is_none() {
            // A clean message is empty or ends with CRLF, and holds no end marker.
            assert!(whole.2.is_empty() || whole.2.ends_with(b"\r\n"));
            assert_eq!(whole.4, Ok(whole.2.len() as u64));
        }
    } else {
        assert_eq!(whole.0, stream.len());
    }
    assert!(whole.2.len() as u64 <= MAX_SIZE);

    assert_eq!(check(&[stream]), check(&[head, tail]));
});
