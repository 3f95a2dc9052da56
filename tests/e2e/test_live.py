"""Live capture (-i): egressd inside a network namespace reads one end of a
veth pair while tcpreplay writes real captures into the other end.

- The flow records of a live run equal those of replaying the same files
  with -r (5-tuple, packet and byte counters both ways, nDPI protocol).
- --workers 2: the AF_PACKET fanout splits the traffic between the workers
  (both count packets in /metrics), yet every flow appears exactly once with
  the same counters as in the replay.
- Signals: SIGUSR1 writes a stats event counting every packet sent, SIGHUP
  reloads the configuration, SIGTERM ends open flows with reason
  "shutdown" and exits 0.
- A quiet link still expires idle flows (wall-clock ticks).
- -u nobody: after start-up the process runs as nobody with no capability
  in any thread, no_new_privs set, and still captures; as root without -u
  it refuses to start (exit 2) unless --allow-root.
- Started as nobody from a copy of the binary with file capabilities
  (cap_net_raw,cap_net_admin+ep, as in the container image): it captures,
  then no thread keeps a capability; -u naming another user is refused.
  The same started with ambient capabilities (the systemd unit's way).
- --stats-interval writes periodic stats events; the JSON output is flushed
  while running, so a quiet link's records reach the file within seconds.
- With Redis: /metrics and the stats event carry the delivery counters and
  the queue depth, which grows while Redis is down.
- /metrics parses as Prometheus text and agrees with the stats event;
  /healthz answers 200 "ok".
- Usage errors: -r with -i, a filter that does not compile.
- The interface removed while capturing: one line naming it, exit 1, and
  the open flows and the final stats still written.

Needs root (network namespaces); fails, not skips, without it.
"""
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from egrtest import BIN, Checker, flows, need_shared, replay, write_file
import livehelp
from livehelp import Netns, sh
from redisharness import RedisServer

if os.geteuid() != 0:
    sys.exit("FAIL: test_live needs root (it creates network namespaces and veth pairs)")

c = Checker("test_live")
tmp = tempfile.mkdtemp()
# Like /tmp: the runs that drop to nobody open their outputs as nobody.
os.chmod(tmp, 0o1777)
CAPS = [need_shared("pcaps", n) for n in ("443-curl.pcap", "443-git.pcap", "dns_doh.pcap")]
MANY = need_shared("pcaps", "1kxun.pcap")  # 130 flows: enough to split by hash


def Live(ns, name, *args, **kw):
    return livehelp.Live(ns, tmp, name, *args, **kw)


def flow_key(e):
    return (e["src_ip"], e.get("src_port"), e["dest_ip"], e.get("dest_port"), e["proto"])


def flow_val(e):
    f = e["flow"]
    return (f["pkts_toserver"], f["pkts_toclient"], f["bytes_toserver"], f["bytes_toclient"],
            e.get("ndpi", {}).get("proto"))


def summary(events):
    return collections.Counter((flow_key(e),) + flow_val(e) for e in flows(events))


def proc_status(pid, task=None):
    path = f"/proc/{pid}/task/{task}/status" if task else f"/proc/{pid}/status"
    with open(path) as fh:
        return dict((k, v.strip()) for k, v in
                    (line.split(":", 1) for line in fh.read().splitlines() if ":" in line))


def check_no_caps(what, pid):
    """Every thread: no capability in any set that could be used, and
    no_new_privs (capabilities are per thread: one left behind in a helper
    thread would be a capability kept)."""
    tasks = os.listdir(f"/proc/{pid}/task")
    bad = []
    for t in tasks:
        st = proc_status(pid, t)
        for cap in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
            if st.get(cap, "0000000000000000") != "0000000000000000":
                bad.append(f"thread {t} {cap} {st[cap]}")
        if st.get("NoNewPrivs") != "1":
            bad.append(f"thread {t} NoNewPrivs {st.get('NoNewPrivs')}")
    c.check(len(tasks) >= 2 and not bad, f"{what}: {len(tasks)} threads, {bad}")


def last_stats(events):
    st = [e for e in events if e.get("event_type") == "stats"]
    return st[-1]["stats"] if st else {}


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse_prom(text):
    """Prometheus text format: returns {name: [(labels dict, value)]} and a
    list of format problems."""
    fams, problems, typed = collections.defaultdict(list), [], {}
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            if len(parts) < 4:
                problems.append(f"line {n}: short {parts[1]} line")
            elif parts[1] == "TYPE":
                if parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    problems.append(f"line {n}: bad type {parts[3]}")
                typed[parts[2]] = parts[3]
            continue
        m = SAMPLE.match(line)
        if not m:
            problems.append(f"line {n}: not a sample: {line!r}")
            continue
        labels, rest = {}, m.group(3) or ""
        while rest:
            lm = LABEL.match(rest)
            if not lm:
                problems.append(f"line {n}: bad labels {rest!r}")
                break
            labels[lm.group(1)] = re.sub(r"\\(.)", lambda x: {"n": "\n"}.get(x.group(1), x.group(1)),
                                         lm.group(2))
            rest = rest[lm.end():]
        if m.group(1) not in typed:
            problems.append(f"line {n}: {m.group(1)} has no TYPE line before it")
        try:
            fams[m.group(1)].append((labels, float(m.group(4))))
        except ValueError:
            problems.append(f"line {n}: bad value {m.group(4)!r}")
    return fams, problems


ns = Netns()
try:
    # --- one worker: the same records as a replay -------------------------
    rc, rep_events, err = replay(CAPS)
    c.check(rc == 0, f"replay: {rc} {err}")
    want = summary(rep_events)
    c.check(len(want) >= 3, f"replay of {CAPS}: {len(want)} flows")

    lv = Live(ns, "one", ["--allow-root", "--metrics", "0"])
    sent = ns.send(CAPS)
    c.check(sent == sum(st for st in [last_stats(rep_events)["capture"]["packets"]]),
            f"tcpreplay sent {sent} packets")
    # SIGUSR1: a stats event counting every packet sent.
    time.sleep(0.5)
    lv.p.send_signal(signal.SIGUSR1)
    ev = lv.wait_events(lambda e: e.get("event_type") == "stats")
    st = last_stats(ev)
    c.check(st.get("capture", {}).get("packets") == sent,
            f"SIGUSR1 stats event: packets {st.get('capture')} want {sent}")
    # /metrics and /healthz while capturing.
    code, body = lv.get("/healthz")
    c.check(code == 200 and body.strip() == "ok", f"/healthz: {code} {body!r}")
    code, body = lv.get("/metrics")
    c.check(code == 200, f"/metrics: {code}")
    fams, problems = parse_prom(body)
    c.check(not problems, f"/metrics format: {problems[:5]}")
    pk = fams.get("egressd_packets_total", [])
    c.check(len(pk) == 1 and pk[0][0] == {"interface": "cap0", "worker": "0"},
            f"egressd_packets_total labels: {pk}")
    c.check(sum(v for _, v in pk) == sent, f"/metrics packets {pk} vs sent {sent}")
    c.check(sum(v for _, v in fams.get("egressd_bytes_total", [])) ==
            st.get("capture", {}).get("bytes"), "/metrics bytes equal the stats event's")
    drops = {lab["cause"]: v for lab, v in fams.get("egressd_drops_total", [])}
    c.check(drops == {"kernel": 0, "ifdrop": 0}, f"drops: {drops}")
    cap = st.get("capture", {})
    c.check(cap.get("kernel_drops") == 0 and cap.get("kernel_ifdrops") == 0,
            f"stats event drops: {cap}")
    active = sum(v for _, v in fams.get("egressd_flows_active", []))
    c.check(active == len(want), f"flows active {active}, want {len(want)}")
    c.check("egressd_flows_ended_total" in fams and "egressd_alerts_total" in fams,
            f"families: {sorted(fams)}")
    rc = lv.stop()
    c.check(rc == 0, f"SIGTERM: exit {rc}: {lv.err()}")
    ev = lv.events()
    got = summary(ev)
    c.check(got == want, f"live != replay:\n  only live {got - want}\n  only replay {want - got}")
    c.check(all(e["flow"]["reason"] == "shutdown" for e in flows(ev)),
            "live flows still open at SIGTERM end with reason shutdown")
    c.check(last_stats(ev).get("capture", {}).get("packets") == sent, "final stats packets")

    # --- two workers: fanout by flow ---------------------------------------
    rc, rep_many, err = replay([MANY])
    c.check(rc == 0, f"replay {MANY}: {rc} {err}")
    want = summary(rep_many)
    lv = Live(ns, "two", ["--allow-root", "--workers", "2", "--metrics", "0"])
    sent = ns.send([MANY])
    time.sleep(0.5)
    code, body = lv.get("/metrics")
    fams, problems = parse_prom(body)
    c.check(not problems, f"/metrics format (2 workers): {problems[:5]}")
    per = {lab["worker"]: v for lab, v in fams.get("egressd_packets_total", [])}
    c.check(set(per) == {"0", "1"} and all(v > 0 for v in per.values()),
            f"both workers capture: {per}")
    c.check(sum(per.values()) == sent, f"workers counted {per}, sent {sent}")
    rc = lv.stop()
    c.check(rc == 0, f"2 workers SIGTERM: exit {rc}: {lv.err()}")
    ev = lv.events()
    keys = collections.Counter(flow_key(e) for e in flows(ev))
    rkeys = collections.Counter(flow_key(e) for e in flows(rep_many))
    split = [k for k, n in keys.items() if n != rkeys.get(k)]
    c.check(not split, f"flows seen a different number of times than in the replay: {split[:5]}")
    got = summary(ev)
    c.check(got == want, f"2 workers != replay:\n  only live {list(got - want)[:5]}\n"
                         f"  only replay {list(want - got)[:5]}")

    # --- SIGHUP reload, quiet-link expiry ----------------------------------
    cfg = write_file(tmp, "live.yaml", "flow:\n  timeouts:\n    udp: 1s\n")
    lv = Live(ns, "hup", ["--allow-root", "-c", cfg])
    ns.send([need_shared("pcaps", "NTPv4.pcap")])
    # One UDP packet, then silence: with no further packet the flow must end
    # by timeout (1 s), before the SIGTERM below, not with it.
    # The record reaches the file while egressd runs (the output is flushed
    # once a second), not only when it exits.
    ev = lv.wait_events(lambda e: e.get("event_type") == "flow", secs=5)
    c.check(any(e.get("event_type") == "flow" for e in ev),
            "quiet link: the expired flow's record is in the file while running")
    lv.p.send_signal(signal.SIGHUP)
    try:
        lv.wait_for("reloaded", 10)
        c.check(True, "SIGHUP")
    except RuntimeError as e:
        c.check(False, f"SIGHUP: {e}")
    rc = lv.stop()
    c.check(rc == 0, f"after SIGHUP: exit {rc}: {lv.err()}")
    f = flows(lv.events())
    c.check(len(f) == 1 and f[0]["flow"]["reason"] == "timeout",
            f"quiet link: idle UDP flow expired: {[x['flow'] for x in f]}")

    # --- Redis delivery in /metrics and the stats event ------------------------
    # The server on a unix socket: the namespace has its own network but
    # shares the file system.
    rs = RedisServer()
    rs.start()
    try:
        # Short timeouts: records leave while egressd runs, not at SIGTERM.
        rcfg = write_file(tmp, "redis.yaml",
                          "flow:\n  timeouts:\n    tcp_new: 1\n    tcp_established: 1\n"
                          "    tcp_closed: 1\n    udp: 1\n    icmp: 1\n    other: 1\n"
                          "redis:\n  drain_timeout: 1\n  flush_ms: 20\n")
        lv = Live(ns, "redis", ["--allow-root", "-c", rcfg, "--redis", rs.unix_url, "--metrics", "0"])
        ns.send([MANY])
        time.sleep(2.5)
        fams, problems = parse_prom(lv.get("/metrics")[1])
        val = {k: sum(v for _, v in fams.get(k, [])) for k in (
            "egressd_redis_records_total", "egressd_redis_sent_total", "egressd_redis_queue_depth",
            "egressd_redis_spool_depth", "egressd_redis_dropped_total")}
        nflows = len(flows(lv.events()))
        c.check(not problems and val["egressd_redis_records_total"] >= nflows > 0 and
                val["egressd_redis_sent_total"] >= nflows and val["egressd_redis_dropped_total"] == 0 and
                val["egressd_redis_queue_depth"] == 0 and val["egressd_redis_spool_depth"] == 0,
                f"/metrics with Redis up: {val}, {nflows} flow records, {problems[:3]}")
        # Redis gone: what arrives waits in the queue, and the gauge says so.
        rs.kill()
        ns.send([CAPS[0], CAPS[1]])
        time.sleep(1.5)
        fams, _ = parse_prom(lv.get("/metrics")[1])
        depth = sum(v for _, v in fams.get("egressd_redis_queue_depth", []))
        depth += sum(v for _, v in fams.get("egressd_redis_spool_depth", []))
        c.check(depth > 0, f"/metrics with Redis down: queue depth {depth}")
        lv.p.send_signal(signal.SIGUSR1)
        ev = lv.wait_events(lambda e: e.get("event_type") == "stats"
                            and e["stats"].get("redis", {}).get("queue_depth", 0) > 0)
        st = last_stats(ev).get("redis", {})
        c.check(st.get("queue_depth", 0) > 0, f"SIGUSR1 stats with Redis down: {st}")
        # Redis still down when asked to stop: the drain gives up after
        # redis.drain_timeout and says what was not delivered (exit 1).
        rc = lv.stop()
        c.check(rc == 1 and "not delivered" in lv.err(), f"Redis down at SIGTERM: exit {rc}: {lv.err()}")
    finally:
        rs.destroy()

    # --- privileges ---------------------------------------------------------
    lv = Live(ns, "nobody", ["-u", "nobody", "--stats-interval", "1"])
    with open(f"/proc/{lv.p.pid}/status") as fh:
        status = dict(line.split(":", 1) for line in fh.read().splitlines() if ":" in line)
    uids = status["Uid"].split()
    c.check(len(uids) == 4 and all(u != "0" for u in uids), f"-u nobody: Uid {uids}")
    c.check(all(g != "0" for g in status["Gid"].split()), f"-u nobody: Gid {status['Gid']}")
    check_no_caps("-u nobody", lv.p.pid)
    sent = ns.send([CAPS[0]])
    time.sleep(1.6)
    rc = lv.stop()
    c.check(rc == 0, f"-u nobody: exit {rc}: {lv.err()}")
    nstats = sum(1 for e in lv.events() if e.get("event_type") == "stats")
    c.check(nstats >= 2, f"--stats-interval 1: {nstats} stats events in 1.6 s + the final one")
    c.check(last_stats(lv.events()).get("capture", {}).get("packets") == sent,
            "-u nobody still captures")

    # File capabilities, started as nobody: the container image's way.
    capbin = os.path.join(tmp, "egressd-caps")
    shutil.copy(BIN, capbin)
    os.chmod(capbin, 0o755)
    # Permitted only, as the Dockerfile sets them: egressd raises them itself.
    sh("setcap", "cap_net_raw,cap_net_admin+p", capbin)
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    lv = Live(ns, "filecaps", ["--workers", "2"], prefix=as_nobody, binary=capbin)
    status = proc_status(lv.p.pid)
    c.check(status["Uid"].split()[0] != "0", f"file caps: runs as {status['Uid']}")
    check_no_caps("file caps after start", lv.p.pid)
    sent = ns.send([CAPS[1]])
    time.sleep(0.5)
    rc = lv.stop()
    c.check(rc == 0, f"file caps: exit {rc}: {lv.err()}")
    c.check(last_stats(lv.events()).get("capture", {}).get("packets") == sent,
            f"file caps: captured {last_stats(lv.events()).get('capture')} of {sent}")
    # A container given neither capability (Docker's default set lacks
    # NET_ADMIN): the binary still runs, and replays.
    p = subprocess.run(as_nobody + ["--bounding-set=-net_admin,-net_raw", capbin, "-r", CAPS[0],
                                    "--json", os.path.join(tmp, "nocaps.json")],
                       capture_output=True, text=True)
    with open(os.path.join(tmp, "nocaps.json")) as fh:
        nocaps = [json.loads(x) for x in fh]
    c.check(p.returncode == 0 and len(flows(nocaps)) > 0,
            f"file caps, none in the bounding set: replay exit {p.returncode}: {p.stderr!r}")
    # ... and live capture there fails with one line, not a crash.
    p = subprocess.run(ns.ex + as_nobody + ["--bounding-set=-net_admin,-net_raw", capbin, "-i", "cap0"],
                       capture_output=True, text=True, timeout=20)
    c.check(p.returncode != 0 and p.stderr.count("\n") == 1 and "cap0" in p.stderr,
            f"no capability, -i: exit {p.returncode}: {p.stderr!r}")

    # Ambient capabilities, as systemd's User= + AmbientCapabilities= start
    # the shipped unit: the plain binary, no file capabilities.
    ambient = as_nobody + ["--inh-caps=+net_raw,+net_admin", "--ambient-caps=+net_raw,+net_admin"]
    lv = Live(ns, "ambient", [], prefix=ambient)
    check_no_caps("ambient caps after start", lv.p.pid)
    sent = ns.send([CAPS[2]])
    time.sleep(0.5)
    rc = lv.stop()
    c.check(rc == 0 and last_stats(lv.events()).get("capture", {}).get("packets") == sent,
            f"ambient caps: exit {rc}, captured {last_stats(lv.events()).get('capture')} of {sent}")
    lv = Live(ns, "filecaps-u", ["-u", "daemon"], prefix=as_nobody, binary=capbin, ready=False)
    lv.p.wait(timeout=20)
    rc = lv.stop()
    err = lv.err()
    c.check(rc == 2 and "-u daemon: switching users needs root" in err and err.count("\n") == 1,
            f"non-root -u other user: exit {rc}: {err!r}")

    lv = Live(ns, "root", [], ready=False)
    rc = lv.stop(sig=0) if lv.p.wait(timeout=20) is not None else None
    err = lv.err()
    c.check(rc == 2 and "refusing to capture as root" in err and err.count("\n") == 1,
            f"root without -u: exit {rc}: {err!r}")

    # --- usage errors ---------------------------------------------------------
    lv = Live(ns, "filter", ["--allow-root", "-f", "tcp port nonsense"], ready=False)
    lv.p.wait(timeout=20)
    err = lv.stop()
    text = lv.err()
    c.check(err == 2 and "filter 'tcp port nonsense'" in text and text.count("\n") == 1,
            f"bad filter: exit {err}: {text!r}")
    p = subprocess.run([BIN, "-r", CAPS[0], "-i", "cap0"], capture_output=True, text=True)
    c.check(p.returncode == 2 and "-r and -i" in p.stderr, f"-r with -i: {p.returncode} {p.stderr!r}")
    for extra, want, code in ((["--metrics", "127.0.0.1:"], "--metrics", 2),
                              (["-u", "no-such-user-x"], "-u no-such-user-x: no such user", 2)):
        p = subprocess.run(ns.ex + [BIN, "-i", "cap0", "--allow-root", "--json", "/dev/null"] + extra,
                           capture_output=True, text=True, timeout=20)
        c.check(p.returncode == code and want in p.stderr and p.stderr.count("\n") == 1,
                f"{extra}: exit {p.returncode}: {p.stderr!r}")
    p = subprocess.run(ns.ex + [BIN, "-i", "nosuch0", "--allow-root", "--json", "/dev/null"],
                       capture_output=True, text=True, timeout=20)
    c.check(p.returncode != 0 and "nosuch0" in p.stderr and p.stderr.count("\n") == 1,
            f"no such interface: exit {p.returncode}: {p.stderr!r}")
    # --workers also shares a replay (test_replay_workers.py); -B stays live-only.
    p = subprocess.run([BIN, "-r", CAPS[0], "-B", "4"], capture_output=True, text=True)
    c.check(p.returncode == 2 and "need -i" in p.stderr, f"-B without -i: {p.stderr!r}")

    # --- the interface disappears while capturing (last: it takes the pair) --
    lv = Live(ns, "gone", ["--allow-root", "--workers", "2", "--metrics", "0"])
    sent = ns.send([CAPS[0]])
    time.sleep(0.5)
    sh("ip", "-n", ns.name, "link", "del", "cap0")
    try:
        rc = lv.p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        rc = None
    rc = lv.stop() if rc is None else rc
    lv.errf.close()
    err = lv.err()
    ev = lv.events()
    c.check(rc == 1 and "cap0" in err, f"interface removed: exit {rc}: {err!r}")
    c.check(len(flows(ev)) > 0 and all(f["flow"]["reason"] == "shutdown" for f in flows(ev)) and
            last_stats(ev).get("capture", {}).get("packets") == sent,
            f"interface removed: open flows written, stats count {sent}: "
            f"{len(flows(ev))} flows, {last_stats(ev).get('capture')}")
finally:
    ns.close()
    shutil.rmtree(tmp, ignore_errors=True)

c.done()
