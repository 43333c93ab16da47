use super::*;

const MAX: u64 = 1 << 20;
const LINE: usize = 1000;

/// Result of feeding a whole stream: consumed, finished, out, error, finish.
type Outcome = (
    usize,
    bool,
    Vec<u8>,
    Option<DataError>,
    Result<u64, DataError>,
);

/// Feeds `input` in the given chunk sizes (the rest goes in a last chunk), checking
/// the per-call bound on `out`.
fn receive_chunks(input: &[u8], cuts: &[usize], max: u64, line: usize) -> Outcome {
    let mut rx = DataReceiver::new(max, line);
    let mut out = Vec::new();
    let mut consumed = 0;
    let mut finished = false;
    let mut bounds = cuts.to_vec();
    bounds.push(input.len());
    let mut start = 0;
    for end in bounds {
        let chunk = &input[start..end.max(start)];
        let before = out.len();
        let (n, done) = rx.ingest(chunk, &mut out);
        assert!(n <= chunk.len());
        assert!(out.len() - before <= chunk.len(), "out grew past input");
        consumed += n;
        start = end.max(start);
        if done {
            finished = true;
            assert_eq!(rx.ingest(b"more", &mut out), (0, true));
            break;
        }
        assert_eq!(n, chunk.len());
    }
    assert_eq!(rx.is_finished(), finished);
    (consumed, finished, out, rx.error(), rx.finish())
}

fn receive(input: &[u8]) -> Outcome {
    receive_chunks(input, &[], MAX, LINE)
}

#[test]
fn data_cases() {
    type Case = (&'static [u8], usize, bool, &'static [u8], Option<DataError>);
    let cases: &[Case] = &[
        // Passing inputs
        (b".\r\n", 3, true, b"", None),
        (b".\r\nQUIT\r\n", 3, true, b"", None),
        (b"\r\n.\r\n", 5, true, b"\r\n", None),
        (b"hello\r\n.\r\n", 10, true, b"hello\r\n", None),
        (
            b"hello\r\n.\r\nMAIL FROM:<x>\r\n",
            10,
            true,
            b"hello\r\n",
            None,
        ),
        (b"..x\r\n.\r\n", 8, true, b".x\r\n", None),
        (b"a\r\n..\r\n.\r\n", 10, true, b"a\r\n.\r\n", None),
        (b"a\r\n...\r\n.\r\n", 11, true, b"a\r\n..\r\n", None),
        (b"a\r\n.b.\r\n.\r\n", 11, true, b"a\r\nb.\r\n", None),
        (b"a.\r\n.\r\n", 7, true, b"a.\r\n", None),
        (b"hello\r\n", 7, false, b"hello\r\n", None),
        (b"hello\r\n.", 8, false, b"hello\r\n", None),
        (b"hello\r\n.\r", 9, false, b"hello\r\n", None),
        // Failing inputs: bare LF and bare CR never end the data (SMTP smuggling)
        (
            b"hello\n.\r\nMAIL FROM:<x>\r\n",
            24,
            false,
            b"hello",
            Some(DataError::BareLineFeed),
        ),
        (
            b"hello\n.\r\nMAIL FROM:<x>\r\n.\r\nQUIT\r\n",
            27,
            true,
            b"hello",
            Some(DataError::BareLineFeed),
        ),
        (
            b"hello\n.\n",
            8,
            false,
            b"hello",
            Some(DataError::BareLineFeed),
        ),
        (
            b"hello\r\n.\n",
            9,
            false,
            b"hello\r\n",
            Some(DataError::BareLineFeed),
        ),
        (
            b"hello\r\n.\nRSET\r\n.\r\n",
            18,
            true,
            b"hello\r\n",
            Some(DataError::BareLineFeed),
        ),
        (
            b"hello\n.\r\n",
            9,
            false,
            b"hello",
            Some(DataError::BareLineFeed),
        ),
        (
            b"hello\r.\r\n",
            9,
            false,
            b"hello\r",
            Some(DataError::BareCarriageReturn),
        ),
        (
            b"hello\r\n.\r.\r\n",
            12,
            false,
            b"hello\r\n\r",
            Some(DataError::BareCarriageReturn),
        ),
        (
            b"a\r\n.\rx\r\n.\r\n",
            11,
            true,
            b"a\r\n\r",
            Some(DataError::BareCarriageReturn),
        ),
        (
            b"a\r\n.\r\r\n.\r\n",
            10,
            true,
            b"a\r\n\r",
            Some(DataError::BareCarriageReturn),
        ),
        (b"\n.\r\n", 4, false, b"", Some(DataError::BareLineFeed)),
        (
            b"a\r\r\n.\r\n",
            7,
            true,
            b"a\r",
            Some(DataError::BareCarriageReturn),
        ),
    ];
    for &(input, consumed, finished, out, error) in cases {
        let got = receive(input);
        let name = String::from_utf8_lossy(input);
        assert_eq!(got.0, consumed, "consumed {name:?}");
        assert_eq!(got.1, finished, "finished {name:?}");
        assert_eq!(got.2, out, "out {name:?}");
        assert_eq!(got.3, error, "error {name:?}");
        match error {
            Some(e) => assert_eq!(got.4, Err(e), "{name:?}"),
            None if finished => assert_eq!(got.4, Ok(out.len() as u64), "{name:?}"),
            None => {}
        }
    }
}

#[test]
fn smuggling_finishes_only_at_real_end() {
    let mut rx = DataReceiver::new(MAX, LINE);
    let mut out = Vec::new();
    let (n, done) = rx.ingest(b"hello\n.\r\nMAIL FROM:<x>\r\n", &mut out);
    assert_eq!((n, done), (24, false));
    assert_eq!(rx.error(), Some(DataError::BareLineFeed));
    let (n, done) = rx.ingest(b"RCPT TO:<y>\r\n.\r\nNOOP\r\n", &mut out);
    assert_eq!((n, done), (16, true));
    assert_eq!(out, b"hello");
    assert_eq!(rx.finish(), Err(DataError::BareLineFeed));
}

#[test]
fn end_marker_split_at_every_position() {
    let inputs: &[&[u8]] = &[
        b"Subject: x\r\n\r\n..dots\r\nbody\r\n.\r\nQUIT\r\n",
        b".\r\nQUIT\r\n",
        b"\r\n.\r\n",
        b"a\r\n.\rb\r\n.\r\nX",
        b"hello\n.\r\nMAIL FROM:<x>\r\n.\r\nQUIT\r\n",
        b"a\r\n.\n..\r\n.\r.\r\n.\r\n",
    ];
    for input in inputs {
        let whole = receive(input);
        for cut in 0..=input.len() {
            assert_eq!(
                receive_chunks(input, &[cut], MAX, LINE),
                whole,
                "{:?} cut at {cut}",
                String::from_utf8_lossy(input)
            );
        }
        for a in 0..=input.len() {
            for b in a..=input.len() {
                assert_eq!(receive_chunks(input, &[a, b], MAX, LINE), whole);
            }
        }
        let every: Vec<usize> = (1..input.len()).collect();
        assert_eq!(receive_chunks(input, &every, MAX, LINE), whole);
    }
}

#[test]
fn line_length_limit() {
    // 998 octets + CRLF = 1000: fine. 999 + CRLF = 1001: too long.
    let ok = [vec![b'x'; 998], b"\r\n.\r\n".to_vec()].concat();
    let got = receive(&ok);
    assert!(got.1);
    assert_eq!(got.3, None);
    assert_eq!(got.4, Ok(1000));

    let bad = [vec![b'x'; 999], b"\r\n.\r\n".to_vec()].concat();
    let got = receive(&bad);
    assert!(got.1);
    assert_eq!(got.3, Some(DataError::LineTooLong));
    assert_eq!(got.2.len(), 998, "out stops before the offending byte");

    // The stuffing dot does not count (RFC 5321 §4.5.3.1.6).
    let stuffed = [b".".to_vec(), vec![b'.'; 998], b"\r\n.\r\n".to_vec()].concat();
    assert_eq!(receive(&stuffed).4, Ok(1000));
}

#[test]
fn size_limit() {
    // "abc\r\n" is 5 octets.
    let cases = [(5, Ok(5)), (4, Err(DataError::TooLarge)), (6, Ok(5))];
    for (max, want) in cases {
        let got = receive_chunks(b"abc\r\n.\r\nQUIT\r\n", &[], max, LINE);
        assert_eq!((got.0, got.1), (8, true), "max {max}");
        assert_eq!(got.4, want, "max {max}");
        let kept = usize::try_from(max.min(5)).unwrap();
        assert_eq!(got.2, &b"abc\r\n"[..kept], "max {max}");
    }
    // Too large takes precedence over an earlier format error.
    let got = receive_chunks(b"a\nbcdef\r\n.\r\n", &[], 4, LINE);
    assert_eq!(got.3, Some(DataError::TooLarge));
    assert_eq!(got.2, b"a");
}

#[test]
fn out_never_receives_bytes_after_an_error() {
    let input = b"good\r\nbad\nline\r\nmore text\r\n..stuffed\r\n.\r\n";
    for cut in 0..=input.len() {
        let got = receive_chunks(input, &[cut], MAX, LINE);
        assert_eq!(got.2, b"good\r\nbad", "cut {cut}");
        assert!(got.1);
        assert_eq!(got.3, Some(DataError::BareLineFeed));
    }
    // Errors in a later call: nothing more is appended after it.
    let mut rx = DataReceiver::new(MAX, LINE);
    let mut out = Vec::new();
    rx.ingest(b"ok\r\nx\ry", &mut out);
    assert_eq!(out, b"ok\r\nx\r");
    rx.ingest(b"lots more text\r\n", &mut out);
    assert_eq!(out, b"ok\r\nx\r");
    assert_eq!(rx.ingest(b".\r\n", &mut out), (3, true));
    assert_eq!(out, b"ok\r\nx\r");
}

/// A small deterministic generator; the tests need no `rand`.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Non-streaming reference: the message is everything before the first "\r\n.\r\n"
/// (with a CRLF imagined before the data), split into CRLF lines with one leading
/// dot removed from each.
fn reference(input: &[u8]) -> Option<(usize, Vec<u8>)> {
    let framed = [b"\r\n".as_slice(), input].concat();
    let at = framed.windows(5).position(|w| w == b"\r\n.\r\n")?;
    let body = &framed[2..at + 2]; // includes the CRLF before the final dot
    let mut message = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(rest.len(), |p| p + 2);
        let line = &rest[..end];
        message.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        rest = &rest[end..];
    }
    Some((at + 3, message))
}

#[test]
fn matches_reference_on_generated_streams() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let pieces: [&[u8]; 8] = [b".", b"..", b"\r", b"\n", b"\r\n", b"a", b"\r\n.", b".\r\n"];
    let mut cases = 0;
    for _ in 0..3000 {
        let count = rng.next() % 12;
        let input: Vec<u8> = (0..count)
            .flat_map(|_| pieces[(rng.next() % pieces.len() as u64) as usize])
            .copied()
            .collect();
        let cut = (rng.next() % (input.len() as u64 + 1)) as usize;
        let got = receive_chunks(&input, &[cut], MAX, LINE);
        assert_eq!(got, receive(&input));
        match reference(&input) {
            Some((consumed, message)) => {
                cases += 1;
                assert_eq!((got.0, got.1), (consumed, true), "{input:?}");
                assert!(message.starts_with(&got.2), "{input:?}");
                if got.3.is_none() {
                    assert_eq!(got.2, message, "{input:?}");
                }
                let bare = message.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n')
                    || message.windows(2).any(|w| w[0] != b'\r' && w[1] == b'\n')
                    || message.first() == Some(&b'\n');
                assert_eq!(got.3.is_some(), bare, "{input:?}");
            }
            None => assert_eq!((got.0, got.1), (input.len(), false), "{input:?}"),
        }
    }
    assert!(cases > 500, "only {cases} finished streams");
}

#[test]
fn checker_cases() {
    type Case = (&'static [u8], Result<u64, DataError>);
    let cases: &[Case] = &[
        (b"", Ok(0)),
        (b"abc\r\n", Ok(5)),
        (b"abc", Ok(3)), // BDAT may end without CRLF
        (b"\r\n\r\n", Ok(4)),
        (b"abc\r", Err(DataError::BareCarriageReturn)),
        (b"a\rb\r\n", Err(DataError::BareCarriageReturn)),
        (b"a\nb\r\n", Err(DataError::BareLineFeed)),
        (b"\n", Err(DataError::BareLineFeed)),
        (b"\r\r\n", Err(DataError::BareCarriageReturn)),
    ];
    for &(input, want) in cases {
        for cut in 0..=input.len() {
            let mut c = MessageChecker::new(MAX, LINE);
            c.feed(&input[..cut]);
            c.feed(&input[cut..]);
            assert_eq!(c.finish(), want, "{input:?} cut {cut}");
            assert_eq!(c.size(), input.len() as u64);
        }
    }
}

#[test]
fn checker_limits() {
    let line_ok = [vec![b'x'; 998], b"\r\n".to_vec()].concat();
    let line_bad = [vec![b'x'; 999], b"\r\n".to_vec()].concat();
    let cases: [(&[u8], u64, Result<u64, DataError>); 5] = [
        (&line_ok, MAX, Ok(1000)),
        (&line_bad, MAX, Err(DataError::LineTooLong)),
        (b"0123456789", 10, Ok(10)),
        (b"01234567890", 10, Err(DataError::TooLarge)),
        (b"\n01234567890", 10, Err(DataError::TooLarge)),
    ];
    for (input, max, want) in cases {
        let mut c = MessageChecker::new(max, LINE);
        c.feed(input);
        assert_eq!(c.finish(), want);
        assert_eq!(c.error(), want.err());
    }
    // A CR at the end of one chunk and LF at the start of the next is fine; the size
    // keeps counting after an error.
    let mut c = MessageChecker::new(4, LINE);
    c.feed(b"ab\r");
    assert_eq!(c.error(), None);
    c.feed(b"\nc");
    assert_eq!(c.error(), Some(DataError::TooLarge));
    c.feed(b"defg");
    assert_eq!(c.size(), 9);
    assert_eq!(c.finish(), Err(DataError::TooLarge));
    // Another error in an earlier chunk: the size still wins, as when sent whole.
    let whole = {
        let mut c = MessageChecker::new(4, LINE);
        c.feed(b"a\nbcdef");
        c.error()
    };
    let mut c = MessageChecker::new(4, LINE);
    c.feed(b"a\nb");
    assert_eq!(c.error(), Some(DataError::BareLineFeed));
    c.feed(b"cdef");
    assert_eq!(c.error(), whole);
    assert_eq!(whole, Some(DataError::TooLarge));
}

#[test]
fn error_replies() {
    let cases = [
        (DataError::TooLarge, 552, "5.3.4"),
        (DataError::LineTooLong, 554, "5.6.0"),
        (DataError::BareCarriageReturn, 554, "5.6.0"),
        (DataError::BareLineFeed, 554, "5.6.0"),
    ];
    for (e, code, enhanced) in cases {
        let r = e.reply();
        assert_eq!((r.code, r.enhanced), (code, Some(enhanced)), "{e}");
        assert!(r.to_bytes().is_ascii());
    }
}
