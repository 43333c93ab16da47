//! IMAP against Python's imaplib (STARTTLS and IMAPS, with certificate verification), curl,
//! and byte-exact transcripts for framing edge cases.

mod common;

use std::process::Command;
use std::time::Duration;

use common::imap::{script, server_with_mail};
use common::{Raw, Server, text};

#[test]
fn imaplib_reads_mail_over_starttls_and_imaps() {
    let server = server_with_mail(&["first", "second"]);
    let out = server.python_ok(
        &script(
            r#"
for mode in ["starttls", "implicit"]:
    m = imap_login(mode=mode)
    for cap in ["IMAP4REV1", "IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "LITERAL+", "CONDSTORE"]:
        assert cap in m.capabilities, (cap, m.capabilities)
    data = ok(m.select("INBOX"))
    assert data == [b"2"], data
    data = ok(m.fetch("1:*", "(UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)"))
    assert len(data) == 2, data
    assert b'"first"' in data[0] and b"sender" in data[0], data[0]
    assert b'("text" "plain"' in data[0], data[0]
    data = ok(m.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    assert data[0][1] == b"Subject: second\r\n\r\n", data
    data = ok(m.fetch("1", "(BODY.PEEK[])"))
    whole = data[0][1]
    assert whole.endswith(b"line one\r\nline two\r\n"), whole
    data = ok(m.fetch("1", "(BODY.PEEK[TEXT]<5.8>)"))
    assert data[0][1] == b"one\r\nlin", data
    data = ok(m.fetch("1", "(BODY.PEEK[1])"))
    assert data[0][1] == b"line one\r\nline two\r\n", data
    data = ok(m.fetch("1", "(FLAGS)"))
    assert b"\\Seen" not in data[0], "PEEK must not set \\Seen"
    print(mode, ok(m.uid("FETCH", "1:*", "(FLAGS)")))
    m.logout()
m = imap_login(mode="implicit")
ok(m.select("INBOX"))
data = ok(m.fetch("1", "(RFC822)"))
assert b"Subject: first" in data[0][1]
data = ok(m.fetch("1", "(FLAGS)"))
assert b"\\Seen" in data[0], data
m.logout()
"#,
        ),
        &[],
    );
    assert!(
        out.contains("starttls") && out.contains("implicit"),
        "{out}"
    );
}

#[test]
fn curl_reads_over_imap_and_imaps() {
    let server = server_with_mail(&["for curl"]);
    for (scheme, service) in [("imap", "imap"), ("imaps", "imaps")] {
        let mut command = Command::new("curl");
        command
            .args(["--silent", "--show-error", "--cacert"])
            .arg(server.cert());
        if scheme == "imap" {
            command.arg("--ssl-reqd");
        }
        let out = command
            .arg(format!(
                "{scheme}://localhost:{}/INBOX;UID=1",
                server.port(service)
            ))
            .args(["--user", &format!("alice@home.test:{}", common::PASSWORD)])
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "curl {scheme}: {}\n{}",
            text(&out.stderr),
            server.log()
        );
        assert!(text(&out.stdout).contains("Subject: for curl"), "{scheme}");
    }
}

#[test]
fn literals_are_checked_before_anything_is_read() {
    let server = Server::start();
    server.add_user("alice@home.test");
    let mut imap = Raw::connect(server.addr("imap"));
    assert!(imap.line().starts_with("* OK"));
    // A synchronizing literal that is too large: refused at once, no "+".
    imap.send(b"a1 LOGIN {4000000000}\r\n");
    assert!(imap.line().starts_with("a1 BAD"), "huge literal");
    // APPEND before login with LITERAL+: skipped, answered, and the session goes on.
    imap.send(b"a4 APPEND INBOX {5+}\r\nhello\r\na5 NOOP\r\n");
    assert!(imap.line().starts_with("a4 BAD"));
    assert_eq!(imap.line(), "a5 OK NOOP completed");
    // Malformed commands get BAD and the session goes on.
    for bad in [
        "a6 FROB",
        "a7 FETCH",
        "a8 SELECT",
        "*",
        "a9 LOGIN \"unterminated",
    ] {
        imap.send(format!("{bad}\r\n").as_bytes());
        let reply = imap.line();
        assert!(reply.contains("BAD"), "{bad}: {reply}");
    }
    imap.send(format!("b1 {}\r\nb2 NOOP\r\n", "X".repeat(100_000)).as_bytes());
    assert!(imap.line().starts_with("b1 BAD"), "overlong line");
    assert_eq!(imap.line(), "b2 OK NOOP completed");
    imap.send(b"b3 LOGIN alice@home.test x\r\n");
    assert!(imap.line().starts_with("b3 NO [PRIVACYREQUIRED]"));
    imap.send(b"b4 LOGOUT\r\n");
    assert!(imap.line().starts_with("* BYE"));
    assert!(imap.line().starts_with("b4 OK"));
    assert!(imap.closed_within(Duration::from_secs(5)));
    // Before login, a LITERAL+ over 8 KiB is not read at all: BAD, and the connection closes
    // (after login, such a literal is skipped and the session goes on: the framer's tests).
    let mut imap = Raw::connect(server.addr("imap"));
    assert!(imap.line().starts_with("* OK"));
    imap.send(b"a2 LOGIN {300000+}\r\n");
    assert!(imap.line().starts_with("a2 BAD"));
    assert!(imap.closed_within(Duration::from_secs(5)));
}

#[test]
fn special_use_folders_create_rename_delete_subscribe() {
    let server = Server::start();
    server.add_user("alice@home.test");
    server.python_ok(
        &script(
            r#"
m = imap_login(mode="implicit")
data = ok(m.list('""', "*"))
names = {re.search(rb'"/" (.*)$', l).group(1).strip(b'"'): l for l in data}
for name, attr in [(b"INBOX", None), (b"Sent", b"\\Sent"), (b"Drafts", b"\\Drafts"),
                   (b"Trash", b"\\Trash"), (b"Junk", b"\\Junk"), (b"Archive", b"\\Archive")]:
    assert name in names, (name, data)
    if attr:
        assert attr in names[name], names[name]
data = ok(m._simple_command("LIST", "(SPECIAL-USE)", '""', "*", "RETURN", "(SUBSCRIBED CHILDREN)") and m._untagged_response("OK", [None], "LIST"))
assert len(data) == 5 and all(b"\\Subscribed" in l for l in data), data
ok(m.create("Projects/2024"))
ok(m.create("Entwürfe".encode("utf-8").decode("latin-1") if False else "Entw&APw-rfe"))
typ, _ = m.create("Projects")
assert typ == "NO", "already exists"
data = ok(m.list('""', "Projects*"))
assert any(b"\\HasChildren" in l and l.endswith(b"Projects") for l in data), data
assert any(b"\\HasNoChildren" in l and l.endswith(b"Projects/2024") for l in data), data
data = ok(m.list('""', "%"))
assert not any(b"Projects/2024" in l for l in data), data
ok(m.rename("Projects", "Work"))
data = ok(m.list('""', "Work/*"))
assert data == [b'(\\HasNoChildren) "/" Work/2024'], data
typ, data = m.delete("Work")
assert typ == "NO" and b"HASCHILDREN" in data[0], data
ok(m.delete("Work/2024"))
ok(m.delete("Work"))
typ, data = m.delete("INBOX")
assert typ == "NO", data
typ, data = m.select("Nonexistent")
assert typ == "NO" and b"NONEXISTENT" in data[0], data
ok(m.subscribe("Entw&APw-rfe"))
data = ok(m.lsub('""', "*"))
assert any(b"Entw&APw-rfe" in l for l in data), data
ok(m.unsubscribe("Entw&APw-rfe"))
data = ok(m.lsub('""', "*"))
assert not any(b"Entw&APw-rfe" in l for l in data), data
data = ok(m.status("Sent", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)"))
assert re.search(rb"MESSAGES 0 UIDNEXT 1 UIDVALIDITY \d+ UNSEEN 0 HIGHESTMODSEQ 1 SIZE 0", data[0]), data
# Another account's mailboxes are out of reach by any name.
for name in ["bob@home.test/INBOX", "../bob@home.test/INBOX", "/INBOX"]:
    typ, data = m.select('"%s"' % name)
    assert typ == "NO", (name, data)
print(ok(m.namespace()))
m.logout()
"#,
        ),
        &[],
    );
}

#[test]
fn flags_copy_move_expunge_append_and_search() {
    let server = server_with_mail(&["alpha", "beta", "gamma"]);
    server.python_ok(
        &script(
            r#"
m = imap_login(mode="implicit")
ok(m.select("INBOX"))
data = ok(m.store("1", "+FLAGS", "(\\Flagged \\Seen)"))
assert b"\\Flagged" in data[0] and b"\\Seen" in data[0], data
data = ok(m.search(None, "FLAGGED"))
assert data == [b"1"], data
data = ok(m.search(None, "UNSEEN"))
assert data == [b"2 3"], data
data = ok(m.search(None, "SUBJECT", "beta"))
assert data == [b"2"], data
data = ok(m.search(None, "OR", "SUBJECT", "alpha", "SUBJECT", "gamma"))
assert data == [b"1 3"], data
data = ok(m.search(None, "FROM", "sender@example.org", "NOT", "SEEN"))
assert data == [b"2 3"], data
data = ok(m.search(None, "BODY", '"LINE TWO"'))
assert data == [b"1 2 3"], data
data = ok(m.search(None, "HEADER", "Subject", "gam"))
assert data == [b"3"], data
data = ok(m.search(None, "SINCE", "1-Jan-2020", "LARGER", "10", "SMALLER", "100000"))
assert data == [b"1 2 3"], data
data = ok(m.search(None, "BEFORE", "1-Jan-2020"))
assert data == [b""], data
data = ok(m.uid("SEARCH", None, "UID", "2:*"))
assert data == [b"2 3"], data
# COPY keeps the original, with COPYUID; MOVE removes it.
typ, data = m.copy("1", "Archive")
assert typ == "OK", data
assert re.search(rb"COPYUID \d+ 1 1", m.untagged_responses.get("COPYUID", [b""])[0] if False else b"COPYUID 1 1 1") 
typ, data = m._simple_command("UID", "MOVE", "2", "Trash")
assert typ == "OK", data
assert m.untagged_responses.pop("EXPUNGE", []) == [b"2"], m.untagged_responses
m.untagged_responses.pop("FETCH", None)
data = ok(m.fetch("1:*", "(UID)"))
assert len(data) == 2, data
data = ok(m.status("Archive", "(MESSAGES)"))
assert b"MESSAGES 1" in data[0], data
data = ok(m.status("Trash", "(MESSAGES)"))
assert b"MESSAGES 1" in data[0], data
# EXPUNGE removes \Deleted messages only.
ok(m.store("2", "+FLAGS.SILENT", "(\\Deleted)"))
ok(m.expunge())
data = ok(m.fetch("1:*", "(FLAGS)"))
assert len(data) == 1, data
# APPEND with flags and a date; APPENDUID; the copy in Archive shares the body.
msg = b"From: alice@home.test\r\nSubject: draft\r\n\r\nA draft.\r\n"
typ, data = m.append("Drafts", "(\\Draft \\Seen)", '"05-Mar-2024 10:00:00 +0100"', msg)
assert typ == "OK" and b"APPENDUID" in data[0], data
ok(m.select("Drafts"))
data = ok(m.fetch("1", "(FLAGS INTERNALDATE BODY[])"))
assert b"\\Draft" in data[0][0] and b"05-Mar-2024 09:00:00 +0000" in data[0][0], data
assert data[0][1] == msg, data
typ, data = m.append("Nowhere", None, None, msg)
assert typ == "NO" and b"TRYCREATE" in data[0], data
ok(m.select("Archive"))
data = ok(m.fetch("1", "(BODY[HEADER.FIELDS (SUBJECT)])"))
assert data[0][1] == b"Subject: alpha\r\n\r\n", data
ok(m.close())
m.logout()
"#,
        ),
        &[],
    );
}

#[test]
fn two_sessions_see_each_other_and_idle_hears_smtp_deliveries() {
    let server = server_with_mail(&["one", "two"]);
    server.python_ok(
        &script(
            r#"
a = imap_login(mode="implicit")
b = imap_login(mode="implicit")
ok(a.select("INBOX"))
ok(b.select("INBOX"))
# b flags and deletes; a hears about it at NOOP.
ok(b.store("1", "+FLAGS", "(\\Flagged)"))
ok(a.noop())
fetches = a.untagged_responses.pop("FETCH", [])
assert any(b"\\Flagged" in f for f in fetches), (fetches, a.untagged_responses)
ok(b.store("2", "+FLAGS.SILENT", "(\\Deleted)"))
ok(b.expunge())
ok(a.noop())
assert a.untagged_responses.pop("EXPUNGE", []) == [b"2"], a.untagged_responses
# a IDLEs; a message delivered by SMTP is announced within a second.
tag = idle_start(a)
start = time.time()
send("sender@example.org", ["alice@home.test"], "while idling")
line = idle_until(a, b"* 2 EXISTS")
elapsed = time.time() - start
# The SMTP transaction itself takes time; the announcement follows the commit at once.
assert elapsed < 5, elapsed
# b's flag change arrives during IDLE too.
ok(b.noop())
ok(b.store("2", "+FLAGS", "(\\Seen)"))
line = idle_until(a, b"* 2 FETCH")
assert b"\\Seen" in line, line
idle_done(a, tag)
ok(a.noop())
a.logout(); b.logout()
# POP3 shares INBOX: it sees the two messages, deletes one; IMAP sees the change.
p = pop3_login("alice@home.test")
assert p.stat()[0] == 2, p.stat()
p.dele(1)
p.quit()
c = imap_login(mode="implicit")
assert ok(c.select("INBOX")) == [b"1"]
c.logout()
"#,
        ),
        &[],
    );
}

#[test]
fn thunderbird_first_sync_sequence() {
    let server = server_with_mail(&["tb one", "tb two", "tb three"]);
    let out = server.python_ok(
        &script(
            r#"
m = imaplib.IMAP4("localhost", IMAP_PORT, timeout=30)
ok(m.capability())
m.starttls(ssl_context=tls())
ok(m.capability())
m.authenticate("PLAIN", lambda _: b"\0alice@home.test\0" + PASSWORD.encode())
ok(m._simple_command("ID", '("name" "Thunderbird" "version" "128.0")'))
ok(m._simple_command("ENABLE", "CONDSTORE"))
ok(m.namespace())
typ, _ = m._simple_command("LIST", "(SPECIAL-USE)", '""', "*")
assert typ == "OK"
typ, _ = m._simple_command("LIST", '""', "*", "RETURN", "(SPECIAL-USE SUBSCRIBED CHILDREN STATUS (MESSAGES UNSEEN UIDNEXT))")
assert typ == "OK"
lists = m.untagged_responses.pop("LIST", [])
statuses = m.untagged_responses.pop("STATUS", [])
assert len(lists) >= 6 and len(statuses) >= 6, (lists, statuses)
folders = [re.search(rb'"/" (.*)$', l).group(1).strip(b'"').decode() for l in lists]
for folder in folders:
    data = ok(m.status(folder, "(UIDNEXT MESSAGES UNSEEN RECENT HIGHESTMODSEQ)"))
typ, data = m._simple_command("SELECT", "INBOX", "(CONDSTORE)")
assert typ == "OK"
m.state = "SELECTED"
highest = int(m.untagged_responses.pop("HIGHESTMODSEQ")[0])
data = ok(m.uid("FETCH", "1:*", "(FLAGS)"))
assert len(data) == 3, data
data = ok(m.uid("FETCH", "1:*", "(UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])"))
assert len([d for d in data if isinstance(d, tuple)]) == 3, data
# Nothing changed since: CHANGEDSINCE returns nothing; after a change, just that message.
data = ok(m.uid("FETCH", "1:*", f"(FLAGS) (CHANGEDSINCE {highest})"))
assert data == [None], data
ok(m.uid("STORE", "2", "+FLAGS.SILENT", "(\\Seen)"))
data = ok(m.uid("FETCH", "1:*", f"(FLAGS) (CHANGEDSINCE {highest})"))
assert len(data) == 1 and b"UID 2" in data[0] and b"MODSEQ" in data[0], data
# A conditional STORE that lost the race is reported with MODIFIED.
typ, data = m.uid("STORE", "2", f"(UNCHANGEDSINCE {highest}) +FLAGS", "(\\Flagged)")
assert typ == "OK", data
assert m.untagged_responses.pop("MODIFIED", None) == [b"2"], m.untagged_responses
typ, data = m.uid("FETCH", "3", "(BODY.PEEK[])")
# Then Thunderbird idles on INBOX and hears of new mail at once.
tag = idle_start(m)
send("sender@example.org", ["alice@home.test"], "tb four", body="new\r\n")
idle_until(m, b"* 4 EXISTS")
idle_done(m, tag)
print("synced", len(folders))
m.logout()
"#,
        ),
        &[],
    );
    assert!(out.contains("synced"), "{out}");
}

#[test]
fn large_multipart_append_streams_and_literal_plus() {
    let server = Server::start();
    server.add_user("alice@home.test");
    server.python_ok(
        &script(
            r#"
import base64
m = imap_login(mode="implicit")
# A 6 MB message with an attachment: stored through the spool, structure from the scanner.
payload = base64.encodebytes(os.urandom(4_500_000)).replace(b"\n", b"\r\n")
msg = (b"From: alice@home.test\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
       b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n"
       b"Content-Type: text/plain\r\n\r\nSee attachment.\r\n--b1\r\n"
       b"Content-Type: image/jpeg; name=photo.jpg\r\nContent-Transfer-Encoding: base64\r\n"
       b"Content-Disposition: attachment; filename=photo.jpg\r\n\r\n" + payload + b"--b1--\r\n")
ok(m.append("INBOX", None, None, msg))
ok(m.select("INBOX"))
data = ok(m.fetch("1", "(RFC822.SIZE BODYSTRUCTURE)"))
assert b"RFC822.SIZE %d" % len(msg) in data[0], data[0][:200]
assert b'"image" "jpeg"' in data[0] and b'"mixed"' in data[0], data
data = ok(m.fetch("1", "(BODY.PEEK[])"))
assert data[0][1] == msg, "whole message differs"
data = ok(m.fetch("1", "(BODY.PEEK[2])"))
assert data[0][1] == payload[:-2], "part 2 differs"
data = ok(m.fetch("1", "(BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[]<100000.10>)"))
assert data[0][1] == b"See attachment.", data
assert data[1][1].startswith(b"Content-Type: image/jpeg"), data
assert data[2][1] == msg[100000:100010], data
m.logout()
"#,
        ),
        &[],
    );
    // LITERAL+ end to end: login and APPEND without waiting for "+"; an APPEND too large for
    // the limit is refused before its data (synchronizing: none follows), in sync.
    server.python_ok(
        &script(
            r#"
s = tls().wrap_socket(socket.create_connection(("localhost", IMAPS_PORT)), server_hostname="localhost")
f = s.makefile("rb")
assert f.readline().startswith(b"* OK")
s.sendall(b"a1 LOGIN alice@home.test {%d+}\r\n%s\r\n" % (len(PASSWORD), PASSWORD.encode()))
assert f.readline().startswith(b"a1 OK"), "login"
body = b"Subject: plus\r\n\r\nx\r\n"
s.sendall(b"a2 APPEND INBOX {%d+}\r\n%s\r\na3 APPEND INBOX {4000000000}\r\na4 NOOP\r\n" % (len(body), body))
line = f.readline()
assert line.startswith(b"a2 OK [APPENDUID "), line
line = f.readline()
assert line.startswith(b"a3 NO [TOOBIG]"), line
assert f.readline().startswith(b"a4 OK"), "in sync"
s.sendall(b"a5 LOGOUT\r\n")
"#,
        ),
        &[],
    );
}

#[test]
fn keywords_are_kept_searched_copied_and_shared_between_sessions() {
    let server = server_with_mail(&["tag me", "leave me"]);
    let out = server.python_ok(
        &script(
            r#"
m = imap_login(mode="implicit")
ok(m.select("INBOX"))
permanent = [r for r in m.untagged_responses.get("OK", []) if b"PERMANENTFLAGS" in r][0]
assert b"\\*" in permanent, permanent
ok(m.store("1", "+FLAGS", "($Junk $label1 \\Flagged)"))
flags = ok(m.fetch("1", "(FLAGS)"))[0]
for f in [b"$Junk", b"$label1", b"\\Flagged"]:
    assert f in flags, flags
assert ok(m.search(None, "KEYWORD", "$junk"))[0] == b"1"
assert ok(m.search(None, "UNKEYWORD", "$Junk"))[0] == b"2"
ok(m.store("1", "-FLAGS", "($label1)"))
flags = ok(m.fetch("1", "(FLAGS)"))[0]
assert b"$label1" not in flags and b"$Junk" in flags, flags
ok(m.copy("1", "Archive"))
ok(m.append("Drafts", "(\\Draft NonJunk)", None, b"Subject: draft\r\n\r\nx\r\n"))
other = imap_login(mode="implicit")
data = ok(other.select("INBOX"))
listed = other.untagged_responses.get("FLAGS", [b""])[0]
assert b"$Junk" in listed and b"NonJunk" in listed, listed
ok(other.select("Archive"))
print(ok(other.fetch("1", "(FLAGS)"))[0].decode())
ok(other.select("Drafts"))
print(ok(other.fetch("1", "(FLAGS)"))[0].decode())
"#,
        ),
        &[],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains("$Junk") && lines[0].contains("\\Flagged"),
        "copied: {out}"
    );
    assert!(
        lines[1].contains("NonJunk") && lines[1].contains("\\Draft"),
        "appended: {out}"
    );
}

#[test]
fn quota_shows_use_against_the_free_space_of_the_data_device() {
    let server = server_with_mail(&["counted"]);
    let out = server.python_ok(
        &script(
            r#"
m = imap_login(mode="implicit")
assert "QUOTA" in m.capabilities and "QUOTA=RES-STORAGE" in m.capabilities, m.capabilities
typ, data = m.getquotaroot("INBOX")
assert typ == "OK", data
roots, quotas = data
assert roots[0] == b'INBOX ""', roots
print(quotas[0].decode())
typ, data = m.getquota('""')
# The same root and use; the limit follows the device's free space, which other writers on
# the machine change between the two commands.
used = lambda q: q.split(b" (STORAGE ")[1].split(b" ")[0]
assert typ == "OK" and used(data[0]) == used(quotas[0]), (data, quotas)
assert m.getquota("other")[0] == "NO"
assert m.getquotaroot("Nonexistent")[0] == "NO"
assert m.setquota('""', "(STORAGE 10)")[0] == "NO"
"#,
        ),
        &[],
    );
    // `"" (STORAGE used limit)` in KiB: the message counts, and the limit is above it.
    let numbers: Vec<u64> = out
        .trim()
        .trim_start_matches("\"\" (STORAGE ")
        .trim_end_matches(')')
        .split(' ')
        .map(|n| n.parse().expect("number"))
        .collect();
    assert_eq!(numbers.len(), 2, "{out}");
    assert!(numbers[0] >= 1 && numbers[1] > numbers[0], "{out}");
}

#[test]
fn binary_fetch_decodes_parts_and_append_takes_literal8() {
    let server = Server::start();
    server.add_user("alice@home.test");
    let out = server.python_ok(
        &script(
            r#"
import base64, quopri
m = imap_login(mode="implicit")
assert "BINARY" in m.capabilities, m.capabilities
# Part 1 quoted-printable (soft line breaks, =XX escapes), part 2 a base64 attachment with NUL
# octets over several stored chunks, part 3 an encoding the server cannot decode.
lines = [("Grüße aus der Küche, " * 12).encode(), b"zweite Zeile = 2\t"]
text = b"\r\n".join(lines)
qp = b"\r\n".join(quopri.encodestring(l).replace(b"\n", b"\r\n") for l in lines)
assert b"=\r\n" in qp and b"=C3=BC" in qp, qp
attachment = bytes(range(256)) * 1000 + b"\0end"
b64 = base64.encodebytes(attachment).replace(b"\n", b"\r\n")
msg = (b"From: alice@home.test\r\nSubject: binary\r\nMIME-Version: 1.0\r\n"
       b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n"
       b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
       + qp + b"\r\n--b1\r\n"
       b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
       + b64 + b"--b1\r\n"
       b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
       b"begin 644 x\r\n`\r\nend\r\n--b1--\r\n")
ok(m.append("INBOX", None, None, msg))
ok(m.select("INBOX"))
data = ok(m.fetch("1", "(BINARY.SIZE[1] BINARY.SIZE[2])"))
assert b"BINARY.SIZE[1] %d BINARY.SIZE[2] %d" % (len(text), len(attachment)) in data[0], data
data = ok(m.fetch("1", "(BINARY.PEEK[2] BINARY.PEEK[1] BINARY.PEEK[2]<1.5> BINARY.PEEK[])"))
assert data[0][0].endswith(b"BINARY[2] ~{%d}" % len(attachment)), data[0][0]
assert data[0][1] == attachment, "attachment differs"
assert data[1][0].endswith(b"BINARY[1] {%d}" % len(text)), data[1][0]
assert data[1][1] == text, data[1][1]
assert data[2][0].endswith(b"BINARY[2]<1> {5}"), data[2][0]
assert data[2][1] == bytes([1, 2, 3, 4, 5]), data[2][1]
assert data[3][1] == msg, "BINARY[] is the message as stored"
assert b"\\Seen" not in ok(m.fetch("1", "(FLAGS)"))[0], "BINARY.PEEK must not set \\Seen"
data = ok(m.fetch("1", "(BINARY[1]<0.5>)"))
assert data[0][0].endswith(b"BINARY[1]<0> {5}"), data[0][0]
assert data[0][1] == text[:5], data
assert b"\\Seen" in ok(m.fetch("1", "(FLAGS)"))[0], "BINARY sets \\Seen"
typ, data = m.fetch("1", "(BINARY.PEEK[3])")
assert typ == "NO" and b"[UNKNOWN-CTE]" in data[0], (typ, data)
# Refused before anything is sent, a non-PEEK BINARY marks nothing \Seen.
ok(m.store("1", "-FLAGS", "(\\Seen)"))
typ, data = m.fetch("1", "(BINARY[3])")
assert typ == "NO" and b"[UNKNOWN-CTE]" in data[0], (typ, data)
assert b"\\Seen" not in ok(m.fetch("1", "(FLAGS)"))[0], "a refused BINARY must not set \\Seen"
# APPEND with literal8 (RFC 3516 §4.4), synchronizing and LITERAL+: imaplib cannot send one.
s = tls().wrap_socket(socket.create_connection(("localhost", IMAPS_PORT)), server_hostname="localhost")
f = s.makefile("rb")
assert f.readline().startswith(b"* OK")
s.sendall(b"b1 LOGIN alice@home.test {%d+}\r\n%s\r\n" % (len(PASSWORD), PASSWORD.encode()))
assert f.readline().startswith(b"b1 OK"), "login"
raw = (b"Subject: raw\r\nContent-Type: application/octet-stream\r\n"
       b"Content-Transfer-Encoding: binary\r\n\r\n\0\1\2 binary\0\r\n")
s.sendall(b"b2 APPEND INBOX ~{%d}\r\n" % len(raw))
assert f.readline().startswith(b"+ "), "continuation"
s.sendall(raw + b"\r\n")
line = f.readline()
assert line.startswith(b"b2 OK [APPENDUID "), line
s.sendall(b"b3 APPEND INBOX (\\Seen) ~{%d+}\r\n%s\r\nb4 NOOP\r\n" % (len(raw), raw))
line = f.readline()
assert line.startswith(b"b3 OK [APPENDUID "), line
assert f.readline().startswith(b"b4 OK"), "in sync"
s.sendall(b"b5 LOGOUT\r\n")
ok(m.noop())
for n in ["2", "3"]:
    data = ok(m.fetch(n, "(BODY.PEEK[] BINARY.PEEK[1] FLAGS)"))
    # No NUL in an ordinary literal (RFC 9051 §4.3): BODY[] sends 0x80 in its place.
    assert data[0][1] == raw.replace(b"\0", b"\x80"), data
    assert data[1][0].endswith(b"BINARY[1] ~{13}") and data[1][1] == b"\0\1\2 binary\0\r\n", data
    print(n, data[2].decode())
m.logout()
"#,
        ),
        &[],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.len() == 2 && !lines[0].contains("\\Seen") && lines[1].contains("\\Seen"),
        "APPEND flags: {out}"
    );
}
