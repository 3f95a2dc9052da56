#!/usr/bin/env bash
# Dashboard benchmark: how fast egressd-dashboard answers, and how soon the page shows its data,
# on a loaded Redis. A private redis-server (unix socket, no persistence) is filled by egressd
# itself: SENSORS replays of the small benchmark capture, each with its own sensor id, every
# private host an asset in deny mode (every destination alerts), so the flows stream sits at its
# MAXLEN bound (100,000 entries), the alerts stream holds tens of thousands of alerts, and the
# per-minute aggregates and heartbeats of every sensor are there.
#
# Table 1, per endpoint: the median and 95th percentile of REQUESTS requests (one Python client,
# sequential), beside redis-benchmark running the one Redis command the endpoint sends, where it
# sends one: the floor the service adds its work (JSON, HTTP) to.
# Table 2, the page in Debian's headless Chromium (tests/browser/drive.js), LOADS fresh loads:
# first contentful paint, and the moment each part (alert rows, asset cards, sensor rows) is on
# the page, from navigation start (polled every 10 ms). Target: alerts on screen under 1 s.
#
# Usage: bench/dashboard.sh
# Env:
#   SENSORS      sensors writing to the Redis (default 30)
#   REQUESTS     requests per endpoint (default 50)
#   LOADS        page loads (default 5)
#   BUILD        build directory with egressd and egressd-dashboard (default <repo>/build-release)
# Needs scripts/browser-deps.sh (Chromium and playwright-core) run once.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
build=${BUILD:-$repo/build-release}
sensors=${SENSORS:-30}
requests=${REQUESTS:-50}
loads=${LOADS:-5}
say() { echo "dashboard.sh: $*" >&2; }
for v in sensors requests loads; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { say "${v^^} must be a positive integer"; exit 2; }
done

if [[ ! -x $build/egressd || ! -x $build/egressd-dashboard ]]; then
  say "building $build (Release)"
  cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DEGRESSD_TESTS=OFF >/dev/null
  cmake --build "$build" -j "$(nproc)" >/dev/null
fi
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null ||
  { say "redis-server and redis-benchmark are needed (Debian: redis-server, redis-tools)"; exit 1; }
[[ -d $repo/tests/browser/node_modules/playwright-core ]] ||
  { say "playwright-core missing: run scripts/browser-deps.sh"; exit 1; }
capture=$("$here/make-capture.sh" --quick | tail -n 1)

export BENCH_BUILD=$build BENCH_CAPTURE=$capture BENCH_SENSORS=$sensors BENCH_REQUESTS=$requests \
  BENCH_LOADS=$loads BENCH_REPO=$repo
exec python3 - <<'PY'
import json, os, shutil, statistics, subprocess, sys, tempfile, time, urllib.request

repo = os.environ["BENCH_REPO"]
sys.path.insert(0, os.path.join(repo, "tests", "e2e"))
import redisharness  # noqa: E402  (the test suite's private redis-server and client)

build, capture = os.environ["BENCH_BUILD"], os.environ["BENCH_CAPTURE"]
nsens, nreq, nloads = (int(os.environ[k]) for k in ("BENCH_SENSORS", "BENCH_REQUESTS", "BENCH_LOADS"))


def say(*a):
    print("dashboard.sh:", *a, file=sys.stderr, flush=True)


tmp = tempfile.mkdtemp(prefix="egressd-bench-dash-")
srv = redisharness.RedisServer()
srv.start()
dash = browser = None
try:
    say(f"filling Redis: {nsens} replays of {os.path.basename(capture)}")
    for i in range(nsens):
        cfg = os.path.join(tmp, f"s{i}.yaml")
        with open(cfg, "w") as f:
            f.write('home_net: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, "fc00::/7"]\n'
                    "default_role: infra\nalerts: {max_per_second: 0}\n"
                    "roles:\n  infra:\n    mode: deny\n"
                    f"redis:\n  sensor_id: sensor-{i:02d}\n")
        subprocess.run([os.path.join(build, "egressd"), "-c", cfg, "-r", capture, "--redis",
                        srv.unix_url, "--json", "/dev/null"], check=True, capture_output=True)
    rc = srv.client(unix=True)
    load = {"flows": rc("XLEN", "egress:flows"), "alerts": rc("XLEN", "egress:alerts"),
            "keys": rc("DBSIZE"),
            "memory": [l for l in rc("INFO", "memory").decode().splitlines()
                       if l.startswith("used_memory_human:")][0].split(":")[1]}
    say(f"loaded: {load}")

    port = redisharness.free_port()
    url = f"http://127.0.0.1:{port}"
    dlog = open(os.path.join(tmp, "dashboard.log"), "w")
    dash = subprocess.Popen([os.path.join(build, "egressd-dashboard"), "--redis", srv.unix_url,
                             "--listen", f"127.0.0.1:{port}", "--static",
                             os.path.join(repo, "dashboards")], stdout=dlog, stderr=dlog)
    for _ in range(150):
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if json.loads(r.read()).get("redis"):
                    break
        except OSError:
            pass
        time.sleep(0.1)
    else:
        sys.exit("dashboard.sh: the dashboard did not come up")

    def timed(fn):
        out = []
        for _ in range(nreq):
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1000)
        out.sort()
        return statistics.median(out), out[min(len(out) - 1, int(len(out) * 0.95))]

    def get(path):
        def f():
            with urllib.request.urlopen(url + path, timeout=30) as r:
                body = r.read()
                if r.status != 200:
                    raise SystemExit(f"dashboard.sh: {path}: HTTP {r.status}")
            f.size = len(body)
        f.size = 0
        return f

    newest = rc("XREVRANGE", "egress:flows", "+", "-", "COUNT", "1")[0][1]
    fl = dict(zip(newest[::2], newest[1::2]))
    src, dst = fl[b"src_ip"].decode(), fl[b"dest_ip"].decode()
    rows = []
    for path, floor in [
            ("/api/alerts?count=50", ("XREVRANGE", "egress:alerts", "+", "-", "COUNT", "50")),
            (f"/api/flows?src={src}&dest={dst}", ("XREVRANGE", "egress:flows", "+", "-", "COUNT", "2000")),
            ("/api/assets", None), ("/api/protocols", None), ("/api/countries", None),
            ("/api/sensors", None), ("/app.js", None)]:
        g = get(path)
        med, p95 = timed(g)
        fmed = fp95 = None
        if floor:
            # redis-benchmark: a C client, one connection, replies read and
            # discarded: the server's own time plus a round trip.
            out = subprocess.run(["redis-benchmark", "-s", srv.sock_path, "-n", str(nreq), "-c", "1",
                                  "--csv", *floor], capture_output=True, text=True, check=True).stdout
            row = out.strip().splitlines()[-1].replace('"', "").split(",")
            fmed, fp95 = float(row[4]), float(row[5])
        rows.append((path, g.size, med, p95, fmed, fp95))
        say(f"{path}: {med:.1f} ms")

    say(f"page: {nloads} loads in headless Chromium")
    browser = subprocess.Popen(["node", os.path.join(repo, "tests", "browser", "drive.js")],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               cwd=os.path.join(repo, "tests", "browser"))

    def cmd(c, **kw):
        kw["cmd"] = c
        browser.stdin.write(json.dumps(kw) + "\n")
        browser.stdin.flush()
        r = json.loads(browser.stdout.readline())
        if not r.get("ok"):
            raise SystemExit(f"dashboard.sh: browser {c}: {r.get('error') or r.get('fatal')}")
        return r

    json.loads(browser.stdout.readline())  # ready
    parts = {"alerts": "#alerts tbody tr", "assets": "#assets > *", "sensors": "#sensors tbody tr"}
    marks = {k: [] for k in ["fcp"] + list(parts)}
    for n in range(nloads):
        cmd("goto", url=url + "/?bench=" + str(n))
        for name, sel in parts.items():
            # The first poll that sees the element notes the time inside the page.
            cmd("waitFor", timeout=15000, interval=10,
                expr=f"(() => {{ if (!document.querySelector({json.dumps(sel)})) return false;"
                     f" window.__t_{name} = window.__t_{name} || performance.now(); return true; }})()")
        t = cmd("eval", expr="({fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime,"
                             + ",".join(f"{k}: window.__t_{k}" for k in parts) + "})")["value"]
        for k in marks:
            marks[k].append(t[k])
    cmd("quit")
    browser.stdin.close()
    try:
        browser.wait(timeout=20)
    except subprocess.TimeoutExpired:
        browser.kill()
    browser = None

    print(f"Loaded Redis: {nsens} sensors, {load['flows']:,} flow entries, {load['alerts']:,} alerts, "
          f"{load['keys']:,} keys, {load['memory']} used.\n")
    print("| endpoint | answer bytes | dashboard median ms | p95 ms | its Redis command alone (redis-benchmark), median ms | p95 ms |")
    print("|---|---|---|---|---|---|")
    for path, size, med, p95, fmed, fp95 in rows:
        fm = f"{fmed:.1f}" if fmed is not None else "-"
        fp = f"{fp95:.1f}" if fp95 is not None else "-"
        print(f"| `{path}` | {size:,} | {med:.1f} | {p95:.1f} | {fm} | {fp} |")
    print()
    print(f"Page in headless Chromium, {nloads} loads, ms from navigation start:\n")
    print("| first contentful paint | alert rows shown | asset cards shown | sensor rows shown |")
    print("|---|---|---|---|")
    med = {k: statistics.median(v) for k, v in marks.items()}
    worst = {k: max(v) for k, v in marks.items()}
    print("| " + " | ".join(f"{med[k]:.0f} (max {worst[k]:.0f})" for k in ["fcp", "alerts", "assets", "sensors"]) + " |")
finally:
    if browser:
        browser.kill()
    if dash:
        dash.terminate()
        dash.wait(timeout=10)
    srv.destroy()
    shutil.rmtree(tmp, ignore_errors=True)
PY
