"""The incident profiles end to end (docs/threat-model.md): each profile in
sensors/ written for the supply-chain incidents, replaying the capture the
project's packet generator writes for it (egressd-pktgen, docs/pktgen.md).

For each: --check-config passes; the replay raises exactly the alerts the
scenario is there for, judged by meaning (kind, asset, destination and its
name, service, guarded service, final count), never by position or
timestamp; every other flow (the vendors' documented destinations, the
traffic the hosts only answer, internal traffic) stays unalerted; and the
shared public captures (../shared/pcaps) replayed through the profile raise
no alert at all.

saas-integrations.yaml also goes through learn mode: the identity
providers learn their callers into the callers file, baseline mode then
accepts them, and a caller removed from the file is new again.

The scenarios are deterministic: the generator writes the same bytes twice.
"""
import hashlib
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import yaml  # python3-yaml (scripts/deps.sh --test)

from egrtest import PCAPS, PKTGEN, SRC, Checker, dns_queries, flows, need_shared, replay, run, temp_dir

c = Checker("test_scenarios")
tmp = temp_dir()
mmdb = need_shared("testdata", "mmdb")
need_shared("pcaps")
shutil.copytree(os.path.join(SRC, "sensors", "intel"), os.path.join(tmp, "intel"))

# Per profile: the scenario, and the alerts it must raise as
# (category, asset or source address, destination name or address, port,
# guarded service) -> final count.
EXPECTED = {
    "cisco-firepower": {
        ("unexpected-destination", "fmc", "firepower-updates.example-sync.net", 443, None): 1,
        ("unexpected-destination", "ftd-mgmt", "81.2.69.142", 443, None): 1,
        ("unexpected-destination", "asa-mgmt", "175.16.199.1", 80, None): 1,
    },
    "zscaler-connector": {
        ("unexpected-destination", "zpa-connector", "zpa-update.example-sync.net", 443, None): 1,
        ("unexpected-destination", "zpa-connector", "67.43.156.1", 22, None): 1,
        ("unexpected-destination", "zpa-service-edge", "175.16.199.1", 80, None): 1,
    },
    "monitoring-server": {
        # six SUNBURST lookups: one alert per resolver, counted
        ("ndpi-risk", "orion-main", "10.13.0.53", 53, None): 6,
        ("unexpected-destination", "orion-main", "deftsecurity.com", 443, None): 1,
        ("unexpected-destination", "orion-main", "status.example-sync.net", 443, None): 1,
    },
    "saas-integrations": {
        ("guarded-service-caller", "web1", "acme.my.salesforce.com", 443, "salesforce"): 1,
        ("guarded-service-caller", "10.21.70.7", "driftapi.com", 443, "salesloft-drift"): 1,
        ("guarded-service-new-caller", "web2", "acme.okta.com", 443, "okta"): 1,
        ("guarded-service-new-caller", "web2", "login.microsoftonline.com", 443, "entra-id"): 1,
        ("guarded-service-volume", "sfdc-sync", "acme.my.salesforce.com", 443, "salesforce"): 1,
        ("guarded-service-volume", "admin-jump", "support.okta.com", 443, "okta-support"): 1,
    },
}
# Per profile: the named destinations it must allow without a word (the
# vendors' documented services, the polled devices).
ALLOWED = {
    "cisco-firepower": {"smartreceiver.cisco.com", "tools.cisco.com", "cloud-sa.amp.cisco.com",
                        "updates.vrt.sourcefire.com", "intelligence.sourcefire.com",
                        "fmc.api.threatgrid.com", "pool.ntp.org"},
    "zscaler-connector": {"co2br.prod.zpath.net", "broker1a.sjc8.prod.zpath.net",
                          "api.private.zscaler.com", "yum.private.zscaler.com",
                          "dist.private.zscaler.com", "0.zscaler.pool.ntp.org"},
    "monitoring-server": {"vcenter.corp.example", "downloads.solarwinds.com"},
    "saas-integrations": {"acme.my.salesforce.com", "api.salesloft.com", "acme.okta.com",
                          "login.microsoftonline.com", "oauth2.googleapis.com", "support.okta.com"},
}
SIGNATURES = {  # words each kind's signature must hold
    "unexpected-destination": "no allow rule of role",
    "ndpi-risk": "nDPI risk: Suspicious DGA Domain name",
    "guarded-service-caller": "is not on the callers list of guarded service",
    "guarded-service-new-caller": "not on its callers list nor in the callers file",
    "guarded-service-volume": "guarded service",
}


def profile_copy(name, **changes):
    """The profile as shipped, minus its outputs (no Redis, no log file),
    with MaxMind's test databases and the callers file in the temporary
    directory; `changes` are applied to the parsed YAML."""
    with open(os.path.join(SRC, "sensors", name + ".yaml")) as f:
        cfg = yaml.safe_load(f)
    cfg.pop("redis", None)
    cfg.pop("output", None)
    cfg["geoip"] = {"country_db": f"{mmdb}/GeoIP2-Country-Test.mmdb",
                    "asn_db": f"{mmdb}/GeoLite2-ASN-Test.mmdb"}
    if "guarded_services" in cfg:
        cfg["guarded_services"]["callers_file"] = os.path.join(tmp, name + "-callers.txt")
    for k, fn in changes.items():
        fn(cfg)
    path = os.path.join(tmp, f"{name}{'-' + '-'.join(changes) if changes else ''}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    return path


def alerts(events):
    return [e for e in events if e.get("event_type") == "alert"]


def key_of(a):
    who = (a.get("asset") or {}).get("name") or a["src_ip"]
    return (a["alert"]["category"], who, a.get("dest_name") or a["dest_ip"], a.get("dest_port", 0),
            a["alert"].get("guarded_service"))


def final_counts(al):
    got = {}
    for a in al:
        k = key_of(a)
        got[k] = max(got.get(k, 0), a["alert"]["count"])
    return got


def capture(name):
    out = os.path.join(tmp, name + ".pcap")
    p = subprocess.run([PKTGEN, name, out], capture_output=True)
    c.check(p.returncode == 0, f"egressd-pktgen {name}: {p.stderr!r}")
    return out


def check_scenario(name):
    pcap = capture(name)
    cfg = profile_copy(name)
    rc, out, err = run(["-c", cfg, "--check-config"])
    c.check(rc == 0 and err == "", f"{name}: --check-config of the test copy: {rc} {err!r}")
    rc, events, err = replay([pcap], ["-c", cfg])
    c.check(rc == 0 and err == "", f"{name}: replay rc={rc} stderr={err!r}")
    al = alerts(events)
    got = final_counts(al)
    want = EXPECTED[name]
    c.check(got == want, f"{name}: alerts\n got  {sorted(got.items(), key=str)}\n"
                         f" want {sorted(want.items(), key=str)}")
    firsts = [a for a in al if not a["alert"]["update"]]
    c.check(len(firsts) == len(want), f"{name}: {len(firsts)} first alerts for {len(want)} keys")
    fl = flows(events)
    by_id = {e["flow_id"]: e for e in fl}
    for a in al:
        x = a["alert"]
        what = f"{name}: {key_of(a)}"
        c.check(a.get("network_direction") == "egress", f"{what}: direction {a.get('network_direction')}")
        c.check(SIGNATURES[x["category"]] in x["signature"], f"{what}: signature {x['signature']!r}")
        f = by_id.get(a["flow_id"])
        c.check(f is not None and f["flow"]["alerted"] is True, f"{what}: its flow is alerted")
        if x["category"].startswith("guarded-service"):
            c.check("intel_list" not in x, f"{what}: guarded service written as intel_list")
        if key_of(a)[2][0].isalpha():  # a name: it came from the SNI here
            c.check(a.get("dest_name_source") == "sni", f"{what}: name source {a.get('dest_name_source')}")
    # Each alerted flow is one match of one key (repeats fold into the
    # key's count): as many alerted flows as the counts add up to.
    n_alerted = sum(1 for f in fl if f["flow"]["alerted"])
    c.check(n_alerted == sum(want.values()),
            f"{name}: {n_alerted} flows alerted, the alerts count {sum(want.values())}")
    # The flows that must never alert are there and quiet: answered and
    # internal traffic, and the documented destinations.
    quiet = [f for f in fl if not f["flow"]["alerted"]]
    c.check(any(f.get("network_direction") == "inbound" for f in quiet), f"{name}: no inbound flow in the scenario")
    c.check(any(f.get("network_direction") == "internal" for f in quiet) or name == "monitoring-server",
            f"{name}: no internal flow in the scenario")
    allowed = {f["dest_name"] for f in quiet if f.get("network_direction") == "egress" and f.get("dest_name")}
    c.check(ALLOWED[name] <= allowed, f"{name}: allowed callouts missing or alerted: "
                                      f"{sorted(ALLOWED[name] - allowed)}")
    st = [e for e in events if e.get("event_type") == "stats"]
    c.check(st and st[-1]["stats"]["alerts"] == len(al),
            f"{name}: stats alerts {st and st[-1]['stats']['alerts']} vs {len(al)} events")
    return events


scenario_events = {name: check_scenario(name) for name in EXPECTED}

# Names attached where the scenario gives them: the DGA lookups' flows
# carry the names that raised the risk.
mon = flows(scenario_events["monitoring-server"])
dga = [f for f in mon if "Suspicious DGA Domain name" in (f.get("ndpi", {}).get("risks") or [])
       and f["src_ip"] == "10.13.1.5"]
mon_q = dns_queries(scenario_events["monitoring-server"])
c.check(len(dga) == 6 and all(mon_q.get(f["flow_id"], "").endswith(".avsvmcloud.com") for f in dga)
        and all(f["flow"]["alerted"] for f in dga), f"monitoring: DGA lookups {[mon_q.get(f['flow_id']) for f in dga]}")

# ---- the shared captures raise nothing through any of the profiles ---------
files = sorted(f for f in os.listdir(PCAPS) if f.endswith((".pcap", ".pcapng")))
c.check(len(files) >= 190, f"only {len(files)} shared captures")
configs = {name: profile_copy(name) for name in EXPECTED}


def shared(job):
    name, f = job
    rc, events, err = replay([os.path.join(PCAPS, f)], ["-c", configs[name]], timeout=300)
    return name, f, rc, [key_of(a) for a in alerts(events)], len(flows(events))


jobs = [(n, f) for n in EXPECTED for f in files]
with ThreadPoolExecutor(max_workers=2) as pool:
    results = list(pool.map(shared, jobs))
total_flows = {}
for name, f, rc, al, nflows in results:
    c.check(rc in (0, 1), f"{name} on {f}: exit {rc}")
    c.check(not al, f"{name} on shared {f}: {len(al)} alerts: {al[:5]}")
    total_flows[name] = total_flows.get(name, 0) + nflows
for name, n in total_flows.items():
    print(f"{name}: {len(files)} shared captures, {n} flow records, 0 alerts")
    c.check(n > 5000, f"{name}: only {n} flows replayed from the shared captures")

# ---- saas-integrations: learn, then baseline ----------------------------------
callers = os.path.join(tmp, "saas-integrations-callers.txt")
if os.path.exists(callers):
    os.unlink(callers)


def set_mode(mode):
    def fn(cfg):
        for svc in ("okta", "entra-id", "google-oauth"):
            cfg["guarded_services"]["services"][svc]["mode"] = mode
    return fn


pcap = os.path.join(tmp, "saas-integrations.pcap")
rc, events, err = replay([pcap], ["-c", profile_copy("saas-integrations", learn=set_mode("learn"))])
c.check(rc == 0 and err == "", f"learn: rc={rc} {err!r}")
kinds = sorted(key_of(a)[0] for a in alerts(events) if not a["alert"]["update"])
c.check(kinds == ["guarded-service-caller", "guarded-service-caller", "guarded-service-volume",
                  "guarded-service-volume"], f"learn mode: alerts {kinds}")
with open(callers) as f:
    text = f.read()
entries = sorted(" ".join(l.split("#")[0].split()) for l in text.splitlines()
                 if l.split("#")[0].strip())
c.check(entries == ["entra-id web2", "okta web2"], f"learned callers: {entries}\n{text}")
c.check("# learned 2025-10-15T09:01:" in text and "from 10.21.60.11, role web" in text,
        f"callers file comments:\n{text}")
rc, events, err = replay([pcap], ["-c", profile_copy("saas-integrations", base=set_mode("baseline"))])
kinds = sorted(key_of(a)[0] for a in alerts(events) if not a["alert"]["update"])
c.check(rc == 0 and "guarded-service-new-caller" not in kinds,
        f"baseline over the learned file: {kinds} {err!r}")
with open(callers, "w") as f:
    f.write("\n".join(l for l in text.splitlines() if not l.startswith("okta ")) + "\n")
rc, events, err = replay([pcap], ["-c", profile_copy("saas-integrations", base=set_mode("baseline"))])
new = [key_of(a) for a in alerts(events) if key_of(a)[0] == "guarded-service-new-caller"]
c.check(new == [("guarded-service-new-caller", "web2", "acme.okta.com", 443, "okta")],
        f"a caller taken out of the file is new again: {new}")

# ---- the generator is deterministic ---------------------------------------------
for name in EXPECTED:
    again = os.path.join(tmp, name + "-again.pcap")
    subprocess.run([PKTGEN, name, again], check=True)
    digest = [hashlib.sha256(open(p, "rb").read()).hexdigest()
              for p in (os.path.join(tmp, name + ".pcap"), again)]
    c.check(digest[0] == digest[1], f"{name}: two runs of egressd-pktgen differ")
    os.unlink(again)

c.done()
