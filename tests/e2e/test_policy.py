"""The egress policy end to end.

On the project's demo capture (docs/pktgen.md) with the demo policy
(sensors/demo.yaml) and MaxMind's test databases: the exact set of alerts
(appliances calling out to unexpected destinations over IPv4 and IPv6, the
exfiltration POST, the intel match), none for the traffic the appliances
answer (inbound clients of the virtual server, the mid-stream SSH session),
the alert fields, and flow records marked `alerted`. A variant without the
NTP rule shows an alert named from passive DNS (resolved through the
internal resolver, then contacted by address). Learn mode writes a baseline
that baseline mode then accepts. On a real capture from ../shared/pcaps, one
host declared an appliance in deny mode alerts for its outbound flows only,
with geo fields from the installed default databases."""
import json
import os
import re
import shutil
import subprocess
import tempfile

from egrtest import PKTGEN, SRC, Checker, flows, need_shared, replay, write_file

c = Checker("test_policy")
tmp = tempfile.mkdtemp()
mmdb = need_shared("testdata", "mmdb")
demo = os.path.join(tmp, "demo.pcap")
p = subprocess.run([PKTGEN, "demo", demo], capture_output=True)
c.check(p.returncode == 0, f"pktgen demo: {p.stderr!r}")

with open(os.path.join(SRC, "sensors", "demo.yaml")) as f:
    demo_yaml = f.read()
os.makedirs(os.path.join(tmp, "intel"))
shutil.copy(os.path.join(SRC, "sensors", "intel", "demo-domains.txt"), os.path.join(tmp, "intel"))
test_dbs = (f"geoip:\n  country_db: {mmdb}/GeoIP2-Country-Test.mmdb\n"
            f"  asn_db: {mmdb}/GeoLite2-ASN-Test.mmdb\n")


def config(name, text):
    return write_file(tmp, name, text)


def alerts(events):
    return [e for e in events if e.get("event_type") == "alert"]


def run_demo(cfg_text, name):
    rc, events, err = replay([demo], ["-c", config(name, cfg_text)])
    c.check(rc == 0 and err == "", f"{name}: rc={rc} stderr={err!r}")
    return events


# ---- A: the demo policy ------------------------------------------------------
events = run_demo(demo_yaml + test_dbs, "demo.yaml")
al = alerts(events)
got = sorted((a["alert"]["category"], a["src_ip"], a["dest_ip"], a.get("dest_port", 0)) for a in al)
want = sorted([
    ("unexpected-destination", "fd00:20::10", "2606:4700:4700::1111", 443),
    ("intel-match", "10.20.1.10", "89.160.20.112", 443),
    ("unexpected-destination", "10.20.1.10", "89.160.20.112", 443),
    ("unexpected-destination", "10.20.1.10", "175.16.199.1", 80),
    ("exfiltration", "10.20.1.10", "175.16.199.1", 80),
    ("unexpected-destination", "10.20.1.10", "81.2.69.142", 443),
    ("unexpected-destination", "10.20.1.20", "1.1.1.1", 0),
])
c.check(got == want, f"demo alerts:\n got  {got}\n want {want}")

fl = flows(events)
by_id = {e["flow_id"]: e for e in fl}
keys = set()
for a in al:
    x = a["alert"]
    what = f"alert {x['category']} {a['src_ip']}->{a['dest_ip']}"
    c.check(re.fullmatch(r"[0-9a-f]{40}", x["alert_key"]) is not None, f"{what}: alert_key {x['alert_key']!r}")
    keys.add(x["alert_key"])
    c.check(x["update"] is False and x["count"] == 1, f"{what}: first alert, count 1: {x}")
    c.check(a["network_direction"] == "egress", f"{what}: direction {a.get('network_direction')}")
    f = by_id.get(a["flow_id"])
    c.check(f is not None and f["flow"]["alerted"] is True, f"{what}: its flow record is alerted")
    if f:
        c.check(f["community_id"] == a["community_id"], f"{what}: community_id differs from its flow")
    c.check(x["first_seen"] <= x["last_seen"], f"{what}: first_seen after last_seen")
    c.check(x["severity"] == 1 and x["severity_name"] == "high", f"{what}: severity {x['severity']}")
    # Decided at the first packet, an alert cannot know the protocol yet;
    # later, it carries nDPI's answer so far. Its flow record has the final one.
    if f:
        by = f.get("decision", {}).get("by")
        c.check(by in ("first_packet", "name", "classified", "bound", "volume", "record"),
                f"{what}: decision.by {by!r}")
        c.check(x["alert_key"] in f.get("decision", {}).get("alert_keys", []),
                f"{what}: its flow record names the alert key")
        c.check("ndpi" in a or by == "first_packet", f"{what}: nDPI protocol")
    src_asset = {"10.20.1.10": "bigip1", "10.20.1.20": "fortigate1", "fd00:20::10": "appliance-v6"}[a["src_ip"]]
    role = {"bigip1": "lb-mgmt", "fortigate1": "fw-mgmt", "appliance-v6": "lb-mgmt"}[src_asset]
    c.check(a.get("asset") == {"name": src_asset, "role": role}, f"{what}: asset {a.get('asset')}")
    if x["category"] == "unexpected-destination":
        c.check(x["signature"] == f"no allow rule of role {role} matched", f"{what}: signature {x['signature']!r}")
        c.check(x["service"] in ("tcp/443", "tcp/80", "icmp"), f"{what}: service {x['service']!r}")
c.check(len(keys) == len(al), "alert keys are distinct")

by_pair = {(a["alert"]["category"], a["dest_ip"]): a for a in al}
x = by_pair.get(("unexpected-destination", "89.160.20.112"))
if c.check(x is not None, "alert to 89.160.20.112"):
    c.check(x.get("dest_name") == "cdn-updates.example-sync.net" and x.get("dest_name_source") == "sni",
            f"89.160.20.112: dest_name {x.get('dest_name')!r} from {x.get('dest_name_source')!r}")
    c.check(x.get("geo") == {"country": "SE", "asn": 29518, "as_org": "Bredband2 AB"},
            f"89.160.20.112: geo {x.get('geo')}")
x = by_pair.get(("intel-match", "89.160.20.112"))
if c.check(x is not None, "intel alert"):
    c.check(x["alert"].get("intel_list") == "demo-iocs"
            and x["alert"]["signature"] == "matched intel list demo-iocs (domain cdn-updates.example-sync.net)",
            f"intel alert: {x['alert']}")
x = by_pair.get(("unexpected-destination", "175.16.199.1"))
if c.check(x is not None, "alert to 175.16.199.1"):
    c.check("dest_name" not in x, "a literal IP in Host: is no destination name")
    c.check(x.get("geo", {}).get("country") == "CN", f"175.16.199.1 geo {x.get('geo')}")
x = by_pair.get(("exfiltration", "175.16.199.1"))
if c.check(x is not None, "exfiltration alert"):
    # At the packet that takes the window over the threshold: by less than a frame.
    m = re.fullmatch(r"asset bigip1 sent (\d+) bytes out within 300 s \(threshold 262144\)", x["alert"]["signature"])
    c.check(m is not None and 262144 < int(m.group(1)) <= 262144 + 1600,
            f"exfiltration signature {x['alert']['signature']!r}")
x = by_pair.get(("unexpected-destination", "1.1.1.1"))
if c.check(x is not None, "ICMP alert"):
    c.check(x["proto"] == "ICMP" and x["alert"]["service"] == "icmp", f"ICMP alert: {x['proto']} {x['alert']}")

# Traffic the appliances answer never alerts, and carries the asset.
alerted_ids = {a["flow_id"] for a in al}
for f in fl:
    if f["flow_id"] not in alerted_ids:
        c.check(f["flow"]["alerted"] is False, f"flow {f['src_ip']}->{f['dest_ip']} alerted without an alert")
inbound = [f for f in fl if f["dest_ip"] in ("10.20.2.80", "10.20.1.10") and f["src_ip"] in
           ("216.160.83.56", "2.125.160.216", "67.43.156.1")]
c.check(len(inbound) == 3, f"inbound flows: {len(inbound)}")
for f in inbound:
    c.check(f.get("network_direction") == "inbound" and f.get("asset") == {"name": "bigip1", "role": "lb-mgmt"},
            f"inbound {f['src_ip']}->{f['dest_ip']}: direction {f.get('network_direction')} asset {f.get('asset')}")
    c.check(f["flow_id"] not in alerted_ids, f"inbound {f['src_ip']} raised an alert")
work = [f for f in fl if f["src_ip"] == "10.20.5.50" and f["network_direction"] == "egress"]
c.check(len(work) == 4 and all("asset" not in f for f in work), f"workstation: {len(work)} egress flows, no asset")
st = [e for e in events if e.get("event_type") == "stats"]
c.check(len(st) == 1 and st[0]["stats"].get("alerts") == 7, f"stats alerts: {st and st[0]['stats'].get('alerts')}")

# ---- B: a name learned from DNS on an unexpected destination ------------------
no_ntp = re.sub(r"      - name: ntp\n(        .*\n)+?(?=      - name: f5-vendor)", "", demo_yaml)
c.check(no_ntp != demo_yaml, "removed the ntp rule from the demo policy")
events = run_demo(no_ntp + test_dbs, "no-ntp.yaml")
ntp = [a for a in alerts(events) if a["dest_ip"] == "162.159.200.123"]
if c.check(len(ntp) == 1, f"one alert for the NTP server, got {len(ntp)}"):
    a = ntp[0]
    c.check(a.get("dest_name") == "pool.ntp.org" and a.get("dest_name_source") == "dns",
            f"NTP alert dest_name {a.get('dest_name')!r} from {a.get('dest_name_source')!r}")
    c.check(a["alert"]["service"] == "udp/123", f"NTP service {a['alert']['service']}")
    # ten NTP polls are one flow: one alert, count 1
    c.check(a["alert"]["count"] == 1, f"NTP alert count {a['alert']['count']}")
c.check(len(alerts(events)) == 8, f"no-ntp: {len(alerts(events))} alerts, want 8")

# ---- C: learn, then baseline --------------------------------------------------
learn_yaml = demo_yaml.replace("mode: deny", "mode: learn") + test_dbs + \
    "learning:\n  baseline_file: learned.yaml\n"
events = run_demo(learn_yaml, "learn.yaml")
c.check(all(a["alert"]["category"] != "unexpected-destination" for a in alerts(events)),
        "learn mode raises no unexpected-destination alert")
base = os.path.join(tmp, "learned.yaml")
if c.check(os.path.exists(base), "learn mode wrote the baseline file"):
    text = open(base).read()
    for needle in ('lb-mgmt:', 'fw-mgmt:', 'domain: "cdn-updates.example-sync.net", proto: tcp, port: 443',
                   'cidr: "175.16.199.1", proto: tcp, port: 80', 'cidr: "1.1.1.1", proto: icmp',
                   'domain: "cloudflare-dns.com", proto: tcp, port: 443'):
        c.check(needle in text, f"baseline file lacks {needle!r}:\n{text}")
    st = [e for e in events if e.get("event_type") == "stats"][0]["stats"]
    c.check(st["policy"]["learned"] == 5, f"stats learned {st['policy']}, want 5")
    r = subprocess.run([os.environ.get("EGRESSD_BIN") or os.path.join(SRC, "build", "egressd"),
                        "-c", config("baseline.yaml", learn_yaml.replace("mode: learn", "mode: baseline")),
                        "--check-config"], capture_output=True, text=True)
    c.check(r.returncode == 0, f"--check-config with the learned baseline: {r.stderr}")
    events = run_demo(learn_yaml.replace("mode: learn", "mode: baseline"), "baseline.yaml")
    kinds = sorted(a["alert"]["category"] for a in alerts(events))
    c.check(kinds == ["exfiltration", "intel-match"], f"baseline mode on the same traffic: {kinds}")

# ---- D: a real capture, one host declared an appliance ------------------------
geo_dir = "/var/lib/egressd/geoip"
c.check(os.path.exists(f"{geo_dir}/asn.mmdb"), f"{geo_dir}: default databases missing (scripts/geoip-db.sh)")
insta = need_shared("pcaps", "instagram.pcap")
real_cfg = config("instagram.yaml", """
home_net: [192.168.0.0/16]
assets:
  - {name: phone-as-appliance, hosts: [192.168.0.103], role: locked}
roles:
  locked: {mode: deny, severity: high}
alerts: {suppress: 1h, max_per_second: 0}
""")
rc, events, err = replay([insta], ["-c", real_cfg])
c.check(rc == 0, f"instagram: rc={rc} {err!r}")
fl = flows(events)
al_all = alerts(events)
al = [a for a in al_all if not a["alert"]["update"]]
updates = [a for a in al_all if a["alert"]["update"]]
egress = [f for f in fl if f["src_ip"] == "192.168.0.103" and f.get("network_direction") == "egress"]
other = [f for f in fl if f["src_ip"] != "192.168.0.103"]
c.check(len(egress) >= 20 and len(other) >= 1, f"instagram: {len(egress)} egress flows of the appliance, {len(other)} others")


def service(f):
    proto = f["proto"].lower()
    if proto in ("tcp", "udp"):
        return f"{proto}/{f['dest_port']}"
    return {"icmp": "icmp", "ipv6-icmp": "icmp6"}.get(proto, proto)


# Every egress flow of the appliance alerts, and names the key of its alert
# in its record (decision.alert_keys). A flow is decided at its first packet
# here (a role with no allow rule): the key's destination is what was known
# then (a name from passive DNS, else the address), so the alerts are one per
# key the flows name, and the final counts add up to the flows.
c.check(all(f["flow"]["alerted"] for f in egress), "every egress flow of the appliance alerted")
c.check(all(f.get("decision", {}).get("by") == "first_packet" for f in egress),
        "decided at the first packet: " + str({f.get("decision", {}).get("by") for f in egress}))
by_key = {}
for f in egress:
    for k in f.get("decision", {}).get("alert_keys", [])[:1]:
        by_key[k] = by_key.get(k, 0) + 1
got_keys = {a["alert"]["alert_key"] for a in al}
c.check(got_keys == set(by_key), f"instagram alerts: one per key the flows name\n got  {sorted(got_keys)}\n want {sorted(by_key)}")
c.check(len(al) == len(by_key), f"instagram: {len(al)} alerts for {len(by_key)} keys")
for a in al:
    c.check(a["src_ip"] == "192.168.0.103" and a["network_direction"] == "egress", f"alert from {a['src_ip']} {a['network_direction']}")
    g = a.get("geo", {})
    c.check(len(g.get("country", "")) == 2 and g.get("asn", 0) > 0,
            f"alert to {a['dest_ip']}: geo {g}")
    c.check(a["alert"]["service"] == service(a), f"alert service {a['alert']['service']} of {a['dest_ip']}")
for f in other:
    c.check(f["flow"]["alerted"] is False, f"flow of {f['src_ip']} alerted")
# Repeats of a key are counted: the end of the run writes one update per key
# whose count grew, and the counts add up to the flows.
final = {a["alert"]["alert_key"]: a["alert"]["count"] for a in al + updates}
for a in updates:
    c.check(a["alert"]["count"] > 1, f"update for {a['alert']['alert_key']} with count {a['alert']['count']}")
c.check(final == by_key, f"final counts per key:\n got  {final}\n want {by_key}")
c.check(len(updates) == sum(1 for v in by_key.values() if v > 1), f"{len(updates)} updates")
google = [a for a in al if a["dest_ip"] == "8.8.8.8"]
c.check(len(google) == 1 and google[0]["geo"].get("country") == "US" and google[0]["geo"].get("asn") == 15169,
        f"8.8.8.8 alert geo: {google and google[0].get('geo')}")

shutil.rmtree(tmp, ignore_errors=True)
c.done()
