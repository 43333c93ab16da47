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
