"""When alerts are decided: at the packet that settles the verdict, not at
the flow's record.

On the project's callouts capture (`egressd-pktgen callouts`, docs/pktgen.md)
with a deny-mode role on two BIG-IP management addresses:

- a reverse shell to a bare address on port 4444 held open two hours alerts
  at its SYN; the same over port 443 without TLS (a rule for tcp/443 by name
  could still have allowed it) at its second packet with payload; TLS to an
  unknown SNI kept alive an hour at its ClientHello; a DNS beacon to an
  outside resolver every minute at its first datagram: each within 1 s of
  packet time, with the deciding packet's time as the alert's timestamp,
  and written before anything that happened later (not at the 30-minute
  active timeout, as a record-time check does);
- a slow upload from the second appliance alerts at the very packet that
  takes the asset's 10-minute window over 1 MiB (computed here from the
  capture itself);
- the allowed vendor traffic, a mid-stream SSH session the appliance
  answers and clients of a virtual server never alert;
- every record of an alerted flow, interim ones included, says
  flow.alerted and names its alert's key (decision.alert_keys);
- the same input gives byte-identical output, run after run;
- live, through a veth pair with tcpreplay at the capture's own pace (the
  time-compressed version): the same alerts, each within 1 s of its flow's
  first packet by the kernel's timestamps, and already in the JSON file
  and in the Redis alert stream while the flows are still open, although
  the Redis sink is told to batch for a minute (an alert is sent at once,
  not with the next batch).
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

from egrtest import BIN, PKTGEN, Checker, flows, write_file
import livehelp
from redisharness import RedisServer

c = Checker("test_decide")
tmp = tempfile.mkdtemp()
os.chmod(tmp, 0o1777)
POLICY = """home_net: [10.20.0.0/16]
assets:
  - {name: bigip1, hosts: [10.20.1.10], role: lb-mgmt}
  - {name: bigip2, hosts: [10.20.1.11], role: lb-mgmt}
roles:
  lb-mgmt:
    mode: deny
    allow:
      - {name: ntp, ndpi: [NTP], proto: udp, port: [123]}
      - {name: dns, cidr: [10.20.0.53/32], proto: udp, port: [53]}
      - {name: f5-vendor, domain: ["*.f5.com", "f5.com"], proto: tcp, port: [443]}
exfiltration: {window: 10m, bytes: 1048576}
geoip: {country_db: "", asn_db: ""}
"""
cfg = write_file(tmp, "callouts.yaml", POLICY)
THRESHOLD = 1048576


def ts(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def packets(path):
    """(time, orig_len, src, sport, dst, dport, proto, payload_len) of an
    Ethernet/IPv4 classic pcap, as the capture writer makes them."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    off = 24
    while off + 16 <= len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, off)
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 15) * 4
        total = struct.unpack_from(">H", ip, 2)[0]
        proto = ip[9]
        src = ".".join(map(str, ip[12:16]))
        dst = ".".join(map(str, ip[16:20]))
        l4 = ip[ihl:total]
        sport, dport = struct.unpack_from(">HH", l4, 0)
        if proto == 6:
            plen = len(l4) - (l4[12] >> 4) * 4
        elif proto == 17:
            plen = len(l4) - 8
        else:
            plen = 0
        out.append((sec + usec / 1e6, orig, src, sport, dst, dport, proto, plen))
    return out


def crossing(pkts, src):
    """Time of the packet that takes src's outbound bytes over THRESHOLD."""
    total = 0
    for p in pkts:
        if p[2] == src and not p[4].startswith("10.20."):
            total += p[1]
            if total > THRESHOLD:
                return p[0], total
    return None, total


def nth_payload(pkts, a, b, n):
    """Time of the n-th packet with payload between endpoints a and b."""
    seen = 0
    for p in pkts:
        if {(p[2], p[3]), (p[4], p[5])} == {a, b} and p[7] > 0:
            seen += 1
            if seen == n:
                return p[0]
    return None


WANT = {
    ("unexpected-destination", "203.0.113.66", 4444): "first_packet",
    ("unexpected-destination", "203.0.113.67", 443): "bound",
    ("unexpected-destination", "203.0.113.77", 443): "name",
    ("unexpected-destination", "198.51.100.53", 53): "first_packet",
    ("exfiltration", "151.101.1.140", 443): "volume",
}


def first_alerts(events):
    return {(e["alert"]["category"], e["dest_ip"], e.get("dest_port")): (i, e)
            for i, e in enumerate(events)
            if e["event_type"] == "alert" and not e["alert"]["update"]}


def check_common(events, what):
    al = first_alerts(events)
    c.check(set(al) == set(WANT), f"{what}: alerts {sorted(al)}")
    fl = flows(events)
    by_id = {}
    for f in fl:
        by_id.setdefault(f["flow_id"], []).append(f)
    for k, (i, a) in al.items():
        recs = by_id.get(a["flow_id"], [])
        c.check(len(recs) > 0, f"{what} {k}: flow records")
        for r in recs:
            v = r.get("decision", {})
            c.check(r["flow"]["alerted"] is True and a["alert"]["alert_key"] in v.get("alert_keys", []),
                    f"{what} {k}: record {r['flow']['reason']} names the alert: {v}")
            c.check(v.get("by") == WANT[k], f"{what} {k}: decided by {v.get('by')}, want {WANT[k]}")
            c.check(ts(v.get("alerted_at", r["timestamp"])) == ts(a["timestamp"]),
                    f"{what} {k}: decision.alerted_at {v.get('alerted_at')} is the alert's time")
        # Written when decided: nothing in the file before it is later than it.
        later = [e for e in events[:i] if ts(e["timestamp"]) > ts(a["timestamp"]) + 1.0]
        c.check(not later, f"{what} {k}: {len(later)} events of later time written before the alert")
    alerted_ids = {a["flow_id"] for _, a in al.values()}
    for f in fl:
        if f["flow_id"] not in alerted_ids:
            c.check(f["flow"]["alerted"] is False and "decision" not in f,
                    f"{what}: {f['src_ip']}:{f.get('src_port')} -> {f['dest_ip']}:{f.get('dest_port')} alerted")
    quiet = [f for f in fl if f["dest_ip"] in ("10.20.1.10", "10.20.2.80") or f["src_ip"] == "198.51.100.9"]
    c.check(len(quiet) >= 4 and all(f.get("network_direction") == "inbound" for f in quiet),
            f"{what}: inbound and mid-stream flows: {[(f['src_ip'], f.get('network_direction')) for f in quiet]}")
    return al, by_id


# ---- replay ---------------------------------------------------------------------
pcap = os.path.join(tmp, "callouts.pcap")
p = subprocess.run([PKTGEN, "callouts", pcap], capture_output=True, text=True)
c.check(p.returncode == 0, f"pktgen callouts: {p.stderr}")
pk = packets(pcap)
outs = []
for run in range(2):
    out = os.path.join(tmp, f"replay{run}.json")
    p = subprocess.run([BIN, "-r", pcap, "-c", cfg, "--json", out], capture_output=True, text=True)
    c.check(p.returncode == 0 and p.stderr == "", f"replay {run}: rc={p.returncode} {p.stderr!r}")
    with open(out, "rb") as f:
        outs.append(f.read())
c.check(outs[0] == outs[1] and len(outs[0]) > 0, "replay output is byte-identical run after run")
events = [json.loads(line) for line in outs[0].splitlines()]
al, by_id = check_common(events, "replay")


def flow_start(a):
    return min(ts(r["flow"]["start"]) for r in by_id[a["flow_id"]])


def alert_of(k):
    return al.get(k, (None, None))[1]


a = alert_of(("unexpected-destination", "203.0.113.66", 4444))
if a:
    c.check(ts(a["timestamp"]) == flow_start(a), f"shell: alert at its SYN ({a['timestamp']})")
    c.check(max(ts(r["flow"]["end"]) for r in by_id[a["flow_id"]]) - flow_start(a) > 7000,
            "shell: held open two hours")
a = alert_of(("unexpected-destination", "203.0.113.67", 443))
if a:
    second = nth_payload(pk, ("10.20.1.10", 50002), ("203.0.113.67", 443), 2)
    c.check(second is not None and abs(ts(a["timestamp"]) - second) < 1e-6,
            f"shell443: alert at its second packet with payload ({a['timestamp']} vs {second})")
    c.check(ts(a["timestamp"]) - flow_start(a) <= 1.0, "shell443: within 1 s of its SYN")
a = alert_of(("unexpected-destination", "203.0.113.77", 443))
if a:
    hello = nth_payload(pk, ("10.20.1.10", 50003), ("203.0.113.77", 443), 1)
    c.check(hello is not None and abs(ts(a["timestamp"]) - hello) < 1e-6,
            f"tls: alert at the ClientHello ({a['timestamp']} vs {hello})")
    c.check(a.get("dest_name") == "update.evil-cdn.example", f"tls: named {a.get('dest_name')}")
a = alert_of(("unexpected-destination", "198.51.100.53", 53))
if a:
    c.check(ts(a["timestamp"]) == flow_start(a), "beacon: alert at its first datagram")
a = alert_of(("exfiltration", "151.101.1.140", 443))
if a:
    when, _ = crossing(pk, "10.20.1.11")
    c.check(when is not None and abs(ts(a["timestamp"]) - when) < 1e-6,
            f"upload: alert at the crossing packet ({a['timestamp']} vs {when})")
    sent = int(a["alert"]["signature"].split(" sent ")[1].split(" ")[0])
    c.check(THRESHOLD < sent <= THRESHOLD + 1600, f"upload: {sent} bytes counted at the alert")
    c.check(when - flow_start(a) > 300, "upload: crosses minutes into the flow")

# ---- live ---------------------------------------------------------------------------
if os.geteuid() != 0:
    sys.exit("FAIL: test_decide needs root for its live part (network namespaces)")
short = os.path.join(tmp, "callouts-short.pcap")
p = subprocess.run([PKTGEN, "callouts-short", short], capture_output=True, text=True)
c.check(p.returncode == 0, f"pktgen callouts-short: {p.stderr}")
srv = RedisServer()
srv.start()
live_cfg = write_file(tmp, "callouts-live.yaml", POLICY + f"""redis:
  url: "{srv.unix_url}"
  batch_records: 100000
  flush_ms: 60000
""")
ns = livehelp.Netns()
try:
    lv = livehelp.Live(ns, tmp, "live", ["--allow-root", "-c", live_cfg])
    sender = subprocess.Popen(ns.ex + ["tcpreplay", "-q", "-i", "tx0", short],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # The shells, the TLS session and the beacon start within 3 s and last
    # about 30 s: their alerts must be in the file long before they end.
    time.sleep(8)
    try:
        early = lv.events()
    except (OSError, ValueError):
        early = []
    early_alerts = {(e["alert"]["category"], e["dest_ip"], e.get("dest_port"))
                    for e in early if e["event_type"] == "alert"}
    still_open = sender.poll() is None
    c.check(still_open, "live: the replay is still running when the file is read")
    for k in [k for k, by in WANT.items() if by != "volume"]:
        c.check(k in early_alerts, f"live: {k} alerted while the flow is open (after 8 s): {sorted(early_alerts)}")
    c.check(not any(e["event_type"] == "flow" and e["dest_ip"] == "203.0.113.66" for e in early),
            "live: the shell's flow record is not written yet")
    streamed = set()
    for _, f in srv.client().xrange_all("egress:alerts"):
        f = {k.decode(): v.decode() for k, v in f.items()}
        streamed.add((f.get("category"), f.get("dest_ip"), int(f.get("dest_port") or 0)))
    for k in [k for k, by in WANT.items() if by != "volume"]:
        c.check(k in streamed, f"live: {k} in the Redis alert stream while the flow is open: {sorted(streamed)}")
    sender.wait(timeout=120)
    time.sleep(1)
    rc = lv.stop()
    c.check(rc == 0, f"live: exit {rc}: {lv.err()!r}")
    events = lv.events()
    lal, lby = check_common(events, "live")
    for k, (i, a) in lal.items():
        start = min(ts(r["flow"]["start"]) for r in lby[a["flow_id"]])
        if WANT[k] != "volume":
            c.check(ts(a["timestamp"]) - start <= 1.0,
                    f"live {k}: alert {ts(a['timestamp']) - start:.3f} s after the first packet")
finally:
    ns.close()
    srv.destroy()

c.done()
