#!/usr/bin/env python3
"""Memory of the shipped binary: the static aarch64-musl Letterbox inside the QEMU-booted SD
image, next to the x86-64 glibc release build on this machine, under the same load.

Started by `bash bench/run memory` (which builds the host binary and the image); it can also
be run directly as root:
    python3 bench/memory.py --letterbox target/release/letterbox --work DIR \
        --image "aarch64-musl=image/out/letterbox-0.1.0-rpi-arm64.img"

Each image (`--image LABEL=PATH`, repeatable: one row each, e.g. two allocators) is booted
with image/qemu.py (the `virt` machine, 2 cores, 512 MiB, its debug console on) from a copy
enlarged to 1 GiB, with an account and port 25's spam checks off put on its boot partition
as image/test does; the guest's /proc/<letterbox>/status is read on that console. The host
binary runs as bench.py's Letterbox does (127.0.0.1 only; spam and inbound checks off). For
each, in order:
  1. idle: VmRSS, RssAnon and VmHWM once the SMTP banner is up and the daemon has settled;
     then VmHWM reset and one IMAPS login (argon2id; later logins within its lifetime are
     served by the verified-login cache) and its peak;
  2. deliveries: SEED_COUNT messages (mostly 4-16 KiB, every tenth 256 KiB) over SMTP from
     SMTP_CLIENTS connections at once, timed (messages per second: the throughput figure);
  3. per-session cost: VmRSS with no session open, then with IDLE_SESSIONS IMAPS sessions
     logged in with INBOX selected and left idle: (RSS with them - RSS without) divided by
     IDLE_SESSIONS; and VmRSS once they have logged out (what the allocator gave back);
  4. mixed load, with VmHWM reset just before (clear_refs) and read after: IMAP_SESSIONS
     IMAPS sessions at once, each LOGIN, SELECT, FETCH 1:* (FLAGS ENVELOPE), FETCH 1:*
     BODY.PEEK[] and LOGOUT, IMAP_ROUNDS times; a POP3S session RETRieving every message,
     POP3_ROUNDS times one after the other; SMTP_CLIENTS senders delivering LOAD_COUNT more;
     all at once, the wall time and the octets the clients read per second reported; and
     VmRSS a few seconds after it.
Appends a markdown section to the results file.
"""

import os
import re
import shutil
import smtplib
import socket
import ssl
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ from the imports below
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "image"))
from bench import (  # noqa: E402
    IO_TIMEOUT,
    PASSWORD,
    SENDER,
    USER,
    BenchError,
    Letterbox,
    arguments,
    check_start,
    log,
    make_message,
    mib,
    publish,
    report_head,
    reset_hwm,
    run_main,
)
import qemu  # noqa: E402

SEED_COUNT = 120
LOAD_COUNT = 60
SMTP_CLIENTS = 4
LARGE_EVERY = 10  # every tenth message is LARGE_SIZE
LARGE_SIZE = 256 * 1024
IMAP_SESSIONS = 10
IMAP_ROUNDS = 2
POP3_ROUNDS = 2  # one after the other: POP3 locks the mailbox (RFC 1939)
IDLE_SESSIONS = 50
SETTLE = 3  # seconds between the end of a phase and reading /proc

# The guest's boot-partition config: the host's account domain; port 25's spam checks and the
# health checks off as on the host (bench.py) and in image/test; and room for every session
# from one address (QEMU's user network shows all of them as coming from 10.0.2.2).
GUEST_CONFIG = """# set by bench/memory.py
hostname = "mail.home.test"
domains = ["home.test"]

[spam]
greylisting = false
dnsbl = []
dnswl = []
rate_limits = false
pregreet_wait = 0

[health]
automatic = false

[limits]
max_connections_per_address = 64
"""

HOST_LIMITS = "max_connections_per_address = 64"


def message(i, tag):
    size = LARGE_SIZE if i % LARGE_EVERY == LARGE_EVERY - 1 else 4096 * (1 + i % 4)
    return make_message(tag, i, size)[0]


def tls():
    # Memory, not certificates: the guest's is self-signed for its own name at first boot.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ---------------------------------------------------------------- the two kinds of server


class HostServer:
    """The host build, run as bench.py's Letterbox; /proc read directly."""

    def __init__(self, binary, work):
        self.server = Letterbox(binary, work, name="host", imaps=True, limits=HOST_LIMITS)

    def start(self):
        self.server.start()
        self.ports = {"smtp": self.server.smtp_port, "pop3s": self.server.pop3s_port,
                      "imaps": self.server.imaps_port}
        self.pid = self.server.proc.pid

    def status(self):
        st = read_status_full(f"/proc/{self.pid}/status")
        if st is None:
            raise BenchError("letterbox on the host is gone")
        return st

    def reset_hwm(self):
        reset_hwm(self.pid)

    def stop(self):
        self.server.stop()


def read_status_full(path):
    """VmRSS, RssAnon, RssFile, RssShmem and VmHWM (KiB), and Threads, from a /proc/PID/status
    file."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    return parse_status(text)


def parse_status(text):
    out = {}
    for key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
        m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
        if m:
            out[key] = int(m.group(1))
    # Each thread has a stack of its own: the blocking pool's threads, started for bursts of
    # work and kept a while after, count in VmRSS too.
    m = re.search(r"^Threads:\s+(\d+)$", text, re.M)
    if m:
        out["Threads"] = int(m.group(1))
    return out


class GuestServer:
    """The SD image booted under QEMU; /proc read on its debug console."""

    def __init__(self, image, work):
        self.image = image
        self.work = work
        self.vm = None

    def start(self):
        os.makedirs(self.work, exist_ok=True)
        img = os.path.join(self.work, "sd.img")
        qemu.sh("cp", "--sparse=always", self.image, img)
        os.truncate(img, 1 << 30)
        boot_start = qemu.partitions(img)[0][0]
        for name in ("vmlinuz", "initrd.gz"):
            if not qemu.boot_file(img, boot_start, name, os.path.join(self.work, name)):
                raise BenchError(f"{name} is not on {self.image}'s boot partition")
        with open(os.path.join(self.work, "letterbox.toml"), "w") as f:
            f.write(GUEST_CONFIG)
        with open(os.path.join(self.work, "letterbox-users.txt"), "w") as f:
            f.write(f"{USER} {PASSWORD}\n")
        for name in ("letterbox.toml", "letterbox-users.txt"):
            qemu.put_boot_file(img, boot_start, os.path.join(self.work, name))
        self.vm = qemu.Vm(img, os.path.join(self.work, "vmlinuz"),
                          os.path.join(self.work, "initrd.gz"), "memory", self.work, debug=True)
        try:
            self.vm.wait_for_smtp()
        except qemu.Failed as e:
            raise BenchError(str(e))
        self.ports = {"smtp": self.vm.ports[25], "pop3s": self.vm.ports[995],
                      "imaps": self.vm.ports[993]}
        self.pid = self.console("pidof letterbox").split()[-1]
        if not self.pid.isdigit():
            raise BenchError(f"no letterbox pid in the guest: {self.pid!r}")
        kernel = re.search(r"\d+\.\d+\S*", self.console("uname -r"))
        self.kernel = kernel.group(0) if kernel else "?"

    def console(self, command):
        try:
            return self.vm.console_run(command, timeout=60)
        except qemu.Failed as e:
            raise BenchError(str(e))

    def status(self):
        st = parse_status(self.console(f"cat /proc/{self.pid}/status"))
        if "VmRSS" not in st:
            raise BenchError(f"the guest did not report /proc/{self.pid}/status:\n{self.vm.tail()}")
        return st

    def reset_hwm(self):
        self.console(f"echo 5 > /proc/{self.pid}/clear_refs")

    def stop(self):
        if self.vm:
            self.vm.kill()


# ---------------------------------------------------------------- clients


def deliver(port, messages, clients=SMTP_CLIENTS):
    """Sends `messages` over `clients` connections at once; returns the wall seconds."""
    todo = list(enumerate(messages))
    lock = threading.Lock()
    errors = []

    def worker():
        try:
            with smtplib.SMTP("127.0.0.1", port, local_hostname="bench.example.org",
                              timeout=IO_TIMEOUT) as s:
                while True:
                    with lock:
                        if not todo:
                            return
                        _, msg = todo.pop()
                    refused = s.sendmail(SENDER, [USER], msg)
                    if refused:
                        raise BenchError(f"refused: {refused}")
        except Exception as e:  # reported after the join
            errors.append(repr(e))

    start = time.perf_counter()
    run_threads(worker, clients)
    if errors:
        raise BenchError(f"SMTP failed: {errors[:3]}")
    return time.perf_counter() - start


def run_threads(fn, n):
    threads = [threading.Thread(target=fn) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class Imap:
    """A minimal IMAPS client that counts the octets it reads (literals included)."""

    def __init__(self, port):
        raw = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.sock = tls().wrap_socket(raw)
        self.file = self.sock.makefile("rb", buffering=1 << 16)
        self.octets = 0
        self.tag = 0
        if not self.file.readline().startswith(b"* OK"):
            raise BenchError("no IMAP greeting")

    def command(self, text):
        self.tag += 1
        tag = f"a{self.tag}".encode()
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        while True:
            line = self.file.readline()
            if not line:
                raise BenchError(f"IMAP connection closed during {text!r}")
            self.octets += len(line)
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                n = int(m.group(1))
                self.octets += len(self.file.read(n))
                continue
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise BenchError(f"IMAP {text.split()[0]}: {line!r}")
                return

    def close(self):
        try:
            self.command("LOGOUT")
        finally:
            self.sock.close()


def imap_login(port):
    m = Imap(port)
    m.command(f'LOGIN "{USER}" "{PASSWORD}"')
    m.command("SELECT INBOX")
    return m


def pop3_read_all(port):
    """RETR of every message over POP3S; returns the octets read."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    s = tls().wrap_socket(raw)
    f = s.makefile("rb", buffering=1 << 16)
    octets = 0

    def ok(cmd=None):
        if cmd:
            s.sendall(cmd.encode() + b"\r\n")
        line = f.readline()
        if not line.startswith(b"+OK"):
            raise BenchError(f"POP3 {cmd}: {line!r}")
        return line

    try:
        ok()
        ok(f"USER {USER}")
        ok(f"PASS {PASSWORD}")
        count = int(ok("STAT").split()[1])
        for i in range(1, count + 1):
            ok(f"RETR {i}")
            for line in iter(f.readline, b".\r\n"):
                if not line:
                    raise BenchError("POP3 connection closed during RETR")
                octets += len(line)
        ok("QUIT")
    finally:
        s.close()
    return octets


def mixed_load(ports, load_messages):
    """IMAP readers, POP3 readers and SMTP senders at once; returns (wall s, octets read)."""
    read = []
    errors = []
    lock = threading.Lock()

    def imap_reader():
        try:
            for _ in range(IMAP_ROUNDS):
                m = imap_login(ports["imaps"])
                m.command("FETCH 1:* (FLAGS ENVELOPE)")
                m.command("FETCH 1:* BODY.PEEK[]")
                m.close()
                with lock:
                    read.append(m.octets)
        except Exception as e:  # reported after the join
            errors.append(repr(e))

    def pop3_reader():
        try:
            for _ in range(POP3_ROUNDS):
                octets = pop3_read_all(ports["pop3s"])
                with lock:
                    read.append(octets)
        except Exception as e:  # reported after the join
            errors.append(repr(e))

    def sender():
        try:
            deliver(ports["smtp"], load_messages)
        except Exception as e:  # reported after the join
            errors.append(repr(e))

    threads = ([threading.Thread(target=imap_reader) for _ in range(IMAP_SESSIONS)]
               + [threading.Thread(target=pop3_reader)]
               + [threading.Thread(target=sender)])
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise BenchError(f"mixed load failed: {errors[:3]}")
    return wall, sum(read)


# ---------------------------------------------------------------- one server


def measure(name, server, seed, load):
    r = {"name": name}
    log(f"{name}: starting")
    t0 = time.perf_counter()
    server.start()
    r["start"] = time.perf_counter() - t0
    time.sleep(SETTLE)
    r["idle"] = server.status()
    log(f"{name}: idle {r['idle']}")
    server.reset_hwm()
    imap_login(server.ports["imaps"]).close()  # argon2 once; the login cache serves the rest
    r["login"] = server.status()
    log(f"{name}: first login {r['login']}")

    r["seed_wall"] = deliver(server.ports["smtp"], seed)
    log(f"{name}: {len(seed)} deliveries in {r['seed_wall']:.1f} s")

    time.sleep(SETTLE)
    r["before_sessions"] = server.status()
    sessions = []
    try:
        for _ in range(IDLE_SESSIONS):
            sessions.append(imap_login(server.ports["imaps"]))
        time.sleep(SETTLE)
        r["with_sessions"] = server.status()
    finally:
        for m in sessions:
            m.close()
    time.sleep(SETTLE)
    r["after_sessions"] = server.status()
    log(f"{name}: {IDLE_SESSIONS} idle sessions {r['with_sessions']}, after {r['after_sessions']}")

    server.reset_hwm()
    r["load_wall"], r["load_read"] = mixed_load(server.ports, load)
    r["load"] = server.status()
    log(f"{name}: mixed load {r['load_wall']:.1f} s, {r['load_read'] >> 20} MiB read; {r['load']}")
    time.sleep(SETTLE)
    r["after_load"] = server.status()
    return r


# ---------------------------------------------------------------- report


def report(results, seed, commit, loadavg, host_binary, images, guest_kernel):
    def per_session(r, field="VmRSS"):
        if field not in r["with_sessions"] or field not in r["before_sessions"]:
            return "not reported"
        d = r["with_sessions"][field] - r["before_sessions"][field]
        return f"{d / IDLE_SESSIONS:.0f} KiB"

    def st(key, field):
        return lambda r: mib(r[key][field]) if field in r[key] else "not reported"

    total_seed = sum(len(m) for m in seed)
    rows = [
        ("idle after start: VmRSS (RssAnon)",
         lambda r: f"{mib(r['idle']['VmRSS'])} ({mib(r['idle'].get('RssAnon', 0))})"),
        ("idle after start: VmHWM", st("idle", "VmHWM")),
        ("peak of the first login (argon2id), VmHWM", st("login", "VmHWM")),
        ("VmRSS after the deliveries, no session open", st("before_sessions", "VmRSS")),
        (f"VmRSS, {IDLE_SESSIONS} idle IMAPS sessions (SELECTed)", st("with_sessions", "VmRSS")),
        ("**per IMAPS session**", per_session),
        # The heap and stacks alone: what the allocator decides. VmRSS also counts the program's
        # own pages that the first TLS sessions touch (code, read-only data), once per process.
        ("per IMAPS session, RssAnon only", lambda r: per_session(r, "RssAnon")),
        ("threads: no session open / the sessions open",
         lambda r: f"{r['before_sessions'].get('Threads', '?')} / "
         f"{r['with_sessions'].get('Threads', '?')}"),
        (f"VmRSS after the {IDLE_SESSIONS} logged out", st("after_sessions", "VmRSS")),
        ("**peak during the mixed load (VmHWM)**", st("load", "VmHWM")),
        ("VmRSS (RssAnon) a few seconds after the mixed load",
         lambda r: f"{mib(r['after_load']['VmRSS'])} ({mib(r['after_load'].get('RssAnon', 0))})"),
        (f"{len(seed)} deliveries over SMTP, {SMTP_CLIENTS} clients",
         lambda r: f"{len(seed) / r['seed_wall']:.1f} msg/s"),
        ("mixed load: wall time", lambda r: f"{r['load_wall']:.1f} s"),
        ("mixed load: octets read by the clients per second",
         lambda r: f"{r['load_read'] / r['load_wall'] / 1048576:.2f} MiB/s"),
        ("start to the SMTP banner", lambda r: f"{r['start']:.1f} s"),
    ]
    out = report_head(" — memory of the shipped binary (`bench/run memory`)", commit, loadavg)
    out += [
        f"- Host: {host_binary}, x86-64 glibc, 127.0.0.1 only, as `bench/run` runs it.",
        f"- Images: {images}.",
        f"- Guest: the SD image under qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 2 -m 512 "
        "(TCG emulation: every guest figure of speed is emulated, so compare the guest "
        f"columns with each other, not with the host); Linux {guest_kernel}. /proc/<pid>/status "
        "read on the debug console; VmHWM reset through clear_refs before the mixed load.",
        f"- Load: {len(seed)} messages delivered first ({total_seed >> 10} KiB; 4-16 KiB, "
        f"every {LARGE_EVERY}th {LARGE_SIZE >> 10} KiB) from {SMTP_CLIENTS} SMTP clients; "
        f"then {IDLE_SESSIONS} IMAPS sessions logged in, INBOX selected, idle; then at once "
        f"{IMAP_SESSIONS} IMAPS sessions × {IMAP_ROUNDS} rounds of LOGIN, SELECT, FETCH 1:* "
        f"(FLAGS ENVELOPE), FETCH 1:* BODY.PEEK[], LOGOUT; one POP3S session after another "
        f"({POP3_ROUNDS}) RETRieving everything; {LOAD_COUNT} more deliveries.",
        "",
        "| | " + " | ".join(r["name"] for r in results) + " |",
        "|---|" + "---|" * len(results),
    ]
    for label, fn in rows:
        out.append(f"| {label} | " + " | ".join(fn(r) for r in results) + " |")
    out += [
        "",
        "How to read it: VmRSS is what the process holds in RAM; RssAnon is its heap and "
        "stacks, the part the allocator decides. The rest is the program's own pages: in the "
        "guest the static binary in the initramfs (counted as shared memory), on the host the "
        "binary and glibc's shared libraries. The per-session figure is the difference of two "
        "VmRSS readings divided by the sessions, so memory an allocator kept from earlier work "
        "and hands out again shows as a small or even negative cost; the RssAnon row leaves out "
        "the program's own pages (code the first TLS sessions run, counted once per process). "
        "One run each; the clients "
        "and QEMU share the 2 cores with other work, so speed moves a lot between runs.",
        "",
    ]
    return "\n".join(out)


def main():
    ap = arguments(__doc__)
    ap.add_argument("--image", action="append", default=[], metavar="LABEL=PATH",
                    help="an SD image to boot and measure (repeatable)")
    args = ap.parse_args()
    loadavg = check_start(args, "memory.py", "QEMU and a Letterbox daemon")
    for tool in ("qemu-system-aarch64", "mcopy"):
        if not shutil.which(tool):
            raise BenchError(f"{tool} is missing (bash .ci/install)")
    images = []
    for spec in args.image:
        label, sep, path = spec.partition("=")
        if not sep or not os.path.exists(path):
            raise BenchError(f"--image {spec!r}: want LABEL=PATH to an existing image")
        images.append((label, os.path.abspath(path)))
    if not images:
        raise BenchError("no --image given")

    seed = [message(i, "seed") for i in range(SEED_COUNT)]
    load = [message(i, "load") for i in range(LOAD_COUNT)]
    results, guest_kernel = [], "?"
    for n, (label, path) in enumerate(images):
        server = GuestServer(path, os.path.join(args.work, f"guest-{n}"))
        try:
            r = measure(f"{label} (in QEMU)", server, seed, load)
            guest_kernel = server.kernel
        finally:
            server.stop()
        results.append(r)
    server = HostServer(args.letterbox, args.work)
    try:
        results.append(measure("x86-64 glibc (host)", server, seed, load))
    finally:
        server.stop()
    host = f"`{os.path.basename(args.letterbox)}` ({os.path.getsize(args.letterbox)} bytes)"
    stamp = lambda path: time.strftime("%Y-%m-%d %H:%M", time.gmtime(os.path.getmtime(path)))
    made = "; ".join(f"{label}: `{path}` made {stamp(path)} UTC" for label, path in images)
    publish(report(results, seed, args.commit, loadavg, host, made, guest_kernel), args.results)


if __name__ == "__main__":
    run_main(main, "memory.py")
