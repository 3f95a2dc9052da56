"""Signals during a replay, with the capture fed through a pipe on stdin so
the test decides what egressd has read when each signal arrives.

- SIGHUP with a changed policy file: records emitted afterwards follow the
  new policy, and no flow is lost or split by the reload (the flow records
  equal those of a plain run).
- SIGHUP with a broken file: one error line naming file:line:column, and
  the old policy stays in force (alerts equal those of a plain run).
- SIGUSR1: a stats event at that moment, counting the packets read so far.
- SIGHUP after the JSON file was moved away (logrotate): later events go
  to a new file of the same name, none lost or written twice.
- SIGTERM: egressd, blocked on a quiet pipe, ends every open flow with
  reason "shutdown", writes its final stats and exits 0.
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import time

from egrtest import BIN, PKTGEN, SRC, Checker, flows, write_file

c = Checker("test_signals")
tmp = tempfile.mkdtemp()
demo = os.path.join(tmp, "demo.pcap")
p = subprocess.run([PKTGEN, "demo", demo], capture_output=True)
c.check(p.returncode == 0, f"pktgen demo: {p.stderr!r}")

with open(demo, "rb") as f:
    raw = f.read()
header, packets, off = raw[:24], [], 24
while off + 16 <= len(raw):
    caplen = struct.unpack_from("<I", raw, off + 8)[0]
    packets.append(raw[off:off + 16 + caplen])
    off += 16 + caplen
c.check(len(packets) > 50, f"demo capture: {len(packets)} packets")

with open(os.path.join(SRC, "sensors", "demo.yaml")) as f:
    demo_yaml = f.read()
os.makedirs(os.path.join(tmp, "intel"))
shutil.copy(os.path.join(SRC, "sensors", "intel", "demo-domains.txt"), os.path.join(tmp, "intel"))
# The same inventory with the load balancers' role only monitored: none of
# bigip1's unexpected-destination alerts remain.
monitor_yaml = demo_yaml.replace("lb-mgmt:\n    mode: deny", "lb-mgmt:\n    mode: monitor")
c.check(monitor_yaml != demo_yaml, "sensors/demo.yaml: role lb-mgmt in deny mode as expected")
broken_yaml = "roles:\n  lb-mgmt:\n    mode: sometimes\n"


def write(name, text):
    return write_file(tmp, name, text)


def read_events(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def plain_run(cfg_text, name):
    cfg = write(name, cfg_text)
    out = os.path.join(tmp, name + ".json")
    p = subprocess.run([BIN, "-c", cfg, "-r", demo, "--json", out], capture_output=True, timeout=120)
    c.check(p.returncode == 0, f"plain run {name}: {p.returncode} {p.stderr!r}")
    return read_events(out)


class Fed:
    """egressd reading the demo capture from a pipe that the test feeds."""

    def __init__(self, cfg, name):
        self.out = os.path.join(tmp, name + ".json")
        self.errpath = os.path.join(tmp, name + ".err")
        self.errf = open(self.errpath, "w")
        self.p = subprocess.Popen([BIN, "-c", cfg, "-r", "-", "--json", self.out],
                                  stdin=subprocess.PIPE, stderr=self.errf)
        self.p.stdin.write(header)
        self.sent = 0
        # The output file exists once egressd has started (its signal
        # handlers are installed before that).
        end = time.time() + 20
        while not os.path.exists(self.out) and time.time() < end and self.p.poll() is None:
            time.sleep(0.02)

    def feed(self, n):
        for pkt in packets[self.sent:self.sent + n]:
            self.p.stdin.write(pkt)
        self.sent += n
        self.p.stdin.flush()

    def stderr(self):
        with open(self.errpath) as f:
            return f.read()

    def wait_stderr(self, needle, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            if needle in self.stderr():
                return True
            time.sleep(0.05)
        return False

    def finish(self):
        self.feed(len(packets) - self.sent)
        self.p.stdin.close()
        rc = self.p.wait(timeout=120)
        self.errf.close()
        return rc, read_events(self.out)


def flow_key(f):
    x = f["flow"]
    return (f["src_ip"], f.get("src_port", 0), f["dest_ip"], f.get("dest_port", 0), f["proto"],
            x["pkts_toserver"], x["pkts_toclient"], x["bytes_toserver"], x["bytes_toclient"], x["reason"])


def alert_key(a):
    return (a["alert"]["category"], a["src_ip"], a["dest_ip"], a.get("dest_port", 0))


base = plain_run(demo_yaml, "base.yaml")
mon = plain_run(monitor_yaml, "monitor.yaml")
base_alerts = sorted(alert_key(a) for a in base if a["event_type"] == "alert")
mon_alerts = sorted(alert_key(a) for a in mon if a["event_type"] == "alert")
c.check(len(base_alerts) == 7 and len(mon_alerts) < len(base_alerts),
        f"policies differ: {len(base_alerts)} alerts in deny mode, {len(mon_alerts)} in monitor mode")
base_flows = sorted(flow_key(f) for f in flows(base))

# ---- SIGHUP: a good new file -------------------------------------------------
cfg = write("live.yaml", demo_yaml)
run = Fed(cfg, "hup")
run.feed(1)
write("live.yaml", monitor_yaml)
run.p.send_signal(signal.SIGHUP)
run.feed(1)  # the reload happens between packets
c.check(run.wait_stderr("reloaded"), f"SIGHUP: no reload message: {run.stderr()!r}")
rc, ev = run.finish()
c.check(rc == 0, f"SIGHUP run: exit {rc}: {run.stderr()!r}")
got = sorted(alert_key(a) for a in ev if a["event_type"] == "alert")
c.check(got == mon_alerts, f"after SIGHUP the new policy decides:\n got  {got}\n want {mon_alerts}")
c.check(sorted(flow_key(f) for f in flows(ev)) == base_flows, "SIGHUP: flow records differ from a plain run")

# ---- SIGHUP: a broken new file keeps the old policy ---------------------------
cfg = write("live2.yaml", demo_yaml)
run = Fed(cfg, "hup-bad")
run.feed(1)
write("live2.yaml", broken_yaml)
run.p.send_signal(signal.SIGHUP)
run.feed(1)
c.check(run.wait_stderr("reload failed"), f"broken SIGHUP: no failure message: {run.stderr()!r}")
msg = run.stderr()
c.check(f"{cfg}:3:11" in msg and "configuration in force stays" in msg and msg.count("\n") == 1,
        f"broken SIGHUP: one line naming file:line:column: {msg!r}")
rc, ev = run.finish()
c.check(rc == 0, f"broken SIGHUP run: exit {rc}")
got = sorted(alert_key(a) for a in ev if a["event_type"] == "alert")
c.check(got == base_alerts, f"after a broken reload the old policy stays:\n got  {got}\n want {base_alerts}")

# ---- SIGHUP reopens the output file by name ------------------------------------
run = Fed(write("rot.yaml", demo_yaml), "rot")
half = len(packets) // 2
run.feed(half)
time.sleep(0.3)
os.rename(run.out, run.out + ".1")
run.p.send_signal(signal.SIGHUP)
run.feed(1)
c.check(run.wait_stderr("reloaded"), f"rotation: no reload message: {run.stderr()!r}")
rc, ev_new = run.finish()
ev_old = read_events(run.out + ".1")
c.check(rc == 0 and ev_new and ev_new[-1]["event_type"] == "stats", f"rotation: exit {rc}, new file ends with stats")
both = sorted(flow_key(f) for f in flows(ev_old + ev_new))
c.check(both == base_flows, f"rotation: {len(flows(ev_old))} + {len(flows(ev_new))} flow records across the two files, "
        f"want exactly the {len(base_flows)} of a plain run")

# ---- SIGUSR1: stats now --------------------------------------------------------
k = len(packets) // 3
run = Fed(write("usr1.yaml", demo_yaml), "usr1")
run.feed(k)
time.sleep(0.3)
run.p.send_signal(signal.SIGUSR1)
time.sleep(0.3)
rc, ev = run.finish()
stats = [e for e in ev if e["event_type"] == "stats"]
c.check(rc == 0 and len(stats) == 2, f"SIGUSR1: exit {rc}, {len(stats)} stats events (want 2)")
if len(stats) == 2:
    # The signal interrupts the wait for packet k+1; egressd acts on it
    # between packets, so it has read k or k+1 by then.
    mid = stats[0]["stats"]["capture"]
    c.check(mid["packets"] in (k, k + 1) and mid["inputs"] == 1,
            f"SIGUSR1 stats: {mid} (want packets {k} or {k + 1}, inputs 1)")
    c.check(stats[1]["stats"]["capture"]["packets"] == len(packets), "final stats count every packet")

# ---- SIGTERM: flush and exit 0 while blocked on the pipe -------------------------
run = Fed(write("term.yaml", demo_yaml), "term")
run.feed(k)
time.sleep(0.5)
run.p.send_signal(signal.SIGTERM)
try:
    rc = run.p.wait(timeout=20)
except subprocess.TimeoutExpired:
    run.p.kill()
    rc = "hung"
run.errf.close()
c.check(rc == 0, f"SIGTERM: exit {rc}: {run.stderr()!r}")
ev = read_events(run.out)
fl = flows(ev)
shut = [f for f in fl if f["flow"]["reason"] == "shutdown"]
stats = [e for e in ev if e["event_type"] == "stats"]
c.check(len(shut) >= 1, f"SIGTERM: {len(shut)} flows ended with reason shutdown")
c.check(len(stats) == 1 and stats[0]["stats"]["capture"]["packets"] == k,
        f"SIGTERM: final stats {stats and stats[0]['stats']['capture']} (want packets {k})")
# Every packet of the demo belongs to a flow (a plain run's records hold them
# all), so after the stop the records must hold exactly the packets read.
total = sum(f["flow"]["pkts_toserver"] + f["flow"]["pkts_toclient"] for f in flows(base))
c.check(total == len(packets), f"plain run: flow records hold {total} of {len(packets)} packets")
pk = sum(f["flow"]["pkts_toserver"] + f["flow"]["pkts_toclient"] for f in fl)
c.check(pk == k, f"SIGTERM: the flow records hold {pk} packets, {k} were read")

shutil.rmtree(tmp, ignore_errors=True)
c.done()
