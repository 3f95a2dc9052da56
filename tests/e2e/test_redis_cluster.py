"""Sensors into a Redis Cluster (docs/redis-schema.md#redis-cluster),
against a local 3-master + 3-replica cluster of redis-server 7
(tests/e2e/redisharness.py: loopback, free ports, no persistence, always
torn down):

  spread     six sensors at once, given one node's address: every flow record
             lands exactly once (XLEN summed over the masters equals the flow
             events of the JSON), each sensor's keys on one master, the
             streams on at least two masters; the dashboard, given a replica's
             address, names every sensor and shows every sensor's alerts,
             assets, flows and (SSE) a new alert
  forward    scripts/siem-forwarder.py reads every stream with a consumer
             group, crashes between its write and its XACK, and once restarted
             has written every entry exactly once, nothing left pending
  failover   kill -9 of the master holding a running sensor's stream: the
             replica is promoted, the replay ends with exit 0, dropped 0, and
             the stream holds at least every flow record of the run
  lagging    a replica that stops taking the replication stream, then its
             master killed: without WAIT (wait_replicas 0) acknowledged
             records are lost although the sensor said "sent"; with WAIT
             (auto) none is
  seeds      the URL's node down, redis.seeds finds the cluster
  one server with a replica: WAIT is sent (INFO commandstats), not with
             wait_replicas 0, and wait_replicas 2 with one replica keeps the
             records and says so at the end (exit 1)
  bad input  seeds with a unix:// URL, a database on a cluster: one line, exit 2
             (configuration errors, the first one found before the run)
"""
import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from egrtest import BIN, PKTGEN, SRC, Checker, temp_dir  # noqa: E402
from redisharness import (RedisCluster, RedisServer, _die_with_parent, finish_replay,  # noqa: E402
                          free_port, redis_stats, start_replay, write_udp_flows)

import yaml  # noqa: E402  (python3-yaml)

c = Checker("test_redis_cluster")
tmp = temp_dir(prefix="egressd-cluster-test-")
DASH = os.path.join(os.path.dirname(BIN), "egressd-dashboard")
FORWARDER = os.path.join(SRC, "scripts", "siem-forwarder.py")

demo = os.path.join(tmp, "demo.pcap")
p = subprocess.run([PKTGEN, "demo", demo], capture_output=True)
c.check(p.returncode == 0, f"pktgen demo: {p.stderr!r}")
small = {n: os.path.join(tmp, f"udp{n}.pcap") for n in (1500, 2500, 4000)}
for n, path in small.items():
    write_udp_flows(path, n, t0=1700000000.0 + n)
big = os.path.join(tmp, "udp40k.pcap")
NBIG = 40000
write_udp_flows(big, NBIG)


def config(name, lines="", policy=False):
    """A sensor configuration: the demo policy (alerts) or none, no GeoIP."""
    if policy:
        with open(os.path.join(SRC, "sensors", "demo.yaml")) as f:
            cfg = yaml.safe_load(f)
        for lst in cfg.get("intel", []):
            if not os.path.isabs(lst["file"]):
                lst["file"] = os.path.join(SRC, "sensors", lst["file"])
    else:
        cfg = {}
    cfg["geoip"] = {"country_db": "", "asn_db": ""}
    redis = {"drain_timeout": 60}
    redis.update(yaml.safe_load(lines) or {})
    cfg["redis"] = redis
    path = os.path.join(tmp, name + ".yaml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    return path


def start(name, pcap, cfg, url):
    return start_replay(BIN, tmp, name, pcap, cfg, url)


def finish(proc, out, timeout=180):
    return finish_replay(proc, out, timeout)


def flow_ids(events):
    return collections.Counter(str(e["flow_id"]).encode() for e in events if e.get("event_type") == "flow")


def scan_all(cl, pattern):
    """{key: master port} for keys matching pattern on every live master."""
    found = {}
    for m in cl.masters():
        for k in m.client().keys(pattern):
            found[k] = m.port
    return found


cl = RedisCluster(masters=3, replicas=1, node_timeout=3000).start()
masters0 = cl.masters()
c.check(len(masters0) == 3 and len(cl.nodes) == 6, f"cluster: {cl.slot_map()}")

# ---- spread: six sensors at once, one node's address --------------------------------------------
sensors = [("edge-a", demo, True), ("edge-b", demo, True), ("edge-c", demo, True),
           ("mirror-1", small[1500], False), ("mirror-2", small[2500], False), ("mirror-3", small[4000], False)]
url = cl.nodes[0].url
runs = {}
for sid, pcap, pol in sensors:
    runs[sid] = start(sid, pcap, config(sid, f"sensor_id: {sid}", policy=pol), url)
results = {sid: finish(*runs[sid]) for sid in runs}
total_flows = 0
for sid, (rc, err, events) in results.items():
    st = redis_stats(events)
    nf = sum(flow_ids(events).values())
    total_flows += nf
    c.check(rc == 0 and st.get("dropped") == 0 and st.get("undelivered") == 0 and st.get("sent") == st.get("records"),
            f"spread: {sid} rc={rc} stats {st} {err[-500:]!r}")
    ls = [l for l in err.splitlines() if l]
    c.check(len(ls) == 1 and "a cluster of 3 masters; per-sensor layout" in ls[0], f"spread: {sid} log {ls}")
streams = scan_all(cl, "egress:*:flows")
xlen_sum = 0
for k, port in streams.items():
    xlen_sum += cl.node(port).client()("XLEN", k)
c.check(xlen_sum == total_flows and total_flows > 8000,
        f"spread: XLEN summed over the masters {xlen_sum} != flow events in the JSON {total_flows}")
c.check(sorted(streams) == sorted(f"egress:{{{sid}}}:flows".encode() for sid in runs),
        f"spread: flow streams {sorted(streams)}")
for sid, (rc, err, events) in results.items():
    key = f"egress:{{{sid}}}:flows"
    m = cl.master_of(key)
    got = collections.Counter(f[b"flow_id"] for _, f in m.client().xrange_all(key))
    c.check(got == flow_ids(events), f"spread: {sid}: stream differs from the JSON's flow records "
            f"({sum(got.values())} entries, {sum(flow_ids(events).values())} records)")
    # All of a sensor's keys on the master of its slot.
    where = set(scan_all(cl, f"egress:{{{sid}}}:*").values())
    c.check(where == {m.port}, f"spread: {sid}'s keys on {where}, its slot's master is {m.port}")
    alerts = sum(1 for e in events if e.get("event_type") == "alert")
    c.check(m.client()("XLEN", f"egress:{{{sid}}}:alerts") == alerts and (alerts > 0) == (sid.startswith("edge")),
            f"spread: {sid}: {alerts} alerts in the JSON")
    hb = m.client().hgetall(f"egress:{{{sid}}}:sensor")
    c.check(hb.get(b"sent") == str(redis_stats(events)["sent"]).encode(), f"spread: {sid} heartbeat {hb}")
holding = set(streams.values())
c.check(len(holding) >= 2, f"spread: the streams are on {len(holding)} master(s) only: {streams}")
ids = set(cl.master_of("egress:sensors").client()("SMEMBERS", "egress:sensors"))
c.check(ids == {sid.encode() for sid in runs}, f"spread: sensor set {ids}")


# ---- the dashboard, given a replica's address ---------------------------------------------------
class Dashboard:
    def __init__(self, redis_url):
        self.port = free_port()
        self.log = os.path.join(tmp, f"dashboard-{self.port}.log")
        self.proc = subprocess.Popen([DASH, "--redis", redis_url, "--listen", f"127.0.0.1:{self.port}"],
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent)
        deadline = time.time() + 20
        while time.time() < deadline:
            st, body = self.get("/healthz")
            if st == 200 and body.get("redis"):
                return
            time.sleep(0.1)
        raise AssertionError(f"dashboard did not come up: {open(self.log).read()}")

    def get(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=20) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, {}
        except OSError:
            return 0, {}

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


replica = next(n for n in cl.nodes if n not in masters0)
dash = Dashboard(replica.url)
st, body = dash.get("/api/sensors")
named = sorted(s["id"] for s in body.get("sensors", []))
c.check(st == 200 and named == sorted(runs), f"dashboard: /api/sensors names {named}")
c.check(all(s.get("present") and s.get("sent") for s in body.get("sensors", [])), f"dashboard: heartbeats {body}")
st, body = dash.get("/api/alerts?count=1000")
want_alerts = sum(1 for sid in ("edge-a", "edge-b", "edge-c") for e in results[sid][2] if e.get("event_type") == "alert")
got = body.get("alerts", [])
c.check(st == 200 and len(got) == want_alerts and {a["sensor"] for a in got} == {"edge-a", "edge-b", "edge-c"},
        f"dashboard: {len(got)} alerts (want {want_alerts}) from {sorted({a.get('sensor') for a in got})}")
ids_order = [tuple(map(int, a["id"].split("-"))) for a in got]
c.check(ids_order == sorted(ids_order, reverse=True), "dashboard: alerts of every sensor merged newest first")
st, body = dash.get("/api/assets")
bigip = [a for a in body.get("assets", []) if a["asset"] == "bigip1"]
want = sum(e["flow"]["bytes_toserver"] + e["flow"]["bytes_toclient"]
           for sid in ("edge-a", "edge-b", "edge-c") for e in results[sid][2]
           if e.get("event_type") == "flow" and e.get("asset", {}).get("name") == "bigip1"
           and e.get("network_direction") == "egress")
c.check(st == 200 and bigip and bigip[0]["bytes"] == want and bigip[0]["top"],
        f"dashboard: bigip1 egress bytes summed over the sensors: {bigip[:1]} (want {want})")
st, body = dash.get("/api/protocols")
c.check(st == 200 and body.get("protocols"), f"dashboard: protocols {st}")
a0 = got[0] if got else {"src_ip": "", "dest_ip": ""}
st, body = dash.get(f"/api/flows?src={a0['src_ip']}&dest={a0['dest_ip']}")
c.check(st == 200 and body.get("flows") and all(f["src_ip"] == a0["src_ip"] for f in body["flows"]),
        f"dashboard: flows of an alert's pair: {st} {len(body.get('flows', []))}")
# SSE: a new sensor's alerts are pushed.
events_seen = []


def sse():
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{dash.port}/api/events", timeout=60) as r:
            for line in r:
                events_seen.append(line.decode("utf-8", "replace"))
    except OSError:
        pass


threading.Thread(target=sse, daemon=True).start()
time.sleep(0.5)
rc, err, ev_live = finish(*start("edge-live", demo, config("edge-live", "sensor_id: edge-live", policy=True), url))
deadline = time.time() + 15
while time.time() < deadline and not any('"sensor":"edge-live"' in l for l in events_seen):
    time.sleep(0.1)
c.check(rc == 0 and any(l.startswith("data: ") and '"sensor":"edge-live"' in l for l in events_seen),
        f"dashboard: SSE pushed the new sensor's alerts ({len(events_seen)} lines)")

# ---- forward: consumer groups across the cluster, a crash between write and XACK ----------------
fwd_out = os.path.join(tmp, "forwarded.jsonl")
p = subprocess.run([sys.executable, FORWARDER, "--redis", cl.nodes[1].url, "--out", fwd_out, "--once",
                    "--count", "300", "--crash-after", "2000"], capture_output=True, text=True, timeout=300)
c.check(p.returncode == 3, f"forward: the first run was to crash: rc={p.returncode} {p.stderr[-300:]}")
fwd_streams = [k for k in scan_all(cl, "egress:*") if k.endswith((b":flows", b":alerts"))]
pending_before = sum(cl.master_of(k).client()("XPENDING", k, "siem")[0] for k in fwd_streams)
p = subprocess.run([sys.executable, FORWARDER, "--redis", cl.nodes[1].url, "--out", fwd_out, "--once"],
                   capture_output=True, text=True, timeout=300)
c.check(p.returncode == 0, f"forward: second run rc={p.returncode} {p.stderr[-300:]}")
with open(fwd_out) as f:
    fwd = [json.loads(line) for line in f]
per_stream = collections.Counter((e["stream"], e["id"]) for e in fwd)
c.check(max(per_stream.values()) == 1, "forward: an entry was written twice")
fwd_flows = collections.Counter(e["fields"]["flow_id"] for e in fwd if e["stream"].endswith(":flows"))
want_flows = collections.Counter()
for sid in list(runs) + ["edge-live"]:
    evs = results[sid][2] if sid in results else ev_live
    want_flows.update(str(e["flow_id"]) for e in evs if e.get("event_type") == "flow")
c.check(fwd_flows == want_flows, f"forward: {sum(fwd_flows.values())} flow entries forwarded, "
        f"{sum(want_flows.values())} records written by the sensors")
fwd_alerts = sum(1 for e in fwd if e["stream"].endswith(":alerts"))
c.check(fwd_alerts == want_alerts + sum(1 for e in ev_live if e.get("event_type") == "alert"),
        f"forward: {fwd_alerts} alerts forwarded")
pending_after = sum(cl.master_of(k).client()("XPENDING", k, "siem")[0] for k in fwd_streams)
c.check(pending_before > 0 and pending_after == 0,
        f"forward: pending entries {pending_before} after the crash, {pending_after} at the end")

# ---- failover: kill -9 the master of a running sensor's stream ---------------------------------
sid = "fo-1"
key = f"egress:{{{sid}}}:flows"
m = cl.master_of(key)
mc = m.client()
info = mc("INFO", "replication").decode()
rport = int(next(l for l in info.split("\r\n") if l.startswith("slave0:")).split("port=")[1].split(",")[0])
seed = next(n for n in cl.alive() if n is not m)
proc, out = start(sid, big, config(sid, f"sensor_id: {sid}"), seed.url)
deadline = time.time() + 60
while time.time() < deadline and mc("XLEN", key) < 6000 and proc.poll() is None:
    time.sleep(0.005)
seen = mc("XLEN", key)
running = proc.poll() is None
m.kill()
rc, err, events = finish(proc, out)
c.check(running and seen < NBIG, f"failover: the replay was over before the kill ({seen} entries)")
after = cl.wait_ok(masters=3)
new = cl.master_of(key)
c.check(new.port == rport, f"failover: the replica {rport} was not promoted: {after}")
st = redis_stats(events)
c.check(rc == 0 and st.get("dropped") == 0 and st.get("undelivered") == 0 and st.get("sent") == NBIG,
        f"failover: rc={rc} stats {st} {err[-800:]!r}")
got = collections.Counter(f[b"flow_id"] for _, f in new.client().xrange_all(key))
missing = flow_ids(events) - got
dups = sum((got - flow_ids(events)).values())
c.check(not missing and dups <= st.get("resent", 0),
        f"failover: {sum(missing.values())} records missing, {dups} twice (resent {st.get('resent')})")
ls = [l for l in err.splitlines() if l]
c.check(any("lost" in l for l in ls) and any("cluster map changed" in l and f":{rport}" in l for l in ls),
        f"failover: log {ls}")
st, body = dash.get("/api/sensors")
c.check(st == 200 and sid in [s["id"] for s in body.get("sensors", [])], f"failover: dashboard after it {st}")


# ---- lagging: a replica behind when its master dies -------------------------------------------
def lagging(label, extra):
    """A sensor whose master's replica stops reading (SIGSTOP; the master
    drops it past a small output buffer), the master killed, the replica
    resumed and promoted. Returns (rc, missing, stats)."""
    for i in range(100):
        sid = f"{label}-{i}"
        key = f"egress:{{{sid}}}:flows"
        m = cl.master_of(key)
        info = m.client()("INFO", "replication").decode()
        line = next((l for l in info.split("\r\n") if l.startswith("slave0:")), None)
        if line:
            break
    rep = cl.node(int(line.split("port=")[1].split(",")[0]))
    mc = m.client()
    mc("CONFIG", "SET", "client-output-buffer-limit", "replica 256kb 256kb 0")
    seed = next(n for n in cl.alive() if n is not m)
    proc, out = start(sid, big, config(sid, f"sensor_id: {sid}\n{extra}"), seed.url)
    while mc("XLEN", key) < 4000 and proc.poll() is None:
        time.sleep(0.005)
    rep.proc.send_signal(signal.SIGSTOP)
    time.sleep(0.8)
    m.kill()
    time.sleep(0.2)
    rep.proc.send_signal(signal.SIGCONT)
    rc, err, events = finish(proc, out)
    cl.wait_ok(masters=3)
    new = cl.master_of(key)
    got = collections.Counter(f[b"flow_id"] for _, f in new.client().xrange_all(key))
    return rc, sum((flow_ids(events) - got).values()), redis_stats(events), new.port == rep.port, err


rc, missing, st, promoted, err = lagging("lag-nowait", "wait_replicas: 0")
c.check(rc == 0 and promoted and missing > 0 and st.get("sent") == NBIG,
        f"lagging, no WAIT: the scenario should lose acknowledged records: rc={rc} missing={missing} "
        f"promoted={promoted} {st}")
rc, missing, st, promoted, err = lagging("lag-wait", "")
c.check(rc == 0 and promoted and missing == 0 and st.get("dropped") == 0 and st.get("resent", 0) > 0,
        f"lagging, WAIT: rc={rc} missing={missing} promoted={promoted} {st} {err[-600:]!r}")

# ---- seeds: the URL's node down, a seed answers ----------------------------------------------
dead = free_port()
live = cl.alive()[0]
rc, err, events = finish(*start("seeded", demo, config("seeded", f"sensor_id: seeded\nseeds: ['127.0.0.1:{live.port}']"),
                                f"redis://127.0.0.1:{dead}"))
key = "egress:{seeded}:flows"
c.check(rc == 0 and cl.master_of(key).client()("XLEN", key) == 31, f"seeds: rc={rc} {err!r}")
dash.stop()
cl.destroy()

# ---- one server with a replica: WAIT ------------------------------------------------------------
prim = RedisServer().start()
repl = RedisServer(args=["--replicaof", "127.0.0.1", str(prim.port)]).start()
deadline = time.time() + 20
while time.time() < deadline and b"connected_slaves:1" not in prim.client()("INFO", "replication"):
    time.sleep(0.05)


def wait_calls():
    stats = prim.client()("INFO", "commandstats").decode()
    line = next((l for l in stats.split("\r\n") if l.startswith("cmdstat_wait:")), "")
    return int(line.split("calls=")[1].split(",")[0]) if line else 0


rc, err, events = finish(*start("w-auto", demo, config("w-auto", "sensor_id: w-auto"), prim.url))
n_auto = wait_calls()
c.check(rc == 0 and n_auto > 0 and prim.client()("XLEN", "egress:flows") == 31,
        f"one server, auto: rc={rc} WAIT calls {n_auto} {err!r}")
rc, err, events = finish(*start("w-off", demo, config("w-off", "sensor_id: w-off\nwait_replicas: 0"), prim.url))
c.check(rc == 0 and wait_calls() == n_auto, f"one server, wait_replicas 0: WAIT calls {wait_calls()} (was {n_auto})")
t0 = time.time()
rc, err, events = finish(*start("w-two", demo, config("w-two", "sensor_id: w-two\nwait_replicas: 2\n"
                                                    "wait_timeout_ms: 100\ndrain_timeout: 2"), prim.url))
st = redis_stats(events)
ls = [l for l in err.splitlines() if l]
c.check(rc == 1 and st.get("undelivered") == 31 and st.get("sent") == 0 and
        "1 of 2 replicas confirmed writes within 100 ms" in err and
        "31 of them written but not confirmed by a replica" in (ls[-1] if ls else ""),
        f"one server, 2 replicas asked, 1 there: rc={rc} stats {st} {ls}")
c.check(prim.client()("XLEN", "egress:flows") == 31 * 3, "one server: the unconfirmed records are in the stream too")
prim.destroy()
repl.destroy()

# ---- bad input -------------------------------------------------------------------------------------
rc, err, _ = finish(*start("unix-seeds", demo, config("unix-seeds", "seeds: ['127.0.0.1:1']"), "unix:///tmp/x.sock"))
c.check(rc == 2 and err.strip() == "egressd: --redis: redis.seeds: a unix:// redis.url takes no seeds (a cluster is reached over TCP)",
        f"bad input: seeds with a unix URL: rc={rc} {err!r}")
cl2 = RedisCluster(masters=3, replicas=0).start()
rc, err, _ = finish(*start("db-cluster", demo, config("db-cluster", "sensor_id: x"), cl2.url() + "/2"))
c.check(rc == 2 and "is a cluster, which has database 0 only (drop /2)" in err and len(err.strip().splitlines()) == 1,
        f"bad input: a database on a cluster: rc={rc} {err!r}")
cl2.destroy()

c.done()
