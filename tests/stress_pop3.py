"""A POP3 session beside the IMAP ones of tests/imap_stress.py: a phone that keeps its mail by
POP3 while a laptop reads the same INBOX over IMAP. It logs in, lists, reads, deletes (and
sometimes undeletes, or drops the connection instead of QUIT), in random order, and checks:

  - STAT, LIST and UIDL agree with each other (count, sizes, total), and UIDLs are unique and
    name the IMAP UID and UIDVALIDITY (Letterbox's `UIDVALIDITY.UID`, or Dovecot's default
    `%08Xu%08Xv`), one UIDVALIDITY for the whole run (RFC 1939 §7);
  - the same UID is the same message in both protocols: LIST's size is IMAP's RFC822.SIZE, RETR
    is exactly IMAP's BODY[] (after the dot-stuffing is undone), TOP n 0 is exactly BODY[HEADER],
    and the text carries the token of the message this run wrote, ending with its body;
  - after DELE n: STAT counts one fewer, RETR n, LIST n and DELE n again answer -ERR; RSET
    brings every deleted message back into STAT;
  - a message deleted by a session that ended with QUIT +OK is never listed again; one deleted by
    a session whose connection dropped may be (nothing is removed without QUIT).

With several POP3 actors, a login may be refused with -ERR [IN-USE] while another holds the
maildrop (RFC 2449); that is counted, not a violation.

A message that IMAP expunges while the POP3 session is open may be read from the session's
snapshot or answered -ERR; it must never be another message's text.
"""

import poplib
import random
import ssl
import time

from stress_world import IO_TIMEOUT, TOKEN, Violation


class Pop3Tls(poplib.POP3_SSL):
    """POP3 over implicit TLS that checks the certificate for `server_name` (the IMAP sessions'
    --tls-name), not for the address it connects to, as poplib would."""

    def __init__(self, host, port, context, timeout, server_name):
        self.server_name = server_name
        super().__init__(host, port, context=context, timeout=timeout)

    def _create_socket(self, timeout):
        sock = poplib.POP3._create_socket(self, timeout)
        return self.context.wrap_socket(sock, server_hostname=self.server_name)


def uidl_parts(unique):
    """(UIDVALIDITY, UID) as strings of digits from a UIDL: Letterbox's `UIDVALIDITY.UID`, or
    Dovecot's default `%08Xu%08Xv` (both in hex) when the script runs against Dovecot."""
    validity, dot, uid = unique.partition(".")
    if dot and validity.isdigit() and uid.isdigit():
        return validity, uid
    if len(unique) == 16 and all(c in "0123456789ABCDEFabcdef" for c in unique):
        return str(int(unique[8:], 16)), str(int(unique[:8], 16))
    return None, None


class Pop3Session:
    def __init__(self, world, args, idx):
        self.world, self.args = world, args
        self.name = f"pop3 session {idx}"
        self.rng = random.Random(f"{world.seed}-pop3-{idx}")
        self.transcript = []

    def log(self, direction, text):
        self.transcript.append(f"{time.monotonic() - self.world.start:7.3f} {direction} {text[:300]}")
        del self.transcript[:-60]

    def violation(self, kind, detail):
        raise Violation(kind, detail)

    def connect(self):
        ctx = ssl.create_default_context(cafile=self.args.cafile)
        if self.args.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        p = Pop3Tls(self.args.host, self.args.pop3_port, ctx, IO_TIMEOUT, self.args.tls_name)
        p.user(self.args.user)
        self.log("C", "USER/PASS")
        try:
            p.pass_(self.args.password)
        except poplib.error_proto as e:
            # RFC 2449 §8.1.1: one POP3 session per maildrop; another actor's session (or one
            # whose dropped connection the server has not seen yet) holds it.
            if b"[IN-USE]" not in (e.args[0] if e.args else b""):
                raise
            self.log("S", repr(e.args[0]))
            p.close()
            self.world.ops["pop3 in use"] += 1
            return None
        return p

    def command(self, name, call, *args):
        """`call(*args)`, logged; None for a -ERR answer."""
        self.log("C", f"{name} {' '.join(map(str, args))}")
        try:
            answer = call(*args)
        except poplib.error_proto as e:
            self.log("S", repr(e.args[0] if e.args else e))
            return None
        head = answer[0] if isinstance(answer, tuple) else answer
        self.log("S", repr(head) if not isinstance(head, int) else str(answer))
        return answer

    def listing(self, p):
        """{number: (uid, size)} from STAT, LIST and UIDL, checked against each other."""
        w = self.world
        count, octets = self.command("STAT", p.stat)
        sizes = {}
        for line in self.command("LIST", p.list)[1]:
            n, size = line.split()
            sizes[int(n)] = int(size)
        uids = {}
        for line in self.command("UIDL", p.uidl)[1]:
            n, unique = line.split()
            validity, uid = uidl_parts(unique.decode())
            if validity is None:
                self.violation("pop3-uidl-form", f"UIDL {unique!r} is neither UIDVALIDITY.UID nor Dovecot's %08Xu%08Xv")
            with w.lock:
                if w.pop3_uidvalidity is None:
                    w.pop3_uidvalidity = validity
                known = w.pop3_uidvalidity
            if validity != known:
                self.violation("pop3-uidvalidity-changed", f"UIDL {unique!r}, earlier sessions saw UIDVALIDITY {known}")
            uids[int(n)] = int(uid)
        if not (count == len(sizes) == len(uids)) or set(sizes) != set(uids) or octets != sum(sizes.values()):
            self.violation("pop3-listing-mismatch", f"STAT {count} {octets}, LIST {sizes}, UIDL {uids}")
        if len(set(uids.values())) != len(uids):
            self.violation("pop3-uidl-duplicate", f"UIDL {uids}")
        with w.lock:
            again = sorted(set(uids.values()) & w.pop3_removed)
        if again:
            self.violation("pop3-deleted-listed-again", f"UIDs {again} were deleted by a POP3 QUIT, and UIDL lists them")
        for n, uid in uids.items():
            w.saw_uid(uid)
            w.record(uid, "size", sizes[n], str)
        w.checks["pop3 listings"] += 1
        return {n: (uids[n], sizes[n]) for n in uids}

    def retr(self, p, n, uid, size):
        w = self.world
        answer = self.command("RETR", p.retr, n)
        if answer is None:
            return  # expunged over IMAP meanwhile
        text = b"\r\n".join(answer[1]) + b"\r\n"
        if len(text) != size:
            self.violation("pop3-retr-size", f"RETR {n} (UID {uid}) gave {len(text)} octets, LIST said {size}")
        m = TOKEN.search(text)
        if not m:
            self.violation("pop3-invented-data", f"RETR {n} (UID {uid}) has no token: {text[:200]!r}")
        token = m.group().decode()
        msg = w.messages.get(token)
        if msg and not text.endswith(msg.body):
            self.violation("pop3-wrong-content", f"RETR {n} (UID {uid}) does not end with the body of {token}")
        w.record(uid, "token", token, str)
        w.record(uid, "BODY[]", text, lambda v: f"{len(v)} octets {v[:100]!r}")
        w.checks["pop3 message contents"] += 1

    def top(self, p, n, uid):
        answer = self.command("TOP", p.top, n, 0)
        if answer is None:
            return
        header = b"\r\n".join(answer[1]) + b"\r\n"
        if not header.endswith(b"\r\n\r\n") or not TOKEN.search(header):
            self.violation("pop3-top", f"TOP {n} 0 (UID {uid}) is {header[:200]!r}")
        self.world.record(uid, "BODY[HEADER]", header, lambda v: repr(v[:300]))
        self.world.checks["pop3 headers"] += 1

    def session(self):
        """One POP3 session: a listing, a few random commands, then QUIT or a dropped connection."""
        w, rng = self.world, self.rng
        p = self.connect()
        if p is None:
            return
        messages = self.listing(p)
        deleted = set()
        for _ in range(rng.randrange(1, 8)):
            live = [n for n in messages if n not in deleted]
            op = rng.random()
            if live and op < 0.35:
                n = rng.choice(live)
                self.retr(p, n, *messages[n])
            elif live and op < 0.5:
                n = rng.choice(live)
                self.top(p, n, messages[n][0])
            elif live and op < 0.8:
                n = rng.choice(live)
                if self.command("DELE", p.dele, n) is None:
                    continue  # expunged over IMAP meanwhile
                deleted.add(n)
                count, _ = self.command("STAT", p.stat)
                if count != len(messages) - len(deleted):
                    self.violation("pop3-dele", f"STAT says {count} after deleting {sorted(deleted)} of {len(messages)}")
                for name, call in (("RETR", p.retr), ("LIST", p.list), ("DELE", p.dele)):
                    if self.command(name, call, n) is not None:
                        self.violation("pop3-dele", f"{name} {n} answered +OK after DELE {n}")
                w.checks["pop3 deletes"] += 1
            elif op < 0.9 and deleted:
                self.command("RSET", p.rset)
                deleted.clear()
                count, _ = self.command("STAT", p.stat)
                if count != len(messages):
                    self.violation("pop3-rset", f"STAT says {count} after RSET, {len(messages)} at the start")
            else:
                self.command("NOOP", p.noop)
        w.ops["pop3 session"] += 1
        if rng.random() < 0.1:
            self.log("C", "(connection dropped without QUIT)")
            p.close()
            w.ops["pop3 dropped"] += 1
            return
        answer = self.command("QUIT", p.quit)
        if answer is not None and deleted:
            with w.lock:
                w.pop3_removed.update(messages[n][0] for n in deleted)
            w.ops["pop3 dele+quit"] += 1

    def main(self):
        w = self.world
        while not w.stop.is_set() and time.monotonic() < w.deadline:
            try:
                self.session()
            except Exception as e:  # noqa: BLE001 - anything unexpected must fail the run, too
                if not isinstance(e, Violation):
                    e = Violation("pop3-connection" if isinstance(e, OSError) else "pop3-script-error", f"{type(e).__name__}: {e}")
                with w.lock:
                    w.violations.append((time.monotonic() - w.start, self.name, e, list(self.transcript)))
                if not self.args.keep_going:
                    w.stop.set()
                    return
            w.stop.wait(self.rng.uniform(0.2, 1.0))
