"""Live-capture test helpers: a network namespace holding both ends of a
veth pair (tcpreplay writes into one end, egressd reads the other) and an
egressd -i process inside it."""
import json
import os
import re
import signal
import subprocess
import sys
import time

from egrtest import BIN


def sh(*args, check=True):
    p = subprocess.run(list(args), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {p.stderr.strip()}")
    return p


class Netns:
    """A namespace holding both ends of a veth pair, IPv6 off so the
    kernel itself sends nothing on the link."""

    def __init__(self):
        self.name = f"egr-{os.getpid()}-{int(time.time() * 1000) % 100000}"
        sh("ip", "netns", "add", self.name)
        self.ex = ["ip", "netns", "exec", self.name]
        sh(*self.ex, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
           "net.ipv6.conf.default.disable_ipv6=1")
        sh("ip", "-n", self.name, "link", "add", "tx0", "type", "veth", "peer", "name", "cap0")
        sh("ip", "-n", self.name, "link", "set", "lo", "up")
        for dev in ("tx0", "cap0"):
            sh("ip", "-n", self.name, "link", "set", dev, "mtu", "9000", "up")

    def send(self, files, topspeed=True):
        speed = ["--topspeed"] if topspeed else []
        p = sh(*self.ex, "tcpreplay", "-q", *speed, "-i", "tx0", *files)
        m = re.search(r"Actual: (\d+) packets", p.stdout)
        return int(m.group(1)) if m else -1

    def close(self):
        sh("ip", "netns", "del", self.name, check=False)


class Live:
    """egressd -i cap0 in the namespace; waits until it captures."""

    def __init__(self, ns, tmp, name, extra=(), netns_exec=True, ready=True, prefix=(), binary=BIN):
        self.out = os.path.join(tmp, name + ".json")
        self.errpath = os.path.join(tmp, name + ".err")
        self.errf = open(self.errpath, "w")
        args = [binary, "-i", "cap0", "--json", self.out, "--stats-interval", "0"] + list(extra)
        self.ns = ns
        self.p = subprocess.Popen(ns.ex + list(prefix) + args, stderr=self.errf)
        self.port = None
        if ready:
            self.wait_for("capturing on", 20)
            m = re.search(r"metrics on .*, port (\d+)", self.err())
            self.port = int(m.group(1)) if m else None

    def err(self):
        with open(self.errpath) as f:
            return f.read()

    def wait_for(self, text, secs):
        end = time.time() + secs
        while time.time() < end:
            if text in self.err():
                return True
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"egressd never said {text!r}: rc={self.p.poll()} {self.err()!r}")

    def events(self):
        with open(self.out) as f:
            return [json.loads(line) for line in f]

    def wait_events(self, pred, secs=10):
        end = time.time() + secs
        while time.time() < end:
            try:
                ev = self.events()
            except (OSError, ValueError):
                ev = []
            if any(pred(e) for e in ev):
                return ev
            time.sleep(0.1)
        return self.events()

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        self.errf.close()
        return rc

    def get(self, path):
        """GET on the metrics port, from inside the namespace (egressd
        listens on the namespace's 127.0.0.1): (status, body)."""
        code = ("import json, urllib.request, urllib.error, sys\n"
                "try:\n"
                "    r = urllib.request.urlopen(sys.argv[1], timeout=5)\n"
                "    print(json.dumps([r.status, r.read().decode()]))\n"
                "except urllib.error.HTTPError as e:\n"
                "    print(json.dumps([e.code, e.read().decode()]))\n")
        p = subprocess.run(self.ns.ex + [sys.executable, "-c", code,
                                         f"http://127.0.0.1:{self.port}{path}"],
                           capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            return None, p.stderr
        return tuple(json.loads(p.stdout))


