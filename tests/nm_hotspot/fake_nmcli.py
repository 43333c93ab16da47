#!/usr/bin/env python3
"""A stand-in for `nmcli`, for tests/nm_hotspot/nm_hotspot.py: it answers the command lines
Letterbox's NetworkManager backend runs (src/network/nm.rs) and, for the hotspot, does what
NetworkManager's `ipv4.method shared` does: puts 10.42.0.1/24 on the interface and starts
dnsmasq with NetworkManager's own arguments (NetworkManager 1.42, src/core/dnsmasq/
nm-dnsmasq-manager.c) and its drop-in directory. Only the radio is missing: the interface
is one end of a veth pair whose other end is the phone's.

Environment: FAKE_NMCLI_STATE (a directory: the log of every command line, dnsmasq's pid and
log) and FAKE_NMCLI_CONF_DIR (the drop-in directory dnsmasq reads).
"""

import os
import signal
import subprocess
import sys
import time

STATE = os.environ["FAKE_NMCLI_STATE"]
CONF_DIR = os.environ["FAKE_NMCLI_CONF_DIR"]
ADDRESS = "10.42.0.1"


def say(text, code=0):
    (sys.stdout if code == 0 else sys.stderr).write(text)
    sys.exit(code)


def dnsmasq_command(interface):
    return [
        "dnsmasq", "--conf-file=/dev/null", "--no-hosts", "--keep-in-foreground",
        "--bind-interfaces", "--except-interface=lo", "--clear-on-reload", "--strict-order",
        f"--listen-address={ADDRESS}", "--dhcp-range=10.42.0.10,10.42.0.254,60m",
        f"--dhcp-option=option:router,{ADDRESS}", "--dhcp-lease-max=50",
        f"--dhcp-leasefile={STATE}/dnsmasq-{interface}.leases",
        f"--pid-file={STATE}/nm-dnsmasq-{interface}.pid", f"--conf-dir={CONF_DIR}",
        f"--log-facility={STATE}/dnsmasq.log", "--log-dhcp", "--log-queries",
    ]


def main():
    args = sys.argv[1:]
    line = " ".join(args)
    with open(os.path.join(STATE, "nmcli.log"), "a") as log:
        log.write(line + "\n")
    interface = args[args.index("ifname") + 1] if "ifname" in args else "wlan0"
    if "device" in args and "wifi" in args and "list" in args:
        if "SSID,SIGNAL,SECURITY" in args:
            say("Home:81:WPA2\nNeighbours:40:WPA2\n")
        say("")  # IN-USE,SSID,SIGNAL: associated with nothing
    if args[:2] == ["-t", "-e"] and "show" in args:
        say("")
    if args[:2] == ["connection", "delete"]:
        say(f"Error: unknown connection '{args[-1]}'.\n", 10)
    if args[:2] == ["connection", "add"]:
        with open(os.path.join(STATE, "hotspot-interface"), "w") as f:
            f.write(interface)
        say(f"Connection '{args[args.index('con-name') + 1]}' (0e8a) successfully added.\n")
    if "up" in args and "letterbox-hotspot" in args:
        sys.stdin.read()  # the passphrase, as nmcli reads its passwd-file
        with open(os.path.join(STATE, "hotspot-interface")) as f:
            interface = f.read()
        subprocess.run(["ip", "addr", "add", f"{ADDRESS}/24", "dev", interface], check=True)
        with open(os.path.join(STATE, "dnsmasq.out"), "a") as out:
            dnsmasq = subprocess.Popen(dnsmasq_command(interface), stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=out, start_new_session=True)
        with open(os.path.join(STATE, "dnsmasq.pid"), "w") as f:
            f.write(str(dnsmasq.pid))
        time.sleep(0.5)
        if dnsmasq.poll() is not None:
            say(f"Error: dnsmasq exited with {dnsmasq.returncode}\n", 4)
        say("Connection successfully activated (D-Bus active path: /org/freedesktop/"
            "NetworkManager/ActiveConnection/7)\n")
    if "down" in args and "letterbox-hotspot" in args:
        try:
            with open(os.path.join(STATE, "dnsmasq.pid")) as f:
                os.kill(int(f.read()), signal.SIGTERM)
            os.remove(os.path.join(STATE, "dnsmasq.pid"))
        except FileNotFoundError:
            say("Error: 'letterbox-hotspot' is not an active connection.\n", 10)
        with open(os.path.join(STATE, "hotspot-interface")) as f:
            subprocess.run(["ip", "addr", "flush", "dev", f.read()], check=True)
        say("Connection 'letterbox-hotspot' successfully deactivated\n")
    say(f"fake nmcli: not scripted: {line}\n", 2)


main()
