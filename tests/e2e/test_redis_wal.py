"""Redis sink holding on under faults, against a real redis-server:

- egressd killed with SIGKILL mid-replay while Redis is away: every record
  of its JSON file reaches Redis through the next run, none twice (the
  named spool is a write-ahead log);
- a spool left full by an outage: the next run drops none of its own
  records while Redis takes writes;
- an outage long enough to fill the aggregate table: the aggregates are
  complete once Redis is back;
- Redis refusing writes in the middle of a run (maxmemory with noeviction,
  an ACL without XADD): nothing lost, nothing written twice, each refusal
  said once;
- the spool's disk full (a file size limit): records through memory, none
  dropped."""
import collections
import os
import signal
import subprocess
import time

from egrtest import BIN, PKTGEN, Checker, temp_dir
from redisharness import (RedisServer, expected_aggregates, finish_replay, free_port, redis_stats,
                          start_replay, write_udp_flows)

c = Checker("test_redis_wal")
tmp = temp_dir(prefix="egressd-redis-wal-")
demo = os.path.join(tmp, "demo.pcap")
p = subprocess.run([PKTGEN, "demo", demo], capture_output=True)
c.check(p.returncode == 0, f"pktgen demo: {p.stderr!r}")
DEMO_FLOWS = 31


def config(name, lines):
    path = os.path.join(tmp, name + ".yaml")
    with open(path, "w") as f:
        f.write("geoip:\n  country_db: \"\"\n  asn_db: \"\"\nredis:\n  flows_maxlen: 0\n" + lines)
    return path


def start(name, pcap, cfg, url):
    return start_replay(BIN, tmp, name, pcap, cfg, url)


def finish(proc, out, timeout=120):
    return finish_replay(proc, out, timeout)


def flow_keys(events):
    return [(str(e["flow_id"]).encode(), str(e["flow"].get("seq", 0)).encode())
            for e in events if e.get("event_type") == "flow"]


def stream_keys(cli, key="egress:flows"):
    return [(f[b"flow_id"], f.get(b"seq", b"0")) for _, f in cli.xrange_all(key)]


def lines(err):
    return [l for l in err.splitlines() if l]


def lines_of_file(path):
    """Whole lines in a file (a killed writer may leave half a line)."""
    import json
    out = []
    with open(path, "rb") as f:
        for line in f:
            if line.endswith(b"\n"):
                out.append(json.loads(line))
    return out


# ---- SIGKILL of egressd while Redis is away -----------------------------------------------------
# The replay runs for seconds without Redis; it is killed half way, with
# records in memory and in the spool. Then Redis starts and a second run
# (another, small capture) with the same spool delivers what the first
# left: every record of the first run's JSON file, each exactly once.
big = os.path.join(tmp, "udp120k.pcap")
NBIG = 120000
write_udp_flows(big, NBIG)
spool_dir = os.path.join(tmp, "kill-spool")
port = free_port()
cfg = config("sigkill", f"  sensor_id: k\n  spool_dir: {spool_dir}\n")
t0 = time.time()
proc, out1 = start("sigkill1", big, cfg, f"redis://127.0.0.1:{port}")
spool = os.path.join(spool_dir, "k.spool")
deadline = time.time() + 60
while time.time() < deadline and proc.poll() is None:
    if os.path.exists(out1) and os.path.getsize(out1) > 25 << 20:
        break
    time.sleep(0.02)
running = proc.poll() is None
proc.send_signal(signal.SIGKILL)
proc.communicate(timeout=30)
killed = lines_of_file(out1)
want = flow_keys(killed)
c.check(running and 1000 < len(want) < NBIG,
        f"sigkill: killed mid-replay ({len(want)} of {NBIG} records in the file, running={running})")
c.check(os.path.exists(spool) and os.path.getsize(spool) > 64, "sigkill: the spool holds the records")
srv = RedisServer(port=port).start(same_port=True)
cli = srv.client()
rc, err, events = finish(*start("sigkill2", demo, cfg, srv.url))
got = collections.Counter(stream_keys(cli))
missing = collections.Counter(want) - got
c.check(rc == 0, f"sigkill: second run rc={rc} {err[-600:]!r}")
c.check(not missing, f"sigkill: {sum(missing.values())} records of the killed run's file not in Redis")
dups = [k for k, n in got.items() if n > 1]
c.check(not dups, f"sigkill: {len(dups)} records in the stream twice, e.g. {dups[:3]}")
c.check(set(flow_keys(events)) <= set(got), "sigkill: the second run's own records are there")
st = redis_stats(events)
c.check(st.get("dropped") == 0 and st.get("undelivered") == 0 and st.get("unspooled") == 0,
        f"sigkill: stats {st}")
c.check("records from an earlier run" in err, f"sigkill: recovery said {lines(err)}")
c.check(not os.path.exists(spool), "sigkill: the spool is removed once delivered")
print(f"sigkill: {len(want)} records in the killed run's file, {sum(got.values())} in Redis, "
      f"{time.time() - t0:.1f} s")
srv.destroy()

# ---- SIGKILL while Redis takes writes -----------------------------------------------------------
# Killed with records in flight: the next run sends again only what Redis
# may have written without its answer being recorded in the spool, at most
# the records in flight (8 x redis.batch_records); nothing of the file is
# missing.
srv = RedisServer().start()
cli = srv.client()
cfg = config("upkill", f"  sensor_id: u\n  spool_dir: {os.path.join(tmp, 'up-spool')}\n")
proc, out1 = start("upkill1", big, cfg, srv.url)
deadline = time.time() + 60
while time.time() < deadline and proc.poll() is None and cli("XLEN", "egress:flows") < NBIG // 3:
    time.sleep(0.005)
running = proc.poll() is None
proc.send_signal(signal.SIGKILL)
proc.communicate(timeout=30)
want = flow_keys(lines_of_file(out1))
rc, err, events = finish(*start("upkill2", demo, cfg, srv.url))
got = collections.Counter(stream_keys(cli))
missing = collections.Counter(want) - got
dups = sum(n - 1 for n in got.values() if n > 1)
c.check(running and rc == 0 and not missing,
        f"sigkill, Redis up: running={running} rc={rc}, {sum(missing.values())} of {len(want)} missing")
c.check(dups <= 8 * 256, f"sigkill, Redis up: {dups} records written twice (at most those in flight)")
print(f"sigkill, Redis up: {len(want)} records in the killed run's file, {dups} written twice")
srv.destroy()

# ---- a spool left full by an outage: the next run's records still go through -------------------
# First run: Redis away, a spool of 64 KiB that fills: the rest of the
# records wait in memory (said once), and what the spool can hold at the end
# is kept for the next run. Second run: the spool is still full when its
# records come (Redis holds writes back for its first 3 s), and none is
# dropped: they go through memory, ahead of the backlog on disk.
full_dir = os.path.join(tmp, "full-spool")
udp = os.path.join(tmp, "udp2k.pcap")
write_udp_flows(udp, 2000)
port = free_port()
cfg = config("full", f"  sensor_id: f\n  spool_dir: {full_dir}\n  spool_max_bytes: 65536\n"
                     f"  drain_timeout: 1\n")
rc, err, events = finish(*start("full1", udp, cfg, f"redis://127.0.0.1:{port}"))
st1 = redis_stats(events)
c.check(rc == 1 and st1.get("dropped") == 0 and 0 < st1.get("unspooled", 0) < 2000,
        f"full spool: first run rc={rc} stats {st1}")
c.check(sum("cannot take more" in l for l in lines(err)) == 1,
        f"full spool: said once that records are kept in memory only: {lines(err)}")
srv = RedisServer(port=port).start(same_port=True)
cli = srv.client()
cli("CLIENT", "PAUSE", 3000, "WRITE")  # past a slow (sanitized) start
cfg = config("full2", f"  sensor_id: f\n  spool_dir: {full_dir}\n  spool_max_bytes: 65536\n")
rc, err, events = finish(*start("full2", udp, cfg, srv.url))
st = redis_stats(events)
n = cli("XLEN", "egress:flows")
kept = st.get("records", 0) - 2000
c.check(0 < kept < 2000 and f"{kept} records from an earlier run" in err,
        f"full spool: {kept} records kept by the first run {lines(err)}")
c.check(rc == 0 and st.get("dropped") == 0 and n == 2000 + kept and st.get("unspooled", 0) > 0,
        f"full spool: second run rc={rc} XLEN={n} (want {2000 + kept}) stats {st} {lines(err)}")
got = collections.Counter(stream_keys(cli))
c.check(all(got[k] >= 1 for k in flow_keys(events)), "full spool: every record of the second run in Redis")
print(f"full spool: {kept} kept by the first run, {st.get('unspooled')} of the second run through memory only")
srv.destroy()

# ---- the spool's disk full: records go through memory, none dropped -----------------------------
# The file size limit (RLIMIT_FSIZE, SIGXFSZ ignored) stands in for a full
# disk: a write past 256 KiB fails (EFBIG), as one on a full tmpfs does
# (ENOSPC). Redis comes once the spool has failed; nothing is dropped, the failure is said
# once. The JSON goes to a pipe, which the limit does not bind.
import resource


def limit_files():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10, 256 << 10))


port = free_port()
cfg = config("efbig", f"  sensor_id: e\n  spool_dir: {os.path.join(tmp, 'efbig-spool')}\n")
errpath = os.path.join(tmp, "efbig.err")
with open(errpath, "wb") as errf:
    proc = subprocess.Popen([BIN, "-r", udp, "--json", "-", "-c", cfg, "--redis", f"redis://127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=errf, preexec_fn=limit_files)
# The JSON is read all along (a full pipe would hold the worker), and Redis
# comes only once the spool has met the limit, however slow the build is.
import json
import threading
outbuf = []
reader = threading.Thread(target=lambda: outbuf.append(proc.stdout.read()))
reader.start()
deadline = time.time() + 60
while time.time() < deadline and proc.poll() is None:
    with open(errpath, "rb") as f:
        if b"cannot take more" in f.read():
            break
    time.sleep(0.05)
srv = RedisServer(port=port).start(same_port=True)
cli = srv.client()
proc.wait(timeout=120)
reader.join(timeout=120)
events = [json.loads(l) for l in outbuf[0].splitlines()] if outbuf else []
with open(errpath, "rb") as f:
    err = f.read().decode("utf-8", "replace")
st = redis_stats(events)
n = cli("XLEN", "egress:flows")
c.check(proc.returncode == 0 and n == 2000 and st.get("dropped") == 0 and 0 < st.get("unspooled", 0) < 2000,
        f"spool disk full: rc={proc.returncode} XLEN={n} stats {st} {lines(err)}")
c.check(sum("cannot take more" in l and "File too large" in l for l in lines(err)) == 1,
        f"spool disk full: said once {lines(err)}")
srv.destroy()

# ---- aggregates across an outage that fills the aggregate table -------------------------------
# 25,000 flows to as many destinations: twice the 32,768 sums of the table
# while Redis is away. Redis starts once the replay is over.
dst = os.path.join(tmp, "dst25k.pcap")
write_udp_flows(dst, 25000, distinct_dst=True)
for label, extra in (("memory", ""), ("spool", f"  spool_dir: {os.path.join(tmp, 'agg-spool')}\n")):
    port = free_port()
    proc, out = start(f"agg-{label}", dst, config(f"agg-{label}", "  sensor_id: a\n" + extra),
                      f"redis://127.0.0.1:{port}")
    time.sleep(2.0)
    srv = RedisServer(port=port).start(same_port=True)
    cli = srv.client()
    rc, err, events = finish(proc, out)
    c.check(rc == 0 and "aggregates incomplete" not in err, f"aggregates ({label}): rc={rc} {lines(err)}")
    hashes, tops, dests = expected_aggregates([e for e in events if e.get("event_type") == "flow"])
    bad = 0
    for k, members in hashes.items():
        got = {m.decode(): int(v) for m, v in cli.hgetall(k).items()}
        bad += got != members
    for k, members in tops.items():
        flat = cli("ZRANGE", k, 0, -1, "WITHSCORES")
        got = {flat[i].decode(): int(float(flat[i + 1])) for i in range(0, len(flat), 2)}
        bad += got != members
    ndest = sum(len(m) for m in tops.values())
    c.check(bad == 0 and ndest == 25000, f"aggregates ({label}): {bad} keys differ of {len(hashes) + len(tops)}")
    st = redis_stats(events)
    c.check(st.get("aggregates_unwritten") == 0, f"aggregates ({label}): stats {st}")
    srv.destroy()


# ---- refusals in the middle of a run --------------------------------------------------------------
mid = os.path.join(tmp, "udp40k.pcap")
NMID = 40000
write_udp_flows(mid, NMID)


def refusal_mid_run(label, srv, admin, url, set_fault, clear_fault, refusal):
    """Replays a 40,000-flow capture; once part of it is in Redis the fault is
    set, held a second, and cleared. Every record arrives once; the
    refusal is said once, and that it is over once."""
    proc, out = start(label, mid, config(label, f"  sensor_id: {label}\n"), url)
    deadline = time.time() + 60
    while time.time() < deadline and admin("XLEN", "egress:flows") < 5000:
        time.sleep(0.01)
    set_fault()
    before = admin("XLEN", "egress:flows")
    time.sleep(1.0)
    during = admin("XLEN", "egress:flows")
    clear_fault()
    rc, err, events = finish(proc, out)
    got = collections.Counter(stream_keys(admin))
    want = flow_keys(events)
    st = redis_stats(events)
    c.check(during - before <= 1 and before < NMID, f"{label}: writes refused while set ({before} -> {during})")
    c.check(rc == 0 and len(got) == NMID and set(want) == set(got) and max(got.values()) == 1,
            f"{label}: rc={rc}, {len(got)} distinct of {NMID}, max {max(got.values() or [0])} each; {lines(err)}")
    c.check(st.get("sent") == NMID and st.get("dropped") == 0, f"{label}: stats {st}")
    ls = lines(err)
    c.check(sum(refusal in l for l in ls) == 1 and sum("accepts writes again" in l for l in ls) == 1,
            f"{label}: the refusal said once: {ls}")


srv = RedisServer().start()
admin = srv.client()
refusal_mid_run("oom", srv, admin, srv.url,
                lambda: (admin("CONFIG", "SET", "maxmemory-policy", "noeviction"),
                         admin("CONFIG", "SET", "maxmemory", "1mb")),
                lambda: admin("CONFIG", "SET", "maxmemory", "0"),
                "refuses writes: OOM")
srv.destroy()

acl = ["user default off",
       "user admin on >admin-secret ~* &* +@all",
       "user sensor on >s3cret ~egress:* &egress:* -@all +auth +select +ping +xadd +hincrby +expire "
       "+pfadd +zincrby +zadd +zremrangebyrank +hset +sadd +publish +info +cluster|slots"]
srv = RedisServer(acl=acl, admin=("admin", "admin-secret")).start()
admin = srv.client()
refusal_mid_run("acl", srv, admin, f"redis://sensor:s3cret@127.0.0.1:{srv.port}",
                lambda: admin("ACL", "SETUSER", "sensor", "-xadd"),
                lambda: admin("ACL", "SETUSER", "sensor", "+xadd"),
                "refuses writes: NOPERM")
srv.destroy()

c.done()
