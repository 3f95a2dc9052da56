#!/usr/bin/env python3
"""SIGHUP reloads that take long or fail must not hold up the packets
(docs/configuration.md#reloading). The demo capture is fed through a pipe
so the test knows what egressd has read:

  slow   a reload of a configuration with a 2-million-entry intel list and
         a 15 MB inventory (a few seconds to build): packets fed while it is
         being built are processed at once (a SIGUSR1 stats event in the
         middle counts them, before "reloaded" is said)
  bad    a reload of a file nested 100k levels deep: refused at once with
         the depth error, the old policy stays
  after  every packet was processed, and the flow records are those of a
         plain run
  intel  an intel list changed on disk (intel_check_interval) is rebuilt
         the same way: one "intel lists reloaded", every packet counted

Takes about 10 s."""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import egrtest  # noqa: E402

c = egrtest.Checker("test_reload_faults")
tmp = egrtest.temp_dir("egressd-reload-")
demo = os.path.join(tmp, "demo.pcap")
p = subprocess.run([egrtest.PKTGEN, "demo", demo], capture_output=True)
c.check(p.returncode == 0, f"pktgen demo: {p.stderr!r}")
with open(demo, "rb") as f:
    raw = f.read()
header, packets, off = raw[:24], [], 24
while off + 16 <= len(raw):
    caplen = struct.unpack_from("<I", raw, off + 8)[0]
    packets.append(raw[off:off + 16 + caplen])
    off += 16 + caplen

with open(os.path.join(egrtest.SRC, "sensors", "demo.yaml")) as f:
    demo_yaml = f.read()
os.makedirs(os.path.join(tmp, "intel"))
shutil.copy(os.path.join(egrtest.SRC, "sensors", "intel", "demo-domains.txt"), os.path.join(tmp, "intel"))
cfg = os.path.join(tmp, "egressd.yaml")

# The slow one: the demo configuration with a big intel list and a long
# home_net (each a few hundred ms to a few seconds to build).
big_list = os.path.join(tmp, "intel", "big.txt")
with open(big_list, "w") as f:
    f.writelines(f"h{i}.example{i % 1000}.com\n" for i in range(2000000))
slow_yaml = demo_yaml.replace("home_net: [10.20.0.0/16, \"fd00:20::/48\"]\n",
                              "home_net:\n  - 10.20.0.0/16\n  - \"fd00:20::/48\"\n" +
                              "".join(f"  - 10.{100 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32\n"
                                      for i in range(600000)))
slow_yaml = slow_yaml.replace("    file: intel/demo-domains.txt\n    severity: high\n",
                              "    file: intel/demo-domains.txt\n    severity: high\n"
                              f"  - name: big\n    type: domain\n    file: {big_list}\n    severity: low\n")
c.check(len(slow_yaml) > 10_000_000 and "name: big" in slow_yaml, "the slow configuration is as meant")
deep_yaml = "a: " + "[" * 100000 + "]" * 100000 + "\n"


def write_cfg(text):
    tmpname = cfg + ".new"
    with open(tmpname, "w") as f:
        f.write(text)
    os.replace(tmpname, cfg)


def read_events(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def flow_key(f):
    x = f["flow"]
    return (f["src_ip"], f.get("src_port", 0), f["dest_ip"], f.get("dest_port", 0), f["proto"],
            x["pkts_toserver"], x["pkts_toclient"], x["bytes_toserver"], x["bytes_toclient"], x["reason"])


write_cfg(demo_yaml)
plain = os.path.join(tmp, "plain.json")
p = subprocess.run([egrtest.BIN, "-c", cfg, "-r", demo, "--json", plain], capture_output=True, timeout=120)
c.check(p.returncode == 0, f"plain run: {p.returncode} {p.stderr!r}")
base_flows = sorted(flow_key(f) for f in egrtest.flows(read_events(plain)))

out = os.path.join(tmp, "fed.json")
errpath = os.path.join(tmp, "fed.err")
errf = open(errpath, "w")
proc = subprocess.Popen([egrtest.BIN, "-c", cfg, "-r", "-", "--json", out], stdin=subprocess.PIPE,
                        stderr=errf)
proc.stdin.write(header)
sent = 0


def feed(n):
    global sent
    for pkt in packets[sent:sent + n]:
        proc.stdin.write(pkt)
    sent += min(n, len(packets) - sent)
    proc.stdin.flush()


def stderr():
    with open(errpath) as f:
        return f.read()


def wait_stderr(needle, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if needle in stderr():
            return True
        time.sleep(0.05)
    return False


end = time.time() + 20
while not os.path.exists(out) and time.time() < end:
    time.sleep(0.02)
feed(1)

# ---- slow: packets go on while it is built ------------------------------------------
write_cfg(slow_yaml)
t0 = time.time()
proc.send_signal(signal.SIGHUP)
time.sleep(0.2)
k = len(packets) // 2
feed(k - 1)
time.sleep(0.3)
still_building = "reloaded" not in stderr()
c.check(still_building, f"the slow reload was done within {time.time() - t0:.2f} s: too fast to tell "
        f"anything ({stderr()!r})")
proc.send_signal(signal.SIGUSR1)
feed(1)  # egressd acts on a signal between packets
at_stats = sent
c.check(wait_stderr("reload", 60) and "reloaded" in stderr(), f"slow: no reload message: {stderr()!r}")
print(f"slow reload: {time.time() - t0:.2f} s")

# ---- bad: refused at once ------------------------------------------------------------
write_cfg(deep_yaml)
t0 = time.time()
proc.send_signal(signal.SIGHUP)
feed(1)
c.check(wait_stderr("reload failed", 10), f"bad: no failure message: {stderr()!r}")
took = time.time() - t0
line = [x for x in stderr().splitlines() if "reload failed" in x]
c.check(line and f"{cfg}:1:67: nested deeper than 64 levels" in line[-1] and
        "configuration in force stays" in line[-1], f"bad: {line!r}")

feed(len(packets))
proc.stdin.close()
rc = proc.wait(timeout=120)
errf.close()
c.check(rc == 0, f"exit {rc}: {stderr()!r}")
ev = read_events(out)
stats = [e["stats"]["capture"] for e in ev if e["event_type"] == "stats"]
c.check(len(stats) == 2, f"{len(stats)} stats events (want the SIGUSR1 one and the final one)")
if len(stats) == 2:
    c.check(stats[0]["packets"] in (at_stats - 1, at_stats),
            f"the stats event during the slow reload counts {stats[0]['packets']} packets "
            f"(want {at_stats - 1} or {at_stats}: all fed while it was built)")
    c.check(stats[1]["packets"] == len(packets), f"final stats: {stats[1]} (want {len(packets)} packets)")
c.check(sorted(flow_key(f) for f in egrtest.flows(ev)) == base_flows,
        "the flow records differ from a plain run")

# ---- intel: a changed list is rebuilt on the reload thread too --------------------------
# intel_check_interval 1: the timer (run between packets every 1024) sees the
# list changed, the reload thread builds it, the next packets swap it in.
import redisharness  # noqa: E402
udp = os.path.join(tmp, "udp.pcap")
redisharness.write_udp_flows(udp, 4000)
with open(udp, "rb") as f:
    raw = f.read()
uhdr, upk, off = raw[:24], [], 24
while off + 16 <= len(raw):
    caplen = struct.unpack_from("<I", raw, off + 8)[0]
    upk.append(raw[off:off + 16 + caplen])
    off += 16 + caplen
ilist = os.path.join(tmp, "intel", "timer.txt")
with open(ilist, "w") as f:
    f.write("a.example.org\n")
write_cfg(f"intel_check_interval: 1\nintel:\n  - name: timer\n    type: domain\n    file: {ilist}\n")
out2 = os.path.join(tmp, "timer.json")
err2 = os.path.join(tmp, "timer.err")
with open(err2, "w") as ef:
    q = subprocess.Popen([egrtest.BIN, "-c", cfg, "-r", "-", "--json", out2], stdin=subprocess.PIPE, stderr=ef)
    q.stdin.write(uhdr + b"".join(upk[:1100]))
    q.stdin.flush()
    time.sleep(0.3)
    with open(ilist, "a") as f:
        f.write("h7.example.net\n")
    time.sleep(1.5)
    q.stdin.write(b"".join(upk[1100:2200]))
    q.stdin.flush()
    end = time.time() + 20
    while time.time() < end and "intel lists" not in open(err2).read():
        time.sleep(0.05)
    q.stdin.write(b"".join(upk[2200:]))
    q.stdin.close()
    rc = q.wait(timeout=60)
msg = open(err2).read()
c.check(rc == 0 and msg.count("intel lists reloaded") == 1 and "not reloaded" not in msg,
        f"intel timer: exit {rc}, {msg!r} (want one 'intel lists reloaded')")
st = [e["stats"]["capture"] for e in read_events(out2) if e["event_type"] == "stats"]
c.check(st and st[-1]["packets"] == len(upk), f"intel timer: stats {st} (want {len(upk)} packets)")
c.done()
