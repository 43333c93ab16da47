"""Back after a power cut: how long after a start the mail can be read again when the stack
was killed (SIGKILL, the process side of a pulled plug), Letterbox against Postfix + Dovecot.

Started by `bash bench/run recovery`; it can also be run directly as root:
  python3 bench/recovery.py --letterbox target/release/letterbox --work DIR

Each stack gets N messages of 256 KiB over SMTP (BENCH_RECOVERY_MESSAGES, 4,096: 1 GiB), then
for each case it is killed with SIGKILL (every process of it), the page cache is dropped
(`echo 3 > /proc/sys/vm/drop_caches`, so the store is read from the disk as after a boot),
and it is started again; the time counted runs from the start command to a POP3S login whose
STAT lists all N messages. Cases:
  - killed idle: 5 s after the last delivery (a box is idle nearly all the time; Letterbox
    has recorded redb's allocator state by then, src/store/recovery.rs);
  - killed busy: right after a delivery's 250 (Letterbox: redb checks the whole file).
Postfix + Dovecot keep mail in Maildir files and need no such check; they are killed idle only
(busy would be the same for them).

Appends a markdown section to the results file.
"""

import os
import signal
import subprocess
import time

from bench import (
    BenchError,
    Letterbox,
    Reference,
    arguments,
    check_start,
    descendants,
    log,
    make_message,
    read_pid,
    report_head,
    run_main,
    smtp_burst,
    start_daemon,
)
from writes import allocated, pop3_count

SIZE = 256 * 1024
BATCH = 256


def drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def kill_all(roots):
    """SIGKILL to `roots` and every descendant; returns once they are gone."""
    pids = descendants(roots)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    end = time.time() + 10
    while time.time() < end:
        alive = []
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                        alive.append(pid)
            except OSError:
                pass
        if not alive:
            return
        time.sleep(0.05)
    raise BenchError(f"processes still alive after SIGKILL: {alive}")


def fill(server, n):
    for start in range(0, n, BATCH):
        count = min(BATCH, n - start)
        smtp_burst(server.smtp_port, [make_message("r", start + i, SIZE)[0] for i in range(count)])


def readable_after(server, start, n, deadline=600):
    """Seconds from the start command until a POP3S STAT lists `n` messages."""
    began = time.perf_counter()
    start()
    end = time.time() + deadline
    while True:
        try:
            if pop3_count(server) >= n:
                return time.perf_counter() - began
        except (OSError, EOFError, Exception) as error:  # not listening yet, or refused
            if time.time() > end:
                raise BenchError(f"{server.name}: no mail readable in {deadline} s: {error!r}")
        if time.time() > end:
            raise BenchError(f"{server.name}: mail not all readable in {deadline} s")
        time.sleep(0.05)


def letterbox_cases(binary, work, n):
    server = Letterbox(binary, os.path.join(work, "lb"), name="Letterbox")
    rows = []
    try:
        server.start()
        fill(server, n)
        store = os.path.join(server.data, "letterbox.redb")
        while pop3_count(server) < n:
            time.sleep(0.1)
        for case in ("killed idle", "killed busy"):
            if case == "killed idle":
                time.sleep(5)
            else:
                smtp_burst(server.smtp_port, [make_message("busy", 0, 4096)[0]], clients=1)
                n += 1
            kill_all([server.proc.pid])
            server.proc.wait()
            drop_caches()
            took = readable_after(server, lambda: server.start(add_user=False), n)
            # Each start begins a new log.
            with open(server.logfile, errors="replace") as f:
                checked = "not closed cleanly" in f.read()
            rows.append(("Letterbox", case, allocated(store), took, checked))
            log(f"Letterbox {case}: readable after {took:.2f} s (full check: {checked})")
    finally:
        server.stop()
    return rows


def reference_cases(work, n):
    server = Reference(os.path.join(work, "ref"))
    rows = []
    try:
        server.start()
        fill(server, n)
        while server.delivered() < n:
            time.sleep(0.1)
        time.sleep(5)
        dc_pid = read_pid(os.path.join(server.dc, "run", "master.pid"))
        kill_all([read_pid(server.pf_pidfile), dc_pid])
        drop_caches()

        def restart():
            # The same instances, configs and ports: only the daemons start again. After a
            # boot /run is empty: Dovecot's pid file goes (a killed master whose parent does
            # not reap it still looks alive to Dovecot's check).
            try:
                os.unlink(os.path.join(server.dc, "run", "master.pid"))
            except FileNotFoundError:
                pass
            start_daemon(["postfix", "-c", server.pf_conf, "start"], "postfix start",
                         os.path.join(server.pf, "start.out"))
            start_daemon(["dovecot", "-c", server.dc_conf], "dovecot start",
                         os.path.join(server.dc, "start.out"))

        took = readable_after(server, restart, n)
        rows.append(("Postfix + Dovecot", "killed idle", allocated(server.mail), took, False))
        log(f"Postfix + Dovecot killed idle: readable after {took:.2f} s")
        described = server.describe()
    finally:
        server.stop()
    return rows, described


def main():
    ap = arguments(__doc__)
    ap.add_argument("--tiny", action="store_true", help="16 messages (CI: it runs, no figures worth reading)")
    args = ap.parse_args()
    loadavg = check_start(args, "recovery.py", "private Postfix and Dovecot instances")
    n = 16 if args.tiny else int(os.environ.get("BENCH_RECOVERY_MESSAGES", "4096"))
    rows = letterbox_cases(args.letterbox, args.work, n)
    reference_rows, reference = reference_cases(args.work, n)
    lines = report_head(" — Back after a power cut (`bash bench/run recovery`)", args.commit, loadavg)
    lines.append(f"- Postfix + Dovecot: {reference}")
    lines.append(
        f"- Mail: {n:,} messages of 256 KiB delivered over SMTP, then each stack killed with "
        "SIGKILL (every process), the page cache dropped, and started again; timed from the "
        "start command to a POP3S STAT that lists all of it. One run each.\n"
    )
    lines.append("| stack | case | store on disk | start to a POP3S STAT listing all mail | redb's full check |")
    lines.append("|---|---|---|---|---|")
    for stack, case, size, took, checked in rows + reference_rows:
        check = ("yes" if checked else "no") if stack == "Letterbox" else "—"
        lines.append(f"| {stack} | {case} | {size / 2**20:,.0f} MiB | {took:.2f} s | {check} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.results:
        with open(args.results, "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    run_main(main, "recovery.py")
