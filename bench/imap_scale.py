#!/usr/bin/env python3
"""IMAP on a large mailbox: Letterbox against Dovecot, peak memory and time.

Started by `bash bench/run imap-scale` (which installs dovecot-imapd and builds the binary);
it can also be run directly as root:
    python3 bench/imap_scale.py --letterbox target/release/letterbox --work DIR

Everything listens on 127.0.0.1 only. For Letterbox and for Dovecot (imapd on a Maildir):
  1. fill INBOX with SIZES[0] messages of about 1 KiB: Letterbox over SMTP (FILL_CLIENTS
     connections, MAIL/RCPT/DATA pipelined, 250 only once stored), Dovecot as Maildir files
     written straight into cur/. Then one IMAPS session SELECTs INBOX (Dovecot indexes the
     new files here) and marks the first half \\Seen with one STORE ... +FLAGS.SILENT;
  2. restart the server (so what it holds comes from the reads below), then over IMAPS:
     LOGIN; SELECT INBOX; UID FETCH 1:* (UID FLAGS); FETCH 1:* (FLAGS); UID SEARCH UNSEEN;
     then CONCURRENT sessions at once SELECT and UID FETCH 1:* (UID FLAGS); then
     STORE 1:* +FLAGS (\\Flagged) (one FETCH response per message) and
     STORE 1:* -FLAGS.SILENT (\\Flagged), which leaves the flags as they were. Each step is
     timed (command sent to tagged OK) and its peak RSS read: VmHWM, reset through
     /proc/PID/clear_refs at the start of the step (after LOGIN for the commands, so
     Letterbox's argon2 is not in them); for Dovecot summed over the master and all its
     children, sampled every 100 ms;
  3. fill up to SIZES[1] messages and do 2 again;
  4. Letterbox only: restart on the same store with `store_cache_size = "1MiB"` and do the
     reads again, which tells redb's page cache from what the session itself holds.
The client reads every response as it arrives, in blocks of whole lines, and keeps only
counts; its CPU time is recorded beside the server's wall time. A markdown section is
appended to the results file.
"""

import asyncio
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no bench/__pycache__ from the import below
from bench import (  # noqa: E402
    IO_TIMEOUT,
    PASSWORD,
    SENDER,
    USER,
    BenchError,
    Letterbox,
    MemoryMeter,
    arguments,
    check_start,
    dovecot_version,
    free_ports,
    kib,
    log,
    make_message,
    mib,
    publish,
    read_pid,
    read_status,
    report_head,
    run_main,
    start_daemon,
    tail,
    wait_port,
    write_dovecot_conf,
)

SIZES = (10_000, 100_000)
MESSAGE_SIZE = 1024
FILL_CLIENTS = 32
CONCURRENT = 4


# ---------------------------------------------------------------- IMAP client


class Imap:
    """A minimal IMAP client over implicit TLS. Responses are read as they arrive and handed
    over in blocks of whole lines, so that counting them costs a few C-level scans per block
    instead of Python code per line (the client must not set the pace)."""

    LITERAL = re.compile(rb"\{\d+\+?\}\r\n")

    def __init__(self, port, cafile):
        ctx = ssl.create_default_context(cafile=cafile)
        raw = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.buf = bytearray()
        self.tags = 0
        while b"\n" not in self.buf:
            self._recv()
        if not self.buf.startswith(b"* OK"):
            raise BenchError(f"IMAP greeting: {bytes(self.buf[:200])!r}")
        self.buf.clear()

    def _recv(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise BenchError(f"IMAP connection closed mid-response: {bytes(self.buf[-200:])!r}")
        self.buf += data

    def command(self, text, on_block=None):
        """Sends one command and reads to its tagged reply; passes the untagged lines to
        `on_block` in blocks of whole lines. Returns (seconds, client CPU seconds, octets of
        response). The commands used here get no literals in their responses."""
        self.tags += 1
        tag = b"t%d " % self.tags
        cpu0, t0 = time.thread_time(), time.perf_counter()
        self.sock.sendall(tag + text.encode() + b"\r\n")
        octets = 0
        while True:
            self._recv()
            end = self.buf.rfind(b"\n") + 1
            if end == 0:
                continue
            block = bytes(self.buf[:end])
            del self.buf[:end]
            octets += len(block)
            if self.LITERAL.search(block):
                raise BenchError(f"IMAP {text.split()[0]}: unexpected literal in the response")
            at = 0 if block.startswith(tag) else block.find(b"\n" + tag) + 1
            if at == 0 and not block.startswith(tag):
                if on_block:
                    on_block(block)
                continue
            if on_block and at:
                on_block(block[:at])
            reply = block[at:]
            elapsed, cpu = time.perf_counter() - t0, time.thread_time() - cpu0
            if not reply[len(tag):].startswith(b"OK") or reply.count(b"\n") != 1:
                raise BenchError(f"IMAP {text.split()[0]}: {reply[:300]!r}")
            return elapsed, cpu, octets

    def login(self):
        return self.command(f'LOGIN "{USER}" "{PASSWORD}"')

    def close(self):
        try:
            self.command("LOGOUT")
        except (BenchError, OSError):
            pass
        self.sock.close()


class Exists:
    PATTERN = re.compile(rb"^\* (\d+) EXISTS\r?$", re.M)

    def __init__(self):
        self.count = None

    def __call__(self, block):
        for m in self.PATTERN.finditer(block):
            self.count = int(m.group(1))


class Fetches:
    """Counts FETCH responses and \\Seen among them; checks that UIDs, when sent, ascend."""

    UID = re.compile(rb"UID (\d+)")

    def __init__(self):
        self.count = self.seen = self.uids = 0
        self.last_uid = 0

    def __call__(self, block):
        self.count += block.count(b" FETCH (")
        self.seen += block.count(b"\\Seen")
        uids = [int(u) for u in self.UID.findall(block)]
        if uids:
            if uids[0] <= self.last_uid or any(a >= b for a, b in zip(uids, uids[1:])):
                raise BenchError("UIDs in the FETCH responses do not ascend")
            self.last_uid = uids[-1]
            self.uids += len(uids)


class Searched:
    def __init__(self):
        self.count = None

    def __call__(self, block):
        for line in block.split(b"\n"):
            if line.startswith(b"* SEARCH"):
                self.count = len(line.split()) - 2


# ---------------------------------------------------------------- filling


async def _reply(reader, code):
    while True:
        line = await reader.readline()
        if len(line) < 4 or not line.startswith(str(code).encode()):
            raise BenchError(f"SMTP: expected {code}, got {line[:200]!r}")
        if line[3:4] == b" ":
            return


async def _smtp_fill(port, first, end):
    indexes = iter(range(first, end))

    async def worker():
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 16)
        await _reply(reader, 220)
        writer.write(b"EHLO bench.example.org\r\n")
        await _reply(reader, 250)
        envelope = f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{USER}>\r\nDATA\r\n".encode()
        for i in indexes:
            message = make_message("imap", i, MESSAGE_SIZE)[0].replace(b"\r\n.", b"\r\n..")
            writer.write(envelope)  # PIPELINING: the three commands at once
            await _reply(reader, 250)
            await _reply(reader, 250)
            await _reply(reader, 354)
            writer.write(message + b".\r\n")
            await _reply(reader, 250)
        writer.write(b"QUIT\r\n")
        await _reply(reader, 221)
        writer.close()

    await asyncio.gather(*(worker() for _ in range(FILL_CLIENTS)))


def maildir_name(i, message):
    lf = message.replace(b"\r\n", b"\n")
    # time.M<usec>P<pid>.host,S=<size on disk>,W=<size with CRLF>:2, (no flags)
    name = f"{1_700_000_000 + i}.M{i % 1_000_000}P{os.getpid()}.bench"
    return f"{name},S={len(lf)},W={len(message)}:2,", lf


def dir_size(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


# ---------------------------------------------------------------- the servers


class LetterboxImap(Letterbox):
    def __init__(self, binary, work):
        super().__init__(binary, work, name="Letterbox", imaps=True)

    def setup(self):
        self.start(add_user=True)

    def restart(self, limits=""):
        self.stop()
        self.limits = limits
        t0 = time.perf_counter()
        self.start(add_user=False)
        return time.perf_counter() - t0

    def fill(self, first, end):
        asyncio.run(_smtp_fill(self.smtp_port, first, end))

    def disk(self):
        return dir_size(self.data)


class DovecotImap:
    """A private Dovecot instance serving IMAPS from one Maildir, on a free 127.0.0.1 port."""

    name = "Dovecot"
    limits = ""

    def __init__(self, work):
        self.dir = os.path.join(work, "dovecot-imap")
        self.mail = os.path.join(self.dir, "mail")
        self.home = os.path.join(self.mail, "home.test", "alice")
        self.maildir = os.path.join(self.home, "Maildir")
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.log = os.path.join(self.dir, "dovecot.log")
        self.pidfile = os.path.join(self.dir, "run", "master.pid")
        self.meter = None
        self.started = False

    def setup(self):
        for tool in ("dovecot", "doveadm", "openssl"):
            if not shutil.which(tool):
                raise BenchError(f"{tool} not found (bench/run installs dovecot-imapd)")
        if not os.path.exists("/usr/lib/dovecot/imap"):
            raise BenchError("/usr/lib/dovecot/imap not found (bench/run installs dovecot-imapd)")
        for d in ("run", "state"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        for d in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.maildir, d), exist_ok=True)
        os.chmod(os.path.dirname(self.dir), 0o755)
        os.chmod(self.dir, 0o755)
        subprocess.run(["chown", "-R", "nobody:nogroup", self.mail], check=True)
        (self.imaps_port,) = free_ports(1)
        self.cafile = write_dovecot_conf(self.dir, self.mail, "imap", (0, self.imaps_port),
                                         "letterbox-bench-imap")
        self.start()

    def _master(self):
        pid = read_pid(self.pidfile)
        return pid if pid is not None and os.path.exists(f"/proc/{pid}") else None

    def start(self):
        self.started = True
        start_daemon(["dovecot", "-c", self.conf], f"dovecot start (log: {self.log})",
                     os.path.join(self.dir, "start.out"))
        wait_port(self.imaps_port, f"dovecot (log: {self.log})")
        deadline = time.time() + 15
        while self._master() is None:
            if time.time() > deadline:
                raise BenchError(f"no Dovecot master pid in {self.pidfile}")
            time.sleep(0.05)
        self.meter = MemoryMeter([self._master()], tree=True)

    def stop(self):
        if self.meter:
            self.meter.close()
            self.meter = None
        if not self.started:
            return
        master = self._master()
        subprocess.run(["doveadm", "-c", self.conf, "stop"], capture_output=True)
        deadline = time.time() + 15
        while master and os.path.exists(f"/proc/{master}"):
            if time.time() > deadline:
                raise BenchError("Dovecot did not stop in 15 s")
            time.sleep(0.05)
        self.started = False

    def restart(self, limits=""):
        self.stop()
        t0 = time.perf_counter()
        self.start()
        return time.perf_counter() - t0

    def fill(self, first, end):
        cur = os.path.join(self.maildir, "cur")
        for i in range(first, end):
            name, data = maildir_name(i, make_message("imap", i, MESSAGE_SIZE)[0])
            with open(os.path.join(cur, name), "wb") as f:
                f.write(data)
        subprocess.run(["chown", "-R", "nobody:nogroup", self.mail], check=True)

    def disk(self):
        return dir_size(self.maildir)

    def describe(self):
        version = dovecot_version()
        return (
            f"Dovecot {version} (Debian packages dovecot-core, dovecot-imapd) as a private "
            "instance: IMAPS only, passwd-file (SHA512-CRYPT) + static userdb, `mail_location = "
            "maildir:`, index files in the Maildir, RSA-2048 self-signed certificate, defaults "
            "otherwise. The Maildir files (LF line ends, `S=`/`W=` sizes in the name) are "
            "written into cur/ directly by the benchmark; Dovecot's first SELECT after each fill "
            "indexes them."
        )


# ---------------------------------------------------------------- the measurements


def rss_now(meter):
    """(VmRSS summed over the live processes, their number)."""
    pids = meter._pids()
    return sum(kib((read_status(p) or {}).get("VmRSS")) for p in pids), len(pids)


def peak(meter):
    """The step's peak (see MemoryMeter.end), plus the sum over Dovecot's `imap` processes
    (the ones that hold a mailbox) and their number."""
    m = meter.end()
    with meter.lock:
        imap = [k for name, k in meter.peaks.values() if name == "imap"]
    m["imap"] = (sum(imap), len(imap))
    return m


def step(r, key, meter, client, command, on_block=None):
    """One measured command: its time in r[key], the client's CPU time in r["cpu_" + key],
    the response's octets in r["octets_" + key] and the peak (see `peak`) in r["mem_" + key]."""
    meter.begin()
    r[key], r["cpu_" + key], r["octets_" + key] = client.command(command, on_block)
    r["mem_" + key] = peak(meter)


def fill(server, first, end, r):
    log(f"{server.name}: filling INBOX with messages {first + 1}..{end}")
    t0 = time.perf_counter()
    server.fill(first, end)
    r["fill"] = time.perf_counter() - t0
    r["fill_count"] = end - first
    client = Imap(server.imaps_port, server.cafile)
    client.login()
    exists = Exists()
    r["first_select"], _, _ = client.command("SELECT INBOX", exists)
    if exists.count != end:
        raise BenchError(f"{server.name}: SELECT shows {exists.count} messages, expected {end}")
    r["store"], _, _ = client.command(f"STORE 1:{end // 2} +FLAGS.SILENT (\\Seen)")
    client.close()
    r["disk"] = server.disk()
    log(f"{server.name}: {end - first} messages in {r['fill']:.1f} s, first SELECT "
        f"{r['first_select']:.2f} s, STORE \\Seen on {end // 2} in {r['store']:.2f} s")


def reads(server, n, r):
    """Restart, then the timed reads on `n` messages, each with its own memory peak."""
    r["restart"] = server.restart(server.limits)
    meter = server.meter
    time.sleep(0.5)  # let the daemons settle (Dovecot starts some children lazily)
    r["rss_start"] = rss_now(meter)
    log(f"{server.name} ({n}): restarted in {r['restart']:.2f} s, RSS {mib(r['rss_start'][0])}")

    client = Imap(server.imaps_port, server.cafile)
    meter.begin()
    r["login"], _, _ = client.login()
    r["mem_login"] = peak(meter)

    exists = Exists()
    step(r, "select", meter, client, "SELECT INBOX", exists)
    if exists.count != n:
        raise BenchError(f"{server.name}: SELECT shows {exists.count} messages, expected {n}")

    fetched = Fetches()
    step(r, "uid_fetch", meter, client, "UID FETCH 1:* (UID FLAGS)", fetched)
    if (fetched.count, fetched.uids, fetched.seen) != (n, n, n // 2):
        raise BenchError(f"{server.name}: UID FETCH gave {fetched.count} responses, {fetched.uids} "
                         f"UIDs, {fetched.seen} \\Seen; expected {n}, {n}, {n // 2}")

    fetched = Fetches()
    step(r, "fetch", meter, client, "FETCH 1:* (FLAGS)", fetched)
    if (fetched.count, fetched.seen) != (n, n // 2):
        raise BenchError(f"{server.name}: FETCH FLAGS gave {fetched.count} responses, "
                         f"{fetched.seen} \\Seen; expected {n}, {n // 2}")

    searched = Searched()
    step(r, "search", meter, client, "UID SEARCH UNSEEN", searched)
    if searched.count != n - n // 2:
        raise BenchError(f"{server.name}: UID SEARCH UNSEEN found {searched.count}, "
                         f"expected {n - n // 2}")
    client.close()

    # CONCURRENT sessions at once: logged in first (not measured), then SELECT + UID FETCH.
    clients = [Imap(server.imaps_port, server.cafile) for _ in range(CONCURRENT)]
    for c in clients:
        c.login()
    errors = []
    barrier = threading.Barrier(CONCURRENT + 1)

    def session(c):
        try:
            barrier.wait()
            c.command("SELECT INBOX")
            f = Fetches()
            c.command("UID FETCH 1:* (UID FLAGS)", f)
            if f.count != n:
                errors.append(f"{f.count} FETCH responses")
        except Exception as e:  # reported after the join
            errors.append(repr(e))

    threads = [threading.Thread(target=session, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    meter.begin()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    r["concurrent"] = time.perf_counter() - t0
    r["mem_concurrent"] = peak(meter)
    if errors:
        raise BenchError(f"{server.name}: concurrent sessions failed: {errors[:3]}")
    for c in clients:
        c.close()

    # A flag change on every message, answered with n FETCH responses, then taken back
    # silently (the state the next column reads is unchanged).
    client = Imap(server.imaps_port, server.cafile)
    client.login()
    client.command("SELECT INBOX")
    fetched = Fetches()
    step(r, "store_all", meter, client, "STORE 1:* +FLAGS (\\Flagged)", fetched)
    if fetched.count != n:
        raise BenchError(f"{server.name}: STORE gave {fetched.count} FETCH responses, expected {n}")
    step(r, "store_silent", meter, client, "STORE 1:* -FLAGS.SILENT (\\Flagged)")
    client.close()
    time.sleep(0.5)
    r["rss_end"] = rss_now(meter)
    r["life"] = meter.lifetime()
    log(f"{server.name} ({n}): SELECT {r['select']:.2f} s {mib(r['mem_select']['kib'])}, "
        f"UID FETCH {r['uid_fetch']:.2f} s {mib(r['mem_uid_fetch']['kib'])} "
        f"(client CPU {r['cpu_uid_fetch']:.2f} s), FETCH FLAGS {r['fetch']:.2f} s, "
        f"UID SEARCH UNSEEN {r['search']:.2f} s {mib(r['mem_search']['kib'])}, "
        f"{CONCURRENT} sessions {r['concurrent']:.2f} s {mib(r['mem_concurrent']['kib'])}, "
        f"STORE 1:* {r['store_all']:.2f} s {mib(r['mem_store_all']['kib'])}, silent "
        f"{r['store_silent']:.2f} s {mib(r['mem_store_silent']['kib'])}")


def bench_server(server, sizes, extra_limits=None):
    """Returns one result column per mailbox size (and one for `extra_limits`)."""
    columns = []
    log(f"{server.name}: starting")
    server.setup()
    filled = 0
    for n in sizes:
        r = {"name": f"{server.name}, {n:,} messages", "n": n,
             "letterbox": isinstance(server, Letterbox)}
        fill(server, filled, n, r)
        filled = n
        reads(server, n, r)
        columns.append(r)
    if extra_limits:
        label, limits = extra_limits
        r = {"name": f"{server.name}, {filled:,} messages, {label}", "n": filled,
             "letterbox": isinstance(server, Letterbox), "same_data": True}
        server.limits = limits
        reads(server, filled, r)
        columns.append(r)
    return columns


# ---------------------------------------------------------------- report


def report(columns, commit, loadavg, letterbox_describe, dovecot_describe):
    sec = lambda s: f"{s:.2f} s"

    def mem(m):
        if m["procs"] <= 1:
            return mib(m["kib"])
        imap, count = m["imap"]
        name, top = m["biggest"]
        what = f"imap {mib(imap)}" if count == 1 else f"{count} imap {mib(imap)}"
        if count == 0:
            what = f"largest {name} {mib(top)}"
        return f"{mib(m['kib'])} ({m['procs']} processes; {what})"

    def rss(pair):
        k, procs = pair
        return mib(k) if procs <= 1 else f"{mib(k)} ({procs} processes)"

    def filled(key, fmt):
        return lambda r: "same store" if r.get("same_data") else fmt(r[key])

    def timed(key):
        return lambda r: f"{sec(r[key])} (client CPU {r['cpu_' + key]:.2f} s)"

    rows = [
        ("**1. fill (not the point)**", None),
        ("messages added", filled("fill_count", lambda v: f"{v:,}")),
        ("time to add them", lambda r: "same store" if r.get("same_data") else
            f"{sec(r['fill'])} ({r['fill_count'] / r['fill']:.0f} msg/s)"),
        ("first SELECT after the fill", filled("first_select", sec)),
        ("`STORE 1:n/2 +FLAGS.SILENT (\\Seen)`", filled("store", sec)),
        ("on disk (store / Maildir with indexes)", filled("disk", lambda v: mib(v / 1024))),
        ("**2. after a restart: time**", None),
        ("restart to listening", lambda r: sec(r["restart"])),
        ("LOGIN", lambda r: sec(r["login"])),
        ("SELECT INBOX", timed("select")),
        ("UID FETCH 1:* (UID FLAGS)", timed("uid_fetch")),
        ("… its response", lambda r: mib(r["octets_uid_fetch"] / 1024)),
        ("FETCH 1:* (FLAGS)", timed("fetch")),
        ("UID SEARCH UNSEEN (n/2 found)", timed("search")),
        ("… its response", lambda r: mib(r["octets_search"] / 1024)),
        (f"{CONCURRENT} sessions at once: SELECT + UID FETCH 1:* (UID FLAGS)",
            lambda r: sec(r["concurrent"])),
        ("STORE 1:* +FLAGS (\\Flagged) (n FETCH responses)", timed("store_all")),
        ("STORE 1:* -FLAGS.SILENT (\\Flagged)", timed("store_silent")),
        ("**3. memory**", None),
        ("RSS after the restart, before any client", lambda r: rss(r["rss_start"])),
        ("peak during LOGIN", lambda r: mem(r["mem_login"])),
        ("peak during SELECT INBOX", lambda r: mem(r["mem_select"])),
        ("peak during UID FETCH 1:* (UID FLAGS)", lambda r: mem(r["mem_uid_fetch"])),
        ("peak during FETCH 1:* (FLAGS)", lambda r: mem(r["mem_fetch"])),
        ("peak during UID SEARCH UNSEEN", lambda r: mem(r["mem_search"])),
        (f"peak during the {CONCURRENT} sessions", lambda r: mem(r["mem_concurrent"])),
        ("peak during STORE 1:* +FLAGS (\\Flagged)", lambda r: mem(r["mem_store_all"])),
        ("peak during STORE 1:* -FLAGS.SILENT (\\Flagged)", lambda r: mem(r["mem_store_silent"])),
        ("RSS after all of the above, sessions logged out", lambda r: rss(r["rss_end"])),
        ("VmHWM of the process since the restart (with LOGIN)",
            lambda r: mib(r["life"]) if r["letterbox"] else "—"),
    ]
    out = report_head(" — IMAP on a large mailbox (`bash bench/run imap-scale`)", commit, loadavg)
    out += [
        f"- Letterbox: {letterbox_describe}; IMAPS on 127.0.0.1; messages delivered over plain "
        f"SMTP ({FILL_CLIENTS} connections, PIPELINING of MAIL/RCPT/DATA; 250 = stored durably)",
        f"- Dovecot: {dovecot_describe}",
        f"- Messages: about {MESSAGE_SIZE} octets each (text/plain, the SMTP benchmark's "
        "generator); the first half marked \\Seen by one STORE after each fill",
        f"- Client: Python {sys.version.split()[0]}, one `ssl` socket per session, certificate "
        "verified; responses read as they arrive, in blocks of whole lines, and only counted "
        "(FETCH: responses, UIDs in ascending order, \\Seen; SEARCH: hits); every count is "
        "checked.",
        "",
        "| | " + " | ".join(r["name"] for r in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for label, fn in rows:
        cells = ("" if fn is None else fn(r) for r in columns)
        out.append(f"| {label} | " + " | ".join(cells) + " |")

    # Growth per message between the two sizes, for each server's plain columns.
    growth = []
    for name in ("Letterbox", "Dovecot"):
        plain = [r for r in columns if r["name"].startswith(name) and not r.get("same_data")]
        if len(plain) >= 2:
            a, b = plain[0], plain[-1]
            per = lambda key: (b[key]["kib"] - a[key]["kib"]) * 1024 / (b["n"] - a["n"])
            growth.append(
                f"{name}: {per('mem_uid_fetch'):+.0f} octets per message between {a['n']:,} and "
                f"{b['n']:,} messages in the UID FETCH peak, {per('mem_select'):+.0f} in the "
                f"SELECT peak, {per('mem_concurrent'):+.0f} with {CONCURRENT} sessions"
            )
    out += [""]
    if growth:
        out += ["Growth of the peak with the mailbox: " + "; ".join(growth) + ".", ""]
    out += [
        "How to read it: each time runs from the command's first octet sent to its tagged OK "
        "read; \"client CPU\" is the client thread's CPU time in that span, TLS included (where "
        "it is well below the time, the server, not the client, sets the pace). \"Peak during\" "
        "is VmHWM reset through `/proc/PID/clear_refs` at the start of that step and read at "
        "its end, so it is the largest RSS in the step, including what the process held before "
        "it; for Dovecot it is the sum over the master and every child seen in the step "
        "(sampled every 100 ms; shared pages counted in each, so an upper bound), and in "
        "parentheses the part of Dovecot's `imap` processes, the ones that open the mailbox "
        "(one per session). Letterbox's LOGIN includes the argon2id hash (19 MiB, freed after)."
        " The server is restarted before the reads, so the page cache (the OS's) is warm but "
        "the process starts empty. The \"1 MiB store cache\" column is the same store read by "
        "Letterbox restarted with `[limits] store_cache_size = \"1MiB\"` (default 16 MiB), which "
        "separates redb's page cache from what the sessions hold. One run each.",
        "",
    ]
    return "\n".join(out)


def main():
    ap = arguments(__doc__)
    ap.add_argument("--sizes", default=",".join(str(n) for n in SIZES),
                    help="mailbox sizes to measure at, ascending (default %(default)s)")
    args = ap.parse_args()
    loadavg = check_start(args, "imap_scale.py", "a private Dovecot instance")
    sizes = [int(s) for s in args.sizes.split(",")]

    start = time.perf_counter()
    letterbox = LetterboxImap(args.letterbox, args.work)
    try:
        columns = bench_server(letterbox, sizes, ("1 MiB store cache", 'store_cache_size = "1MiB"'))
        letterbox.limits = ""
        lb_describe = letterbox.describe()
    finally:
        letterbox.stop()
    dovecot = DovecotImap(args.work)
    try:
        columns += bench_server(dovecot, sizes)
        dc_describe = dovecot.describe()
    except BenchError:
        log(f"Dovecot log:\n{tail(dovecot.log)}")
        raise
    finally:
        dovecot.stop()
    log(f"IMAP scale benchmark took {time.perf_counter() - start:.0f} s")

    publish(report(columns, args.commit, loadavg, lb_describe, dc_describe), args.results)


if __name__ == "__main__":
    run_main(main, "imap_scale.py")
