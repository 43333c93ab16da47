//! Several sessions on one mailbox, as a household's phone, laptop and tablet are: every
//! update comes before the tagged reply of the command that carries it, expunges never come
//! during a command that names messages by sequence number, a message another session
//! expunged is never answered with made-up data, and CONDSTORE's unsolicited FETCH responses
//! carry UID and MODSEQ. Spoken over raw TLS sockets: the order of responses is the point.

mod common;

use common::imap::{script, server_with_mail};

/// Issue #10, defect 1: session B expunges UID 2; session A's next command reports it
/// before its own tagged OK, so A never acts on a stale sequence number.
#[test]
fn updates_come_before_the_tagged_reply() {
    let server = server_with_mail(&["one", "two", "three"]);
    server.python_ok(
        &script(
            r#"
a, b = RawImap(), RawImap()
a.ok("SELECT INBOX")
b.ok("SELECT INBOX")
b.ok("UID STORE 2 +FLAGS.SILENT (\\Deleted)")
b.ok("EXPUNGE")
# A UID command sees the mailbox as it is now: the expunge first, then the numbers after it.
untagged = a.ok("UID FETCH 1:* (UID)")
assert untagged[0] == b"* 2 EXPUNGE\r\n", untagged
assert untagged[1:] == [b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (UID 3)\r\n"], untagged
untagged = a.ok("FETCH 2 (UID)")
assert untagged == [b"* 2 FETCH (UID 3)\r\n"], untagged

# A delivery and a flag change by B reach A before A's tagged reply to NOOP, CHECK or any
# other command, never after it.
send("sender@example.org", ["alice@home.test"], "four")
b.ok("UID STORE 1 +FLAGS.SILENT (\\Flagged)")
untagged, done = a.command("CHECK")
assert b"* 3 EXISTS\r\n" in untagged, untagged
assert any(b"FETCH (UID 1 FLAGS (\\Flagged" in line for line in untagged), untagged
assert done.startswith(b"t") and b" OK " in done, done

# By sequence number: the EXISTS may come, the expunge must wait for a command that allows it.
b.ok("UID STORE 3 +FLAGS.SILENT (\\Deleted)")
b.ok("EXPUNGE")
untagged = a.ok("FETCH 1 (FLAGS)")
assert not any(b"EXPUNGE" in line for line in untagged), untagged
untagged = a.ok("SEARCH ALL")
assert not any(b"EXPUNGE" in line for line in untagged), untagged
# (Message 2 is gone: whether SEARCH still counts it is the server's choice.)
untagged = a.ok("NOOP")
assert untagged == [b"* 2 EXPUNGE\r\n"], untagged
untagged = a.ok("UID SEARCH ALL")
assert untagged == [b"* SEARCH 1 4\r\n"], untagged
"#,
        ),
        &[],
    );
}
