"""Mail peers for the outbound tests, all on 127.0.0.1:
- a DNS server (dnslib) answering from a zone file that is re-read for every query, over UDP
  and TCP, so a test can add records (the DKIM key) after Letterbox made them;
- an SMTP receiver (aiosmtpd) with STARTTLS and AUTH that stores every message it accepts,
  with its envelope, whether TLS and AUTH were used, and dkimpy's verdict on its DKIM
  signature (looked up in this DNS server).

Recipients steer the receiver: later@ gets 451 the first time, nobody@ gets 550, slow@ makes
the end of DATA take 3 seconds, and a transaction with faildata@ gets 451 at the end of DATA,
one with rejectdata@ 554. While a file "no-8bitmime" or "no-smtputf8" is in OUTDIR's
parent, EHLO does not offer that extension. Usage: peers.py OUTDIR ZONEFILE CERT KEY; prints
"ready DNS_PORT SMTP_PORT" when both listen.
"""
import asyncio, json, os, socket, ssl, sys, time, threading

import dkim
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from dnslib import DNSRecord, QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSLogger, DNSServer

outdir, zone_file, cert, key = sys.argv[1:5]


class FileZone(BaseResolver):
    """Answers like a recursive resolver would: CNAME chains are followed into the answer
    section, and a name that exists without the asked type gets NOERROR with no answer
    (NODATA), not NXDOMAIN (dnslib's ZoneResolver does neither)."""

    def resolve(self, request, handler):
        with open(zone_file) as f:
            records = RR.fromZone(f.read())
        reply = request.reply()
        qname, qtype = request.q.qname, QTYPE[request.q.qtype]
        name = qname
        for _ in range(8):
            matches = [rr for rr in records if rr.rname == name]
            answers = [rr for rr in matches if QTYPE[rr.rtype] in (qtype, "CNAME")]
            for rr in answers:
                reply.add_answer(rr)
            cname = [rr for rr in answers if QTYPE[rr.rtype] == "CNAME" and qtype != "CNAME"]
            if not cname:
                break
            name = cname[0].rdata.label
        if not reply.rr and not any(rr.rname == qname for rr in records):
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_dns():
    """The DNS server on one port number for both UDP and TCP. A port free for UDP may be
    taken for TCP (another test's server holds it), so a clash means trying another port."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        servers = []
        try:
            for tcp in (False, True):
                servers.append(DNSServer(
                    FileZone(), port=port, address="127.0.0.1", tcp=tcp,
                    logger=DNSLogger(logf=lambda s: None)))
        except OSError:
            for server in servers:
                server.server.server_close()
            continue
        for server in servers:
            server.start_thread()
        return port
    raise SystemExit("no port free for DNS over both UDP and TCP")


dns_port = start_dns()


def dns_txt(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    reply = DNSRecord.parse(
        DNSRecord.question(name, "TXT").send("127.0.0.1", dns_port, timeout=timeout)
    )
    for rr in reply.rr:
        if rr.rtype == QTYPE.TXT:
            return b"".join(rr.rdata.data)
    return None


seen_later = set()
counter = [0]


class Handler:
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        for extension in ("8BITMIME", "SMTPUTF8"):
            if os.path.exists(os.path.join(outdir, "..", "no-" + extension.lower())):
                responses = [r for r in responses if r != "250-" + extension]
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if local == "later" and address not in seen_later:
            seen_later.add(address)
            return "451 4.3.0 Try again later"
        if local == "nobody":
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(r.lower().startswith("slow@") for r in envelope.rcpt_tos):
            open(os.path.join(outdir, "slow-started"), "w").close()
            await asyncio.sleep(3)
        locals_ = {r.split("@")[0].lower() for r in envelope.rcpt_tos}
        if "faildata" in locals_:
            return "451 4.3.0 Try again later"
        if "rejectdata" in locals_:
            return "554 5.6.0 Content refused"
        data = envelope.original_content or envelope.content
        try:
            verdict = dkim.verify(data, dnsfunc=dns_txt)
        except Exception as e:
            verdict = f"error {e}"
        counter[0] += 1
        base = os.path.join(outdir, f"{time.time():.6f}-{counter[0]}")
        with open(base + ".eml", "wb") as f:
            f.write(data)
        info = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "auth": session.auth_data.decode() if session.authenticated else None,
            "dkim": verdict,
        }
        with open(base + ".json.tmp", "w") as f:
            json.dump(info, f)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 2.0.0 Stored"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"relay-user" and auth_data.password == b"relay secret"
    # handled=False: aiosmtpd then answers a failure with 535 itself (with the default,
    # handled=True, it answers nothing and the client waits for a reply).
    return AuthResult(success=ok, handled=False, auth_data=auth_data.login)


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
smtp_port = free_port(socket.SOCK_STREAM)
controller = Controller(
    Handler(),
    hostname="127.0.0.1",
    port=smtp_port,
    tls_context=context,
    require_starttls=False,
    authenticator=authenticator,
    auth_required=False,
    auth_require_tls=True,
)
controller.start()
print(f"ready {dns_port} {smtp_port}", flush=True)
# The test stops reading: nothing may be written to stdout from here on.
sys.stdout = open(os.devnull, "w")
threading.Event().wait()
