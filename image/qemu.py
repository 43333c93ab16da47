"""Booting the SD image under QEMU, shared by image/test and bench/memory.py.

A `Vm` is one boot of a copy of the card under qemu-system-aarch64 (the `virt` machine, or
QEMU's `raspi3b`), with loopback ports forwarded to the guest's mail ports; with `debug` the
init's root shell on the serial console runs commands for the caller (`console_run`). The
other helpers read the card's MBR and ext4 superblock and copy files off and onto its FAT
boot partition with mtools, so that nothing needs root or a loop device.
"""

import os
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

BOOT_TIMEOUT = 240  # seconds to the SMTP banner (TCG emulation; first start makes TLS keys)
GUEST_PORTS = (25, 110, 995, 143, 993)  # SMTP, POP3, POP3S, IMAP, IMAPS


def log(msg):
    print(f"    {msg}", flush=True)


class Failed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def free_ports(n):
    """n distinct free loopback ports."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def partitions(img):
    """(start, sectors) of the MBR partitions, read from the image."""
    with open(img, "rb") as f:
        mbr = f.read(512)
    check(mbr[510:512] == b"\x55\xaa", "the image has no MBR")
    parts = []
    for i in range(4):
        entry = mbr[446 + 16 * i : 446 + 16 * (i + 1)]
        start, sectors = struct.unpack("<II", entry[8:16])
        if entry[4]:
            parts.append((start, sectors))
    return parts


def ext4_size(img, start_sector):
    with open(img, "rb") as f:
        f.seek(start_sector * 512 + 1024)
        sb = f.read(1024)
    check(struct.unpack("<H", sb[56:58])[0] == 0xEF53, "partition 2 is not ext4")
    lo, = struct.unpack("<I", sb[4:8])
    log_block, = struct.unpack("<I", sb[24:28])
    hi = struct.unpack("<I", sb[0x150:0x154])[0] if struct.unpack("<I", sb[0x60:0x64])[0] & 0x80 else 0
    label = sb[120:136].rstrip(b"\0").decode()
    return ((hi << 32) | lo) * (1024 << log_block), label


class Vm:
    """One boot of the image under QEMU."""

    def __init__(self, img, kernel, initrd, name, work, debug=False, machine="virt",
                 guest_ports=GUEST_PORTS):
        """debug: `letterbox.debug` on the kernel command line gives a root shell on the
        serial console, which the caller drives through a socket (see console_run). `work`
        holds the console log and QEMU's sockets (and, for raspi3b, the card's cmdline.txt
        and device tree); `guest_ports` are forwarded from free loopback ports (`ports`)."""
        self.name = name
        self.console = os.path.join(work, f"{name}.log")
        self.monitor = os.path.join(work, f"{name}.monitor")
        self.serial = os.path.join(work, f"{name}.serial")
        self.serial_sock = None
        serial = ["-serial", f"file:{self.console}"]
        if debug:
            serial = ["-chardev", f"socket,id=con,path={self.serial},server=on,wait=off,logfile={self.console}",
                      "-serial", "chardev:con"]
        self.ports = dict(zip(guest_ports, free_ports(len(guest_ports))))
        fwd = ",".join(f"hostfwd=tcp:127.0.0.1:{h}-:{g}" for g, h in self.ports.items())
        debug_arg = " letterbox.debug" if debug else ""
        common = ["-display", "none", "-monitor", f"unix:{self.monitor},server,nowait", "-no-reboot",
                  "-kernel", kernel, "-initrd", initrd, "-netdev", f"user,id=n0,{fwd}"]
        if machine == "virt":
            cmd = [
                "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a53", "-smp", "2", "-m", "512",
                *common, *serial, "-append", "console=ttyAMA0 panic=10" + debug_arg,
                "-device", "virtio-net-pci,netdev=n0,romfile=",
                "-drive", f"if=none,file={img},format=raw,id=d0", "-device", "virtio-blk-pci,drive=d0",
                "-device", "i6300esb",  # a watchdog for the init to feed
            ]
        else:
            # QEMU's Raspberry Pi 3 B: the Pi 3 device tree and the card's own cmdline.txt
            # (console on the mini UART, ttyS1, QEMU's second serial port), the SD host, the
            # network on USB (dwc2). Its watchdog model resets at once when started: off.
            cmdline = open(os.path.join(work, "cmdline.txt")).read().strip()
            cmd = [
                "qemu-system-aarch64", "-M", machine, "-m", "1G", *common,
                "-dtb", os.path.join(work, "bcm2837-rpi-3-b.dtb"),
                "-append", cmdline + " letterbox.watchdog=0" + debug_arg,
                "-serial", "null", *serial,
                "-device", "usb-net,netdev=n0",
                "-drive", f"if=sd,format=raw,file={img}",
            ]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        log(f"{name}: qemu pid {self.proc.pid}, console {os.path.relpath(self.console)}")

    def console_text(self):
        try:
            with open(self.console, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def tail(self, n=40):
        return "\n".join(self.console_text().splitlines()[-n:])

    def wait_for_smtp(self):
        """Slirp accepts before the guest listens: wait for the real 220 banner."""
        since = self.started if not getattr(self, "seen_banner", False) else time.monotonic()
        deadline = time.monotonic() + BOOT_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode(errors="replace")
                raise Failed(f"QEMU exited ({self.proc.returncode}) before SMTP came up:\n{out}{self.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.ports[25]), timeout=3) as s:
                    s.settimeout(3)
                    banner = s.recv(512).decode(errors="replace")
                    if banner.startswith("220 "):
                        took = time.monotonic() - since
                        log(f"{self.name}: SMTP banner after {took:.1f} s: {banner.strip()}")
                        self.seen_banner = True
                        return banner
            except OSError:
                pass
            time.sleep(0.5)
        raise Failed(f"no SMTP banner within {BOOT_TIMEOUT} s:\n{self.tail()}")

    def console_run(self, command, timeout=30):
        """Run a shell command on the debug console; returns its output."""
        if self.serial_sock is None:
            self.serial_sock = socket.socket(socket.AF_UNIX)
            self.serial_sock.connect(self.serial)

            def drain(sock):  # QEMU stalls the console if nobody reads; the logfile has it all
                try:
                    while sock.recv(65536):
                        pass
                except OSError:
                    pass

            threading.Thread(target=drain, args=(self.serial_sock,), daemon=True).start()
        marker = f"done-{time.monotonic_ns()}"
        start = len(self.console_text())
        self.serial_sock.sendall(f"\n{command}; echo {marker[:5]}''{marker[5:]}\n".encode())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.console_text()[start:]
            if marker in text:
                out = text[: text.index(marker)]
                return out.split(command, 1)[-1]  # drop the echoed command line
            time.sleep(0.2)
        raise Failed(f"no answer on the console to {command!r}:\n{self.tail()}")

    def powerdown(self, timeout=90):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.monitor)
            s.sendall(b"system_powerdown\n")
            time.sleep(0.5)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failed(f"no poweroff within {timeout} s of the power key:\n{self.tail()}")
        text = self.console_text()
        check("data unmounted" in text, f"the shutdown did not unmount the data:\n{self.tail()}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False  # the appliance's certificate is self-signed at first start
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def mtools_env():
    return dict(os.environ, MTOOLS_SKIP_CHECK="1")


def boot_file(img, boot_start, name, dest):
    """Copy a file off the boot partition to `dest` (None if it is not there)."""
    r = subprocess.run(["mcopy", "-n", "-i", f"{img}@@{boot_start * 512}", f"::{name}", dest],
                       capture_output=True, env=mtools_env())
    return dest if r.returncode == 0 else None


def put_boot_file(img, boot_start, path):
    """Copy a file onto the boot partition (replacing one of the same name)."""
    sh("mcopy", "-o", "-i", f"{img}@@{boot_start * 512}", path, f"::{os.path.basename(path)}",
       env=mtools_env())
