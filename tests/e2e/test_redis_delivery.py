"""Redis sink, healthy server: what a replay writes to Redis equals its JSON
output (every flow record a stream entry with the same values, hostile
bytes included), the per-minute aggregates add up to the JSON's numbers and
expire, the heartbeat is there and expires, MAXLEN trims the stream, AUTH
works with a password and with an ACL user limited to the sensor's keys,
SELECT and unix sockets work, two sensors share one server, and a bad URL
is a clear error."""
import collections
import json
import os
import shutil
import subprocess

from egrtest import BIN, PKTGEN, SRC, Checker, need_shared, temp_dir
from redisharness import (Client, RedisServer, dns_names, entry_text, expected_aggregates, flat_alert,
                          flat_flow, read_events, run_egressd)

c = Checker("test_redis_delivery")
tmp = temp_dir(prefix="egressd-redis-test-")
mmdb = need_shared("testdata", "mmdb")
demo = os.path.join(tmp, "demo.pcap")
hostile = os.path.join(tmp, "hostile.pcap")
for kind, path in (("demo", demo), ("hostile", hostile)):
    p = subprocess.run([PKTGEN, kind, path], capture_output=True)
    c.check(p.returncode == 0, f"pktgen {kind}: {p.stderr!r}")


def config(name, redis_lines="", geo=True, drain=20):
    path = os.path.join(tmp, name + ".yaml")
    with open(path, "w") as f:
        if geo:
            f.write(f"geoip:\n  country_db: {mmdb}/GeoIP2-Country-Test.mmdb\n"
                    f"  asn_db: {mmdb}/GeoLite2-ASN-Test.mmdb\n")
        f.write(f"redis:\n  drain_timeout: {drain}\n" + redis_lines)
    return path


def replay(name, pcap, cfg, extra=()):
    out = os.path.join(tmp, name + ".json")
    rc, err, secs = run_egressd(BIN, ["-r", pcap, "--json", out, "-c", cfg] + list(extra))
    events = read_events(out) if os.path.exists(out) else []
    return rc, err, events


def compare_streams(label, cli, events, sensor, prefix="egress"):
    """Every flow (and alert) of the JSON is one stream entry with the same
    fields and values, and there is nothing else."""
    dns = dns_names(events)
    for kind, flat in (("flow", lambda e, s: flat_flow(e, s, dns)), ("alert", flat_alert)):
        want = collections.Counter()
        for e in events:
            if e.get("event_type") == kind:
                want[tuple(sorted(flat(e, sensor).items()))] += 1
        key = f"{prefix}:{kind}s"
        got = collections.Counter(tuple(sorted(entry_text(f).items())) for _, f in cli.xrange_all(key))
        c.check(sum(got.values()) == sum(want.values()),
                f"{label}: {key} has {sum(got.values())} entries, the JSON {sum(want.values())} {kind}s")
        missing, extra = want - got, got - want
        c.check(not missing and not extra,
                f"{label}: {key} differs from the JSON: missing {list(missing)[:2]}, unexpected {list(extra)[:2]}")


def compare_aggregates(label, cli, events, times=1, prefix="egress"):
    flows = [e for e in events if e.get("event_type") == "flow"]
    hashes, tops, dests = expected_aggregates(flows, prefix)
    c.check(len(hashes) >= 8 and tops and dests, f"{label}: expected aggregates computed: {len(hashes)}")
    got_keys = set(k.decode() for k in cli.keys(f"{prefix}:agg:*"))
    want_keys = set(hashes) | set(tops) | set(dests)
    c.check(got_keys == want_keys, f"{label}: aggregate keys differ: missing {sorted(want_keys - got_keys)[:3]} "
            f"unexpected {sorted(got_keys - want_keys)[:3]}")
    for k, members in hashes.items():
        got = {m.decode(): int(v) for m, v in cli.hgetall(k).items()}
        c.check(got == {m: v * times for m, v in members.items()}, f"{label}: {k}: {got} != {members} x{times}")
    for k, members in tops.items():
        flat = cli("ZRANGE", k, 0, -1, "WITHSCORES")
        got = {flat[i].decode(): int(float(flat[i + 1])) for i in range(0, len(flat), 2)}
        c.check(got == {m: v * times for m, v in members.items()}, f"{label}: {k}: {got} != {members} x{times}")
    for k, members in dests.items():
        n = cli("PFCOUNT", k)
        c.check(n == len(members), f"{label}: PFCOUNT {k} = {n}, want {len(members)}")
    ttls = [cli("TTL", k) for k in sorted(got_keys)]
    c.check(ttls and all(0 < t <= 7200 for t in ttls), f"{label}: aggregate TTLs {sorted(set(ttls))[:5]}")
    # The newest minute with aggregates, where a reader finds "the last hour".
    newest = max(int(k.split(":")[2]) for k in want_keys)
    got = cli("ZREVRANGE", f"{prefix}:agg_buckets", 0, 0)
    c.check(got == [str(newest).encode()] and 0 < cli("TTL", f"{prefix}:agg_buckets") <= 7200,
            f"{label}: agg_buckets newest {got}, want {newest}")


def stats_of(events):
    st = [e for e in events if e.get("event_type") == "stats"]
    return st[-1]["stats"] if st else {}


# ---- one replay over TCP: streams, aggregates, heartbeat --------------------------------------
srv = RedisServer().start()
cfg = config("basic", "  sensor_id: s1\n")
rc, err, events = replay("basic", demo, cfg, ["--redis", srv.url])
flows = [e for e in events if e.get("event_type") == "flow"]
c.check(rc == 0, f"basic: rc={rc} {err!r}")
c.check(len(flows) == 31, f"basic: {len(flows)} flows in the JSON")
lines = [l for l in err.splitlines() if l]
c.check(len(lines) == 1 and "connected to redis://127.0.0.1" in lines[0] and '"s1"' in lines[0],
        f"basic: one state line expected: {err!r}")
cli = srv.client()
compare_streams("basic", cli, events, "s1")
compare_aggregates("basic", cli, events)
st = stats_of(events).get("redis", {})
c.check(st.get("records") == 31 and st.get("sent") == 31 and st.get("queued") == 31 and
        st.get("spooled") == 0 and st.get("dropped") == 0 and st.get("undelivered") == 0 and
        st.get("reconnects") == 0, f"basic: stats.redis {st}")
hb = {k.decode(): v.decode() for k, v in cli.hgetall("egress:sensor:s1").items()}
cap = stats_of(events).get("capture", {})
c.check(hb.get("sent") == "31" and hb.get("packets") == str(cap.get("packets")) and
        hb.get("bytes") == str(cap.get("bytes")) and hb.get("version") and hb.get("start_time", "").endswith("+0000")
        and hb.get("queue_depth") == "0" and hb.get("dropped") == "0" and hb.get("drops") == "0"
        and hb.get("source") == f"file {demo}", f"basic: heartbeat {hb}")
ttl = cli("TTL", "egress:sensor:s1")
c.check(0 < ttl <= 60, f"basic: heartbeat TTL {ttl}")
c.check(cli("SMEMBERS", "egress:sensors") == [b"s1"], "basic: sensor set")
c.check(cli("TYPE", "egress:flows") == b"stream", "basic: flows is a stream")

# ---- with the demo policy: every alert in the alerts stream and published live -------------
cli("FLUSHALL")
os.makedirs(os.path.join(tmp, "intel"), exist_ok=True)
shutil.copy(os.path.join(SRC, "sensors", "intel", "demo-domains.txt"), os.path.join(tmp, "intel"))
with open(os.path.join(SRC, "sensors", "demo.yaml")) as f:
    policy_yaml = f.read()
cfg = config("policy", "  sensor_id: edge-1\n  alerts_maxlen: 1000\n")
with open(cfg) as f:
    cfg_text = f.read()
with open(cfg, "w") as f:
    f.write(policy_yaml + cfg_text)
sub = Client(path=srv.sock_path)
sub.send("SUBSCRIBE", "egress:alerts:live")
c.check(sub.reply() == [b"subscribe", b"egress:alerts:live", 1], "policy: subscribed")
rc, err, events = replay("policy", demo, cfg, ["--redis", srv.unix_url])
alerts = [e for e in events if e.get("event_type") == "alert"]
c.check(rc == 0 and len(alerts) == 7, f"policy: rc={rc}, {len(alerts)} alerts in the JSON (want 7): {err!r}")
c.check(cli("XLEN", "egress:alerts") == len(alerts), f"policy: XLEN egress:alerts = {cli('XLEN', 'egress:alerts')}")
compare_streams("policy", cli, events, "edge-1")
live = []
sub.sock.settimeout(5)
try:
    while len(live) < len(alerts):
        m = sub.reply()
        c.check(m[0] == b"message" and m[1] == b"egress:alerts:live", f"policy: pub/sub message {m[:2]}")
        live.append(json.loads(m[2]))
except (OSError, ValueError) as e:
    c.check(False, f"policy: reading published alerts: {e}")
sub.close()
c.check(sorted(a["alert"]["alert_key"] for a in live) == sorted(a["alert"]["alert_key"] for a in alerts),
        f"policy: {len(live)} alerts published on egress:alerts:live, keys equal to the JSON's")
pub = {a["alert"]["alert_key"]: a for a in live}
for a in alerts:
    b = pub.get(a["alert"]["alert_key"], {})
    c.check(b.get("dest_ip") == a["dest_ip"] and b.get("alert") == a["alert"] and b.get("geo") == a.get("geo"),
            f"policy: published alert {a['alert']['alert_key']} differs from the JSON")
st = stats_of(events).get("redis", {})
c.check(st.get("records") == 31 + 7 and st.get("sent") == 38 and st.get("dropped") == 0,
        f"policy: stats.redis counts flows and alerts: {st}")

# ---- hostile names: raw bytes arrive exactly, through a unix socket and SELECT --------------
cli("FLUSHALL")
cfg = config("hostile", f"  url: {srv.unix_url}?db=3\n  sensor_id: \"evil sensor\\r\\n*1\"\n")
rc, err, events = replay("hostile", hostile, cfg)
c.check(rc == 0, f"hostile: rc={rc} {err!r}")
c.check(err.count("\n") == 1 and "\\x0d\\x0a" in err, f"hostile: the sensor id is escaped in the log line: {err!r}")
c.check(cli("DBSIZE") == 0, "hostile: nothing in db 0")
cli("SELECT", 3)
compare_streams("hostile", cli, events, "evil sensor\r\n*1")
names = [f.get(b"dest_name", b"") for _, f in cli.xrange_all("egress:flows")]
c.check(any(b"<script>" in n for n in names), f"hostile: markup kept as bytes in Redis: {names[:3]}")
c.check(cli("EXISTS", "egress:sensor:evil sensor\r\n*1") == 1, "hostile: heartbeat under the raw sensor id")
cli("SELECT", 0)

# ---- MAXLEN ~: with 5 entries per stream node the stream stays within [N, N+5) ---------------
srv.destroy()
srv = RedisServer(args=["--stream-node-max-entries", "5"]).start()
cfg = config("maxlen", "  flows_maxlen: 20\n  aggregate_ttl: 0\n", geo=False)
rc, err, events = replay("maxlen", demo, cfg, ["--redis", srv.url])
cli = srv.client()
n = cli("XLEN", "egress:flows")
c.check(rc == 0 and 20 <= n < 25, f"maxlen: rc={rc} XLEN={n} (want 20..24)")
c.check(cli.keys("egress:agg:*") == [], "maxlen: aggregate_ttl 0 writes no aggregates")
# The newest entries are the ones kept.
last = [f[b"flow_id"].decode() for _, f in cli.xrange_all("egress:flows")]
want_last = [str(e["flow_id"]) for e in events if e.get("event_type") == "flow"][-len(last):]
c.check(last == want_last, "maxlen: the stream keeps the newest records in order")
srv.destroy()

# ---- password (requirepass) in the URL, and in the configuration ---------------------------
srv = RedisServer(password="p@ss:w/rd").start()
rc, err, events = replay("pass-url", demo, config("pass-url", "  sensor_id: a\n"),
                         ["--redis", f"redis://:p%40ss%3Aw%2Frd@127.0.0.1:{srv.port}/2"])
cli = srv.client()
cli("SELECT", 2)
c.check(rc == 0 and cli("XLEN", "egress:flows") == 31, f"password in URL, db 2: rc={rc} {err!r}")
cfg = config("pass-cfg", "  sensor_id: b\n  password: \"p@ss:w/rd\"\n  prefix: other\n")
rc, err, events = replay("pass-cfg", demo, cfg, ["--redis", f"redis://127.0.0.1:{srv.port}"])
cli("SELECT", 0)
c.check(rc == 0 and cli("XLEN", "other:flows") == 31 and cli("EXISTS", "other:sensor:b") == 1,
        f"password in config, other prefix: rc={rc} {err!r}")
c.check(all(k.startswith(b"other:") for k in cli.keys("*")), "prefix: every key under other:")
srv.destroy()

# ---- ACL user allowed only the sensor's keys and commands -----------------------------------
acl = ["user default off",
       "user admin on >admin-secret ~* &* +@all",
       "user sensor on >s3cret ~egress:* &egress:* -@all +auth +select +ping +xadd +hincrby +expire "
       "+pfadd +zincrby +zadd +zremrangebyrank +hset +sadd +publish"]
srv = RedisServer(acl=acl, admin=("admin", "admin-secret")).start()
rc, err, events = replay("acl", demo, config("acl", "  sensor_id: s1\n"),
                         ["--redis", f"redis://sensor:s3cret@127.0.0.1:{srv.port}"])
cli = srv.client()
c.check(rc == 0 and "refuse" not in err, f"ACL user: rc={rc} {err!r}")
compare_streams("acl", cli, events, "s1")
compare_aggregates("acl", cli, events)
# The same user without two of the aggregate commands: records still all
# arrive, and each refused command is said once, not once per retry (the
# aggregate updates are retried until redis.drain_timeout, then reported).
cli("ACL", "SETUSER", "sensor", "-zadd", "-zremrangebyrank")
cli("FLUSHALL")
rc, err, events = replay("acl-missing", demo, config("acl-missing", "  sensor_id: s1\n", drain=3),
                         ["--redis", f"redis://sensor:s3cret@127.0.0.1:{srv.port}"])
lines = err.splitlines()
per_cmd = {cmd: sum(f"NOPERM" in l and f"'{cmd}'" in l for l in lines) for cmd in ("zadd", "zremrangebyrank")}
c.check(per_cmd == {"zadd": 1, "zremrangebyrank": 1} and len(lines) <= 6,
        f"ACL without zadd/zremrangebyrank: refusals logged {per_cmd}, {len(lines)} lines: {err!r}")
c.check(cli("XLEN", "egress:flows") == len([e for e in events if e.get("event_type") == "flow"]),
        f"ACL without zadd: every record delivered ({cli('XLEN', 'egress:flows')})")
srv.destroy()

# ---- two sensors at once into one server ----------------------------------------------------
srv = RedisServer().start()
procs = []
for sid in ("north", "south"):
    out = os.path.join(tmp, sid + ".json")
    procs.append((sid, out, subprocess.Popen([BIN, "-r", demo, "--json", out, "--redis", srv.url,
                                              "-c", config(sid, f"  sensor_id: {sid}\n")],
                                             stderr=subprocess.PIPE)))
for sid, out, p in procs:
    _, perr = p.communicate(timeout=120)
    c.check(p.returncode == 0, f"two sensors: {sid} rc={p.returncode} {perr!r}")
cli = srv.client()
entries = cli.xrange_all("egress:flows")
per = collections.Counter(f[b"sensor"] for _, f in entries)
c.check(per == {b"north": 31, b"south": 31}, f"two sensors: entries per sensor {per}")
c.check(sorted(cli("SMEMBERS", "egress:sensors")) == [b"north", b"south"], "two sensors: sensor set")
for sid in ("north", "south"):
    hb = cli.hgetall(f"egress:sensor:{sid}")
    c.check(hb.get(b"sent") == b"31", f"two sensors: heartbeat of {sid}: {hb.get(b'sent')}")
# Both replayed the same capture: every aggregate is exactly twice one run's.
compare_aggregates("two sensors", cli, read_events(procs[0][1]), times=2)
srv.destroy()

# ---- without Redis the stats event has no redis object -------------------------------------
rc, err, events = replay("noredis", demo, config("noredis", "  sensor_id: x\n"))
c.check(rc == 0 and err == "" and events and "redis" not in events[-1]["stats"],
        f"no Redis configured: rc={rc} {err!r} {list(events[-1]['stats']) if events else None}")

# ---- bad URLs: a configuration error naming the key, before anything is read -----------------
out = os.path.join(tmp, "bad.json")
for url, what in (("http://x", "redis.url"), ("redis://127.0.0.1:99999", "bad port"),
                  ("rediss://h:1", "TLS"), ("redis://127.0.0.1/x", "database"),
                  ("unix://relative.sock", "socket path")):
    rc, err, _ = run_egressd(BIN, ["-r", demo, "--json", out, "--redis", url])
    c.check(rc == 2 and what in err and err.count("\n") == 1, f"bad URL {url}: rc={rc} {err!r}")

c.done()
