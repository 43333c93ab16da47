"""What the stress test's actors share (tests/imap_stress.py, tests/stress_pop3.py): the messages
this run wrote, what each UID turned out to be, and the violations seen."""

import base64
import collections
import re
import threading
import time

IO_TIMEOUT = 30
TOKEN = re.compile(rb"tok-\d+-\d+")


class Violation(Exception):
    def __init__(self, kind, detail):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


class Closed(Exception):
    pass


# --- what every session shares: the messages this run wrote, and what each UID turned out to be


class World:
    def __init__(self, seed, user):
        self.seed, self.user = seed, user
        self.lock = threading.Lock()
        self.counter = 0
        self.messages = {}  # token -> Message
        self.uids = {}  # INBOX UID -> {"token", "size", "BODYSTRUCTURE", "ENVELOPE", ...}
        self.max_uid = 0
        self.max_modseq = 0
        self.stop = threading.Event()
        self.violations = []  # (seconds, session, Violation, transcript tail)
        self.start = time.monotonic()
        self.ops = collections.Counter()
        self.checks = collections.Counter()  # how many of each check ran: proof it is not vacuous
        # POP3 (stress_pop3): the UIDVALIDITY part of every UIDL, and the UIDs a POP3 session
        # deleted (DELE, then QUIT answered +OK): none of them may be listed again.
        self.pop3_uidvalidity = None
        self.pop3_removed = set()

    def new_message(self, rng):
        with self.lock:
            self.counter += 1
            token = f"tok-{self.seed}-{self.counter}"
        msg = Message(token, rng, self.user)
        with self.lock:
            self.messages[token] = msg
        return msg

    def saw_uid(self, uid):
        with self.lock:
            self.max_uid = max(self.max_uid, uid)

    def saw_modseq(self, modseq):
        with self.lock:
            self.max_modseq = max(self.max_modseq, modseq)

    def record(self, uid, key, value, describe):
        """Remembers what UID `uid` showed for `key`; a different value later is a violation."""
        with self.lock:
            known = self.uids.setdefault(uid, {})
            if key not in known:
                known[key] = value
                return
            old = known[key]
        if old != value:
            raise Violation(
                "uid-content-changed",
                f"UID {uid} {key} was {describe(old)}, now {describe(value)}",
            )


class Message:
    def __init__(self, token, rng, user):
        self.token = token
        self.subject = f"stress {token}"
        lines = rng.randrange(1, 30)
        self.part1 = "".join(
            f"{token} line {i} {'x' * rng.randrange(0, 70)}\r\n" for i in range(lines)
        ).encode()
        self.multipart = rng.random() < 0.4
        head = (
            f"From: Stress <stress@example.org>\r\nTo: {user}\r\nSubject: {self.subject}\r\n"
            f"Message-ID: <{token}@stress.test>\r\nDate: Sun, 6 Dec 2026 12:00:00 +0000\r\n"
            "MIME-Version: 1.0\r\n"
        )
        if self.multipart:
            boundary = f"b-{token}"
            blob = base64.encodebytes(rng.randbytes(rng.randrange(10, 3000))).replace(b"\n", b"\r\n")
            head += f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
            self.body = (
                f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n".encode()
                + self.part1
                + f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n".encode()
                + blob
                + f"\r\n--{boundary}--\r\n".encode()
            )
        else:
            head += "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
            self.body = self.part1
        self.bytes = head.encode() + self.body
