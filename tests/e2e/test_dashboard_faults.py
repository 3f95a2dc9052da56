#!/usr/bin/env python3
"""egressd-dashboard under hostile clients (docs/dashboard.md#limits), with
a real redis-server behind it.

  slowloris  300 clients that trickle header bytes (and come back when cut
             off) against a dashboard limited to 256 descriptors: /healthz
             answers every probe within 1 s, the dashboard uses under 3 CPU-s
             and writes under 1 MB of log, and says it pushed connections out
  streams    event streams (never pushed out) get half the cap at most
  deadline   one trickling client is cut off after --request-timeout even
             though it never stops sending; a client that sends its request
             whole on a kept-alive connection is not
  paths      a NUL or another control byte in the decoded path is a 400
             (/app.js%00/../../etc/passwd used to serve app.js)
  token      with a token, /healthz is 401 without it before anything else
  warning    listening beyond loopback with no token says so; with a token,
             or on 127.0.0.1, it does not

Takes about 25 s."""
import json
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import egrtest  # noqa: E402
import redisharness  # noqa: E402

DASH = os.path.join(os.path.dirname(egrtest.BIN), "egressd-dashboard")
if not os.access(DASH, os.X_OK):
    sys.exit(f"FAIL: missing {DASH} (build the egressd-dashboard target)")

C = egrtest.Checker("test_dashboard_faults")
TMP = egrtest.temp_dir("egressd-dashfault-")
CLK = os.sysconf("SC_CLK_TCK")


class Dashboard:
    def __init__(self, redis_url, extra=(), nofile=None, listen_host="127.0.0.1", token=None):
        self.port = redisharness.free_port()
        argv = [DASH, "--redis", redis_url, "--listen", f"{listen_host}:{self.port}"] + list(extra)
        if token:
            argv += ["--token", token]
        self.log = os.path.join(TMP, f"dashboard-{self.port}.log")
        self.logf = open(self.log, "w")
        env = dict(os.environ)
        env.pop("EGRESSD_DASHBOARD_TOKEN", None)

        def pre():
            redisharness._die_with_parent()
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.proc = subprocess.Popen(argv, stdout=self.logf, stderr=self.logf, env=env,
                                     preexec_fn=pre)
        deadline = time.time() + 15
        while time.time() < deadline:
            st, _ = self.get("/healthz", token=token)
            if st in (200, 401):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"dashboard did not come up: {self.text_log()}")

    def get(self, path, token=None, timeout=5):
        """(status, body) of a GET sent byte for byte as given, or (None, b"")."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
                hdr = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                if token:
                    hdr += f"Authorization: Bearer {token}\r\n"
                s.sendall((hdr + "\r\n").encode())
                data = b""
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    data += b
        except OSError:
            return None, b""
        head, _, body = data.partition(b"\r\n\r\n")
        try:
            return int(head.split()[1]), body
        except (IndexError, ValueError):
            return None, b""

    def cpu_s(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK  # utime, stime

    def text_log(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        C.check(self.proc.returncode == 0, f"dashboard exit {self.proc.returncode} on SIGTERM")


class Trickler:
    """n connections that each send a request line and then one header byte
    every `gap` seconds, never finishing; a connection that is closed is
    opened again. Counts how many times each was cut off."""

    def __init__(self, port, n, gap=0.5):
        self.port, self.n, self.gap = port, n, gap
        self.sel = selectors.DefaultSelector()
        self.socks = {}
        self.cut = 0
        for i in range(n):
            self._open(i)

    def _open(self, i):
        try:
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.port))
        except OSError:
            return
        self.socks[i] = [s, 0, time.time(), time.time()]
        self.sel.register(s, selectors.EVENT_READ, i)

    def _drop(self, i):
        s = self.socks.pop(i)[0]
        self.sel.unregister(s)
        s.close()
        self.cut += 1

    def step(self, budget):
        end = time.time() + budget
        while time.time() < end:
            for key, _ in self.sel.select(timeout=0.05):
                i = key.data
                try:
                    if key.fileobj.recv(4096):
                        continue
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                self._drop(i)
                self._open(i)
            now = time.time()
            for i, st in list(self.socks.items()):
                if now - st[3] < self.gap:
                    continue
                st[3] = now
                msg = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" if st[1] == 0 else b"X"
                try:
                    st[0].send(msg)
                    st[1] += 1
                except BlockingIOError:
                    pass
                except OSError:
                    self._drop(i)
                    self._open(i)
            for i in range(self.n):
                if i not in self.socks:
                    self._open(i)

    def close(self):
        for s, *_ in self.socks.values():
            s.close()
        self.sel.close()


redis = redisharness.RedisServer()
redis.start()

# ---- slowloris under 256 descriptors ----------------------------------------
d = Dashboard(redis.url, nofile=256)
cpu0 = d.cpu_s()
tr = Trickler(d.port, 300)
worst, probes, failed = 0.0, 0, 0
t_end = time.time() + 15
while time.time() < t_end:
    tr.step(0.4)
    t0 = time.time()
    st, body = d.get("/healthz", timeout=1)
    dt = time.time() - t0
    probes += 1
    worst = max(worst, dt)
    if st != 200 or dt > 1.0:
        failed += 1
st, body = d.get("/healthz", timeout=1)
conns = json.loads(body).get("connections", {}) if st == 200 else {}
tr.close()
cpu = d.cpu_s() - cpu0
d.stop()
logsize = os.path.getsize(d.log)
C.check(failed == 0, f"slowloris: {failed} of {probes} /healthz probes failed or took over 1 s "
        f"(worst {worst:.2f} s)")
C.check(cpu < 3.0, f"slowloris: the dashboard used {cpu:.2f} CPU-s (want < 3)")
C.check(logsize < 1 << 20, f"slowloris: {logsize} bytes of log (want < 1 MB)")
C.check(conns.get("max", 999) <= 256 - 48 and conns.get("pushed_out", 0) > 0,
        f"slowloris: connections {conns} (want a cap under the limit and pushed-out ones)")
C.check(tr.cut > 0, "slowloris: no trickling connection was ever cut off")
C.check("Too many open files" not in d.text_log() or logsize < 4096,
        f"slowloris: log {d.text_log()[-500:]!r}")
print(f"slowloris: {probes} probes, worst {worst:.3f} s, {cpu:.2f} CPU-s, {logsize} B log, "
      f"{tr.cut} cut off, {conns}")

# ---- the request deadline -----------------------------------------------------
d = Dashboard(redis.url, extra=["--request-timeout", "2"])
tr = Trickler(d.port, 1, gap=0.3)
t0 = time.time()
while tr.cut == 0 and time.time() - t0 < 8:
    tr.step(0.1)
took = time.time() - t0
tr.close()
C.check(tr.cut == 1 and 1.5 <= took <= 6, f"deadline: trickler cut after {took:.1f} s "
        f"(cut {tr.cut}, want 2 s + a sweep)")
# A kept-alive connection sending whole requests, slower than the deadline
# in total but each in time, keeps working.
with socket.create_connection(("127.0.0.1", d.port), timeout=5) as s:
    ok = 0
    for i in range(3):
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"}" not in data:
            b = s.recv(4096)
            if not b:
                break
            data += b
        ok += data.startswith(b"HTTP/1.1 200")
        time.sleep(1.0)
C.check(ok == 3, f"deadline: {ok} of 3 requests answered on a kept-alive connection")

# ---- event streams take at most half the cap ------------------------------------
d.stop()
d = Dashboard(redis.url, extra=["--max-connections", "6"])
streams, codes = [], []
for i in range(4):
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    s.sendall(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
    codes.append(s.recv(64)[:12])
    streams.append(s)
C.check(codes == [b"HTTP/1.1 200"] * 3 + [b"HTTP/1.1 503"],
        f"streams: answers {codes} (want 3 streams of a cap of 6, then 503)")
st, body = d.get("/healthz")
C.check(st == 200, f"streams: /healthz beside 3 streams -> {st}")
for s in streams:
    s.close()

# ---- paths with control bytes ----------------------------------------------------
for path, want in (("/app.js", 200), ("/app.js%00/../../etc/passwd", 400), ("/app.js%00", 400),
                   ("/index%01.html", 400), ("/api/%0ahealthz", 400), ("/%7f", 400),
                   ("/../etc/passwd", 404)):
    st, body = d.get(path)
    C.check(st == want, f"paths: {path} -> {st} (want {want}) {body[:80]!r}")
d.stop()

# ---- the token, and the warning --------------------------------------------------
d = Dashboard(redis.url, token="s3cret")
st, _ = d.get("/healthz")
C.check(st == 401, f"token: /healthz without it -> {st}")
st, _ = d.get("/healthz", token="s3cret")
C.check(st == 200, f"token: /healthz with it -> {st}")
d.stop()
C.check("warning" not in d.text_log(), f"warning on loopback with a token: {d.text_log()!r}")
for token, want in ((None, True), ("s3cret", False)):
    d = Dashboard(redis.url, listen_host="0.0.0.0", token=token)
    d.stop()
    said = "warning: listening on 0.0.0.0 with no token" in d.text_log()
    C.check(said == want, f"warning: 0.0.0.0 token={token}: said={said} log {d.text_log()!r}")
d = Dashboard(redis.url)
d.stop()
C.check("warning" not in d.text_log(), f"warning on 127.0.0.1: {d.text_log()!r}")

redis.destroy()
C.done()
