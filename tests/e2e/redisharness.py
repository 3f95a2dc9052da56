"""Test helper for the Redis end-to-end tests: a real redis-server in a
temporary directory, a minimal binary-safe client, and a capture writer for
workloads of many flows.

A server listens on 127.0.0.1 on a free port chosen at start (never a fixed
one) and on a unix socket in its directory, runs with `--save ""
--appendonly no` unless asked to persist, and is stopped at exit (SIGTERM,
then SIGKILL), also when the test fails or is interrupted."""
import atexit
import ctypes
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

_servers = []


def _cleanup():
    for s in list(_servers):
        s.stop()


atexit.register(_cleanup)


def _on_signal(signum, frame):
    _cleanup()
    sys.exit(128 + signum)


for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_sig, _on_signal)


if not shutil.which("redis-server"):
    sys.exit("FAIL: redis-server is not installed (Debian: apt-get install redis-server); "
             "the Redis tests run against a real server")


class RedisError(Exception):
    pass


class Client:
    """RESP2 client: every argument is sent as a length-prefixed bulk string
    (bytes pass through unchanged), replies come back as bytes, ints, lists,
    None, or RedisError for an error reply."""

    def __init__(self, port=None, path=None, timeout=10):
        if path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(path)
        else:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.pos = 0

    def close(self):
        self.sock.close()

    def send(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, int):
                a = str(a).encode()
            elif isinstance(a, str):
                a = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        if self.pos:
            # Drop what was parsed only when reading more, so parsing a big
            # reply costs linear time, not a copy per element.
            self.buf = self.buf[self.pos:]
            self.pos = 0
        self.buf += chunk

    def _line(self):
        while True:
            end = self.buf.find(b"\r\n", self.pos)
            if end >= 0:
                line = self.buf[self.pos:end]
                self.pos = end + 2
                return line
            self._fill()

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest
        if t == b"-":
            return RedisError(rest.decode("utf-8", "replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) - self.pos < n + 2:
                self._fill()
            data = self.buf[self.pos:self.pos + n]
            self.pos += n + 2
            return data
        if t == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.reply() for _ in range(n)]
        raise ValueError(f"bad reply line {line!r}")

    def __call__(self, *args):
        self.send(*args)
        r = self.reply()
        if isinstance(r, RedisError):
            raise r
        return r

    # conveniences
    def xrange_all(self, key):
        """All entries of a stream as (id, {field: value}) with bytes."""
        out, start = [], b"-"
        while True:
            batch = self("XRANGE", key, start, "+", "COUNT", 1000)
            if start != b"-" and batch and batch[0][0] == start:
                batch = batch[1:]
            if not batch:
                return out
            for eid, kv in batch:
                out.append((eid, dict(zip(kv[0::2], kv[1::2]))))
            start = batch[-1][0]

    def keys(self, pattern):
        found, cursor = set(), b"0"
        while True:
            cursor, batch = self("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            found.update(batch)
            if cursor == b"0":
                return sorted(found)

    def hgetall(self, key):
        kv = self("HGETALL", key)
        return dict(zip(kv[0::2], kv[1::2]))


def _die_with_parent():
    """In the child: SIGKILL when the test process dies, even by SIGKILL
    (a ctest timeout), so no server outlives its test."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """redis-server in its own temporary directory.

    password: requirepass; acl: list of ACL rules ("user NAME on >PASS ~*
    +@all") written to an aclfile, with admin = (user, password) of one of
    them for the test's own client; persist: AOF with appendfsync always,
    so that a SIGKILLed server restarts with every acknowledged write;
    args: extra "--name value" arguments."""

    def __init__(self, password=None, acl=None, admin=None, persist=False, args=(), port=None):
        self.dir = tempfile.mkdtemp(prefix="egressd-redis-")
        self.sock_path = os.path.join(self.dir, "redis.sock")
        self.password = password
        self.acl = acl
        self.admin = admin
        self.persist = persist
        self.args = list(args)
        self.port = port
        self.proc = None
        _servers.append(self)

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    @property
    def unix_url(self):
        return f"unix://{self.sock_path}"

    def _argv(self):
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--unixsocket", self.sock_path, "--unixsocketperm", "700",
                "--dir", self.dir, "--save", "", "--daemonize", "no",
                "--logfile", os.path.join(self.dir, "redis.log"),
                "--enable-debug-command", "yes"]
        if self.persist:
            argv += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            argv += ["--appendonly", "no"]
        if self.password:
            argv += ["--requirepass", self.password]
        if self.acl:
            path = os.path.join(self.dir, "users.acl")
            with open(path, "w") as f:
                for rule in self.acl:
                    f.write(rule + "\n")
            argv += ["--aclfile", path]
        return argv + self.args

    def start(self, same_port=False):
        """Starts the server on a free port (a few tries: another process
        may take the port between the probe and the bind), or again on its
        own port after a stop or kill."""
        for attempt in range(1 if same_port else 5):
            if not same_port and (self.port is None or attempt):
                self.port = free_port()
            self.proc = subprocess.Popen(self._argv(), stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
            if self._wait_ready():
                return self
            self.stop()
        raise RuntimeError(f"redis-server did not start; log: {self.log()[-2000:]}")

    def restart(self):
        return self.start(same_port=True)

    def _wait_ready(self, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                c = self.client()
                c.close()
                return True
            except (OSError, RedisError):
                time.sleep(0.02)
        return False

    def client(self, unix=False):
        c = Client(path=self.sock_path) if unix else Client(port=self.port)
        if self.admin:
            c("AUTH", *self.admin)
        elif self.password:
            c("AUTH", self.password)
        c("PING")
        return c

    def kill(self):
        """SIGKILL: no shutdown, no save."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def destroy(self):
        self.stop()
        if self in _servers:
            _servers.remove(self)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def write_udp_flows(path, n, t0=1700000000.0, gap=0.005, dports=(53,), distinct_dst=False):
    """A pcap of n one-packet UDP flows (DNS queries from distinct source
    ports of a few clients), one every `gap` seconds of packet time, so
    records are emitted all along a replay as flows time out.
    distinct_dst: each flow to a server of its own (198.18.0.0/15), so
    every record adds destinations to the aggregates."""
    def csum(b):
        if len(b) % 2:
            b += b"\0"
        s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
        while s >> 16:
            s = (s & 0xffff) + (s >> 16)
        return ~s & 0xffff

    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for i in range(n):
            qname = b"".join(bytes([len(p)]) + p for p in (b"h%d" % i, b"example", b"net")) + b"\0"
            dns = struct.pack("!HHHHHH", i & 0xffff, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)
            sport = 1024 + i % 60000
            src = bytes([10, 1, (i // 60000) % 250, 1 + i % 5])
            dst = bytes([198, 18 + (i >> 16) % 2, (i >> 8) & 0xff, i & 0xff]) if distinct_dst \
                else bytes([192, 0, 2, 53])
            udp_len = 8 + len(dns)
            dport = dports[i % len(dports)]
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, i & 0xffff, 0, 64, 17, 0, src, dst)
            ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
            udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + dns
            frame = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + udp
            t = t0 + i * gap
            f.write(struct.pack("<IIII", int(t), int(round((t % 1) * 1e6)) % 1000000, len(frame), len(frame)))
            f.write(frame)


# ---- what egressd should have written, computed from its JSON output ----

def wire_text(b):
    """Redis holds the raw bytes of a field; the JSON holds them as text with
    every byte that is not well-formed UTF-8 as U+00XX. Maps the bytes the
    same way so the two can be compared."""
    s = b.decode("utf-8", "surrogateescape")
    return "".join(chr(ord(ch) - 0xdc00) if 0xdc80 <= ord(ch) <= 0xdcff else ch for ch in s)


def dns_names(events):
    """{flow_id: the DNS query name} from the dns events of a run (the
    flat stream's dns_query; the JSON has it in the flow's dns events)."""
    names = {}
    for e in events:
        if e.get("event_type") == "dns":
            d = e["dns"]
            if d["type"] == "query" or e["flow_id"] not in names:
                names[e["flow_id"]] = d["rrname"]
    return names


def flat_flow(e, sensor, dns=None):
    """The stream fields of a JSON flow event (docs/redis-schema.md); dns is
    dns_names() of the run."""
    f = {"sensor": sensor, "flow_id": str(e["flow_id"]), "ts": e["timestamp"],
         "src_ip": e["src_ip"], "dest_ip": e["dest_ip"], "proto": e["proto"],
         "app_proto": e["app_proto"]}
    for k in ("src_port", "dest_port", "icmp_type", "icmp_code"):
        if k in e:
            f[k] = str(e[k])
    _flow_context(e, f)
    fl = e["flow"]
    for k in ("pkts_toserver", "pkts_toclient", "bytes_toserver", "bytes_toclient"):
        f[k] = str(fl[k])
    f["start"], f["end"], f["reason"] = fl["start"], fl["end"], fl["reason"]
    f["alerted"] = "true" if fl["alerted"] else "false"
    if e.get("decision", {}).get("alert_keys"):
        f["alert_keys"] = " ".join(e["decision"]["alert_keys"])
    if fl.get("seq"):
        f["seq"] = str(fl["seq"])
    tls = e.get("tls") or e.get("quic") or {}
    for k, v in (("tls_sni", tls.get("sni")), ("http_host", e.get("http", {}).get("hostname")),
                 ("dns_query", (dns or {}).get(e["flow_id"]) if e.get("app_proto") == "dns" else None),
                 ("ja3c", tls.get("ja3", {}).get("hash"))):
        if v:
            f[k] = v
    return f


def _flow_context(e, f):
    if e.get("ndpi", {}).get("proto"):
        f["ndpi_proto"] = e["ndpi"]["proto"]
    for k in ("community_id", "dest_name", "dest_name_source"):
        if e.get(k):
            f[k] = e[k]
    if e.get("network_direction"):
        f["direction"] = e["network_direction"]
    a = e.get("asset", {})
    if a.get("name"):
        f["asset"] = a["name"]
    if a.get("role"):
        f["role"] = a["role"]
    g = e.get("geo", {})
    if "country" in g:
        f["country"] = g["country"]
    if "asn" in g:
        f["asn"] = str(g["asn"])
    if "as_org" in g:
        f["as_org"] = g["as_org"]


def flat_alert(e, sensor):
    """The stream fields of a JSON alert event."""
    a = e["alert"]
    f = {"sensor": sensor, "flow_id": str(e["flow_id"]), "ts": e["timestamp"],
         "src_ip": e["src_ip"], "dest_ip": e["dest_ip"], "proto": e["proto"],
         "app_proto": e["app_proto"], "alert_key": a["alert_key"], "category": a["category"],
         "severity": str(a["severity"]), "severity_name": a["severity_name"],
         "count": str(a["count"]), "first_seen": a["first_seen"], "last_seen": a["last_seen"],
         "update": "true" if a["update"] else "false"}
    for k in ("src_port", "dest_port", "icmp_type", "icmp_code"):
        if k in e:
            f[k] = str(e[k])
    for k in ("signature", "service", "intel_list", "guarded_service"):
        if a.get(k):
            f[k] = a[k]
    _flow_context(e, f)
    return f


def entry_text(fields):
    return {wire_text(k): wire_text(v) for k, v in fields.items()}


def bucket(ts):
    """Minute of an EVE timestamp ("2025-10-15T08:00:20.000000+0000")."""
    import calendar
    return calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) // 60


def expected_aggregates(flow_events, prefix="egress"):
    """{key: {member: value}} for the hashes, {key: {member: score}} for the
    top-destination sets and {key: set of members} for the unique
    destinations, as egressd computes them from these records."""
    hashes, tops, dests = {}, {}, {}
    for e in flow_events:
        if e.get("network_direction", "egress") != "egress":
            continue
        b = bucket(e["timestamp"])
        fl = e["flow"]
        nbytes = fl["bytes_toserver"] + fl["bytes_toclient"]
        first = fl.get("seq", 0) == 0
        asset = e.get("asset", {}).get("name") or e["src_ip"]
        dest = e.get("dest_name") or e["dest_ip"]
        dims = [("asset", asset), ("role", e.get("asset", {}).get("role")),
                ("proto", e.get("ndpi", {}).get("proto") or "Unknown"),
                ("country", e.get("geo", {}).get("country")),
                ("asn", str(e["geo"]["asn"]) if "asn" in e.get("geo", {}) else None)]
        for dim, member in dims:
            if not member:
                continue
            k = f"{prefix}:agg:{b}:bytes:{dim}"
            hashes.setdefault(k, {})
            hashes[k][member] = hashes[k].get(member, 0) + nbytes
            if first:
                k = f"{prefix}:agg:{b}:flows:{dim}"
                hashes.setdefault(k, {})
                hashes[k][member] = hashes[k].get(member, 0) + 1
        k = f"{prefix}:agg:{b}:top:{asset}"
        tops.setdefault(k, {})
        tops[k][dest] = tops[k].get(dest, 0) + nbytes
        dests.setdefault(f"{prefix}:agg:{b}:dests:{asset}", set()).add(dest)
    return hashes, tops, dests


def read_events(path):
    import json
    with open(path, "rb") as f:
        return [json.loads(line) for line in f]


def start_replay(bin_path, tmp, name, pcap, cfg, url):
    """egressd -r PCAP with a Redis URL, running: (process, JSON path). It
    dies with the test process, whatever kills that."""
    out = os.path.join(tmp, name + ".json")
    proc = subprocess.Popen([bin_path, "-r", pcap, "--json", out, "-c", cfg, "--redis", url],
                            stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
    return proc, out


def finish_replay(proc, out, timeout=120):
    """Waits for a start_replay(): (exit code, stderr text, JSON events)."""
    _, err = proc.communicate(timeout=timeout)
    events = read_events(out) if os.path.exists(out) else []
    return proc.returncode, err.decode("utf-8", "replace"), events


def redis_stats(events):
    """The Redis sink's counters of the last stats event ({} without one)."""
    st = [e for e in events if e.get("event_type") == "stats"]
    return st[-1]["stats"].get("redis", {}) if st else {}


def run_egressd(bin_path, args, timeout=120):
    """Runs egressd to the end: (exit code, stderr text, seconds)."""
    t = time.time()
    p = subprocess.run([bin_path] + args, capture_output=True, timeout=timeout)
    return p.returncode, p.stderr.decode("utf-8", "replace"), time.time() - t


class RedisCluster:
    """A local Redis Cluster: `masters` masters with `replicas` replicas each,
    every node a RedisServer on 127.0.0.1 (free client and bus ports, no
    persistence, --cluster-node-timeout node_timeout ms), joined with
    `redis-cli --cluster create ... --cluster-replicas N`. start() returns
    once every node reports cluster_state:ok and agrees on the map (each
    master with its replicas); the nodes are stopped at exit like any
    RedisServer, also when the test fails."""

    def __init__(self, masters=3, replicas=1, node_timeout=1000):
        self.nmasters = masters
        self.nreplicas = replicas
        self.node_timeout = node_timeout
        self.nodes = []

    def start(self, timeout=60):
        if not shutil.which("redis-cli"):
            raise RuntimeError("redis-cli is not installed (Debian: redis-tools)")
        for _ in range(self.nmasters * (1 + self.nreplicas)):
            bus = free_port()
            srv = RedisServer(args=["--cluster-enabled", "yes", "--cluster-port", str(bus),
                                    "--cluster-node-timeout", str(self.node_timeout),
                                    "--cluster-config-file", "nodes.conf"])
            srv.start()
            self.nodes.append(srv)
        argv = ["redis-cli", "--cluster", "create"] + [f"127.0.0.1:{n.port}" for n in self.nodes]
        argv += ["--cluster-replicas", str(self.nreplicas), "--cluster-yes"]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {p.stdout[-2000:]} {p.stderr[-2000:]}")
        self.wait_ok(timeout=timeout)
        return self

    def alive(self):
        return [n for n in self.nodes if n.proc and n.proc.poll() is None]

    def wait_ok(self, timeout=60, masters=None):
        """Until every live node says cluster_state:ok and CLUSTER SLOTS of
        each lists the same `masters` (default: as created) live masters
        covering all 16384 slots, each with its replicas (any number when
        `masters` is given: after a failover the new master has none)."""
        want = self.nmasters if masters is None else masters
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                views = []
                for n in self.alive():
                    c = n.client()
                    info = c("CLUSTER", "INFO").decode()
                    views.append((info, self._slots(c)))
                    c.close()
                ok = all("cluster_state:ok" in info for info, _ in views)
                maps = {tuple(sorted(m.items())) for _, m in views}
                alive = {n.port for n in self.alive()}
                if ok and len(maps) == 1:
                    m = views[0][1]
                    if (all(port in alive for _, _, port, _ in m.values()) and len(m) == want and sum(hi - lo + 1 for lo, hi, _, _ in m.values()) == 16384
                            and all(r >= (self.nreplicas if masters is None else 0) for _, _, _, r in m.values())):
                        return m
                last = views
            except (OSError, RedisError, ConnectionError) as e:
                last = e
            time.sleep(0.1)
        raise RuntimeError(f"cluster not ok after {timeout} s: {last}")

    @staticmethod
    def _slots(c):
        """{(lo, hi): (lo, hi, master port, replicas)} from CLUSTER SLOTS
        (one entry per range)."""
        out = {}
        for e in c("CLUSTER", "SLOTS"):
            out[(e[0], e[1])] = (e[0], e[1], e[2][1], len(e) - 3)
        return out

    def slot_map(self):
        """[(lo, hi, master port)] as a live node sees it."""
        c = self.alive()[0].client()
        m = self._slots(c)
        c.close()
        return sorted((lo, hi, port) for lo, hi, port, _ in m.values())

    def node(self, port):
        return next(n for n in self.nodes if n.port == port)

    def masters(self):
        ports = sorted({port for _, _, port in self.slot_map()})
        return [self.node(p) for p in ports]

    def keyslot(self, key):
        c = self.alive()[0].client()
        s = c("CLUSTER", "KEYSLOT", key)
        c.close()
        return s

    def master_of(self, key):
        s = self.keyslot(key)
        for lo, hi, port in self.slot_map():
            if lo <= s <= hi:
                return self.node(port)
        raise RuntimeError(f"no master for slot {s}")

    def url(self):
        return self.nodes[0].url

    def destroy(self):
        for n in self.nodes:
            n.destroy()
