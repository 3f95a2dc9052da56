#!/usr/bin/env python3
"""Packet times that are unusual but valid, from small pcaps made here
(docs/decoding.md#timestamps):

  y2038      classic-pcap seconds are unsigned 32-bit: 0x80000001 is
             2038-01-19T03:14:09Z and 0xF0000000 2097-08-05T09:04:00Z, not 1970
             (libpcap hands them over negative)
  backwards  packets stamped before the newest one already seen are counted
             in the stats event (capture.time_backwards) and still
             processed; a capture in order counts none

Takes under a second."""
import datetime
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import egrtest  # noqa: E402

C = egrtest.Checker("test_timestamps")
TMP = egrtest.temp_dir("egressd-ts-")


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def write_pcap(name, secs):
    """One UDP packet (its own flow: a distinct source port) per entry of
    secs, with that ts_sec written as the unsigned 32 bits of the format."""
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for i, sec in enumerate(secs):
            payload = b"x" * 16
            udp_len = 8 + len(payload)
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, i, 0, 64, 17, 0,
                             bytes([10, 0, 0, 1]), bytes([192, 0, 2, 9]))
            ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
            udp = struct.pack("!HHHH", 40000 + i, 9999, udp_len, 0) + payload
            frame = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + udp
            f.write(struct.pack("<IIII", sec, 250000, len(frame), len(frame)))
            f.write(frame)
    return path


def stamp(sec):
    return datetime.datetime.fromtimestamp(sec, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def run(name, secs):
    rc, events, err = egrtest.replay([write_pcap(name, secs)])
    C.check(rc == 0, f"{name}: exit {rc}: {err[-300:]!r}")
    flows = sorted(egrtest.flows(events), key=lambda e: e["src_port"])
    stats = [e for e in events if e.get("event_type") == "stats"]
    return flows, (stats[-1]["stats"] if stats else {})


# ---- after 2038 -----------------------------------------------------------------
secs = [0x7FFFFFFF, 0x80000001, 0xF0000000]
flows, st = run("y2038.pcap", secs)
C.check(len(flows) == 3, f"y2038: {len(flows)} flow records (want 3)")
for f, sec in zip(flows, secs):
    want = stamp(sec) + ".250000"
    got = f.get("flow", {}).get("start", "")
    C.check(got.startswith(want), f"y2038: ts_sec {sec:#x}: flow.start {got!r} (want {want}...)")
C.check(st.get("capture", {}).get("time_backwards") == 0,
        f"y2038: time_backwards {st.get('capture')} (want 0: the times only go forward)")
ts = [f.get("timestamp", "") for f in flows]
C.check(all(not t.startswith("1970") for t in ts), f"y2038: a record stamped 1970: {ts}")

# ---- time going backwards -------------------------------------------------------------
secs = [1700000000, 1700000010, 1700000005, 1700000020, 1700000001, 1700000020]
flows, st = run("backwards.pcap", secs)
cap = st.get("capture", {})
C.check(cap.get("time_backwards") == 2, f"backwards: capture {cap} (want time_backwards 2)")
C.check(len(flows) == 6 and cap.get("packets") == 6,
        f"backwards: {len(flows)} flow records, {cap.get('packets')} packets (want 6: all processed)")
flows, st = run("forward.pcap", sorted(secs))
C.check(st.get("capture", {}).get("time_backwards") == 0,
        f"forward: capture {st.get('capture')} (want time_backwards 0)")

C.done()
