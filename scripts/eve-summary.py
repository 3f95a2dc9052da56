#!/usr/bin/env python3
"""Prints a readable table of an egressd EVE JSON file: one row per flow
record, then one per alert, then the run's stats. Usage: eve-summary.py EVE.json"""
import json
import sys


def name_of(ev, dns):
    if ev.get("dest_name"):
        return ev["dest_name"]
    if ev.get("flow_id") in dns:
        return dns[ev["flow_id"]]
    for sect, key in (("tls", "sni"), ("quic", "sni"), ("http", "hostname")):
        v = ev.get(sect, {}).get(key)
        if v:
            return v
    return ""


def geo_of(ev):
    g = ev.get("geo", {})
    parts = [g.get("country", ""), f"AS{g['asn']}" if "asn" in g else ""]
    return " ".join(p for p in parts if p)


def clip(s, n):
    s = "".join(c if c.isprintable() else "?" for c in str(s))
    return s if len(s) <= n else s[: n - 1] + "~"


def endpoint(ip, port):
    if port is None:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: eve-summary.py EVE.json")
    flows, alerts, stats, dns = [], [], None, {}
    with open(sys.argv[1], encoding="utf-8") as f:
        for line in f:
            ev = json.loads(line)
            if ev.get("event_type") == "flow":
                flows.append(ev)
            elif ev.get("event_type") == "alert":
                alerts.append(ev)
            elif ev.get("event_type") == "stats":
                stats = ev["stats"]
            elif ev.get("event_type") == "dns":
                dns.setdefault(ev["flow_id"], ev["dns"]["rrname"])  # the query's name
    fmt = "{:<26} {:<26} {:<5} {:<18} {:<30} {:<10} {:>9} {:>9}  {}"
    print(fmt.format("client", "server", "proto", "ndpi", "name", "geo", "bytes>", "bytes<", "end"))
    for ev in flows:
        fl = ev["flow"]
        print(fmt.format(
            clip(endpoint(ev["src_ip"], ev.get("src_port")), 26),
            clip(endpoint(ev["dest_ip"], ev.get("dest_port")), 26),
            clip(ev["proto"], 5), clip(ev.get("ndpi", {}).get("proto", ""), 18),
            clip(name_of(ev, dns), 30), geo_of(ev), fl["bytes_toserver"], fl["bytes_toclient"], fl["reason"]))
    if alerts:
        afmt = "{:<8} {:<15} {:<26} {:<26} {:<30} {:<10} {:>5}  {}"
        print("\nALERTS")
        print(afmt.format("severity", "asset", "client", "server", "name", "geo", "count", "why"))
        for ev in alerts:
            a = ev["alert"]
            asset = ev.get("asset", {}).get("name", "")
            print(afmt.format(
                a["severity_name"], clip(asset, 15),
                clip(endpoint(ev["src_ip"], ev.get("src_port")), 26),
                clip(endpoint(ev["dest_ip"], ev.get("dest_port")), 26),
                clip(name_of(ev, dns), 30), geo_of(ev), a["count"],
                clip(f"{a['category']}: {a['signature']}", 90)))
    if stats:
        cap, fl = stats["capture"], stats["flow"]
        print(f"\n{len(flows)} flow records, {len(alerts)} alerts; {cap['packets']} packets, "
              f"{cap['bytes']} bytes read; {fl['created']} flows tracked")


if __name__ == "__main__":
    main()
