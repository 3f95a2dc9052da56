"""Every configuration shipped in sensors/ passes --check-config (intel
lists included), and a mistake in any of them is reported as one line
naming file:line:column, with exit status 2."""
import glob
import os
import shutil
import tempfile

from egrtest import SRC, Checker, run

c = Checker("test_profiles")
profiles = sorted(glob.glob(os.path.join(SRC, "sensors", "*.yaml")))
names = {os.path.basename(p) for p in profiles}
want = {"replay.yaml", "demo.yaml", "span-datacenter.yaml", "edge-sidecar.yaml", "forensic.yaml",
        "cisco-firepower.yaml", "zscaler-connector.yaml", "monitoring-server.yaml",
        "saas-integrations.yaml"}
c.check(want <= names, f"sensors/: missing profiles {sorted(want - names)}")

tmp = tempfile.mkdtemp()
shutil.copytree(os.path.join(SRC, "sensors", "intel"), os.path.join(tmp, "intel"))
for path in profiles:
    name = os.path.basename(path)
    rc, out, err = run(["-c", path, "--check-config"])
    c.check(rc == 0 and out.decode().strip() == f"{path}: configuration OK" and err == "",
            f"{name}: --check-config rc={rc} out={out!r} err={err!r}")

    # The same file with one mistake: the first `mode:` (or the first key)
    # gets a value no key accepts.
    with open(path) as f:
        lines = f.read().split("\n")
    idx = next((i for i, l in enumerate(lines) if l.strip().startswith("mode:")), None)
    if idx is None:
        idx = next(i for i, l in enumerate(lines) if l and not l.startswith("#") and ":" in l)
        col = 1
        lines.insert(idx, "no_such_key: 1")
    else:
        col = lines[idx].index("mode:") + len("mode: ") + 1
        lines[idx] = lines[idx][:col - 1] + "sometimes"
    bad = os.path.join(tmp, name)
    with open(bad, "w") as f:
        f.write("\n".join(lines))
    rc, out, err = run(["-c", bad, "--check-config"])
    c.check(rc == 2 and err.startswith(f"egressd: {bad}:{idx + 1}:{col}: ") and err.count("\n") == 1,
            f"{name} broken at line {idx + 1} col {col}: rc={rc} err={err!r}")

shutil.rmtree(tmp, ignore_errors=True)
c.done()
