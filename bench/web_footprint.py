#!/usr/bin/env python3
"""What the web service costs: resident memory of the daemon with the web listeners off and on
(after a browser-like walk through the setup wizard), and the size of the stripped aarch64
binary before and after.

    python3 bench/web_footprint.py --letterbox target/release/letterbox \
        [--aarch64 target/aarch64-unknown-linux-musl/release/letterbox] \
        [--aarch64-before OLD_BINARY] [--before OLD_NATIVE_BINARY] [--results bench/RESULTS.md]

Budget (issue #11): at most 2 MiB of idle RSS and 700 KB of stripped aarch64 binary. Servers
listen on 127.0.0.1 only. The daemon runs with the development limits, a fresh data directory
(setup mode, no account), and the mail services on, as on the appliance.
"""

import argparse
import http.cookiejar
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(data, web, old=False):
    listen = "\n".join(
        f'{service} = ["127.0.0.1:{free_port()}"]'
        for service in ["smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps"]
    )
    if web:
        listen += f'\nweb = ["127.0.0.1:{web[0]}"]\nweb_tls = ["127.0.0.1:{web[1]}"]'
    elif old:
        # A build from before the web service knows no web_tls key.
        listen += "\nweb = []"
    else:
        listen += "\nweb = []\nweb_tls = []"
    return (
        f'hostname = "localhost"\ndomains = ["home.test"]\ndata_dir = "{data}"\n'
        f"[listen]\n{listen}\n[auth]\ncheck_inbound = false\n"
    )


def rss_kib(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


class Daemon:
    def __init__(self, binary, web, old=False):
        self.dir = tempfile.mkdtemp(prefix="letterbox-web-bench-")
        self.web = web
        path = os.path.join(self.dir, "letterbox.toml")
        with open(path, "w") as f:
            f.write(config(os.path.join(self.dir, "data"), web, old))
        self.config = path
        self.binary = binary
        self.process = subprocess.Popen(
            [binary, "--config", path, "run"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for line in self.process.stdout:
            if line.strip() == "ready":
                break
        else:
            raise SystemExit(f"{binary} did not start")

    def settle(self):
        # Startup work (DKIM key, the first panel frame) is done; let the allocator settle.
        time.sleep(3)
        return rss_kib(self.process.pid)

    def code(self):
        out = subprocess.run(
            [self.binary, "--config", self.config, "status", "--json"],
            capture_output=True, text=True, check=True,
        ).stdout
        import json
        return json.loads(out)["setup"]["code"]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def walk_the_wizard(daemon, rounds):
    """What a phone does: the probes, the code, the names, one person, outgoing, the
    certificate page — `rounds` times, a new session each."""
    base = f"http://127.0.0.1:{daemon.web[0]}"
    requests = 0
    for round in range(rounds):
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

        def get(path):
            nonlocal requests
            requests += 1
            with opener.open(base + path, timeout=30) as r:
                return r.read().decode()

        def post(path, fields):
            nonlocal requests
            requests += 1
            data = urllib.parse.urlencode(fields).encode()
            with opener.open(base + path, data=data, timeout=30) as r:
                return r.read().decode()

        for probe in ["/generate_204", "/hotspot-detect.html", "/connecttest.txt",
                      "/captive-portal/api", "/style.css"]:
            try:
                get(probe)
            except urllib.error.HTTPError:
                pass
        page = get("/setup/code")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        page = post("/setup/code", {"csrf": csrf, "code": daemon.code()})
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        post("/setup/names", {"csrf": csrf, "domain": "smith.test", "hostname": ""})
        post("/setup/accounts", {"csrf": csrf, "name": f"anna{round}",
                                 "password": "otter maple lantern 42",
                                 "repeat": "otter maple lantern 42"})
        post("/setup/outgoing", {"csrf": csrf, "way": "direct", "action": "next"})
        get("/setup/tls")
    return requests


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--letterbox", required=True)
    parser.add_argument("--before", help="an older native binary, measured with web off")
    parser.add_argument("--aarch64")
    parser.add_argument("--aarch64-before")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--results")
    args = parser.parse_args()

    rows = []
    if args.before:
        d = Daemon(args.before, None, old=True)
        rows.append(("before (web not built), idle", *d.settle(), 0))
        d.stop()
    d = Daemon(args.letterbox, None)
    off = d.settle()
    rows.append(("web listeners off, idle", *off, 0))
    d.stop()
    d = Daemon(args.letterbox, (free_port(), free_port()))
    on_idle = d.settle()
    rows.append(("web listeners on, idle", *on_idle, 0))
    count = walk_the_wizard(d, args.rounds)
    after = d.settle()
    rows.append((f"web on, after {args.rounds} wizard walks", *after, count))
    d.stop()

    sizes = []
    if args.aarch64_before:
        sizes.append(("before", os.path.getsize(args.aarch64_before)))
    if args.aarch64:
        sizes.append(("after", os.path.getsize(args.aarch64)))

    machine = f"{platform.node()}, {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}"
    out = [f"## {time.strftime('%a %b %e %H:%M:%S UTC %Y', time.gmtime())} — web service footprint "
           f"(`python3 bench/web_footprint.py`)", "",
           f"Machine: {machine}. Daemon: `{args.letterbox}`, fresh data directory (setup mode), "
           "mail services on, on 127.0.0.1.", "",
           "| daemon | VmRSS | VmHWM (peak) | web requests |", "|---|---|---|---|"]
    for name, rss, hwm, requests in rows:
        out.append(f"| {name} | {rss / 1024:.1f} MiB | {hwm / 1024:.1f} MiB | {requests} |")
    out.append("")
    out.append(f"The web service adds {(on_idle[0] - off[0]) / 1024:+.2f} MiB to idle RSS "
               f"(listeners on vs off) and {(after[0] - off[0]) / 1024:+.2f} MiB after "
               f"{count} requests (budget: 2 MiB).")
    if len(sizes) == 2:
        delta = sizes[1][1] - sizes[0][1]
        out.append("")
        out.append(f"Stripped aarch64-unknown-linux-musl binary: {sizes[0][1]:,} bytes before, "
                   f"{sizes[1][1]:,} after: {delta:+,} bytes (budget for the web service: 700 KB).")
    elif sizes:
        out.append("")
        out.append(f"Stripped aarch64-unknown-linux-musl binary: {sizes[0][1]:,} bytes.")
    text = "\n".join(out) + "\n"
    print(text)
    if args.results:
        with open(args.results, "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    sys.exit(main())
