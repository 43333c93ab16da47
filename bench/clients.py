#!/usr/bin/env python3
"""Client round trips and logins: Letterbox against Dovecot (IMAP) and Postfix (submission).

Started by `bash bench/run clients` (which installs the packages and builds the binary); it can
also be run directly as root:
    python3 bench/clients.py --letterbox target/release/letterbox --work DIR

Everything listens on 127.0.0.1 only. For Letterbox and for the reference it measures:
  1. APPEND as Python's imaplib sends it (command, wait for "+", then the literal; Nagle on, as
     in most client libraries), over IMAPS on one logged-in session: APPENDS_SMALL × 4 KiB and
     APPENDS_LARGE × 100 KiB, each timed from the command to its tagged OK (p50 / p99). The
     reference is Dovecot's imapd on a Maildir.
  2. Submission with smtplib on a port-587 service after STARTTLS and AUTH PLAIN, one session:
     SUBMISSIONS × 4 KiB `sendmail()` to a local mailbox, each timed (p50 / p99). The reference
     is Postfix's smtpd with STARTTLS required and SASL through Dovecot's auth socket.
  3. Logins: LOGIN_CLIENTS[i] clients at once, each from its own 127.0.0.x address, each in a
     loop for LOGIN_SECONDS: connect over IMAPS, LOGIN, SELECT INBOX, LOGOUT. Logins per second
     and the server's peak RSS (VmHWM reset at the start; for Dovecot summed over its processes,
     sampled every 100 ms). Both check argon2id hashes: Letterbox its own (19 MiB, 2 passes),
     Dovecot `doveadm pw -s ARGON2ID` (the parameters are printed in the report).
A markdown section is appended to the results file.
"""

import imaplib
import os
import re
import smtplib
import ssl
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no bench/__pycache__ from the imports below
from bench import (  # noqa: E402
    IO_TIMEOUT,
    PASSWORD,
    USER,
    BenchError,
    Letterbox,
    Reference,
    arguments,
    check_start,
    log,
    make_message,
    mib,
    percentile,
    publish,
    report_head,
    run,
    run_main,
)
from imap_scale import DovecotImap  # noqa: E402

APPENDS_SMALL = 200
APPENDS_LARGE = 100
SUBMISSIONS = 200
LOGIN_CLIENTS = (10, 50)
LOGIN_SECONDS = 15


def imap_session(port, cafile, source="127.0.0.1"):
    ctx = ssl.create_default_context(cafile=cafile)

    class Imaps(imaplib.IMAP4_SSL):
        def _create_socket(self, timeout):
            import socket

            raw = socket.create_connection((self.host, self.port), timeout,
                                           source_address=(source, 0))
            return self.ssl_context.wrap_socket(raw, server_hostname="localhost")

    m = Imaps("127.0.0.1", port, ssl_context=ctx, timeout=IO_TIMEOUT)
    m.login(USER, PASSWORD)
    return m


def appends(port, cafile, size, count):
    """Latencies of `count` APPENDs of a `size`-octet message on one session."""
    m = imap_session(port, cafile)
    try:
        latencies = []
        for i in range(count):
            msg = make_message(f"append{size}", i, size)[0]
            t0 = time.perf_counter()
            typ, data = m.append("INBOX", None, None, msg)
            latencies.append(time.perf_counter() - t0)
            if typ != "OK":
                raise BenchError(f"APPEND refused: {data}")
        return latencies
    finally:
        m.logout()


def submissions(port, cafile, count):
    ctx = ssl.create_default_context(cafile=cafile)
    # "localhost": smtplib checks the certificate against the host it connected to.
    s = smtplib.SMTP("localhost", port, local_hostname="client.home.test", timeout=IO_TIMEOUT)
    try:
        s.starttls(context=ctx)
        s.ehlo("client.home.test")
        s.login(USER, PASSWORD)
        latencies = []
        for i in range(count):
            body = make_message("submit", i, 4096)[0]
            msg = re.sub(rb"(?im)^From: [^\r\n]*", f"From: <{USER}>".encode(), body, count=1)
            t0 = time.perf_counter()
            refused = s.sendmail(USER, [USER], msg)
            latencies.append(time.perf_counter() - t0)
            if refused:
                raise BenchError(f"submission refused: {refused}")
        return latencies
    finally:
        s.quit()


def logins(server, port, cafile, clients):
    """Logins per second of `clients` looping LOGIN/SELECT/LOGOUT, and the peak RSS."""
    stop = time.perf_counter() + LOGIN_SECONDS
    counts = [0] * clients
    errors = []

    def loop(i):
        try:
            while time.perf_counter() < stop:
                m = imap_session(port, cafile, source=f"127.0.0.{10 + i}")
                typ, data = m.select("INBOX")
                if typ != "OK":
                    raise BenchError(f"SELECT: {data}")
                m.logout()
                counts[i] += 1
        except Exception as e:  # reported after the join
            errors.append(repr(e))

    server.meter.begin()
    start = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    memory = server.meter.end()
    if errors:
        raise BenchError(f"{server.name}: login loop failed: {errors[:3]}")
    return sum(counts) / wall, memory


def p50_p99(latencies):
    ms = lambda s: f"{s * 1000:.1f} ms"
    return f"{ms(percentile(latencies, 50))} / {ms(percentile(latencies, 99))}"


def measure(name, imaps, submission, login_server):
    """Every measurement for one stack: `imaps` and `submission` are (port, cafile)."""
    r = {"name": name}
    log(f"{name}: APPEND")
    r["append4"] = p50_p99(appends(*imaps, 4096, APPENDS_SMALL))
    r["append100"] = p50_p99(appends(*imaps, 100 * 1024, APPENDS_LARGE))
    log(f"{name}: submission")
    r["submit"] = p50_p99(submissions(*submission, SUBMISSIONS))
    for clients in LOGIN_CLIENTS:
        log(f"{name}: logins, {clients} clients")
        rate, memory = logins(login_server, *imaps, clients)
        r[f"logins{clients}"] = f"{rate:.0f} /s"
        r[f"rss{clients}"] = mib(memory["kib"]) + (
            f" ({memory['procs']} processes)" if memory["procs"] > 1 else "")
    return r


def dovecot_argon2(dovecot):
    """Gives the Dovecot instance an argon2id hash of the benchmark password; returns its
    parameters as written in the hash."""
    hashed = run(["doveadm", "pw", "-s", "ARGON2ID", "-p", PASSWORD], "doveadm pw").strip()
    with open(os.path.join(dovecot.dir, "passwd"), "w") as f:
        f.write(f"{USER}:{hashed}\n")
    params = re.search(r"\$(m=\d+,t=\d+,p=\d+)\$", hashed)
    return params.group(1) if params else "?"


def shrink():
    """--tiny: a few commands and two login clients for two seconds (CI: the harness runs; the
    figures mean little)."""
    global APPENDS_SMALL, APPENDS_LARGE, SUBMISSIONS, LOGIN_CLIENTS, LOGIN_SECONDS
    APPENDS_SMALL, APPENDS_LARGE, SUBMISSIONS, LOGIN_CLIENTS, LOGIN_SECONDS = 10, 5, 10, (2,), 2


def main():
    ap = arguments(__doc__)
    ap.add_argument("--tiny", action="store_true", help="a few commands (CI: it runs, no figures worth reading)")
    args = ap.parse_args()
    if args.tiny:
        shrink()
    loadavg = check_start(args, "clients.py", "private Dovecot and Postfix instances")
    results = []

    letterbox = Letterbox(args.letterbox, args.work, imaps=True, submission=True)
    try:
        letterbox.start()
        cafile = letterbox.cafile
        results.append(measure("Letterbox", (letterbox.imaps_port, cafile),
                               (letterbox.submission_port, cafile), letterbox))
    finally:
        letterbox.stop()

    dovecot = DovecotImap(args.work)
    postfix = Reference(args.work, submission=True)
    try:
        dovecot.setup()
        params = dovecot_argon2(dovecot)
        postfix.start()
        results.append(measure("Dovecot (IMAP), Postfix (submission)",
                               (dovecot.imaps_port, dovecot.cafile),
                               (postfix.submission_port, postfix.cafile), dovecot))
    finally:
        dovecot.stop()
        postfix.stop()

    rows = [
        (f"imaplib APPEND 4 KiB, p50 / p99 ({APPENDS_SMALL})", "append4"),
        (f"imaplib APPEND 100 KiB, p50 / p99 ({APPENDS_LARGE})", "append100"),
        (f"smtplib submission 4 KiB over 587 + STARTTLS, p50 / p99 ({SUBMISSIONS})", "submit"),
    ]
    for clients in LOGIN_CLIENTS:
        rows.append((f"logins per second, {clients} clients (LOGIN, SELECT, LOGOUT)",
                     f"logins{clients}"))
        rows.append((f"peak RSS, {clients} clients logging in", f"rss{clients}"))
    out = report_head(" — client round trips and logins (`bench/run clients`)", args.commit,
                      loadavg)
    out += [
        "- Letterbox: release build, IMAPS and submission (587, STARTTLS) on 127.0.0.1, every "
        "`[limits]` key at its default; argon2id with 19 MiB and 2 passes.",
        f"- Reference: Dovecot's imapd (passwd-file with a `doveadm pw -s ARGON2ID` hash, "
        f"{params}; no auth cache, Dovecot's default) and Postfix's smtpd with STARTTLS required "
        "and SASL through Dovecot's auth socket, delivering to a Maildir with virtual(8).",
        f"- Clients: Python {sys.version.split()[0]} imaplib / smtplib, TLS verified, Nagle on "
        "(the libraries' default); the logins come from 127.0.0.10 upwards, one address each.",
        "",
        "| | " + " | ".join(r["name"] for r in results) + " |",
        "|---|" + "---|" * len(results),
    ]
    for label, key in rows:
        out.append(f"| {label} | " + " | ".join(r[key] for r in results) + " |")
    out += [
        "",
        "How to read it: APPEND and submission time one command (one `sendmail()`) on an open "
        "session; the first login of each client pays argon2 in both stacks, later ones pay it "
        "in Dovecot (no auth cache by default) and not in Letterbox (its verified-login cache, "
        "README \"Security\"). One run each; the clients share the 2 cores with the servers.",
        "",
    ]
    publish("\n".join(out), args.results)


if __name__ == "__main__":
    run_main(main, "clients.py")
