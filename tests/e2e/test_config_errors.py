#!/usr/bin/env python3
"""Malformed configurations, table-driven (docs/configuration.md#errors):
each one gives exactly one line on stderr naming the file and the reason,
and exit status 2, both with --check-config and when a replay is started
with it; nothing is written to the output. Hostile shapes (100k nested
'[', 50k nested maps, an alias fan-out, too many anchors, a file over the
size limit) fail with their own message, not a timeout.

Takes about 3 s."""
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import egrtest  # noqa: E402

C = egrtest.Checker("test_config_errors")
TMP = egrtest.temp_dir("egressd-cfgerr-")

# A one-packet capture, for the runs.
PCAP = os.path.join(TMP, "one.pcap")
with open(PCAP, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, 17, 0, bytes([10, 0, 0, 1]),
                     bytes([192, 0, 2, 9]))
    frame = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + struct.pack("!HHHH", 4000, 53, 8, 0)
    f.write(struct.pack("<IIII", 1700000000, 0, len(frame), len(frame)) + frame)

ROLE = "home_net: [10.0.0.0/8]\nroles:\n  web:\n    allow:\n"
aliases = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
for i in range(1, 8):
    aliases.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
FANOUT = ROLE + "      - ndpi: &big\n" + "".join(
    f"        - &l{i} [" + ", ".join([f"*l{i - 1}" if i else "DNS"] * 10) + "]\n" for i in range(7))

CASES = [
    # name, text (or a callable writing the file), what the line must say
    ("ndpi-unknown", ROLE + "      - ndpi: [TLS, Googel]\n",
     ['5:21: roles.web.allow[0].ndpi[1]: "Googel" is not a protocol of nDPI']),
    ("ndpi-unknown-pair", ROLE + "      - ndpi: [TLS.NoSuchApp]\n",
     ['roles.web.allow[0].ndpi[0]: "TLS.NoSuchApp" is not a protocol']),
    ("redis-url-scheme", "redis:\n  url: http://127.0.0.1:6379\n", [":2:8: redis.url:"]),
    ("redis-url-port", "redis:\n  url: redis://127.0.0.1:99999\n", [":2:8: redis.url:"]),
    ("redis-spool-small", "redis:\n  url: redis://127.0.0.1:1\n  spool_max_bytes: 100\n",
     [":3:20: redis.spool_max_bytes: 100 is below 4096"]),
    ("redis-prefix-empty", "redis:\n  url: redis://127.0.0.1:1\n  prefix: ''\n",
     ["redis.prefix: must not be empty"]),
    ("redis-unix-seeds", "redis:\n  url: unix:///tmp/x.sock\n  seeds: [10.0.0.1:6379]\n",
     ["redis.seeds: a unix:// redis.url takes no seeds"]),
    ("intel-missing", "intel:\n  - name: bad\n    type: ip\n    file: /nonexistent/list.txt\n",
     ["/nonexistent/list.txt", "intel list 'bad'"]),
    ("geoip-missing", "geoip:\n  country_db: /nonexistent/country.mmdb\n",
     ["/nonexistent/country.mmdb: cannot open MaxMind database"]),
    ("pdns-ttl", "passive_dns:\n  min_ttl: 2h\n  max_ttl: 1h\n",
     ["passive_dns.min_ttl: 7200 s is above passive_dns.max_ttl (3600 s)"]),
    ("unknown-key", "flow:\n  max_flow: 10\n", [":2:3: flow.max_flow: unknown key"]),
    ("deep-seq", "a: " + "[" * 100000 + "]" * 100000 + "\n",
     [":1:67: nested deeper than 64 levels"]),
    ("deep-map", "a: " + "{a: " * 50000 + "1" + "}" * 50000 + "\n", ["nested deeper than 64 levels"]),
    ("deep-block", "".join("  " * i + "k:\n" for i in range(80)), ["nested deeper than 64 levels"]),
    ("alias-fanout", FANOUT, ["aliases stand for more than 250000 nodes"]),
    ("anchors", "x: [" + ", ".join(f"&a{i} 1" for i in range(5000)) + "]\n", ["more than 4096 anchors"]),
    ("too-large", lambda f: f.write(b"# x\n" * (4400000)), ["larger than 16777216 bytes"]),
]


def one_line(err):
    lines = [x for x in err.splitlines() if x.strip()]
    return lines[0] if len(lines) == 1 else None


for name, text, want in CASES:
    path = os.path.join(TMP, name + ".yaml")
    with open(path, "wb") as f:
        if callable(text):
            text(f)
        else:
            f.write(text.encode())
    for how, args in (("--check-config", ["-c", path, "--check-config"]),
                      ("a replay", ["-c", path, "-r", PCAP, "--json", os.path.join(TMP, "out.json")])):
        out = os.path.join(TMP, "out.json")
        if os.path.exists(out):
            os.unlink(out)
        try:
            rc, stdout, err = egrtest.run(args, timeout=30)
        except subprocess.TimeoutExpired:
            C.check(False, f"{name}: {how}: still running after 30 s")
            continue
        line = one_line(err)
        C.check(rc == 2, f"{name}: {how}: exit {rc} (want 2): {err[-300:]!r}")
        C.check(line is not None and path in line and all(w in line for w in want),
                f"{name}: {how}: stderr {err[-400:]!r} (want one line with {path} and {want})")
        if how == "a replay":
            C.check(not os.path.exists(out) or os.path.getsize(out) == 0,
                    f"{name}: a replay wrote output before refusing its configuration")

# And a good configuration with the same kinds of value passes both ways.
good = os.path.join(TMP, "good.yaml")
with open(good, "w") as f:
    f.write(ROLE + "      - ndpi: [TLS, google, TLS.YouTube, DNS]\n"
            "redis:\n  spool_max_bytes: 0\npassive_dns:\n  min_ttl: 1h\n  max_ttl: 1h\n"
            )
rc, out, err = egrtest.run(["-c", good, "--check-config"])
C.check(rc == 0 and b"configuration OK" in out, f"good: --check-config {rc} {err!r}")
rc, out, err = egrtest.run(["-c", good, "-r", PCAP, "--json", os.path.join(TMP, "good.json")])
C.check(rc == 0, f"good: a replay exit {rc} {err!r}")

C.done()
