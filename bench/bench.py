#!/usr/bin/env python3
"""Benchmark driver for Letterbox against a Postfix + Dovecot reference.

Started by `bench/run` (which installs the packages and builds the binary); it can also be
run directly as root:  python3 bench/bench.py --letterbox target/release/letterbox --work DIR

Everything listens on 127.0.0.1 only. For Letterbox (default config), Letterbox with a
1 MiB redb cache, and the reference, it measures:
  1. 500 messages of ~4 KiB over SMTP from 8 concurrent smtplib clients (each client keeps
     its connection): messages/s and p50/p99 latency per message (MAIL..250 after DATA);
  2. one 20 MiB message over SMTP, then the same message downloaded over POP3S (RETR);
     then a second 20 MiB message, SMTP + RETR, and four more, for memory only;
  3. memory: peak RSS (VmHWM) per step, reset at the start of each step through
     /proc/PID/clear_refs, and Letterbox's VmHWM over the whole run; for the reference,
     summed over every Postfix and Dovecot process seen during the step (sampled every
     100 ms).
and appends a markdown section to the results file.

It is also the home of what bench/imap_scale.py shares with it (it imports them from here):
the Letterbox server, the memory meter, the private Dovecot's config, the command line and
the report's first lines. Importing it has no side effects.
"""

import argparse
import hashlib
import math
import os
import poplib
import queue
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time

USER = "alice@home.test"
PASSWORD = "bench password 1"
SENDER = "bench@example.org"
N_SMALL = 500
CLIENTS = 8
SMALL_SIZE = 4 * 1024
LARGE_SIZE = 20 * 1024 * 1024
# Further 20 MiB SMTP + RETR rounds after the first two, to see memory level off.
EXTRA_LARGE_ROUNDS = 4
IO_TIMEOUT = 120


class BenchError(Exception):
    pass


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- messages


def make_message(tag, index, size):
    """An RFC 5322 message of about `size` octets (CRLF line ends, 76-octet body lines).

    Returns (message bytes, body bytes) so that a download can be checked against the body.
    """
    header = (
        f"From: Bench <{SENDER}>\r\n"
        f"To: Alice <{USER}>\r\n"
        f"Subject: letterbox bench {tag} {index}\r\n"
        f"Message-ID: <{tag}.{index}.{os.getpid()}@bench.example.org>\r\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
    ).encode()
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    lines = []
    remaining = max(size - len(header), 78)
    n = 0
    while remaining > 0:
        k = (n * 7 + index) % 64
        line = b"%08d " % n + (alphabet[k:] + alphabet[:k] + alphabet)[:67]
        lines.append(line)
        remaining -= len(line) + 2
        n += 1
    body = b"\r\n".join(lines) + b"\r\n"
    return header + body, body


# ---------------------------------------------------------------- clients


class POP3TLS(poplib.POP3):
    """POP3 over implicit TLS to 127.0.0.1, verifying the certificate for `localhost`."""

    def __init__(self, port, cafile):
        self._ctx = ssl.create_default_context(cafile=cafile)
        super().__init__("127.0.0.1", port, timeout=IO_TIMEOUT)

    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout)
        return self._ctx.wrap_socket(sock, server_hostname="localhost")


def smtp_connect(port):
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.example.org", timeout=IO_TIMEOUT)
    s.ehlo()
    return s


def send_one(s, msg):
    refused = s.sendmail(SENDER, [USER], msg)
    if refused:
        raise BenchError(f"recipient refused: {refused}")


def smtp_burst(port, messages, clients=CLIENTS):
    """Sends `messages` over `clients` connections; returns (wall seconds, per-message latencies)."""
    latencies = [None] * len(messages)
    work = queue.Queue()
    for i in range(len(messages)):
        work.put(i)
    errors = []

    def worker():
        try:
            s = smtp_connect(port)
            try:
                while True:
                    try:
                        i = work.get_nowait()
                    except queue.Empty:
                        break
                    t0 = time.perf_counter()
                    send_one(s, messages[i])
                    latencies[i] = time.perf_counter() - t0
            finally:
                try:
                    s.quit()
                except Exception:
                    pass
        except Exception as e:  # reported after the join
            errors.append(repr(e))

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise BenchError(f"SMTP clients failed: {errors[:3]}")
    if any(x is None for x in latencies):
        raise BenchError("some messages were not sent")
    return wall, latencies


def percentile(values, p):
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def pop3_login(port, cafile):
    p = POP3TLS(port, cafile)
    p.user(USER)
    p.pass_(PASSWORD)
    return p


def body_of(lines):
    """The body of a RETR answer (poplib has already undone the dot-stuffing)."""
    try:
        blank = lines.index(b"")
    except ValueError:
        raise BenchError("downloaded message has no header/body separator")
    return b"\r\n".join(lines[blank + 1 :]) + b"\r\n"


# ---------------------------------------------------------------- memory


def read_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("Name", "VmHWM", "VmRSS"):
                    out[key] = value.strip()
    except OSError:
        return None
    return out


def kib(value):
    return int(value.split()[0]) if value else 0


def reset_hwm(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def descendants(roots):
    """The pids of `roots` and all their descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [r for r in roots if r]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


class MemoryMeter:
    """Peak RSS per phase of a process tree.

    begin() resets VmHWM of every live process in the tree; end() returns the sum over the
    processes seen during the phase of each one's VmHWM (processes that come and go, such as
    Postfix's delivery agents or Dovecot's pop3 process, are caught by a 100 ms sampler).
    With a single long-lived process (Letterbox) this is exactly that process's VmHWM.
    """

    def __init__(self, roots, tree=True, interval=0.1):
        self.roots = roots
        self.tree = tree
        self.interval = interval
        self.peaks = {}
        self.lifetime_kib = 0  # the sum's VmHWM as if never reset (meaningful for one process)
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.thread = None
        if tree:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()

    def _pids(self):
        return descendants(self.roots) if self.tree else list(self.roots)

    def sample(self):
        for pid in self._pids():
            st = read_status(pid)
            if not st or "VmHWM" not in st:
                continue
            with self.lock:
                name, peak = self.peaks.get(pid, (st.get("Name", "?"), 0))
                self.peaks[pid] = (name, max(peak, kib(st["VmHWM"])))

    def _run(self):
        while not self.stop_event.wait(self.interval):
            self.sample()

    def current(self):
        """Sum of VmHWM of the live processes, without resetting anything."""
        return sum(kib((read_status(p) or {}).get("VmHWM")) for p in self._pids())

    def lifetime(self):
        """VmHWM since start, as if it had never been reset: the value read before each reset
        covers everything since the previous one."""
        self.lifetime_kib = max(self.lifetime_kib, self.current())
        return self.lifetime_kib

    def begin(self):
        self.lifetime()
        for pid in self._pids():
            reset_hwm(pid)
        with self.lock:
            self.peaks = {}
        self.sample()

    def end(self):
        self.lifetime()
        self.sample()
        with self.lock:
            total = sum(peak for _, peak in self.peaks.values())
            biggest = max(self.peaks.values(), key=lambda x: x[1], default=("-", 0))
            count = len(self.peaks)
        return {"kib": total, "procs": count, "biggest": biggest}

    def close(self):
        self.stop_event.set()
        if self.thread:
            self.thread.join(timeout=2)


# ---------------------------------------------------------------- servers


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_port(port, what, deadline=30):
    end = time.time() + deadline
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"{what} is not listening on 127.0.0.1:{port} after {deadline} s")


def run(cmd, what, input=None, timeout=120):
    r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise BenchError(f"{what} failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r.stdout


def start_daemon(cmd, what, output):
    """Runs a command that forks a daemon; its output goes to a file, since the daemon's
    children would keep a pipe open."""
    with open(output, "ab") as out:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=120)
    if r.returncode != 0:
        raise BenchError(f"{what} failed ({r.returncode}): {' '.join(cmd)}\n{tail(output)}")


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


class Letterbox:
    def __init__(self, binary, work, name="Letterbox", limits="", imaps=False, submission=False):
        self.name = name
        self.limits = limits
        self.imaps = imaps
        self.submission = submission
        self.binary = os.path.abspath(binary)
        self.dir = os.path.join(work, re.sub(r"[^a-z0-9]+", "-", name.lower()))
        self.data = os.path.join(self.dir, "data")
        self.config = os.path.join(self.dir, "letterbox.toml")
        self.logfile = os.path.join(self.dir, "letterbox.log")
        self.pidfile = os.path.join(self.dir, "letterbox.pid")
        self.proc = None
        self.ports = {}

    def start(self, add_user=True):
        """Starts the daemon on the data directory (new, or kept from a previous start) and,
        with `add_user`, creates the benchmark account."""
        os.makedirs(self.dir, exist_ok=True)
        self.ports = {}
        imaps = '["127.0.0.1:0"]' if self.imaps else "[]"
        submission = '["127.0.0.1:0"]' if self.submission else "[]"
        with open(self.config, "w") as f:
            f.write(
                f"""hostname = "localhost"
domains = ["home.test"]
data_dir = "{self.data}"
[listen]
smtp = ["127.0.0.1:0"]
submission = {submission}
submissions = []
pop3 = ["127.0.0.1:0"]
pop3s = ["127.0.0.1:0"]
imap = []
imaps = {imaps}
web = []
web_tls = []
# No SPF/DKIM/DMARC lookups: this sandbox has no working DNS, and the reference Postfix
# checks none either, so both measure receiving and storing alone.
[auth]
check_inbound = false
# No spam checks either: greylisting would ask the first message to come back later, the
# rate limits would cut the run short, and the DNS lists need DNS.
[spam]
greylisting = false
dnsbl = []
dnswl = []
pregreet_wait = 0
rate_limits = false
"""
                + (f"[limits]\n{self.limits}\n" if self.limits else "")
            )
        logf = open(self.logfile, "wb")
        self.proc = subprocess.Popen(
            [self.binary, "--config", self.config, "run"],
            stdout=subprocess.PIPE,
            stderr=logf,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        logf.close()
        with open(self.pidfile, "w") as f:
            f.write(str(self.proc.pid))
        lines = queue.Queue()

        def reader():
            for line in self.proc.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        threading.Thread(target=reader, daemon=True).start()
        deadline = time.time() + 60
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                raise BenchError(f"letterbox printed no 'ready' in 60 s; log:\n{tail(self.logfile)}")
            if line is None:
                raise BenchError(f"letterbox exited ({self.proc.wait()}); log:\n{tail(self.logfile)}")
            m = re.match(r"listening (\S+) 127\.0\.0\.1:(\d+)$", line)
            if m:
                self.ports[m.group(1)] = int(m.group(2))
            elif line.startswith("failed "):
                raise BenchError(f"letterbox: {line}")
            elif line == "ready":
                break
        wanted = ("smtp", "pop3s") + (("imaps",) if self.imaps else ())
        for service in wanted + (("submission",) if self.submission else ()):
            if service not in self.ports:
                raise BenchError(f"letterbox did not report a {service} listener: {self.ports}")
        if add_user:
            run(
                [self.binary, "--config", self.config, "user", "add", USER, "--password-stdin"],
                "letterbox user add",
                input=PASSWORD + "\n",
            )
        self.smtp_port = self.ports["smtp"]
        self.pop3s_port = self.ports["pop3s"]
        self.imaps_port = self.ports.get("imaps")
        self.submission_port = self.ports.get("submission")
        self.cafile = os.path.join(self.data, "tls", "cert.pem")
        if not os.path.exists(self.cafile):
            raise BenchError(f"no certificate at {self.cafile}")
        self.meter = MemoryMeter([self.proc.pid], tree=False)

    def delivered(self):
        return None  # 250 is sent only once the message is durably in the store

    def stop(self):
        if getattr(self, "meter", None):
            self.meter.close()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if os.path.exists(self.pidfile):
            os.unlink(self.pidfile)

    def describe(self):
        if self.limits:
            return f"the same with `[limits] {self.limits}`"
        return "release build, the config in README.md's Benchmarks section (every `[limits]` key at its default; `[auth] check_inbound = false`; `[spam]` checks off)"


def dovecot_secrets(dc):
    """A self-signed certificate for `localhost` and a passwd-file with the benchmark user, in
    the Dovecot directory `dc`; returns (cert, key) paths (the passwd file is `dc`/passwd)."""
    cert, key = os.path.join(dc, "cert.pem"), os.path.join(dc, "key.pem")
    run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        "openssl req",
    )
    hashed = run(["doveadm", "pw", "-s", "SHA512-CRYPT", "-p", PASSWORD], "doveadm pw").strip()
    with open(os.path.join(dc, "passwd"), "w") as f:
        f.write(f"{USER}:{hashed}\n")
    return cert, key


def dovecot_version():
    return run(["dovecot", "--version"], "dovecot --version").split()[0]


def write_dovecot_conf(dc, mail, protocol, ports, instance, extra="", lmtp=False):
    """Writes `dc`/dovecot.conf for a private Dovecot instance serving `protocol` ("pop3" or
    "imap") on 127.0.0.1 from the Maildirs under `mail` (uid nobody), with a passwd-file and a
    certificate made by dovecot_secrets(dc), which it calls; `ports` is (plain port, TLS port),
    0 for none; `extra` is appended to the config. Logs go to `dc`/dovecot.log. With `lmtp`, it
    also serves LMTP on the socket `dc`/run/lmtp. Returns the certificate's path (the clients'
    cafile)."""
    cert, key = dovecot_secrets(dc)
    plain, tls = ports
    dh = "/usr/share/dovecot/dh.pem"
    with open(os.path.join(dc, "dovecot.conf"), "w") as f:
        f.write(
            f"""# Letterbox benchmark reference: a private Dovecot instance
protocols = {protocol}{' lmtp' if lmtp else ''}
listen = 127.0.0.1
base_dir = {dc}/run
state_dir = {dc}/state
instance_name = {instance}
log_path = {dc}/dovecot.log
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
{f'ssl_dh = <{dh}' if os.path.exists(dh) else ''}
mail_location = maildir:{mail}/%d/%n/Maildir
passdb {{
  driver = passwd-file
  args = scheme=SHA512-CRYPT username_format=%u {dc}/passwd
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={mail}/%d/%n
}}
service {protocol}-login {{
  inet_listener {protocol} {{
    port = {plain}
  }}
  inet_listener {protocol}s {{
    port = {tls}
    ssl = yes
  }}
}}
{extra}"""
            + (
                f"""service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
"""
                if lmtp
                else ""
            )
        )
    return cert


class Reference:
    """Postfix (virtual(8) delivery into a Maildir) + Dovecot POP3 on that Maildir.

    Both run as separate instances from config directories under the work directory, on free
    high ports on 127.0.0.1; the system instances are not touched. With `lmtp`, Postfix hands
    the mail to Dovecot's LMTP service, which writes the Maildir (and Dovecot's index files).
    """

    name = "Postfix + Dovecot"

    def __init__(self, work, submission=False, lmtp=False):
        """With `submission`, Postfix also serves port-587-style submission (STARTTLS required,
        AUTH through Dovecot's auth socket) on `submission_port`; with `lmtp`, Dovecot serves
        LMTP for Postfix to deliver through."""
        self.submission = submission
        self.lmtp = lmtp
        self.dir = os.path.join(work, "reference")
        self.pf = os.path.join(self.dir, "postfix")
        self.dc = os.path.join(self.dir, "dovecot")
        self.mail = os.path.join(self.dir, "mail")
        self.maildir = os.path.join(self.mail, "home.test", "alice", "Maildir")
        self.started_pf = self.started_dc = False

    def start(self):
        for tool in ("postfix", "postconf", "dovecot", "doveadm", "openssl"):
            if not shutil.which(tool):
                raise BenchError(f"{tool} not found (bench/run installs postfix, dovecot-pop3d)")
        self.smtp_port, self.pop3_port, self.pop3s_port, self.submission_port = free_ports(4)
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(os.path.dirname(self.dir), 0o755)
        os.chmod(self.dir, 0o755)
        conf, qdir, data = (os.path.join(self.pf, d) for d in ("conf", "queue", "data"))
        for d in (conf, qdir, data, self.mail, self.dc, os.path.join(self.dc, "run"), os.path.join(self.dc, "state")):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.pf, 0o755)
        shutil.chown(data, "postfix")
        shutil.chown(self.mail, "nobody", "nogroup")
        self.pf_log = os.path.join(self.pf, "postfix.log")
        with open(os.path.join(conf, "main.cf"), "w") as f:
            f.write(
                f"""# Letterbox benchmark reference: a private Postfix instance
compatibility_level = 3.6
myhostname = localhost
mydomain = localdomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
queue_directory = {qdir}
data_directory = {data}
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = home.test
virtual_mailbox_base = {self.mail}
virtual_mailbox_maps = texthash:{conf}/vmailbox
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
message_size_limit = 52428800
virtual_mailbox_limit = 0
alias_maps =
alias_database =
biff = no
maillog_file_prefixes = {self.dir}
maillog_file = {self.pf_log}
smtpd_tls_cert_file = {self.dc}/cert.pem
smtpd_tls_key_file = {self.dc}/key.pem
"""
                + (f"virtual_transport = lmtp:unix:{self.dc}/run/lmtp\n" if self.lmtp else "")
            )
        with open(os.path.join(conf, "vmailbox"), "w") as f:
            f.write(f"{USER} home.test/alice/Maildir/\n")
        with open(os.path.join(conf, "master.cf"), "w") as f:
            f.write(
                f"""# Debian's default services, without chroot (the queue is not under /var/spool)
127.0.0.1:{self.smtp_port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
            )
            if self.submission:
                f.write(
                    f"127.0.0.1:{self.submission_port} inet n - n - - smtpd"
                    " -o smtpd_tls_security_level=encrypt -o smtpd_sasl_auth_enable=yes"
                    " -o smtpd_sasl_type=dovecot -o smtpd_sasl_path=private/auth"
                    " -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n"
                )
        self.pf_conf = conf
        self.pf_pidfile = os.path.join(qdir, "pid", "master.pid")
        run(["postfix", "-c", conf, "check"], "postfix check")
        self.started_pf = True
        start_daemon(["postfix", "-c", conf, "start"], f"postfix start (log: {self.pf_log})",
                     os.path.join(self.pf, "start.out"))

        # Dovecot: POP3 only, passwd-file, the Maildir Postfix delivers into; with submission
        # also the SASL socket Postfix asks.
        auth = (
            f"auth_mechanisms = plain login\nservice auth {{\n"
            f"  unix_listener {qdir}/private/auth {{\n    mode = 0660\n    user = postfix\n"
            f"    group = postfix\n  }}\n}}\n"
        )
        cert = write_dovecot_conf(self.dc, self.mail, "pop3", (self.pop3_port, self.pop3s_port),
                                  "letterbox-bench", extra=auth if self.submission else "",
                                  lmtp=self.lmtp)
        self.dc_log = os.path.join(self.dc, "dovecot.log")
        self.dc_conf = os.path.join(self.dc, "dovecot.conf")
        self.started_dc = True
        start_daemon(["dovecot", "-c", self.dc_conf], f"dovecot start (log: {self.dc_log})",
                     os.path.join(self.dc, "start.out"))
        wait_port(self.smtp_port, f"postfix (log: {self.pf_log})")
        wait_port(self.pop3s_port, f"dovecot (log: {self.dc_log})")
        self.cafile = cert
        dc_pidfile = os.path.join(self.dc, "run", "master.pid")
        deadline = time.time() + 15
        roots = [read_pid(self.pf_pidfile), read_pid(dc_pidfile)]
        while not all(roots) and time.time() < deadline:
            time.sleep(0.1)
            roots = [read_pid(self.pf_pidfile), read_pid(dc_pidfile)]
        if not all(roots):
            raise BenchError(f"cannot find the Postfix/Dovecot master pids: {roots}")
        self.meter = MemoryMeter(roots, tree=True)

    def delivered(self):
        n = 0
        for sub in ("new", "cur"):
            try:
                n += len(os.listdir(os.path.join(self.maildir, sub)))
            except FileNotFoundError:
                pass
        return n

    def stop(self):
        if getattr(self, "meter", None):
            self.meter.close()
        if self.started_pf:
            subprocess.run(["postfix", "-c", self.pf_conf, "stop"], capture_output=True)
        if self.started_dc:
            subprocess.run(["doveadm", "-c", self.dc_conf, "stop"], capture_output=True)

    def describe(self):
        pf = run(["postconf", "-d", "-h", "mail_version"], "postconf").strip()
        dc = dovecot_version()
        return (
            f"Postfix {pf} and Dovecot {dc} (Debian packages) as private instances on free "
            "127.0.0.1 ports. Postfix: `mydestination` empty, `home.test` a virtual(8) mailbox "
            "domain delivering `alice@home.test` to a Maildir (uid nobody), `message_size_limit` "
            "50 MiB, `virtual_mailbox_limit` 0, no chroot, log to a file; everything else default "
            "(its 250 comes after the queue file is fsynced; virtual(8) fsyncs each Maildir file "
            "before it counts as delivered). Dovecot: POP3/POP3S only, passwd-file (SHA512-CRYPT) "
            "+ static userdb on that Maildir, RSA-2048 self-signed certificate, defaults otherwise "
            "(`mail_fsync = optimized`)."
        )


# ---------------------------------------------------------------- the phases


def wait_delivered(server, count, deadline=120):
    end = time.time() + deadline
    while server.delivered() < count:
        if time.time() > end:
            raise BenchError(f"{server.name}: only {server.delivered()} of {count} messages delivered")
        time.sleep(0.01)


def retr_newest_large(server, body):
    """Logs in, then RETRs the highest-numbered message of at least LARGE_SIZE octets (timed,
    with the memory phase around the RETR alone), and checks its body."""
    p = pop3_login(server.pop3s_port, server.cafile)
    _, listing, _ = p.list()
    sizes = [tuple(int(x) for x in line.split()[:2]) for line in listing]
    large = [n for n, octets in sizes if octets >= LARGE_SIZE]
    if not large:
        raise BenchError(f"{server.name}: no message of {LARGE_SIZE} octets or more: {sizes[-3:]}")
    server.meter.begin()
    t0 = time.perf_counter()
    _, lines, _ = p.retr(max(large))
    elapsed = time.perf_counter() - t0
    mem = server.meter.end()
    p.quit()
    if hashlib.sha256(body_of(lines)).digest() != hashlib.sha256(body).digest():
        raise BenchError(f"{server.name}: the downloaded 20 MiB body differs from the one sent")
    return elapsed, mem


def send_large(server, msg, expect_delivered):
    """One large message on a fresh connection; returns (time to 250, time to in-mailbox, mem)."""
    s = smtp_connect(server.smtp_port)
    server.meter.begin()
    t0 = time.perf_counter()
    send_one(s, msg)
    to_250 = time.perf_counter() - t0
    in_mailbox = to_250
    if server.delivered() is not None:
        wait_delivered(server, expect_delivered)
        in_mailbox = time.perf_counter() - t0
    mem = server.meter.end()
    s.quit()
    return to_250, in_mailbox, mem


def bench_server(server, small_msgs, large):
    r = {"name": server.name}
    log(f"{server.name}: starting")
    server.start()
    meter = server.meter
    r["mem_start"] = meter.current()

    # 1. 500 x 4 KiB, 8 clients
    log(f"{server.name}: {N_SMALL} x 4 KiB over SMTP, {CLIENTS} clients")
    meter.begin()
    t0 = time.perf_counter()
    wall, lat = smtp_burst(server.smtp_port, small_msgs)
    r["small_in_mailbox"] = wall
    if server.delivered() is not None:
        wait_delivered(server, N_SMALL)
        r["small_in_mailbox"] = time.perf_counter() - t0
    r["mem_small"] = meter.end()
    r["life_small"] = meter.lifetime()
    r["small_wall"] = wall
    r["small_rate"] = N_SMALL / wall
    r["small_p50"] = percentile(lat, 50)
    r["small_p99"] = percentile(lat, 99)
    p = pop3_login(server.pop3s_port, server.cafile)
    count, _ = p.stat()
    p.quit()
    if count != N_SMALL:
        raise BenchError(f"{server.name}: POP3 STAT shows {count} messages, expected {N_SMALL}")
    log(f"{server.name}: {r['small_rate']:.0f} msg/s, p50 {r['small_p50']*1000:.1f} ms, "
        f"p99 {r['small_p99']*1000:.1f} ms")

    # 2. one 20 MiB message over SMTP, then RETR over POP3S
    (msg1, body1), (msg2, body2) = large
    log(f"{server.name}: one 20 MiB message over SMTP, then RETR over POP3S")
    r["large_smtp"], r["large_in_mailbox"], r["mem_large_smtp"] = send_large(server, msg1, N_SMALL + 1)
    r["large_retr"], r["mem_large_retr"] = retr_newest_large(server, body1)
    r["life_large1"] = meter.lifetime()
    log(f"{server.name}: 20 MiB SMTP {r['large_smtp']:.2f} s, RETR {r['large_retr']:.2f} s")

    # 2'. a second 20 MiB message, SMTP + RETR: does memory keep growing?
    log(f"{server.name}: a second 20 MiB message (memory only)")
    _, _, m_smtp = send_large(server, msg2, N_SMALL + 2)
    _, m_retr = retr_newest_large(server, body2)
    r["mem_large2"] = max(m_smtp, m_retr, key=lambda m: m["kib"])
    r["life_large2"] = meter.lifetime()

    # 2''. four more, alternating the two messages: where does memory level off?
    log(f"{server.name}: four more 20 MiB messages (memory only)")
    for i in range(EXTRA_LARGE_ROUNDS):
        msg, body = large[i % 2]
        send_large(server, msg, N_SMALL + 3 + i)
        retr_newest_large(server, body)
    r["life_large6"] = meter.lifetime()
    r["describe"] = server.describe()
    return r


# ---------------------------------------------------------------- report


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return (f"`nproc` {sh(['nproc'])}, {sh(['uname', '-m'])}, {cpu}, "
            f"{mem_kib / 1024 / 1024:.1f} GiB RAM, Linux {sh(['uname', '-r'])}")


def mib(k):
    return f"{k / 1024:.1f} MiB"


def report_head(title, commit, loadavg):
    """The first lines of a results section: heading (the date, then `title`), machine, commit."""
    return [
        f"## {sh(['date', '-u'])}{title}",
        "",
        f"- Machine: {machine()}; load average at the start {loadavg} (the 2 cores are shared "
        "with other work, and the clients run on them too)",
        f"- Letterbox: commit {commit}",
    ]


def report(results, commit, loadavg):
    ms = lambda s: f"{s * 1000:.1f} ms"
    sec = lambda s: f"{s:.2f} s"

    def mem(m):
        if m["procs"] <= 1:
            return mib(m["kib"])
        name, peak = m["biggest"]
        return f"{mib(m['kib'])} ({m['procs']} processes; largest {name} {mib(peak)})"

    def stored(r, key):
        return f"{sec(r[key])} (250 = stored)" if r["letterbox"] else sec(r[key])

    def life(r, key):
        return mib(r[key]) if r["letterbox"] else "—"

    rows = [
        ("**1. 500 × 4 KiB over SMTP, 8 clients**", None),
        ("throughput (to the last 250)", lambda r: f"{r['small_rate']:.0f} msg/s"),
        ("latency per message p50 / p99", lambda r: f"{ms(r['small_p50'])} / {ms(r['small_p99'])}"),
        ("all 500 in the mailbox after", lambda r: stored(r, "small_in_mailbox")),
        ("**2. one 20 MiB message**", None),
        ("SMTP, DATA to 250", lambda r: sec(r["large_smtp"])),
        ("in the mailbox after", lambda r: stored(r, "large_in_mailbox")),
        ("POP3S RETR", lambda r: sec(r["large_retr"])),
        ("**3. peak memory (VmHWM)**", None),
        ("after start and `user add`", lambda r: mib(r["mem_start"])),
        ("peak during phase 1 (500 × 4 KiB, 8 clients)", lambda r: mem(r["mem_small"])),
        ("peak during the 20 MiB SMTP", lambda r: mem(r["mem_large_smtp"])),
        ("peak during the 20 MiB RETR", lambda r: mem(r["mem_large_retr"])),
        ("peak during a second 20 MiB message (SMTP, RETR)", lambda r: mem(r["mem_large2"])),
        ("VmHWM of the process, whole run: after phase 1", lambda r: life(r, "life_small")),
        ("… after the first 20 MiB message (SMTP + RETR)", lambda r: life(r, "life_large1")),
        ("… after the second 20 MiB message", lambda r: life(r, "life_large2")),
        ("… after the sixth 20 MiB message", lambda r: life(r, "life_large6")),
    ]
    names = [r["name"] for r in results]
    out = report_head("", commit, loadavg)
    for r in results:
        out.append(f"- {r['name']}: {r['describe']}")
    out += [
        f"- Clients: Python {sys.version.split()[0]} `smtplib`/`poplib`, 127.0.0.1 only; plain "
        "SMTP (no STARTTLS), POP3 over implicit TLS with the certificate verified; each 20 MiB "
        "body is checked byte for byte after RETR.",
        "",
        "| | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for label, fn in rows:
        out.append(f"| {label} | " + " | ".join("" if fn is None else fn(r) for r in results) + " |")
    lb = results[0]
    out += [
        "",
        f"{lb['name']}'s VmHWM: {mib(lb['life_small'])} after the 4 KiB phase, "
        f"{mib(lb['life_large1'])} after the first 20 MiB message, "
        f"{mib(lb['life_large2'])} after the second, {mib(lb['life_large6'])} after the sixth.",
        "",
        "How to read it: latency is one `sendmail()` call on an open connection (MAIL FROM to "
        "the 250 after DATA); throughput includes the 8 connects. Letterbox answers 250 only "
        "once the message is committed durably to its store; Postfix answers 250 once the "
        "message is durably in its queue and delivers it to the Maildir afterwards, hence the "
        "\"in the mailbox\" rows. \"Peak during\" is VmHWM reset through `/proc/PID/clear_refs` "
        "at the start of that step and read at its end (RETR: after the login, so argon2's "
        "memory is not in it); for the reference it is the sum over every Postfix and Dovecot "
        "process alive in the step (sampled every 100 ms; shared pages counted in each, so an "
        "upper bound). \"Whole run\" is the process's VmHWM as if never reset. The Letterbox "
        "column with `store_cache_size = \"1MiB\"` separates redb's page cache (bounded by that "
        "setting, 16 MiB by default) from what a message itself costs. One run each.",
        "",
    ]
    return "\n".join(out)


def append_results(path, text):
    """Appends a section to the results file, with the file's heading if it is new."""
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    with open(path, "a") as f:
        if new:
            f.write(
                "# Letterbox benchmarks\n\nEach section is one run of `bash bench/run` (SMTP "
                "and POP3) or of `bash bench/run imap-scale` (IMAP on a large mailbox), which "
                "appends it; README.md (\"Benchmarks\") says what is measured.\n\n"
            )
        f.write(text + "\n")


def publish(text, results):
    """Prints the section and appends it to the results file, if there is one."""
    print()
    print(text)
    if results:
        append_results(results, text)
        log(f"appended to {results}")


# ---------------------------------------------------------------- command line


def arguments(doc):
    """The options both benchmarks take (bench/run passes them); a script adds its own."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--letterbox", required=True, help="the letterbox binary")
    ap.add_argument("--work", required=True, help="an empty scratch directory (removed by bench/run)")
    ap.add_argument("--results", help="markdown file to append the results to")
    ap.add_argument("--commit", default="?", help="Letterbox git commit, for the report")
    return ap


def check_start(args, script, starts):
    """Exits unless root (to start the private `starts`) with an executable --letterbox;
    returns the load average, for the report."""
    if os.geteuid() != 0:
        raise SystemExit(f"{script}: must run as root (it starts {starts})")
    if not os.access(args.letterbox, os.X_OK):
        raise SystemExit(f"{script}: {args.letterbox} is not an executable")
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run_main(main, script):
    """Runs `main`, turning a BenchError into one line on stderr and exit status 1."""
    try:
        main()
    except BenchError as e:
        print(f"{script}: error: {e}", file=sys.stderr)
        sys.exit(1)


def main():
    args = arguments(__doc__).parse_args()
    loadavg = check_start(args, "bench.py", "private Postfix and Dovecot instances")

    log("generating messages")
    small = [make_message("small", i, SMALL_SIZE)[0] for i in range(N_SMALL)]
    large = [make_message("large", i, LARGE_SIZE) for i in (1, 2)]
    log(f"small message {len(small[0])} octets, large message {len(large[0][0])} octets")

    servers = [
        Letterbox(args.letterbox, args.work),
        Letterbox(args.letterbox, args.work, name="Letterbox, 1 MiB store cache",
                  limits='store_cache_size = "1MiB"'),
        Reference(args.work),
    ]
    results = []
    for server in servers:
        try:
            r = bench_server(server, small, large)
        finally:
            server.stop()
        r["letterbox"] = isinstance(server, Letterbox)
        results.append(r)
    publish(report(results, args.commit, loadavg), args.results)


if __name__ == "__main__":
    run_main(main, "bench.py")
