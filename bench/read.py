#!/usr/bin/env python3
"""Read throughput over TLS: Letterbox against Dovecot, side by side.

Started by `bash bench/run read`; it can also be run directly as root:
  python3 bench/read.py --letterbox target/release/letterbox --work DIR

The same mail in both servers' INBOX: LARGE_COUNT multipart messages of about 10 MiB (part 1
a 10 MiB base64 attachment, so that `BODY[1]` reads 10 MiB from inside the message; part 2 a
short text) and SMALL_COUNT messages of about 4 KiB.
Letterbox gets them over SMTP; Dovecot's Maildir is written directly (LF line ends, as
Dovecot keeps them). Over IMAPS (one session, INBOX selected) and POP3S, each timed as the
octets the client received per second, best of ROUNDS after one unmeasured round:
  - `FETCH 1:n BODY.PEEK[]` of the large messages, and of the small ones;
  - `FETCH i BODY.PEEK[1]` of each large message (its 10 MiB part);
  - POP3 `RETR i` of each large message.
The client reads with large buffers and skips literals without looking at them, so that it
does not set the pace (it shares the 2 cores with the server, which caps both the same way).

Appends a markdown section to the results file.
"""

import base64
import os
import re
import socket
import ssl
import subprocess
import time

from bench import (
    IO_TIMEOUT,
    PASSWORD,
    SENDER,
    USER,
    BenchError,
    Letterbox,
    arguments,
    check_start,
    free_ports,
    log,
    report_head,
    run_main,
    smtp_burst,
    write_dovecot_conf,
)
from imap_scale import DovecotImap

LARGE_COUNT = 6
LARGE_SIZE = 10 * 1024 * 1024
SMALL_COUNT = 1000
SMALL_SIZE = 4 * 1024
ROUNDS = 3


def large_message(i):
    """A multipart/mixed message: part 1 a ~10 MiB base64 attachment, part 2 a short text."""
    raw = bytes((i * 7 + k) % 251 for k in range(256)) * (LARGE_SIZE * 3 // 4 // 256)
    encoded = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    return (
        f"From: Bench <{SENDER}>\r\nTo: Alice <{USER}>\r\nSubject: large {i}\r\n"
        f"Message-ID: <read.large.{i}@bench.example.org>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
        "--b\r\nContent-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + encoded + b"--b\r\nContent-Type: text/plain\r\n\r\nThe attachment.\r\n--b--\r\n"


def small_message(i):
    line = b"%05d The quick brown fox jumps over the lazy dog, again and again.\r\n" % i
    body = line * (SMALL_SIZE // len(line))
    return (
        f"From: Bench <{SENDER}>\r\nTo: Alice <{USER}>\r\nSubject: small {i}\r\n"
        f"Message-ID: <read.small.{i}@bench.example.org>\r\n\r\n"
    ).encode() + body


class Tls:
    def __init__(self, port, cafile):
        ctx = ssl.create_default_context(cafile=cafile)
        raw = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.buf = bytearray()

    def recv(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise BenchError("connection closed")
        self.buf += data

    def line(self):
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line = bytes(self.buf[: nl + 1])
                del self.buf[: nl + 1]
                return line
            self.recv()

    def skip(self, n):
        """Reads and drops n octets."""
        while len(self.buf) < n:
            n -= len(self.buf)
            self.buf.clear()
            self.recv()
        del self.buf[:n]


class ImapReader(Tls):
    LITERAL = re.compile(rb"\{(\d+)\}\r\n$")

    def __init__(self, port, cafile):
        super().__init__(port, cafile)
        self.tags = 0
        if not self.line().startswith(b"* OK"):
            raise BenchError("IMAP greeting")
        self.command(f'LOGIN "{USER}" "{PASSWORD}"')
        self.command("SELECT INBOX")

    def command(self, text):
        """Runs one command; returns the octets of literals in its response."""
        self.tags += 1
        tag = b"t%d " % self.tags
        self.sock.sendall(tag + text.encode() + b"\r\n")
        octets = 0
        while True:
            line = self.line()
            m = self.LITERAL.search(line)
            if m:
                n = int(m.group(1))
                self.skip(n)
                octets += n
                continue
            if line.startswith(tag):
                if not line[len(tag):].startswith(b"OK"):
                    raise BenchError(f"IMAP {text}: {line!r}")
                return octets


class Pop3Reader(Tls):
    def __init__(self, port, cafile):
        super().__init__(port, cafile)
        for command in (None, f"USER {USER}", f"PASS {PASSWORD}"):
            if command:
                self.sock.sendall(command.encode() + b"\r\n")
            if not self.line().startswith(b"+OK"):
                raise BenchError(f"POP3 {command}")

    def retr(self, i):
        self.sock.sendall(b"RETR %d\r\n" % i)
        if not self.line().startswith(b"+OK"):
            raise BenchError(f"POP3 RETR {i}")
        octets = 0
        while True:
            end = self.buf.find(b"\r\n.\r\n")
            if end >= 0:
                octets += end + 2
                del self.buf[: end + 5]
                return octets
            if self.buf.startswith(b".\r\n"):
                del self.buf[:3]
                return octets
            # Keep the last 4 octets: the terminator may straddle two reads.
            keep = max(0, len(self.buf) - 4)
            octets += keep
            del self.buf[:keep]
            self.recv()


def best(fn):
    """(octets, best seconds) of ROUNDS runs after one unmeasured run."""
    fn()
    times = []
    octets = 0
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        octets = fn()
        times.append(time.perf_counter() - t0)
    return octets, min(times)


def measure(imaps_port, pop3s_port, cafile):
    imap = ImapReader(imaps_port, cafile)
    pop3 = Pop3Reader(pop3s_port, cafile)
    large = range(1, LARGE_COUNT + 1)
    small = (LARGE_COUNT + 1, LARGE_COUNT + SMALL_COUNT)
    r = {
        "fetch_large": best(lambda: imap.command(f"FETCH 1:{LARGE_COUNT} BODY.PEEK[]")),
        "fetch_small": best(lambda: imap.command(f"FETCH {small[0]}:{small[1]} BODY.PEEK[]")),
        "part": best(lambda: sum(imap.command(f"FETCH {i} BODY.PEEK[1]") for i in large)),
        "retr": best(lambda: sum(pop3.retr(i) for i in large)),
    }
    imap.sock.close()
    pop3.sock.close()
    return r


def fill_letterbox(server, large, small):
    smtp_burst(server.smtp_port, large, clients=2)
    smtp_burst(server.smtp_port, small, clients=4)


def fill_dovecot(server, messages, first):
    cur = os.path.join(server.maildir, "cur")
    for i, message in enumerate(messages, first):
        lf = message.replace(b"\r\n", b"\n")
        name = f"{1_700_000_000 + i}.M{i}P{os.getpid()}.bench,S={len(lf)},W={len(message)}:2,"
        with open(os.path.join(cur, name), "wb") as f:
            f.write(lf)
    subprocess.run(["chown", "-R", "nobody:nogroup", server.mail], check=True)


class DovecotRead(DovecotImap):
    """The benchmark's private Dovecot with POP3S beside IMAPS on the same Maildir."""

    def setup(self):
        for d in ("run", "state"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        for d in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.maildir, d), exist_ok=True)
        os.chmod(os.path.dirname(self.dir), 0o755)
        os.chmod(self.dir, 0o755)
        subprocess.run(["chown", "-R", "nobody:nogroup", self.mail], check=True)
        self.imaps_port, self.pop3s_port = free_ports(2)
        self.cafile = write_dovecot_conf(self.dir, self.mail, "imap", (0, self.imaps_port),
                                         "letterbox-bench-read")
        with open(self.conf) as f:
            conf = f.read().replace("protocols = imap", "protocols = imap pop3")
        conf += ("service pop3-login {\n  inet_listener pop3 {\n    port = 0\n  }\n"
                 f"  inet_listener pop3s {{\n    port = {self.pop3s_port}\n    ssl = yes\n  }}\n}}\n")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.start()


def rate(pair):
    octets, seconds = pair
    return octets / seconds / 1024 / 1024


def report(results, commit, loadavg):
    lb, dc = results["Letterbox"], results["Dovecot"]
    lines = report_head(" — read throughput over TLS (`bash bench/run read`)", commit, loadavg)
    lines += [
        f"- Mail: {LARGE_COUNT} multipart messages of {LARGE_SIZE >> 20} MiB (part 1 a base64 "
        f"attachment of nearly all of it) and {SMALL_COUNT} of {SMALL_SIZE >> 10} KiB, the same "
        "in both; Dovecot (private instance, Maildir, defaults) and Letterbox (default config), "
        "IMAPS and POP3S with their self-signed RSA-2048 certificates; one Python client "
        f"session, best of {ROUNDS} after one unmeasured round",
        "",
        "| read | Letterbox | Dovecot | Letterbox / Dovecot |",
        "|---|---|---|---|",
    ]
    for key, label in [
        ("fetch_large", f"IMAP `FETCH 1:{LARGE_COUNT} BODY.PEEK[]` ({LARGE_SIZE >> 20} MiB messages)"),
        ("part", f"IMAP `FETCH i BODY.PEEK[1]` of each {LARGE_SIZE >> 20} MiB message"),
        ("fetch_small", f"IMAP `FETCH 1:* BODY.PEEK[]` over {SMALL_COUNT} × 4 KiB"),
        ("retr", f"POP3 `RETR i` of each {LARGE_SIZE >> 20} MiB message"),
    ]:
        a, b = rate(lb[key]), rate(dc[key])
        lines.append(f"| {label} | {a:.0f} MiB/s | {b:.0f} MiB/s | **{a / b:.2f}×** |")
    lines += ["", "MiB/s counts the message octets the client received (literal or dot-stuffed "
              "text), per second of wall time.", ""]
    return "\n".join(lines)


def shrink():
    """--tiny: two 1 MiB messages and twenty small ones, one round (CI: the harness runs; the
    figures mean little)."""
    global LARGE_COUNT, LARGE_SIZE, SMALL_COUNT, ROUNDS
    LARGE_COUNT, LARGE_SIZE, SMALL_COUNT, ROUNDS = 2, 1024 * 1024, 20, 1


def main():
    ap = arguments(__doc__)
    ap.add_argument("--tiny", action="store_true", help="a few small messages (CI: it runs, no figures worth reading)")
    args = ap.parse_args()
    if args.tiny:
        shrink()
    loadavg = check_start(args, "read.py", "a private Dovecot instance")
    log("generating messages")
    large = [large_message(i) for i in range(LARGE_COUNT)]
    small = [small_message(i) for i in range(SMALL_COUNT)]
    results = {}
    letterbox = Letterbox(args.letterbox, args.work, imaps=True)
    try:
        letterbox.start()
        log("Letterbox: filling over SMTP")
        fill_letterbox(letterbox, large, small)
        log("Letterbox: reading")
        results["Letterbox"] = measure(letterbox.imaps_port, letterbox.pop3s_port, letterbox.cafile)
    finally:
        letterbox.stop()
    dovecot = DovecotRead(args.work)
    try:
        dovecot.setup()
        # The large messages first, indexed by a SELECT, so that they get UIDs 1 to
        # LARGE_COUNT as in Letterbox.
        fill_dovecot(dovecot, large, 0)
        ImapReader(dovecot.imaps_port, dovecot.cafile).sock.close()
        fill_dovecot(dovecot, small, LARGE_COUNT)
        log("Dovecot: reading")
        results["Dovecot"] = measure(dovecot.imaps_port, dovecot.pop3s_port, dovecot.cafile)
    finally:
        dovecot.stop()
    text = report(results, args.commit, loadavg)
    print(text)
    if args.results:
        with open(args.results, "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    run_main(main, "read.py")
