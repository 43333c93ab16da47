//! IMAP compliance corners (issue #10, defects 4, 6 and 7): the keyword limit, NUL octets
//! outside literal8, UNSEEN, CHECK, LSUB and LIST-EXTENDED details, APPENDLIMIT.

mod common;

use common::Server;
use common::imap::{script, server_with_mail};
use letterbox::limits::IMAP_MAX_KEYWORDS;

#[test]
fn keywords_past_the_limit_are_refused_not_dropped() {
    let server = server_with_mail(&["tagged"]);
    server.python_ok(
        &script(
            r#"
limit = int(sys.argv[1])
def flag_set(data):
    return set(re.search(rb"FLAGS \(([^)]*)\)", data).group(1).split()) - {b"\\Recent"}
m = imap_login(mode="implicit")
ok(m.select("INBOX"))
for i in range(0, limit, 50):
    ok(m.store("1", "+FLAGS", "(" + " ".join(f"k{j}" for j in range(i, min(i + 50, limit))) + ")"))
everything = {f"k{i}".encode() for i in range(limit)}
assert flag_set(ok(m.fetch("1", "(FLAGS)"))[0]) == everything
# One keyword too many: refused, and nothing of the command is applied.
typ, data = m.store("1", "+FLAGS", "(\\Flagged extra)")
assert typ == "NO" and b"[LIMIT]" in data[0], (typ, data)
flags = flag_set(ok(m.fetch("1", "(FLAGS)"))[0])
assert b"extra" not in flags and b"\\Flagged" not in flags, flags
typ, data = m.append("INBOX", "(another)", None, b"Subject: x\r\n\r\nx\r\n")
assert typ == "NO" and b"[LIMIT]" in data[0], (typ, data)
ok(m.append("INBOX", f"(k0 k{limit - 1})", None, b"Subject: x\r\n\r\nx\r\n"))
# A full account no longer offers \* in PERMANENTFLAGS.
m.select("INBOX")
permanent = [r for r in m.untagged_responses.get("OK", []) if b"PERMANENTFLAGS" in r][0]
assert b"\\*" not in permanent and b"k0" in permanent, permanent
# Keywords past the first 27 are searched, removed, copied and seen by other sessions.
assert ok(m.search(None, "KEYWORD", f"k{limit - 1}"))[0] == b"1 2"
assert ok(m.search(None, "KEYWORD", "k100"))[0] == b"1"
assert ok(m.search(None, "UNKEYWORD", "k100"))[0] == b"2"
ok(m.store("1", "-FLAGS", "(k100 k5)"))
assert ok(m.search(None, "UNKEYWORD", "k100"))[0] == b"1 2"
ok(m.copy("1", "Archive"))
other = imap_login(mode="implicit")
ok(other.select("Archive"))
assert flag_set(ok(other.fetch("1", "(FLAGS)"))[0]) == everything - {b"k100", b"k5"}
ok(other.select("INBOX"))
assert flag_set(ok(other.fetch("2", "(FLAGS)"))[0]) == {b"k0", f"k{limit - 1}".encode()}
m.logout()
"#,
        ),
        &[&IMAP_MAX_KEYWORDS.to_string()],
    );
}

#[test]
fn nul_octets_are_sent_only_in_literal8() {
    let server = server_with_mail(&[]);
    server.python_ok(
        &script(
            r#"
part = b"\0\1\2 binary\0\r\n"
raw = (b"Subject: raw\0nul\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
       b"--b\r\nContent-Type: text/plain; name=\"a\0b\"\r\n\r\nhello\r\n"
       b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
       + part + b"\r\n--b--\r\n")
# APPEND with literal8 (RFC 3516 §4.4); imaplib cannot send one.
s = tls().wrap_socket(socket.create_connection(("localhost", IMAPS_PORT)), server_hostname="localhost")
f = s.makefile("rb")
assert f.readline().startswith(b"* OK")
s.sendall(b"a1 LOGIN alice@home.test {%d+}\r\n%s\r\n" % (len(PASSWORD), PASSWORD.encode()))
assert f.readline().startswith(b"a1 OK"), "login"
s.sendall(b"a2 APPEND INBOX ~{%d+}\r\n%s\r\n" % (len(raw), raw))
assert f.readline().startswith(b"a2 OK"), "append"
s.sendall(b"a3 SELECT INBOX\r\n")
while not f.readline().startswith(b"a3 "):
    pass
s.sendall(b"a4 FETCH 1 (BODY.PEEK[] BODY.PEEK[2] RFC822.TEXT BINARY.PEEK[2] ENVELOPE BODYSTRUCTURE)\r\n")
literals = []
while True:
    line = f.readline()
    assert line, "closed"
    if line.startswith(b"a4 "):
        assert line.startswith(b"a4 OK"), line
        break
    while True:
        found = re.search(rb"(~?)\{(\d+)\}\r\n$", line)
        if not found:
            break
        data = f.read(int(found.group(2)))
        literals.append((found.group(1) == b"~", data))
        line = f.readline()
assert len(literals) >= 6, literals
# The NUL in the Subject and in a parameter go as literals too (in ENVELOPE, BODYSTRUCTURE).
for binary, data in literals[:3] + literals[4:]:
    assert not binary and b"\0" not in data, (binary, data)
assert literals[0][1] == raw.replace(b"\0", b"\x80"), literals[0]
assert literals[1][1] == part.replace(b"\0", b"\x80"), literals[1]
assert literals[3] == (True, part), literals[3]
s.sendall(b"a5 LOGOUT\r\n")
"#,
        ),
        &[],
    );
}

/// RFC 3501 §6.3.1: `[UNSEEN n]` in IMAP4rev1 SELECT/EXAMINE (IMAP4rev2 dropped it).
#[test]
fn select_names_the_first_unseen_message_in_imap4rev1() {
    let server = server_with_mail(&["one", "two", "three"]);
    server.python_ok(
        &script(
            r#"
m = imap_login(mode="implicit")
ok(m.select("INBOX"))
assert m.untagged_responses.get("UNSEEN") == [b"1"], m.untagged_responses
ok(m.store("1", "+FLAGS", "(\\Seen)"))
ok(m.select("INBOX", readonly=True))
assert m.untagged_responses.get("UNSEEN") == [b"2"], m.untagged_responses
ok(m.select("INBOX"))
ok(m.store("2:3", "+FLAGS", "(\\Seen)"))
ok(m.select("INBOX"))
assert "UNSEEN" not in m.untagged_responses, m.untagged_responses
ok(m.store("3", "-FLAGS", "(\\Seen)"))
ok(m.unselect())
ok(m._simple_command("ENABLE", "IMAP4rev2"))
ok(m.select("INBOX"))
assert "UNSEEN" not in m.untagged_responses, m.untagged_responses
m.logout()
"#,
        ),
        &[],
    );
}

/// CHECK is a NOOP here (RFC 3501 §6.4.1): what other sessions changed is reported before
/// its tagged OK.
#[test]
fn check_reports_pending_changes_like_noop() {
    let server = server_with_mail(&["one", "two", "three"]);
    server.python_ok(
        &script(
            r#"
a = imap_login(mode="implicit")
ok(a.select("INBOX"))
b = imap_login(mode="implicit")
ok(b.select("INBOX"))
ok(b.store("1", "+FLAGS", "(\\Flagged)"))
ok(b.store("3", "+FLAGS", "(\\Deleted)"))
ok(b.expunge())
a.untagged_responses.clear()
ok(a.check())
assert a.untagged_responses.get("EXPUNGE") == [b"3"], a.untagged_responses
fetched = a.untagged_responses.get("FETCH", [])
assert any(b"\\Flagged" in f for f in fetched), a.untagged_responses
"#,
        ),
        &[],
    );
}

/// LSUB `%` lists an unsubscribed parent of subscribed children as `\Noselect` (RFC 3501
/// §6.3.9); LIST (SUBSCRIBED RECURSIVEMATCH) lists it with CHILDINFO (RFC 5258 §3.5).
#[test]
fn lsub_and_recursivematch_list_parents_of_subscribed_children() {
    let server = server_with_mail(&[]);
    server.python_ok(
        &script(
            r#"
m = imap_login(mode="implicit")
ok(m.create("p/q"))
ok(m.subscribe("p/q"))
ok(m.subscribe("a/b"))
lsub = ok(m.lsub('""', "%"))
assert b'(\\Noselect) "/" a' in lsub and b'(\\Noselect) "/" p' in lsub, lsub
assert not any(b"a/b" in l or b"p/q" in l for l in lsub), lsub
lsub = ok(m.lsub('""', "*"))
assert b'(\\Noselect) "/" a/b' in lsub and b'() "/" p/q' in lsub, lsub
assert not any(l.endswith(b'"/" a') or l.endswith(b'"/" p') for l in lsub), lsub
typ, data = m._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', "%")
listed = ok(m._untagged_response(typ, data, "LIST"))
assert b'(\\NonExistent \\HasNoChildren) "/" a ("CHILDINFO" ("SUBSCRIBED"))' in listed, listed
assert b'(\\HasChildren) "/" p ("CHILDINFO" ("SUBSCRIBED"))' in listed, listed
assert b'(\\HasNoChildren \\Archive \\Subscribed) "/" Archive' in listed, listed
# Without RECURSIVEMATCH only subscribed names, and no CHILDINFO.
typ, data = m._simple_command("LIST", "(SUBSCRIBED)", '""', "%")
listed = ok(m._untagged_response(typ, data, "LIST"))
assert not any(b"CHILDINFO" in l or l.endswith(b'"/" p') for l in listed), listed
"#,
        ),
        &[],
    );
}

/// A name that is not valid modified UTF-7 is still an astring: SELECT gets NO, not BAD.
#[test]
fn select_of_bad_modified_utf7_is_no_not_bad() {
    let server = server_with_mail(&["one"]);
    server.python_ok(
        &script(
            r#"
m = imap_login(mode="implicit")
ok(m.select("INBOX"))
try:
    typ, data = m._simple_command("SELECT", "&Jjo")
except m.error as e:
    raise AssertionError(f"BAD: {e}")
assert typ == "NO", (typ, data)
typ, data = m._simple_command("EXAMINE", '"a&AOk"')
assert typ == "NO", (typ, data)
"#,
        ),
        &[],
    );
}

/// APPENDLIMIT (RFC 7889) is advertised and is its own limit, above the SMTP one.
#[test]
fn append_has_its_own_advertised_size_limit() {
    let server = Server::start_with("max_message_size = \"64KiB\"\nmax_append_size = \"256KiB\"");
    server.add_user("alice@home.test");
    server.python_ok(
        &script(
            r#"
m = imap_login(mode="implicit")
assert "APPENDLIMIT=262144" in m.capabilities, m.capabilities
# Larger than SMTP takes, within APPENDLIMIT: stored.
body = b"Subject: big\r\n\r\n" + (b"x" * 78 + b"\r\n") * 1500
assert 64 * 1024 < len(body) < 256 * 1024
ok(m.append("INBOX", None, None, body))
typ, data = m.append("INBOX", None, None, body * 3)
assert typ == "NO" and b"[TOOBIG]" in data[0], (typ, data)
ok(m.select("INBOX"))
assert ok(m.search(None, "ALL"))[0] == b"1"
s = smtplib.SMTP("localhost", SMTP_PORT, timeout=30)
s.ehlo("client.test")
assert s.esmtp_features["size"] == "65536", s.esmtp_features
try:
    s.sendmail("bob@example.org", ["alice@home.test"], body)
    raise AssertionError("SMTP took a message over max_message_size")
except smtplib.SMTPException:
    pass
"#,
        ),
        &[],
    );
}

/// An empty mailbox reports HIGHESTMODSEQ 1; its first message must have a higher MODSEQ, or
/// `CHANGEDSINCE 1` and `STATUS (HIGHESTMODSEQ)` never show it (RFC 7162 §3.1.1).
#[test]
fn the_first_message_of_an_empty_mailbox_raises_highestmodseq() {
    let server = server_with_mail(&[]);
    server.python_ok(
        &script(
            r#"
def highest(lines):
    return int(re.search(rb"HIGHESTMODSEQ (\d+)", b" ".join(lines)).group(1))
m = imap_login(mode="implicit")
ok(m._simple_command("ENABLE", "CONDSTORE"))
ok(m.create("Empty"))
seen = highest(ok(m.status("Empty", "(HIGHESTMODSEQ)")))
typ, data = m.select("INBOX")
before = highest(m.untagged_responses["OK"])
ok(m.append("INBOX", None, None, b"Subject: first\r\n\r\nfirst\r\n"))
ok(m.noop())
changed = ok(m.uid("FETCH", "1:*", f"(FLAGS) (CHANGEDSINCE {before})"))
assert any(b"UID 1 " in l or b"UID 1)" in l for l in changed if l), changed
assert highest(ok(m.status("INBOX", "(HIGHESTMODSEQ)"))) > before
# A COPY into the other empty mailbox is seen there too.
ok(m.copy("1", "Empty"))
assert highest(ok(m.status("Empty", "(HIGHESTMODSEQ)"))) > seen
m.logout()
"#,
        ),
        &[],
    );
}

/// RENAME creates the new name's missing superior levels, as CREATE does (RFC 3501
/// §6.3.5), so `LIST "" "%"` leads down to it.
#[test]
fn rename_creates_the_missing_levels_above_the_new_name() {
    let server = server_with_mail(&[]);
    server.python_ok(
        &script(
            r#"
m = imap_login(mode="implicit")
ok(m.create("Work"))
ok(m.rename("Work", "Projects/2024/Work"))
top = ok(m.list('""', "%"))
assert any(l.endswith(b'"/" Projects') for l in top), top
assert any(l.endswith(b'"/" Projects/2024') for l in ok(m.list('""', "Projects/%")))
assert any(l.endswith(b'"/" Projects/2024/Work') for l in ok(m.list('""', "Projects/2024/%")))
ok(m.select("Projects/2024"))
m.logout()
"#,
        ),
        &[],
    );
}

/// A Subject and a display name in raw 8-bit Latin-1 (an old mailer's) reach ENVELOPE as
/// RFC 2047 UTF-8 words read as Windows-1252, not NIL (a client would show "(no subject)")
/// or U+FFFD, and SEARCH finds them by their letters.
#[test]
fn a_latin1_subject_and_sender_reach_the_envelope_and_search() {
    let server = server_with_mail(&[]);
    server.python_ok(
        &script(
            r#"
import email.header
def decoded(words):
    assert all(len(w) <= 75 for w in words.split()), words
    return str(email.header.make_header(email.header.decode_header(words)))
m = imap_login(mode="implicit")
long = "Rechnung für März " + "und Überweisung " * 6
ok(m.append("INBOX", None, None, b"From: J\xfcrgen M\xfcller <j@home.test>\r\nSubject: "
    + long.encode("latin-1") + b"\r\n\r\nbody\r\n"))
ok(m.select("INBOX"))
envelope = ok(m.fetch("1", "(ENVELOPE)"))[0]
subject, name = re.search(rb'ENVELOPE \(NIL "([^"]*)" \(\("([^"]*)"', envelope).groups()
assert decoded(subject.decode()) == long.strip(), (subject, long)
assert decoded(name.decode()) == "Jürgen Müller", name
for key, text in [("FROM", "jürgen"), ("SUBJECT", "überweisung")]:
    m.literal = text.encode()
    assert ok(m.search("UTF-8", key)) == [b"1"], key
m.logout()
"#,
        ),
        &[],
    );
}
