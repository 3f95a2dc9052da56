"""Redis sink under faults, each against a real redis-server: the server
absent at start, killed and restarted mid-replay, paused (CLIENT PAUSE,
DEBUG SLEEP) longer than the memory queue lasts, silent past redis.timeout,
refusing writes (maxmemory + noeviction), a wrong password, WRONGTYPE at a
key, a spool too small (exact drop count), and records kept in a named
spool for the next run. The capture always goes on, the JSON output is
always complete, and stderr gets one line per change of state."""
import collections
import os
import subprocess
import time

from egrtest import BIN, PKTGEN, Checker, temp_dir
from redisharness import (RedisServer, bucket, finish_replay, free_port, redis_stats, start_replay,
                          write_udp_flows)

c = Checker("test_redis_faults")
tmp = temp_dir(prefix="egressd-redis-faults-")
demo = os.path.join(tmp, "demo.pcap")
p = subprocess.run([PKTGEN, "demo", demo], capture_output=True)
c.check(p.returncode == 0, f"pktgen demo: {p.stderr!r}")
DEMO_FLOWS = 31


def config(name, lines):
    path = os.path.join(tmp, name + ".yaml")
    with open(path, "w") as f:
        f.write("geoip:\n  country_db: \"\"\n  asn_db: \"\"\nredis:\n" + lines)
    return path


def start(name, pcap, cfg, url):
    return start_replay(BIN, tmp, name, pcap, cfg, url)


def finish(proc, out, timeout=120):
    return finish_replay(proc, out, timeout)


def nflows(events):
    return sum(1 for e in events if e.get("event_type") == "flow")


def lines(err):
    return [l for l in err.splitlines() if l]


def complete_json(label, events, want=DEMO_FLOWS):
    c.check(nflows(events) == want and events and events[-1].get("event_type") == "stats",
            f"{label}: JSON output incomplete: {nflows(events)} flows")


# ---- the server does not exist yet when the sensor starts --------------------------------------
port = free_port()
srv = RedisServer(port=port)
t0 = time.time()
proc, out = start("late", demo, config("late", "  sensor_id: late\n"), f"redis://127.0.0.1:{port}")
time.sleep(1.0)
srv.start(same_port=True)
rc, err, events = finish(proc, out)
cli = srv.client()
c.check(rc == 0 and cli("XLEN", "egress:flows") == DEMO_FLOWS, f"late server: rc={rc} {err!r}")
st = redis_stats(events)
c.check(st.get("sent") == DEMO_FLOWS and st.get("undelivered") == 0, f"late server: stats {st}")
ls = lines(err)
c.check(len(ls) == 2 and "cannot connect" in ls[0] and "connected to" in ls[1] and "after" in ls[1],
        f"late server: two state lines expected: {ls}")
c.check(cli("EXISTS", "egress:sensor:late") == 1, "late server: heartbeat written once connected")
srv.destroy()

# ---- killed (SIGKILL) and restarted in the middle of a replay ----------------------------------
big = os.path.join(tmp, "udp40k.pcap")
NBIG = 40000
write_udp_flows(big, NBIG)
srv = RedisServer(persist=True).start()
proc, out = start("kill", big, config("kill", "  sensor_id: k\n"), srv.url)
watch = srv.client()
deadline = time.time() + 60
while time.time() < deadline and watch("XLEN", "egress:flows") < NBIG // 6 and proc.poll() is None:
    time.sleep(0.01)
still_running = proc.poll() is None
seen_before = watch("XLEN", "egress:flows")
srv.kill()
time.sleep(0.7)
srv.restart()
rc, err, events = finish(proc, out)
c.check(still_running and seen_before < NBIG, f"kill: the replay was over before the kill ({seen_before} entries)")
c.check(rc == 0, f"kill: rc={rc} {err[-800:]!r}")
complete_json("kill", events, NBIG)
cli = srv.client()
ids = collections.Counter(f[b"flow_id"] for _, f in cli.xrange_all("egress:flows"))
want = collections.Counter(str(e["flow_id"]).encode() for e in events if e.get("event_type") == "flow")
missing = want - ids
c.check(not missing, f"kill: {sum(missing.values())} records lost")
dups = sum((ids - want).values())
c.check(dups <= 4096, f"kill: {dups} records written twice (only those in flight may be)")
st = redis_stats(events)
c.check(st.get("sent") == NBIG and st.get("dropped") == 0 and st.get("undelivered") == 0 and
        st.get("reconnects", 0) >= 1, f"kill: stats {st}")
ls = lines(err)
c.check(any("connection to" in l and "lost" in l for l in ls) and any("connected to" in l and "after" in l for l in ls)
        and len(ls) <= 6, f"kill: state lines {ls}")
srv.destroy()

# ---- paused longer than the memory queue lasts: the spool takes the rest ---------------------
srv = RedisServer().start()
cli = srv.client()
cli("CLIENT", "PAUSE", 2500, "ALL")
t0 = time.time()
proc, out = start("pause", demo, config("pause", "  sensor_id: p\n  queue_max_records: 4\n"), srv.url)
rc, err, events = finish(proc, out)
secs = time.time() - t0
n = srv.client()("XLEN", "egress:flows")
st = redis_stats(events)
c.check(rc == 0 and n == DEMO_FLOWS, f"pause: rc={rc} XLEN={n} {err!r}")
c.check(st.get("queued") == 4 and st.get("spooled") == DEMO_FLOWS - 4 and st.get("dropped") == 0 and
        st.get("sent") == DEMO_FLOWS, f"pause: stats {st}")
c.check(secs >= 2.0, f"pause: finished in {secs:.1f} s, before the pause ended")
ls = lines(err)
c.check(len(ls) == 3 and sum("spooling to" in l for l in ls) == 1 and "spool empty again" in ls[-1],
        f"pause: state lines {ls}")
srv.destroy()

# DEBUG SLEEP blocks the whole server (a stuck process), same outcome.
srv = RedisServer().start()
sleeper = srv.client()
sleeper.send("DEBUG", "SLEEP", "2")
time.sleep(0.1)
proc, out = start("sleep", demo, config("sleep", "  queue_max_records: 1\n  sensor_id: d\n"), srv.url)
rc, err, events = finish(proc, out)
st = redis_stats(events)
c.check(rc == 0 and srv.client()("XLEN", "egress:flows") == DEMO_FLOWS and st.get("spooled", 0) >= DEMO_FLOWS - 1,
        f"debug sleep: rc={rc} stats {st} {err!r}")
srv.destroy()

# ---- silent past redis.timeout: reconnect, everything delivered at least once -----------------
srv = RedisServer().start()
sleeper = srv.client()
proc, out = start("silent", demo, config("silent", "  timeout: 1\n  sensor_id: q\n"), srv.url)
time.sleep(0.3)
sleeper.send("DEBUG", "SLEEP", "3")
rc, err, events = finish(proc, out)
cli = srv.client()
ids = set(f[b"flow_id"] for _, f in cli.xrange_all("egress:flows"))
c.check(rc == 0 and len(ids) == DEMO_FLOWS, f"silent: rc={rc} {len(ids)} distinct records {err!r}")
srv.destroy()

# ---- refusing writes (maxmemory, noeviction): kept, delivered once memory is allowed ----------
srv = RedisServer().start()
cli = srv.client()
cli("CONFIG", "SET", "maxmemory-policy", "noeviction")
cli("CONFIG", "SET", "maxmemory", "1")
proc, out = start("oom", demo, config("oom", "  sensor_id: o\n"), srv.url)
time.sleep(1.5)
c.check(cli("EXISTS", "egress:flows") == 0 and proc.poll() is None, "oom: nothing written while refused")
cli("CONFIG", "SET", "maxmemory", "0")
rc, err, events = finish(proc, out)
st = redis_stats(events)
c.check(rc == 0 and cli("XLEN", "egress:flows") == DEMO_FLOWS and st.get("sent") == DEMO_FLOWS and
        st.get("dropped") == 0, f"oom: rc={rc} stats {st} {err!r}")
ls = lines(err)
c.check(sum("refuses writes: OOM" in l for l in ls) == 1 and sum("accepts writes again" in l for l in ls) == 1
        and len(ls) == 3, f"oom: state lines {ls}")
# No record written twice: the XADDs refused were the only ones resent.
ids = collections.Counter(f[b"flow_id"] for _, f in cli.xrange_all("egress:flows"))
c.check(len(ids) == DEMO_FLOWS and max(ids.values()) == 1, "oom: a record was written twice")
srv.destroy()

# ---- spool too small: the drop count is exact ------------------------------------------------
srv = RedisServer().start()
cli = srv.client()
spool_dir = os.path.join(tmp, "tiny-spool")
cli("CLIENT", "PAUSE", 2000, "ALL")
proc, out = start("tiny", demo, config("tiny", f"  sensor_id: t\n  queue_max_records: 2\n"
                                              f"  spool_dir: {spool_dir}\n  spool_max_bytes: 4096\n"), srv.url)
rc, err, events = finish(proc, out)
complete_json("tiny spool", events)
n = srv.client()("XLEN", "egress:flows")
st = redis_stats(events)
c.check(rc == 1 and st.get("dropped", 0) > 0 and st.get("dropped") == DEMO_FLOWS - n and st.get("sent") == n
        and st.get("undelivered") == 0 and st.get("records") == DEMO_FLOWS and st.get("rejected") == 0,
        f"tiny spool: rc={rc} XLEN={n} stats {st}")
c.check(f"{st.get('dropped')} of {DEMO_FLOWS} records not delivered" in err and "spool full" in err and
        "dropped (queue and spool full)" in err, f"tiny spool: messages {err!r}")
c.check(sum(l.startswith("egressd: redis: spool full") for l in lines(err)) == 1,
        f"tiny spool: one line for the episode {lines(err)}")
c.check(not os.path.exists(os.path.join(spool_dir, "t.spool")), "tiny spool: an empty spool file is removed")
srv.destroy()

# ---- wrong password: one clear line, exit 1 after the deadline, JSON complete ------------------
srv = RedisServer(password="right").start()
t0 = time.time()
proc, out = start("wrongpass", demo, config("wrongpass", "  sensor_id: w\n  drain_timeout: 2\n"),
                  f"redis://:wrong@127.0.0.1:{srv.port}")
rc, err, events = finish(proc, out)
secs = time.time() - t0
complete_json("wrong password", events)
st = redis_stats(events)
ls = lines(err)
c.check(rc == 1 and 2.0 <= secs < 10, f"wrong password: rc={rc} after {secs:.1f} s")
c.check(len(ls) == 2 and "AUTH failed: WRONGPASS" in ls[0], f"wrong password: one AUTH line, then the summary: {ls}")
c.check(ls and f"{DEMO_FLOWS} of {DEMO_FLOWS} records not delivered" in ls[-1] and "WRONGPASS" in ls[-1]
        and ":wrong@" not in err and "wrong" not in ls[-1].split("WRONGPASS")[0],
        f"wrong password: final line (and no password shown): {ls[-1:]}")
c.check(st.get("sent") == 0 and st.get("undelivered") == DEMO_FLOWS and st.get("records") == DEMO_FLOWS,
        f"wrong password: stats {st}")
c.check(srv.client()("DBSIZE") == 0, "wrong password: nothing written")

# ---- a named spool keeps what was not delivered for the next run ------------------------------
keep = os.path.join(tmp, "keep-spool")
cfgkeep = config("keep", f"  sensor_id: kp\n  drain_timeout: 1\n  spool_dir: {keep}\n")
rc, err, events = finish(*start("keep1", demo, cfgkeep, f"redis://:wrong@127.0.0.1:{srv.port}"))
c.check(rc == 1 and f"kept in {keep}/kp.spool" in err and os.path.exists(os.path.join(keep, "kp.spool")),
        f"keep: first run rc={rc} {err!r}")
rc, err, events = finish(*start("keep2", demo, cfgkeep, f"redis://:right@127.0.0.1:{srv.port}"))
st = redis_stats(events)
n = srv.client()("XLEN", "egress:flows")
c.check(rc == 0 and n == 2 * DEMO_FLOWS and st.get("records") == 2 * DEMO_FLOWS and st.get("sent") == 2 * DEMO_FLOWS,
        f"keep: second run rc={rc} XLEN={n} stats {st} {err!r}")
c.check("records from an earlier run" in err, f"keep: recovery noted {err!r}")
c.check(not os.path.exists(os.path.join(keep, "kp.spool")), "keep: spool removed once delivered")
srv.destroy()

# ---- WRONGTYPE: the stream key holds a string -------------------------------------------------
srv = RedisServer().start()
cli = srv.client()
cli("SET", "egress:flows", "not a stream")
first_bucket = bucket("2025-10-15T08:00:20.000000+0000")  # the demo's first record
cli("SET", f"egress:agg:{first_bucket}:bytes:proto", "not a hash")
rc, err, events = finish(*start("wrongtype", demo, config("wrongtype", "  sensor_id: wt\n"), srv.url))
complete_json("wrongtype", events)
st = redis_stats(events)
c.check(rc == 1 and st.get("dropped") == DEMO_FLOWS and st.get("rejected") == DEMO_FLOWS and st.get("sent") == 0,
        f"wrongtype: rc={rc} stats {st}")
ls = lines(err)
c.check(sum("WRONGTYPE" in l and "XADD egress:flows" in l for l in ls[:-1]) == 1 and
        sum("an aggregate update" in l for l in ls[:-1]) == 1, f"wrongtype: one line per refusal: {ls}")
c.check(f"{DEMO_FLOWS} refused by Redis" in ls[-1], f"wrongtype: final line {ls[-1:]}")
c.check(cli("EXISTS", f"egress:agg:{first_bucket}:bytes:asset") == 1, "wrongtype: other aggregates still written")
srv.destroy()

c.done()
