use super::*;

fn pass(p: &str) -> Command {
    Command::Pass(Secret::new(p.to_string()))
}

fn auth(mechanism: Option<&str>, ir: Option<&str>) -> Command {
    Command::Auth {
        mechanism: mechanism.map(str::to_string),
        initial_response: ir.map(|s| Secret::new(s.to_string())),
    }
}

fn syntax(msg: &'static str) -> Result<Command, ParseError> {
    Err(ParseError::Syntax(msg))
}

/// Each accepted form sits beside a rejected neighbour.
#[test]
fn parse_table() {
    let long_user = format!("USER {}", "a".repeat(MAX_COMMAND_LINE - 2 - 5));
    let too_long_user = format!("USER {}", "a".repeat(MAX_COMMAND_LINE - 2 - 4));
    let cases: Vec<(&[u8], Result<Command, ParseError>)> = vec![
        // Keywords, any case.
        (b"STAT", Ok(Command::Stat)),
        (b"stat", Ok(Command::Stat)),
        (b"sTaT", Ok(Command::Stat)),
        (b"STAT x", syntax("usage: STAT")),
        (b"STATS", Err(ParseError::Unknown)),
        (b"QUIT", Ok(Command::Quit)),
        (b"quit ", Ok(Command::Quit)),
        (b"QUIT now", syntax("usage: QUIT")),
        (b"NOOP", Ok(Command::Noop)),
        (b"RSET", Ok(Command::Rset)),
        (b"RSET 1", syntax("usage: RSET")),
        (b"CAPA", Ok(Command::Capa)),
        (b"capa", Ok(Command::Capa)),
        (b"STLS", Ok(Command::Stls)),
        (b"STLS x", syntax("usage: STLS")),
        (b"", Err(ParseError::Unknown)),
        (b"XYZZY", Err(ParseError::Unknown)),
        (b"APOP user digest", Err(ParseError::Unknown)),
        (b" STAT", Err(ParseError::Unknown)),
        // Message numbers.
        (b"RETR 1", Ok(Command::Retr(1))),
        (b"retr 7", Ok(Command::Retr(7))),
        (b"RETR  2", Ok(Command::Retr(2))),
        (b"RETR 4294967295", Ok(Command::Retr(u32::MAX))),
        (b"RETR 0", syntax("invalid message number")),
        (b"RETR x", syntax("invalid message number")),
        (b"RETR -1", syntax("invalid message number")),
        (b"RETR +1", syntax("invalid message number")),
        (b"RETR 1 2", syntax("usage: RETR msg")),
        (b"RETR", syntax("usage: RETR msg")),
        (b"DELE 3", Ok(Command::Dele(3))),
        (b"DELE", syntax("usage: DELE msg")),
        (b"DELE 0", syntax("invalid message number")),
        (b"LIST", Ok(Command::List(None))),
        (b"LIST 4", Ok(Command::List(Some(4)))),
        (b"LIST 4294967296", syntax("invalid message number")),
        (b"LIST 1 2", syntax("usage: LIST [msg]")),
        (b"UIDL", Ok(Command::Uidl(None))),
        (b"uidl 9", Ok(Command::Uidl(Some(9)))),
        (b"UIDL 0", syntax("invalid message number")),
        (b"UIDL a b", syntax("usage: UIDL [msg]")),
        (b"TOP 1 0", Ok(Command::Top { msg: 1, lines: 0 })),
        (b"top 2 10", Ok(Command::Top { msg: 2, lines: 10 })),
        (b"TOP 0 1", syntax("invalid message number")),
        (b"TOP 1 x", syntax("invalid line count")),
        (b"TOP 1", syntax("usage: TOP msg lines")),
        (b"TOP 1 2 3", syntax("usage: TOP msg lines")),
        // USER / PASS.
        (b"USER alice", Ok(Command::User("alice".into()))),
        (b"user alice", Ok(Command::User("alice".into()))),
        (b"USER", syntax("usage: USER name")),
        (b"USER alice smith", syntax("usage: USER name")),
        (b"PASS secret", Ok(pass("secret"))),
        (b"pass with spaces ", Ok(pass("with spaces "))),
        (b"PASS  lead", Ok(pass(" lead"))),
        (b"PASS", syntax("usage: PASS password")),
        (b"PASS ", syntax("usage: PASS password")),
        ("PASS pässwörd".as_bytes(), Ok(pass("pässwörd"))),
        (b"PASS a\tb", Err(ParseError::Encoding)),
        // AUTH.
        (b"AUTH", Ok(auth(None, None))),
        (b"AUTH PLAIN", Ok(auth(Some("PLAIN"), None))),
        (b"auth plain", Ok(auth(Some("PLAIN"), None))),
        (
            b"AUTH PLAIN AGFsaWNlAHNlY3JldA==",
            Ok(auth(Some("PLAIN"), Some("AGFsaWNlAHNlY3JldA=="))),
        ),
        (b"AUTH PLAIN =", Ok(auth(Some("PLAIN"), Some("")))),
        (
            b"AUTH PLAIN a b",
            syntax("usage: AUTH [mechanism [initial-response]]"),
        ),
        (b"AUTH PL@IN", syntax("invalid SASL mechanism name")),
        (
            b"AUTH ABCDEFGHIJKLMNOPQRSTU",
            syntax("invalid SASL mechanism name"),
        ),
        (b"AUTH SCRAM-SHA-256", Ok(auth(Some("SCRAM-SHA-256"), None))),
        // Encoding and length.
        (
            long_user.as_bytes(),
            Ok(Command::User("a".repeat(MAX_COMMAND_LINE - 7))),
        ),
        (too_long_user.as_bytes(), syntax("command line too long")),
        (b"STAT\r", Err(ParseError::Encoding)),
        (b"USER a\nSTAT", Err(ParseError::Encoding)),
        (b"USER a\0b", Err(ParseError::Encoding)),
        (b"USER \xff\xfe", Err(ParseError::Encoding)),
        (b"\x7f", Err(ParseError::Encoding)),
    ];
    assert!(!cases.is_empty());
    for (line, want) in cases {
        assert_eq!(
            parse_command(line),
            want,
            "line {:?}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn pass_debug_hides_password() {
    let cmd = parse_command(b"PASS hunter2").unwrap();
    assert!(!format!("{cmd:?}").contains("hunter2"));
}

#[test]
fn error_text_fits_a_reply() {
    assert_eq!(ParseError::Unknown.to_string(), "unknown command");
    assert_eq!(
        ParseError::Syntax("usage: RETR msg").to_string(),
        "usage: RETR msg"
    );
    assert_eq!(
        ParseError::Encoding.to_string(),
        "invalid characters in command"
    );
}

#[test]
fn reply_lines() {
    let cases: Vec<(Vec<u8>, &[u8])> = vec![
        (reply(|o| ok("2 320", o)), b"+OK 2 320\r\n"),
        (reply(|o| ok("", o)), b"+OK\r\n"),
        (reply(|o| ok("a\r\nb", o)), b"+OK a  b\r\n"),
        (
            reply(|o| err(None, "no such message", o)),
            b"-ERR no such message\r\n",
        ),
        (
            reply(|o| err(Some("AUTH"), "bad login", o)),
            b"-ERR [AUTH] bad login\r\n",
        ),
        (
            reply(|o| err(Some("[SYS/TEMP]"), "try later", o)),
            b"-ERR [SYS/TEMP] try later\r\n",
        ),
        (reply(|o| err(Some("IN-USE"), "", o)), b"-ERR [IN-USE]\r\n"),
        (reply(|o| err(Some(""), "x", o)), b"-ERR x\r\n"),
        (
            reply(|o| err(Some("LOGIN-DELAY"), "wait\n", o)),
            b"-ERR [LOGIN-DELAY] wait \r\n",
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want, "{:?}", String::from_utf8_lossy(want));
    }
}

fn reply(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    f(&mut out);
    out
}

fn stuff(chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = DotStuffer::new();
    for chunk in chunks {
        s.encode(chunk, &mut out);
    }
    s.finish(&mut out);
    out
}

const STUFF_CASES: &[(&[u8], &[u8])] = &[
    (b"", b".\r\n"),
    (b"a\r\n", b"a\r\n.\r\n"),
    (b"a", b"a\r\n.\r\n"),
    (b"a\r", b"a\r\n.\r\n"),
    (b".\r\n", b"..\r\n.\r\n"),
    (b".", b"..\r\n.\r\n"),
    (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
    (b"a\r\n..x\r\n", b"a\r\n...x\r\n.\r\n"),
    (b"a.b\r\n x.\r\n", b"a.b\r\n x.\r\n.\r\n"),
    (b"S: x\r\n\r\n.\r\n.", b"S: x\r\n\r\n..\r\n..\r\n.\r\n"),
    // Bare LF becomes CRLF so a "." after it is still a stuffed line start.
    (b"a\n.\n", b"a\r\n..\r\n.\r\n"),
    (b"\n", b"\r\n.\r\n"),
    // A bare CR stays as it is.
    (b"a\rb\r\n", b"a\rb\r\n.\r\n"),
    (b"a\r.\r\n", b"a\r.\r\n.\r\n"),
];

#[test]
fn dot_stuffing_table() {
    for &(msg, want) in STUFF_CASES {
        assert_eq!(stuff(&[msg]), want, "{:?}", String::from_utf8_lossy(msg));
    }
}

#[test]
fn dot_stuffing_ignores_chunk_boundaries() {
    let long: &[u8] = b"From: a\r\nSubject: .\r\n\r\n.\r\n..\r\nx.\r\n.\r\r\n\n.end";
    let messages = STUFF_CASES.iter().map(|&(msg, _)| msg).chain([long]);
    for msg in messages {
        let whole = stuff(&[msg]);
        for i in 0..=msg.len() {
            assert_eq!(stuff(&[&msg[..i], &msg[i..]]), whole, "split at {i}");
            for j in i..=msg.len() {
                assert_eq!(stuff(&[&msg[..i], &msg[i..j], &msg[j..]]), whole);
            }
        }
        let bytes: Vec<&[u8]> = msg.chunks(1).collect();
        assert_eq!(stuff(&bytes), whole);
    }
}

fn top(chunks: &[&[u8]], n: u32) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut filter = TopFilter::new(n);
    let mut done = false;
    for chunk in chunks {
        done = filter.feed(chunk, &mut out);
        if done {
            break;
        }
    }
    (out, done)
}

const MSG: &[u8] = b"From: a\r\nTo: b\r\n\r\nline 1\r\nline 2\r\nline 3\r\n";

const TOP_CASES: &[(&[u8], u32, &[u8], bool)] = &[
    (MSG, 0, b"From: a\r\nTo: b\r\n\r\n", true),
    (MSG, 1, b"From: a\r\nTo: b\r\n\r\nline 1\r\n", true),
    (
        MSG,
        2,
        b"From: a\r\nTo: b\r\n\r\nline 1\r\nline 2\r\n",
        true,
    ),
    (MSG, 3, MSG, true),
    (MSG, 10, MSG, false),
    (MSG, u32::MAX, MSG, false),
    // Header only, with and without final CRLF: all of it, never done.
    (b"From: a\r\nTo: b\r\n", 0, b"From: a\r\nTo: b\r\n", false),
    (b"From: a\r\nTo: b", 5, b"From: a\r\nTo: b", false),
    (b"", 0, b"", false),
    // Header and empty line but no body.
    (b"From: a\r\n\r\n", 0, b"From: a\r\n\r\n", true),
    (b"From: a\r\n\r\n", 3, b"From: a\r\n\r\n", false),
    // Last body line without CRLF.
    (b"A: 1\r\n\r\nx\r\ny", 5, b"A: 1\r\n\r\nx\r\ny", false),
    // Empty body lines count as lines.
    (
        b"A: 1\r\n\r\n\r\n\r\nz\r\n",
        2,
        b"A: 1\r\n\r\n\r\n\r\n",
        true,
    ),
    // No header at all: the first line is the empty line.
    (b"\r\nbody\r\n", 0, b"\r\n", true),
    (b"\r\nbody\r\nmore\r\n", 1, b"\r\nbody\r\n", true),
    // Bare LF line endings.
    (b"A: 1\n\nx\ny\n", 1, b"A: 1\n\nx\n", true),
    // A line holding only CR CR is not the empty line.
    (b"A: 1\r\n\r\r\n\r\nb\r\n", 0, b"A: 1\r\n\r\r\n\r\n", true),
    // Folded header lines are header lines.
    (b"S: a\r\n  b\r\n\r\nx\r\n", 0, b"S: a\r\n  b\r\n\r\n", true),
];

#[test]
fn top_table() {
    for &(msg, n, want, want_done) in TOP_CASES {
        let label = format!("TOP {n} of {:?}", String::from_utf8_lossy(msg));
        let (out, done) = top(&[msg], n);
        assert_eq!(out, want, "{label}");
        assert_eq!(done, want_done, "{label}");
    }
}

#[test]
fn top_ignores_chunk_boundaries() {
    for &(msg, n, want, want_done) in TOP_CASES {
        for i in 0..=msg.len() {
            for j in i..=msg.len() {
                let (out, done) = top(&[&msg[..i], &msg[i..j], &msg[j..]], n);
                assert_eq!((out.as_slice(), done), (want, want_done), "split {i},{j}");
            }
        }
    }
}

#[test]
fn top_after_done_writes_nothing() {
    let mut out = Vec::new();
    let mut filter = TopFilter::new(0);
    assert!(filter.feed(b"A: 1\r\n\r\nbody\r\n", &mut out));
    assert!(filter.is_done());
    assert!(filter.feed(b"more\r\n", &mut out));
    assert_eq!(out, b"A: 1\r\n\r\n");
}

#[test]
fn top_then_stuff() {
    let msg: &[u8] = b"A: 1\r\n\r\n.\r\n.x\r\nrest\r\n";
    let (body, done) = top(&[msg], 2);
    assert!(done);
    assert_eq!(stuff(&[&body]), b"A: 1\r\n\r\n..\r\n..x\r\n.\r\n");
}

fn b64(raw: &[u8]) -> String {
    STANDARD.encode(raw)
}

type PlainCase = (String, Result<(&'static str, &'static str), ParseError>);

#[test]
fn sasl_plain_table() {
    let cases: Vec<PlainCase> = vec![
        (b64(b"\0alice\0secret"), Ok(("alice", "secret"))),
        (b64(b"alice\0alice\0secret"), Ok(("alice", "secret"))),
        (b64(b"\0alice\0with space"), Ok(("alice", "with space"))),
        (b64("\0jörg\0pässwörd".as_bytes()), Ok(("jörg", "pässwörd"))),
        (
            b64(b"bob\0alice\0secret"),
            Err(ParseError::Syntax("authorization identity not allowed")),
        ),
        ("AGFsaWNlAHNlY3JldA==".into(), Ok(("alice", "secret"))),
        (
            "AGFsaWNlAHNlY3JldA".into(),
            Err(ParseError::Syntax("invalid base64")),
        ),
        (
            "not base64!".into(),
            Err(ParseError::Syntax("invalid base64")),
        ),
        ("=".into(), Err(ParseError::Syntax("invalid base64"))),
        ("*".into(), Err(ParseError::Syntax("invalid base64"))),
        (
            "".into(),
            Err(ParseError::Syntax("malformed PLAIN response")),
        ),
        (
            b64(b"alice\0secret"),
            Err(ParseError::Syntax("malformed PLAIN response")),
        ),
        (
            b64(b"\0alice\0secret\0x"),
            Err(ParseError::Syntax("malformed PLAIN response")),
        ),
        (
            b64(b"\0\0secret"),
            Err(ParseError::Syntax("malformed PLAIN response")),
        ),
        (
            b64(b"\0alice\0"),
            Err(ParseError::Syntax("malformed PLAIN response")),
        ),
        (b64(b"\0al\xffice\0secret"), Err(ParseError::Encoding)),
        (b64(b"\0alice\0se\xffcret"), Err(ParseError::Encoding)),
    ];
    for (input, want) in cases {
        let got = decode_sasl_plain(&input);
        let got = got
            .as_ref()
            .map(|(user, pw)| (user.as_str(), pw.expose().as_str()))
            .map_err(Clone::clone);
        assert_eq!(got, want, "input {input:?}");
    }
}

#[test]
fn capa_listing() {
    let common_head = "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n\
                       AUTH-RESP-CODE\r\nPIPELINING\r\n";
    let tail = "IMPLEMENTATION Letterbox\r\n.\r\n";
    let login = "USER\r\nSASL PLAIN\r\n";
    let cases: Vec<((bool, bool, bool), String)> = vec![
        // Plain connection, TLS offered, login refused until STLS.
        ((false, true, false), format!("{common_head}STLS\r\n{tail}")),
        // Plain connection, no TLS configured, login allowed.
        ((false, false, true), format!("{common_head}{login}{tail}")),
        // After STLS.
        ((true, true, true), format!("{common_head}{login}{tail}")),
        ((true, false, false), format!("{common_head}{tail}")),
        (
            (false, true, true),
            format!("{common_head}{login}STLS\r\n{tail}"),
        ),
    ];
    for ((tls, stls, login_allowed), want) in cases {
        let mut out = Vec::new();
        capa(tls, stls, login_allowed, &mut out);
        assert_eq!(String::from_utf8_lossy(&out), want);
    }
}

/// The octet-at-a-time encoding the line-at-a-time `DotStuffer::encode` replaced.
fn stuffed_octet_by_octet(message: &[u8]) -> Vec<u8> {
    let (mut out, mut mid_line, mut after_cr) = (Vec::new(), false, false);
    for &b in message {
        if b == b'\n' {
            if !after_cr {
                out.push(b'\r');
            }
            out.push(b'\n');
            (mid_line, after_cr) = (false, false);
        } else {
            if b == b'.' && !mid_line {
                out.push(b'.');
            }
            out.push(b);
            (mid_line, after_cr) = (true, b == b'\r');
        }
    }
    out
}

#[test]
fn dot_stuffing_a_line_at_a_time_matches_octet_by_octet_at_every_cut() {
    let messages: [&[u8]; 5] = [
        b".a\r\n..b\r\nc.d\r\n.\r\n",
        b"bare\nlf\n.dot\n\n.",
        b"cr\r\rx\r\n\r.\n",
        b"\n\n..\r",
        b"",
    ];
    for message in messages {
        let expected = stuffed_octet_by_octet(message);
        for cut in 0..=message.len() {
            let mut stuffer = DotStuffer::new();
            let mut out = Vec::new();
            stuffer.encode(&message[..cut], &mut out);
            stuffer.encode(&message[cut..], &mut out);
            assert_eq!(out, expected, "{message:?} cut at {cut}");
        }
    }
}
