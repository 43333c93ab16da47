use super::*;
use crate::imap::proto::fetch::{FetchAttr, Section, SectionText};

fn kind(input: &str) -> CommandKind {
    parse_command(input.as_bytes())
        .unwrap_or_else(|e| panic!("{input}: {e:?}"))
        .kind
}

fn bad(input: &str) -> Malformed {
    match parse_command(input.as_bytes()) {
        Ok(command) => panic!("{input} parsed: {command:?}"),
        Err(e) => e,
    }
}

#[test]
fn table_of_commands() {
    assert_eq!(kind("a CAPABILITY"), CommandKind::Capability);
    assert_eq!(kind("a noop"), CommandKind::Noop);
    assert!(matches!(kind("a LOGIN alice \"pass word\""),
        CommandKind::Login { user, password } if user == "alice" && password.expose() == "pass word"));
    assert!(matches!(kind("a LOGIN {5}\r\nalice {3}\r\nx y"),
        CommandKind::Login { user, password } if user == "alice" && password.expose() == "x y"));
    assert!(matches!(kind("a AUTHENTICATE PLAIN AGEAYg=="),
        CommandKind::Authenticate { mechanism, initial: Some(_) } if mechanism == "PLAIN"));
    assert!(
        matches!(kind("a SELECT inbox"), CommandKind::Select { mailbox, read_only: false, .. } if mailbox == "INBOX")
    );
    assert!(matches!(kind("a EXAMINE \"Entw&APw-rfe\" (CONDSTORE)"),
        CommandKind::Select { mailbox, read_only: true, condstore: true, qresync: None } if mailbox == "Entwürfe"));
    assert!(matches!(
        kind("a ID (\"name\" \"x\" \"version\" NIL)"),
        CommandKind::Id
    ));
    assert!(matches!(kind("a ID NIL"), CommandKind::Id));
    // Bad modified UTF-7 is a well-formed astring (NO, not BAD); the rest is still checked.
    assert_eq!(kind("a SELECT &Jjo"), CommandKind::SelectInvalidName);
    assert_eq!(
        kind("a EXAMINE \"a&AOk\" (CONDSTORE)"),
        CommandKind::SelectInvalidName
    );
    assert_eq!(bad("a SELECT &Jjo (FROB)").tag.as_deref(), Some("a"));
    assert!(
        matches!(kind("a ENABLE CONDSTORE UTF8=ACCEPT"), CommandKind::Enable(c) if c.len() == 2)
    );
    assert!(
        matches!(kind("a RENAME a b"), CommandKind::Rename { from, to } if from == "a" && to == "b")
    );
    assert!(
        matches!(kind("a STATUS Sent (MESSAGES UIDNEXT UNSEEN HIGHESTMODSEQ SIZE)"),
        CommandKind::Status { items, .. } if items.len() == 5)
    );
    assert!(matches!(
        kind("a UID EXPUNGE 1:3"),
        CommandKind::Expunge { uids: Some(_) }
    ));
    assert!(
        matches!(kind("a STORE 1:* +FLAGS.SILENT (\\Seen $Forwarded)"),
        CommandKind::Store { mode: StoreMode::Add, silent: true, flags, uid: false, .. } if flags == ["\\Seen", "$Forwarded"])
    );
    assert!(matches!(
        kind("a UID STORE 5 (UNCHANGEDSINCE 9) FLAGS \\Deleted"),
        CommandKind::Store {
            mode: StoreMode::Replace,
            unchanged_since: Some(9),
            uid: true,
            ..
        }
    ));
    assert!(matches!(
        kind("a UID MOVE 1:2 Trash"),
        CommandKind::Copy {
            moving: true,
            uid: true,
            ..
        }
    ));
    assert!(
        matches!(kind("a COPY 1 \"My Folder\""), CommandKind::Copy { mailbox, .. } if mailbox == "My Folder")
    );
}

#[test]
fn list_forms() {
    let CommandKind::List(list) = kind("a LIST \"\" *") else {
        panic!()
    };
    assert_eq!(list.patterns, ["*"]);
    assert!(!list.extended);
    let CommandKind::List(list) = kind(
        "a LIST (SUBSCRIBED) \"\" (\"*\" INBOX) RETURN (SPECIAL-USE CHILDREN STATUS (MESSAGES UNSEEN))",
    ) else {
        panic!()
    };
    assert!(list.select_subscribed && list.return_special_use && list.return_children);
    assert_eq!(list.return_status.map(|s| s.len()), Some(2));
    assert_eq!(list.patterns, ["*", "INBOX"]);
    let CommandKind::List(list) = kind("a LSUB \"\" %") else {
        panic!()
    };
    assert!(list.lsub);
    assert!(bad("a LIST (BOGUS) \"\" *").tag.is_some());
}

#[test]
fn fetch_items() {
    let CommandKind::Fetch {
        attrs,
        uid,
        changed_since,
        ..
    } = kind(
        "a UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From Subject)] BODY[1.2]<0.100> RFC822.SIZE) (CHANGEDSINCE 5)",
    )
    else {
        panic!()
    };
    assert!(uid);
    assert_eq!(changed_since, Some(5));
    assert_eq!(attrs[0], FetchAttr::Flags);
    assert_eq!(
        attrs[1],
        FetchAttr::Section {
            peek: true,
            section: Section {
                part: vec![],
                text: Some(SectionText::HeaderFields {
                    not: false,
                    fields: vec!["From".into(), "Subject".into()]
                }),
            },
            partial: None,
        }
    );
    assert_eq!(
        attrs[2],
        FetchAttr::Section {
            peek: false,
            section: Section {
                part: vec![1, 2],
                text: None
            },
            partial: Some((0, 100)),
        }
    );
    assert_eq!(attrs[3], FetchAttr::Rfc822Size);
    let CommandKind::Fetch { attrs, .. } = kind("a FETCH 1 ALL") else {
        panic!()
    };
    assert_eq!(attrs.len(), 4);
    let CommandKind::Fetch { attrs, .. } =
        kind("a FETCH 1 (BODY BODY[] RFC822 RFC822.HEADER BODY[2.MIME])")
    else {
        panic!()
    };
    assert_eq!(attrs.len(), 5);
    assert!(bad("a FETCH 1 (BODY[MIME])").tag.is_some());
    assert!(bad("a FETCH 1 (FLAGS").tag.is_some());
    assert!(bad("a FETCH 0 FLAGS").tag.is_some());
}

#[test]
fn search_keys() {
    let CommandKind::Search { key, uid, .. } = kind(
        "a UID SEARCH CHARSET UTF-8 OR FROM alice NOT SEEN SINCE 1-Jan-2024 1:5 (LARGER 10 SMALLER 100)",
    ) else {
        panic!()
    };
    assert!(uid);
    let SearchKey::And(keys) = key else { panic!() };
    assert_eq!(keys.len(), 4);
    assert!(
        bad("a SEARCH CHARSET KOI8-R ALL")
            .error
            .0
            .contains("BADCHARSET")
    );
    assert!(bad("a SEARCH FROB").tag.is_some());
    let deep = format!("a SEARCH {}ALL", "NOT ".repeat(100));
    assert!(bad(&deep).tag.is_some());
}

#[test]
fn quota_commands() {
    assert_eq!(
        kind("a GETQUOTAROOT inbox"),
        CommandKind::GetQuotaRoot("INBOX".into())
    );
    assert_eq!(
        kind("a GETQUOTA \"\""),
        CommandKind::GetQuota(String::new())
    );
    assert_eq!(kind("a SETQUOTA \"\" (STORAGE 512)"), CommandKind::SetQuota);
    assert_eq!(bad("a GETQUOTAROOT").tag.as_deref(), Some("a"));
    assert_eq!(bad("a SETQUOTA \"\" STORAGE").tag.as_deref(), Some("a"));
}

#[test]
fn malformed_input() {
    assert_eq!(bad("").tag, None);
    assert_eq!(bad("a").tag, None);
    assert_eq!(bad("a FROB").tag.as_deref(), Some("a"));
    assert_eq!(bad("a NOOP extra").tag.as_deref(), Some("a"));
    assert_eq!(bad("a LOGIN {10}\r\nabc").tag.as_deref(), Some("a"));
    assert_eq!(bad("a APPEND INBOX").tag.as_deref(), Some("a"));
}

#[test]
fn qresync_select_and_vanished_fetch() {
    let CommandKind::Select { qresync, .. } =
        kind("a SELECT INBOX (QRESYNC (67890007 90060115194045000))")
    else {
        panic!("not SELECT")
    };
    assert_eq!(
        qresync,
        Some(Qresync {
            uidvalidity: 67890007,
            modseq: 90060115194045000,
            known_uids: None
        })
    );
    let CommandKind::Select { qresync, .. } =
        kind("a SELECT INBOX (QRESYNC (67890007 9 41:211,214:541 (1:15,19 41,43:116)) CONDSTORE)")
    else {
        panic!("not SELECT")
    };
    let known = qresync.and_then(|q| q.known_uids).expect("known UIDs");
    assert!(known.contains(300, 600) && !known.contains(212, 600));
    assert!(matches!(
        kind("a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 5 VANISHED)"),
        CommandKind::Fetch {
            vanished: true,
            changed_since: Some(5),
            ..
        }
    ));
    for bad in [
        "a FETCH 1:* (FLAGS) (CHANGEDSINCE 5 VANISHED)",
        "a UID FETCH 1:* (FLAGS) (VANISHED)",
        "a SELECT INBOX (QRESYNC (0 5))",
        "a SELECT INBOX (QRESYNC (1 5 1:* (1 2)",
    ] {
        assert!(parse_command(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn utf8_mailbox_names_after_enable() {
    let utf8 = |text: &str| parse_command_in(text.as_bytes(), true).map(|c| c.kind);
    assert!(matches!(utf8("a CREATE \"A&B-\""), Ok(CommandKind::Create(name)) if name == "A&B-"));
    assert!(matches!(kind("a CREATE \"A&-B\""), CommandKind::Create(name) if name == "A&B"));
    assert!(matches!(utf8("a SELECT \"Entwürfe\""),
        Ok(CommandKind::Select { mailbox, .. }) if mailbox == "Entwürfe"));
}

#[test]
fn saved_search_result() {
    assert!(matches!(kind("a FETCH $ (FLAGS)"), CommandKind::Fetch { set, .. } if set.is_saved()));
    assert!(
        matches!(kind("a UID COPY $ Archive"), CommandKind::Copy { set, .. } if set.is_saved())
    );
    let CommandKind::Search { esearch, key, .. } = kind("a SEARCH RETURN (SAVE) $ UNSEEN") else {
        panic!("not SEARCH")
    };
    assert_eq!(esearch, Some(vec!["SAVE".to_string()]));
    assert!(
        matches!(key, SearchKey::And(keys) if matches!(&keys[0], SearchKey::Sequence(s) if s.is_saved()))
    );
}

#[test]
fn fetch_binary_items() {
    let CommandKind::Fetch { attrs, .. } =
        kind("a FETCH 1 (BINARY[1.2]<0.100> BINARY.PEEK[] binary.size[2] BODY.PEEK[1])")
    else {
        panic!()
    };
    assert_eq!(
        attrs,
        [
            FetchAttr::Binary {
                peek: false,
                part: vec![1, 2],
                partial: Some((0, 100)),
            },
            FetchAttr::Binary {
                peek: true,
                part: vec![],
                partial: None,
            },
            FetchAttr::BinarySize { part: vec![2] },
            FetchAttr::Section {
                peek: true,
                section: Section {
                    part: vec![1],
                    text: None
                },
                partial: None,
            },
        ]
    );
    assert!(attrs[0].sets_seen() && !attrs[1].sets_seen() && !attrs[2].sets_seen());
    let deepest = format!("a FETCH 1 BINARY.PEEK[{}1]", "1.".repeat(63));
    assert!(matches!(kind(&deepest), CommandKind::Fetch { attrs, .. }
        if matches!(&attrs[0], FetchAttr::Binary { part, .. } if part.len() == 64)));
    for input in [
        "a FETCH 1 BINARY",
        "a FETCH 1 (BINARY[TEXT])",
        "a FETCH 1 (BINARY[1.HEADER])",
        "a FETCH 1 (BINARY.PEEK[1.MIME])",
        "a FETCH 1 (BINARY[0])",
        "a FETCH 1 (BINARY[1.])",
        "a FETCH 1 BINARY[1]<5>",
        "a FETCH 1 (BINARY.SIZE[1]<0.5>)",
        "a FETCH 1 BINARY.SIZE",
        "a FETCH 1 BINARY.SIZEX[1]",
        &format!("a FETCH 1 BINARY[{}1]", "1.".repeat(64)),
    ] {
        assert_eq!(bad(input).tag.as_deref(), Some("a"), "{input}");
    }
}
