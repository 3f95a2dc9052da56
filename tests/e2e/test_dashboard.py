#!/usr/bin/env python3
"""egressd-dashboard end to end (docs/dashboard.md): a real redis-server, the
demo capture replayed into it by egressd with sensors/demo.yaml, the
dashboard on a free port, and Debian's headless Chromium driven by
tests/browser/drive.js (playwright-core, pinned in tests/browser).

  main      the page shows the 7 demo alerts (assets and destinations as in
            egressd's own EVE output), the assets' top destinations with the
            bytes of the flow records, the sensor row; a click shows the
            pair's flows; a second replay's new alerts appear without reload
            (Server-Sent Events); screenshot in $EGRESSD_BUILD/dashboard-test/
  hostile   the hostile capture's names (markup, bad bytes) alert and are
            shown as text: no dialog, no global set by a payload
  token     /api/* and /healthz answer 401 without the token, 200 with it
  restart   redis-server killed: /api/alerts is 503 and the page shows the
            banner; restarted on the same socket: served again, banner gone

Needs node, tests/browser/node_modules (scripts/browser-deps.sh) and
/usr/bin/chromium; fails (does not skip) without them."""
import calendar
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import egrtest  # noqa: E402
import redisharness  # noqa: E402

BUILD = os.environ.get("EGRESSD_BUILD") or os.path.dirname(egrtest.BIN)
DASH = os.path.join(os.path.dirname(egrtest.BIN), "egressd-dashboard")
BROWSER_DIR = os.path.join(egrtest.SRC, "tests", "browser")
CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
ARTIFACTS = os.path.join(BUILD, "dashboard-test")

for what, ok in (("node (Debian: apt-get install nodejs)", shutil.which("node")),
                 (f"{CHROMIUM} (scripts/browser-deps.sh installs Debian's chromium)",
                  os.access(CHROMIUM, os.X_OK)),
                 (f"{BROWSER_DIR}/node_modules/playwright-core (run scripts/browser-deps.sh)",
                  os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core"))),
                 (f"{DASH} (build the egressd-dashboard target)", os.access(DASH, os.X_OK)),
                 (f"{egrtest.PKTGEN}", os.access(egrtest.PKTGEN, os.X_OK))):
    if not ok:
        sys.exit(f"FAIL: missing {what}")

import yaml  # noqa: E402  (python3-yaml, scripts/deps.sh --test)

C = egrtest.Checker("test_dashboard")
TMP = tempfile.mkdtemp(prefix="egressd-dash-test-")
os.makedirs(ARTIFACTS, exist_ok=True)


def write_config(name, sensor_id, extra_assets=(), base=None, extra_roles=None):
    """demo.yaml (or base) with redis.sensor_id set and more assets/roles;
    relative intel paths made absolute, since the copy lives elsewhere."""
    src = os.path.join(egrtest.SRC, "sensors", "demo.yaml")
    if base is None:
        with open(src) as f:
            base = yaml.safe_load(f)
        for lst in base.get("intel", []):
            if not os.path.isabs(lst["file"]):
                lst["file"] = os.path.join(os.path.dirname(src), lst["file"])
    cfg = json.loads(json.dumps(base))
    cfg.setdefault("redis", {})["sensor_id"] = sensor_id
    cfg.setdefault("assets", []).extend(extra_assets)
    if extra_roles:
        cfg.setdefault("roles", {}).update(extra_roles)
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    return path


def replay(config, pcap, redis_url):
    out = os.path.join(TMP, os.path.basename(config) + ".eve.json")
    p = subprocess.run([egrtest.BIN, "-c", config, "-r", pcap, "--redis", redis_url, "--json", out],
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise AssertionError(f"egressd failed ({p.returncode}): {p.stderr[-2000:]}")
    with open(out) as f:
        return [json.loads(line) for line in f]


class Dashboard:
    def __init__(self, redis_url, token=None, extra=()):
        self.port = redisharness.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        argv = [DASH, "--redis", redis_url, "--listen", f"127.0.0.1:{self.port}"] + list(extra)
        if token:
            argv += ["--token", token]
        self.log = os.path.join(TMP, f"dashboard-{self.port}.log")
        self.logf = open(self.log, "w")
        env = dict(os.environ)
        env.pop("EGRESSD_DASHBOARD_TOKEN", None)
        self.proc = subprocess.Popen(argv, stdout=self.logf, stderr=self.logf, env=env,
                                     preexec_fn=redisharness._die_with_parent)
        deadline = time.time() + 15
        while time.time() < deadline:
            st, body = self.get("/healthz", token=token)
            if st == 200 and json.loads(body).get("redis"):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"dashboard did not come up: {self.text_log()}")

    def get(self, path, token=None, header=True):
        req = urllib.request.Request(self.url + path)
        if token and header:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError:
            return None, b""

    def api(self, path):
        st, body = self.get(path, token=self.token)
        if st != 200:
            raise AssertionError(f"{path}: HTTP {st} {body[:200]!r}")
        return json.loads(body)

    def text_log(self):
        with open(self.log, errors="replace") as f:
            return f.read()[-3000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        log = self.text_log()
        C.check(self.proc.returncode == 0 and "Sanitizer" not in log,
                f"dashboard exit {self.proc.returncode} on SIGTERM; log: {log}")


class Browser:
    def __init__(self):
        self.proc = subprocess.Popen(["node", os.path.join(BROWSER_DIR, "drive.js")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=BROWSER_DIR, env=dict(os.environ, CHROMIUM=CHROMIUM),
                                     preexec_fn=redisharness._die_with_parent)
        first = self._read()
        if not first.get("ready"):
            raise AssertionError(f"browser did not start: {first}")
        self.last = first

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("browser driver exited")
        return json.loads(line)

    def __call__(self, cmd, **kw):
        kw["cmd"] = cmd
        self.proc.stdin.write(json.dumps(kw) + "\n")
        self.proc.stdin.flush()
        self.last = self._read()
        return self.last

    def eval(self, expr):
        r = self("eval", expr=expr)
        if not r["ok"]:
            raise AssertionError(f"eval {expr[:80]}: {r.get('error')}")
        return r["value"]

    def wait(self, expr, what, timeout=15000):
        r = self("waitFor", expr=expr, timeout=timeout)
        return C.check(r["ok"], f"{what}: not seen within {timeout} ms ({r.get('error')})")

    def close(self):
        try:
            self("quit")
        except (AssertionError, BrokenPipeError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


ROWS = """Array.from(document.querySelectorAll('#alerts tbody tr')).map(r => ({
  asset: r.querySelector('td.asset').textContent, dest: r.querySelector('td.dest').textContent,
  count: r.querySelector('td.count').textContent}))"""


def eve_alerts(events):
    """First alert of each key, as the page shows one row per alert key."""
    keys = {}
    for e in events:
        if e.get("event_type") == "alert":
            keys[e["alert"]["alert_key"]] = e
    return keys


def expected_top(events):
    """asset -> {destination: bytes} summed from egress flow records, as the
    aggregates count them (docs/redis-schema.md)."""
    out = {}
    for e in events:
        if e.get("event_type") != "flow" or e.get("network_direction", "egress") != "egress":
            continue
        asset = (e.get("asset") or {}).get("name") or e["src_ip"]
        dest = e.get("dest_name") or e["dest_ip"]
        b = e["flow"]["bytes_toserver"] + e["flow"]["bytes_toclient"]
        out.setdefault(asset, {})
        out[asset][dest] = out[asset].get(dest, 0) + b
    return out


def test_main_token_restart(browser):
    srv = redisharness.RedisServer(persist=True).start()
    pcap = os.path.join(TMP, "demo.pcap")
    subprocess.run([egrtest.PKTGEN, "demo", pcap], check=True)
    cfg1 = write_config("edge-1.yaml", "edge-1")
    events = replay(cfg1, pcap, srv.unix_url)
    alerts = eve_alerts(events)
    C.check(len(alerts) == 7, f"demo replay: {len(alerts)} alert keys in EVE, expected 7")
    dash = Dashboard(srv.unix_url)
    try:
        # ---- API values against egressd's own output ----
        api = dash.api("/api/alerts?count=100")
        C.check(len(api["alerts"]) == 7, f"/api/alerts: {len(api['alerts'])} entries, expected 7")
        top = expected_top(events)
        assets = {a["asset"]: a for a in dash.api("/api/assets")["assets"]}
        C.check(set(assets) == set(top), f"/api/assets: assets {sorted(assets)} != {sorted(top)}")
        for name, want in top.items():
            got = {t["dest"]: t["bytes"] for t in assets.get(name, {}).get("top", [])}
            C.check(got == want, f"/api/assets {name}: top {got} != flow records {want}")
            C.check(assets.get(name, {}).get("unique_destinations") == len(want),
                    f"/api/assets {name}: unique destinations {assets.get(name, {}).get('unique_destinations')} != {len(want)}")
        C.check(assets.get("bigip1", {}).get("role") == "lb-mgmt", "bigip1's role is not lb-mgmt")
        want_roles = {}
        for e in events:
            if e.get("event_type") == "flow" and e.get("network_direction", "egress") == "egress" and (e.get("asset") or {}).get("role"):
                r = e["asset"]["role"]
                want_roles[r] = want_roles.get(r, 0) + e["flow"]["bytes_toserver"] + e["flow"]["bytes_toclient"]
        got_roles = {r["role"]: r["bytes"] for r in dash.api("/api/assets")["roles"]}
        C.check(got_roles == want_roles, f"/api/assets roles {got_roles} != flow records {want_roles}")
        # A replay that ends with traffic between outside hosts (no
        # aggregates): the hour stays the one the egress had.
        before = dash.api("/api/assets")
        rc = srv.client()
        newest = rc("XREVRANGE", "egress:flows", "+", "-", "COUNT", "1")[0][1]
        ts = dict(zip(newest[::2], newest[1::2]))[b"ts"].decode()
        later = time.strftime("%Y-%m-%dT%H:%M:%S.000000+0000",
                              time.gmtime(calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + 7200))
        xid = rc("XADD", "egress:flows", "*", "sensor", "edge-1", "ts", later, "src_ip", "198.51.100.1",
                 "dest_ip", "203.0.113.9", "proto", "UDP", "direction", "external")
        after = dash.api("/api/assets")
        rc("XDEL", "egress:flows", xid)
        C.check(after["last_bucket"] == before["last_bucket"] and after["assets"] == before["assets"],
                f"/api/assets after a later non-egress record: last_bucket {before['last_bucket']} -> "
                f"{after['last_bucket']}, {len(after['assets'])} assets")
        hb = srv.client().hgetall(b"egress:sensor:edge-1")
        # ---- the page ----
        r = browser("goto", url=dash.url + "/")
        C.check(r["ok"], f"page did not load: {r}")
        browser.wait("document.querySelectorAll('#alerts tbody tr').length >= 7", "7 alert rows")
        time.sleep(0.5)
        rows = browser.eval(ROWS)
        C.check(len(rows) == 7, f"page: {len(rows)} alert rows, expected exactly 7: {rows}")
        want_rows = sorted(((e.get("asset") or {}).get("name") or e["src_ip"],
                            e.get("dest_name") or e["dest_ip"]) for e in alerts.values())
        got_rows = sorted((r["asset"], r["dest"]) for r in rows)
        C.check(got_rows == want_rows, f"page alert rows {got_rows} != EVE alerts {want_rows}")
        browser.wait("document.querySelectorAll('#assets .card').length >= 1", "asset cards")
        cards = browser.eval("""Object.fromEntries(Array.from(document.querySelectorAll('#assets .card')).map(c =>
            [c.dataset.asset, {role: c.querySelector('.role').textContent,
             top: Array.from(c.querySelectorAll('ol.top .dest')).map(d => d.textContent),
             uniq: c.querySelector('.uniq').textContent, bars: c.querySelectorAll('svg rect').length}]))""")
        for name, want in top.items():
            card = cards.get(name)
            if not C.check(card is not None, f"page: no card for asset {name}"):
                continue
            order = [d for d, _ in sorted(want.items(), key=lambda kv: -kv[1])]
            C.check(card["top"][:1] == order[:1] and set(card["top"]) == set(want),
                    f"page {name}: top destinations {card['top']} != {order}")
            C.check(card["uniq"].startswith(f"{len(want)} "), f"page {name}: '{card['uniq']}'")
            C.check(card["bars"] >= 1, f"page {name}: no bars in the egress chart")
        C.check(cards.get("bigip1", {}).get("role") == "role lb-mgmt", f"bigip1 card role {cards.get('bigip1')}")
        page_roles = browser.eval("Array.from(document.querySelectorAll('#roles .role-total')).map(r => r.dataset.role)")
        C.check(page_roles == sorted(want_roles, key=lambda r: -want_roles[r]), f"page roles {page_roles}")
        browser.wait("document.querySelector('#sensors tr[data-sensor=\"edge-1\"]')", "sensor row edge-1")
        srow = browser.eval("""(() => { const r = document.querySelector('#sensors tr[data-sensor="edge-1"]');
            return r ? {packets: r.querySelector('td.packets').textContent, drops: r.querySelector('td.drops').textContent,
                        state: r.querySelector('td.state').textContent} : null; })()""")
        C.check(srow is not None and srow["packets"] == hb.get(b"packets", b"?").decode()
                and srow["drops"] == "0" and srow["state"] == "ok",
                f"sensor row {srow}, heartbeat packets {hb.get(b'packets')}")
        countries = browser.eval("Array.from(document.querySelectorAll('#countries .name')).map(n => n.textContent)")
        C.check(len(countries) >= 1 and countries[0] == dash.api("/api/countries")["countries"][0]["name"],
                f"countries chart {countries}")
        C.check(browser.eval("document.querySelectorAll('#protocols svg rect').length") > 0, "protocol chart empty")
        # click: the flows of the pair
        first = browser.eval("(() => { const r = document.querySelector('#alerts tbody tr'); return r.querySelector('td.dest').textContent; })()")
        browser("click", selector="#alerts tbody tr")
        browser.wait("document.querySelectorAll('#flows tbody tr td').length > 1", "flows of the clicked alert")
        flows_text = browser.eval("document.querySelector('#flows tbody').textContent")
        C.check(first in flows_text, f"flows table does not show {first!r}: {flows_text[:300]!r}")

        # ---- SSE: a second sensor's replay raises new alerts, no reload ----
        browser.eval("window.__sameDocument = 1")
        cfg2 = write_config("edge-2.yaml", "edge-2",
                            extra_assets=[{"name": "workstation", "hosts": ["10.20.5.50"], "role": "lb-mgmt"}])
        replay(cfg2, pcap, srv.unix_url)
        browser.wait("Array.from(document.querySelectorAll('#alerts td.asset')).some(t => t.textContent === 'workstation')",
                     "new alert row of the second replay (SSE)")
        C.check(browser.eval("window.__sameDocument") == 1, "the page was reloaded")
        browser.eval("document.querySelectorAll('#alerts tbody tr').length")
        browser("screenshot", path=os.path.join(ARTIFACTS, "dashboard.png"))
        C.check(os.path.getsize(os.path.join(ARTIFACTS, "dashboard.png")) > 10000, "screenshot too small")

        # stale sensor: listed, heartbeat gone
        srv.client()("SADD", "egress:sensors", "ghost")
        browser.wait("document.querySelector('#sensors tr.stale[data-sensor=\"ghost\"]')", "stale row of a sensor without heartbeat", 20000)

        # ---- token ----
        # The token dashboard logs in as the read-only user of docs/dashboard.md.
        srv.client()("ACL", "SETUSER", "dashboard", "on", ">ro-pass", "~egress:*", "resetchannels", "-@all",
                     "+ping", "+echo", "+auth", "+select", "+xrevrange", "+xread", "+hgetall", "+smembers",
                     "+zrevrange", "+pfcount")
        tdash = Dashboard(srv.unix_url + "?user=dashboard&password=ro-pass", token="s3cret-t0ken")
        try:
            for path in ("/api/alerts", "/api/assets", "/api/protocols", "/api/countries", "/api/sensors",
                         "/api/flows?src=10.20.1.20&dest=1.1.1.1"):
                st, body = tdash.get(path, token="s3cret-t0ken")
                C.check(st == 200 and b"error" not in body[:20], f"read-only user: {path}: {st} {body[:200]!r}")
            C.check(tdash.api("/api/assets")["assets"] == dash.api("/api/assets")["assets"],
                    "read-only user: /api/assets differs")
            for path in ("/api/alerts", "/api/assets", "/api/sensors", "/healthz", "/api/events"):
                st, _ = tdash.get(path)
                C.check(st == 401, f"token: {path} without token: {st}, expected 401")
                st, _ = tdash.get(path, token="wrong")
                C.check(st == 401, f"token: {path} with a wrong token: {st}, expected 401")
            for path in ("/api/alerts", "/api/sensors", "/healthz"):
                st, _ = tdash.get(path, token="s3cret-t0ken")
                C.check(st == 200, f"token: {path} with the token: {st}")
                st, _ = tdash.get(path + ("&" if "?" in path else "?") + "token=s3cret-t0ken")
                C.check(st == 200, f"token: {path}?token=: {st}")
            for path in ("/", "/app.js", "/style.css"):
                st, _ = tdash.get(path)
                C.check(st == 200, f"token: static {path} without token: {st}, expected 200")
            r = browser("goto", url=tdash.url + "/?token=s3cret-t0ken")
            browser.wait("document.querySelectorAll('#alerts tbody tr').length >= 7", "alerts with ?token")
        finally:
            tdash.stop()

        # ---- static files: types, traversal ----
        st, _ = dash.get("/../../etc/passwd")
        C.check(st == 404, f"/../../etc/passwd: {st}")
        st, _ = dash.get("/%2e%2e/%2e%2e/etc/passwd")
        C.check(st == 404, f"encoded traversal: {st}")
        with urllib.request.urlopen(dash.url + "/app.js", timeout=10) as r:
            C.check(r.headers["Content-Type"].startswith("text/javascript") and r.headers["Cache-Control"],
                    f"app.js headers {dict(r.headers)}")

        # ---- Redis restart ----
        browser("goto", url=dash.url + "/")
        browser.wait("document.querySelectorAll('#alerts tbody tr').length >= 7", "alerts before restart")
        srv.kill()
        deadline = time.time() + 10
        st = None
        while time.time() < deadline:
            st, body = dash.get("/api/alerts")
            if st == 503:
                break
            time.sleep(0.1)
        C.check(st == 503 and json.loads(body) == {"error": "redis unavailable"},
                f"/api/alerts with Redis down: {st} {body[:200]!r}")
        browser.wait("!document.getElementById('redis-banner').hidden", "Redis-down banner", 20000)
        srv.restart()
        deadline = time.time() + 15
        while time.time() < deadline:
            st, body = dash.get("/api/alerts?count=100")
            if st == 200:
                break
            time.sleep(0.1)
        C.check(st == 200 and len(json.loads(body)["alerts"]) >= 7,
                f"/api/alerts after the restart: {st} {body[:200]!r}")
        browser.wait("document.getElementById('redis-banner').hidden", "banner gone after the restart", 20000)
        # the tail reconnects too: a new alert reaches the open page
        replay(write_config("edge-3.yaml", "edge-3",
                            extra_assets=[{"name": "resolver-2", "hosts": ["10.20.2.80"], "role": "lb-mgmt"},
                                          {"name": "ws-3", "hosts": ["10.20.5.50"], "role": "fw-mgmt"}]),
               pcap, srv.unix_url)
        browser.wait("Array.from(document.querySelectorAll('#alerts td.asset')).some(t => t.textContent === 'ws-3')",
                     "an alert after the restart, through SSE")
    finally:
        dash.stop()
        srv.destroy()


HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "quote\"back\\slash'single.example"]


def test_hostile(browser):
    srv = redisharness.RedisServer().start()
    pcap = os.path.join(TMP, "hostile.pcap")
    subprocess.run([egrtest.PKTGEN, "hostile", pcap], check=True)
    base = {"home_net": ["10.20.0.0/16"],
            "assets": [{"name": "client", "hosts": ["10.20.9.9"], "role": "locked"}],
            "roles": {"locked": {"mode": "deny", "severity": "high", "allow": []}}}
    events = replay(write_config("hostile.yaml", "hostile-sensor", base=base), pcap, srv.unix_url)
    names = {e.get("dest_name") for e in events if e.get("event_type") == "alert"}
    C.check(len(names) >= 3, f"hostile: alerts on {names}")
    # Payloads that would set globals if anything were parsed as markup.
    c = srv.client()
    c("XADD", "egress:alerts", "*", "sensor", "x", "asset", "<img src=x onerror=\"window.__pwned=1\">",
      "dest_name", "<script>window.__pwned2=1</script>", "dest_ip", "81.2.69.142", "src_ip", "10.20.9.9",
      "alert_key", "injected", "signature", "<svg onload=\"window.__pwned3=1\">")
    dash = Dashboard(srv.unix_url)
    try:
        api = dash.api("/api/alerts?count=100")
        got = {a.get("dest_name") for a in api["alerts"]}
        for h in HOSTILE:
            C.check(h in got, f"hostile: /api/alerts lost the exact name {h!r}")
        browser("goto", url=dash.url + "/")
        browser.wait("document.querySelectorAll('#alerts tbody tr').length >= 4", "hostile alert rows")
        time.sleep(1.0)
        text = browser.eval("document.querySelector('#alerts').textContent")
        for h in HOSTILE + ["<script>window.__pwned2=1</script>", "<img src=x onerror=\"window.__pwned=1\">"]:
            C.check(h in text, f"hostile: the page does not show {h!r} literally")
        C.check(browser.eval("document.querySelectorAll('#alerts tbody img, #alerts tbody script, #alerts tbody svg').length") == 0,
                "hostile: markup from the wire became elements")
        pwned = browser.eval("[typeof window.__pwned, typeof window.__pwned2, typeof window.__pwned3]")
        C.check(pwned == ["undefined"] * 3, f"hostile: a payload set a global: {pwned}")
        browser("click", selector="#alerts tbody tr")
        time.sleep(1.0)
        C.check(browser.last["dialogs"] == [], f"hostile: dialogs opened: {browser.last['dialogs']}")
        C.check(browser.last["errors"] == [], f"hostile: page errors: {browser.last['errors']}")
        browser("screenshot", path=os.path.join(ARTIFACTS, "hostile.png"))
    finally:
        dash.stop()
        srv.destroy()


def main():
    browser = Browser()
    try:
        test_main_token_restart(browser)
        test_hostile(browser)
        C.check(browser.last["dialogs"] == [], f"dialogs opened: {browser.last['dialogs']}")
    finally:
        browser.close()
        shutil.rmtree(TMP, ignore_errors=True)
    C.done()


if __name__ == "__main__":
    main()
