//! Durability under mixed load, in rounds (issue #16): each round runs SMTP deliveries,
//! submission, IMAP APPEND/STORE/MOVE/EXPUNGE and POP3 DELE at once, kills the daemon with
//! SIGKILL at a random moment, starts it again and checks every operation acknowledged so far,
//! in every round before it, against the mailboxes: each message is stored exactly once,
//! nothing acknowledged is lost, nothing deleted comes back, a move or a flag stays done.
//!
//! `LETTERBOX_CRASH_ROUNDS` sets the number of rounds: 5 in the normal tests, 200 or more on
//! demand (`LETTERBOX_CRASH_ROUNDS=200 cargo test --test crash_rounds -- --nocapture`).

mod common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{PY_PRELUDE, Server};

/// The load: five workers, each writing `try OP SUBJECT` before an operation and `ok OP
/// SUBJECT` once the server acknowledged it. Workers end at the first error (the kill).
const LOAD: &str = r#"
import imaplib, random, re, threading
journal = open(sys.argv[1], "a", buffering=1)
round_ = sys.argv[2]
lock = threading.Lock()
def note(word, op, subject):
    with lock:
        journal.write(f"{word} {op} {subject}\n")
def message(frm, to, subject):
    return f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n" + "payload line\r\n" * 100

def smtp_worker(n):
    s = smtplib.SMTP("localhost", SMTP_PORT, timeout=30)
    s.ehlo("crash.test")
    for i in range(100000):
        subject = f"r{round_}-smtp{n}-{i}"
        note("try", "deliver", subject)
        s.sendmail("a@example.org", ["alice@home.test"], message("a@example.org", "alice@home.test", subject))
        note("ok", "deliver", subject)

def submission_worker():
    s = smtplib.SMTP("localhost", int(os.environ["SUBMISSION_PORT"]), timeout=30)
    s.starttls(context=tls())
    s.login("alice@home.test", PASSWORD)
    for i in range(100000):
        subject = f"r{round_}-sub-{i}"
        note("try", "deliver", subject)
        s.sendmail("alice@home.test", ["bob@home.test"], message("alice@home.test", "bob@home.test", subject))
        note("ok", "deliver", subject)

def imap_worker():
    imap = imaplib.IMAP4_SSL("localhost", int(os.environ["IMAPS_PORT"]), ssl_context=tls(), timeout=30)
    imap.login("alice@home.test", PASSWORD)
    imap.select("INBOX")
    # (uid, subject) in the INBOX to work on: the latest 20 there, then what this round appends.
    mine = []
    uids = imap.uid("SEARCH", "ALL")[1][0].split()[-20:]
    if uids:
        typ, data = imap.uid("FETCH", b",".join(uids), "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        for item in data:
            if isinstance(item, tuple):
                uid = re.search(rb"UID (\d+)", item[0]).group(1).decode()
                mine.append((uid, item[1].decode().split(":", 1)[1].strip()))
    for i in range(100000):
        subject = f"r{round_}-append-{i}"
        note("try", "deliver", subject)
        typ, data = imap.append("INBOX", None, None, message("x@example.org", "alice@home.test", subject).encode())
        assert typ == "OK", data
        note("ok", "deliver", subject)
        uid = re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1).decode()
        mine.append((uid, subject))
        uid, subject = mine.pop(random.randrange(len(mine)))
        op = random.choice(["flag", "move", "expunge"])
        note("try", op, subject)
        if op == "flag":
            typ, data = imap.uid("STORE", uid, "+FLAGS.SILENT", "(\\Flagged)")
            mine.append((uid, subject))
        elif op == "move":
            typ, data = imap.uid("MOVE", uid, "Moved")
        else:
            imap.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")
            typ, data = imap.uid("EXPUNGE", uid)
        assert typ == "OK", (op, data)
        note("ok", op, subject)

def pop3_worker():
    while True:
        p = pop3_login("bob@home.test", "implicit")
        count = p.stat()[0]
        doomed = []
        for n in range(1, count + 1):
            if random.random() < 0.5:
                lines = p.top(n, 0)[1]
                subject = next(l[9:].decode() for l in lines if l.startswith(b"Subject: "))
                p.dele(n)
                doomed.append(subject)
        for subject in doomed:
            note("try", "dele", subject)
        p.quit()
        for subject in doomed:
            note("ok", "dele", subject)
        time.sleep(0.05)

def run(worker):
    try:
        worker()
    except Exception:
        pass
workers = [lambda: smtp_worker(1), lambda: smtp_worker(2), submission_worker, imap_worker, pop3_worker]
threads = [threading.Thread(target=run, args=(w,)) for w in workers]
for t in threads: t.start()
for t in threads: t.join()
"#;

/// The check: reads every mailbox over IMAP and holds it against the journal.
const CHECK: &str = r#"
import collections, imaplib, re
tried, done = collections.defaultdict(set), collections.defaultdict(set)
for line in open(sys.argv[1]):
    word, op, subject = line.split()
    (tried if word == "try" else done)[op].add(subject)
seen = collections.Counter()
flagged, where = set(), {}
for user, boxes in (("alice@home.test", ("INBOX", "Moved")), ("bob@home.test", ("INBOX",))):
    imap = imaplib.IMAP4_SSL("localhost", int(os.environ["IMAPS_PORT"]), ssl_context=tls(), timeout=60)
    imap.login(user, PASSWORD)
    for box in boxes:
        typ, data = imap.select(box, readonly=True)
        assert typ == "OK", (box, data)
        if int(data[0]) == 0:
            continue
        typ, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        for item in data:
            if not isinstance(item, tuple):
                continue
            subject = item[1].decode().split(":", 1)[1].strip()
            seen[subject] += 1
            where[subject] = (user, box)
            if b"\\Flagged" in item[0]:
                flagged.add(subject)
    imap.logout()
twice = [s for s, n in seen.items() if n > 1]
assert not twice, f"stored more than once: {twice[:5]}"
deleted = tried["expunge"] | tried["dele"]
lost = [s for s in done["deliver"] if s not in seen and s not in deleted]
assert not lost, f"acknowledged but lost: {lost[:5]}"
back = [s for s in done["expunge"] | done["dele"] if s in seen]
assert not back, f"deleted but back: {back[:5]}"
unknown = [s for s in seen if s not in tried["deliver"]]
assert not unknown, f"never sent: {unknown[:5]}"
unmoved = [s for s in done["move"] if where.get(s) != ("alice@home.test", "Moved")]
assert not unmoved, f"moved but not in Moved: {unmoved[:5]}"
unflagged = [s for s in done["flag"] if s in seen and s not in flagged]
assert not unflagged, f"flagged but not flagged: {unflagged[:5]}"
ops = sum(len(v) for v in done.values())
kinds = ", ".join(f"{op} {len(done[op])}" for op in sorted(done))
print(f"{ops} acknowledged operations hold ({kinds}); {len(seen)} messages stored")
"#;

fn python(server: &Server, script: &str, args: &[&str]) -> Child {
    let mut command = Command::new("python3");
    command
        .arg("-c")
        .arg(format!("{PY_PRELUDE}{script}"))
        .args(args);
    for (service, address) in &server.ports {
        command.env(
            format!("{}_PORT", service.to_uppercase()),
            address.port().to_string(),
        );
    }
    command
        .env("CERT", server.cert())
        .env("PASSWORD", common::PASSWORD)
        .spawn()
        .expect("python3")
}

fn acknowledged(journal: &std::path::Path) -> usize {
    std::fs::read_to_string(journal)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.starts_with("ok "))
        .count()
}

/// A small random number from the clock: where in the load each kill falls.
fn random_below(bound: usize) -> usize {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    usize::try_from(nanos).unwrap_or(0) % bound
}

#[test]
fn sigkill_in_rounds_under_mixed_load_keeps_every_acknowledged_operation_once() {
    let rounds: usize = std::env::var("LETTERBOX_CRASH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let mut server = Server::start();
    server.add_user("alice@home.test");
    server.add_user("bob@home.test");
    let create = format!(
        "{PY_PRELUDE}\nimport imaplib\nimap = imaplib.IMAP4_SSL('localhost', int(os.environ['IMAPS_PORT']), ssl_context=tls())\nimap.login('alice@home.test', PASSWORD)\nassert imap.create('Moved')[0] == 'OK'\nimap.logout()"
    );
    server.python_ok(&create, &[]);
    let journal = server.dir.path().join("journal.txt");
    let journal_arg = journal.display().to_string();
    let started = Instant::now();
    for round in 1..=rounds {
        let before = acknowledged(&journal);
        let mut load = python(&server, LOAD, &[&journal_arg, &round.to_string()]);
        let target = before + 5 + random_below(40);
        let deadline = Instant::now() + Duration::from_secs(60);
        while acknowledged(&journal) < target && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        server.kill();
        let _ = load.wait();
        let after = acknowledged(&journal);
        assert!(
            after > before,
            "round {round}: the load ran ({before} → {after})"
        );
        server.launch();
        let check = python(&server, CHECK, &[&journal_arg])
            .wait_with_output()
            .expect("check");
        assert!(
            check.status.success(),
            "round {round}: the check failed\n{}",
            server.log()
        );
    }
    let out = server.python_ok(&format!("{PY_PRELUDE}{CHECK}"), &[&journal_arg]);
    println!(
        "{rounds} SIGKILL rounds in {} s: {}",
        started.elapsed().as_secs(),
        out.trim()
    );
}
