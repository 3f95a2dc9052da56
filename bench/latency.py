#!/usr/bin/env python3
"""Alert latency, live: from the deciding packet entering the interface to
the alert in the JSON file, in the Redis stream and on the Redis pub/sub
channel, under a background load.

egressd captures one end of a veth pair in a network namespace (-i cap0,
writing --json and --redis to a private redis-server on a unix socket);
tcpreplay writes the background load (the small benchmark capture, looped,
at --pps) into the other end while this script sends probes: SYN packets
from a deny-mode appliance (10.20.1.10, a role with no allow rule) to a new
bare address each (so each is its own alert key, never folded), --rate a
second. Each probe's alert carries the packet's kernel capture time as its
timestamp; three watchers (a tail of the JSON file polled every 0.5 ms, an
XREAD BLOCK on the alert stream, a SUBSCRIBE on the live channel) note the
wall-clock time they see it. Latency = seen - timestamp, same clock.

Prints a Markdown table (p50, p90, p99, max per path), the background rate
actually sent and egressd's kernel drops. Needs root, ip, tcpreplay,
redis-server. Run through bench/latency.sh, which builds the release binary.
"""
import argparse
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(here)
sys.path.insert(0, os.path.join(repo, "tests", "e2e"))
from redisharness import Client, RedisServer  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--egressd", default=os.path.join(repo, "build-release", "egressd"))
ap.add_argument("--capture", default=os.path.join(here, ".cache", "bench-small.pcap"))
ap.add_argument("--pps", type=int, default=50000, help="background packets per second (0: none)")
ap.add_argument("--probes", type=int, default=300)
ap.add_argument("--rate", type=float, default=20.0, help="probes per second")
ap.add_argument("--workers", type=int, default=1)
args = ap.parse_args()
if os.geteuid() != 0:
    sys.exit("latency.py: needs root (network namespaces)")


def sh(*a, check=True):
    p = subprocess.run(list(a), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(a)}: {p.stderr.strip()}")
    return p


work = tempfile.mkdtemp(prefix="egr-latency-")
os.chmod(work, 0o755)
ns = f"egr-lat-{os.getpid()}"
sh("ip", "netns", "add", ns)
nsx = ["ip", "netns", "exec", ns]
procs = []


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.kill()
    sh("ip", "netns", "del", ns, check=False)


try:
    sh(*nsx, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
    sh("ip", "-n", ns, "link", "add", "tx0", "type", "veth", "peer", "name", "cap0")
    for d in ("lo", "tx0", "cap0"):
        sh("ip", "-n", ns, "link", "set", d, "up")
    for d in ("tx0", "cap0"):
        sh("ip", "-n", ns, "link", "set", d, "mtu", "9000")

    rs = RedisServer()
    rs.start()
    cfg = os.path.join(work, "latency.yaml")
    with open(cfg, "w") as f:
        f.write("home_net: [10.20.0.0/16]\n"
                "assets: [{name: bigip1, hosts: [10.20.1.10], role: locked}]\n"
                "roles: {locked: {mode: deny, severity: high}}\n"
                "alerts: {max_per_second: 0}\n"
                "geoip: {country_db: \"\", asn_db: \"\"}\n"
                f"redis: {{url: \"{rs.unix_url}\", sensor_id: bench}}\n")
    out = os.path.join(work, "eve.json")
    err = open(os.path.join(work, "egressd.err"), "w")
    eg = subprocess.Popen(nsx + [args.egressd, "-i", "cap0", "--allow-root", "-c", cfg, "--json", out,
                                 "--workers", str(args.workers), "--stats-interval", "0"], stderr=err)
    procs.append(eg)
    for _ in range(200):
        if "capturing on" in open(err.name).read():
            break
        time.sleep(0.05)

    seen = {"file": {}, "stream": {}, "pubsub": {}}
    stop = threading.Event()

    def note(path, event):
        if event.get("event_type") == "alert" and event.get("dest_port") == 4444:
            seen[path].setdefault(event["dest_ip"], (time.time(), event["timestamp"]))

    def tail_file():
        while not os.path.exists(out) and not stop.is_set():
            time.sleep(0.001)
        with open(out, "rb") as f:
            pending = b""
            while not stop.is_set():
                chunk = f.read()
                if not chunk:
                    time.sleep(0.0005)
                    continue
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if b'"alert"' in line:
                        note("file", json.loads(line))

    def read_stream():
        c = Client(path=rs.unix_url[len("unix://"):], timeout=None)
        last = "$"
        while not stop.is_set():
            r = c("XREAD", "BLOCK", 200, "STREAMS", "egress:alerts", last)
            if not r:
                continue
            for _key, entries in r:
                for eid, kv in entries:
                    last = eid
                    d = dict(zip(kv[0::2], kv[1::2]))
                    if d.get(b"dest_port") == b"4444":
                        seen["stream"].setdefault(d[b"dest_ip"].decode(),
                                                  (time.time(), d.get(b"ts", b"").decode()))

    def read_pubsub():
        c = Client(path=rs.unix_url[len("unix://"):], timeout=None)
        c.send("SUBSCRIBE", "egress:alerts:live")
        c.reply()
        c.sock.settimeout(0.2)
        while not stop.is_set():
            try:
                msg = c.reply()
            except (socket.timeout, TimeoutError):
                continue
            if isinstance(msg, list) and msg[0] == b"message":
                note("pubsub", json.loads(msg[2]))

    threads = [threading.Thread(target=fn, daemon=True) for fn in (tail_file, read_stream, read_pubsub)]
    for t in threads:
        t.start()

    load = None
    if args.pps:
        load = subprocess.Popen(nsx + ["tcpreplay", "-q", "--loop=0", f"--pps={args.pps}", "-i", "tx0",
                                       args.capture], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(load)
        time.sleep(2)

    # The probes: raw SYN frames on tx0, from inside the namespace.
    sender = r'''
import socket, struct, sys, time
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
n, rate = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("tx0", 0))
src = bytes([10, 20, 1, 10])
t0 = time.time()
for i in range(n):
    dst = bytes([198, 18, 1 + i // 250, 1 + i % 250])
    tcp = struct.pack("!HHIIBBHHH", 40000 + i, 4444, 1000 + i, 0, 5 << 4, 0x02, 64240, 0, 0)
    ph = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(ph + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xffff, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    s.send(b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + tcp)
    time.sleep(max(0.0, t0 + (i + 1) / rate - time.time()))
'''
    sh(*nsx, sys.executable, "-c", sender, str(args.probes), str(args.rate))
    time.sleep(2)
    sent_load = None
    if load:
        load.terminate()
        load.wait(timeout=10)
    eg.terminate()
    eg.wait(timeout=30)
    stop.set()
    for t in threads:
        t.join(timeout=2)
    stats = {}
    with open(out) as f:
        for line in f:
            e = json.loads(line)
            if e.get("event_type") == "stats":
                stats = e["stats"]
    rs.stop()
finally:
    cleanup()


def ts(text):
    from datetime import datetime
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


print("## Alert latency (bench/latency.py)\n")
print(f"- {os.cpu_count()} CPUs; egressd -i with {args.workers} worker(s), JSON file + Redis (unix socket)")
print(f"- background: {os.path.basename(args.capture)} looped at {args.pps} packets/s "
      f"(egressd counted {stats.get('capture', {}).get('packets', 0)} packets, "
      f"kernel drops {stats.get('capture', {}).get('kernel_drops', 0)})")
print(f"- {args.probes} probes at {args.rate}/s: SYN from a deny-mode appliance to a new address each\n")
print("| path | alerts seen | p50 ms | p90 ms | p99 ms | max ms |")
print("|---|---:|---:|---:|---:|---:|")
for path in ("file", "stream", "pubsub"):
    lat = [(t - ts(stamp)) * 1000 for t, stamp in seen[path].values() if stamp]
    print(f"| {path} | {len(lat)}/{args.probes} | {pct(lat, .5):.2f} | {pct(lat, .9):.2f} | "
          f"{pct(lat, .99):.2f} | {max(lat) if lat else float('nan'):.2f} |")
