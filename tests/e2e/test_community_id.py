"""community_id of every flow equals the Community ID spec's baseline for
../shared/testdata/community-id (default, seed 1, no base64), and the set of
IDs is exactly the baseline's."""
import gzip
import ipaddress
import json
import os

from egrtest import Checker, flows, need_shared, replay, temp_dir

base = need_shared("testdata", "community-id")
tmp = temp_dir()
combined = os.path.join(tmp, "combined.pcap")
with gzip.open(os.path.join(base, "pcaps", "combined.pcap.gz")) as src, open(combined, "wb") as dst:
    dst.write(src.read())

c = Checker("test_community_id")
settings = {"deflt": "", "seed1": "community_id:\n  seed: 1\n", "nob64": "community_id:\n  base64: false\n"}
for name, yaml in settings.items():
    cfg = os.path.join(tmp, f"{name}.yaml")
    with open(cfg, "w") as f:
        f.write(yaml)
    baseline = json.load(open(os.path.join(base, "baseline", f"baseline_{name}.json")))
    rc, events, err = replay([combined], ["-c", cfg])
    c.check(rc == 0, f"{name}: exit {rc}: {err}")
    recs = flows(events)
    ours = {}
    for e in recs:
        key = (e["community_id"], frozenset([ipaddress.ip_address(e["src_ip"]), ipaddress.ip_address(e["dest_ip"])]))
        ours[key] = e
    for b in baseline:
        key = (b["communityid"], frozenset([ipaddress.ip_address(b["saddr"]), ipaddress.ip_address(b["daddr"])]))
        c.check(key in ours, f"{name}: no flow with {b}")
    want_ids = {b["communityid"] for b in baseline}
    got_ids = {e["community_id"] for e in recs}
    c.check(got_ids == want_ids, f"{name}: ID sets differ: extra {got_ids - want_ids}, missing {want_ids - got_ids}")
    c.check(len(want_ids) == 14, f"{name}: baseline should hold 14 IDs, has {len(want_ids)}")

# The single captures give the same IDs as the combined one.
rc, events, err = replay([os.path.join(base, "pcaps", "arp.pcap")])
c.check(rc == 0 and not flows(events), "arp.pcap: no flow, no Community ID")
c.done()
