"""redis.eve against a real redis-server: every mode writes every event of a
replay as Suricata's EVE Redis output does, and what Redis holds is
exactly the JSON lines output, event for event and in order:

- list (and its alias lpush): LPUSH to "suricata", read oldest first with
  LRANGE reversed; rpush: RPUSH; channel (publish): PUBLISH, read by a
  subscriber connected before the replay; stream (xadd): XADD ... * eve,
  trimmed to stream_maxlen (exactly with stream_trim_exact);
- beside the flat-field streams by default, instead of them with
  redis.streams: false (no {prefix}:flows, {prefix}:alerts);
- redis.eve.types keeps only the chosen event types;
- bad values stop egressd before it reads anything, with one line naming
  the key: an unknown mode, an unknown type, redis.streams: false without a
  mode, an empty key."""
import json
import os
import subprocess

from egrtest import BIN, PKTGEN, SRC, Checker, temp_dir
from redisharness import Client, RedisServer

c = Checker("test_redis_eve")
tmp = temp_dir(prefix="egressd-redis-eve-")
pcaps = {}
for kind in ("demo", "hostile"):
    pcaps[kind] = os.path.join(tmp, kind + ".pcap")
    p = subprocess.run([PKTGEN, kind, pcaps[kind]], capture_output=True)
    c.check(p.returncode == 0, f"pktgen {kind}: {p.stderr!r}")
with open(os.path.join(SRC, "sensors", "demo.yaml")) as f:
    demo = f.read().replace("file: intel/", f"file: {SRC}/sensors/intel/")

redis = RedisServer()
redis.start()
cli = redis.client()


def replay(name, eve_yaml, pcap="demo", extra_redis=""):
    cfg = os.path.join(tmp, name + ".yaml")
    with open(cfg, "w") as f:
        f.write(demo + "\nredis:\n  drain_timeout: 20\n" + extra_redis + "  eve:\n" + eve_yaml)
    out = os.path.join(tmp, name + ".json")
    p = subprocess.run([BIN, "-c", cfg, "-r", pcaps[pcap], "--json", out, "--redis", redis.url],
                       capture_output=True, timeout=120)
    lines = []
    if os.path.exists(out):
        with open(out, "rb") as f:
            lines = [line.rstrip(b"\n") for line in f]
    return p.returncode, p.stderr.decode("utf-8", "replace"), lines


def types_of(lines):
    return [json.loads(x)["event_type"] for x in lines]


# ---- list, lpush, rpush ----------------------------------------------------------
for mode in ("list", "lpush", "rpush"):
    cli("FLUSHALL")
    rc, err, lines = replay(mode, f"    mode: {mode}\n")
    got = cli("LRANGE", "suricata", 0, -1)
    if mode != "rpush":
        got = got[::-1]  # LPUSH: the newest first
    c.check(rc == 0 and len(lines) > 50, f"{mode}: rc={rc} {len(lines)} lines {err[-300:]!r}")
    c.check(got == lines, f"{mode}: the list differs from the JSON lines: {len(got)} vs {len(lines)} events; "
            f"first difference at {next((i for i, (a, b) in enumerate(zip(got, lines)) if a != b), None)}")
    c.check(set(types_of(lines)) == {"flow", "dns", "alert", "stats"}, f"{mode}: types {set(types_of(lines))}")
    c.check(cli("XLEN", "egress:flows") > 0 and cli("XLEN", "egress:alerts") > 0,
            f"{mode}: the flat streams are still written beside it")

# Hostile names: the same bytes in Redis as in the file.
cli("FLUSHALL")
rc, err, lines = replay("hostile", "    mode: rpush\n    key: eve:hostile\n", pcap="hostile")
c.check(rc == 0 and lines and cli("LRANGE", "eve:hostile", 0, -1) == lines,
        f"hostile names: rc={rc}, Redis holds the file's bytes: {err[-200:]!r}")

# ---- channel ----------------------------------------------------------------
cli("FLUSHALL")
sub = Client(port=redis.port, timeout=30)
sub.send("SUBSCRIBE", "eve-live")
c.check(sub.reply() == [b"subscribe", b"eve-live", 1], "SUBSCRIBE eve-live")
rc, err, lines = replay("channel", "    mode: channel\n    key: eve-live\n")
got = []
while len(got) < len(lines):
    m = sub.reply()
    if m[0] == b"message":
        got.append(m[2])
c.check(rc == 0 and got == lines, f"channel: {len(got)} messages, {len(lines)} lines, equal: {got == lines}")
sub.close()

# ---- stream --------------------------------------------------------------------
cli("FLUSHALL")
rc, err, lines = replay("stream", "    mode: stream\n    key: eve:stream\n    stream_maxlen: 0\n")
entries = cli.xrange_all("eve:stream")
got = [f.get(b"eve") for _, f in entries]
c.check(rc == 0 and got == lines, f"stream: {len(got)} entries, {len(lines)} lines")
c.check(all(list(f) == [b"eve"] for _, f in entries), "stream: each entry has the one field eve")
cli("FLUSHALL")
rc, err, lines = replay("trim", "    mode: xadd\n    key: eve:trim\n    stream_maxlen: 10\n"
                                "    stream_trim_exact: true\n")
entries = cli.xrange_all("eve:trim")
got = [f.get(b"eve") for _, f in entries]
c.check(rc == 0 and got == lines[-10:], f"stream trimmed exactly: {len(got)} entries (want the last 10)")

# ---- instead of the flat streams; chosen types ---------------------------------------
cli("FLUSHALL")
rc, err, lines = replay("only", "    mode: rpush\n    types: [dns, alert]\n", extra_redis="  streams: false\n")
got = cli("LRANGE", "suricata", 0, -1)
want = [x for x in lines if json.loads(x)["event_type"] in ("dns", "alert")]
c.check(rc == 0 and got == want and want, f"streams false, types [dns, alert]: {len(got)} events, want {len(want)}")
c.check(cli("EXISTS", "egress:flows") == 0 and cli("EXISTS", "egress:alerts") == 0,
        "streams false: the flat streams are not written")
st = [json.loads(x) for x in lines if json.loads(x)["event_type"] == "stats"][-1]["stats"]["redis"]
c.check(st["undelivered"] == 0 and st["dropped"] == 0 and st["sent"] > 0, f"streams false: delivery {st}")

# ---- bad values ----------------------------------------------------------------------
for name, eve, extra, want in (
        ("bad-mode", "    mode: queue\n", "", "redis.eve.mode: 'queue' is not a mode"),
        ("bad-type", "    mode: list\n    types: [flow, http]\n", "", "redis.eve.types[1]: expected an event type"),
        ("no-output", "    mode: \"off\"\n", "  streams: false\n", "redis.streams: false needs redis.eve.mode set"),
        ("empty-key", "    mode: list\n    key: \"\"\n", "", "redis.eve.key: must not be empty")):
    rc, err, lines = replay(name, eve, extra_redis=extra)
    c.check(rc == 2 and want in err and err.count("\n") == 1 and not lines,
            f"{name}: rc={rc} {err!r} (want exit 2, one line with {want!r}, nothing written)")
    cfg = os.path.join(tmp, name + ".yaml")
    p = subprocess.run([BIN, "-c", cfg, "--check-config"], capture_output=True, text=True)
    c.check(p.returncode == 2 and want in p.stderr, f"{name}: --check-config rc={p.returncode} {p.stderr!r}")

c.done()
