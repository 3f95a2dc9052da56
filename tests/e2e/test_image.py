"""The container image's runtime stage, checked without a container engine
(none runs on the test machines): the Dockerfile's `FROM debian:12-slim`
stage is replayed in a Debian 12 root made by debootstrap (minbase):

- its RUN lines run verbatim in a chroot (the package names exist in Debian
  12, the user is made, setcap works and libcap2-bin is purged after);
- its COPY lines copy this build's programs, the installed default GeoIP
  databases, dashboards/ and sensors/ where the Dockerfile puts them;
- then, as USER egressd (setpriv inside the chroot, with the bounding set a
  container would have):
  * both programs start: every library they need is in the image;
  * the binary carries cap_net_raw,cap_net_admin as permitted-only file
    capabilities, and with neither in the bounding set (a container given
    no --cap-add) it still replays a capture, with the image's default
    GeoIP databases and profile;
  * every shipped profile passes --check-config;
  * with the two capabilities (--cap-add NET_RAW --cap-add NET_ADMIN) it
    captures on a veth interface in a network namespace with the compose
    file's arguments, holds no capability once running, the HEALTHCHECK
    command (taken from the Dockerfile) passes against it, and fails once
    it has stopped.

Needs root and Debian's package mirror (debootstrap, apt-get in the chroot).
The base root is kept in the build directory between runs. Registered for
the release build only: the image ships a release build, and a sanitizer
build needs runtime libraries the image does not have.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from egrtest import BIN, SRC, Checker, debian_base, flows, need_shared

if os.geteuid() != 0:
    sys.exit("FAIL: test_image needs root (debootstrap, chroot, network namespaces)")
for tool in ("debootstrap", "tcpreplay", "getcap"):
    if not shutil.which(tool):
        sys.exit(f"FAIL: {tool} is not installed (scripts/deps.sh --test installs it)")

c = Checker("test_image")
BUILD = os.path.dirname(BIN)
DASH = os.path.join(BUILD, "egressd-dashboard")
GEOIP = os.environ.get("EGRESSD_GEOIP_DIR", "/var/lib/egressd/geoip")
PCAP = need_shared("pcaps", "443-curl.pcap")
if not os.path.exists(os.path.join(GEOIP, "asn.mmdb")):
    sys.exit(f"FAIL: no default GeoIP databases in {GEOIP} (scripts/geoip-db.sh installs them)")

with open(os.path.join(SRC, "Dockerfile")) as f:
    dockerfile = f.read()


def instructions(text):
    """(keyword, argument) per instruction, continuation lines joined."""
    out, cur = [], ""
    for line in text.splitlines():
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        cur += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            kw, _, arg = cur.strip().partition(" ")
            out.append((kw.upper(), arg.strip()))
            cur = ""
    return out


stage = []
for kw, arg in instructions(dockerfile):
    if kw == "FROM":
        stage = [] if arg.startswith("debian:12-slim") else None
    elif stage is not None:
        stage.append((kw, arg))
if stage is None or not stage:
    sys.exit("FAIL: Dockerfile: no stage FROM debian:12-slim")


def sh(*args, check=True, **kw):
    p = subprocess.run(list(args), capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)[:200]}: rc={p.returncode} {p.stderr[-1500:]}")
    return p


# ---- the base root (debootstrap, kept between runs) ---------------------------
base = debian_base(BUILD)

tmp = tempfile.mkdtemp(prefix="egressd-image-", dir=BUILD)
root = os.path.join(tmp, "root")
ns = f"egr-img-{os.getpid()}"
mounted = False
proc = redis = None
try:
    sh("cp", "-a", base, root)
    os.remove(os.path.join(root, ".complete"))
    shutil.copy("/etc/resolv.conf", os.path.join(root, "etc", "resolv.conf"))
    sh("mount", "-t", "proc", "proc", os.path.join(root, "proc"))
    mounted = True

    copies = {  # the build stage's paths -> this machine's
        "/build/egressd": BIN, "/build/egressd-dashboard": DASH, "/geoip": GEOIP,
        "dashboards": os.path.join(SRC, "dashboards"), "sensors": os.path.join(SRC, "sensors"),
    }
    user = "root"
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "DEBIAN_FRONTEND": "noninteractive"}
    healthcheck = entrypoint = None
    for kw, arg in stage:
        if kw == "RUN":
            p = sh("chroot", root, "/bin/sh", "-c", arg, check=False, env=env, timeout=900)
            c.check(p.returncode == 0, f"RUN {arg[:60]}...: rc={p.returncode} {p.stderr[-800:]}")
        elif kw == "COPY":
            words = [w for w in arg.split() if not w.startswith("--from=")]
            dest = words[-1]
            for w in words[:-1]:
                src = copies.get(w)
                if not src:
                    c.check(False, f"COPY {w}: no local stand-in for it")
                    continue
                target = os.path.join(root, dest.lstrip("/"))
                if os.path.isdir(src):
                    # A directory's contents go to dest, as COPY does.
                    sh("mkdir", "-p", target)
                    sh("cp", "-a", src + "/.", target)
                else:
                    sh("mkdir", "-p", target)
                    sh("cp", src, target)
        elif kw == "USER":
            user = arg
        elif kw == "HEALTHCHECK":
            healthcheck = json.loads(arg[arg.index("CMD") + 3:].strip())
        elif kw == "ENTRYPOINT":
            entrypoint = json.loads(arg)
    c.check(user == "egressd", f"USER {user}")
    c.check(healthcheck is not None and entrypoint == ["/usr/local/bin/egressd"],
            f"HEALTHCHECK {healthcheck}, ENTRYPOINT {entrypoint}")

    exe = os.path.join(root, "usr/local/bin/egressd")
    caps = sh("getcap", exe, check=False).stdout
    c.check("cap_net_admin,cap_net_raw=p" in caps, f"file capabilities: {caps.strip()!r}")
    c.check(sh("chroot", root, "sh", "-c", "dpkg -s libcap2-bin", check=False).returncode != 0,
            "libcap2-bin is purged after setcap")

    def as_user(bounding, *args):
        return ["chroot", root, "setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups",
                f"--bounding-set={bounding}"] + list(args)

    NO_CAPS = "-all"
    TWO_CAPS = "-all,+net_raw,+net_admin"

    for prog in (["/usr/local/bin/egressd", "--version"], ["/usr/local/bin/egressd-dashboard", "--help"]):
        p = sh(*as_user(NO_CAPS, *prog), check=False, env=env)
        c.check(p.returncode == 0 and "error while loading" not in p.stderr,
                f"{prog[0]} starts in the image: rc={p.returncode} {p.stderr[-300:]!r}")

    # A replay where the container was given no capability at all.
    os.makedirs(os.path.join(root, "data"))
    shutil.copy(PCAP, os.path.join(root, "data", "capture.pcap"))
    os.chmod(os.path.join(root, "data"), 0o1777)
    p = sh(*as_user(NO_CAPS, *entrypoint, "-c", "/etc/egressd/forensic.yaml", "-r", "/data/capture.pcap",
                    "--json", "/data/eve.json"), check=False, env=env)
    events = []
    if os.path.exists(os.path.join(root, "data", "eve.json")):
        with open(os.path.join(root, "data", "eve.json")) as f:
            events = [json.loads(line) for line in f]
    geo = [e["geo"] for e in flows(events) if e.get("geo", {}).get("asn")]
    c.check(p.returncode == 0 and flows(events) and geo,
            f"replay without capabilities: rc={p.returncode} {len(flows(events))} flows, "
            f"{len(geo)} with ASN (default databases): {p.stderr[-300:]!r}")

    profiles = sorted(n for n in os.listdir(os.path.join(root, "etc", "egressd")) if n.endswith(".yaml"))
    for name in profiles:
        p = sh(*as_user(NO_CAPS, *entrypoint, "-c", f"/etc/egressd/{name}", "--check-config"),
               check=False, env=env)
        c.check(p.returncode == 0, f"--check-config /etc/egressd/{name} in the image: {p.stderr.strip()!r}")
    c.check(len(profiles) >= 4, f"profiles in /etc/egressd: {profiles}")

    # Live, as docker run --network host --cap-add NET_RAW --cap-add NET_ADMIN.
    sh("ip", "netns", "add", ns)
    nsx = ["ip", "netns", "exec", ns]
    sh(*nsx, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
    sh("ip", "-n", ns, "link", "add", "tx0", "type", "veth", "peer", "name", "cap0")
    for dev in ("lo", "tx0", "cap0"):
        sh("ip", "-n", ns, "link", "set", dev, "up")
    # The profile writes to Redis on 127.0.0.1:6379, as in docker-compose.yml.
    redis = subprocess.Popen(nsx + ["redis-server", "--port", "6379", "--bind", "127.0.0.1", "--save", "",
                                    "--appendonly", "no", "--dir", tmp],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    errpath = os.path.join(tmp, "live.err")
    errf = open(errpath, "w")
    proc = subprocess.Popen(nsx + as_user(TWO_CAPS, *entrypoint, "-c", "/etc/egressd/edge-sidecar.yaml",
                                          "-i", "cap0", "--metrics", "127.0.0.1:9100",
                                          "--json", "/var/log/egressd/eve.json"),
                            stderr=errf, env=env)

    def err_text():
        with open(errpath) as f:
            return f.read()

    deadline = time.time() + 20
    while time.time() < deadline and "capturing on" not in err_text() and proc.poll() is None:
        time.sleep(0.1)
    c.check("capturing on" in err_text(), f"live in the image: {err_text()!r}")
    pid = sh("pgrep", "-f", "-n", "edge-sidecar.yaml -i cap0", check=False).stdout.strip()
    if pid:
        bad = []
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/status") as f:
                st = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
            bad += [f"{t} {k}" for k in ("CapEff", "CapPrm") if st[k].strip() != "0" * 16]
            bad += [f"{t} Uid {st['Uid'].split()}"] if st["Uid"].split()[0] == "0" else []
        c.check(not bad, f"live in the image: privileges left {bad}")
    else:
        c.check(False, "live in the image: process not found")
    hc = nsx + as_user(NO_CAPS, *healthcheck)
    p = sh(*hc, check=False, env=env)
    c.check(p.returncode == 0, f"HEALTHCHECK while capturing: rc={p.returncode} {p.stderr!r}")
    sh(*nsx, "tcpreplay", "-q", "-i", "tx0", PCAP)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=30)
    errf.close()
    live = []
    if os.path.exists(os.path.join(root, "var/log/egressd/eve.json")):
        with open(os.path.join(root, "var/log/egressd/eve.json")) as f:
            live = [json.loads(line) for line in f]
    c.check(rc == 0 and len(flows(live)) == len(flows(events)),
            f"live in the image: rc={rc}, {len(flows(live))} flows, replay had {len(flows(events))}: "
            f"{err_text()[-300:]!r}")
    xlen = sh(*nsx, "redis-cli", "XLEN", "egress:flows", check=False).stdout.strip()
    c.check(xlen == str(len(flows(live))), f"live in the image: {xlen} flows in Redis, {len(flows(live))} in JSON")
    p = sh(*hc, check=False, env=env)
    c.check(p.returncode != 0, "HEALTHCHECK after egressd stopped: still passes")
finally:
    for p in (proc, redis):
        if p and p.poll() is None:
            p.kill()
            p.wait()
    sh("ip", "netns", "del", ns, check=False)
    if mounted:
        sh("umount", os.path.join(root, "proc"), check=False)
    shutil.rmtree(tmp, ignore_errors=True)

c.done()
