"""EVE fidelity: every event egressd writes, checked against Suricata's own
JSON Schema (etc/schema.json of Suricata 7.0.17 and 8.0.6, draft 7, from
../shared/testdata/suricata-eve-schema) and against egressd's documented
schema (docs/eve-schema.json):

- where Suricata's schema refuses a member, that member must be one of
  egressd's extensions: marked "x-extension" in egressd's schema at that
  place and listed in docs/eve-format.md (Extensions). Any other error
  (a type, a required member, a value Suricata would not write) fails;
- every event validates strictly against egressd's schema;
- every extension of egressd's schema is listed in docs/eve-format.md and
  written at least once by the corpus, so the list cannot go stale;
- Suricata's names mean what they mean in Suricata: tls.version is "TLS 1.2"
  style, tls.ja3.hash is the MD5 of tls.ja3.string, dns events are
  version 2 with rrtype/rcode names and answers with TTLs, alerts have the
  flow sub-object, nothing writes `direction` with egressd's values, and
  the ndpi object holds nothing Suricata's objects already say.

Corpus: every capture of ../shared/pcaps replayed on its own with a policy
that alerts (private networks as home_net, a deny-mode default role) and the
MaxMind test databases; the project's demo capture with the demo policy and
a real Redis (stats.redis); the hostile-names capture.
"""
import collections
import hashlib
import json
import os
import re
import subprocess

import jsonschema
import yaml

from egrtest import BIN, PKTGEN, SRC, Checker, need_shared, temp_dir
from redisharness import RedisServer

c = Checker("test_eve_schema")
tmp = temp_dir(prefix="egressd-eve-schema-")
schema_dir = need_shared("testdata", "suricata-eve-schema")
mmdb = need_shared("testdata", "mmdb")
pcaps = need_shared("pcaps")

with open(os.path.join(SRC, "docs", "eve-schema.json")) as f:
    ours = json.load(f)
jsonschema.Draft7Validator.check_schema(ours)
OURS = jsonschema.Draft7Validator(ours)
SURICATA = {}
for name in ("schema-7.0.17.json", "schema-8.0.6.json"):
    with open(os.path.join(schema_dir, name)) as f:
        SURICATA[name] = jsonschema.Draft7Validator(json.load(f))
with open(os.path.join(SRC, "docs", "eve-format.md")) as f:
    doc = f.read()
m = re.search(r"^## Extensions\n(.*?)(?=^## )", doc, re.M | re.S)
# The first column of the section's table: one extension path per row.
documented = set(re.findall(r"^\| `([a-z0-9_.*]+)` \|", m.group(1), re.M)) if m else set()
c.check(m is not None, "docs/eve-format.md has no '## Extensions' section")

# ---- the corpus -----------------------------------------------------------------
geo = f"geoip:\n  country_db: {mmdb}/GeoIP2-Country-Test.mmdb\n  asn_db: {mmdb}/GeoLite2-ASN-Test.mmdb\n"
policy = os.path.join(tmp, "alerting.yaml")
with open(policy, "w") as f:
    f.write(geo + "home_net: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, \"fc00::/7\"]\n"
            "default_role: watched\nroles:\n  watched:\n    mode: deny\n    severity: low\n")
demo_cfg = os.path.join(tmp, "demo.yaml")
with open(os.path.join(SRC, "sensors", "demo.yaml")) as f:
    demo_text = f.read()
with open(demo_cfg, "w") as f:
    # The demo's intel lists are relative to sensors/.
    f.write(demo_text.replace("file: intel/", f"file: {SRC}/sensors/intel/") + "\n" + geo)


def replay(args, label):
    out = os.path.join(tmp, "eve.json")
    p = subprocess.run([BIN] + args + ["--json", out], capture_output=True, timeout=300)
    events = []
    if os.path.exists(out):
        with open(out, "rb") as fh:
            for n, line in enumerate(fh, 1):
                try:
                    events.append(json.loads(line))
                except ValueError as e:
                    c.check(False, f"{label}: line {n} is not JSON: {e}")
        os.remove(out)
    return p.returncode, events, p.stderr.decode("utf-8", "replace")


corpus = []  # (label, event)
files = sorted(n for n in os.listdir(pcaps) if n.endswith((".pcap", ".pcapng")))
for name in files:
    rc, events, err = replay(["-c", policy, "-r", os.path.join(pcaps, name)], name)
    # Broken captures end with status 1 after writing what they decoded.
    c.check(rc in (0, 1) and events, f"{name}: rc={rc}, {len(events)} events: {err[-200:]!r}")
    corpus += [(name, e) for e in events]
demo = os.path.join(tmp, "demo.pcap")
hostile = os.path.join(tmp, "hostile.pcap")
for kind, path in (("demo", demo), ("hostile", hostile)):
    p = subprocess.run([PKTGEN, kind, path], capture_output=True)
    c.check(p.returncode == 0, f"pktgen {kind}: {p.stderr!r}")
redis = RedisServer()
redis.start()
rc, events, err = replay(["-c", demo_cfg, "-r", demo, "--redis", redis.url], "demo")
c.check(rc == 0 and events, f"demo: rc={rc} {err[-300:]!r}")
corpus += [("demo", e) for e in events]
rc, events, err = replay(["-c", demo_cfg, "-r", hostile], "hostile")
c.check(rc == 0 and events, f"hostile: rc={rc} {err[-300:]!r}")
corpus += [("hostile", e) for e in events]
redis.stop()
# Guarded services (sensors/saas-integrations.yaml on its scenario): the
# alerts that name a guarded service.
with open(os.path.join(SRC, "sensors", "saas-integrations.yaml")) as f:
    saas = yaml.safe_load(f)
saas.pop("redis", None)
saas.pop("output", None)
saas["guarded_services"]["callers_file"] = os.path.join(tmp, "callers.txt")
saas_cfg = os.path.join(tmp, "saas.yaml")
with open(saas_cfg, "w") as f:
    yaml.safe_dump(saas, f, sort_keys=False)
    f.write(geo)
saas_pcap = os.path.join(tmp, "saas.pcap")
p = subprocess.run([PKTGEN, "saas-integrations", saas_pcap], capture_output=True)
c.check(p.returncode == 0, f"pktgen saas-integrations: {p.stderr!r}")
rc, events, err = replay(["-c", saas_cfg, "-r", saas_pcap], "saas-integrations")
c.check(rc == 0 and events, f"saas-integrations: rc={rc} {err[-300:]!r}")
corpus += [("saas-integrations", e) for e in events]

types = collections.Counter(e.get("event_type") for _, e in corpus)
c.check(set(types) == {"flow", "dns", "alert", "stats"} and min(types.values()) > 0,
        f"event types written: {dict(types)}")
print(f"test_eve_schema: {len(corpus)} events from {len(files) + 2} captures: {dict(types)}")

# ---- egressd's schema: where its extensions are -----------------------------------


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        node = ours["definitions"][node["$ref"].split("/")[-1]]
    return node


def child(node, key):
    """The schema of member `key` (or array item) under node, or None."""
    node = resolve(node)
    if node is None:
        return None
    if isinstance(key, int):
        return resolve(node.get("items"))
    props = node.get("properties", {})
    if key in props:
        return resolve(props[key])
    extra = node.get("additionalProperties")
    return resolve(extra) if isinstance(extra, dict) else None


def is_extension(event_type, path, key):
    node = ours["definitions"].get(f"{event_type}_event")
    for p in path:
        node = child(node, p)
    node = resolve(node)
    if node is None:
        return False
    sub = node.get("properties", {}).get(key)
    if sub is None:
        sub = node.get("additionalProperties")
    return isinstance(sub, dict) and (sub.get("x-extension") is True or resolve(sub).get("x-extension") is True)


def extension_paths(node, path, out, seen=()):
    node = resolve(node)
    if not isinstance(node, dict):
        return
    for key, sub in node.get("properties", {}).items():
        rs = resolve(sub)
        p = path + [key]
        if sub.get("x-extension") or (isinstance(rs, dict) and rs.get("x-extension")):
            out.add(".".join(p))
        extension_paths(sub, p, out)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and extra.get("x-extension"):
        out.add(".".join(path + ["*"]))
    if "items" in node:
        extension_paths(node["items"], path, out)


marked = {}  # event type -> set of extension paths
for et in ("flow", "dns", "alert", "stats"):
    marked[et] = set()
    extension_paths(ours["definitions"][f"{et}_event"], [], marked[et])
all_marked = set().union(*marked.values())
undocumented = sorted(p for p in all_marked if p not in documented)
c.check(not undocumented, f"extensions of docs/eve-schema.json not listed in docs/eve-format.md: {undocumented}")
stale = sorted(p for p in documented if p not in all_marked)
c.check(not stale, f"docs/eve-format.md lists extensions the schema does not have: {stale}")


def paths_of(value, path, out):
    if isinstance(value, dict):
        for k, v in value.items():
            out.add(".".join(path + [k]))
            paths_of(v, path + [k], out)
    elif isinstance(value, list):
        for v in value:
            paths_of(v, path, out)


# ---- the checks ------------------------------------------------------------------
refused = collections.Counter()   # extension paths Suricata refuses (expected)
bad = collections.Counter()       # anything else
ours_bad = collections.Counter()
written = collections.defaultdict(set)
for label, e in corpus:
    et = e.get("event_type")
    for err in OURS.iter_errors(e):
        ours_bad[(et, "/".join(map(str, err.absolute_path)), err.message[:160], label)] += 1
    paths_of(e, [], written[et])
    for sname, v in SURICATA.items():
        for err in v.iter_errors(e):
            path = list(err.absolute_path)
            if err.validator == "additionalProperties":
                allowed = set(err.schema.get("properties", {}))
                pats = err.schema.get("patternProperties", {})
                extra = [k for k in err.instance if k not in allowed and not any(re.search(p, k) for p in pats)]
                for k in extra:
                    where = ".".join(str(p) for p in path + [k] if not isinstance(p, int))
                    if is_extension(et, [p for p in path], k):
                        refused[(et, where)] += 1
                    else:
                        bad[(sname, et, where, "not an extension", label)] += 1
            else:
                bad[(sname, et, "/".join(map(str, path)), err.message[:160], label)] += 1

for k, n in bad.most_common(20):
    c.check(False, f"Suricata schema error x{n}: {k}")
for k, n in ours_bad.most_common(20):
    c.check(False, f"docs/eve-schema.json error x{n}: {k}")


def observed(et, p):
    if p.endswith(".*"):
        return any(w.startswith(p[:-1]) for w in written[et])
    return p in written[et]


for et, ps in marked.items():
    for p in sorted(ps):
        c.check(observed(et, p), f"{et} extension {p} is never written by the corpus (a dead entry?)")

# Suricata's names, Suricata's meanings.
tls = [e["tls"] for _, e in corpus if "tls" in e]
ja3 = [t["ja3"] for t in tls if "ja3" in t]
with_str = [j for j in ja3 if "string" in j]
c.check(len(tls) > 100 and len(with_str) > 0.8 * len(ja3),
        f"tls objects {len(tls)}, with ja3 {len(ja3)}, with ja3.string {len(with_str)}")
for j in with_str:
    c.check(hashlib.md5(j["string"].encode()).hexdigest() == j["hash"], f"ja3 hash is not md5(string): {j}")
vers = collections.Counter(t.get("version") for t in tls)
c.check(vers["TLS 1.2"] > 0 and all(v is None or re.fullmatch(r"SSLv[23]|TLSv1|TLS 1\.[0-3]( draft-\d+)?|0x[0-9a-f]{4}", v)
                                   for v in vers), f"tls.version values {dict(vers)}")
c.check(any("notafter" in t and "notbefore" in t for t in tls), "no certificate validity in any tls object")
c.check(any(t.get("subject") and t.get("issuerdn") and t.get("fingerprint") for t in tls),
        "no certificate subject/issuerdn/fingerprint")
c.check(sum("quic" in e for _, e in corpus) > 0, "no quic object")
http = [e["http"] for _, e in corpus if "http" in e]
c.check(any(h.get("hostname") and h.get("http_user_agent") and h.get("url") for h in http),
        f"http objects without hostname/user agent/url: {http[:2]}")
c.check(any(e.get("ssh", {}).get("client", {}).get("software_version") for _, e in corpus), "no ssh software version")

dns = [e for _, e in corpus if e.get("event_type") == "dns"]
answers = [e for e in dns if e["dns"]["type"] == "answer"]
queries = [e for e in dns if e["dns"]["type"] == "query"]
c.check(len(queries) > 50 and len(answers) > 50, f"{len(queries)} dns queries, {len(answers)} answers")
for e in dns:
    d = e["dns"]
    c.check(d["version"] == 2 and re.fullmatch(r"[A-Z][A-Z0-9]*|\d+", d["rrtype"]),
            f"dns event {d}")
    if d["type"] == "answer":
        c.check(re.fullmatch(r"NOERROR|FORMERR|SERVFAIL|NXDOMAIN|NOTIMP|REFUSED|YX\w+|NX\w+|NOT\w+|\d+",
                             d.get("rcode", "")), f"dns rcode {d.get('rcode')}")
        c.check(e.get("src_port") == 53 or "src_port" not in e, f"dns answer not from the server's side: {e}")
        for a in d.get("answers", []):
            c.check(isinstance(a["ttl"], int) and a["rrtype"] in ("A", "AAAA", "CNAME"), f"dns answer {a}")
many = [e for e in answers if len(e["dns"].get("answers", [])) > 1]
c.check(many and any("CNAME" in e["dns"].get("grouped", {}) for e in answers),
        f"dns answers: {len(many)} with several records; CNAME chains: "
        f"{sum('CNAME' in e['dns'].get('grouped', {}) for e in answers)}")

alerts = [e for _, e in corpus if e.get("event_type") == "alert"]
c.check(alerts and all({"pkts_toserver", "bytes_toclient", "start", "src_ip"} <= set(a["flow"]) for a in alerts),
        f"{len(alerts)} alerts, flow sub-objects {[a.get('flow') for a in alerts[:1]]}")
for label, e in corpus:
    if "direction" in e:
        c.check(e["direction"] in ("to_server", "to_client"), f"{label}: direction {e['direction']!r}")
    n = e.get("ndpi", {})
    c.check(not ({"tls", "http", "dns", "ssh"} & set(n)), f"{label}: ndpi repeats Suricata's objects: {sorted(n)}")
c.check(any(e.get("network_direction") == "egress" for _, e in corpus), "no network_direction")
c.check(any("redis" in e.get("stats", {}) for _, e in corpus), "no stats.redis")

c.done()
