#!/usr/bin/env bash
# Many sensors into one Redis or a Redis Cluster: records/s that SENSORS egressd processes (8 by
# default) push at once, each replaying its own capture of FLOWS one-packet UDP flows (so nearly
# every packet is a record), into
#   - one redis-server (the shared layout, as auto chooses on one server),
#   - one redis-server with the per-sensor layout (the keys alone differ),
#   - a 3-master cluster without replicas (per-sensor layout, nothing to WAIT for),
#   - a 3-master + 3-replica cluster (per-sensor layout, WAIT for one replica: the default),
#   - the same cluster with redis.wait_replicas 0.
# Every server runs on loopback with --save "" --appendonly no (tests/e2e/redisharness.py); all
# are emptied before each run. A run is timed from the first sensor's start to the last one's
# exit (each waits for its records to be acknowledged, and confirmed when WAIT is on) and checked:
# every sensor exits 0 and the streams hold every record. Each configuration runs ROUNDS times
# round-robin; the table shows the medians. Markdown on stdout, progress on stderr.
#
# Usage: bench/redis-cluster.sh
# Env:
#   ROUNDS       rounds per configuration (default 3)
#   SENSORS      sensors at once (default 8)
#   FLOWS        flow records per sensor (default 40000)
#   EGRESSD_BIN  egressd binary (default <repo>/build/egressd)
#
# Never part of the test suite.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
export EGRESSD_BIN=${EGRESSD_BIN:-$repo/build/egressd}
export ROUNDS=${ROUNDS:-3} SENSORS=${SENSORS:-8} FLOWS=${FLOWS:-40000}
for v in ROUNDS SENSORS FLOWS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "redis-cluster.sh: $v must be a positive integer" >&2; exit 2; }
done
[[ -x $EGRESSD_BIN ]] || { echo "redis-cluster.sh: no egressd at $EGRESSD_BIN (build it, or set EGRESSD_BIN)" >&2; exit 1; }
for t in redis-server redis-cli python3; do
  command -v "$t" >/dev/null || { echo "redis-cluster.sh: $t is not installed" >&2; exit 1; }
done

exec python3 - "$repo" <<'EOF'
import os, statistics, subprocess, sys, tempfile, time
repo = sys.argv[1]
sys.path.insert(0, os.path.join(repo, "tests", "e2e"))
from redisharness import RedisCluster, RedisServer, write_udp_flows  # noqa: E402

BIN = os.environ["EGRESSD_BIN"]
ROUNDS, SENSORS, FLOWS = (int(os.environ[k]) for k in ("ROUNDS", "SENSORS", "FLOWS"))
say = lambda *a: print("redis-cluster.sh:", *a, file=sys.stderr, flush=True)  # noqa: E731
tmp = tempfile.mkdtemp(prefix="egressd-bench-cluster-")
caps = []
for i in range(SENSORS):
    path = os.path.join(tmp, f"s{i}.pcap")
    write_udp_flows(path, FLOWS, t0=1700000000.0 + i * 1000)
    caps.append(path)
say(f"{SENSORS} captures of {FLOWS} flows in {tmp}")

single = RedisServer().start()
c0 = RedisCluster(masters=3, replicas=0).start()
c1 = RedisCluster(masters=3, replicas=1).start()
say("servers up")


def cfg(name, lines):
    path = os.path.join(tmp, name + ".yaml")
    with open(path, "w") as f:
        f.write('geoip:\n  country_db: ""\n  asn_db: ""\nredis:\n  drain_timeout: 120\n' + lines)
    return path


confs = [
    ("one Redis, shared layout", lambda: [single], single.url, ""),
    ("one Redis, per-sensor layout", lambda: [single], single.url, "  layout: per_sensor\n"),
    ("cluster 3 masters, no replicas", c0.masters, c0.url(), ""),
    ("cluster 3+3, WAIT 1 replica (default)", c1.masters, c1.url(), ""),
    ("cluster 3+3, wait_replicas 0", c1.masters, c1.url(), "  wait_replicas: 0\n"),
]


def stream_total(masters):
    n = 0
    for m in masters:
        c = m.client()
        for k in c.keys("egress:*flows"):
            if c("TYPE", k) == b"stream":
                n += c("XLEN", k)
        c.close()
    return n


def run(ci):
    name, masters, url, lines = confs[ci]
    for m in masters():
        m.client()("FLUSHALL")
    procs = []
    t0 = time.time()
    for i in range(SENSORS):
        c = cfg(f"c{ci}-s{i}", f"  sensor_id: s{i}\n  flows_maxlen: 0\n{lines}")
        procs.append(subprocess.Popen([BIN, "-r", caps[i], "--json", "/dev/null", "-c", c, "--redis", url],
                                      stderr=subprocess.PIPE))
    errs = [p.communicate()[1] for p in procs]
    wall = time.time() - t0
    bad = [(i, p.returncode, e.decode()[-300:]) for i, (p, e) in enumerate(zip(procs, errs)) if p.returncode]
    if bad:
        sys.exit(f"redis-cluster.sh: {name}: sensors failed: {bad}")
    got = stream_total(masters())
    if got < SENSORS * FLOWS:
        sys.exit(f"redis-cluster.sh: {name}: {got} entries, want {SENSORS * FLOWS}")
    return wall, got


walls = {i: [] for i in range(len(confs))}
for r in range(ROUNDS):
    for i in range(len(confs)):
        w, got = run(i)
        walls[i].append(w)
        say(f"round {r + 1}/{ROUNDS}: {confs[i][0]}: {w:.2f} s, {got} entries")

ver = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
print(f"{SENSORS} sensors at once, {FLOWS} flow records each ({SENSORS * FLOWS} in all), "
      f"{os.cpu_count()} CPUs, redis-server {ver.replace('v=', '')}, median of {ROUNDS}:")
print()
print("| configuration | wall s | records/s | vs one Redis |")
print("|---|---:|---:|---:|")
base = SENSORS * FLOWS / statistics.median(walls[0])
for i, (name, _, _, _) in enumerate(confs):
    w = statistics.median(walls[i])
    rate = SENSORS * FLOWS / w
    print(f"| {name} | {w:.2f} | {rate:,.0f} | {rate / base:.2f}x |")
for s in [single] + c0.nodes + c1.nodes:
    s.destroy()
EOF
