use super::*;

fn addr(local: &str, domain: &str) -> Address {
    Address::new(local, domain)
}

fn mail(from: Option<Address>) -> Command {
    Command::Mail {
        from,
        params: MailParams::default(),
    }
}

fn rcpt(local: &str, domain: &str) -> Command {
    Command::Rcpt {
        to: addr(local, domain),
    }
}

fn ok_cases() -> Vec<(&'static str, Command)> {
    vec![
        // EHLO / HELO
        (
            "EHLO client.example",
            Command::Ehlo {
                domain: "client.example".into(),
            },
        ),
        (
            "ehlo Client.Example",
            Command::Ehlo {
                domain: "Client.Example".into(),
            },
        ),
        (
            "EHLO [192.0.2.1]",
            Command::Ehlo {
                domain: "[192.0.2.1]".into(),
            },
        ),
        (
            "EHLO [IPv6:2001:db8::1]",
            Command::Ehlo {
                domain: "[IPv6:2001:db8::1]".into(),
            },
        ),
        (
            "EHLO my_host.",
            Command::Ehlo {
                domain: "my_host.".into(),
            },
        ),
        ("EHLO x ", Command::Ehlo { domain: "x".into() }),
        (
            "HELO client.example",
            Command::Helo {
                domain: "client.example".into(),
            },
        ),
        // MAIL
        (
            "MAIL FROM:<a@b.example>",
            mail(Some(addr("a", "b.example"))),
        ),
        (
            "mail from:<A@B.Example>",
            mail(Some(addr("A", "b.example"))),
        ),
        (
            "MAIL FROM: <a@b.example>",
            mail(Some(addr("a", "b.example"))),
        ),
        ("MAIL FROM:<>", mail(None)),
        ("MAIL FROM: <>", mail(None)),
        (
            "MAIL FROM:<a@b.example> ",
            mail(Some(addr("a", "b.example"))),
        ),
        (
            "MAIL FROM:<a%b@c.example>",
            mail(Some(addr("a%b", "c.example"))),
        ),
        (
            "MAIL FROM:<a!b@c.example>",
            mail(Some(addr("a!b", "c.example"))),
        ),
        (
            "MAIL FROM:<@a.example,@b.example:user@dom.example>",
            mail(Some(addr("user", "dom.example"))),
        ),
        (
            "MAIL FROM:<@a.example:user@dom.example>",
            mail(Some(addr("user", "dom.example"))),
        ),
        (
            "MAIL FROM:<\"bob@evil.example\"@home.test>",
            mail(Some(addr("bob@evil.example", "home.test"))),
        ),
        (
            "MAIL FROM:<\"a\\\"b\\\\c\"@x.test>",
            mail(Some(addr("a\"b\\c", "x.test"))),
        ),
        ("MAIL FROM:<\"\"@x.test>", mail(Some(addr("", "x.test")))),
        (
            "MAIL FROM:<user@[192.0.2.1]>",
            mail(Some(addr("user", "[192.0.2.1]"))),
        ),
        (
            "MAIL FROM:<user@[IPv6:2001:DB8::1]>",
            mail(Some(addr("user", "[IPv6:2001:DB8::1]"))),
        ),
        (
            "MAIL FROM:<user@[x-tag:anything]>",
            mail(Some(addr("user", "[x-tag:anything]"))),
        ),
        (
            "MAIL FROM:<first.last@x.test>",
            mail(Some(addr("first.last", "x.test"))),
        ),
        (
            "MAIL FROM:<foo.@docomo.ne.jp>",
            mail(Some(addr("foo.", "docomo.ne.jp"))),
        ),
        (
            "MAIL FROM:<postmaster@x.test>",
            mail(Some(addr("postmaster", "x.test"))),
        ),
        (
            "MAIL FROM:<jörg@bücher.example> SMTPUTF8",
            Command::Mail {
                from: Some(addr("jörg", "bücher.example")),
                params: MailParams {
                    smtputf8: true,
                    ..MailParams::default()
                },
            },
        ),
        (
            "MAIL FROM:<a@b.test> SIZE=1000 BODY=8BITMIME",
            Command::Mail {
                from: Some(addr("a", "b.test")),
                params: MailParams {
                    size: Some(1000),
                    body: Some(Body::EightBitMime),
                    ..MailParams::default()
                },
            },
        ),
        (
            "MAIL FROM:<a@b.test> size=0 body=7bit smtputf8 auth=<>",
            Command::Mail {
                from: Some(addr("a", "b.test")),
                params: MailParams {
                    size: Some(0),
                    body: Some(Body::SevenBit),
                    smtputf8: true,
                    auth: Some("<>".into()),
                },
            },
        ),
        (
            "MAIL FROM:<a@b.test>  BODY=BINARYMIME  AUTH=e+3Dmc2@example.com",
            Command::Mail {
                from: Some(addr("a", "b.test")),
                params: MailParams {
                    body: Some(Body::BinaryMime),
                    auth: Some("e+3Dmc2@example.com".into()),
                    ..MailParams::default()
                },
            },
        ),
        (
            "MAIL FROM:<a@b.test> SIZE=18446744073709551615",
            Command::Mail {
                from: Some(addr("a", "b.test")),
                params: MailParams {
                    size: Some(u64::MAX),
                    ..MailParams::default()
                },
            },
        ),
        // RCPT
        ("RCPT TO:<bob@home.test>", rcpt("bob", "home.test")),
        ("rcpt to: <Bob@HOME.test>", rcpt("Bob", "home.test")),
        ("RCPT TO:<Postmaster>", rcpt("Postmaster", "")),
        ("RCPT TO:<postMASTER>", rcpt("Postmaster", "")),
        (
            "RCPT TO:<postmaster@home.test>",
            rcpt("postmaster", "home.test"),
        ),
        (
            "RCPT TO:<\"bob@evil.example\"@home.test>",
            rcpt("bob@evil.example", "home.test"),
        ),
        (
            "RCPT TO:<@relay.example:bob@home.test>",
            rcpt("bob", "home.test"),
        ),
        (
            "RCPT TO:<bob%evil.example@home.test>",
            rcpt("bob%evil.example", "home.test"),
        ),
        (
            "RCPT TO:<evil.example!bob@home.test>",
            rcpt("evil.example!bob", "home.test"),
        ),
        ("RCPT TO:<bob@[192.0.2.1]>", rcpt("bob", "[192.0.2.1]")),
        ("RCPT TO:<\"a>b\"@home.test>", rcpt("a>b", "home.test")),
        ("RCPT TO:<\"a b\"@home.test>", rcpt("a b", "home.test")),
        // Other verbs
        ("DATA", Command::Data),
        ("data ", Command::Data),
        (
            "BDAT 0 LAST",
            Command::Bdat {
                size: 0,
                last: true,
            },
        ),
        (
            "BDAT 1000",
            Command::Bdat {
                size: 1000,
                last: false,
            },
        ),
        (
            "bdat 12 last",
            Command::Bdat {
                size: 12,
                last: true,
            },
        ),
        (
            "BDAT 18446744073709551615",
            Command::Bdat {
                size: u64::MAX,
                last: false,
            },
        ),
        ("RSET", Command::Rset),
        ("NOOP", Command::Noop),
        ("NOOP anything at all", Command::Noop),
        ("QUIT", Command::Quit),
        ("Quit", Command::Quit),
        ("VRFY bob", Command::Vrfy("bob".into())),
        ("VRFY Bob Smith", Command::Vrfy("Bob Smith".into())),
        ("EXPN staff", Command::Expn("staff".into())),
        ("HELP", Command::Help(None)),
        ("HELP MAIL", Command::Help(Some("MAIL".into()))),
        ("STARTTLS", Command::StartTls),
        ("starttls", Command::StartTls),
        (
            "AUTH PLAIN",
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial_response: None,
            },
        ),
        (
            "auth plain AGJvYgBzZWNyZXQ=",
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial_response: Some("AGJvYgBzZWNyZXQ=".into()),
            },
        ),
        (
            "AUTH PLAIN =",
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial_response: Some("=".into()),
            },
        ),
        (
            "AUTH SCRAM-SHA-256",
            Command::Auth {
                mechanism: "SCRAM-SHA-256".into(),
                initial_response: None,
            },
        ),
    ]
}

fn err_cases() -> Vec<(Vec<u8>, SyntaxError)> {
    let s = |x: &str| x.as_bytes().to_vec();
    vec![
        // Line level
        (s(""), SyntaxError::UNRECOGNIZED),
        (s("FOO"), SyntaxError::UNRECOGNIZED),
        (s("EHLOX x"), SyntaxError::UNRECOGNIZED),
        (s(" EHLO x"), SyntaxError::UNRECOGNIZED),
        (s("STARTTLSX"), SyntaxError::UNRECOGNIZED),
        (b"EHLO \xff".to_vec(), SyntaxError::INVALID_CHARACTERS),
        (b"NOOP \x00".to_vec(), SyntaxError::INVALID_CHARACTERS),
        (s("NOOP a\rb"), SyntaxError::INVALID_CHARACTERS),
        (s("NOOP a\nb"), SyntaxError::INVALID_CHARACTERS),
        (
            format!("NOOP {}", "x".repeat(506)).into_bytes(),
            SyntaxError::LINE_TOO_LONG,
        ),
        (
            format!("AUTH PLAIN {}", "x".repeat(12277)).into_bytes(),
            SyntaxError::AUTH_LINE_TOO_LONG,
        ),
        // EHLO / HELO
        (s("EHLO"), SyntaxError::EHLO),
        (s("EHLO "), SyntaxError::EHLO),
        (s("EHLO a b"), SyntaxError::EHLO),
        (s("EHLO a\x01b"), SyntaxError::EHLO),
        (s("EHLO <x>"), SyntaxError::EHLO),
        (s("EHLO ü.example"), SyntaxError::EHLO),
        (s("EHLO [300.0.0.1]"), SyntaxError::EHLO),
        (s("HELO"), SyntaxError::HELO),
        // MAIL
        (s("MAIL"), SyntaxError::MAIL),
        (s("MAIL TO:<a@b>"), SyntaxError::MAIL),
        (s("MAIL FROM<a@b>"), SyntaxError::MAIL),
        (s("MAIL FROM:"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:<bad"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:a@b.test"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:  <a@b.test>"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:<<a@b.test>>"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:<a@b.test>>"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:<a@b.test>SIZE=1"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:<a@@b.test>"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:<a@b@c.test>"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:<a@>"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:<@b.test>"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:<a>"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:<Postmaster>"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:<a@b..test>"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:<a@-b.test>"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:<a@b_c.test>"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:<a b@c.test>"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:<a\x01b@c.test>"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:<a\tb@c.test>"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:<\"a\x01\"@c.test>"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:<\"a@c.test>"), SyntaxError::MAIL_ADDRESS),
        (
            s("MAIL FROM:<\"a\\\u{e9}\"@c.test>"),
            SyntaxError::MAIL_ADDRESS,
        ),
        (s("MAIL FROM:<a\u{85}b@c.test>"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:<a@[192.0.2.1>"), SyntaxError::MAIL_ADDRESS),
        (s("MAIL FROM:<a@192.0.2.1]>"), SyntaxError::MAIL_ADDRESS),
        (
            s("MAIL FROM:<a@[IPv6:nonsense]>"),
            SyntaxError::MAIL_ADDRESS,
        ),
        (s("MAIL FROM:<a@[[192.0.2.1]]>"), SyntaxError::MAIL_ADDRESS),
        (
            s("MAIL FROM:<@a.example,b.example:u@d.example>"),
            SyntaxError::MAIL_ADDRESS,
        ),
        (
            s("MAIL FROM:<@a.example u@d.example>"),
            SyntaxError::MAIL_ADDRESS,
        ),
        (
            format!("MAIL FROM:<{}@x.test>", "a".repeat(65)).into_bytes(),
            SyntaxError::MAIL_ADDRESS_TOO_LONG,
        ),
        (
            format!("MAIL FROM:<a@{}.test>", "b".repeat(64)).into_bytes(),
            SyntaxError::MAIL_ADDRESS,
        ),
        (
            format!("MAIL FROM:<a@{}b.test>", "b.".repeat(125)).into_bytes(),
            SyntaxError::MAIL_ADDRESS_TOO_LONG,
        ),
        // MAIL parameters
        (
            s("MAIL FROM:<a@b.test> FOO=1"),
            SyntaxError::UNSUPPORTED_PARAMETER,
        ),
        (
            s("MAIL FROM:<a@b.test> RET=HDRS"),
            SyntaxError::UNSUPPORTED_PARAMETER,
        ),
        (
            s("MAIL FROM:<a@b.test> SIZE=1 SIZE=2"),
            SyntaxError::DUPLICATE_PARAMETER,
        ),
        (
            s("MAIL FROM:<a@b.test> BODY=7BIT body=7bit"),
            SyntaxError::DUPLICATE_PARAMETER,
        ),
        (
            s("MAIL FROM:<a@b.test> SMTPUTF8 SMTPUTF8"),
            SyntaxError::DUPLICATE_PARAMETER,
        ),
        (
            s("MAIL FROM:<a@b.test> AUTH=<> AUTH=<>"),
            SyntaxError::DUPLICATE_PARAMETER,
        ),
        (s("MAIL FROM:<a@b.test> SIZE"), SyntaxError::SIZE_PARAMETER),
        (
            s("MAIL FROM:<a@b.test> SIZE=-1"),
            SyntaxError::SIZE_PARAMETER,
        ),
        (
            s("MAIL FROM:<a@b.test> SIZE=+1"),
            SyntaxError::SIZE_PARAMETER,
        ),
        (
            s("MAIL FROM:<a@b.test> SIZE=18446744073709551616"),
            SyntaxError::SIZE_PARAMETER,
        ),
        (
            s("MAIL FROM:<a@b.test> SIZE=123456789012345678901"),
            SyntaxError::SIZE_PARAMETER,
        ),
        (
            s("MAIL FROM:<a@b.test> BODY=8BIT"),
            SyntaxError::BODY_PARAMETER,
        ),
        (s("MAIL FROM:<a@b.test> BODY"), SyntaxError::BODY_PARAMETER),
        (
            s("MAIL FROM:<a@b.test> SMTPUTF8=yes"),
            SyntaxError::SMTPUTF8_PARAMETER,
        ),
        (s("MAIL FROM:<a@b.test> AUTH"), SyntaxError::AUTH_PARAMETER),
        (s("MAIL FROM:<a@b.test> =1"), SyntaxError::PARAMETER_SYNTAX),
        (
            s("MAIL FROM:<a@b.test> SIZE="),
            SyntaxError::PARAMETER_SYNTAX,
        ),
        (
            s("MAIL FROM:<a@b.test> SIZE=1=2"),
            SyntaxError::PARAMETER_SYNTAX,
        ),
        (s("MAIL FROM:<a@b.test> X_Y"), SyntaxError::PARAMETER_SYNTAX),
        (
            s("MAIL FROM:<a@b.test> AUTH=a\x01"),
            SyntaxError::PARAMETER_SYNTAX,
        ),
        // RCPT
        (s("RCPT"), SyntaxError::RCPT),
        (s("RCPT FROM:<a@b.test>"), SyntaxError::RCPT),
        (s("RCPT TO:<>"), SyntaxError::RCPT_ADDRESS),
        (s("RCPT TO:bob@home.test"), SyntaxError::RCPT_ADDRESS),
        (s("RCPT TO:<bob@home.test"), SyntaxError::RCPT_ADDRESS),
        (s("RCPT TO:<bob>"), SyntaxError::RCPT_ADDRESS),
        (s("RCPT TO:<\"Postmaster\">"), SyntaxError::RCPT_ADDRESS),
        (
            s("RCPT TO:<@relay.example:Postmaster>"),
            SyntaxError::RCPT_ADDRESS,
        ),
        (s("RCPT TO:<Postmaster@>"), SyntaxError::RCPT_ADDRESS),
        (s("RCPT TO:<bob@home.test>x"), SyntaxError::RCPT_ADDRESS),
        (
            s("RCPT TO:<bob@home.test> NOTIFY=NEVER"),
            SyntaxError::UNSUPPORTED_PARAMETER,
        ),
        (
            s("RCPT TO:<bob@home.test> ORCPT=rfc822;bob@home.test"),
            SyntaxError::UNSUPPORTED_PARAMETER,
        ),
        (
            format!("RCPT TO:<{}@home.test>", "a".repeat(65)).into_bytes(),
            SyntaxError::RCPT_ADDRESS_TOO_LONG,
        ),
        (
            format!("RCPT TO:<\"{}\"@home.test>", "a".repeat(65)).into_bytes(),
            SyntaxError::RCPT_ADDRESS_TOO_LONG,
        ),
        // Other verbs
        (s("DATA x"), SyntaxError::DATA),
        (s("BDAT"), SyntaxError::BDAT),
        (s("BDAT x"), SyntaxError::BDAT),
        (s("BDAT -1"), SyntaxError::BDAT),
        (s("BDAT 10 FIRST"), SyntaxError::BDAT),
        (s("BDAT 10 LAST x"), SyntaxError::BDAT),
        (s("BDAT 18446744073709551616"), SyntaxError::BDAT),
        (s("BDAT 000000000000000000001"), SyntaxError::BDAT),
        (s("RSET x"), SyntaxError::RSET),
        (s("QUIT now"), SyntaxError::QUIT),
        (s("VRFY"), SyntaxError::VRFY),
        (s("VRFY a\x01"), SyntaxError::VRFY),
        (s("EXPN"), SyntaxError::EXPN),
        (s("HELP a\x07"), SyntaxError::HELP),
        (s("STARTTLS now"), SyntaxError::STARTTLS),
        (s("AUTH"), SyntaxError::AUTH),
        (s("AUTH PLAIN a b"), SyntaxError::AUTH),
        (s("AUTH PL@IN"), SyntaxError::AUTH),
        (s("AUTH ABCDEFGHIJKLMNOPQRSTU"), SyntaxError::AUTH),
    ]
}

#[test]
fn parses_valid_commands() {
    let cases = ok_cases();
    assert!(cases.len() > 50);
    for (line, want) in cases {
        assert_eq!(parse_command(line.as_bytes()), Ok(want), "{line:?}");
    }
}

#[test]
fn rejects_invalid_commands() {
    let cases = err_cases();
    assert!(cases.len() > 50);
    for (line, want) in cases {
        assert_eq!(
            parse_command(&line),
            Err(want),
            "{:?}",
            String::from_utf8_lossy(&line)
        );
    }
}

#[test]
fn length_limits_at_the_boundary() {
    // 510 octets + CRLF = 512: accepted; one more is too long.
    let ok = format!("NOOP {}", "x".repeat(505));
    assert_eq!(ok.len(), 510);
    assert_eq!(parse_command(ok.as_bytes()), Ok(Command::Noop));
    let local = "a".repeat(64);
    assert_eq!(
        parse_command(format!("RCPT TO:<{local}@home.test>").as_bytes()),
        Ok(rcpt(&local, "home.test"))
    );
    let quoted = format!("RCPT TO:<\"{}\\\"\"@home.test>", "a".repeat(63));
    assert_eq!(
        parse_command(quoted.as_bytes()),
        Ok(rcpt(&format!("{}\"", "a".repeat(63)), "home.test"))
    );
    let label = "b".repeat(63);
    assert_eq!(
        parse_command(format!("RCPT TO:<a@{label}.test>").as_bytes()),
        Ok(rcpt("a", &format!("{label}.test")))
    );
    // A 255-octet domain is fine, 256 is not.
    let domain = format!("{}b.test", "b.".repeat(124));
    assert_eq!(domain.len(), 254);
    let domain = format!("c{domain}");
    assert_eq!(domain.len(), 255);
    assert_eq!(
        parse_command(format!("MAIL FROM:<a@{domain}>").as_bytes()),
        Ok(mail(Some(addr("a", &domain))))
    );
    assert_eq!(
        parse_command(format!("MAIL FROM:<a@c{domain}>").as_bytes()),
        Err(SyntaxError::MAIL_ADDRESS_TOO_LONG)
    );
    // MAIL and AUTH get their extended limits.
    let mail_line = format!("MAIL FROM:<a@b.test> AUTH={}", "x".repeat(600));
    assert!(mail_line.len() + 2 > MAX_COMMAND_LINE && mail_line.len() + 2 <= MAX_MAIL_LINE);
    assert!(parse_command(mail_line.as_bytes()).is_ok());
    let auth = format!("AUTH PLAIN {}", "x".repeat(MAX_AUTH_LINE - 13));
    assert_eq!(auth.len() + 2, MAX_AUTH_LINE);
    assert!(parse_command(auth.as_bytes()).is_ok());
}

#[test]
fn postmaster() {
    let cases = [
        (Address::new("Postmaster", ""), true),
        (Address::new("postmaster", "home.test"), true),
        (Address::new("POSTMASTER", "x.example"), true),
        (Address::new("postmaster2", "home.test"), false),
        (Address::new("bob", "home.test"), false),
    ];
    for (a, want) in cases {
        assert_eq!(a.is_postmaster(), want, "{a:?}");
    }
}

#[test]
fn display_requotes() {
    let cases = [
        (Address::new("bob", "home.test"), "bob@home.test"),
        (Address::new("Postmaster", ""), "Postmaster"),
        (
            Address::new("bob@evil.example", "home.test"),
            "\"bob@evil.example\"@home.test",
        ),
        (Address::new("a\"b\\c", "x.test"), "\"a\\\"b\\\\c\"@x.test"),
        (Address::new("a b", "x.test"), "\"a b\"@x.test"),
        (Address::new("", "x.test"), "\"\"@x.test"),
        (Address::new("foo.", "x.test"), "\"foo.\"@x.test"),
        (Address::new("a%b", "X.Test"), "a%b@x.test"),
        (
            Address::new("u", "[IPv6:2001:DB8::1]"),
            "u@[IPv6:2001:DB8::1]",
        ),
    ];
    for (a, want) in cases {
        assert_eq!(a.to_string(), want);
    }
}

#[test]
fn display_round_trips_through_the_parser() {
    for (line, cmd) in ok_cases() {
        let address = match cmd {
            Command::Rcpt { to } => to,
            Command::Mail {
                from: Some(from), ..
            } => from,
            _ => continue,
        };
        let again = format!("RCPT TO:<{address}>");
        assert_eq!(
            parse_command(again.as_bytes()),
            Ok(Command::Rcpt {
                to: address.clone()
            }),
            "{line:?} -> {again:?}"
        );
    }
}

#[test]
fn auth_initial_response_hidden_from_debug() {
    let cmd = parse_command(b"AUTH PLAIN AGJvYgBzZWNyZXQ=");
    let shown = format!("{cmd:?}");
    assert!(!shown.contains("AGJvYgBzZWNyZXQ="), "{shown}");
    assert!(shown.contains("PLAIN"), "{shown}");
}

#[test]
fn syntax_error_display() {
    assert_eq!(
        SyntaxError::MAIL_ADDRESS.to_string(),
        "501 5.1.7 Syntax: MAIL FROM:<address>"
    );
}
