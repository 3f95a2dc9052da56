"""The deployment files: the systemd unit passes `systemd-analyze verify`
without a warning and keeps systemd's own exposure score low (PrivateMounts,
ProcSubset=pid and the rest of the sandbox), the IPAddressDeny/Allow drop-in
its comments suggest for a local Redis verifies and lowers the score
further, its ExecStartPre check passes on the shipped datacenter profile,
and the compose file's services use images, capabilities and files that
exist. (tests/e2e/test_package.py runs the unit's command lines the way
systemd would, ProcSubset=pid included, from the Debian package.)"""
import os
import re
import shutil
import subprocess
import tempfile

import yaml

from egrtest import BIN, SRC, Checker

c = Checker("test_deploy_files")
tmp = tempfile.mkdtemp()
unit_src = os.path.join(SRC, "sensors", "systemd", "egressd@.service")
with open(unit_src) as f:
    unit = f.read()

if not shutil.which("systemd-analyze"):
    c.check(False, "systemd-analyze is not installed (Debian: systemd); the unit cannot be checked")
else:
    # The unit as installed, with the binary where this build has it.
    local = os.path.join(tmp, "egressd@.service")
    with open(local, "w") as f:
        f.write(unit.replace("/usr/local/bin/egressd", BIN))
    p = subprocess.run(["systemd-analyze", "verify", local], capture_output=True, text=True)
    c.check(p.returncode == 0 and p.stderr.strip() == "", f"systemd-analyze verify: rc={p.returncode} {p.stderr!r}")
    p = subprocess.run(["systemd-analyze", "security", "--offline=yes", local], capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", p.stdout + p.stderr)
    exposure = float(m.group(1)) if m else 99.0
    c.check(exposure <= 2.0,
            f"systemd-analyze security: exposure {m and m.group(1)} (want <= 2.0): {(p.stdout + p.stderr)[-300:]!r}")
    for need in ("CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "ExecReload=/bin/kill -HUP $MAINPID", "User=egressd",
                 "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN\n", "PrivateMounts=yes\n", "ProcSubset=pid\n"):
        c.check(need in unit, f"unit: {need!r} missing")

    # The IP access drop-in the unit's comments give, as a user writes it.
    lines = unit.splitlines()
    at = next((i for i, line in enumerate(lines) if "egressd@.service.d/ip.conf" in line), None)
    dropin = []
    for line in lines[at + 1:] if at is not None else []:
        if not line.startswith("#   "):
            break
        dropin.append(line[4:])
    c.check(dropin[:3] == ["[Service]", "IPAddressDeny=any", "IPAddressAllow=localhost"],
            f"unit: no IPAddressDeny/IPAddressAllow drop-in in its comments: {dropin}")
    os.makedirs(local + ".d")
    with open(os.path.join(local + ".d", "ip.conf"), "w") as f:
        f.write("\n".join(dropin[:3]) + "\n")
    p = subprocess.run(["systemd-analyze", "verify", local], capture_output=True, text=True)
    c.check(p.returncode == 0 and p.stderr.strip() == "", f"verify with the ip.conf drop-in: {p.stderr!r}")
    p = subprocess.run(["systemd-analyze", "security", "--offline=yes", local], capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", p.stdout + p.stderr)
    ip_line = next((x for x in p.stdout.splitlines() if "IPAddressDeny=" in x), "")
    c.check(m is not None and float(m.group(1)) < exposure and "only localhost" in ip_line,
            f"with the drop-in: exposure {m and m.group(1)} (without {exposure}), {ip_line.strip()!r}")

    # The dashboard's unit: no capability, a user of its own, lower exposure.
    dash_src = os.path.join(SRC, "sensors", "systemd", "egressd-dashboard.service")
    with open(dash_src) as f:
        dunit = f.read()
    dlocal = os.path.join(tmp, "egressd-dashboard.service")
    with open(dlocal, "w") as f:
        f.write(dunit.replace("/usr/local/bin/egressd-dashboard", os.path.join(os.path.dirname(BIN),
                                                                              "egressd-dashboard")))
    p = subprocess.run(["systemd-analyze", "verify", dlocal], capture_output=True, text=True)
    c.check(p.returncode == 0 and p.stderr.strip() == "", f"dashboard unit verify: {p.stderr!r}")
    p = subprocess.run(["systemd-analyze", "security", "--offline=yes", dlocal], capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", p.stdout + p.stderr)
    c.check(m is not None and float(m.group(1)) <= 1.5, f"dashboard unit exposure {m and m.group(1)} (want <= 1.5)")
    for need in ("DynamicUser=yes", "CapabilityBoundingSet=\n", "NoNewPrivileges=yes", "ProcSubset=pid",
                 "SystemCallFilter=@system-service", "ProtectSystem=strict", "MemoryDenyWriteExecute=yes"):
        c.check(need in dunit, f"dashboard unit: {need!r} missing")
    # The descriptor limit the connection cap is taken from: one value, soft
    # = hard, and room for clients beyond the 48 the dashboard keeps.
    m = re.search(r"^LimitNOFILE=(\d+)$", dunit, re.M)
    c.check(m is not None and int(m.group(1)) >= 1024,
            f"dashboard unit: LimitNOFILE= (one number, >= 1024) {m and m.group(0)!r}")

# ExecStartPre, run as written against the datacenter profile.
pre = re.search(r"^ExecStartPre=(.*)$", unit, re.M).group(1).split()
pre = [BIN if a == "/usr/local/bin/egressd" else a for a in pre]
pre = [os.path.join(SRC, "sensors", "span-datacenter.yaml") if a == "/etc/egressd/egressd.yaml" else a for a in pre]
p = subprocess.run(pre, capture_output=True, text=True)
c.check(p.returncode == 0 and "configuration OK" in p.stdout, f"ExecStartPre: {p.returncode} {p.stderr!r}")

# The compose file: parses, every service has an image, the sensor has only
# the two capabilities it needs, and its configuration file exists.
with open(os.path.join(SRC, "docker-compose.yml")) as f:
    compose = yaml.safe_load(f)
svc = compose.get("services", {})
c.check({"redis", "egressd", "dashboard"} <= set(svc), f"compose services: {sorted(svc)}")
e = svc.get("egressd", {})
c.check(e.get("cap_drop") == ["ALL"] and sorted(e.get("cap_add", [])) == ["NET_ADMIN", "NET_RAW"],
        f"compose: egressd capabilities {e.get('cap_drop')} {e.get('cap_add')}")
cmd = e.get("command", [])
cfg = cmd[cmd.index("-c") + 1] if "-c" in cmd else ""
c.check(cfg.startswith("/etc/egressd/") and os.path.exists(os.path.join(SRC, "sensors", cfg[len("/etc/egressd/"):])),
        f"compose: egressd config {cfg!r} is not a shipped profile")
c.check(svc.get("dashboard", {}).get("cap_drop") == ["ALL"] and not svc.get("dashboard", {}).get("cap_add"),
        "compose: the dashboard needs no capability")

with open(os.path.join(SRC, "Dockerfile")) as f:
    dockerfile = f.read()
c.check(re.search(r"^USER egressd$", dockerfile, re.M) is not None, "Dockerfile: runs as egressd")
c.check("HEALTHCHECK" in dockerfile and "/healthz" in dockerfile, "Dockerfile: HEALTHCHECK on /healthz")
c.check("scripts/deps.sh" in dockerfile, "Dockerfile: installs with scripts/deps.sh")

# The runtime stage installs a package for every shared library the two
# programs load directly (the image is never built here: no container
# daemon in the test environment). The packages are found through dpkg on
# this machine, which builds the same programs from the same Debian release.
m = re.search(r"^FROM debian:12-slim\n(.*?)^COPY", dockerfile, re.M | re.S)
runtime = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", m.group(1))) if m else set()
for prog in (BIN, os.path.join(os.path.dirname(BIN), "egressd-dashboard")):
    if not os.access(prog, os.X_OK):
        c.check(False, f"{prog} not built")
        continue
    needed = re.findall(r"Shared library: \[(.*?)\]", subprocess.run(["readelf", "-d", prog],
                        capture_output=True, text=True).stdout)
    paths = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(["ldd", prog], capture_output=True,
                                                                 text=True).stdout, re.M))
    for so in needed:
        if so.startswith(("libasan", "libubsan", "libtsan")):
            continue  # a sanitizer build's runtime, not the image's
        path, pkg = paths.get(so, ""), None
        for cand in (path, os.path.realpath(path), path.removeprefix("/usr")):
            p = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True) if cand else None
            if p and p.returncode == 0:
                pkg = p.stdout.split(":")[0]
                break
        c.check(pkg is not None and (pkg in runtime or pkg in ("libc6", "libgcc-s1", "libstdc++6")),
                f"Dockerfile runtime stage: {os.path.basename(prog)} needs {so} ({pkg}), not installed")

shutil.rmtree(tmp, ignore_errors=True)
c.done()
