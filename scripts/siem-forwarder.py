#!/usr/bin/env python3
"""siem-forwarder.py - an example downstream reader of egressd's Redis
streams (docs/redis-schema.md#downstream-readers): every sensor's flow and
alert stream, read with a consumer group on one server or across a Redis
Cluster, written as JSON lines for a SIEM shipper to pick up.

    scripts/siem-forwarder.py --redis redis://127.0.0.1:7000 --out events.jsonl [--once]

Exactly once into the output file, across crashes, without missing or
re-reading a record:

  * each stream ({prefix}:{id}:flows, {prefix}:{id}:alerts in the
    per-sensor layout; {prefix}:flows, {prefix}:alerts in the shared one)
    has a consumer group (XGROUP CREATE ... 0 MKSTREAM: from the first
    entry still in the stream);
  * entries are read with XREADGROUP ... > (new to the group), appended to
    the output with their stream and entry ID, the file is flushed and
    fsync'ed, and only then are they acknowledged (XACK);
  * on start, entries delivered to this consumer but not acknowledged (a
    crash between the write and the XACK) are read back with XREADGROUP ...
    0; those already in the output (their ID is not above the last one
    written for that stream) are acknowledged without writing them again.

A cluster is found from any node (CLUSTER SLOTS); each stream is read on
the master of its slot; MOVED refreshes the map, a lost connection (a
failover) is retried after a refresh. Standard library only: the RESP2
client is below. Exit status 0, or 1 with one line on stderr.
"""
import argparse
import json
import os
import socket
import sys
import time
import urllib.parse


class RedisError(Exception):
    pass


class Conn:
    def __init__(self, host, port, user, password, timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        if password:
            self.call(*(["AUTH", user, password] if user else ["AUTH", password]))

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _reply(self):
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
            while len(self.buf) < n + 2:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("connection closed")
                self.buf += chunk
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise ConnectionError(f"bad reply {line[:40]!r}")

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        r = self._reply()
        if isinstance(r, RedisError):
            raise r
        return r


def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xffff if crc & 0x8000 else (crc << 1) & 0xffff
    return crc


def key_slot(key):
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    return crc16(key) & 0x3fff


class Redis:
    """One server, or a cluster: commands on a key go to its slot's master."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "redis":
            raise SystemExit(f"siem-forwarder: --redis {url}: expected redis://[user:password@]host[:port]")
        self.user = urllib.parse.unquote(u.username or "")
        self.password = urllib.parse.unquote(u.password or "")
        self.seed = (u.hostname or "127.0.0.1", u.port or 6379)
        self.conns = {}
        self.cluster = False
        self.slots = []
        self.refresh()

    def conn(self, addr):
        if addr not in self.conns:
            self.conns[addr] = Conn(addr[0], addr[1], self.user, self.password)
        return self.conns[addr]

    def drop(self, addr):
        c = self.conns.pop(addr, None)
        if c:
            c.close()

    def refresh(self):
        last = None
        for addr in [self.seed] + sorted({a for _, _, a in self.slots}):
            try:
                reply = self.conn(addr).call("CLUSTER", "SLOTS")
                host = lambda h: h.decode() if h else addr[0]  # noqa: E731
                self.slots = [(r[0], r[1], (host(r[2][0]), r[2][1])) for r in reply]
                self.cluster = True
                return
            except RedisError as e:
                if "cluster support disabled" in str(e) or "NOPERM" in str(e):
                    self.cluster = False
                    return
                last = e
            except OSError as e:
                self.drop(addr)
                last = e
        raise ConnectionError(f"no node answers: {last}")

    def addr_of(self, key):
        if not self.cluster:
            return self.seed
        s = key_slot(key)
        for lo, hi, addr in self.slots:
            if lo <= s <= hi:
                return addr
        raise ConnectionError(f"slot {s} has no master")

    def call(self, key, *args, tries=30):
        """A command on key, through MOVED and failovers."""
        for attempt in range(tries):
            addr = self.addr_of(key)
            try:
                return self.conn(addr).call(*args)
            except RedisError as e:
                m = str(e)
                if m.startswith(("MOVED", "CLUSTERDOWN", "TRYAGAIN")):
                    time.sleep(0 if m.startswith("MOVED") else 0.2)
                    self.refresh()
                    continue
                raise
            except OSError:
                self.drop(addr)
                time.sleep(min(0.1 * (attempt + 1), 1.0))
                self.refresh()
        raise ConnectionError(f"gave up on {key!r} after {tries} tries")


def streams(r, prefix, layout):
    ids = r.call(f"{prefix}:sensors".encode(), "SMEMBERS", f"{prefix}:sensors")
    if layout == "shared":
        return [f"{prefix}:flows".encode(), f"{prefix}:alerts".encode()]
    return [b"%s:{%s}:%s" % (prefix.encode(), i, kind) for i in sorted(ids) for kind in (b"flows", b"alerts")]


def id_key(eid):
    ms, seq = eid.split(b"-")
    return (int(ms), int(seq))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--redis", default="redis://127.0.0.1:6379")
    ap.add_argument("--prefix", default="egress")
    ap.add_argument("--layout", choices=("auto", "shared", "per_sensor"), default="auto")
    ap.add_argument("--group", default="siem")
    ap.add_argument("--consumer", default="forwarder-1")
    ap.add_argument("--out", required=True, help="JSON lines file, appended to")
    ap.add_argument("--once", action="store_true", help="stop when every stream is read to its end")
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--crash-after", type=int, default=0,
                    help="testing: exit at once after writing this many entries, before their XACK")
    a = ap.parse_args()
    r = Redis(a.redis)
    layout = a.layout if a.layout != "auto" else ("per_sensor" if r.cluster else "shared")

    # The last entry written for each stream, from the output itself.
    last = {}
    if os.path.exists(a.out):
        with open(a.out, "rb") as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash is written again below
                k, i = e["stream"].encode(), e["id"].encode()
                if k not in last or id_key(i) > id_key(last[k]):
                    last[k] = i
        # Drop a torn last line (a crash mid-write) so the file stays JSON lines.
        with open(a.out, "rb+") as f:
            data = f.read()
            if data and not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)
    out = open(a.out, "ab")
    written = 0

    def deliver(key, entries):
        nonlocal written
        fresh, acks = [], []
        for eid, kv in entries:
            acks.append(eid)
            if kv is None or (key in last and id_key(eid) <= id_key(last[key])):
                continue  # written before a crash, or trimmed away: acknowledge only
            fields = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace")
                      for k, v in zip(kv[0::2], kv[1::2])}
            fresh.append((eid, fields))
        for eid, fields in fresh:
            out.write(json.dumps({"stream": key.decode(), "id": eid.decode(), "fields": fields},
                                 sort_keys=True).encode() + b"\n")
            last[key] = eid
            written += 1
            if a.crash_after and written >= a.crash_after:
                out.flush()
                os.fsync(out.fileno())
                os._exit(3)  # before the XACK: the next start must not write these again
        out.flush()
        os.fsync(out.fileno())
        if acks:
            r.call(key, "XACK", key, a.group, *acks)

    known = set()
    idle_rounds = 0
    while True:
        for key in streams(r, a.prefix, layout):
            if key not in known:
                try:
                    r.call(key, "XGROUP", "CREATE", key, a.group, "0", "MKSTREAM")
                except RedisError as e:
                    if "BUSYGROUP" not in str(e):
                        raise
                # What this consumer was given before a crash and did not acknowledge.
                while True:
                    rep = r.call(key, "XREADGROUP", "GROUP", a.group, a.consumer, "COUNT", a.count,
                                 "STREAMS", key, "0")
                    entries = rep[0][1] if rep else []
                    if not entries:
                        break
                    deliver(key, entries)
                known.add(key)
        got = 0
        for key in sorted(known):
            rep = r.call(key, "XREADGROUP", "GROUP", a.group, a.consumer, "COUNT", a.count,
                         "STREAMS", key, ">")
            if rep:
                got += len(rep[0][1])
                deliver(key, rep[0][1])
        if got == 0:
            idle_rounds += 1
            if a.once and idle_rounds >= 2:
                break
            time.sleep(0.2)
        else:
            idle_rounds = 0
    out.close()
    print(f"siem-forwarder: {written} entries written to {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ConnectionError, OSError, RedisError) as e:
        print(f"siem-forwarder: {e}", file=sys.stderr)
        sys.exit(1)
