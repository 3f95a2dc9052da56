"""Every capture in ../shared/pcaps replays with exit 0, valid JSON lines and
a final stats event; the deliberately broken ones end with the documented
one-line error (exit 1) and still write what came before the fault. Under the
ASan/UBSan build any sanitizer report fails the run (abort_on_error)."""
import os
from concurrent.futures import ThreadPoolExecutor

from egrtest import PCAPS, Checker, flows, need_shared, replay

# Captures that end in an error, with the words the error line must hold
# (docs/ndpi-agreement.md, "Broken captures").
EXPECTED_ERRORS = {
    "fuzz-2021-10-13.pcap": "truncated dump file",
}

need_shared("pcaps")
files = sorted(f for f in os.listdir(PCAPS) if f.endswith((".pcap", ".pcapng")))
c = Checker("test_replay_all_pcaps")
c.check(len(files) >= 190, f"only {len(files)} captures found in {PCAPS}")


def one(name):
    return name, replay([os.path.join(PCAPS, name)], timeout=900)


with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
    results = list(pool.map(one, files))

total_flows = 0
for name, (rc, events, err) in results:
    path = os.path.join(PCAPS, name)
    if "Sanitizer" in err or "runtime error" in err:
        c.check(False, f"{name}: sanitizer report:\n{err[:3000]}")
        continue
    want = EXPECTED_ERRORS.get(name)
    if want:
        c.check(rc == 1, f"{name}: expected exit 1 ({want}), got {rc}")
        c.check(path in err and want in err and err.count("\n") == 1,
                f"{name}: expected one line naming the file and '{want}', got {err!r}")
    else:
        c.check(rc == 0 and err == "", f"{name}: exit {rc}, stderr {err!r}")
    c.check(events and events[-1].get("event_type") == "stats", f"{name}: no final stats event")
    if events:
        st = events[-1]["stats"]
        nflows = len(flows(events))
        total_flows += nflows
        c.check(st["flow"]["created"] >= sum(1 for e in flows(events) if e["flow"]["interim"] is False),
                f"{name}: fewer flows created than final records")
        c.check(st["capture"]["packets"] > 0 or want, f"{name}: no packets read")

print(f"{len(files)} captures, {total_flows} flow records")
c.done()
