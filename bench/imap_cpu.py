#!/usr/bin/env python3
"""IMAP server CPU per command: Letterbox against Dovecot on the same mailbox.

Started by `bash bench/run imap-cpu` (which installs dovecot-imapd and builds the binary);
it can also be run directly as root:
    python3 bench/imap_cpu.py --letterbox target/release/letterbox --work DIR \\
        [--before OTHER_LETTERBOX_BINARY]

Everything listens on 127.0.0.1 only. Each server (with --before, an older Letterbox binary
too, as its own column) gets the same MESSAGES realistic messages in INBOX: a mailing-list
header block (Received, DKIM-Signature, List-*, sometimes an encoded Subject or a Cc), then
text/plain, multipart/alternative (text + HTML) or multipart/mixed with a base64
attachment; 1.6-8.7 KiB each, 3.9 KiB on average. Letterbox gets them over SMTP, Dovecot as
Maildir files. Then CLIENTS IMAPS sessions log in and SELECT INBOX (not measured), and for
each command kind below:
  - every command of the kind runs once, unmeasured (Dovecot fills its cache file here:
    the steady state, not the first look, is what is compared);
  - the server's CPU time (utime + stime from /proc/PID/stat) is read, the CLIENTS sessions
    send the command back to back, each for about DURATION seconds, and the CPU time is read
    again. Letterbox is one process; Dovecot's share is its whole process tree: the master,
    imap-login (which holds the TLS), imap (one per session), auth, config, log, anvil,
    stats, plus the children reaped meanwhile (the master's cutime + cstime).
Per kind the report gives the server CPU per command and per message, the commands per
second with CLIENTS sessions at once, and the response size per command (the same work for
both servers). A markdown section is appended to the results file.
"""

import asyncio
import base64
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no bench/__pycache__ from the imports below
from bench import (  # noqa: E402
    IO_TIMEOUT,
    PASSWORD,
    SENDER,
    USER,
    BenchError,
    Letterbox,
    arguments,
    check_start,
    descendants,
    dovecot_version,
    log,
    publish,
    report_head,
    run_main,
    tail,
)
from imap_scale import DovecotImap, _reply, maildir_name  # noqa: E402

MESSAGES = 2000
CLIENTS = 4
DURATION = 4.0
FILL_CLIENTS = 16
TICK = os.sysconf("SC_CLK_TCK")

# (key, label, the command a session sends (its index and the round may vary it),
#  messages one command covers (None: not per message), FETCH responses it must get)
HEADER_FIELDS = "BODY.PEEK[HEADER.FIELDS (From To Subject Date Message-ID)]"


def store_command(session, round_):
    """Each session flags and unflags its own quarter: every STORE changes every message."""
    share = MESSAGES // CLIENTS
    first = session * share + 1
    sign = "+" if round_ % 2 == 0 else "-"
    return f"STORE {first}:{first + share - 1} {sign}FLAGS.SILENT (\\Flagged)"


KINDS = [
    ("header_fields", f"FETCH 1:* {HEADER_FIELDS}",
     lambda s, r: f"FETCH 1:* {HEADER_FIELDS}", MESSAGES, MESSAGES),
    ("envelope", "FETCH 1:* (ENVELOPE BODYSTRUCTURE)",
     lambda s, r: "FETCH 1:* (ENVELOPE BODYSTRUCTURE)", MESSAGES, MESSAGES),
    ("body", "FETCH 1:* BODY.PEEK[]", lambda s, r: "FETCH 1:* BODY.PEEK[]", MESSAGES, MESSAGES),
    ("flags", "FETCH 1:* (FLAGS UID)", lambda s, r: "FETCH 1:* (FLAGS UID)", MESSAGES, MESSAGES),
    ("search", "UID SEARCH UNSEEN", lambda s, r: "UID SEARCH UNSEEN", MESSAGES, None),
    ("store", f"STORE (a quarter each, {MESSAGES // CLIENTS} messages) ±FLAGS.SILENT (\\Flagged)",
     store_command, MESSAGES // CLIENTS, None),
    ("noop", "NOOP", lambda s, r: "NOOP", None, None),
    ("select", "SELECT INBOX", lambda s, r: "SELECT INBOX", None, None),
]


# ---------------------------------------------------------------- messages

WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which "
    "but have an they you were her she there been one all we their has would when if so no will "
    "mail server appliance household family message letter garden kitchen weekend school"
).split()


def _text(i, lines):
    out = []
    for n in range(lines):
        words = [WORDS[(i * 31 + n * 7 + k * 13) % len(WORDS)] for k in range(11 + (i + n) % 5)]
        out.append(" ".join(words).capitalize() + ".")
    return "\r\n".join(out) + "\r\n"


def realistic(i):
    """Message `i` (bytes, CRLF): deterministic, 1.6-8.7 KiB, three shapes (see the docstring)."""
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(1_700_000_000 + i * 3571))
    sender = f"user{i % 37}@list{i % 5}.example.org"
    subject = (f"=?UTF-8?Q?R=C3=A9union_du_jardin_{i}?=" if i % 9 == 0
               else f"Re: [list{i % 5}] weekend plans and the garden, part {i}")
    headers = [
        f"Return-Path: <bounce-{i}@list{i % 5}.example.org>",
        f"Received: from mx{i % 3}.example.org (mx{i % 3}.example.org [192.0.2.{i % 250}])\r\n"
        f"\tby mail.home.test with ESMTPS id {i:08x}\r\n\tfor <{USER}>; {date}",
        f"Received: from list{i % 5}.example.org (localhost [127.0.0.1])\r\n"
        f"\tby mx{i % 3}.example.org with ESMTP id {i * 7:08x}; {date}",
        f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=list{i % 5}.example.org;\r\n"
        f"\ts=sel{i % 2}; t={1_700_000_000 + i}; h=from:to:subject:date:message-id;\r\n"
        "\tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
        "\tb=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFy\r\n"
        "\t YmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4",
        f"From: \"User {i % 37}\" <{sender}>",
        f"To: Alice <{USER}>",
    ]
    if i % 4 == 0:
        headers.append(f"Cc: Bob <bob@home.test>, \"Carol C.\" <carol{i % 3}@example.net>")
    headers += [f"Subject: {subject}", f"Date: {date}", f"Message-ID: <{i}.bench@list{i % 5}.example.org>"]
    if i % 3 == 0 and i > 0:
        headers.append(f"In-Reply-To: <{i - 1}.bench@list{(i - 1) % 5}.example.org>")
    headers += [
        f"List-Id: Family list {i % 5} <list{i % 5}.example.org>",
        f"List-Unsubscribe: <mailto:leave-list{i % 5}@example.org>",
        "X-Mailer: bench 1.0",
        "MIME-Version: 1.0",
    ]
    text = _text(i, 8 + i % 40)
    shape = i % 20
    if shape < 12:
        headers.append("Content-Type: text/plain; charset=utf-8")
        headers.append("Content-Transfer-Encoding: 7bit")
        body = text
    elif shape < 17:
        b = f"alt-{i}"
        headers.append(f"Content-Type: multipart/alternative; boundary=\"{b}\"")
        html = "<html><body><p>" + text.replace("\r\n", "</p>\r\n<p>") + "</p></body></html>\r\n"
        body = (f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}"
                f"--{b}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}--{b}--\r\n")
    else:
        b = f"mixed-{i}"
        headers.append(f"Content-Type: multipart/mixed; boundary=\"{b}\"")
        raw = bytes((i * 7 + k * 13) % 256 for k in range(1500 + (i % 7) * 300))
        data = base64.encodebytes(raw).decode().replace("\n", "\r\n")
        body = (f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}"
                f"--{b}\r\nContent-Type: application/pdf; name=\"scan{i}.pdf\"\r\n"
                f"Content-Disposition: attachment; filename=\"scan{i}.pdf\"\r\n"
                f"Content-Transfer-Encoding: base64\r\n\r\n{data}--{b}--\r\n")
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


async def _smtp_fill(port, count):
    indexes = iter(range(count))

    async def worker():
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 16)
        await _reply(reader, 220)
        writer.write(b"EHLO bench.example.org\r\n")
        await _reply(reader, 250)
        envelope = f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{USER}>\r\nDATA\r\n".encode()
        for i in indexes:
            writer.write(envelope)
            await _reply(reader, 250)
            await _reply(reader, 250)
            await _reply(reader, 354)
            writer.write(realistic(i).replace(b"\r\n.", b"\r\n..") + b".\r\n")
            await _reply(reader, 250)
        writer.write(b"QUIT\r\n")
        await _reply(reader, 221)
        writer.close()

    await asyncio.gather(*(worker() for _ in range(FILL_CLIENTS)))


# ---------------------------------------------------------------- servers


class LetterboxCpu(Letterbox):
    def __init__(self, binary, work, name):
        super().__init__(binary, work, name=name, imaps=True)

    def setup(self):
        self.start(add_user=True)

    def fill(self):
        asyncio.run(_smtp_fill(self.smtp_port, MESSAGES))

    def cpu(self):
        return process_cpu(self.proc.pid, children=False)


class DovecotCpu(DovecotImap):
    def fill(self):
        cur = os.path.join(self.maildir, "cur")
        for i in range(MESSAGES):
            name, data = maildir_name(i, realistic(i))
            with open(os.path.join(cur, name), "wb") as f:
                f.write(data)
        subprocess.run(["chown", "-R", "nobody:nogroup", self.mail], check=True)

    def cpu(self):
        master = self._master()
        return process_cpu(master, children=True) + sum(
            process_cpu(p, children=False) for p in descendants([master]) if p != master)


def process_cpu(pid, children):
    """utime + stime of `pid` in seconds (with `children`, plus those of its reaped children);
    0 for a process that is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / TICK


# ---------------------------------------------------------------- client


class Session:
    """One IMAPS session that reads responses with literals, keeping only counts. Octets that
    arrive after a tagged reply (untagged data sent late) are kept for the next command."""

    LITERAL = re.compile(rb"\{(\d+)\}\r\n")

    def __init__(self, port, cafile):
        ctx = ssl.create_default_context(cafile=cafile)
        raw = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.tags = 0
        self.buf = bytearray()
        while b"\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        if not self.buf.startswith(b"* OK"):
            raise BenchError(f"IMAP greeting: {bytes(self.buf[:200])!r}")
        del self.buf[: self.buf.index(b"\n") + 1]

    def command(self, text):
        """Sends one command and reads to its tagged OK; returns (FETCH responses, octets)."""
        self.tags += 1
        tag = b"t%d " % self.tags
        self.sock.sendall(tag + text.encode() + b"\r\n")
        buf = self.buf
        pos = 0  # everything before it is read, and outside any literal
        fetches, octets = 0, len(buf)
        while True:
            while True:
                m = self.LITERAL.search(buf, pos)
                limit = m.start() if m else len(buf)
                at = pos if buf.startswith(tag, pos) else buf.find(b"\n" + tag, pos, limit) + 1
                if at > 0 or buf.startswith(tag, pos):
                    line_end = buf.find(b"\n", at) + 1
                    if line_end == 0:
                        break  # the tagged reply is not all here yet
                    fetches += buf.count(b" FETCH (", pos, at)
                    if not buf.startswith(b"OK", at + len(tag)):
                        raise BenchError(f"IMAP {text[:60]}: {bytes(buf[at:line_end][:300])!r}")
                    del buf[:line_end]
                    return fetches, octets - len(buf)
                if m is None:
                    line_end = buf.rfind(b"\n", pos) + 1
                    if line_end > pos:
                        fetches += buf.count(b" FETCH (", pos, line_end)
                        pos = line_end
                    break
                literal_end = m.end() + int(m.group(1))
                if literal_end > len(buf):
                    break  # the literal is not all here yet
                fetches += buf.count(b" FETCH (", pos, m.start())
                pos = literal_end
            if pos > 1 << 20:
                del buf[:pos]
                pos = 0
            data = self.sock.recv(1 << 20)
            if not data:
                raise BenchError(f"IMAP {text.split()[0]}: connection closed")
            buf += data
            octets += len(data)

    def close(self):
        try:
            self.command("LOGOUT")
        except (BenchError, OSError):
            pass
        self.sock.close()


# ---------------------------------------------------------------- measurement


def measure(server, sessions, kind):
    key, label, command, per, expect = kind
    for i, s in enumerate(sessions):  # once each, unmeasured (caches, and STORE's round 0)
        fetches, _ = s.command(command(i, 0))
        if expect is not None and fetches < expect:
            raise BenchError(f"{server.name}: {label} gave {fetches} FETCH responses, expected {expect}")
    counts = [0] * len(sessions)
    octets = [0] * len(sessions)
    errors = []
    barrier = threading.Barrier(len(sessions) + 1)

    def run(i, s):
        try:
            barrier.wait()
            t0 = time.perf_counter()
            while counts[i] == 0 or time.perf_counter() - t0 < DURATION:
                fetches, n = s.command(command(i, counts[i] + 1))
                if expect is not None and fetches < expect:
                    raise BenchError(f"{fetches} FETCH responses, expected {expect}")
                counts[i] += 1
                octets[i] += n
        except Exception as e:  # reported after the join
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate(sessions)]
    for t in threads:
        t.start()
    cpu0, client0 = server.cpu(), time.process_time()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    cpu, client = server.cpu() - cpu0, time.process_time() - client0
    if errors:
        raise BenchError(f"{server.name}: {label}: {errors[:3]}")
    n = sum(counts)
    r = {"cpu": cpu / n, "rate": n / wall, "octets": sum(octets) / n, "count": n,
         "per_message": cpu / n / per if per else None, "client": client / n}
    log(f"{server.name}: {label}: {n} in {wall:.1f} s, server CPU {cpu:.2f} s = "
        f"{r['cpu'] * 1000:.2f} ms per command, client CPU {client:.2f} s")
    return r


def bench_server(server):
    log(f"{server.name}: starting")
    server.setup()
    t0 = time.perf_counter()
    server.fill()
    log(f"{server.name}: {MESSAGES} messages in {time.perf_counter() - t0:.1f} s")
    sessions = [Session(server.imaps_port, server.cafile) for _ in range(CLIENTS)]
    for s in sessions:
        s.command(f'LOGIN "{USER}" "{PASSWORD}"')
        s.command("SELECT INBOX")
    results = {"name": server.name}
    try:
        for kind in KINDS:
            results[kind[0]] = measure(server, sessions, kind)
    finally:
        for s in sessions:
            s.close()
    return results


# ---------------------------------------------------------------- report


def report(columns, commit, loadavg, describe):
    def ms(seconds):
        if seconds >= 0.001:
            return f"{seconds * 1000:.2f} ms"
        return f"{seconds * 1e6:.0f} µs" if seconds >= 1e-5 else f"{seconds * 1e6:.2f} µs"

    dovecot = columns[-1]
    out = report_head(" — IMAP server CPU per command (`bash bench/run imap-cpu`)", commit, loadavg)
    out += [f"- {line}" for line in describe]
    out += [
        f"- Mailbox: {MESSAGES:,} messages in INBOX, 1.6-8.7 KiB each (3.9 KiB on average): "
        "a mailing-list header block (2 Received, DKIM-Signature, List-*), 60 % text/plain, "
        "25 % multipart/alternative (text + HTML), 15 % multipart/mixed with a base64 "
        "attachment (bench/imap_cpu.py `realistic`)",
        f"- Load: {CLIENTS} IMAPS sessions (Python `ssl`, threads of one process), logged in and "
        f"INBOX selected before; per command kind each runs the command once unmeasured, then "
        f"back to back for {DURATION:.0f} s",
        "",
        "| command | " + " | ".join(f"{c['name']}: CPU per command (per message)" for c in columns)
        + " | " + " | ".join(f"{c['name']}: commands/s" for c in columns)
        + " | CPU against Dovecot | response per command |",
        "|---|" + "---|" * (2 * len(columns) + 2),
    ]
    for key, label, _, per, _ in KINDS:
        cells = []
        for c in columns:
            r = c[key]
            cells.append(ms(r["cpu"]) + (f" ({ms(r['per_message'])})" if per else ""))
        rates = [f"{c[key]['rate']:.1f}" for c in columns]
        ratios = " / ".join(
            f"{c[key]['cpu'] / dovecot[key]['cpu']:.2f}×" if dovecot[key]["cpu"] else "—"
            for c in columns[:-1])
        out.append(f"| `{label}` | " + " | ".join(cells) + " | " + " | ".join(rates)
                   + f" | {ratios} | {dovecot[key]['octets'] / 1024:.1f} KiB |")
    out += [
        "",
        "How to read it: CPU is the server's utime + stime over the measured span (from "
        f"/proc/PID/stat, {TICK} ticks/s) divided by the commands completed in it; for Dovecot "
        "it is the whole process tree (the imap process of each session, imap-login which "
        "terminates TLS, auth, config, log, stats, anvil, and the master). \"CPU against Dovecot\""
        " is the Letterbox column(s) divided by Dovecot's. Commands/s is what the sessions "
        "completed together per second; the Python clients share the 2 cores with the server, so"
        " it is a lower bound on the server's rate where their CPU is large. The response size is"
        " Dovecot's; Letterbox's differs by a few octets per message at most. One run each.",
        "",
    ]
    return "\n".join(out)


def main():
    ap = arguments(__doc__)
    ap.add_argument("--before", help="another letterbox binary, measured as its own column first")
    args = ap.parse_args()
    loadavg = check_start(args, "imap_cpu.py", "a private Dovecot instance")
    start = time.perf_counter()
    columns, describe = [], []
    binaries = ([("Letterbox before", args.before)] if args.before else []) + [
        ("Letterbox", args.letterbox)]
    for name, binary in binaries:
        server = LetterboxCpu(binary, args.work, name)
        try:
            columns.append(bench_server(server))
            describe.append(f"{name}: {os.path.abspath(binary)}, {server.describe()}")
        except BenchError:
            log(f"{name} log:\n{tail(server.logfile)}")
            raise
        finally:
            server.stop()
    dovecot = DovecotCpu(args.work)
    try:
        columns.append(bench_server(dovecot))
        describe.append(f"Dovecot: {dovecot.describe()}")
    except BenchError:
        log(f"Dovecot log:\n{tail(dovecot.log)}")
        raise
    finally:
        dovecot.stop()
    log(f"IMAP CPU benchmark took {time.perf_counter() - start:.0f} s; Dovecot {dovecot_version()}")
    publish(report(columns, args.commit, loadavg, describe), args.results)


if __name__ == "__main__":
    run_main(main, "imap_cpu.py")
