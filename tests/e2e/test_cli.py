"""Command line behaviour: help/version, exit codes, one clear error line per
bad input (missing file, not a capture, unsupported link type, truncated
capture) with everything before the fault still written, stdin input,
several inputs in order, and byte-identical output for the same input."""
import os
import struct
import subprocess

from egrtest import BIN, PKTGEN, Checker, flows, need_shared, replay, run, temp_dir

c = Checker("test_cli")
tmp = temp_dir()

rc, out, err = run(["--help"])
c.check(rc == 0 and b"-r FILE" in out, f"--help: rc={rc}")
rc, out, err = run(["--version"])
c.check(rc == 0 and b"nDPI 4.2" in out and b"libpcap" in out, f"--version: rc={rc} out={out!r}")
rc, out, err = run([])
c.check(rc == 2 and "-r FILE" in err, f"no input: rc={rc} err={err!r}")
rc, out, err = run(["--bogus"])
c.check(rc == 2, f"unknown option: rc={rc}")
rc, out, err = run(["stray.pcap"])
c.check(rc == 2 and "stray.pcap" in err, f"positional arg: rc={rc} err={err!r}")

# Missing file: exit 1, one line naming the file.
rc, out, err = run(["-r", "/nonexistent/x.pcap", "--json", os.path.join(tmp, "m.json")])
c.check(rc == 1 and "/nonexistent/x.pcap" in err and err.count("\n") == 1, f"missing file: rc={rc} err={err!r}")

# Not a capture.
notcap = os.path.join(tmp, "notcap.pcap")
with open(notcap, "w") as f:
    f.write("this is not a capture file\n" * 10)
rc, events, err = replay([notcap])
c.check(rc == 1 and notcap in err and err.count("\n") == 1, f"not a capture: rc={rc} err={err!r}")
c.check(events and events[-1].get("event_type") == "stats" and events[-1]["stats"]["capture"]["input_errors"] == 1,
        "not a capture: stats event with input_errors=1 still written")

# Unsupported link type (DLT_USER0 = 147).
odd = os.path.join(tmp, "user0.pcap")
with open(odd, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 147))
    f.write(struct.pack("<IIII", 1700000000, 0, 4, 4) + b"\x00\x01\x02\x03")
rc, events, err = replay([odd])
c.check(rc == 1 and "unsupported link type 147" in err and odd in err, f"link type: rc={rc} err={err!r}")

# Demo capture from the project's own writer.
demo = os.path.join(tmp, "demo.pcap")
p = subprocess.run([PKTGEN, "demo", demo], capture_output=True)
c.check(p.returncode == 0 and os.path.getsize(demo) > 1000, f"pktgen demo: rc={p.returncode} {p.stderr!r}")

rc, events, err = replay([demo])
full = flows(events)
c.check(rc == 0 and err == "" and len(full) >= 10, f"demo replay: rc={rc} flows={len(full)} err={err!r}")
c.check(events[-1].get("event_type") == "stats", "demo: last event is stats")

# Truncated capture: cut in the middle of a late packet record.
data = open(demo, "rb").read()
trunc = os.path.join(tmp, "trunc.pcap")
with open(trunc, "wb") as f:
    f.write(data[: len(data) * 3 // 4])
rc, tevents, err = replay([trunc])
tflows = flows(tevents)
c.check(rc == 1 and trunc in err and "truncated" in err and err.count("\n") == 1,
        f"truncated: rc={rc} err={err!r}")
c.check(0 < len(tflows) <= len(full), f"truncated: {len(tflows)} flows written before the fault")
c.check(tevents and tevents[-1].get("event_type") == "stats", "truncated: stats event written")

# Same input twice: byte-identical output.
o1, o2 = os.path.join(tmp, "o1.json"), os.path.join(tmp, "o2.json")
run(["-r", demo, "--json", o1])
run(["-r", demo, "--json", o2])
c.check(open(o1, "rb").read() == open(o2, "rb").read(), "replay is not deterministic")

# stdin gives the same records as the file; JSON to stdout by default.
rc, out, err = run(["-r", "-"], stdin=data)
c.check(rc == 0 and out == open(o1, "rb").read(), f"stdin replay differs (rc={rc})")

# Several inputs are read as one stream, in order, with one stats event.
rc, events2, err = replay([demo, need_shared("pcaps", "dns_doh.pcap")])
c.check(rc == 0, f"two inputs: rc={rc} err={err!r}")
c.check(events2[-1]["stats"]["capture"]["inputs"] == 2, "two inputs counted")
c.check(len([e for e in events2 if e.get("event_type") == "stats"]) == 1, "one stats event for the run")

# A bad config is a usage error with file:line:column.
bad = os.path.join(tmp, "bad.yaml")
with open(bad, "w") as f:
    f.write("flow:\n  timeouts:\n    udp: abc\n")
rc, out, err = run(["-c", bad, "--check-config"])
c.check(rc == 2 and f"{bad}:3:" in err, f"bad config: rc={rc} err={err!r}")
rc, out, err = run(["-c", bad, "-r", demo])
c.check(rc == 2 and f"{bad}:3:" in err, f"bad config on replay: rc={rc} err={err!r}")

# An unwritable output path: one line, exit 1.
rc, out, err = run(["-r", demo, "--json", "/nonexistent-dir/eve.json"])
c.check(rc == 1 and "/nonexistent-dir/eve.json" in err, f"bad output path: rc={rc} err={err!r}")

# Output to a full device: the write error is reported, not lost.
if os.path.exists("/dev/full"):
    rc, out, err = run(["-r", demo, "--json", "/dev/full"])
    c.check(rc == 1 and "/dev/full" in err, f"/dev/full: rc={rc} err={err!r}")

# Live-capture option values out of range: one line naming the option and
# the value, exit 2, before anything is opened.
for args, name in ((["-s", "63"], "-s"), (["-s", "1x"], "-s"), (["-B", "0"], "-B"),
                   (["-B", "4097"], "-B"), (["--workers", "0"], "--workers"),
                   (["--workers", "65"], "--workers"), (["--stats-interval", "-1"], "--stats-interval"),
                   (["--stats-interval", ""], "--stats-interval")):
    rc, out, err = run(["-i", "lo"] + args)
    c.check(rc == 2 and err.startswith(f"egressd: {name} wants") and f"not '{args[1]}'" in err
            and err.count("\n") == 1, f"{args}: rc={rc} err={err!r}")
rc, out, err = run(["-i", "lo", "--allow-root", "--log", "/nonexistent-dir/egressd.log"])
c.check(rc == 2 and "--log /nonexistent-dir/egressd.log" in out.decode(), f"bad --log: rc={rc} out={out!r}")

c.done()
