"""Shared helpers for the end-to-end tests: where things are, running
egressd, reading its JSON lines. Paths come from the environment ctest sets
(tests/tests.cmake); ../shared is beside the repository root."""
import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("EGRESSD_SRC") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.environ.get("EGRESSD_SHARED") or os.path.abspath(os.path.join(SRC, "..", "shared"))
BIN = os.environ.get("EGRESSD_BIN") or os.path.join(SRC, "build", "egressd")
PKTGEN = os.environ.get("EGRESSD_PKTGEN") or os.path.join(SRC, "build", "egressd-pktgen")
PCAPS = os.path.join(SHARED, "pcaps")


def temp_dir(prefix="egressd-test-"):
    """A temporary directory removed when the test exits (kept when
    EGRESSD_KEEP_TMP is set, to look at a failure)."""
    path = tempfile.mkdtemp(prefix=prefix)
    if not os.environ.get("EGRESSD_KEEP_TMP"):
        atexit.register(shutil.rmtree, path, True)
    return path


def debian_base(build=None):
    """A Debian 12 root made by `debootstrap --variant=minbase bookworm`,
    kept in the build directory between runs (image-base/) and made once
    even when several tests want it at the same time (a lock file). Needs
    root and Debian's mirror. Returns its path; callers copy it, never
    change it."""
    import fcntl
    build = build or os.environ.get("EGRESSD_BUILD") or os.path.dirname(BIN)
    base = os.path.join(build, "image-base")
    with open(os.path.join(build, "image-base.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(base, ".complete")):
            shutil.rmtree(base, ignore_errors=True)
            p = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", base,
                                "http://deb.debian.org/debian"], capture_output=True, text=True, timeout=1200)
            if p.returncode != 0:
                shutil.rmtree(base, ignore_errors=True)
                raise RuntimeError(f"debootstrap: rc={p.returncode} {p.stderr[-1000:]}")
            open(os.path.join(base, ".complete"), "w").close()
    return base


def need_shared(*parts):
    """A path in the test corpus. Without any corpus the test is skipped
    (exit 77, ctest's SKIP_RETURN_CODE); a corpus lacking this file fails
    it."""
    path = os.path.join(SHARED, *parts)
    if not os.path.isdir(SHARED):
        print(f"SKIP: the test corpus {SHARED} is absent (scripts/get-test-corpus.py fetches it)")
        sys.exit(77)
    if not os.path.exists(path):
        sys.exit(f"FAIL: {path} is missing from the test corpus (scripts/get-test-corpus.py --check "
                 f"{SHARED} says what else is)")
    return path


def write_file(directory, name, text):
    """Writes text to directory/name; returns the path."""
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def run(args, stdin=None, timeout=600):
    """Runs egressd with args; returns (exit code, stdout bytes, stderr text)."""
    p = subprocess.run([BIN] + args, input=stdin, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def replay(files, extra=(), timeout=600):
    """Replays files, returns (exit code, list of events, stderr)."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "eve.json")
        args = []
        for f in files:
            args += ["-r", f]
        rc, _, err = run(args + ["--json", out] + list(extra), timeout=timeout)
        events = []
        if os.path.exists(out):
            with open(out, "rb") as fh:
                for n, line in enumerate(fh, 1):
                    try:
                        events.append(json.loads(line))
                    except ValueError as e:
                        raise AssertionError(f"{files}: output line {n} is not JSON: {e}: {line[:200]!r}")
        return rc, events, err


def flows(events):
    return [e for e in events if e.get("event_type") == "flow"]


def dns_queries(events):
    """flow_id -> the name its DNS query asked for (from the dns events)."""
    return {e["flow_id"]: e["dns"]["rrname"] for e in events
            if e.get("event_type") == "dns" and e.get("dns", {}).get("type") == "query"
            and "rrname" in e["dns"]}


class Checker:
    """Collects failures so a test reports all of them, then exits non-zero."""

    def __init__(self, name):
        self.name = name
        self.failures = []
        self.checks = 0

    def check(self, cond, msg):
        self.checks += 1
        if not cond:
            self.failures.append(msg)
        return cond

    def done(self):
        for f in self.failures[:50]:
            print("FAIL:", f)
        if len(self.failures) > 50:
            print(f"... and {len(self.failures) - 50} more")
        print(f"{self.name}: {self.checks - len(self.failures)} passed, {len(self.failures)} failed")
        sys.exit(1 if self.failures or self.checks == 0 else 0)


class Netns:
    """A network namespace named after this test's PID (tests run side by
    side) holding both ends of a veth pair, tx0 and cap0, IPv6 off so the
    kernel itself sends nothing on the link. send() replays captures into
    tx0 with tcpreplay; capture on cap0 inside `ex`. Needs root."""

    def __init__(self, tag="ns"):
        self.name = f"egr-{tag}-{os.getpid()}-{int(time.time() * 1000) % 100000}"
        self._sh("ip", "netns", "add", self.name)
        atexit.register(self.close)
        self.ex = ["ip", "netns", "exec", self.name]
        self._sh(*self.ex, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                 "net.ipv6.conf.default.disable_ipv6=1")
        self._sh("ip", "-n", self.name, "link", "add", "tx0", "type", "veth", "peer", "name", "cap0")
        self._sh("ip", "-n", self.name, "link", "set", "lo", "up")
        for dev in ("tx0", "cap0"):
            self._sh("ip", "-n", self.name, "link", "set", dev, "mtu", "9000", "up")

    @staticmethod
    def _sh(*args, check=True):
        p = subprocess.run(list(args), capture_output=True, text=True)
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {p.stderr.strip()}")
        return p

    def send(self, files, rate=("--topspeed",)):
        """Packets tcpreplay says it sent (-1 if it does not say)."""
        p = self._sh(*self.ex, "tcpreplay", "-q", *rate, "-i", "tx0", *files)
        m = re.search(r"Actual: (\d+) packets", p.stdout)
        return int(m.group(1)) if m else -1

    def close(self):
        self._sh("ip", "netns", "del", self.name, check=False)
