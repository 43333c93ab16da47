//! IMAP4rev2 (RFC 9051) and the extensions modern clients resynchronise with: ENABLE
//! IMAP4rev2 / UTF8=ACCEPT, ESEARCH and SEARCHRES, [CLOSED], against Python's imaplib.

mod common;

use common::imap::{script, server_with_mail};

#[test]
fn imap4rev2_esearch_saved_results_and_utf8_mailbox_names() {
    let server = server_with_mail(&["rev2 one", "rev2 two", "rev2 three", "rev2 four"]);
    let out = server.python_ok(
        &script(
            r#"
m = imap_login()
# imaplib keeps capabilities uppercased.
assert "IMAP4REV2" in m.capabilities and "IMAP4REV1" in m.capabilities, m.capabilities
for cap in ("ESEARCH", "SEARCHRES", "UTF8=ACCEPT", "QRESYNC", "STATUS=SIZE", "MULTIAPPEND", "BINARY"):
    assert cap in m.capabilities, (cap, m.capabilities)
ok(m._simple_command("ENABLE", "IMAP4rev2"))
assert m.untagged_responses.pop("ENABLED") == [b"IMAP4rev2"], m.untagged_responses
# Enabling it again enables nothing new.
ok(m._simple_command("ENABLE", "IMAP4rev2"))
assert m.untagged_responses.pop("ENABLED") == [b""], m.untagged_responses
m._mode_utf8()

# Mailbox names are UTF-8 both ways now.
ok(m.create('"Entwürfe/Brief"'))
lists = ok(m.list('""', '"Entw*"'))
assert any('"Entwürfe/Brief"'.encode() in l for l in lists), lists

# SELECT names the mailbox with a LIST response instead of RECENT.
typ, _ = m.select("INBOX")
assert typ == "OK"
assert "RECENT" not in m.untagged_responses, m.untagged_responses
assert m.untagged_responses.pop("LIST") == [b'() "/" INBOX'], m.untagged_responses

# Every SEARCH is answered with ESEARCH.
ok(m.uid("STORE", "2,4", "+FLAGS", "(\\Seen)"))
typ, data = m.search(None, "UNSEEN")
assert typ == "OK"
esearch = m.untagged_responses.pop("ESEARCH")
assert esearch[0].endswith(b" ALL 1,3"), esearch
assert "SEARCH" not in m.untagged_responses
typ, data = m.uid("SEARCH", "RETURN", "(MIN MAX COUNT)", "ALL")
esearch = m.untagged_responses.pop("ESEARCH")
assert esearch[0].endswith(b"UID MIN 1 MAX 4 COUNT 4"), esearch

# SEARCHRES: RETURN (SAVE) alone answers nothing; $ then names the result in later commands.
ok(m._simple_command("SEARCH", "RETURN", "(SAVE)", "UNSEEN"))
assert "ESEARCH" not in m.untagged_responses, m.untagged_responses
data = ok(m.fetch("$", "(UID FLAGS)"))
assert len(data) == 2 and b"UID 1 " in data[0] and b"UID 3 " in data[1], data
ok(m.uid("STORE", "$", "+FLAGS.SILENT", "(\\Flagged)"))
typ, data = m.uid("SEARCH", "FLAGGED")
assert m.untagged_responses.pop("ESEARCH")[0].endswith(b"UID ALL 1,3")
# MIN and MAX with SAVE keep just those two.
ok(m._simple_command("UID", "SEARCH", "RETURN", "(MIN MAX SAVE)", "ALL"))
m.untagged_responses.pop("ESEARCH", None)
typ, data = m.search(None, "$")
assert m.untagged_responses.pop("ESEARCH")[0].endswith(b"ALL 1,4")
# Expunged messages leave $.
ok(m.store("1", "+FLAGS", "(\\Deleted)"))
ok(m.expunge())
data = ok(m.uid("FETCH", "$", "(UID)"))
assert len(data) == 1 and b"UID 4" in data[0], data

# Selecting another mailbox says where the old one's responses end.
typ, _ = m.select("Sent")
assert typ == "OK"
assert "CLOSED" in m.untagged_responses, m.untagged_responses
m.logout()

# A session that enabled nothing sees the same mailbox in modified UTF-7, with RECENT and
# SEARCH responses as IMAP4rev1 has them.
m = imap_login(mode="implicit")
lists = ok(m.list('""', "Entw*"))
assert any(b'"/" Entw&APw-rfe/Brief' in l for l in lists), lists
typ, data = m.select("INBOX")
assert "RECENT" in m.untagged_responses
typ, data = m.search(None, "UNSEEN")
assert data == [b"2"], data
m.logout()
print("rev2 ok")
"#,
        ),
        &[],
    );
    assert!(out.contains("rev2 ok"), "{out}");
}

/// Apple Mail's first sync (ID, ENABLE QRESYNC, LIST "" "", LIST with SPECIAL-USE, LSUB,
/// STATUS, SELECT with CONDSTORE, the flag and header fetches, IDLE), then its reconnect:
/// SELECT (QRESYNC ...) tells it exactly what vanished and what changed while it was away,
/// and once QRESYNC is on, expunges arrive as VANISHED during IDLE.
#[test]
fn apple_mail_first_sync_and_qresync_reconnect() {
    let server = server_with_mail(&["am one", "am two", "am three"]);
    let out = server.python_ok(
        &script(
            r#"
m = imap_login(mode="implicit")
ok(m._simple_command("ID", '("name" "Mac OS X Mail" "version" "16.0 (3774.600.62)" "os" "Mac OS X" "vendor" "Apple Inc.")'))
ok(m.capability())
ok(m._simple_command("ENABLE", "QRESYNC"))
assert m.untagged_responses.pop("ENABLED") == [b"QRESYNC"], m.untagged_responses
ok(m.list('""', '""'))
typ, _ = m._simple_command("LIST", "(SPECIAL-USE)", '""', "*")
assert typ == "OK"
special = m.untagged_responses.pop("LIST")
for attribute in (b"\\Sent", b"\\Drafts", b"\\Trash", b"\\Junk", b"\\Archive"):
    assert any(attribute in l for l in special), (attribute, special)
ok(m.lsub('""', "*"))
ok(m.namespace())
folders = [re.search(rb'"/" (.*)$', l).group(1).strip(b'"').decode() for l in ok(m.list('""', "*"))]
assert len(folders) >= 6, folders
for folder in folders:
    data = ok(m.status(folder, "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)"))
    if folder == "INBOX":
        assert b"MESSAGES 3" in data[0], data
typ, _ = m._simple_command("SELECT", "INBOX", "(CONDSTORE)")
assert typ == "OK"
m.state = "SELECTED"
validity = int(m.untagged_responses["UIDVALIDITY"][0])
highest = int(m.untagged_responses["HIGHESTMODSEQ"][0])
data = ok(m.fetch("1:*", "(FLAGS UID)"))
assert len(data) == 3
data = ok(m.uid("FETCH", "1:*", "(FLAGS)", "(CHANGEDSINCE 0)"))
assert len(data) == 3 and all(b"MODSEQ" in d for d in data), data
data = ok(m.uid("FETCH", "1:3", "(UID INTERNALDATE RFC822.SIZE FLAGS BODYSTRUCTURE MODSEQ BODY.PEEK[HEADER.FIELDS (date subject from to cc message-id in-reply-to references content-type x-priority x-uniform-type-identifier x-universally-unique-identifier list-id list-unsubscribe)])"))
assert len([d for d in data if isinstance(d, tuple)]) == 3, data
modseqs = [int(re.search(rb"MODSEQ \((\d+)\)", d[0]).group(1)) for d in data if isinstance(d, tuple)]
assert max(modseqs) == highest, (modseqs, highest)
m.logout()

# While it is away: another client expunges UID 2 and flags UID 3; a new message arrives.
b = imap_login()
b.select("INBOX")
ok(b.uid("STORE", "2", "+FLAGS", "(\\Deleted)"))
ok(b.expunge())
ok(b.uid("STORE", "3", "+FLAGS", "(\\Flagged)"))
send("sender@example.org", ["alice@home.test"], "am four", body="new\r\n")

m = imap_login(mode="implicit")
ok(m._simple_command("ENABLE", "QRESYNC"))
typ, data = m._simple_command("SELECT", "INBOX", f"(QRESYNC ({validity} {highest} 1:3))")
assert typ == "OK", (typ, data)
m.state = "SELECTED"
assert m.untagged_responses.pop("VANISHED") == [b"(EARLIER) 2"], m.untagged_responses
fetches = m.untagged_responses.pop("FETCH")
assert len(fetches) == 1 and b"UID 3 " in fetches[0] and b"\\Flagged" in fetches[0], fetches
assert m.untagged_responses["EXISTS"] == [b"3"], m.untagged_responses
# A wrong UIDVALIDITY gets a plain SELECT (the client must then sync from scratch).
typ, data = m._simple_command("SELECT", "INBOX", f"(QRESYNC ({validity + 1} {highest}))")
assert typ == "OK" and "VANISHED" not in m.untagged_responses, m.untagged_responses
assert "CLOSED" in m.untagged_responses, m.untagged_responses
# UID FETCH with VANISHED: the expunged UID and the changed and new messages.
data = ok(m.uid("FETCH", "1:*", "(FLAGS)", f"(CHANGEDSINCE {highest} VANISHED)"))
assert m.untagged_responses.pop("VANISHED") == [b"(EARLIER) 2"], m.untagged_responses
assert len(data) == 2 and b"UID 3 " in data[0] and b"UID 4 " in data[1], data

# With QRESYNC on, IDLE hears an expunge as VANISHED with the UID, not EXPUNGE.
tag = idle_start(m)
ok(b.uid("STORE", "1", "+FLAGS", "(\\Deleted)"))
ok(b.expunge())
line = idle_until(m, b"* VANISHED", refuse=b"EXPUNGE")
assert line == b"* VANISHED 1", line
idle_done(m, tag)
# The tagged OK of EXPUNGE carries the HIGHESTMODSEQ the client is now up to date with.
ok(m.uid("STORE", "3", "+FLAGS", "(\\Deleted)"))
typ, data = m.expunge()
assert typ == "OK"
assert "HIGHESTMODSEQ" in m.untagged_responses, m.untagged_responses
b.logout(); m.logout()
print("qresync ok")
"#,
        ),
        &[],
    );
    assert!(out.contains("qresync ok"), "{out}");
}

/// RFC 3501 \Recent: the first session to hear of a message has it \Recent; others do not,
/// EXAMINE does not claim it, and IMAP4rev2 sessions never see it.
#[test]
fn recent_belongs_to_the_first_session_that_hears_of_a_message() {
    let server = server_with_mail(&["recent one", "recent two"]);
    let out = server.python_ok(
        &script(
            r#"
def recent(m):
    return int(m.untagged_responses.pop("RECENT")[-1])
z = imap_login()
assert b"RECENT 2" in ok(z.status("INBOX", "(RECENT)"))[0]
z.select("INBOX", readonly=True)
assert recent(z) == 2, "EXAMINE shows the unclaimed messages"
x = imap_login()
x.select("INBOX")
assert recent(x) == 2
assert b"RECENT 0" in ok(z.status("INBOX", "(RECENT)"))[0], "SELECT claimed them"
data = ok(x.fetch("1:*", "(FLAGS)"))
assert all(b"\\Recent" in d for d in data), data
typ, data = x.search(None, "RECENT")
assert data == [b"1 2"], data
typ, data = x.search(None, "NEW")
assert data == [b"1 2"], data
y = imap_login()
y.select("INBOX")
assert recent(y) == 0
typ, data = y.search(None, "OLD")
assert data == [b"1 2"], data
send("sender@example.org", ["alice@home.test"], "recent three", body="x\r\n")
ok(x.noop())
assert x.untagged_responses.pop("EXISTS")[-1] == b"3"
assert recent(x) == 3
ok(y.noop())
assert y.untagged_responses.pop("EXISTS")[-1] == b"3"
assert recent(y) == 0
data = ok(y.fetch("3", "(FLAGS)"))
assert b"\\Recent" not in data[0], data
ok(x.store("1", "+FLAGS", "(\\Seen)"))
typ, data = x.search(None, "NEW")
assert data == [b"2 3"], data
w = imap_login()
ok(w._simple_command("ENABLE", "IMAP4rev2"))
w.select("INBOX")
assert "RECENT" not in w.untagged_responses
for c in (x, y, z, w):
    c.logout()
print("recent ok")
"#,
        ),
        &[],
    );
    assert!(out.contains("recent ok"), "{out}");
}

/// MULTIAPPEND (RFC 3502) stores all its messages in one commit: a refused message leaves
/// none of the command's messages behind. And UTF8 APPEND (RFC 6855 §4) after ENABLE
/// UTF8=ACCEPT, refused before. Spoken over a raw TLS socket: imaplib has neither.
#[test]
fn multiappend_is_all_or_nothing_and_utf8_append_needs_enable() {
    let server = common::Server::start_with("max_append_size = \"100KiB\"");
    server.add_user("alice@home.test");
    let out = server.python_ok(
        &script(
            r#"
import socket
s = tls().wrap_socket(socket.create_connection(("localhost", IMAPS_PORT)), server_hostname="localhost")
f = s.makefile("rb")
assert f.readline().startswith(b"* OK")
def until(tag):
    lines = []
    while True:
        line = f.readline()
        assert line, "connection closed"
        lines.append(line)
        if line.startswith(tag + b" "):
            return lines
def command(tag, data):
    s.sendall(data)
    return until(tag)
assert b" OK " in command(b"l", b'l LOGIN alice@home.test "' + PASSWORD.encode() + b'"\r\n')[-1]

# Two messages with LITERAL+, each with its own flags and date.
lines = command(b"m1", b'm1 APPEND Drafts (\\Seen) {7+}\r\nhello\r\n (\\Draft) "05-Mar-2024 10:00:00 +0100" {7+}\r\nworld\r\n\r\n')
assert re.match(rb"m1 OK \[APPENDUID \d+ 1:2\]", lines[-1]), lines
# Synchronizing literals: "+" before each message.
s.sendall(b"m2 APPEND Drafts {5}\r\n")
assert f.readline().startswith(b"+")
s.sendall(b"abc\r\n {5}\r\n")
assert f.readline().startswith(b"+")
s.sendall(b"def\r\n\r\n")
assert re.match(rb"m2 OK \[APPENDUID \d+ 3:4\]", until(b"m2")[-1])
# The second message is over the size limit: NO, and the first is not stored either.
big = b"x" * 200000
lines = command(b"m3", b"m3 APPEND Drafts {5+}\r\nkeep\n {%d+}\r\n" % len(big) + big + b"\r\n")
assert lines[-1].startswith(b"m3 NO [TOOBIG]"), lines
lines = command(b"s1", b"s1 STATUS Drafts (MESSAGES)\r\n")
assert b"MESSAGES 4" in lines[0], lines
lines = command(b"x1", b"x1 EXAMINE Drafts\r\n")
lines = command(b"f1", b"f1 FETCH 1:2 (FLAGS INTERNALDATE)\r\n")
assert b"\\Seen" in lines[0] and b"\\Draft" in lines[1] and b"05-Mar-2024 09:00:00 +0000" in lines[1], lines

# UTF8 APPEND: refused until the client enables UTF8=ACCEPT.
message = "Subject: Grüße\r\n\r\nHallo Welt\r\n".encode()
append = b"u1 APPEND INBOX UTF8 (~{%d+}\r\n" % len(message) + message + b")\r\n"
lines = command(b"u1", append)
assert lines[-1].startswith(b"u1 BAD"), lines
assert b"ENABLED UTF8=ACCEPT" in command(b"e1", b"e1 ENABLE UTF8=ACCEPT\r\n")[0]
lines = command(b"u1", append)
assert re.match(rb"u1 OK \[APPENDUID \d+ 1\]", lines[-1]), lines
# Searches are UTF-8 now: a CHARSET is refused, a UTF-8 string found.
assert command(b"x3", b"x3 SELECT INBOX\r\n")[-1].startswith(b"x3 OK")
assert command(b"c1", b"c1 SEARCH CHARSET UTF-8 ALL\r\n")[-1].startswith(b"c1 BAD")
lines = command(b"c2", 'c2 SEARCH SUBJECT "Grüße"\r\n'.encode())
assert lines[0].strip() == b"* SEARCH 1", lines
command(b"x2", b"x2 EXAMINE INBOX\r\n")
lines = command(b"f2", b"f2 UID FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n")
assert "Grüße".encode() in b"".join(lines), lines
assert b" OK " in command(b"n1", b"n1 NOOP\r\n")[-1]
s.close()
print("multiappend ok")
"#,
        ),
        &[],
    );
    assert!(out.contains("multiappend ok"), "{out}");
}

/// Another session's expunge reaches a selected session as EXPUNGE responses from the
/// highest sequence number down, so each number is right when the client applies it.
#[test]
fn expunges_arrive_highest_sequence_number_first() {
    let server = server_with_mail(&["x1", "x2", "x3", "x4", "x5"]);
    let out = server.python_ok(
        &script(
            r#"
a = imap_login()
a.select("INBOX")
b = imap_login()
b.select("INBOX")
ok(b.store("2,4", "+FLAGS", "(\\Deleted)"))
ok(b.expunge())
ok(a.noop())
assert a.untagged_responses.pop("EXPUNGE") == [b"4", b"2"], a.untagged_responses
data = ok(a.fetch("1:*", "(UID)"))
assert [re.search(rb"UID (\d+)", d).group(1) for d in data] == [b"1", b"3", b"5"], data
a.logout(); b.logout()
print("expunge order ok")
"#,
        ),
        &[],
    );
    assert!(out.contains("expunge order ok"), "{out}");
}
