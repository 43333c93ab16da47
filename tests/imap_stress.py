#!/usr/bin/env python3
"""A model-checking IMAP stress test: several sessions on one mailbox at once, plus deliveries,
each session checking every response it reads against a model of what that session may know.

Run by `cargo test --test imap_stress` against a fresh Letterbox, or by hand against any server
(Dovecot included) with a test account whose INBOX may be emptied:

    python3 tests/imap_stress.py --port 993 --tls implicit --cafile cert.pem \\
        --user alice@home.test --password '...' [--smtp-port 25] [--pop3-port 995] \\
        [--seconds 600] [--seed 42]

Environment (the Rust test passes these through; flags win over them):
    IMAP_STRESS_SECONDS   seconds of load (default 40)
    IMAP_STRESS_SEED      the random seed (default: random; always printed). Each session's
                          choices follow from it; the interleaving of sessions does not.
    IMAP_STRESS_SESSIONS  concurrent IMAP sessions (default 5: IMAP4rev1, CONDSTORE, QRESYNC,
                          IMAP4rev2, QRESYNC, then round again)
    IMAP_STRESS_KEEP_GOING=1  do not stop at the first violation: count it and go on (after a
                          violation that leaves the model unsure, that session reconnects), and
                          print every kind of violation seen with when it was first seen
    IMAP_STRESS_LOG_DIR   write each session's whole transcript there
    IMAP_STRESS_POP3_SESSIONS  POP3 sessions beside the IMAP ones (default 1, with a POP3 port;
                          each logs in, reads and deletes in a loop: tests/stress_pop3.py)
    IMAPS_PORT, POP3S_PORT, CERT, PASSWORD, SMTP_PORT  as the Letterbox test harness sets them

Exit status 0 only if no violation was seen (and the run did enough to mean something); on a
violation it prints the seed, the session, the rule broken and the tail of that session's
transcript.

Load: each session SELECTs or EXAMINEs INBOX and does random FETCHes (FLAGS, UID, ENVELOPE,
BODYSTRUCTURE, RFC822.SIZE, BODY.PEEK[], BODY.PEEK[HEADER], BODY.PEEK[1], MODSEQ) by sequence
number and by UID, STOREs (+/-FLAGS, .SILENT, UNCHANGEDSINCE), COPY/MOVE (to another mailbox
and to INBOX itself), STORE \Deleted + EXPUNGE/UID EXPUNGE, APPEND, SEARCH, NOOP/CHECK, IDLE,
reselects (QRESYNC sessions sometimes with SELECT ... (QRESYNC (uidvalidity modseq))); another
thread delivers by SMTP (or, without --smtp-port, APPENDs from its own connection).

What each session knows, and what is checked on every response (RFC 9051 §7.5.1 / RFC 3501
§7.4.1 and §6.4.8, RFC 7162, RFC 6851, RFC 4315, RFC 5530):
  - its sequence number -> UID map changes only by the EXISTS, EXPUNGE and VANISHED responses it
    reads; EXPUNGE/VANISHED never arrive while no command is in progress (so never after the
    tagged reply of the command that reported them), nor during FETCH, STORE or SEARCH by
    sequence number; EXISTS never decreases; what comes during a SELECT before [CLOSED] (or
    before the first response about the new mailbox) belongs to the old view;
  - a FETCH's sequence number is within the view and agrees with the UID the session knows for
    it; UIDs stay in ascending order; an expunged UID never shows up again in that session;
    SEARCH by sequence number returns numbers within the view; UID FETCH answers carry UID;
  - a UID never changes meaning: every message this test writes carries a token, and what a
    FETCH returns (ENVELOPE, BODYSTRUCTURE, BODY[HEADER], BODY[], BODY[1], RFC822.SIZE) must be
    that token's message, exactly, and the same for a UID every time any session asks; no
    invented data: an empty header, an all-NIL envelope, a zero-size body structure, NIL or
    RFC822.SIZE 0 are what a server may send for a message that is gone only together with a
    NO or an OK [EXPUNGEISSUED] (as Dovecot does), and BODY[] of spaces never;
  - the session's own keyword ($StressN, which only that session stores) on a UID changes only
    by its own STOREs, and a non-silent STORE's FETCH shows the change;
  - own MOVE: the messages it moved (COPYUID) are reported expunged before its tagged OK;
    COPYUID is well-formed;
  - CONDSTORE (by ENABLE, SELECT (CONDSTORE) or FETCH MODSEQ): MODSEQ per UID never goes back,
    HIGHESTMODSEQ never goes back and at SELECT is at least every MODSEQ any session saw
    before; FETCHes caused by STORE or sent unsolicited carry MODSEQ (RFC 7162 §3.1, §3.1.3);
    with QRESYNC they also carry UID (§3.2.4 as issue #10 reads it) and expunges come as
    VANISHED, never EXPUNGE (§3.2.10);
  - UIDNEXT at SELECT is above every UID any session has seen.
Not checked on purpose: that an EXPUNGE reports, before its tagged OK, messages another session
removed a moment earlier (only what the command itself removed must be; which is which cannot
be told from outside).
"""

import argparse
import collections
import os
import random
import re
import select
import smtplib
import socket
import ssl
import sys
import threading
import time
import traceback

from stress_pop3 import Pop3Session
from stress_world import IO_TIMEOUT, TOKEN, Closed, Violation, World

MAILBOX = "INBOX"
OTHER = "StressOther"
LITERAL_AT_END = re.compile(rb"~?\{(\d+)\+?\}\r\n$")


# --- response reading and parsing


class Conn:
    def __init__(self, args):
        raw = socket.create_connection((args.host, args.port), timeout=IO_TIMEOUT)
        self.sock = raw
        self.buf = bytearray()
        self.ctx = None
        if args.tls != "none":
            ctx = ssl.create_default_context(cafile=args.cafile)
            if args.insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self.ctx = ctx
        if args.tls == "implicit":
            self.sock = self.ctx.wrap_socket(raw, server_hostname=args.tls_name)
        greeting = self.response()
        if not greeting.startswith(b"* OK"):
            raise Closed(f"greeting: {greeting[:200]!r}")
        if args.tls == "starttls":
            self.sock.sendall(b"s STARTTLS\r\n")
            while not self.response().startswith(b"s "):
                pass
            self.sock = self.ctx.wrap_socket(raw, server_hostname=args.tls_name)

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 16)
        finally:
            self.sock.settimeout(IO_TIMEOUT)
        if not data:
            raise Closed("connection closed by the server")
        self.buf += data

    def _complete(self):
        """Length of the first whole response in the buffer (line plus literals), or 0."""
        pos = 0
        while True:
            end = self.buf.find(b"\n", pos)
            if end < 0:
                return 0
            m = LITERAL_AT_END.search(self.buf, pos, end + 1)
            if not m:
                return end + 1
            pos = end + 1 + int(m.group(1))
            if pos > len(self.buf):
                return 0

    def response(self, timeout=IO_TIMEOUT):
        """One whole response; raises socket.timeout if none completes within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            n = self._complete()
            if n:
                out = bytes(self.buf[:n])
                del self.buf[:n]
                return out
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no response")
            self._fill(left)

    def pending(self, wait):
        """A whole response that is already there (or arrives within `wait`), else None."""
        if self._complete():
            return self.response()
        ready = (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()) or select.select(
            [self.sock], [], [], wait
        )[0]
        if not ready:
            return None
        try:
            return self.response(timeout=max(wait, 0.05))
        except socket.timeout:
            return None


def tokens(data, pos=0):
    """Parses IMAP data into nested lists: atoms as str, strings and literals as bytes, NIL as
    None. Brackets stay inside an atom (BODY[HEADER], BODY[1]<0>)."""
    out = []
    stack = [out]
    n = len(data)
    while pos < n:
        c = data[pos]
        if c in b" \r\n":
            pos += 1
        elif c == 0x28:  # (
            new = []
            stack[-1].append(new)
            stack.append(new)
            pos += 1
        elif c == 0x29:  # )
            if len(stack) > 1:
                stack.pop()
            pos += 1
        elif c == 0x22:  # "
            pos += 1
            s = bytearray()
            while pos < n and data[pos] != 0x22:
                if data[pos] == 0x5C:
                    pos += 1
                s.append(data[pos])
                pos += 1
            stack[-1].append(bytes(s))
            pos += 1
        elif c == 0x7B or (c == 0x7E and pos + 1 < n and data[pos + 1] == 0x7B):  # { ~{
            close = data.index(b"}", pos)
            length = int(data[pos + (2 if c == 0x7E else 1) : close].rstrip(b"+"))
            start = data.index(b"\n", close) + 1
            stack[-1].append(bytes(data[start : start + length]))
            pos = start + length
        else:
            start = pos
            depth = 0
            while pos < n:
                c = data[pos]
                if c == 0x5B:
                    depth += 1
                elif c == 0x5D:
                    depth -= 1
                elif depth == 0 and c in b" ()\r\n":
                    break
                pos += 1
            atom = data[start:pos].decode("latin-1")
            stack[-1].append(None if atom.upper() == "NIL" else atom)
    return out


def seq_set(text):
    if not re.fullmatch(r"[0-9]+(:[0-9]+)?(,[0-9]+(:[0-9]+)?)*", text):
        return []
    out = []
    for part in text.split(","):
        if ":" in part:
            a, b = part.split(":")
            a, b = int(a), int(b)
            out.extend(range(min(a, b), max(a, b) + 1))
        else:
            out.append(int(part))
    return out


def compact(numbers):
    numbers = sorted(set(numbers))
    runs = []
    for x in numbers:
        if runs and runs[-1][1] == x - 1:
            runs[-1][1] = x
        else:
            runs.append([x, x])
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in runs)


def code_of(resp):
    """The response code of a status response: ("COPYUID", "1 2:3 4:5") or (None, "")."""
    m = re.match(rb"\S+ (?:OK|NO|BAD|BYE|PREAUTH) \[([^\]]*)\]", resp, re.I)
    if not m:
        return None, ""
    name, _, rest = m.group(1).decode("latin-1").partition(" ")
    return name.upper(), rest


def short(data, limit=400):
    """One line for the transcript: literals cut to their first octets, so that what follows
    them (the rest of a FETCH) stays visible."""
    out = bytearray()
    pos = 0
    for m in re.finditer(rb"\{(\d+)\+?\}\r\n", data):
        if m.start() < pos:
            continue
        end = m.end() + int(m.group(1))
        literal = data[m.end() : end]
        out += data[pos : m.start()] + b"{%d}" % len(literal) + repr(literal[:40]).encode()
        out += b"..." if len(literal) > 40 else b""
        pos = end
    out += data[pos:]
    text = out.decode("latin-1").rstrip("\r\n")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


# --- one session and its model


class Command:
    def __init__(self, text, name, by_seq=False, uid=False, items=()):
        self.text, self.name, self.by_seq, self.uid, self.items = text, name, by_seq, uid, items
        self.fetched = {}  # uid -> last FLAGS tuple seen during this command
        self.contents = []  # (n, uid, items) of FETCHes, checked once the tagged reply is known
        self.tagged = b""
        self.codes = []  # (name, rest) of every response code seen during the command
        self.kw_store = False  # a STORE of this session's own keyword


class Session:
    def __init__(self, world, args, idx, mode):
        self.world, self.args, self.idx, self.mode = world, args, idx, mode
        self.name = f"session {idx} ({mode})"
        self.rng = random.Random(f"{world.seed}-{idx}")
        self.kw = f"$Stress{idx}"
        self.transcript = collections.deque(maxlen=60)
        self.full_log = None
        if args.log_dir:
            self.full_log = open(os.path.join(args.log_dir, f"session-{idx}.log"), "w")
        self.kwstate = {}  # uid -> has our keyword (only we store it)
        self.gone = set()  # UIDs this session was told are expunged
        self.tags = 0
        self.conn = None

    # -- transport

    def log(self, direction, data):
        line = f"{time.monotonic() - self.world.start:7.3f} {direction} {short(data)}"
        self.transcript.append(line)
        if self.full_log:
            self.full_log.write(line + "\n")

    def connect(self):
        self.conn = Conn(self.args)
        self.map = []
        self.selected = None
        self.readonly = False
        self.condstore = self.mode in ("condstore", "qresync")
        self.qresync = self.mode == "qresync"
        self.modseq = {}
        self.highest = 0
        self.uidnext_floor = 0
        self.modseq_floor = 0
        self.uidvalidity = 0
        self.selecting = False
        self.caps = ""
        self.run(f'LOGIN "{self.args.user}" "{self.args.password}"', "LOGIN")
        self.caps = self.run("CAPABILITY", "CAPABILITY").caps
        if self.mode in ("condstore", "qresync", "rev2"):
            want = {"condstore": "CONDSTORE", "qresync": "QRESYNC", "rev2": "IMAP4rev2"}[self.mode]
            self.run(f"ENABLE {want}", "ENABLE")

    def violation(self, kind, detail, soft=False):
        """Stops this session at a broken rule; with --keep-going, a `soft` one (after which the
        model still matches the server's view) is only counted, so that later rules get checked."""
        v = Violation(kind, detail)
        if not (soft and self.args.keep_going):
            raise v
        if self.full_log:
            self.full_log.write(f"VIOLATION {v}\n")
        with self.world.lock:
            self.world.violations.append((time.monotonic() - self.world.start, self.name, v, list(self.transcript)))

    def run(self, text, name, by_seq=False, uid=False, items=(), literal=None, kw_store=False):
        """Sends one command, checks every response up to its tagged reply; returns Command."""
        self.between_commands()
        if name == "SELECT":
            # The view is reset at [CLOSED] or at the first response about the new mailbox:
            # what comes before belongs to the old one (RFC 9051 §7.1, RFC 7162 §3.2.11).
            self.selecting = True
        self.tags += 1
        tag = f"{self.idx}.{self.tags}"
        cmd = Command(text, name, by_seq, uid, items)
        cmd.kw_store = kw_store
        cmd.caps = ""
        line = f"{tag} {text}".encode()
        if literal is not None:
            plus = "LITERAL+" in self.caps.upper()
            line += b" {%d%s}\r\n" % (len(literal), b"+" if plus else b"")
            self.log("C:", line)
            self.conn.send(line)
            if not plus:
                self.await_continuation(cmd)
            self.conn.send(literal + b"\r\n")
        else:
            self.log("C:", line)
            self.conn.send(line + b"\r\n")
        if name == "IDLE":
            self.await_continuation(cmd)
            until = time.monotonic() + self.rng.uniform(0.05, 0.8)
            while (left := until - time.monotonic()) > 0:
                try:
                    resp = self.conn.response(timeout=left)
                except socket.timeout:
                    break
                self.handle(resp, cmd, tag)
            self.log("C:", b"DONE")
            self.conn.send(b"DONE\r\n")
        while True:
            try:
                resp = self.conn.response()
            except socket.timeout:
                self.violation("timeout", f"no tagged reply to {text!r} within {IO_TIMEOUT} s")
            if self.handle(resp, cmd, tag):
                return cmd

    def await_continuation(self, cmd):
        while True:
            resp = self.conn.response()
            if resp.startswith(b"+"):
                self.log("S:", resp)
                return
            if self.handle(resp, cmd, None):
                self.violation("refused", f"{cmd.text!r}: {short(resp)}")

    def between_commands(self):
        """Whatever arrives while no command is in progress: EXPUNGE and VANISHED must not."""
        if self.conn is None:
            return
        wait = self.rng.choice((0, 0, 0.002, 0.01))
        while (resp := self.conn.pending(wait)) is not None:
            wait = 0
            self.log("S:", resp)
            words = resp.split(None, 3)
            if len(words) >= 3 and words[0] == b"*" and words[2].upper() == b"EXPUNGE" or (
                len(words) >= 2 and words[1].upper() == b"VANISHED"
            ):
                self.violation(
                    "expunge-after-tagged-reply",
                    f"{short(resp)!r} arrived while no command was in progress, after the "
                    "tagged reply of the command that should have reported it",
                    soft=True,
                )
            between = Command("", "(between commands)")
            between.tagged = None
            self.untagged(resp, between)

    # -- responses

    def handle(self, resp, cmd, tag):
        """Checks one response; True when it is the tagged reply of `cmd`."""
        self.log("S:", resp)
        if tag is not None and resp.startswith(tag.encode() + b" "):
            cmd.tagged = resp
            status = resp.split(None, 2)[1].upper() if len(resp.split()) > 1 else b""
            code = code_of(resp)
            if code[0]:
                cmd.codes.append(code)
            if status == b"BAD":
                self.violation("tagged-bad", f"{cmd.text!r} -> {short(resp)}")
            self.finish(cmd, status)
            return True
        if resp.startswith(b"+"):
            self.violation("unexpected-continuation", short(resp))
        self.untagged(resp, cmd)
        return False

    def untagged(self, resp, cmd):
        words = resp.split(None, 3)
        if len(words) < 2 or words[0] != b"*":
            self.violation("garbage", f"not a response: {short(resp)!r}")
        first = words[1].upper()
        if self.selecting and (
            first == b"FLAGS"
            or (len(words) > 2 and words[2].upper() in (b"EXISTS", b"RECENT"))
            or code_of(resp)[0] in ("CLOSED", "UIDVALIDITY", "UIDNEXT", "PERMANENTFLAGS", "HIGHESTMODSEQ", "UNSEEN")
        ):
            self.selecting = False
            self.map = []
        if first in (b"OK", b"NO", b"BAD", b"BYE", b"PREAUTH"):
            if first == b"BYE":
                self.violation("bye", short(resp))
            name, rest = code_of(resp)
            if name:
                cmd.codes.append((name, rest))
                self.status_code(name, rest)
            return
        if first == b"CAPABILITY":
            cmd.caps = resp.decode("latin-1")
            return
        if first == b"VANISHED":
            self.vanished(resp, cmd)
            return
        if first == b"SEARCH":
            numbers = [int(x) for x in resp.split()[2:] if x.isdigit()]
            if cmd.by_seq:
                for n in numbers:
                    if n > len(self.map):
                        self.violation("search-out-of-range", f"SEARCH returned {n}, EXISTS is {len(self.map)}")
            return
        if first == b"ESEARCH":
            m = re.search(rb" ALL ([0-9:,]+)", resp)
            if m and cmd.by_seq:
                for n in seq_set(m.group(1).decode()):
                    if n > len(self.map):
                        self.violation("search-out-of-range", f"ESEARCH returned {n}, EXISTS is {len(self.map)}")
            return
        if not first.isdigit() or len(words) < 3:
            return  # FLAGS, LIST, ENABLED, STATUS, ID, NAMESPACE...
        n = int(first)
        what = words[2].upper()
        if what == b"EXISTS":
            if n < len(self.map):
                self.violation("exists-decreased", f"EXISTS {n} but this session knows {len(self.map)} messages and saw no expunge")
            self.map.extend([None] * (n - len(self.map)))
        elif what == b"RECENT":
            pass
        elif what == b"EXPUNGE":
            self.world.checks["EXPUNGE responses"] += 1
            if self.qresync:
                self.violation("expunge-with-qresync", f"{short(resp)!r}: QRESYNC is enabled, expunges must come as VANISHED (RFC 7162 §3.2.10)", soft=True)
            if cmd.by_seq:
                self.violation("expunge-during-seq-command", f"{short(resp)!r} during {cmd.text!r} (RFC 9051 §7.5.1 forbids it during FETCH, STORE, SEARCH by sequence number)", soft=True)
            if not 1 <= n <= len(self.map):
                self.violation("expunge-out-of-range", f"EXPUNGE {n} but this session knows {len(self.map)} messages")
            uid = self.map.pop(n - 1)
            if uid is not None:
                self.gone.add(uid)
        elif what == b"FETCH":
            parsed = tokens(resp, resp.index(b"FETCH") + 5)
            if not parsed or not isinstance(parsed[0], list):
                self.violation("garbage", f"FETCH without a list: {short(resp)!r}")
            flat = parsed[0]
            items = {}
            for i in range(0, len(flat) - 1, 2):
                items[str(flat[i]).upper()] = flat[i + 1]
            self.fetch(n, items, cmd)

    def status_code(self, name, rest):
        if name == "HIGHESTMODSEQ":
            value = int(rest.split()[0])
            if value < self.highest:
                self.violation("highestmodseq-backwards", f"HIGHESTMODSEQ {value} after {self.highest}")
            if value < self.modseq_floor:
                self.violation("highestmodseq-backwards", f"HIGHESTMODSEQ {value}, but MODSEQ {self.modseq_floor} was seen before SELECT was sent")
            self.highest = value
            self.world.saw_modseq(value)
        elif name == "UIDNEXT":
            value = int(rest.split()[0])
            if value <= self.uidnext_floor:
                self.violation("uidnext-too-low", f"UIDNEXT {value}, but UID {self.uidnext_floor} was seen before SELECT was sent")
        elif name == "UIDVALIDITY":
            self.uidvalidity = int(rest.split()[0])
        elif name == "NOMODSEQ":
            self.violation("nomodseq", "the mailbox has no MODSEQs although CONDSTORE is advertised")

    def vanished(self, resp, cmd):
        self.world.checks["VANISHED responses"] += 1
        m = re.match(rb"\* VANISHED (\(EARLIER\) )?([0-9:,]+)", resp, re.I)
        if not m:
            self.violation("garbage", short(resp))
        uids = seq_set(m.group(2).decode())
        if m.group(1):
            self.gone.update(uids)
            return
        if not self.qresync:
            self.violation("vanished-without-qresync", short(resp))
        if cmd.by_seq:
            self.violation("expunge-during-seq-command", f"{short(resp)!r} during {cmd.text!r} (RFC 9051 §7.5.1)", soft=True)
        for uid in uids:
            self.gone.add(uid)
            if uid in self.map:
                self.map.remove(uid)
                continue
            # Not a UID this session has seen: it may be one of the slots it only knows from
            # EXISTS. All unknown slots between the same two known neighbours are alike.
            slots = [i for i, u in enumerate(self.map) if u is None and self.bounds(i)[0] < uid < self.bounds(i)[1]]
            if slots:
                del self.map[slots[-1]]

    def bounds(self, i):
        low = next((u for u in reversed(self.map[:i]) if u is not None), 0)
        high = next((u for u in self.map[i + 1 :] if u is not None), 1 << 40)
        return low, high

    def fetch(self, n, items, cmd):
        self.world.checks["FETCH responses"] += 1
        if not 1 <= n <= len(self.map):
            self.violation("fetch-seq-out-of-range", f"FETCH {n} but this session knows {len(self.map)} messages")
        known = self.map[n - 1]
        uid = items.get("UID")
        if uid is not None:
            uid = int(uid)
            if known is not None and known != uid:
                self.violation("fetch-uid-mismatch", f"* {n} FETCH says UID {uid}, but this session knows message {n} as UID {known}")
            if known is None:
                low, high = self.bounds(n - 1)
                if not low < uid < high:
                    self.violation("uid-order", f"* {n} FETCH (UID {uid}) lies outside UIDs {low}..{high} of its neighbours")
                self.map[n - 1] = uid
            self.world.saw_uid(uid)
        else:
            uid = known
        if uid is not None and uid in self.gone:
            self.violation("expunged-uid-returned", f"* {n} FETCH for UID {uid}, which this session was told is expunged")
        solicited = cmd.name == "FETCH"
        reports_flags = "FLAGS" in items or "MODSEQ" in items
        if reports_flags and not solicited:
            if self.qresync and "UID" not in items:
                self.violation("qresync-fetch-without-uid", f"* {n} FETCH during {cmd.name} without UID (QRESYNC is enabled)", soft=True)
            if self.condstore and "MODSEQ" not in items:
                self.violation("condstore-fetch-without-modseq", f"* {n} FETCH during {cmd.name} without MODSEQ (CONDSTORE is enabled)", soft=True)
        if cmd.uid and solicited and uid is not None and "UID" not in items:
            if any(k in items for k in cmd.items if k not in ("FLAGS", "UID", "MODSEQ")):
                self.violation("uid-fetch-without-uid", f"* {n} FETCH answering {cmd.text!r} without UID (RFC 3501 §6.4.8)", soft=True)
        if "MODSEQ" in items and uid is not None:
            value = int(items["MODSEQ"][0])
            if value < self.modseq.get(uid, 0):
                self.violation("modseq-backwards", f"UID {uid} MODSEQ {value} after {self.modseq[uid]}")
            self.modseq[uid] = value
            self.world.saw_modseq(value)
        if "FLAGS" in items and uid is not None:
            flags = tuple(str(f).lower() for f in (items["FLAGS"] or []))
            has = self.kw.lower() in flags
            if cmd.name == "STORE" and cmd.kw_store:
                cmd.fetched[uid] = has
            elif uid not in self.kwstate:
                self.kwstate[uid] = has
            else:
                self.world.checks["own keyword states"] += 1
                if self.kwstate[uid] != has:
                    self.violation(
                        "own-flag-changed",
                        f"UID {uid} FLAGS {flags}: {self.kw} is {'set' if has else 'not set'}, but "
                        f"only this session stores it and it left it {'set' if self.kwstate[uid] else 'not set'}",
                    )
        if cmd.tagged is None:
            self.content(uid, items, cmd)
        else:
            cmd.contents.append((n, uid, items))

    @staticmethod
    def placeholder(items):
        """Whether a FETCH looks like what a server sends for a message that is gone (NIL data,
        size 0, an all-NIL envelope): allowed with NO or OK [EXPUNGEISSUED] only (RFC 5530)."""
        if any(items.get(k, 1) is None for k in ("ENVELOPE", "BODYSTRUCTURE", "BODY[]", "BODY[HEADER]", "BODY[1]")):
            return True
        if str(items.get("RFC822.SIZE")) == "0":
            return True
        env = items.get("ENVELOPE")
        if isinstance(env, list) and all(x is None for x in env):
            return True
        bs = items.get("BODYSTRUCTURE")
        first = bs[0] if bs and isinstance(bs[0], list) else bs
        return isinstance(first, list) and len(first) > 6 and str(first[6]) == "0"

    def content(self, uid, items, cmd):
        w = self.world
        token = None
        for key in ("ENVELOPE", "BODYSTRUCTURE", "BODY[]", "BODY[HEADER]", "BODY[1]", "RFC822.SIZE"):
            if key in items and items[key] is None:
                self.violation("nil-data-with-ok", f"UID {uid} {key} NIL, and the tagged reply is {short(cmd.tagged or b'(none)')!r} without [EXPUNGEISSUED]")
        env = items.get("ENVELOPE")
        if env is not None:
            if not isinstance(env, list) or len(env) != 10:
                self.violation("bad-envelope", repr(env)[:300])
            if all(x is None for x in env):
                self.violation("invented-data", f"UID {uid} ENVELOPE is all NIL")
            if isinstance(env[9], bytes) and TOKEN.search(env[9]):
                token = TOKEN.search(env[9]).group().decode()
                msg = w.messages.get(token)
                if msg and env[1] != msg.subject.encode():
                    self.violation("wrong-content", f"UID {uid} ENVELOPE subject {env[1]!r}, its Message-ID says {msg.subject!r}")
        header = items.get("BODY[HEADER]")
        if header is not None:
            if not header.endswith(b"\r\n\r\n") or not header.strip():
                self.violation("invented-data", f"UID {uid} BODY[HEADER] is {header[:200]!r}")
            token = self.same_token(uid, token, header, "BODY[HEADER]")
        full = items.get("BODY[]")
        if full is not None:
            if not full.strip():
                self.violation("invented-data", f"UID {uid} BODY[] is {len(full)} octets of white space")
            token = self.same_token(uid, token, full, "BODY[]")
            msg = w.messages.get(token) if token else None
            if msg and not full.endswith(msg.body):
                self.violation("wrong-content", f"UID {uid} BODY[] ({len(full)} octets) does not end with the body of {token} ({len(msg.body)} octets): ...{full[-120:]!r}")
        part = items.get("BODY[1]")
        if part is not None:
            token = self.same_token(uid, token, part, "BODY[1]")
            msg = w.messages.get(token) if token else None
            if msg and part != msg.part1:
                self.violation("wrong-content", f"UID {uid} BODY[1] is {part[:200]!r}, {token}'s first part is {msg.part1[:200]!r}")
            if token is None and not part.strip():
                self.violation("invented-data", f"UID {uid} BODY[1] is {part[:100]!r}")
        bs = items.get("BODYSTRUCTURE")
        if bs is not None:
            first = bs[0] if bs and isinstance(bs[0], list) else bs
            if len(first) > 6 and str(first[6]).isdigit() and int(first[6]) == 0:
                self.violation("invented-data", f"UID {uid} BODYSTRUCTURE has an empty first part: {repr(bs)[:300]}")
        if uid is None:
            return
        if token is not None:
            w.checks["message contents"] += 1
            w.record(uid, "token", token, str)
        token = token or w.uids.get(uid, {}).get("token")
        msg = w.messages.get(token) if token else None
        if bs is not None:
            if msg:
                first = bs[0] if msg.multipart else bs
                if not isinstance(first, list) or len(first) < 7 or str(first[6]) != str(len(msg.part1)):
                    self.violation("wrong-content", f"UID {uid} BODYSTRUCTURE {repr(bs)[:300]} does not describe {token} (first part {len(msg.part1)} octets, multipart {msg.multipart})")
            w.record(uid, "BODYSTRUCTURE", repr(bs), lambda v: v[:300])
        if env is not None:
            w.record(uid, "ENVELOPE", repr(env), lambda v: v[:300])
        if header is not None:
            w.record(uid, "BODY[HEADER]", header, lambda v: repr(v[:300]))
        size = items.get("RFC822.SIZE")
        if size is not None:
            w.record(uid, "size", int(size), str)
        if full is not None:
            w.record(uid, "size", len(full), str)
            w.record(uid, "BODY[]", full, lambda v: f"{len(v)} octets {v[:100]!r}")
        if part is not None:
            w.record(uid, "BODY[1]", part, lambda v: repr(v[:200]))

    def same_token(self, uid, token, data, key):
        m = TOKEN.search(data)
        found = m.group().decode() if m else None
        if token and found and found != token:
            self.violation("wrong-content", f"UID {uid} {key} is {found}'s, the same FETCH said {token}")
        return found or token

    def finish(self, cmd, status):
        """Checks that need the tagged reply: FETCH data of messages that may be gone."""
        expunge_issued = status == b"NO" or "EXPUNGEISSUED" in {c[0] for c in cmd.codes}
        for n, uid, items in cmd.contents:
            if expunge_issued and self.placeholder(items):
                continue
            self.content(uid, items, cmd)

    # -- the model's view

    def known_uids(self):
        return [u for u in self.map if u is not None]

    def pick_seqs(self):
        n = len(self.map)
        a = self.rng.randrange(1, n + 1)
        kind = self.rng.random()
        if kind < 0.4:
            return [a]
        if kind < 0.8:
            b = min(n, a + self.rng.randrange(0, 6))
            return list(range(a, b + 1))
        return sorted(set(self.rng.randrange(1, n + 1) for _ in range(3)))

    def pick_uids(self):
        uids = self.known_uids()
        if not uids:
            return []
        if self.rng.random() < 0.5:
            return [self.rng.choice(uids)]
        a = self.rng.randrange(len(uids))
        return uids[a : a + self.rng.randrange(1, 6)]

    # -- operations

    def select(self):
        self.readonly = self.mode != "qresync" and self.rng.random() < 0.15
        verb = "EXAMINE" if self.readonly else "SELECT"
        self.uidnext_floor = self.world.max_uid
        self.modseq_floor = self.world.max_modseq
        extra = ""
        if self.mode == "rev1" and self.rng.random() < 0.3:
            extra = " (CONDSTORE)"
            self.condstore = True
        elif self.qresync and self.uidvalidity and self.highest and self.rng.random() < 0.5:
            # Quick resynchronisation (RFC 7162 §3.2.5): VANISHED (EARLIER) and FETCHes of what
            # changed since, all within the SELECT; the rebuilt view is checked like any other.
            extra = f" (QRESYNC ({self.uidvalidity} {max(1, self.highest - self.rng.randrange(0, 20))}))"
        cmd = self.run(f"{verb} {MAILBOX}{extra}", "SELECT")
        if self.selecting:
            self.selecting = False
            self.map = []
        if not cmd.tagged.split()[1].upper() == b"OK":
            self.violation("select-failed", short(cmd.tagged))
        self.uidnext_floor = self.modseq_floor = 0
        self.selected = MAILBOX
        self.run("UID FETCH 1:* (UID FLAGS)", "FETCH", uid=True, items=("UID", "FLAGS"))

    def op_fetch(self, by_uid):
        items = ["UID"] if by_uid or self.rng.random() < 0.7 else []
        choices = ["FLAGS", "ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE", "BODY.PEEK[]", "BODY.PEEK[HEADER]", "BODY.PEEK[1]", "INTERNALDATE"]
        items += self.rng.sample(choices, self.rng.randrange(1, 4))
        # Asking for MODSEQ turns CONDSTORE on in a session that had not (RFC 7162 §3.1).
        if self.condstore or self.rng.random() < 0.03:
            items.append("MODSEQ")
        keys = tuple(i.replace(".PEEK", "") for i in items)
        if by_uid:
            uids = self.pick_uids()
            if not uids:
                return
            what = compact(uids) if self.rng.random() < 0.9 else f"{uids[0]}:*"
            self.run(f"UID FETCH {what} ({' '.join(items)})", "FETCH", uid=True, items=keys)
        else:
            self.run(f"FETCH {compact(self.pick_seqs())} ({' '.join(items)})", "FETCH", by_seq=True, items=keys)
        if "MODSEQ" in items:
            self.condstore = True

    def op_store(self, by_uid):
        flag = self.rng.choice([self.kw, self.kw, "\\Flagged", "\\Seen"])
        sign = self.rng.choice("+-")
        silent = ".SILENT" if self.rng.random() < 0.3 else ""
        unchanged = ""
        if self.condstore and self.rng.random() < 0.3:
            base = self.highest or max(self.modseq.values(), default=1)
            unchanged = f" (UNCHANGEDSINCE {max(1, base - self.rng.randrange(0, 3))})"
        if by_uid:
            targets = self.pick_uids()
            if not targets:
                return
            what = compact(targets)
        else:
            seqs = self.pick_seqs()
            what = compact(seqs)
            placed = set(self.known_uids())
        verb = "UID STORE" if by_uid else "STORE"
        cmd = self.run(f"{verb} {what}{unchanged} {sign}FLAGS{silent} ({flag})", "STORE", by_seq=not by_uid, uid=by_uid, kw_store=flag == self.kw)
        if not by_uid:
            # No expunge may come during a STORE by sequence number, so the numbers still name
            # the same messages; the STORE's own FETCHes may have told some of their UIDs.
            # (With --keep-going an expunge may have come anyway: only what is still there.)
            targets = [self.map[s - 1] for s in seqs if s <= len(self.map) and self.map[s - 1] is not None]
        status = cmd.tagged.split()[1].upper()
        modified = set()
        for name, rest in cmd.codes:
            if name == "MODIFIED":
                numbers = seq_set(rest.split()[0])
                modified = set(numbers) if by_uid else {self.map[s - 1] for s in numbers if s <= len(self.map)}
        if flag != self.kw:
            return
        if not by_uid and len(targets) < len(seqs):
            # Some of those messages are known only by sequence number: any UID this session
            # had not placed in its map may be one of them.
            for uid in [u for u in self.kwstate if u not in placed]:
                del self.kwstate[uid]
        for uid in targets:
            if uid in self.gone:
                continue
            if status != b"OK" or uid in modified or "EXPUNGEISSUED" in {c[0] for c in cmd.codes}:
                # Not stored (or not known to be): what the next FETCH shows is the truth.
                if uid in cmd.fetched:
                    self.kwstate[uid] = cmd.fetched[uid]
                else:
                    self.kwstate.pop(uid, None)
                continue
            want = sign == "+"
            self.world.checks["own STOREs"] += 1
            if not silent and uid in cmd.fetched and cmd.fetched[uid] != want:
                self.violation("store-result-wrong", f"{cmd.text!r}: the FETCH for UID {uid} shows {self.kw} {'set' if cmd.fetched[uid] else 'not set'}")
            self.kwstate[uid] = want

    def op_expunge(self):
        uids = self.pick_uids()[:3]
        if not uids:
            return
        self.run(f"UID STORE {compact(uids)} +FLAGS.SILENT (\\Deleted)", "STORE", uid=True)
        # Whether these were removed by this EXPUNGE or, a moment before, by another session's
        # cannot be told, and only the former must be reported before the tagged reply: no
        # check here beyond the general ones. MOVE says which it moved (COPYUID): see op_copy.
        if self.rng.random() < 0.5 and "UIDPLUS" in self.caps.upper():
            self.run(f"UID EXPUNGE {compact(uids)}", "EXPUNGE", uid=True)
        else:
            self.run("EXPUNGE", "EXPUNGE")

    def moved(self, cmd, uids):
        """RFC 6851 §3.3: the messages a MOVE moved are expunged before its tagged OK."""
        if cmd.tagged.split()[1].upper() != b"OK":
            return
        self.world.checks["own moves"] += 1
        left = [u for u in uids if u in self.map]
        if left:
            self.violation("own-move-not-expunged", f"{cmd.text!r} answered OK and moved UIDs {left}, but they are still in this session's view: their EXPUNGE/VANISHED did not come before the tagged reply", soft=True)

    def op_copy(self, move):
        by_uid = self.rng.random() < 0.5
        target = OTHER if move or self.rng.random() < 0.5 else MAILBOX
        verb = "MOVE" if move else "COPY"
        if by_uid:
            uids = self.pick_uids()[:3]
            if not uids:
                return
            cmd = self.run(f"UID {verb} {compact(uids)} {target}", verb, uid=True)
        else:
            seqs = self.pick_seqs()[:3]
            uids = [self.map[s - 1] for s in seqs if self.map[s - 1] is not None]
            cmd = self.run(f"{verb} {compact(seqs)} {target}", verb)
        for name, rest in cmd.codes:
            if name != "COPYUID":
                continue
            parts = rest.split()
            if len(parts) != 3 or len(seq_set(parts[1])) != len(seq_set(parts[2])):
                self.violation("bad-copyuid", f"[COPYUID {rest}] is not 'uidvalidity source-uids dest-uids' (RFC 4315 §3)", soft=True)
                continue
            sources = seq_set(parts[1])
            if move:
                self.moved(cmd, [u for u in sources if u in uids])
            if target == MAILBOX:
                for s, d in zip(sources, seq_set(parts[2])):
                    token = self.world.uids.get(s, {}).get("token")
                    if token:
                        self.world.record(d, "token", token, str)
                    self.world.saw_uid(d)

    def op_append(self):
        msg = self.world.new_message(self.rng)
        flags = self.rng.choice(["", "(\\Seen) ", f"({self.kw}) "])
        cmd = self.run(f"APPEND {MAILBOX} {flags}".rstrip(), "APPEND", literal=msg.bytes)
        for name, rest in cmd.codes:
            if name == "APPENDUID":
                uid = int(rest.split()[1])
                self.world.record(uid, "token", msg.token, str)
                self.kwstate[uid] = self.kw in flags
                self.world.saw_uid(uid)

    def op_search(self):
        key = self.rng.choice(["ALL", "FLAGGED", "UNSEEN", f"KEYWORD {self.kw}", "DELETED"])
        if self.rng.random() < 0.5:
            self.run(f"UID SEARCH {key}", "SEARCH", uid=True)
        else:
            self.run(f"SEARCH {key}", "SEARCH", by_seq=True)

    def step(self):
        self.between_commands()
        if self.selected is None:
            self.select()
            return
        count = len(self.map)
        ops = [("fetch_seq", 18), ("fetch_uid", 18), ("store_seq", 8), ("store_uid", 10),
               ("expunge", 4 if count > 40 else 2), ("copy", 3), ("move", 2 if count > 20 else 1),
               ("append", 5 if count < 15 else 1), ("noop", 8), ("idle", 3), ("search", 4),
               ("reselect", 1), ("resync", 1)]
        if self.readonly:
            ops = [o for o in ops if o[0] not in ("store_seq", "store_uid", "expunge", "move")]
        if count == 0:
            ops = [o for o in ops if o[0] in ("append", "noop", "idle", "reselect")]
        op = self.rng.choices([o[0] for o in ops], [o[1] for o in ops])[0]
        self.world.ops[op] += 1
        if op == "fetch_seq":
            self.op_fetch(False)
        elif op == "fetch_uid":
            self.op_fetch(True)
        elif op == "store_seq":
            self.op_store(False)
        elif op == "store_uid":
            self.op_store(True)
        elif op == "expunge":
            self.op_expunge()
        elif op in ("copy", "move"):
            self.op_copy(op == "move")
        elif op == "append":
            self.op_append()
        elif op == "noop":
            self.run(self.rng.choice(["NOOP", "NOOP", "CHECK"]), "NOOP")
        elif op == "idle":
            self.run("IDLE", "IDLE")
        elif op == "search":
            self.op_search()
        elif op == "reselect":
            self.select()
        elif op == "resync":
            self.run("UID FETCH 1:* (UID FLAGS)", "FETCH", uid=True, items=("UID", "FLAGS"))

    def main(self):
        w = self.world
        while not w.stop.is_set() and time.monotonic() < w.deadline:
            try:
                if self.conn is None:
                    self.connect()
                self.step()
            except Exception as e:  # noqa: BLE001 - anything unexpected must fail the run, too
                if isinstance(e, (Closed, OSError)):
                    e = Violation("connection", f"{type(e).__name__}: {e}")
                elif not isinstance(e, Violation):
                    e = Violation("script-error", traceback.format_exc())
                if self.full_log:
                    self.full_log.write(f"VIOLATION {e}\n")
                with w.lock:
                    w.violations.append((time.monotonic() - w.start, self.name, e, list(self.transcript)))
                if not self.args.keep_going:
                    w.stop.set()
                    return
                self.transcript.clear()
                self.kwstate.clear()
                self.gone.clear()
                try:
                    self.conn.sock.close()
                except Exception:
                    pass
                self.conn = None
        if self.conn is not None:
            try:
                self.conn.send(b"z LOGOUT\r\n")
                self.conn.sock.close()
            except OSError:
                pass


def deliverer(world, args):
    """SMTP deliveries into the mailbox (or APPENDs from a separate connection without SMTP)."""
    rng = random.Random(f"{world.seed}-smtp")
    appender = None
    while not world.stop.is_set() and time.monotonic() < world.deadline:
        try:
            if args.smtp_port:
                msg = world.new_message(rng)
                with smtplib.SMTP(args.host, args.smtp_port, timeout=IO_TIMEOUT) as s:
                    s.sendmail("stress@example.org", [args.user], msg.bytes)
                world.ops["smtp"] += 1
            else:
                if appender is None:
                    appender = Session(world, args, 0, "rev1")
                    appender.name = "deliveries (APPEND)"
                    appender.connect()
                appender.op_append()
                world.ops["append (deliveries)"] += 1
        except (Violation, Closed, OSError, smtplib.SMTPException) as e:
            if not isinstance(e, Violation):
                e = Violation("delivery", f"{type(e).__name__}: {e}")
            with world.lock:
                world.violations.append((time.monotonic() - world.start, "deliveries", e, []))
            world.stop.set()
            return
        world.stop.wait(rng.uniform(0.1, 0.6))


def setup(world, args):
    """Empties INBOX and creates the other mailbox, then puts a first few messages in."""
    s = Session(world, args, 0, "rev1")
    s.name = "setup"
    s.connect()
    s.run(f"CREATE {OTHER}", "CREATE")
    s.run(f"SELECT {MAILBOX}", "SELECT")
    if s.map:
        s.run("STORE 1:* +FLAGS.SILENT (\\Deleted)", "STORE")
        s.run("EXPUNGE", "EXPUNGE")
    for _ in range(12):
        s.op_append()
    s.conn.send(b"z LOGOUT\r\n")
    s.conn.sock.close()


def main():
    env = os.environ
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(env.get("IMAPS_PORT", "993")))
    p.add_argument("--tls", choices=("implicit", "starttls", "none"), default="implicit")
    p.add_argument("--tls-name", default="localhost")
    p.add_argument("--cafile", default=env.get("CERT"))
    p.add_argument("--insecure", action="store_true", help="do not verify the certificate")
    p.add_argument("--user", default="alice@home.test")
    p.add_argument("--password", default=env.get("PASSWORD"))
    p.add_argument("--smtp-port", type=int, default=int(env.get("SMTP_PORT", "0")), help="0: deliveries by APPEND from another connection")
    p.add_argument("--pop3-port", type=int, default=int(env.get("POP3S_PORT", "0")), help="POP3 over implicit TLS beside the IMAP sessions (tests/stress_pop3.py); 0: none")
    p.add_argument("--pop3-sessions", type=int, default=int(env.get("IMAP_STRESS_POP3_SESSIONS", "1")), help="POP3 sessions one after another, each in its own thread")
    p.add_argument("--seconds", type=float, default=float(env.get("IMAP_STRESS_SECONDS", "40")))
    p.add_argument("--seed", type=int, default=int(env["IMAP_STRESS_SEED"]) if env.get("IMAP_STRESS_SEED") else None)
    p.add_argument("--sessions", type=int, default=int(env.get("IMAP_STRESS_SESSIONS", "5")))
    p.add_argument("--log-dir", default=env.get("IMAP_STRESS_LOG_DIR"), help="write every session's whole transcript there")
    p.add_argument("--keep-going", action="store_true", default=env.get("IMAP_STRESS_KEEP_GOING") == "1")
    args = p.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1 << 31)
    print(f"imap_stress: seed {args.seed} (IMAP_STRESS_SEED={args.seed} repeats the choices), "
          f"{args.seconds:g} s, {args.sessions} sessions"
          + (f", {args.pop3_sessions} POP3" if args.pop3_port else ""), flush=True)
    world = World(args.seed, args.user)
    world.deadline = time.monotonic() + 3600
    setup(world, args)
    world.deadline = time.monotonic() + args.seconds
    modes = ["rev1", "condstore", "qresync", "rev2", "qresync", "rev1", "condstore"]
    sessions = [Session(world, args, i + 1, modes[i % len(modes)]) for i in range(args.sessions)]
    threads = [threading.Thread(target=s.main, daemon=True) for s in sessions]
    threads.append(threading.Thread(target=deliverer, args=(world, args), daemon=True))
    if args.pop3_port:
        pop3 = [Pop3Session(world, args, i + 1) for i in range(args.pop3_sessions)]
        threads += [threading.Thread(target=s.main, daemon=True) for s in pop3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - world.start
    print(f"imap_stress: {sum(world.ops.values())} operations in {elapsed:.1f} s: "
          + ", ".join(f"{k} {v}" for k, v in sorted(world.ops.items())), flush=True)
    print("imap_stress: checked " + ", ".join(f"{v} {k}" for k, v in sorted(world.checks.items())), flush=True)
    vacuous = sum(world.ops.values()) < 100 or world.checks["message contents"] == 0
    if args.pop3_port and args.pop3_sessions:
        vacuous = vacuous or world.checks["pop3 message contents"] == 0 or world.checks["pop3 deletes"] == 0
    if not world.violations and vacuous:
        print("imap_stress: FAILED: too little load to show anything; is the server working?", flush=True)
        return 1
    if not world.violations:
        print("imap_stress: no violation", flush=True)
        return 0
    kinds = collections.OrderedDict()
    for at, who, v, _ in sorted(world.violations, key=lambda x: x[0]):
        kinds.setdefault(v.kind, [0, at])[0] += 1
    print(f"imap_stress: {len(world.violations)} violation(s), seed {args.seed}:")
    for kind, (count, at) in kinds.items():
        print(f"  {kind}: {count} (first after {at:.2f} s)")
    at, who, v, transcript = min(world.violations, key=lambda x: x[0])
    print(f"FIRST VIOLATION after {at:.2f} s in {who}: {v}")
    print("transcript tail (seconds since start, C: client, S: server):")
    for line in transcript[-40:]:
        print("  " + line)
    if args.keep_going:
        seen = set()
        for at, who, v, transcript in sorted(world.violations, key=lambda x: x[0]):
            if v.kind in seen:
                continue
            seen.add(v.kind)
            print(f"first {v.kind} after {at:.2f} s in {who}: {v.detail}")
            for line in transcript[-8:]:
                print("    " + line)
    sys.stdout.flush()
    return 1


if __name__ == "__main__":
    sys.exit(main())
