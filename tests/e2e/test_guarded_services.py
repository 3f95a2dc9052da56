"""Guarded services (docs/policy.md, "Guarded services") replayed and live,
into Redis and onto the dashboard like every other alert.

sensors/saas-integrations.yaml with the saas-integrations capture
(egressd-pktgen, docs/pktgen.md) raises each kind of guarded-service alert:
an unlisted caller (a web server calling Salesforce; a host that is no
asset calling Drift's API), a new caller (a web server signing in through
Okta and Entra ID for the first time), volume in both directions (the
integration host's bulk export, an admin's HAR-sized upload to Okta's
support portal).

- Replay (-r) into a real redis-server: the alerts stream holds each alert
  with the same fields as the JSON line (guarded_service included), and
  egressd-dashboard's /api/alerts serves them.
- Live (-i) in a network namespace fed by tcpreplay through a veth pair:
  the same alerts, by meaning (kind, caller, destination, guarded service,
  count), in the JSON output, the Redis stream and on the dashboard.

Needs root (network namespaces); fails, not skips, without it.
"""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import yaml  # python3-yaml (scripts/deps.sh --test)

from egrtest import BIN, PKTGEN, SRC, Checker, Netns, need_shared, temp_dir
from redisharness import RedisServer, entry_text, flat_alert, free_port, read_events, run_egressd

if os.geteuid() != 0:
    sys.exit("FAIL: test_guarded_services needs root (it creates a network namespace)")
DASH = os.path.join(os.path.dirname(BIN), "egressd-dashboard")
if not os.access(DASH, os.X_OK):
    sys.exit(f"FAIL: {DASH} is missing (build the egressd-dashboard target)")

c = Checker("test_guarded_services")
tmp = temp_dir()
os.chmod(tmp, 0o755)
mmdb = need_shared("testdata", "mmdb")
pcap = os.path.join(tmp, "saas.pcap")
subprocess.run([PKTGEN, "saas-integrations", pcap], check=True)

WANT = {
    ("guarded-service-caller", "web1", "acme.my.salesforce.com", "salesforce"): 1,
    ("guarded-service-caller", "10.21.70.7", "driftapi.com", "salesloft-drift"): 1,
    ("guarded-service-new-caller", "web2", "acme.okta.com", "okta"): 1,
    ("guarded-service-new-caller", "web2", "login.microsoftonline.com", "entra-id"): 1,
    ("guarded-service-volume", "sfdc-sync", "acme.my.salesforce.com", "salesforce"): 1,
    ("guarded-service-volume", "admin-jump", "support.okta.com", "okta-support"): 1,
}


def config(name, redis_url, sensor_id):
    with open(os.path.join(SRC, "sensors", "saas-integrations.yaml")) as f:
        cfg = yaml.safe_load(f)
    cfg.pop("output")
    cfg["redis"] = {"url": redis_url, "sensor_id": sensor_id, "flush_ms": 20, "drain_timeout": 10}
    cfg["geoip"] = {"country_db": f"{mmdb}/GeoIP2-Country-Test.mmdb",
                    "asn_db": f"{mmdb}/GeoLite2-ASN-Test.mmdb"}
    cfg["guarded_services"]["callers_file"] = os.path.join(tmp, name + "-callers.txt")
    path = os.path.join(tmp, name + ".yaml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    return path


def key(caller, dest, category, service):
    return (category, caller, dest, service)


def json_keys(events):
    got = {}
    for e in events:
        if e.get("event_type") != "alert":
            continue
        a = e["alert"]
        k = key((e.get("asset") or {}).get("name") or e["src_ip"], e.get("dest_name") or e["dest_ip"],
                a["category"], a.get("guarded_service"))
        got[k] = max(got.get(k, 0), a["count"])
    return got


def stream_keys(entries):
    got = {}
    for _, f in entries:
        k = key(f.get("asset") or f["src_ip"], f.get("dest_name") or f["dest_ip"], f["category"],
                f.get("guarded_service"))
        got[k] = max(got.get(k, 0), int(f["count"]))
    return got


def redis_alerts(rs, sensor):
    cl = rs.client()
    entries = [(i, entry_text(fields)) for i, fields in cl.xrange_all("egress:alerts")]
    cl.close()
    return [(i, f) for i, f in entries if f.get("sensor") == sensor]


class Dashboard:
    def __init__(self, redis_url):
        self.port = free_port()
        self.log = open(os.path.join(tmp, f"dashboard-{self.port}.log"), "w")
        self.proc = subprocess.Popen([DASH, "--redis", redis_url, "--listen", f"127.0.0.1:{self.port}"],
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                    if json.loads(r.read()).get("redis"):
                        return
            except (OSError, urllib.error.URLError, ValueError):
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError("egressd-dashboard did not come up")

    def alerts(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/alerts?count=1000", timeout=10) as r:
            return json.loads(r.read())["alerts"]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)
        self.log.close()


def dashboard_keys(entries, sensor):
    got = {}
    for f in entries:
        if f.get("sensor") != sensor:
            continue
        k = key(f.get("asset") or f["src_ip"], f.get("dest_name") or f["dest_ip"], f["category"],
                f.get("guarded_service"))
        got[k] = max(got.get(k, 0), int(f["count"]))
    return got


def only_guard(d):
    return {k: v for k, v in d.items() if k[0].startswith("guarded-service")}


rs = RedisServer().start()
dash = Dashboard(rs.unix_url)
try:
    # ---- replay --------------------------------------------------------------
    sensor = f"saas-replay-{os.getpid()}"
    out = os.path.join(tmp, "replay.json")
    rc, err, _ = run_egressd(BIN, ["-r", pcap, "-c", config("replay", rs.unix_url, sensor),
                                   "--json", out])
    c.check(rc == 0 and all(l.startswith("egressd: redis: connected") for l in err.splitlines()),
            f"replay: rc={rc} {err!r}")
    events = read_events(out)
    got = json_keys(events)
    c.check(got == WANT, f"replay JSON alerts:\n got  {sorted(got.items())}\n want {sorted(WANT.items())}")
    entries = redis_alerts(rs, sensor)
    c.check(stream_keys(entries) == WANT, f"replay: Redis alerts {sorted(stream_keys(entries).items())}")
    # Field for field, the stream entries are the JSON lines (guarded_service
    # in place of intel_list).
    js = [flat_alert(e, sensor) for e in events if e.get("event_type") == "alert"]
    red = [f for _, f in entries]
    c.check(sorted(map(sorted, (x.items() for x in js))) == sorted(map(sorted, (x.items() for x in red))),
            f"Redis entries differ from the JSON alerts:\n json  {js[:2]}\n redis {red[:2]}")
    c.check(all("guarded_service" in f and "intel_list" not in f for f in red),
            f"Redis entries: {red[:2]}")
    deadline = time.time() + 10
    while time.time() < deadline and dashboard_keys(dash.alerts(), sensor) != WANT:
        time.sleep(0.2)
    c.check(dashboard_keys(dash.alerts(), sensor) == WANT,
            f"dashboard /api/alerts: {sorted(dashboard_keys(dash.alerts(), sensor).items())}")

    # ---- live ----------------------------------------------------------------
    ns = Netns("guard")
    sensor = f"saas-live-{os.getpid()}"
    out = os.path.join(tmp, "live.json")
    errpath = os.path.join(tmp, "live.err")
    errf = open(errpath, "w")
    # The capture is ~75 MB; a 128 MiB kernel ring holds all of it, so the
    # alerts checked here do not depend on how much CPU this sensor gets
    # while other tests run beside it (on a loaded two-core CI box the
    # default 2 MiB ring dropped ~1% at 40k packets/s). Drop behaviour has
    # its own tests (test_live, test_live_reload).
    p = subprocess.Popen(ns.ex + [BIN, "-i", "cap0", "--allow-root", "--stats-interval", "0", "-B", "128",
                                  "-c", config("live", rs.unix_url, sensor), "--json", out],
                         stderr=errf)
    deadline = time.time() + 20
    while time.time() < deadline and "capturing on" not in open(errpath).read():
        if p.poll() is not None:
            break
        time.sleep(0.05)
    c.check("capturing on" in open(errpath).read(), f"live egressd: {open(errpath).read()!r}")
    sent = ns.send([pcap], rate=("--pps", "40000"))
    c.check(sent > 50000, f"tcpreplay sent {sent} packets")
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=60)
    errf.close()
    c.check(rc == 0, f"live: exit {rc}: {open(errpath).read()!r}")
    events = read_events(out)
    st = [e for e in events if e.get("event_type") == "stats"][-1]["stats"]
    c.check(st["capture"]["packets"] == sent and st["capture"]["kernel_drops"] == 0,
            f"live: captured {st['capture']}, sent {sent}")
    got = json_keys(events)
    c.check(got == WANT, f"live JSON alerts:\n got  {sorted(got.items())}\n want {sorted(WANT.items())}")
    c.check(stream_keys(redis_alerts(rs, sensor)) == WANT,
            f"live: Redis alerts {sorted(stream_keys(redis_alerts(rs, sensor)).items())}")
    deadline = time.time() + 10
    while time.time() < deadline and dashboard_keys(dash.alerts(), sensor) != WANT:
        time.sleep(0.2)
    c.check(dashboard_keys(dash.alerts(), sensor) == WANT,
            f"live: dashboard {sorted(dashboard_keys(dash.alerts(), sensor).items())}")
    ns.close()
finally:
    dash.stop()
    rs.destroy()
c.done()
