//! The learning content filter through the real binary: `letterbox spam train` and
//! `spam classify` while the daemon runs, and lessons from a mail client (imaplib): MOVE into
//! and out of Junk, STORE +FLAGS $Junk / $NotJunk.

mod common;

use std::path::Path;

use common::imap::script;
use common::{Server, text};

const SPAMMY: &[&str] = &["winner", "casino", "viagra", "lottery", "bitcoin", "crypto"];
const HAMMY: &[&str] = &[
    "homework", "grandma", "football", "dentist", "recipe", "holiday",
];

/// A Maildir folder of `count` messages, each with four of `words` (a different four each).
fn maildir(dir: &Path, words: &[&str], count: usize) {
    let cur = dir.join("cur");
    std::fs::create_dir_all(dir.join("new")).expect("new");
    std::fs::create_dir_all(&cur).expect("cur");
    for i in 0..count {
        let pick: Vec<&str> = (0..4).map(|k| words[(i + k) % words.len()]).collect();
        let message = format!(
            "From: someone{i}@example.org\r\nSubject: {} {}\r\n\r\n{}\r\n",
            pick[0],
            pick[1],
            pick.join(" ")
        );
        std::fs::write(cur.join(format!("{i}.msg:2,S")), message).expect("write");
    }
}

fn cli_ok(server: &Server, args: &[&str]) -> String {
    let out = server.cli(args, None);
    assert!(
        out.status.success(),
        "letterbox {args:?}: {}\n{}\nserver log:\n{}",
        text(&out.stdout),
        text(&out.stderr),
        server.log()
    );
    text(&out.stdout)
}

/// The filter's clues for `file`: "token (probability)" entries.
fn clues(server: &Server, file: &Path) -> String {
    let out = cli_ok(server, &["spam", "classify", &file.display().to_string()]);
    let fields: Vec<&str> = out.trim_end_matches('\n').split('\t').collect();
    assert_eq!(fields.len(), 4, "{out}");
    fields[3].to_string()
}

/// A trained filter on a running server with alice's account.
fn trained() -> (Server, tempfile::TempDir) {
    let server = Server::start();
    server.add_user("alice@home.test");
    let folders = tempfile::tempdir().expect("tempdir");
    maildir(&folders.path().join("spam"), SPAMMY, 12);
    maildir(&folders.path().join("ham"), HAMMY, 12);
    let out = cli_ok(
        &server,
        &[
            "spam",
            "train",
            "--spam",
            &folders.path().join("spam").display().to_string(),
            "--ham",
            &folders.path().join("ham").display().to_string(),
        ],
    );
    assert!(
        out.contains("learned 12 spam and 12 ham messages (0 of them"),
        "{out}"
    );
    (server, folders)
}

#[test]
fn training_from_folders_while_the_daemon_runs_sorts_new_mail_and_learns_once() {
    let (server, folders) = trained();
    let spam = folders.path().join("new-spam.eml");
    std::fs::write(
        &spam,
        "Subject: lottery winner\r\n\r\ncasino bitcoin viagra crypto offer\r\n",
    )
    .expect("w");
    let ham = folders.path().join("new-ham.eml");
    std::fs::write(
        &ham,
        "Subject: holiday\r\n\r\ngrandma recipe for football\r\n",
    )
    .expect("w");
    let out = cli_ok(
        &server,
        &[
            "spam",
            "classify",
            &spam.display().to_string(),
            &ham.display().to_string(),
        ],
    );
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0][1], "spam", "{out}");
    assert!(
        lines[0][0].parse::<f64>().expect("probability") > 0.99,
        "{out}"
    );
    assert_eq!(lines[1][1], "ham", "{out}");
    assert!(
        lines[1][0].parse::<f64>().expect("probability") < 0.01,
        "{out}"
    );
    assert!(
        lines[0][3].contains("(0.9"),
        "the spammy clues are named: {out}"
    );

    // The same folders again: nothing is learned twice.
    let again = cli_ok(
        &server,
        &[
            "spam",
            "train",
            "--spam",
            &folders.path().join("spam").display().to_string(),
        ],
    );
    assert!(again.contains("(12 of them known already)"), "{again}");
}

/// Sends one message to alice whose body holds words the filter has never seen.
const SEND_UNSEEN: &str = r#"
send('stranger@example.net', ['alice@home.test'], sys.argv[1], body=sys.argv[2] + '\r\n')
"#;

/// Runs one IMAP command on the message with `subject` in `mailbox`.
const ACT: &str = r#"
mailbox, subject, command, arg = sys.argv[1:5]
m = imap_login()
ok(m.select(mailbox))
uids = ok(m.uid("SEARCH", "SUBJECT", subject))[0].split()
assert len(uids) == 1, (mailbox, subject, uids)
if command == "MOVE":
    ok(m.uid("MOVE", uids[0], arg))
else:
    ok(m.uid("STORE", uids[0], "+FLAGS", "(" + arg + ")"))
m.logout()
"#;

#[test]
fn moving_into_junk_teaches_spam_moving_out_undoes_it_and_each_message_counts_once() {
    let (server, folders) = trained();
    server.python_ok(
        &script(SEND_UNSEEN),
        &["zorblax", "quintuplet marmalade zorblax"],
    );
    let probe = folders.path().join("probe.eml");
    std::fs::write(&probe, "Subject: zorblax\r\n\r\nquintuplet marmalade\r\n").expect("w");
    let before = clues(&server, &probe);
    assert!(
        !before.contains("marmalade"),
        "unknown words are no clue: {before}"
    );

    let act = |mailbox: &str, command: &str, arg: &str| {
        server.python_ok(&script(ACT), &[mailbox, "zorblax", command, arg]);
    };
    // One spam lesson: seen once in 13 spam, never in ham: (0.8 * 0.5 + 1) / 1.8.
    act("INBOX", "MOVE", "Junk");
    let spam = clues(&server, &probe);
    assert!(spam.contains("marmalade (0.78)"), "{spam}");
    assert!(spam.contains("subject:zorblax (0.78)"), "{spam}");
    // The client also flags it $Junk: the same message, not a second lesson.
    act("Junk", "STORE", "$Junk");
    assert_eq!(clues(&server, &probe), spam, "learned once");

    // Moved back out: the spam lesson is undone and it counts as ham: 0.4 / 1.8.
    act("Junk", "MOVE", "INBOX");
    let ham = clues(&server, &probe);
    assert!(ham.contains("marmalade (0.22)"), "{ham}");
    // Moving spam to Trash teaches nothing.
    act("INBOX", "MOVE", "Junk");
    act("Junk", "MOVE", "Trash");
    assert!(clues(&server, &probe).contains("marmalade (0.78)"));
}

#[test]
fn junk_and_notjunk_keywords_teach_like_moves() {
    let (server, folders) = trained();
    server.python_ok(&script(SEND_UNSEEN), &["glimmerfax", "pelican glimmerfax"]);
    let probe = folders.path().join("probe.eml");
    std::fs::write(&probe, "Subject: glimmerfax\r\n\r\npelican\r\n").expect("w");
    let act = |keyword: &str| {
        server.python_ok(&script(ACT), &["INBOX", "glimmerfax", "STORE", keyword]);
    };
    act("$Junk");
    assert!(clues(&server, &probe).contains("pelican (0.78)"));
    act("$NotJunk");
    assert!(clues(&server, &probe).contains("pelican (0.22)"));
}

/// Where delivered mail ends up and what it says: "mailbox|X-Spam-Status line" for `subject`.
const WHERE: &str = r#"
subject = sys.argv[1]
m = imap_login()
for mailbox in ("INBOX", "Junk"):
    ok(m.select(mailbox))
    for uid in ok(m.uid("SEARCH", "SUBJECT", subject))[0].split():
        head = ok(m.uid("FETCH", uid, "(BODY.PEEK[HEADER])"))[0][1].decode()
        status = " ".join(l.strip() for l in head.split("X-Spam-Status:")[1].split("\r\n")[:2])
        clues = "X-Spam-Clues:" in head
        print(f"{mailbox}|{status}|{clues}")
m.logout()
"#;

/// The trained filter is one of port 25's end-of-data steps: a message like the spam it
/// learned goes to Junk with its score and clues named, one like the ham to INBOX.
#[test]
fn delivered_mail_is_sorted_by_the_trained_filter() {
    let (server, _folders) = trained();
    server.python_ok(
        &script(SEND_UNSEEN),
        &["lottery winner", "casino bitcoin viagra crypto"],
    );
    server.python_ok(
        &script(SEND_UNSEEN),
        &["holiday plans", "grandma recipe football dentist"],
    );
    let spam = server.python_ok(&script(WHERE), &["lottery"]);
    assert!(spam.starts_with("Junk|Yes, score="), "{spam}");
    assert!(
        spam.contains("BAYES_99") && spam.ends_with("|True\n"),
        "{spam}"
    );
    let ham = server.python_ok(&script(WHERE), &["holiday"]);
    assert!(ham.starts_with("INBOX|No, score=-"), "{ham}");
    assert!(ham.contains("BAYES_00"), "{ham}");
}
