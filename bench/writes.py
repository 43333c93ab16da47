#!/usr/bin/env python3
"""Write amplification and store size: what an SD card would see, Letterbox against Postfix
delivering through Dovecot LMTP into a Maildir.

Started by `bash bench/run writes`; it can also be run directly as root:
  python3 bench/writes.py --letterbox target/release/letterbox --work DIR

For each case (message size x concurrent SMTP senders) and each stack, on a fresh ext4 file
system of its own (a file, `mkfs.ext4` with the inode tables and journal initialised up front
so no lazy init writes during the run, `losetup`, `mount`):
  1. the stack starts with all its state on that file system (Letterbox's data directory;
     Postfix's queue and Dovecot's Maildir, index files and state);
  2. `sync`, then the device's sectors written are read from /sys/block/loopN/stat (field 7:
     everything the block layer wrote, file data, metadata and the journal);
  3. N messages are sent over SMTP by the senders; the run waits until every message is in
     the mailbox (Letterbox answers 250 after its durable commit; Postfix after its queue
     file's fsync, then LMTP delivers), then `sync` and the sectors are read again:
     write amplification = octets written to the device / octets of mail delivered;
  4. the store's size (Letterbox: the redb file; the reference: the Maildir with Dovecot's
     index files, blocks allocated) against the octets of mail it holds; then every other
     message is deleted over POP3 (DELE, QUIT), N/2 new ones are delivered, and the size is
     read again: freed space is reused or it is not.
For Letterbox it also reads /proc/PID/io: octets the process dirtied (`write_bytes`) and the
part dropped before it reached the device (`cancelled_write_bytes`: the spool files' octets,
punched out once the message is in the store).

Appends a markdown section to the results file.
"""

import os
import subprocess
import time

from bench import (
    BenchError,
    Letterbox,
    Reference,
    arguments,
    check_start,
    log,
    make_message,
    pop3_login,
    report_head,
    run,
    run_main,
    smtp_burst,
)

# (message size, senders, messages): about 1.6 MiB of 4 KiB mail and 16 MiB of 256 KiB mail
# per case, enough for the per-commit overhead to show and small enough for a few minutes.
CASES = [(4 * 1024, 1, 400), (4 * 1024, 8, 400), (256 * 1024, 1, 64), (256 * 1024, 8, 64)]
TINY_CASES = [(4 * 1024, 2, 8), (256 * 1024, 2, 4)]
DEVICE_SIZE = 1024 * 1024 * 1024


class Device:
    """A fresh ext4 file system on a loop device, mounted at `mount`."""

    def __init__(self, work, name):
        self.image = os.path.join(work, f"{name}.ext4")
        self.mount = os.path.join(work, name)
        self.loop = None
        self.mounted = False

    def __enter__(self):
        with open(self.image, "wb") as f:
            f.truncate(DEVICE_SIZE)
        # The defaults would leave inode tables and the journal to a lazy init thread that
        # writes during the measurement.
        run(["mkfs.ext4", "-q", "-F", "-b", "4096", "-E", "lazy_itable_init=0,lazy_journal_init=0",
             self.image], "mkfs.ext4")
        self.loop = run(["losetup", "-f", "--show", self.image], "losetup").strip()
        os.makedirs(self.mount, exist_ok=True)
        run(["mount", "-t", "ext4", self.loop, self.mount], "mount")
        self.mounted = True
        os.chmod(self.mount, 0o755)
        return self

    def __exit__(self, *exc):
        # Postfix and Dovecot take a moment to exit after `stop`; until then the mount is busy.
        end = time.time() + 30
        while self.mounted and time.time() < end:
            self.mounted = subprocess.run(["umount", self.mount], capture_output=True).returncode != 0
            if self.mounted:
                time.sleep(0.2)
        if self.loop:
            subprocess.run(["losetup", "-d", self.loop], capture_output=True)
        if os.path.exists(self.image):
            os.unlink(self.image)

    def written(self):
        """Octets the block layer has written to the device since it was attached."""
        subprocess.run(["sync", "-f", self.mount], check=True)
        name = os.path.basename(self.loop)
        with open(f"/sys/block/{name}/stat") as f:
            return int(f.read().split()[6]) * 512


def allocated(path):
    """Octets of disk blocks allocated to the files under `path`."""
    if os.path.isfile(path):
        return os.stat(path).st_blocks * 512
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def process_io(pid):
    with open(f"/proc/{pid}/io") as f:
        fields = dict(line.split(": ") for line in f.read().splitlines())
    return int(fields["write_bytes"]), int(fields["cancelled_write_bytes"])


def wait_count(count_fn, count, what, deadline=300):
    end = time.time() + deadline
    while count_fn() < count:
        if time.time() > end:
            raise BenchError(f"{what}: only {count_fn()} of {count} messages arrived")
        time.sleep(0.05)


def pop3_count(server):
    p = pop3_login(server.pop3s_port, server.cafile)
    try:
        return p.stat()[0]
    finally:
        p.quit()


def delete_every_other(server):
    """Deletes messages 1, 3, 5, ... over POP3; returns how many."""
    p = pop3_login(server.pop3s_port, server.cafile)
    n = p.stat()[0]
    for i in range(1, n + 1, 2):
        p.dele(i)
    p.quit()
    return (n + 1) // 2


def measure(server, device, store_path, messages, senders, pid=None):
    size = len(messages[0])
    n = len(messages)
    first, second = messages, messages[: n // 2]
    before = device.written()
    io_before = process_io(pid) if pid else None
    wall, _ = smtp_burst(server.smtp_port, first, clients=senders)
    wait_count(lambda: pop3_count(server), n, server.name)
    written = device.written() - before
    io = None
    if pid:
        after = process_io(pid)
        io = (after[0] - io_before[0], after[1] - io_before[1])
    held = n * size
    store_full = allocated(store_path)
    deleted = delete_every_other(server)
    smtp_burst(server.smtp_port, second, clients=senders)
    wait_count(lambda: pop3_count(server), n - deleted + len(second), server.name)
    device.written()
    held_after = (n - deleted + len(second)) * size
    store_after = allocated(store_path)
    return {
        "wa": written / held,
        "written": written,
        "delivered": held,
        "rate": n / wall,
        "store": store_full,
        "held": held,
        "store_after": store_after,
        "held_after": held_after,
        "io": io,
    }


def run_letterbox(binary, work, name, messages, senders):
    with Device(work, name) as device:
        server = Letterbox(binary, device.mount, name="Letterbox")
        try:
            server.start()
            return measure(server, device, os.path.join(server.data, "letterbox.redb"), messages,
                           senders, pid=server.proc.pid)
        finally:
            server.stop()


def run_reference(work, name, messages, senders):
    with Device(work, name) as device:
        server = Reference(device.mount, lmtp=True)
        try:
            server.start()
            return measure(server, device, server.mail, messages, senders)
        finally:
            server.stop()


def mib(octets):
    return f"{octets / 1024 / 1024:.1f} MiB"


def report(rows, commit, loadavg, tiny):
    pf = run(["postconf", "-d", "-h", "mail_version"], "postconf").strip()
    dc = run(["dovecot", "--version"], "dovecot --version").split()[0]
    lines = report_head(" — write amplification and store size (`bash bench/run writes`"
                        + (", tiny sizes)" if tiny else ")"), commit, loadavg)
    lines += [
        f"- Reference: Postfix {pf} → Dovecot {dc} LMTP → Maildir (Dovecot's index files in the "
        "Maildir), `mail_fsync = optimized`, private instances; Letterbox with its default config",
        f"- Each stack on its own fresh {DEVICE_SIZE >> 20} MiB ext4 file system on a loop device "
        "(4 KiB blocks, default mount options, inode tables and journal initialised at mkfs); "
        "written = /sys/block/loopN/stat sectors written × 512 across the deliveries and a final "
        "`sync` (journal and metadata included)",
        "",
        "| messages × size, senders | stack | written / delivered | written | msg/s | store / held after N | store / held after deleting half and N/2 more | process write_bytes (cancelled) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (size, senders, n), stack, r in rows:
        io = "" if r["io"] is None else f"{mib(r['io'][0])} ({mib(r['io'][1])})"
        lines.append(
            f"| {n} × {size // 1024} KiB, {senders} | {stack} | **{r['wa']:.2f}** | "
            f"{mib(r['written'])} of {mib(r['delivered'])} | {r['rate']:.0f} | "
            f"**{r['store'] / r['held']:.2f}** ({mib(r['store'])}) | "
            f"**{r['store_after'] / r['held_after']:.2f}** ({mib(r['store_after'])}) | {io} |"
        )
    lines += [
        "",
        "How to read it: \"delivered\" and \"held\" count the octets of the messages as sent; "
        "the servers add a few header lines of their own. Store size is the disk blocks "
        "allocated to the redb file, or to the Maildir with Dovecot's index files. "
        "\"process write_bytes\" is Letterbox's /proc/PID/io over the deliveries: what it "
        "dirtied, and in brackets the part dropped before it reached the device (the spool "
        "files' octets, punched out once the message is stored).",
        "",
    ]
    return "\n".join(lines)


def main():
    ap = arguments(__doc__)
    ap.add_argument("--tiny", action="store_true", help="a few small messages (CI: it runs, no figures worth reading)")
    args = ap.parse_args()
    loadavg = check_start(args, "writes.py", "private Postfix and Dovecot instances and loop devices")
    rows = []
    for case in TINY_CASES if args.tiny else CASES:
        size, senders, n = case
        messages = [make_message(f"w{size}", i, size)[0] for i in range(n)]
        tag = f"{size // 1024}k-{senders}"
        log(f"{n} × {size} octets, {senders} senders: Letterbox")
        rows.append((case, "Letterbox", run_letterbox(args.letterbox, args.work, f"lb-{tag}", messages, senders)))
        log(f"{n} × {size} octets, {senders} senders: Postfix → Dovecot LMTP")
        rows.append((case, "Postfix → Dovecot LMTP", run_reference(args.work, f"ref-{tag}", messages, senders)))
    text = report(rows, args.commit, loadavg, args.tiny)
    print(text)
    if args.results:
        with open(args.results, "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    run_main(main, "writes.py")
