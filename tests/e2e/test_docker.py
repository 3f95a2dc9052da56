"""The container image, built and run by Docker (Debian's docker.io):

- a private dockerd is started for the test (its own sockets; its data
  root build/docker-root kept between runs so layers are reused) with no
  bridge and no iptables; no registry is reachable, so `debian:12` and
  `debian:12-slim` are a `debootstrap --variant=minbase bookworm` root with
  the host's CA bundle, `docker import`ed (the tarball is kept in the build
  directory), and `redis:7-bookworm` is built from it with Debian's
  redis-server;
- `docker build` of the Dockerfile, the host's CA bundle given the way its
  comments say (docker/ca/*.crt), from a checkout holding build trees,
  captures and node_modules: .dockerignore keeps the context small;
- the replay examples of the Dockerfile's comments, run as written: to
  standard output from a read-only mount, and with --user into a host
  directory that user owns (the old example without --user fails with
  "Permission denied", which is why they say so);
- live capture with the two capabilities in a network namespace of its own
  (a container's, joined with --network container:), writing to a Redis
  container in the same namespace: the HEALTHCHECK passes, no capability is
  left, the flows equal a replay's;
- docker-compose.yml's three services (docker-compose up, the host's
  network, free ports through its variables), capturing on a veth pair:
  the flows reach Redis and the dashboard shows the sensor.

Skipped (exit 77, with the reason) when docker.io is not installed or
dockerd cannot run here; registered for the release build only (the image
builds its own)."""
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from egrtest import BIN, SRC, Checker, debian_base, flows, need_shared

SKIP = 77
if os.geteuid() != 0:
    sys.exit("FAIL: test_docker needs root (dockerd, network namespaces)")
DOCKERD = shutil.which("dockerd")
DOCKER = "/usr/bin/docker" if os.access("/usr/bin/docker", os.X_OK) else shutil.which("docker")
if not DOCKERD or not DOCKER:
    print("SKIP: docker.io is not installed (dockerd, docker); scripts/deps.sh --test installs it")
    sys.exit(SKIP)
for tool in ("tcpreplay", "debootstrap"):
    if not shutil.which(tool):
        sys.exit(f"FAIL: {tool} is not installed (scripts/deps.sh --test installs it)")

c = Checker("test_docker")
BUILD = os.path.dirname(BIN)
PCAP = need_shared("pcaps", "443-curl.pcap")
tmp = tempfile.mkdtemp(prefix="egr-dk-", dir="/tmp")  # short: dockerd's socket paths
data_root = os.path.join(BUILD, "docker-root")
lock = open(os.path.join(BUILD, "docker-root.lock"), "w")
fcntl.flock(lock, fcntl.LOCK_EX)  # one private dockerd per data root
sock = os.path.join(tmp, "docker.sock")
ENV = dict(os.environ, DOCKER_HOST=f"unix://{sock}")
procs, cleanup = [], []


def sh(*args, check=True, timeout=600, **kw):
    kw.setdefault("env", ENV)
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)[:300]}: rc={p.returncode} {(p.stderr or p.stdout)[-2000:]}")
    return p


def docker(*args, **kw):
    return sh(DOCKER, *args, **kw)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


ref = subprocess.run([BIN, "-r", PCAP, "--json", "-"], capture_output=True, text=True).stdout
ref_flows = flows([json.loads(x) for x in ref.splitlines()])

dlog = open(os.path.join(tmp, "dockerd.log"), "w")
dockerd = subprocess.Popen([DOCKERD, "--data-root", data_root, "--exec-root", os.path.join(tmp, "x"),
                            "--host", f"unix://{sock}", "--pidfile", os.path.join(tmp, "dockerd.pid"),
                            "--bridge=none", "--iptables=false", "--ip6tables=false"],
                           stdout=dlog, stderr=subprocess.STDOUT)
try:
    deadline = time.time() + 30
    while time.time() < deadline and dockerd.poll() is None:
        if docker("version", check=False, timeout=10).returncode == 0:
            break
        time.sleep(0.3)
    if dockerd.poll() is not None or docker("version", check=False, timeout=10).returncode != 0:
        dlog.flush()
        tail = open(os.path.join(tmp, "dockerd.log")).read()[-600:]
        print(f"SKIP: dockerd cannot run here: {tail}")
        sys.exit(SKIP)

    # ---- base images ----------------------------------------------------------------------
    tarball = os.path.join(BUILD, "docker-base.tar")
    if not os.path.exists(tarball):
        base = debian_base(BUILD)
        staged = tarball + ".tmp"
        sh("tar", "-C", base, "--exclude=./.complete", "-cf", staged, ".")
        cadir = os.path.join(tmp, "ca", "etc", "ssl", "certs")
        os.makedirs(cadir)
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", cadir)
        sh("tar", "-rf", staged, "-C", os.path.join(tmp, "ca"), "./etc/ssl/certs/ca-certificates.crt")
        os.rename(staged, tarball)
    docker("import", tarball, "debian:12")
    docker("tag", "debian:12", "debian:12-slim")
    redis_ctx = os.path.join(tmp, "redis-image")
    os.makedirs(redis_ctx)
    with open(os.path.join(redis_ctx, "Dockerfile"), "w") as f:
        f.write("FROM debian:12-slim\nRUN apt-get update -qq && apt-get install -y -qq --no-install-recommends "
                "redis-server >/dev/null && rm -rf /var/lib/apt/lists/*\nUSER redis\nCMD [\"redis-server\"]\n")
    p = docker("build", "--network", "host", "-t", "redis:7-bookworm", redis_ctx, check=False, timeout=900)
    c.check(p.returncode == 0, f"redis image: {p.stdout[-800:]!r}")

    # ---- docker build --------------------------------------------------------------------------
    # A checkout as it looks after the demo and the tests: build trees,
    # captures, node_modules (none of which may reach the daemon).
    ctx = os.path.join(tmp, "src")
    skip_top = {".git"} | {n for n in os.listdir(SRC) if n.startswith("build")}
    os.makedirs(ctx)
    for name in os.listdir(SRC):
        if name not in skip_top:
            sh("cp", "-a", os.path.join(SRC, name), ctx)
    for junk, size in (("build/demo/demo.pcap", 40 << 20), ("build-asan/egressd", 20 << 20),
                       ("tests/browser/node_modules/playwright-core/x.bin", 20 << 20), ("capture.pcapng", 20 << 20)):
        path = os.path.join(ctx, junk)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(os.urandom(1 << 20) * (size >> 20))
    # The host's CA bundle, as the Dockerfile's comments say (npm behind a
    # TLS-intercepting proxy).
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", os.path.join(ctx, "docker", "ca", "host.crt"))
    t0 = time.time()
    p = docker("build", "--network", "host", "-t", "egressd", ctx, check=False, timeout=1800)
    out = p.stdout + p.stderr
    c.check(p.returncode == 0, f"docker build: rc={p.returncode} {out[-1500:]!r}")
    m = re.search(r"Sending build context to Docker daemon\s+([0-9.]+)([kMG]?B)", out)
    size = float(m.group(1)) * {"B": 1e-6, "kB": 1e-3, "MB": 1, "GB": 1e3}[m.group(2)] if m else 1e9
    c.check(size < 10, f"build context {m and m.group(0)!r}: .dockerignore must keep out build trees, "
            "captures and node_modules (100 MB of them here)")
    print(f"test_docker: image built in {time.time() - t0:.0f} s, context {m and m.group(1)}{m and m.group(2)}")
    if p.returncode != 0:
        raise RuntimeError("no image")
    hc = docker("inspect", "-f", "{{json .Config.Healthcheck.Test}}", "egressd").stdout
    healthcheck = json.loads(hc)[1:]  # ["CMD", ...]
    c.check(docker("inspect", "-f", "{{.Config.User}}", "egressd").stdout.strip() == "egressd", "image user")

    # ---- the replay examples of the Dockerfile --------------------------------------------------
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    shutil.copy(PCAP, os.path.join(data, "capture.pcap"))
    os.chown(data, 4242, 4242)
    os.chmod(data, 0o755)
    with open(os.path.join(SRC, "Dockerfile")) as f:
        header = f.read().split("\nFROM ")[0]
    examples, cur = [], ""
    for line in header.splitlines():
        text = line[1:].strip() if line.startswith("#") else ""
        if text.startswith("docker run --rm") or cur:
            cur += text[:-1] + " " if text.endswith("\\") else text
            if not text.endswith("\\"):
                examples.append(cur)
                cur = ""
    c.check(len(examples) == 2, f"Dockerfile replay examples: {examples}")
    for ex in examples:
        # $PWD is the data directory; the example's --user is its owner.
        cmd = ex.replace('"$(id -u):$(id -g)"', "4242:4242")
        p = sh("sh", "-c", cmd, cwd=data, check=False, timeout=300)
        if "> eve.json" in ex:
            got = flows([json.loads(x) for x in open(os.path.join(data, "eve.json"))])
            c.check(p.returncode == 0 and len(got) == len(ref_flows), f"{ex}: rc={p.returncode} {len(got)} flows, "
                    f"a replay here {len(ref_flows)}: {p.stderr[-300:]!r}")
            os.remove(os.path.join(data, "eve.json"))
        else:
            path = os.path.join(data, "eve.json")
            ok = os.path.exists(path) and os.stat(path).st_uid == 4242
            got = flows([json.loads(x) for x in open(path)]) if ok else []
            c.check(p.returncode == 0 and ok and len(got) == len(ref_flows),
                    f"{ex}: rc={p.returncode}, owned by 4242: {ok}, {len(got)} flows: {p.stderr[-300:]!r}")
            os.remove(path)
    # Without --user the image's user cannot write there: the reason for the note.
    p = docker("run", "--rm", "-v", f"{data}:/data", "egressd", "-r", "/data/capture.pcap",
               "--json", "/data/eve.json", check=False)
    c.check(p.returncode != 0 and "Permission denied" in p.stderr, f"without --user: rc={p.returncode} {p.stderr!r}")

    # ---- live, in a network namespace of its own ----------------------------------------------------
    tag = f"egr{os.getpid()}"
    docker("run", "-d", "--name", f"{tag}-net", "--network", "none", "--entrypoint", "bash", "egressd",
           "-c", "exec sleep 3600")
    cleanup.append(f"{tag}-net")
    pid = docker("inspect", "-f", "{{.State.Pid}}", f"{tag}-net").stdout.strip()
    veth = f"{tag}t"
    # No IPv6 on either end (router solicitations and MLD reports would be
    # flows of their own).
    sh("nsenter", "-t", pid, "-n", "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
       "net.ipv6.conf.default.disable_ipv6=1")
    sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "cap0", "netns", f"/proc/{pid}/ns/net")
    sh("sysctl", "-qw", f"net.ipv6.conf.{veth}.disable_ipv6=1")
    sh("ip", "link", "set", veth, "up")
    sh("nsenter", "-t", pid, "-n", "ip", "link", "set", "cap0", "up")
    sh("nsenter", "-t", pid, "-n", "ip", "link", "set", "lo", "up")
    net = f"container:{tag}-net"
    docker("run", "-d", "--name", f"{tag}-redis", "--network", net, "redis:7-bookworm", "redis-server",
           "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no")
    cleanup.append(f"{tag}-redis")
    docker("run", "-d", "--name", f"{tag}-sensor", "--network", net, "--cap-drop", "ALL", "--cap-add", "NET_RAW",
           "--cap-add", "NET_ADMIN", "egressd", "-c", "/etc/egressd/edge-sidecar.yaml", "-i", "cap0",
           "--metrics", "127.0.0.1:9100", "--json", "-")
    cleanup.append(f"{tag}-sensor")
    deadline = time.time() + 30
    logs = ""
    while time.time() < deadline and "capturing on" not in logs:
        logs = docker("logs", f"{tag}-sensor", check=False).stderr
        time.sleep(0.3)
    c.check("capturing on" in logs, f"live in a container: {logs[-500:]!r}")
    p = docker("exec", f"{tag}-sensor", *healthcheck, check=False)
    c.check(p.returncode == 0, f"HEALTHCHECK while capturing: rc={p.returncode} {p.stderr!r}")
    spid = docker("inspect", "-f", "{{.State.Pid}}", f"{tag}-sensor").stdout.strip()
    with open(f"/proc/{spid}/status") as f:
        st = dict(x.split(":", 1) for x in f.read().splitlines() if ":" in x)
    c.check(st["CapEff"].strip() == "0" * 16 and st["CapPrm"].strip() == "0" * 16 and st["Uid"].split()[0] != "0",
            f"live container: CapEff {st['CapEff'].strip()} CapPrm {st['CapPrm'].strip()} Uid {st['Uid']}")
    sh("tcpreplay", "-q", "-i", veth, PCAP)
    time.sleep(0.5)
    docker("stop", "-t", "40", f"{tag}-sensor")
    code = docker("inspect", "-f", "{{.State.ExitCode}}", f"{tag}-sensor").stdout.strip()
    live = flows([json.loads(x) for x in docker("logs", f"{tag}-sensor").stdout.splitlines() if x.startswith("{")])
    c.check(code == "0" and len(live) == len(ref_flows), f"live: exit {code}, {len(live)} flows, "
            f"replay {len(ref_flows)}")
    xlen = docker("exec", f"{tag}-redis", "redis-cli", "XLEN", "egress:flows", check=False).stdout.strip()
    c.check(xlen == str(len(live)), f"live: {xlen} flows in the Redis container, {len(live)} in JSON")

    # ---- docker-compose.yml ------------------------------------------------------------------------
    compose = shutil.which("docker-compose")
    if not compose:
        c.check(False, "docker-compose is not installed (scripts/deps.sh --test installs it)")
    else:
        iface, peer = f"{tag}c", f"{tag}p"
        sh("ip", "link", "add", iface, "type", "veth", "peer", "name", peer)
        cleanup.append(("link", peer))
        for d in (iface, peer):
            sh("sysctl", "-qw", f"net.ipv6.conf.{d}.disable_ipv6=1")
            sh("ip", "link", "set", d, "up")
        ports = {"EGRESSD_REDIS_PORT": free_port(), "EGRESSD_METRICS_PORT": free_port(),
                 "EGRESSD_DASHBOARD_PORT": free_port()}
        cenv = dict(ENV, EGRESSD_IFACE=iface, **{k: str(v) for k, v in ports.items()})
        project = ["-p", tag, "-f", os.path.join(SRC, "docker-compose.yml")]
        cleanup.append(("compose", project, cenv))
        p = sh(compose, *project, "up", "-d", "--no-build", env=cenv, check=False, timeout=300)
        c.check(p.returncode == 0, f"docker-compose up: {p.stderr[-800:]!r}")
        deadline = time.time() + 30
        logs = ""
        while time.time() < deadline and "capturing on" not in logs:
            logs = sh(compose, *project, "logs", "egressd", env=cenv, check=False).stdout
            time.sleep(0.5)
        c.check("capturing on" in logs, f"compose: egressd {logs[-600:]!r}")
        sh("tcpreplay", "-q", "-i", peer, PCAP)
        rport = ports["EGRESSD_REDIS_PORT"]
        xlen, sensors = "", ""
        for _ in range(60):
            xlen = sh(compose, *project, "exec", "-T", "redis", "redis-cli", "-p", str(rport), "XLEN",
                      "egress:flows", env=cenv, check=False).stdout.strip()
            if xlen == str(len(ref_flows)):
                break
            time.sleep(0.5)
        # Flows end at their idle timeouts: SIGTERM ends the rest.
        if xlen != str(len(ref_flows)):
            sh(compose, *project, "kill", "-s", "TERM", "egressd", env=cenv, check=False)
            for _ in range(60):
                xlen = sh(compose, *project, "exec", "-T", "redis", "redis-cli", "-p", str(rport), "XLEN",
                          "egress:flows", env=cenv, check=False).stdout.strip()
                if xlen == str(len(ref_flows)):
                    break
                time.sleep(0.5)
        c.check(xlen == str(len(ref_flows)), f"compose: {xlen} flows in Redis, a replay gives {len(ref_flows)}")
        try:
            import urllib.request
            body = urllib.request.urlopen(f"http://127.0.0.1:{ports['EGRESSD_DASHBOARD_PORT']}/api/sensors",
                                          timeout=10).read().decode()
        except OSError as e:
            body = str(e)
        c.check('"present":true' in body.replace(" ", ""), f"compose: the dashboard's sensors: {body[:300]!r}")
finally:
    for item in reversed(cleanup):
        if isinstance(item, str):
            docker("rm", "-f", item, check=False)
        elif item[0] == "link":
            sh("ip", "link", "del", item[1], check=False)
        elif item[0] == "compose":
            sh(shutil.which("docker-compose"), *item[1], "down", "-v", "--remove-orphans", env=item[2],
               check=False, timeout=120)
    if dockerd.poll() is None:
        dockerd.send_signal(signal.SIGTERM)
        try:
            dockerd.wait(timeout=60)
        except subprocess.TimeoutExpired:
            dockerd.kill()
            dockerd.wait()
    dlog.close()
    # dockerd leaves its default network namespace bound under its exec root.
    netns = os.path.join(tmp, "x", "netns", "default")
    if os.path.ismount(netns) or os.path.exists(netns):
        subprocess.run(["umount", "-l", netns], capture_output=True)
    shutil.rmtree(tmp, ignore_errors=True)

c.done()
