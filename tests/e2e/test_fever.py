"""FEVER (DCSO's EVE processor, Debian's `fever`) reads egressd's events
from Redis exactly as it reads Suricata's: egressd replays the demo capture
with redis.eve.mode: list (LPUSH to "suricata", the list FEVER's
`--in-redis` pops), then `fever run --in-redis 127.0.0.1:PORT` runs against
that Redis and:

- its passive-DNS collector reports every answer of egressd's dns events
  (name, answering host, type, rdata, rcode), no more and no fewer;
- its flow aggregator reports egressd's TCP flows (src_dst_port tuples with
  their flow counts and byte totals);
- its forwarder passes on egressd's alerts (every alert_key) to its output
  socket;
- it empties the list.

FEVER's passive-DNS and flow reports are AMQP messages: a minimal receiving
end (amqpsink.py) stands in for RabbitMQ. Everything runs on loopback and
in a temporary directory (FEVER's input, output and management sockets
included)."""
import atexit
import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

from amqpsink import AMQPSink
from egrtest import BIN, PKTGEN, SRC, Checker, need_shared, temp_dir
from redisharness import Client, RedisServer

c = Checker("test_fever")
fever = shutil.which("fever")
if not fever:
    c.check(False, "fever is not installed (Debian: apt-get install fever; scripts/deps.sh --test)")
    c.done()
tmp = temp_dir(prefix="egressd-fever-")
mmdb = need_shared("testdata", "mmdb")

pcap = os.path.join(tmp, "demo.pcap")
p = subprocess.run([PKTGEN, "demo", pcap], capture_output=True)
c.check(p.returncode == 0, f"pktgen demo: {p.stderr!r}")
cfg = os.path.join(tmp, "demo.yaml")
with open(os.path.join(SRC, "sensors", "demo.yaml")) as f:
    text = f.read().replace("file: intel/", f"file: {SRC}/sensors/intel/")
with open(cfg, "w") as f:
    f.write(text + f"\ngeoip:\n  country_db: {mmdb}/GeoIP2-Country-Test.mmdb\n"
            f"  asn_db: {mmdb}/GeoLite2-ASN-Test.mmdb\n"
            "redis:\n  eve:\n    mode: list\n    key: suricata\n")

redis = RedisServer()
redis.start()
# FEVER's outputs: AMQP for its reports, a unix socket for forwarded events.
amqp = AMQPSink()
fwd_path = os.path.join(tmp, "fwd.sock")
fwd = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
fwd.bind(fwd_path)
fwd.listen(4)
forwarded = []
connected = threading.Event()


def read_forwarded():
    fwd.settimeout(60)
    try:
        conn, _ = fwd.accept()
    except OSError:
        return
    connected.set()
    buf = b""
    while True:
        try:
            d = conn.recv(65536)
        except OSError:
            break
        if not d:
            break
        buf += d
        *lines, buf = buf.split(b"\n")
        forwarded.extend(json.loads(line) for line in lines if line.strip())


threading.Thread(target=read_forwarded, daemon=True).start()

# The forwarder from a configuration file: given on the command line
# (--out-socket) it gets no buffer and drops what arrives while it writes.
fever_cfg = os.path.join(tmp, "fever.yaml")
with open(fever_cfg, "w") as f:
    f.write(f"multi-forward:\n  egressd-alerts:\n    socket: {fwd_path}\n    all: false\n"
            "    buffer-length: 10000\n    types: [alert]\n")
log_path = os.path.join(tmp, "fever.log")
logf = open(log_path, "w")
args = [fever, "run", "--config", fever_cfg, "--in-redis", f"127.0.0.1:{redis.port}",
        "--in-socket", os.path.join(tmp, "in.sock"), "--mgmt-socket", os.path.join(tmp, "mgmt.sock"),
        "--pdns-enable", "--pdns-submission-url", amqp.url, "--flushtime", "1s",
        "--flowreport-interval", "1s", "--flowreport-submission-url", amqp.url, "--flowreport-nocompress"]
proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT, cwd=tmp)
atexit.register(lambda: proc.poll() is None and (proc.kill(), proc.wait()))

# FEVER drops what it would forward until its output socket is connected,
# and it pops the list at once: egressd writes once FEVER is ready, as a
# sensor writes into a running pipeline.
ready = time.time() + 20
while time.time() < ready and not (connected.is_set() and amqp.connections > 0):
    time.sleep(0.1)
c.check(connected.is_set() and amqp.connections > 0, "FEVER did not connect its outputs in 20 s")
time.sleep(1)  # its Redis input polls every 500 ms when the list is empty
out = os.path.join(tmp, "eve.json")
p = subprocess.run([BIN, "-c", cfg, "-r", pcap, "--json", out, "--redis", redis.url],
                   capture_output=True, timeout=120)
c.check(p.returncode == 0, f"egressd: rc={p.returncode} {p.stderr[-400:]!r}")
with open(out) as f:
    events = [json.loads(line) for line in f]
cli = redis.client()

# What FEVER should report, from egressd's own JSON.
want_pdns = set()
for e in events:
    if e["event_type"] == "dns" and e["dns"]["type"] == "answer":
        for a in e["dns"].get("answers", []):
            want_pdns.add((e["dns"]["rrname"], e["src_ip"], a["rrtype"], a["rdata"], e["dns"]["rcode"]))
want_tuples = collections.Counter()
want_bytes = collections.defaultdict(lambda: [0, 0])
for e in events:
    if e["event_type"] == "flow" and e["proto"] == "TCP" and e["flow"]["bytes_toclient"] > 0:
        k = f"{e['src_ip']}_{e['dest_ip']}_{e['dest_port']}"
        want_tuples[k] += 1
        want_bytes[k][0] += e["flow"]["bytes_toclient"]
        want_bytes[k][1] += e["flow"]["bytes_toserver"]
want_alerts = collections.Counter(e["alert"]["alert_key"] for e in events if e["event_type"] == "alert")
c.check(len(want_pdns) >= 10 and len(want_tuples) >= 5 and want_alerts,
        f"the demo gives {len(want_pdns)} DNS answers, {len(want_tuples)} TCP tuples, {len(want_alerts)} alerts")


def pdns_seen():
    got = set()
    for b in amqp.bodies("pdns"):
        doc = json.loads(b)
        for name, d in (doc.get("dns") or {}).items():
            for r in d.get("rdata") or []:
                got.add((name, r.get("answering_host"), r.get("rrtype"), r.get("rdata"), r.get("rcode")))
    return got


def tuples_seen():
    got, totals = collections.Counter(), collections.defaultdict(lambda: [0, 0])
    for b in amqp.bodies("aggregations"):
        for k, v in json.loads(b).get("tuples", {}).items():
            got[k] += v["count"]
            totals[k][0] += v["total_bytes_toclient"]
            totals[k][1] += v["total_bytes_toserver"]
    return got, totals


deadline = time.time() + 60
try:
    c.check(want_pdns and want_tuples and want_alerts, "nothing to wait for")
    while time.time() < deadline and proc.poll() is None:
        if (pdns_seen() >= want_pdns and tuples_seen()[0] == want_tuples
                and collections.Counter(a["alert"]["alert_key"] for a in forwarded) == want_alerts):
            break
        time.sleep(0.5)
    time.sleep(1.5)  # one more report interval: nothing unexpected arrives late
finally:
    running = proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    logf.close()
    amqp.stop()
    fwd.close()

with open(log_path) as f:
    log = f.read()
c.check(running, f"fever exited early: {log[-800:]!r}")
c.check(not amqp.errors, f"AMQP: {amqp.errors}")
got = pdns_seen()
c.check(got == want_pdns, f"FEVER passive DNS: missing {sorted(want_pdns - got)[:3]}, "
        f"unexpected {sorted(got - want_pdns)[:3]} ({len(got)} of {len(want_pdns)})")
tuples, totals = tuples_seen()
c.check(tuples == want_tuples, f"FEVER flow tuples: {dict(tuples)} != {dict(want_tuples)}")
c.check(all(totals[k] == want_bytes[k] for k in want_tuples), "FEVER flow byte totals differ from egressd's")
got_alerts = collections.Counter(a["alert"]["alert_key"] for a in forwarded)
c.check(got_alerts == want_alerts, f"FEVER forwarded alerts {dict(got_alerts)} != {dict(want_alerts)}")
c.check(all(a in events for a in forwarded), "a forwarded alert differs from egressd's JSON")
c.check(cli("LLEN", "suricata") == 0, f"FEVER left {cli('LLEN', 'suricata')} events in the list")
c.check("level=error" not in log and "level=fatal" not in log, f"FEVER errors: {log[-800:]!r}")
c.done()
