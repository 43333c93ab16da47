#!/usr/bin/env python3
"""The abuse suite (issue #16): what an attacker on the Internet would try, on loopback only,
with bounded counts and time. Each scenario starts its own letterbox, attacks it, asserts that
it held, and prints one figure for the README's security section.

    python3 tests/abuse/abuse.py BIN [SCENARIO...]

Scenarios: brute_force throttle_flood floods web_slow_bodies amplification spoofing disk_full (all by
default). Other loopback addresses (127.0.0.x) stand in for other hosts. disk_full mounts a
small tmpfs and needs root; run as another user it fails unless ABUSE_SKIP_ROOT=1.
"""

import imaplib
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

PASSWORD = "correct horse battery"
FIGURES = []


def figure(text):
    FIGURES.append(text)
    print("  FIGURE:", text, flush=True)


class Server:
    """One letterbox daemon on 127.0.0.1 with every mail service on a free port."""

    def __init__(self, binary, limits="", data=None, web=False):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="letterbox-abuse-")
        self.data = data or os.path.join(self.dir, "data")
        self.config = os.path.join(self.dir, "letterbox.toml")
        with open(self.config, "w") as f:
            f.write(f'''hostname = "localhost"
domains = ["home.test"]
data_dir = "{self.data}"

[listen]
smtp = ["127.0.0.1:0"]
submission = ["127.0.0.1:0"]
submissions = ["127.0.0.1:0"]
pop3 = ["127.0.0.1:0"]
pop3s = ["127.0.0.1:0"]
imap = ["127.0.0.1:0"]
imaps = ["127.0.0.1:0"]
web = {'["127.0.0.1:0"]' if web else "[]"}
web_tls = []

[auth]
check_inbound = false

# Port 25's spam checks are tests/spam.rs's business: greylisting and the rate limits would
# answer this suite's deliveries and floods before the defences it measures.
[spam]
greylisting = false
dnsbl = []
dnswl = []
pregreet_wait = 0
rate_limits = false

# No health checks reaching out from a test.
[health]
automatic = false

[limits]
argon2_memory = "1MiB"
{limits}
''')
        self.log = open(os.path.join(self.dir, "letterbox.log"), "wb")
        self.proc = subprocess.Popen([binary, "--config", self.config, "run"],
                                     stdout=subprocess.PIPE, stderr=self.log)
        self.ports = {}
        for line in self.proc.stdout:
            words = line.decode().split()
            if words == ["ready"]:
                break
            if len(words) == 3 and words[0] == "listening":
                self.ports[words[1]] = int(words[2].rsplit(":", 1)[1])
        else:
            raise SystemExit("letterbox exited before ready; log in " + self.log.name)
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        self.cert = os.path.join(self.data, "tls", "cert.pem")

    def cli(self, *args, stdin=None):
        return subprocess.run([self.binary, "--config", self.config, *args], input=stdin,
                              capture_output=True, text=True, check=True).stdout

    def add_user(self, address, admin=False):
        self.cli("user", "add", address, "--password-stdin", *(["--admin"] if admin else []),
                 stdin=PASSWORD + "\n")

    def tls(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        return ctx

    def peak_rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return 0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def at_once(jobs, threads=50):
    """Runs the callables in `jobs` with at most `threads` at a time; returns their results."""
    results = [None] * len(jobs)
    lock = threading.Lock()
    pending = list(enumerate(jobs))

    def worker():
        while True:
            with lock:
                if not pending:
                    return
                i, job = pending.pop()
            try:
                results[i] = job()
            except Exception as e:  # a refused or reset connection is an answer too
                results[i] = "error: " + type(e).__name__
    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return results


def login_attempt(server, source, service, user, password):
    """One login over a login service, from `source`: 'ok', 'failed' (the password was
    checked and was wrong), 'throttled' or 'busy' (no slot: closed at once, on the TLS ports
    before the handshake)."""
    try:
        return login_once(server, source, service, user, password)
    except (ssl.SSLError, ConnectionError, smtplib.SMTPServerDisconnected):
        return "busy"


def login_once(server, source, service, user, password):
    port = server.ports[service]
    raw = socket.create_connection(("127.0.0.1", port), timeout=120, source_address=(source, 0))
    try:
        if service in ("submissions", "submission"):
            s = smtplib.SMTP(timeout=120)
            s.sock = server.tls().wrap_socket(raw, server_hostname="localhost") \
                if service == "submissions" else raw
            s.file = None
            code, banner = s.getreply()
            if code != 220:
                return "busy"
            s.ehlo("client.test")
            if service == "submission":
                s._host = "localhost"
                s.starttls(context=server.tls())
                s.ehlo("client.test")
            s.user, s.password = user, password
            try:
                s.auth("PLAIN", s.auth_plain)
                return "ok"
            except smtplib.SMTPAuthenticationError as e:
                return "failed" if e.smtp_code == 535 else "throttled"
            except smtplib.SMTPException:
                return "throttled"
        if service in ("imap", "pop3"):
            f = raw.makefile("rwb")
            greeting = f.readline()
            if b"BYE" in greeting or greeting.startswith(b"-ERR"):
                return "busy"
            f.write(b"s STARTTLS\r\n" if service == "imap" else b"STLS\r\n")
            f.flush()
            f.readline()
            s = server.tls().wrap_socket(raw, server_hostname="localhost")
            f = s.makefile("rwb")
        else:
            s = server.tls().wrap_socket(raw, server_hostname="localhost")
            f = s.makefile("rwb")
            greeting = f.readline()
            if b"BYE" in greeting or greeting.startswith(b"-ERR"):
                return "busy"
        if service.startswith("imap"):
            f.write(b'a LOGIN "%s" "%s"\r\n' % (user.encode(), password.encode()))
            f.flush()
            while True:
                line = f.readline()
                if line.startswith(b"a ") or not line:
                    break
            ok = line.startswith(b"a OK")
            failed = b"[AUTHENTICATIONFAILED]" in line
        else:
            f.write(b"USER %s\r\n" % user.encode())
            f.flush()
            f.readline()
            f.write(b"PASS %s\r\n" % password.encode())
            f.flush()
            line = f.readline()
            ok = line.startswith(b"+OK")
            failed = b"[AUTH]" in line
        return "ok" if ok else "failed" if failed else "throttled"
    finally:
        raw.close()


LOGIN_SERVICES = ["imaps", "imap", "pop3s", "pop3", "submissions", "submission"]


def brute_force(binary):
    """300 guesses for one account at once, across all six login services, from 10 addresses.
    Figure: how many guesses the server verified; the lockout lasts 15 minutes, so this is the
    number per account per 15 minutes."""
    server = Server(binary, "login_failure_delay = 0")
    try:
        server.add_user("alice@home.test")
        jobs = [(lambda i=i: login_attempt(server, f"127.0.0.{20 + i % 10}",
                                           LOGIN_SERVICES[i % 6], "alice@home.test",
                                           f"guess {i}"))
                for i in range(300)]
        started = time.monotonic()
        results = at_once(jobs)
        took = time.monotonic() - started
        verified = results.count("failed")
        time.sleep(1)  # the sessions of the guesses end
        right = login_attempt(server, "127.0.0.99", "imaps", "alice@home.test", PASSWORD)
        assert verified <= 10, results
        import collections
        counts = collections.Counter(results)
        assert right == "throttled", (right, counts)
        assert "ok" not in counts, counts
        figure(f"brute force: {verified} of 300 guesses verified for one account per 15 min "
               f"(6 login services, 10 addresses, {took:.0f} s); the right password from a "
               f"new address is refused until the lockout ends")
    finally:
        server.stop()


def throttle_flood(binary):
    """An account is locked out; then failures from 400 other addresses against other names
    fill the address table (64 entries here) six times over. Figure: the lockout still holds."""
    server = Server(binary, "login_failure_delay = 0\nlogin_throttle_entries = 64")
    try:
        server.add_user("alice@home.test")
        lock = [(lambda i=i: login_attempt(server, "127.0.0.5", "imaps", "alice@home.test",
                                           f"guess {i}")) for i in range(12)]
        at_once(lock, threads=4)
        flood = [(lambda i=i: login_attempt(server, f"127.0.{1 + i // 250}.{1 + i % 250}",
                                            "pop3s", f"nobody{i}@home.test", "x"))
                 for i in range(400)]
        started = time.monotonic()
        results = at_once(flood)
        took = time.monotonic() - started
        right = login_attempt(server, "127.0.0.77", "imaps", "alice@home.test", PASSWORD)
        assert right == "throttled", right
        figure(f"throttle flood: {len(results)} failures from 400 addresses in {took:.0f} s "
               f"into a 64-entry address table; the account's lockout still holds")
    finally:
        server.stop()


def greeting_ok(line):
    return line.startswith((b"220 ", b"+OK", b"* OK"))


def real_client(server, smtp=True):
    """What a household client does: IMAPS login and SELECT, a POP3S STAT, an SMTP delivery
    (unless `smtp` is false). Returns the seconds it took."""
    started = time.monotonic()
    imap = imaplib.IMAP4_SSL("localhost", server.ports["imaps"], ssl_context=server.tls(),
                             timeout=30)
    imap.login("alice@home.test", PASSWORD)
    imap.select("INBOX")
    imap.logout()
    import poplib
    pop = poplib.POP3_SSL("localhost", server.ports["pop3s"], context=server.tls(), timeout=30)
    pop.user("alice@home.test")
    pop.pass_(PASSWORD)
    pop.stat()
    pop.quit()
    if smtp:
        client = smtplib.SMTP("localhost", server.ports["smtp"], timeout=30)
        client.sendmail("a@example.org", ["alice@home.test"], "Subject: real\r\n\r\nhi\r\n")
        client.quit()
    return time.monotonic() - started


def floods(binary):
    """Slowloris (one byte a second) and silent connections on every port from one attacker
    address, 40 per port (over its share of 16), for 15 s; a real client from the household's
    address is served meanwhile. Then from many addresses at once (64 slots taken on every
    port): the real client waits for the total time before login (preauth_timeout, 10 s here)
    to cut them. Figures: the seconds the real client waited in each case."""
    server = Server(binary, "preauth_timeout = 10")
    stop = threading.Event()
    try:
        server.add_user("alice@home.test")
        real_client(server)  # known address, warm

        def attack(source, port, dribble):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5,
                                             source_address=(source, 0))
                s.settimeout(1)
                while not stop.is_set():
                    if dribble:
                        s.send(b"x")
                    try:
                        if s.recv(512) == b"":
                            return
                    except socket.timeout:
                        pass
            except OSError:
                return

        def flood(sources, per_source):
            threads = []
            for port in server.ports.values():
                for source in sources:
                    for k in range(per_source):
                        t = threading.Thread(target=attack, args=(source, port, k % 2 == 0),
                                             daemon=True)
                        t.start()
                        threads.append(t)
            return threads

        threads = flood(["127.0.0.66"], 40)
        time.sleep(3)
        one = max(real_client(server) for _ in range(3))
        stop.set()
        for t in threads:
            t.join(10)
        assert one < 5, one
        figure(f"slowloris + silent flood from one address (40 per port on 7 ports): a real "
               f"client was served in {one:.1f} s")

        stop.clear()
        threads = flood([f"127.0.1.{i}" for i in range(1, 9)], 10)
        time.sleep(3)
        started = time.monotonic()
        waited = None
        while time.monotonic() - started < 30:
            try:
                real_client(server, smtp=False)
                waited = time.monotonic() - started
                break
            except (OSError, imaplib.IMAP4.error, smtplib.SMTPException, Exception):
                time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(10)
        assert waited is not None, "the real client was never served"
        assert waited < 15, waited
        figure(f"slowloris + silent flood from 8 addresses (every slot on 7 ports): a real "
               f"IMAPS/POP3S client was served after {waited:.1f} s (preauth_timeout 10 s); "
               f"port 25 has no login, so its slots stay held up to the idle and command "
               f"timeouts (not measured here)")
    finally:
        stop.set()
        server.stop()


def amplification(binary):
    """Commands that cost much for little input, on a 3,000-message mailbox: a sequence set
    repeating 1:* 8,000 times in FETCH, UID FETCH, STORE, UID STORE and COPY; SEARCH with 2,000
    terms (and 2,000 nested ORs, which may be refused); and FETCH BODYSTRUCTURE of a message nested 200 multiparts deep. Figure: how much
    the daemon's peak RSS grew."""
    server = Server(binary)
    try:
        server.add_user("alice@home.test")
        s = server.tls().wrap_socket(socket.create_connection(("127.0.0.1", server.ports["imaps"])),
                                     server_hostname="localhost")
        s.settimeout(120)
        f = s.makefile("rb")
        f.readline()
        counter = [0]

        def ok(command, refused=False):
            """Sends a command; it must succeed, or, with `refused`, may be refused (BAD/NO)
            as long as the session goes on."""
            counter[0] += 1
            tag = b"t%d" % counter[0]
            s.sendall(tag + b" " + command + b"\r\n")
            while True:
                line = f.readline()
                assert line, "connection closed"
                if line.startswith(tag + b" "):
                    assert line.startswith(tag + b" OK") or refused, (command[:60], line)
                    return
        ok(b'LOGIN alice@home.test "%s"' % PASSWORD.encode())
        message = b"Subject: m\r\n\r\nx\r\n"
        for _ in range(30):
            ok(b"APPEND INBOX" + (b" {%d+}\r\n" % len(message) + message) * 100)
        deep = b"Content-Type: multipart/mixed; boundary=b0\r\nSubject: deep\r\n\r\n"
        for level in range(1, 200):
            deep += b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (level - 1, level)
        deep += b"--b199\r\nContent-Type: text/plain\r\n\r\nbottom\r\n"
        for level in range(199, -1, -1):
            deep += b"--b%d--\r\n" % level
        ok(b"APPEND INBOX {%d+}\r\n" % len(deep) + deep)
        ok(b"CREATE Other")
        ok(b"SELECT INBOX")
        before = server.peak_rss_mib()
        repeated = b",".join([b"1:*"] * 8000)
        started = time.monotonic()
        ok(b"FETCH " + repeated + b" (FLAGS)")
        ok(b"UID FETCH " + repeated + b" (FLAGS)")
        ok(b"STORE " + repeated + b" +FLAGS.SILENT (\\Seen)")
        ok(b"UID STORE " + repeated + b" -FLAGS.SILENT (\\Seen)")
        ok(b"COPY " + repeated + b" Other")
        ok(b"SEARCH " + b"SUBJECT a " * 2000 + b"ALL")
        ok(b"SEARCH " + b"OR SUBJECT a " * 2000 + b"ALL", refused=True)
        ok(b"NOOP")
        ok(b"FETCH 3001 (BODYSTRUCTURE)")
        took = time.monotonic() - started
        grown = server.peak_rss_mib() - before
        assert grown < 64, grown
        figure(f"amplification (repeated sequence sets in FETCH/STORE/COPY, 2,000-term SEARCH, "
               f"2,000 nested ORs, 200-deep BODYSTRUCTURE on 3,001 messages): peak RSS grew {grown:.0f} MiB "
               f"(to {server.peak_rss_mib():.0f} MiB), {took:.1f} s")
    finally:
        server.stop()


def spoofing(binary):
    """Submission as alice with From: variants naming someone else. Figure: refused / tried."""
    server = Server(binary)
    try:
        server.add_user("alice@home.test")
        server.add_user("bob@home.test")
        header_bomb = "".join(f"X-Filler-{i}: {'y' * 200}\r\n" for i in range(1400))
        variants = {
            "bob's From": "From: bob@home.test\r\n",
            "two From:, alice's second": "From: bob@home.test\r\nFrom: alice@home.test\r\n",
            "two From:, alice's first": "From: alice@home.test\r\nFrom: bob@home.test\r\n",
            "display name trick": "From: \"alice@home.test\" <bob@home.test>\r\n",
            "two addresses": "From: alice@home.test, bob@home.test\r\n",
            "Sender: bob": "From: alice@home.test\r\nSender: bob@home.test\r\n",
            "From: after 280 KiB of header": header_bomb + "From: bob@home.test\r\n",
            "encoded word": "From: =?utf-8?q?bob?= <bob@home.test>\r\n",
            "folded From:": "From: Alice\r\n <bob@home.test>\r\n",
        }
        refused = []
        for name, header in variants.items():
            s = smtplib.SMTP_SSL("localhost", server.ports["submissions"], context=server.tls(),
                                 timeout=60)
            s.login("alice@home.test", PASSWORD)
            try:
                s.sendmail("alice@home.test", ["bob@home.test"],
                           header + "To: bob@home.test\r\nSubject: spoof\r\n\r\nhi\r\n")
            except smtplib.SMTPDataError:
                refused.append(name)
            s.quit()
        accepted = [n for n in variants if n not in refused]
        assert not accepted, accepted
        figure(f"From: spoofing on submission: {len(refused)} of {len(variants)} variants "
               f"refused")
    finally:
        server.stop()


def disk_full(binary):
    """A 12 MiB tmpfs as the data device: 256 KiB deliveries until 452, EXPUNGE of everything,
    then as many 256 KiB deliveries again without a restart. Figure: the counts."""
    if os.geteuid() != 0:
        if os.environ.get("ABUSE_SKIP_ROOT") == "1":
            print("  SKIPPED: not root (ABUSE_SKIP_ROOT=1)")
            return
        raise AssertionError("disk_full mounts a tmpfs: run as root (or ABUSE_SKIP_ROOT=1)")
    mount = tempfile.mkdtemp(prefix="letterbox-full-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", mount], check=True)
    server = None
    try:
        server = Server(binary, 'min_free_space = "1MiB"', data=os.path.join(mount, "data"))
        server.add_user("alice@home.test")
        body = ("0123456789abcdef" * 62 + "0123\r\n") * 262

        def deliver(n):
            s = smtplib.SMTP("localhost", server.ports["smtp"], timeout=60)
            try:
                s.sendmail("a@example.org", ["alice@home.test"], f"Subject: big {n}\r\n\r\n{body}")
                return True
            except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError,
                    smtplib.SMTPRecipientsRefused) as e:
                assert "452" in str(e), e
                return False
            finally:
                s.quit()
        filled = 0
        while deliver(filled):
            filled += 1
            assert filled < 500
        imap = imaplib.IMAP4_SSL("localhost", server.ports["imaps"], ssl_context=server.tls())
        imap.login("alice@home.test", PASSWORD)
        imap.select("INBOX")
        imap.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
        imap.expunge()
        imap.logout()
        again = 0
        while again < filled and deliver(1000 + again):
            again += 1
        # Large deliveries must resume without a restart. Not all of the freed room comes
        # back: the writer counts a body twice (bodies from before schema 5 took that much),
        # so the last ~1.5 MiB of a full card stay refused (README "Not done yet").
        assert again >= filled // 2, (filled, again)
        figure(f"disk full (12 MiB tmpfs): {filled} x 256 KiB accepted, then 452; after EXPUNGE "
               f"{again} more accepted without a restart")
    finally:
        if server:
            server.stop()
        subprocess.run(["umount", "-l", mount])
        os.rmdir(mount)


def web_slow_bodies(binary):
    """Every web connection slot (64, from 4 addresses) held by a form whose body comes one
    byte a second: each is cut when its body is not whole after web_body_timeout (3 s here),
    and the household's browser is served. Figures: how long the slots were held, and how long
    the real request waited."""
    server = Server(binary, "web_body_timeout = 3", web=True)
    port = server.ports["web"]
    stop = threading.Event()
    held = []

    def attack(source):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5,
                                         source_address=(source, 0))
            # The setup code's form (a fresh box is in setup mode): its body is read first.
            s.sendall(f"POST /setup/code HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      "Content-Length: 1000\r\n"
                      "Content-Type: application/x-www-form-urlencoded\r\n\r\n".encode())
            started = time.monotonic()
            s.settimeout(1)
            while not stop.is_set():
                try:
                    s.send(b"x")
                    s.recv(4096)
                except socket.timeout:
                    continue
                except OSError:
                    break
            held.append(time.monotonic() - started)
        except OSError:
            return

    def page():
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(f"GET /setup/code HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  "Connection: close\r\n\r\n".encode())
        answer = s.recv(100)
        s.close()
        return answer

    try:
        threads = [threading.Thread(target=attack, args=(f"127.0.2.{i}",), daemon=True)
                   for i in range(1, 5) for _ in range(16)]
        for t in threads:
            t.start()
        time.sleep(1)
        started = time.monotonic()
        waited = None
        while time.monotonic() - started < 30:
            try:
                if page().startswith(b"HTTP/1.1 "):
                    waited = time.monotonic() - started
                    break
            except OSError:
                pass
            time.sleep(0.2)
        for t in threads:
            t.join(15)
        stop.set()
        assert waited is not None, "the household's browser was never served"
        assert len(held) == 64 and max(held) < 10, sorted(held)
        figure(f"64 web connections trickling a form body one byte a second: each cut after "
               f"{min(held):.1f}-{max(held):.1f} s (web_body_timeout 3 s), and a browser waiting "
               f"for a slot was served after {waited:.1f} s")
    finally:
        stop.set()
        server.stop()


SCENARIOS = [brute_force, throttle_flood, floods, web_slow_bodies, amplification, spoofing,
             disk_full]


def main():
    binary = sys.argv[1]
    wanted = sys.argv[2:] or [s.__name__ for s in SCENARIOS]
    failed = []
    for scenario in SCENARIOS:
        if scenario.__name__ not in wanted:
            continue
        print(f"--- {scenario.__name__}: {scenario.__doc__.split(chr(10))[0]}", flush=True)
        started = time.monotonic()
        try:
            scenario(binary)
            print(f"--- {scenario.__name__}: held ({time.monotonic() - started:.0f} s)")
        except Exception as e:
            failed.append(scenario.__name__)
            print(f"--- {scenario.__name__}: FAILED: {type(e).__name__}: {e}", flush=True)
    print("\nFigures:")
    for text in FIGURES:
        print(" -", text)
    if failed:
        raise SystemExit("failed: " + ", ".join(failed))


if __name__ == "__main__":
    main()
