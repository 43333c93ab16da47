//! IMAP compliance corners (issue #10, defects 4, 6 and 7): the keyword limit, NUL octets
//! outside literal8, UNSEEN, CHECK, LSUB and LIST-EXTENDED details, APPENDLIMIT.

mod common;

use common::imap::{script, server_with_mail};
use letterbox::limits::IMAP_MAX_KEYWORDS;

#[test]
fn keywords_past_the_limit_are_refused_not_dropped() {
    let server = server_with_mail(&["tagged"]);
    server.python_ok(
        &script(
            r#"
limit = int(sys.argv[1])
m = imap_login(mode="implicit")
ok(m.select("INBOX"))
for i in range(limit):
    ok(m.store("1", "+FLAGS", f"(k{i})"))
flags = ok(m.fetch("1", "(FLAGS)"))[0]
assert all(f"k{i}".encode() in flags for i in range(limit)), flags
# One keyword too many: refused, and nothing of the command is applied.
typ, data = m.store("1", "+FLAGS", "(\\Flagged extra)")
assert typ == "NO" and b"[LIMIT]" in data[0], (typ, data)
flags = ok(m.fetch("1", "(FLAGS)"))[0]
assert b"extra" not in flags and b"\\Flagged" not in flags, flags
typ, data = m.append("INBOX", "(another)", None, b"Subject: x\r\n\r\nx\r\n")
assert typ == "NO" and b"[LIMIT]" in data[0], (typ, data)
ok(m.append("INBOX", "(k0)", None, b"Subject: x\r\n\r\nx\r\n"))
# A full account no longer offers \* in PERMANENTFLAGS.
m.select("INBOX")
permanent = [r for r in m.untagged_responses.get("OK", []) if b"PERMANENTFLAGS" in r][0]
assert b"\\*" not in permanent and b"k0" in permanent, permanent
assert ok(m.search(None, "KEYWORD", f"k{limit - 1}"))[0] == b"1"
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
raw = (b"Subject: raw\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
       b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
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
s.sendall(b"a4 FETCH 1 (BODY.PEEK[] BODY.PEEK[2] RFC822.TEXT BINARY.PEEK[2])\r\n")
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
assert len(literals) == 4, literals
for binary, data in literals[:3]:
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
