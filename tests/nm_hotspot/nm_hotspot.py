#!/usr/bin/env python3
"""The setup hotspot under NetworkManager, end to end but for the radio (README "Wi-Fi through
NetworkManager"): a phone that joins it gets an address, the captive-portal API's URL as DHCP
option 114, and the box's address for the names its connectivity probe looks up, and the
probe is redirected to the setup page; leaving setup mode takes it all down again.

    python3 tests/nm_hotspot/nm_hotspot.py BIN     (root: network namespaces)

The real letterbox binary runs with `[network] backend = "networkmanager"` in a network
namespace ("the box") whose `wlan0` is one end of a veth pair; the other end, `eth0`, is in a
second namespace ("the phone"). `nmcli` there is tests/nm_hotspot/fake_nmcli.py, which for
`connection up id letterbox-hotspot` does what NetworkManager's shared mode does: the address,
and the real dnsmasq (Debian's dnsmasq-base) with NetworkManager's arguments, reading the
.deb's drop-in (pkg/files/etc/NetworkManager/dnsmasq-shared.d/letterbox-hotspot.conf, its
data directory changed to this test's). The phone is busybox's udhcpc, curl and the C
library's resolver.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DROP_IN = os.path.join(REPO, "pkg/files/etc/NetworkManager/dnsmasq-shared.d/letterbox-hotspot.conf")
PACKAGE_HOSTS = "/run/letterbox/hotspot-hosts"
API_URL = "http://10.42.0.1/captive-portal/api"
TAG = f"lbnm{os.getpid()}"
BOX, PHONE = f"{TAG}-box", f"{TAG}-phone"


def run(*command, check=True, **kw):
    return subprocess.run(command, check=check, capture_output=True, text=True, **kw)


def in_ns(ns, *command, **kw):
    return run("ip", "netns", "exec", ns, *command, **kw)


def fail(text, *logs):
    for log in logs:
        if os.path.exists(log):
            print(f"--- {log}:\n{open(log, errors='replace').read()[-4000:]}", file=sys.stderr)
    raise SystemExit(f"nm_hotspot: FAILED: {text}")


def wait_for(what, predicate, seconds, *logs):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    fail(f"{what} (waited {seconds} s)", *logs)


def main():
    if os.geteuid() != 0:
        raise SystemExit("nm_hotspot: needs root (network namespaces); it does not skip")
    binary = os.path.abspath(sys.argv[1])
    for tool in ("dnsmasq", "busybox", "curl", "ip"):
        if not shutil.which(tool):
            raise SystemExit(f"nm_hotspot: {tool} is missing (bash .ci/install)")
    work = tempfile.mkdtemp(prefix="letterbox-nm-")
    state, conf_dir, data = (os.path.join(work, d) for d in ("state", "dnsmasq-shared.d", "data"))
    for d in (state, conf_dir):
        os.mkdir(d)
    # The drop-in as shipped, but for where this test's daemon writes the hosts file.
    hosts = os.path.join(work, "run", "hotspot-hosts")
    os.mkdir(os.path.dirname(hosts))
    # dnsmasq reads the hosts file as nobody, as /run/letterbox is for the .deb's service.
    os.chmod(work, 0o755)
    os.chmod(os.path.dirname(hosts), 0o755)
    shipped = open(DROP_IN).read()
    if f"addn-hosts={PACKAGE_HOSTS}\n" not in shipped:
        fail("the drop-in no longer names the package's hosts file")
    with open(os.path.join(conf_dir, "letterbox-hotspot.conf"), "w") as f:
        f.write(shipped.replace(PACKAGE_HOSTS, hosts))
    fake_bin = os.path.join(work, "bin")
    os.mkdir(fake_bin)
    os.symlink(os.path.join(HERE, "fake_nmcli.py"), os.path.join(fake_bin, "nmcli"))
    config = os.path.join(work, "letterbox.toml")
    with open(config, "w") as f:
        f.write(f'''data_dir = "{data}"

[listen]
smtp = []
submission = []
submissions = []
pop3 = []
pop3s = []
imap = []
imaps = []
web = ["0.0.0.0:80"]
web_tls = []

[network]
backend = "networkmanager"
interface = "wlan0"
mdns = false
hotspot_hosts = "{hosts}"
''')
    netns_etc = f"/etc/netns/{PHONE}"
    daemon = None
    daemon_log = os.path.join(work, "letterbox.log")
    dnsmasq_log = os.path.join(state, "dnsmasq.log")
    nmcli_log = os.path.join(state, "nmcli.log")
    logs = (daemon_log, nmcli_log, dnsmasq_log)
    try:
        run("ip", "netns", "add", BOX)
        run("ip", "netns", "add", PHONE)
        run("ip", "link", "add", "wlan0", "netns", BOX, "type", "veth", "peer", "name", "eth0",
            "netns", PHONE)
        for ns, link in ((BOX, "wlan0"), (BOX, "lo"), (PHONE, "eth0"), (PHONE, "lo")):
            run("ip", "-n", ns, "link", "set", link, "up")

        # A fresh box: setup mode, no network to reach it by, so it raises its hotspot.
        env = dict(os.environ, PATH=f"{fake_bin}:{os.environ['PATH']}",
                   FAKE_NMCLI_STATE=state, FAKE_NMCLI_CONF_DIR=conf_dir,
                   RUST_LOG="info,letterbox::network=debug")
        with open(daemon_log, "w") as out:
            daemon = subprocess.Popen(
                ["ip", "netns", "exec", BOX, binary, "--config", config, "run"],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        pid_file = os.path.join(state, "dnsmasq.pid")
        wait_for("the hotspot up (nmcli connection up, dnsmasq running)",
                 lambda: os.path.exists(pid_file) and "hotspot up" in open(daemon_log).read(),
                 60, *logs)
        if not os.path.exists(hosts):
            fail("no hosts file while the hotspot is up", *logs)
        if f"read {hosts} - 14 names" not in open(dnsmasq_log).read():
            fail("dnsmasq did not read the hosts file", *logs)
        print("    ok: setup mode raised the hotspot through nmcli; dnsmasq runs with the drop-in")

        # The phone joins: DHCP, asking for option 114 as iOS and Android do.
        lease = os.path.join(work, "lease")
        script = os.path.join(work, "udhcpc.sh")
        with open(script, "w") as f:
            f.write(f'#!/bin/sh\n[ "$1" = bound ] || exit 0\nenv > {lease}\n'
                    'ip addr add "$ip/$subnet" dev "$interface"\n')
        os.chmod(script, 0o755)
        in_ns(PHONE, "busybox", "udhcpc", "-i", "eth0", "-O", "114", "-n", "-q", "-f",
              "-t", "5", "-s", script, timeout=60)
        got = dict(l.split("=", 1) for l in open(lease).read().splitlines() if "=" in l)
        address = got.get("ip", "")
        if not (address.startswith("10.42.0.") and 10 <= int(address.rsplit(".", 1)[1]) <= 254):
            fail(f"DHCP address {address!r}", *logs)
        if got.get("router") != "10.42.0.1" or got.get("dns") != "10.42.0.1":
            fail(f"router {got.get('router')!r}, DNS {got.get('dns')!r}", *logs)
        option_114 = got.get("opt114", "")
        try:
            announced = bytes.fromhex(option_114).decode()
        except ValueError:
            announced = option_114
        if announced != API_URL:
            fail(f"option 114 {option_114!r}, not {API_URL}", *logs)
        print(f"    ok: DHCP {address}, router and DNS 10.42.0.1, option 114 {announced}")

        # Its resolver is the DNS server DHCP named (ip netns exec mounts this resolv.conf).
        os.makedirs(netns_etc, exist_ok=True)
        with open(os.path.join(netns_etc, "resolv.conf"), "w") as f:
            f.write(f"nameserver {got['dns']}\n")
        for name in ("connectivitycheck.gstatic.com", "captive.apple.com", "www.msftconnecttest.com"):
            answer = in_ns(PHONE, "getent", "ahostsv4", name, check=False).stdout.split()
            if answer[:1] != ["10.42.0.1"]:
                fail(f"{name} resolves to {answer[:1]}, not the box", *logs)
        print("    ok: the probes' names resolve to 10.42.0.1 (dnsmasq, the hosts file Letterbox wrote)")

        # Android's probe and Apple's: a redirect to the setup page, which opens without a code.
        for url in ("http://connectivitycheck.gstatic.com/generate_204",
                    "http://captive.apple.com/hotspot-detect.html"):
            answer = in_ns(PHONE, "curl", "-s", "-m", "10", "-o", "/dev/null", "-w",
                           "%{http_code} %{redirect_url}", url, check=False).stdout
            if answer != "302 http://10.42.0.1/setup":
                fail(f"{url}: {answer!r}", *logs)
        api = in_ns(PHONE, "curl", "-s", "-m", "10", "-D", "-", API_URL, check=False).stdout
        if "application/captive+json" not in api or '"captive":true' not in api.replace(" ", ""):
            fail(f"the captive-portal API said {api!r}", *logs)
        # Over the hotspot its passphrase is the guard: the wizard opens without the code.
        setup = in_ns(PHONE, "curl", "-s", "-m", "10", "-o", "/dev/null", "-w",
                      "%{http_code} %{redirect_url}", "http://10.42.0.1/setup", check=False).stdout
        status, _, step = setup.partition(" ")
        if status != "303" or not step.startswith("http://10.42.0.1/setup/") or step.endswith("/code"):
            fail(f"the setup page answered {setup!r}", *logs)
        page = in_ns(PHONE, "curl", "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}",
                     step, check=False).stdout
        if page != "200":
            fail(f"{step} answered {page}", *logs)
        print("    ok: Android's and Apple's probes get 302 to http://10.42.0.1/setup; the API says "
              f"captive; the wizard opens without the one-time code ({step})")

        log = open(daemon_log).read()
        if "captive DNS cannot listen" in log:
            fail("Letterbox's captive DNS tried port 53 of NetworkManager's hotspot", *logs)
        print("    ok: port 53 was left to NetworkManager's dnsmasq")

        # Leaving setup mode takes the hotspot down, and the hosts file with it.
        left = run(binary, "--config", config, "setup", "--off", check=False)
        if left.returncode != 0:
            fail(f"setup --off: {left.stdout}{left.stderr}", *logs)
        wait_for("the hotspot down (nmcli connection down) and the hosts file gone",
                 lambda: "connection down id letterbox-hotspot" in open(nmcli_log).read()
                 and not os.path.exists(hosts) and not os.path.exists(pid_file), 30, *logs)
        print("    ok: leaving setup mode took the hotspot down and removed the hosts file")
    finally:
        if daemon is not None and daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
        pid_file = os.path.join(state, "dnsmasq.pid")
        if os.path.exists(pid_file):
            try:
                os.kill(int(open(pid_file).read()), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass
        for ns in (BOX, PHONE):
            run("ip", "netns", "del", ns, check=False)
        shutil.rmtree(netns_etc, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    print("nm_hotspot: passed")


main()
