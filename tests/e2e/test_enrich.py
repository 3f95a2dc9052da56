"""Enrichment end to end on the project's own captures: GeoIP/ASN of the
remote end from MaxMind's test databases (../shared/testdata/mmdb), the
destination name from SNI, HTTP host and passive DNS, and hostile names from
the wire escaped into valid JSON."""
import json
import os
import subprocess

from egrtest import PKTGEN, Checker, flows, need_shared, replay, run, temp_dir

c = Checker("test_enrich")
tmp = temp_dir()
mmdb = need_shared("testdata", "mmdb")
demo = os.path.join(tmp, "demo.pcap")
hostile = os.path.join(tmp, "hostile.pcap")
for kind, path in (("demo", demo), ("hostile", hostile)):
    p = subprocess.run([PKTGEN, kind, path], capture_output=True)
    c.check(p.returncode == 0, f"pktgen {kind}: {p.stderr!r}")

cfg = os.path.join(tmp, "test-dbs.yaml")
with open(cfg, "w") as f:
    f.write(f"geoip:\n  country_db: {mmdb}/GeoIP2-Country-Test.mmdb\n  asn_db: {mmdb}/GeoLite2-ASN-Test.mmdb\n")
rc, events, err = replay([demo], ["-c", cfg])
c.check(rc == 0 and err == "", f"demo with test databases: rc={rc} {err!r}")
by_dest = {}
for e in flows(events):
    by_dest.setdefault((e["dest_ip"], e.get("dest_port")), e)

# Values from the databases' README (expected-lookups.tsv).
e = by_dest[("89.160.20.112", 443)]
c.check(e.get("geo") == {"country": "SE", "asn": 29518, "as_org": "Bredband2 AB"}, f"89.160.20.112 geo: {e.get('geo')}")
c.check(e.get("dest_name") == "cdn-updates.example-sync.net" and e.get("dest_name_source") == "sni",
        f"SNI name: {e.get('dest_name')} {e.get('dest_name_source')}")
e = by_dest[("175.16.199.1", 80)]
c.check(e.get("geo") == {"country": "CN"}, f"175.16.199.1: country only (no ASN entry): {e.get('geo')}")
c.check("dest_name" not in e, f"numeric HTTP host is no name: {e.get('dest_name')}")
e = by_dest[("81.2.69.142", 443)]
c.check(e.get("geo") == {"country": "GB"}, f"81.2.69.142: {e.get('geo')}")
# Inbound: the remote end is the client; ASN 209 has no organisation key.
e = by_dest[("10.20.2.80", 443)]
c.check(e["src_ip"] == "216.160.83.56" or e["src_ip"] == "2.125.160.216", "inbound client")
inbound = [x for x in flows(events) if x["src_ip"] == "216.160.83.56"]
c.check(inbound and inbound[0].get("geo") == {"country": "US", "asn": 209},
        f"inbound client geo: {inbound and inbound[0].get('geo')}")
# Private addresses are never looked up.
for x in flows(events):
    if x["dest_ip"].startswith("10.20.") and x["src_ip"].startswith("10.20."):
        c.check("geo" not in x, f"internal flow has geo: {x['src_ip']} -> {x['dest_ip']}")
# Passive DNS: NTP to the address pool.ntp.org resolved to.
ntp = by_dest[("162.159.200.123", 123)]
c.check(ntp.get("dest_name") == "pool.ntp.org" and ntp.get("dest_name_source") == "dns",
        f"passive DNS name: {ntp.get('dest_name')} {ntp.get('dest_name_source')}")
st = events[-1]["stats"]["enrich"]
c.check(st["dns_responses"] >= 10 and st["names_learned"] >= 10 and st["names_hits"] >= 1, f"enrich stats {st}")

# No databases: no geo fields, nothing else changes.
nodb = os.path.join(tmp, "nodb.yaml")
with open(nodb, "w") as f:
    f.write('geoip:\n  country_db: ""\n  asn_db: ""\n')
rc, ev2, err = replay([demo], ["-c", nodb])
c.check(rc == 0 and not any("geo" in x for x in flows(ev2)), "geo fields without databases")
c.check(len(flows(ev2)) == len(flows(events)), "same flows without databases")

# A database path that is wrong is a configuration error naming it (exit 2,
# as --check-config says), found before any output is written.
bad = os.path.join(tmp, "baddb.yaml")
with open(bad, "w") as f:
    f.write(f"geoip:\n  country_db: {tmp}/missing.mmdb\n")
rc, ev3, err = replay([demo], ["-c", bad])
c.check(rc == 2 and f"{tmp}/missing.mmdb" in err and not ev3, f"missing database: rc={rc} {err!r}")
rc, _, err = run(["-c", bad, "--check-config"])
c.check(rc == 2 and f"{tmp}/missing.mmdb" in err, f"missing database, --check-config: rc={rc} {err!r}")

# Hostile names: valid JSON (replay() parses every line), markup escaped,
# raw bytes visible as \u00XX escapes.
rc, hev, err = replay([hostile])
c.check(rc == 0, f"hostile replay rc={rc} {err!r}")
out = os.path.join(tmp, "hostile.json")
subprocess.run([os.environ.get("EGRESSD_BIN", "egressd"), "-r", hostile, "--json", out], check=True)
raw = open(out, "rb").read()
c.check(b"<script" not in raw and b"<img" not in raw, "markup must be escaped in JSON output")
c.check(b"\\u003cscript\\u003e" in raw, "escaped script tag present")
names = [x.get("dest_name", "") for x in flows(hev)]
c.check("<script>alert(1)</script>" in names, f"SNI name decoded back: {names}")
c.check(any("\u00ff" in n or "\u00c3" in n for n in names + [json.dumps(x) for x in flows(hev)]),
        "invalid UTF-8 bytes kept visible")
c.done()
