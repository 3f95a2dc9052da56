"""`cmake --install` and the Debian package, on a clean Debian 12 root:

- `DESTDIR=... cmake --install` of this build lays out the programs, the
  dashboard's page, the profiles and intel lists, both systemd units
  (written with this prefix's paths), the logrotate file, the GeoIP
  scripts and the documentation;
- a build configured for /usr (build/pkg), packaged by `cpack -G DEB`,
  installs with `apt-get install ./egressd_*.deb` in a debootstrap'ed
  Debian 12 (minbase) root: its dependencies come from Debian, the package's
  files are where dpkg says, the egressd user and its directories exist,
  the profiles are conffiles;
- the installed units pass `systemd-analyze verify`, every program they
  run (/bin/kill of ExecReload included) installed in the root;
- systemd does not run in a chroot, so the unit's ExecStartPre and
  ExecStart are run the way systemd runs them, read from the installed
  unit: EnvironmentFile, %i, $EGRESSD_OPTS split into words, User/Group,
  the bounding set and ambient capabilities, NoNewPrivileges, UMask,
  LogsDirectory/StateDirectory owned by the user, ProtectSystem=strict
  (the root read-only but those), PrivateTmp, and /proc mounted as
  ProcSubset=pid + ProtectProc=invisible; the sensor captures on a veth
  interface in a network namespace, passes /healthz, holds no capability,
  writes its flows to the log directory (mode 0640) and to Redis;
- the dashboard unit's command, run as a user of its own with no
  capability, serves the installed page and the sensor's heartbeat.

Needs root, debootstrap and Debian's mirror; the base root is shared with
test_image (build/image-base)."""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

from egrtest import BIN, SRC, Checker, debian_base, flows, need_shared, temp_dir

if os.geteuid() != 0:
    sys.exit("FAIL: test_package needs root (debootstrap, chroot, mounts, network namespaces)")
for tool in ("debootstrap", "tcpreplay", "cpack", "dpkg-deb", "systemd-analyze", "redis-server", "setpriv"):
    if not shutil.which(tool):
        sys.exit(f"FAIL: {tool} is not installed (scripts/deps.sh --test installs it)")

c = Checker("test_package")
BUILD = os.path.dirname(BIN)
PCAP = need_shared("pcaps", "443-curl.pcap")
tmp = temp_dir(prefix="egressd-package-")


def sh(*args, check=True, **kw):
    p = subprocess.run(list(args), capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)[:200]}: rc={p.returncode} {p.stderr[-1500:]}")
    return p


# ---- cmake --install ---------------------------------------------------------------
stage = os.path.join(tmp, "stage")
p = sh("cmake", "--install", BUILD, env=dict(os.environ, DESTDIR=stage), check=False)
c.check(p.returncode == 0, f"cmake --install: {p.stderr[-500:]!r}")
cache = open(os.path.join(BUILD, "CMakeCache.txt")).read()
prefix = re.search(r"^CMAKE_INSTALL_PREFIX:PATH=(.*)$", cache, re.M).group(1)
etc = "/etc" if prefix == "/usr" else prefix + "/etc"
P = lambda *x: os.path.join(stage + prefix, *x)
E = lambda *x: os.path.join(stage + etc, *x)
want = [P("bin", "egressd"), P("bin", "egressd-dashboard"), P("bin", "egressd-pktgen"),
        P("share", "egressd", "dashboards", "index.html"), P("share", "egressd", "dashboards", "app.js"),
        P("share", "egressd", "dashboards", "grafana", "egressd.json"),
        P("share", "egressd", "scripts", "geoip-db.sh"), P("share", "egressd", "scripts", "asn-csv-to-mmdb.pl"),
        P("lib", "systemd", "system", "egressd@.service"), P("lib", "systemd", "system", "egressd-dashboard.service"),
        E("egressd", "egressd.yaml"), E("egressd", "intel", "local-block-ip.txt"), E("logrotate.d", "egressd"),
        P("share", "doc", "egressd", "README.md"), P("share", "doc", "egressd", "LICENSE"),
        P("share", "doc", "egressd", "eve-format.md"), P("share", "doc", "egressd", "eve-schema.json")]
for name in sorted(os.listdir(os.path.join(SRC, "sensors"))):
    if name.endswith(".yaml"):
        want.append(E("egressd", name))
for name in sorted(os.listdir(os.path.join(SRC, "docs"))):
    want.append(P("share", "doc", "egressd", name))
missing = [w[len(stage):] for w in want if not os.path.isfile(w)]
c.check(not missing, f"cmake --install left out {missing}")
c.check(os.access(P("bin", "egressd"), os.X_OK) and os.access(P("share", "egressd", "scripts", "geoip-db.sh"), os.X_OK),
        "installed programs are executable")
if os.path.isfile(P("lib", "systemd", "system", "egressd@.service")):
    unit = open(P("lib", "systemd", "system", "egressd@.service")).read()
    c.check(f"ExecStart={prefix}/bin/egressd -c {etc}/egressd/egressd.yaml -i %i $EGRESSD_OPTS" in unit,
            f"installed unit's ExecStart: {re.findall(r'^ExecStart=.*', unit, re.M)}")

# ---- the package ---------------------------------------------------------------------
pkg_build = os.path.join(BUILD, "pkg")
p = sh("cmake", "-S", SRC, "-B", pkg_build, "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_INSTALL_PREFIX=/usr",
       "-DEGRESSD_TESTS=OFF", "-DEGRESSD_WERROR=ON", check=False)
c.check(p.returncode == 0, f"configure the /usr build: {p.stderr[-500:]!r}")
p = sh("cmake", "--build", pkg_build, "-j", str(os.cpu_count() or 2), check=False, timeout=900)
c.check(p.returncode == 0, f"build for the package: {p.stderr[-800:]!r}")
for old in os.listdir(pkg_build):
    if old.endswith(".deb"):
        os.remove(os.path.join(pkg_build, old))
p = sh("cpack", "-G", "DEB", cwd=pkg_build, check=False, timeout=600)
debs = [n for n in os.listdir(pkg_build) if re.fullmatch(r"egressd_[0-9.]+_amd64\.deb", n)]
c.check(p.returncode == 0 and len(debs) == 1, f"cpack: rc={p.returncode} {debs} {p.stderr[-500:]!r}")
if not debs:
    c.done()
deb = os.path.join(pkg_build, debs[0])
info = sh("dpkg-deb", "-f", deb, "Depends", "Package", "Version").stdout
c.check("libndpi4.2" in info and "libpcap0.8" in info and "libhiredis0.14" in info,
        f"Depends from the shared libraries: {info!r}")

# ---- installed on a clean root -----------------------------------------------------------
base = debian_base(BUILD)
root = os.path.join(tmp, "root")
ns = f"egr-pkg-{os.getpid()}"
mounted = []
procs = []
try:
    sh("cp", "-a", base, root)
    os.remove(os.path.join(root, ".complete"))
    shutil.copy("/etc/resolv.conf", os.path.join(root, "etc", "resolv.conf"))
    # No service may start inside the chroot (policy-rc.d: "not allowed").
    with open(os.path.join(root, "usr", "sbin", "policy-rc.d"), "w") as f:
        f.write("#!/bin/sh\nexit 101\n")
    os.chmod(os.path.join(root, "usr", "sbin", "policy-rc.d"), 0o755)
    shutil.copy(deb, os.path.join(root, "tmp", debs[0]))
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8"}
    p = sh("chroot", root, "apt-get", "update", "-qq", env=env, check=False, timeout=600)
    c.check(p.returncode == 0, f"apt-get update in the root: {p.stderr[-500:]!r}")
    p = sh("chroot", root, "apt-get", "install", "-y", "-qq", "--no-install-recommends", f"./tmp/{debs[0]}",
           env=env, check=False, timeout=900, cwd="/")
    c.check(p.returncode == 0, f"apt-get install ./{debs[0]}: rc={p.returncode} {p.stderr[-800:]!r}")
    listed = sh("chroot", root, "dpkg", "-L", "egressd", env=env, check=False).stdout.split()
    for f in ("/usr/bin/egressd", "/usr/bin/egressd-dashboard", "/usr/share/egressd/dashboards/index.html",
              "/usr/lib/systemd/system/egressd@.service", "/usr/lib/systemd/system/egressd-dashboard.service",
              "/etc/egressd/egressd.yaml", "/etc/logrotate.d/egressd", "/usr/share/doc/egressd/eve-format.md"):
        c.check(f in listed and os.path.exists(root + f), f"package: {f} not installed")
    status = sh("chroot", root, "dpkg-query", "-s", "egressd", env=env, check=False).stdout
    c.check("Conffiles:" in status and "/etc/egressd/egressd.yaml" in status, "package: /etc files are conffiles")
    pw = sh("chroot", root, "getent", "passwd", "egressd", env=env, check=False).stdout
    c.check(pw.startswith("egressd:") and "nologin" in pw, f"package: egressd user {pw!r}")
    for d in ("/var/log/egressd", "/var/lib/egressd", "/var/lib/egressd/spool"):
        st = os.stat(root + d) if os.path.exists(root + d) else None
        c.check(st is not None and st.st_uid != 0, f"package: {d} owned by egressd")
    p = sh("chroot", root, "egressd", "--version", env=env, check=False)
    c.check(p.returncode == 0 and "error while loading" not in p.stderr, f"egressd --version: {p.stderr!r}")

    # systemd-analyze on the installed units (the minbase root has no
    # systemd of its own): copies whose commands point into the root, so
    # every program they run must be installed there.
    vdir = os.path.join(tmp, "units")
    os.makedirs(vdir)
    for u in ("egressd@.service", "egressd-dashboard.service"):
        text = open(f"{root}/usr/lib/systemd/system/{u}").read()
        text = re.sub(r"^(Exec\w+=)(/\S+)", lambda m: m.group(1) + root + m.group(2), text, flags=re.M)
        with open(os.path.join(vdir, u), "w") as f:
            f.write(text)
        p = sh("systemd-analyze", "verify", os.path.join(vdir, u), check=False)
        c.check(p.returncode == 0 and p.stderr.strip() == "", f"systemd-analyze verify {u}: {p.stderr!r}")

    # ---- the unit's command lines, run the way systemd runs them ------------------------------
    def unit_keys(text):
        keys = {}
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith(("#", ";", "[")) or "=" not in line:
                continue
            k, v = line.split("=", 1)
            keys.setdefault(k, []).append(v)
        return keys

    def expand(cmd, instance, environ):
        """systemd's rules for a command line: %i, ${VAR} as one word,
        $VAR split at whitespace into words (absent: no word)."""
        out = []
        for word in shlex.split(cmd.replace("%i", instance)):
            m = re.fullmatch(r"\$(\w+)", word)
            if m:
                out += environ.get(m.group(1), "").split()
            else:
                out.append(re.sub(r"\$\{(\w+)\}", lambda g: environ.get(g.group(1), ""), word))
        return out

    def env_file(keys, instance):
        environ = {}
        for spec in keys.get("EnvironmentFile", []):
            path = spec.lstrip("-").replace("%i", instance)
            if not os.path.exists(root + path):
                c.check(spec.startswith("-"), f"EnvironmentFile {path} missing and not optional")
                continue
            for line in open(root + path):
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    k, v = line.split("=", 1)
                    environ[k] = shlex.split(v)[0] if v.strip() else ""
        return environ

    def caps_list(v):
        return ",".join("+" + x.lower().removeprefix("cap_") for x in v.split())

    def run_as_unit(keys, argv, name, background=False):
        """A shell that makes the unit's mounts in a private mount namespace,
        then chroots and drops to the unit's user and capabilities."""
        user = keys.get("User", ["nobody"])[0]
        group = keys.get("Group", [user if user != "nobody" else "nogroup"])[0]
        bset = keys.get("CapabilityBoundingSet", [""])[-1]
        ambient = keys.get("AmbientCapabilities", [""])[-1]
        setpriv = ["setpriv", f"--reuid={user}", f"--regid={group}", "--init-groups",
                   "--bounding-set=-all" + ("," + caps_list(bset) if bset else "")]
        if ambient:
            setpriv += [f"--inh-caps={caps_list(ambient)}", f"--ambient-caps={caps_list(ambient)}"]
        if keys.get("NoNewPrivileges", ["no"])[-1] == "yes":
            setpriv.append("--no-new-privs")
        umask = keys.get("UMask", ["0022"])[-1]
        writable = []
        for k, base_dir in (("LogsDirectory", "/var/log"), ("StateDirectory", "/var/lib")):
            for v in keys.get(k, []):
                for d in v.split():
                    writable.append(f"{base_dir}/{d}")
        script = ["set -e", f"R={shlex.quote(root)}"]
        # LogsDirectory/StateDirectory: made and owned by the user.
        for d in writable:
            script.append(f"mkdir -p \"$R{d}\" && chroot \"$R\" chown {user}:{group} {d}")
        if keys.get("ProtectSystem", [""])[-1] == "strict":
            script.append('mount --bind "$R" "$R" && mount -o remount,bind,ro "$R"')
            for d in writable:
                script.append(f'mount --bind "$R{d}" "$R{d}" && mount -o remount,bind,rw "$R{d}"')
        opts = []
        if keys.get("ProcSubset", [""])[-1] == "pid":
            opts.append("subset=pid")
        if keys.get("ProtectProc", [""])[-1] == "invisible":
            opts.append("hidepid=invisible")
        script.append(f"mount -t proc -o {','.join(opts) or 'defaults'} proc \"$R/proc\"")
        if keys.get("PrivateTmp", [""])[-1] == "yes":
            script.append('mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"')
        script.append(f"umask {umask}")
        script.append('exec chroot "$R" ' + " ".join(shlex.quote(a) for a in setpriv + ["--"] + argv))
        cmd = ["ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private",
               "sh", "-c", "\n".join(script)]
        if background:
            errpath = os.path.join(tmp, name + ".err")
            errf = open(errpath, "w")
            pr = subprocess.Popen(cmd, stdout=errf, stderr=subprocess.STDOUT, env=env)
            procs.append(pr)
            return pr, errpath
        return sh(*cmd, check=False, env=env, timeout=120)

    sh("ip", "netns", "add", ns)
    nsx = ["ip", "netns", "exec", ns]
    sh(*nsx, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
    sh("ip", "-n", ns, "link", "add", "tx0", "type", "veth", "peer", "name", "cap0")
    for dev in ("lo", "tx0", "cap0"):
        sh("ip", "-n", ns, "link", "set", dev, "up")
    # The profile writes to Redis on 127.0.0.1:6379: a server in the namespace.
    redis = subprocess.Popen(nsx + ["redis-server", "--port", "6379", "--bind", "127.0.0.1", "--save", "",
                                    "--appendonly", "no", "--dir", tmp],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(redis)

    unit_text = open(root + "/usr/lib/systemd/system/egressd@.service").read()
    keys = unit_keys(unit_text)
    with open(root + "/etc/default/egressd-cap0", "w") as f:
        f.write('EGRESSD_OPTS="--metrics 127.0.0.1:9100 --stats-interval 3600"\n')
    environ = env_file(keys, "cap0")
    pre = expand(keys["ExecStartPre"][0], "cap0", environ)
    p = run_as_unit(keys, pre, "pre")
    c.check(p.returncode == 0 and "configuration OK" in p.stdout, f"ExecStartPre {pre}: rc={p.returncode} "
            f"{(p.stdout + p.stderr)[-500:]!r}")
    start = expand(keys["ExecStart"][0], "cap0", environ)
    c.check(start[-4:] == ["--metrics", "127.0.0.1:9100", "--stats-interval", "3600"] and "cap0" in start,
            f"ExecStart as systemd expands it: {start}")
    sensor, errpath = run_as_unit(keys, start, "sensor", background=True)

    def err_text():
        with open(errpath) as f:
            return f.read()

    deadline = time.time() + 20
    while time.time() < deadline and "capturing on" not in err_text() and sensor.poll() is None:
        time.sleep(0.1)
    c.check("capturing on" in err_text(), f"the unit's ExecStart: {err_text()[-600:]!r}")
    # ip netns exec, unshare, sh, chroot and setpriv each exec the next:
    # the sensor is the process started here.
    pid = sensor.pid if sensor.poll() is None else None
    if pid:
        with open(f"/proc/{pid}/status") as f:
            st = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        c.check(st["CapEff"].strip() == "0" * 16 and st["CapPrm"].strip() == "0" * 16 and
                st["Uid"].split()[0] != "0", f"running sensor: CapEff {st['CapEff'].strip()} Uid {st['Uid']}")
    else:
        c.check(False, "running sensor not found")
    hz = sh(*nsx, "python3", "-c", "import urllib.request as u; print(u.urlopen('http://127.0.0.1:9100/healthz').read().decode())",
            check=False)
    c.check(hz.returncode == 0 and "ok" in hz.stdout, f"/healthz: {hz.stdout!r} {hz.stderr[-200:]!r}")
    sh(*nsx, "tcpreplay", "-q", "-i", "tx0", PCAP)
    time.sleep(0.5)
    sensor.send_signal(signal.SIGTERM)  # KillSignal=SIGTERM
    rc = sensor.wait(timeout=60)
    c.check(rc == 0 and keys.get("KillSignal", ["SIGTERM"])[-1] == "SIGTERM", f"stop: rc={rc} {err_text()[-400:]!r}")
    eve = root + "/var/log/egressd/eve.json"
    live = []
    if os.path.exists(eve):
        with open(eve) as f:
            live = [json.loads(line) for line in f]
        c.check(os.stat(eve).st_mode & 0o777 == 0o640, f"eve.json mode {oct(os.stat(eve).st_mode)} (UMask 0027)")
    ref = subprocess.run([BIN, "-r", PCAP, "--json", "-"], capture_output=True, text=True).stdout
    ref_flows = flows([json.loads(line) for line in ref.splitlines()])
    c.check(len(flows(live)) == len(ref_flows) > 0, f"flows in /var/log/egressd/eve.json: {len(flows(live))}, "
            f"a replay of the same capture: {len(ref_flows)}")
    xlen = sh(*nsx, "redis-cli", "XLEN", "egress:flows", check=False).stdout.strip()
    c.check(xlen == str(len(flows(live))), f"flows in Redis: {xlen}")

    # ---- the dashboard unit ------------------------------------------------------------------
    dkeys = unit_keys(open(root + "/usr/lib/systemd/system/egressd-dashboard.service").read())
    c.check(dkeys.get("DynamicUser") == ["yes"] and dkeys.get("CapabilityBoundingSet") == [""],
            "dashboard unit: DynamicUser, no capability")
    with open(root + "/etc/default/egressd-dashboard", "w") as f:
        f.write('EGRESSD_DASHBOARD_OPTS="--listen 127.0.0.1:8080"\n')
    dstart = expand(dkeys["ExecStart"][0], "", env_file(dkeys, ""))
    dash, dash_err = run_as_unit(dict(dkeys, User=["nobody"], Group=["nogroup"]), dstart, "dashboard",
                                 background=True)
    page = sensors = ""
    for _ in range(100):
        got = sh(*nsx, "python3", "-c", "import urllib.request as u, sys\n"
                 "for p in ('/', '/api/sensors'):\n"
                 "    sys.stdout.write(u.urlopen('http://127.0.0.1:8080' + p).read().decode() + '\\0')",
                 check=False)
        if got.returncode == 0:
            page, sensors = got.stdout.split("\0")[:2]
            break
        time.sleep(0.1)
    with open(root + "/usr/share/egressd/dashboards/index.html") as f:
        c.check(page == f.read(), f"dashboard: / is not the installed page: {page[:200]!r} "
                f"{open(dash_err).read()[-300:]!r}")
    c.check('"present":true' in sensors.replace(" ", ""), f"dashboard: the sensor's heartbeat: {sensors[:300]!r}")
finally:
    for pr in procs:
        if pr.poll() is None:
            pr.kill()
            pr.wait()
    sh("ip", "netns", "del", ns, check=False)
    shutil.rmtree(root, ignore_errors=True)

c.done()
