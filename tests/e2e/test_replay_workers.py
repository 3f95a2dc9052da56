"""-r FILE --workers N writes the same events as one worker. Every capture in
../shared/pcaps is replayed with 1 and 2 workers, and all the well-formed ones
together (one run, flows crossing files) with 1 and 3: the flow, DNS, alert
and other events must be the same multiset (workers write side by side, so
only the order may differ) and the stats event's packet, decode and flow
counters the same. The sensor profiles (sensors/*.yaml, with roles, intel,
exfiltration and guarded services) on their pktgen captures must give the
same alerts too: a flow with one local end goes to the worker of that
address, so what the policy sums per asset sees its flows in packet order.
The broken capture ends with the same one-line error.
'-r -' cannot be shared and is refused (exit 2).

The known differences are nDPI's own cross-flow memory, which lives in each
worker's detection module: nDPI 4.2 remembers hosts it saw in Teams, WhatsApp
or Signal STUN flows (its msteams and stun caches) and labels their later STUN
flows from that, remembers miners' addresses (mining cache: "DPI (cache)")
and servers' TLS certificates (tls cert cache, to flag a resumed session
without one). A flow can therefore differ when the flow that taught the cache
went to another worker, or when the cache, holding fewer flows' entries in a
worker, kept an entry a single worker had already evicted: in its ndpi object
and app_proto when both runs call it STUN or one names the cache as its
confidence, or in certificate risks only. Anything else must match
(docs/benchmarks.md)."""
import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

from egrtest import PCAPS, PKTGEN, SRC, Checker, need_shared, replay, run, temp_dir

need_shared("pcaps")
c = Checker("test_replay_workers")
files = sorted(f for f in os.listdir(PCAPS) if f.endswith((".pcap", ".pcapng")))
c.check(len(files) >= 190, f"only {len(files)} captures in {PCAPS}")
BROKEN = {"fuzz-2021-10-13.pcap"}

# Counters that do not depend on how work is split (GeoIP cache hits and the
# peak of active flows are per worker by nature).
SAME_STATS = ("capture", "decode", "flow.created", "flow.records", "flow.packets", "flow.bytes",
              "flow.frag_orphans", "enrich.dns_responses", "enrich.names_learned",
              "enrich.names_hits")


def pick(stats, path):
    v = stats
    for k in path.split("."):
        v = v.get(k) if isinstance(v, dict) else None
    return v


def ndpi_cache_difference(a, b):
    """a and b are the same flow, labelled apart by nDPI's cross-flow caches."""
    if a.get("event_type") != "flow" or b.get("event_type") != "flow":
        return False
    strip = lambda e: {k: v for k, v in e.items() if k not in ("ndpi", "app_proto")}
    if strip(a) != strip(b):
        return False
    na, nb = a.get("ndpi", {}), b.get("ndpi", {})
    if na.get("master") == "STUN" and nb.get("master") == "STUN":
        return True
    if "DPI (cache)" in (na.get("confidence"), nb.get("confidence")):
        return True
    if a.get("app_proto") != b.get("app_proto"):
        return False
    norisk = lambda n: {k: v for k, v in n.items() if k != "risks"}
    changed = set(na.get("risks", [])) ^ set(nb.get("risks", []))
    return norisk(na) == norisk(nb) and all("Certificate" in r for r in changed)


def compare(tag, one, many):
    rc1, ev1, err1 = one
    rcn, evn, errn = many
    c.check(rc1 == rcn and err1 == errn, f"{tag}: exit {rc1} vs {rcn}, stderr {err1!r} vs {errn!r}")
    if not (ev1 and evn and ev1[-1].get("event_type") == "stats" and evn[-1].get("event_type") == "stats"):
        c.check(False, f"{tag}: a run has no final stats event")
        return 0
    for path in SAME_STATS:
        c.check(pick(ev1[-1]["stats"], path) == pick(evn[-1]["stats"], path),
                f"{tag}: stats {path}: {pick(ev1[-1]['stats'], path)} vs {pick(evn[-1]['stats'], path)}")
    a = sorted(json.dumps(e, sort_keys=True) for e in ev1[:-1])
    b = sorted(json.dumps(e, sort_keys=True) for e in evn[:-1])
    c.check(len(a) == len(b), f"{tag}: {len(a)} events with one worker, {len(b)} with several")
    if a == b:
        return 0
    only_a = [json.loads(x) for x in sorted(set(a) - set(b))]
    only_b = [json.loads(x) for x in sorted(set(b) - set(a))]
    relabelled = 0
    for x in only_a:
        match = next((y for y in only_b if ndpi_cache_difference(x, y)), None)
        if match is None:
            c.check(False, f"{tag}: only with one worker: {json.dumps(x, sort_keys=True)[:400]}")
        else:
            only_b.remove(match)
            relabelled += 1
    for y in only_b:
        c.check(False, f"{tag}: only with several workers: {json.dumps(y, sort_keys=True)[:400]}")
    return relabelled


def pair(name):
    path = os.path.join(PCAPS, name)
    return name, replay([path]), replay([path], ["--workers", "2"])


relabelled = 0
with ThreadPoolExecutor(max_workers=2) as pool:
    for name, one, two in pool.map(pair, files):
        relabelled += compare(name, one, two)

# All together, in one run: flows and passive DNS carried from file to file.
good = [os.path.join(PCAPS, f) for f in files if f not in BROKEN]
one = replay(good, timeout=900)
three = replay(good, ["--workers", "3"], timeout=900)
relabelled += compare("all captures in one run", one, three)
c.check(one[0] == 0 and len(one[1]) > 1000, f"all captures: exit {one[0]}, {len(one[1])} events")

# Policies with state across an asset's flows, on the captures made for them
# (Redis left out: the profiles name a server that is not there).
d = temp_dir()
for name in ("demo", "cisco-firepower", "zscaler-connector", "monitoring-server"):
    cap = os.path.join(d, name + ".pcap")
    subprocess.run([PKTGEN, name, cap], check=True, capture_output=True)
    text = open(os.path.join(SRC, "sensors", name + ".yaml")).read()
    text = re.sub(r"(?ms)^redis:.*?(?=^\S|\Z)", "", text)
    text = text.replace("file: intel/", "file: " + os.path.join(SRC, "sensors", "intel") + "/")
    cfg = os.path.join(d, name + ".yaml")
    with open(cfg, "w") as fh:
        fh.write(text)
    one = replay([cap], ["-c", cfg])
    alerts = sum(1 for e in one[1] if e.get("event_type") == "alert")
    c.check(one[0] == 0 and alerts > 0, f"{name}: exit {one[0]}, {alerts} alerts, {one[2]!r}")
    for n in ("2", "3"):
        many = replay([cap], ["-c", cfg, "--workers", n])
        c.check(compare(f"{name} --workers {n}", one, many) == 0,
                f"{name} --workers {n}: flows labelled apart")

# The broken capture: same error line, exit 1, records before the fault.
for name in sorted(BROKEN):
    rc, ev, err = replay([os.path.join(PCAPS, name)], ["--workers", "2"])
    c.check(rc == 1 and "truncated dump file" in err and err.count("\n") == 1,
            f"{name} --workers 2: rc={rc} err={err!r}")

with open(good[0], "rb") as fh:
    rc, out, err = run(["-r", "-", "--workers", "2", "--json", os.devnull], stdin=fh.read())
c.check(rc == 2 and "standard input" in err, f"-r - --workers 2: rc={rc} err={err!r}")

print(f"{len(files)} captures compared; {relabelled} flows labelled apart by nDPI's cross-flow caches")
c.done()
