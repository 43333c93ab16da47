use super::*;

/// Everything the framer says about `input`, fed in pieces of `piece` octets.
fn steps(input: &[u8], piece: usize) -> Vec<Step> {
    let mut framer = Framer::new(false);
    let mut out = Vec::new();
    for chunk in input.chunks(piece.max(1)) {
        let mut at = 0;
        loop {
            let (used, step) = framer.feed(&chunk[at..]);
            at += used;
            match step {
                Step::NeedInput => break,
                step => out.push(step),
            }
        }
        assert_eq!(at, chunk.len(), "NeedInput only when all input was taken");
    }
    out
}

fn command(bytes: &[u8]) -> Step {
    Step::Done(Frame::Command(bytes.to_vec()))
}

fn refused(tag: &str, reason: &'static str) -> Step {
    Step::Done(Frame::Refused {
        tag: Some(tag.to_string()),
        reason,
    })
}

#[test]
fn commands_and_literals() {
    let cases: Vec<(&[u8], Vec<Step>)> = vec![
        (
            b"a NOOP\r\nb NOOP\n",
            vec![command(b"a NOOP"), command(b"b NOOP")],
        ),
        (
            b"a LOGIN {5}\r\nalice {3+}\r\npw!\r\n",
            vec![
                Step::SendContinuation,
                command(b"a LOGIN {5}\r\nalice {3+}\r\npw!"),
            ],
        ),
        // Literal data is never read as a command, even when it looks like one.
        (
            b"a X {8+}\r\nb NOOP\r\n\r\n",
            vec![command(b"a X {8+}\r\nb NOOP\r\n")],
        ),
        (
            b"a X {0}\r\n\r\n",
            vec![Step::SendContinuation, command(b"a X {0}\r\n")],
        ),
        // Refused without "+"; the client's LITERAL+ data is skipped.
        (
            b"a LOGIN {4000000000}\r\nb NOOP\r\n",
            vec![refused("a", "Literal too large"), command(b"b NOOP")],
        ),
        (b"a LOGIN {300000+}\r\n", vec![]),
    ];
    for (input, expected) in cases {
        for piece in [1, 2, 3, 7, input.len()] {
            assert_eq!(
                steps(input, piece),
                expected,
                "{input:?} in pieces of {piece}"
            );
        }
    }
}

#[test]
fn before_login_a_large_literal_is_refused_unread() {
    let mut framer = Framer::before_login(false);
    let input = b"a LOGIN {4000000000+}\r\nxxxxxxxx";
    let (used, step) = framer.feed(input);
    assert_eq!(used, input.len() - 8, "the literal's data is not taken");
    assert_eq!(
        step,
        Step::Done(Frame::Abandoned {
            tag: Some("a".into()),
            reason: "Literal too large before login",
        })
    );
    // A synchronizing one is refused without "+"; the stream stays in step.
    let mut framer = Framer::before_login(false);
    let input = b"b LOGIN {9000}\r\nc NOOP\r\n";
    let (used, step) = framer.feed(input);
    assert_eq!(step, refused("b", "Literal too large before login"));
    let (_, step) = framer.feed(&input[used..]);
    assert_eq!(step, command(b"c NOOP"));
    // LOGIN's name and password fit, and APPEND is bounded like any other command.
    let mut framer = Framer::before_login(false);
    let (_, step) = framer.feed(b"d LOGIN {5+}\r\nalice {3+}\r\npw!\r\n");
    assert_eq!(step, command(b"d LOGIN {5+}\r\nalice {3+}\r\npw!"));
    let mut framer = Framer::before_login(false);
    let (_, step) = framer.feed(b"e APPEND INBOX {100000+}\r\n");
    assert!(matches!(step, Step::Done(Frame::Abandoned { .. })));
}

#[test]
fn refused_commands_keep_the_stream_in_step() {
    let mut input = b"a2 LOGIN {300000+}\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 300_000));
    input.extend_from_slice(b" pass\r\na3 NOOP\r\n");
    let long = [
        b"a4 FETCH 1 ".as_slice(),
        &[b'x'; 70_000],
        b" {5+}\r\nhello\r\na5 NOOP\r\n",
    ]
    .concat();
    input.extend_from_slice(&long);
    let expected = vec![
        refused("a2", "Literal too large"),
        command(b"a3 NOOP"),
        refused("a4", "Command line too long"),
        command(b"a5 NOOP"),
    ];
    for piece in [1000, 4096, 65_536, input.len()] {
        assert_eq!(steps(&input, piece), expected, "pieces of {piece}");
    }
}

/// The fuzz target's property on inputs made of framing's own alphabet: what the framer
/// says does not depend on how the input is split.
#[test]
fn splits_do_not_matter() {
    let alphabet = b"a {}+~0123456789\r\n";
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..3000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let length = (seed % 60) as usize;
        let input: Vec<u8> = (0..length)
            .map(|i| alphabet[((seed >> (i % 50)) as usize + i * 7) % alphabet.len()])
            .collect();
        let whole = steps(&input, input.len());
        for piece in [1, 2, 5] {
            assert_eq!(steps(&input, piece), whole, "{input:?}");
        }
    }
}

#[test]
fn append_hands_over_its_message_literal() {
    let mut framer = Framer::new(false);
    let input = b"a APPEND INBOX (\\Seen) {11+}\r\nhello world\r\n";
    let (used, step) = framer.feed(input);
    let Step::Done(Frame::Append { prefix, literal }) = step else {
        panic!("{step:?}");
    };
    assert_eq!(prefix.tag, "a");
    assert_eq!(literal.length, 11);
    assert!(literal.non_sync);
    assert_eq!(
        &input[used..],
        b"hello world\r\n",
        "the literal is left for the session"
    );
}

#[test]
fn lines() {
    let mut reader = LineReader::new(8);
    assert_eq!(reader.feed(b"abc"), (3, None));
    assert_eq!(
        reader.feed(b"de\r\nrest"),
        (4, Some(Line::Complete(b"abcde".to_vec())))
    );
    let long = [&[b'x'; 100][..], b"{5+}\r\n"].concat();
    let (used, line) = reader.feed(&long);
    assert_eq!(used, long.len());
    let Some(Line::TooLong { head, tail }) = line else {
        panic!("{line:?}");
    };
    assert_eq!(head.len(), KEPT_OF_LONG_LINE);
    assert!(tail.ends_with(b"{5+}"));
    // A marker split across the piece that crosses the limit is still seen whole.
    for split in 95..104 {
        let mut reader = LineReader::new(100);
        let line = [&[b'x'; 98][..], b" {5+}\r\n"].concat();
        let (first, _) = reader.feed(&line[..split]);
        let (_, end) = reader.feed(&line[first..]);
        let Some(Line::TooLong { head, tail }) = end else {
            panic!("{end:?}");
        };
        assert_eq!(head, vec![b'x'; KEPT_OF_LONG_LINE], "split at {split}");
        assert!(tail.ends_with(b" {5+}"), "split at {split}: {tail:?}");
    }
}

#[test]
fn markers() {
    assert_eq!(
        literal_at_end(b"a LOGIN {5}"),
        Some(LiteralMarker {
            length: 5,
            non_sync: false,
            binary: false,
        })
    );
    assert_eq!(
        literal_at_end(b"a APPEND x {4000000000+}"),
        Some(LiteralMarker {
            length: 4_000_000_000,
            non_sync: true,
            binary: false,
        })
    );
    assert_eq!(
        literal_at_end(b"a APPEND x ~{12}"),
        Some(LiteralMarker {
            length: 12,
            non_sync: false,
            binary: true,
        })
    );
    assert_eq!(
        literal_at_end(b"a APPEND x (\\Seen) ~{7+}"),
        Some(LiteralMarker {
            length: 7,
            non_sync: true,
            binary: true,
        })
    );
    assert_eq!(literal_at_end(b"a APPEND x ~{}"), None);
    assert_eq!(literal_at_end(b"a APPEND x ~{1}2"), None);
    assert_eq!(literal_at_end(b"a LOGIN {}"), None);
    assert_eq!(literal_at_end(b"a LOGIN {x}"), None);
    assert_eq!(literal_at_end(b"a NOOP"), None);
    assert_eq!(
        literal_at_end(b"a X {99999999999999999999}").map(|m| m.length),
        Some(u64::MAX)
    );
    assert_eq!(tag_of(b"a1 NOOP"), Some("a1"));
    assert_eq!(tag_of(b"+ x"), None);
    assert_eq!(tag_of(b""), None);
}
