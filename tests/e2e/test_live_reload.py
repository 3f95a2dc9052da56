#!/usr/bin/env python3
"""Live reloads under load (docs/configuration.md#reloading): egressd -i in
a network namespace with 2 workers, tcpreplay sending the demo capture
(egressd-pktgen demo) in a loop at a steady rate, and a SIGHUP every
0.25 s meanwhile, each reload building a 2-million-entry intel list. At
the end the stats event counts every packet sent, with 0 kernel drops and
0 interface drops: no packet is lost to the reloads. A run without the
reloads gives the baseline the numbers are printed beside.

Needs root (network namespaces); fails, not skips, without it. Takes about
25 s."""
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import egrtest  # noqa: E402
import livehelp  # noqa: E402
from livehelp import Netns, sh  # noqa: E402

if os.geteuid() != 0:
    sys.exit("FAIL: test_live_reload needs root (it creates network namespaces and veth pairs)")

c = egrtest.Checker("test_live_reload")
tmp = egrtest.temp_dir("egressd-livereload-")
demo = os.path.join(tmp, "demo.pcap")
p = subprocess.run([egrtest.PKTGEN, "demo", demo], capture_output=True)
c.check(p.returncode == 0, f"pktgen demo: {p.stderr!r}")

with open(os.path.join(egrtest.SRC, "sensors", "demo.yaml")) as f:
    demo_yaml = f.read()
os.makedirs(os.path.join(tmp, "intel"))
shutil.copy(os.path.join(egrtest.SRC, "sensors", "intel", "demo-domains.txt"), os.path.join(tmp, "intel"))
big = os.path.join(tmp, "intel", "big.txt")
with open(big, "w") as f:
    f.writelines(f"h{i}.example{i % 1000}.com\n" for i in range(2000000))
cfg = os.path.join(tmp, "egressd.yaml")
with open(cfg, "w") as f:
    f.write(demo_yaml.replace("    file: intel/demo-domains.txt\n    severity: high\n",
                              "    file: intel/demo-domains.txt\n    severity: high\n"
                              f"  - name: big\n    type: domain\n    file: {big}\n    severity: low\n"))

PPS, LOOPS = "4000", "40"


def run(name, reloads):
    ns = Netns()
    try:
        lv = livehelp.Live(ns, tmp, name, extra=["-c", cfg, "--workers", "2", "--allow-root"])
        stop = threading.Event()
        hups = [0]

        def hupper():
            while not stop.is_set():
                lv.p.send_signal(signal.SIGHUP)
                hups[0] += 1
                stop.wait(0.25)

        t = threading.Thread(target=hupper)
        if reloads:
            t.start()
        p = sh(*ns.ex, "tcpreplay", "-q", "--pps", PPS, "--loop", LOOPS, "-i", "tx0", demo)
        stop.set()
        if reloads:
            t.join()
        m = re.search(r"Actual: (\d+) packets", p.stdout)
        sent = int(m.group(1)) if m else -1
        time.sleep(1.0)  # the last blocks reach the workers (read timeout)
        rc = lv.stop()
        ev = lv.events()
        stats = [e["stats"]["capture"] for e in ev if e.get("event_type") == "stats"]
        err = lv.err()
        return rc, sent, stats[-1] if stats else {}, err, hups[0]
    finally:
        ns.close()


rc0, sent0, st0, err0, _ = run("plain", False)
rc, sent, st, err, hups = run("reloads", True)
done = err.count("reloaded")
print(f"without reloads: sent {sent0}, captured {st0.get('packets')}, kernel drops "
      f"{st0.get('kernel_drops')}, ifdrops {st0.get('kernel_ifdrops')}")
print(f"with {hups} SIGHUPs ({done} reloads done): sent {sent}, captured {st.get('packets')}, "
      f"kernel drops {st.get('kernel_drops')}, ifdrops {st.get('kernel_ifdrops')}")
c.check(rc0 == 0 and rc == 0, f"exit {rc0} / {rc}: {err[-500:]!r}")
c.check(sent > 10000, f"tcpreplay sent {sent} packets")
c.check(hups >= 20 and done >= 1, f"{hups} SIGHUPs, {done} reloads done (want SIGHUPs all along the load)")
c.check("reload failed" not in err, f"a reload failed: {err[-500:]!r}")
c.check(st.get("packets") == sent and st.get("kernel_drops") == 0 and st.get("kernel_ifdrops") == 0,
        f"with reloads: sent {sent}, stats {st} (want every packet, 0 drops)")
c.check(st0.get("packets") == sent0 and st0.get("kernel_drops") == 0,
        f"without reloads: sent {sent0}, stats {st0}")
c.done()
