"""Test helper: the receiving end of an AMQP 0-9-1 connection, enough of
a broker for a client that only publishes (FEVER's submitters), so a test
can read what such a client sends without a RabbitMQ server.

It listens on 127.0.0.1 on a free port, answers the connection handshake
(Connection.Start/Tune/Open, Channel.Open, Exchange.Declare, Confirm.Select,
Channel/Connection.Close) and keeps every Basic.Publish as
(exchange, routing key, headers-free body), gunzipped when the body is gzip.
Heartbeats are turned off in Tune. Written from the AMQP 0-9-1
specification (frame: type, channel, size, payload, 0xCE; method: class,
method, arguments)."""
import gzip
import socket
import struct
import threading

FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = 0xCE


def _shortstr(s):
    b = s.encode()
    return struct.pack("B", len(b)) + b


def _longstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(b)) + b


class AMQPSink:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.messages = []  # (exchange, routing_key, body bytes)
        self.errors = []
        self.connections = 0  # handshakes completed (Connection.Open answered)
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self):
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def stop(self):
        self.stopped = True
        try:
            self.sock.close()
        except OSError:
            pass

    def bodies(self, exchange):
        with self.lock:
            return [b for e, _, b in self.messages if e == exchange]

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn, n):
        buf = b""
        while len(buf) < n:
            d = conn.recv(n - len(buf))
            if not d:
                raise EOFError
            buf += d
        return buf

    @staticmethod
    def _send(conn, ftype, channel, payload):
        conn.sendall(struct.pack(">BHI", ftype, channel, len(payload)) + payload + bytes([FRAME_END]))

    def _method(self, conn, channel, cls, meth, args=b""):
        self._send(conn, FRAME_METHOD, channel, struct.pack(">HH", cls, meth) + args)

    def _serve(self, conn):
        try:
            if self._read(conn, 8) != b"AMQP\x00\x00\x09\x01":
                self.errors.append("not an AMQP 0-9-1 protocol header")
                return
            # Connection.Start: version 0-9, no server properties, PLAIN, en_US.
            self._method(conn, 0, 10, 10, b"\x00\x09" + struct.pack(">I", 0) + _longstr("PLAIN AMQPLAIN")
                         + _longstr("en_US"))
            pending = {}  # channel -> [exchange, routing key, size, body]
            while True:
                ftype, channel, size = struct.unpack(">BHI", self._read(conn, 7))
                payload = self._read(conn, size)
                if self._read(conn, 1)[0] != FRAME_END:
                    self.errors.append("bad frame end")
                    return
                if ftype == FRAME_METHOD:
                    cls, meth = struct.unpack(">HH", payload[:4])
                    args = payload[4:]
                    if (cls, meth) == (10, 11):    # Start-Ok -> Tune: no heartbeats
                        self._method(conn, 0, 10, 30, struct.pack(">HIH", 0, 131072, 0))
                    elif (cls, meth) == (10, 40):  # Open -> Open-Ok
                        self._method(conn, 0, 10, 41, _shortstr(""))
                        with self.lock:
                            self.connections += 1
                    elif (cls, meth) == (10, 50):  # Close -> Close-Ok
                        self._method(conn, 0, 10, 51)
                        return
                    elif (cls, meth) == (20, 10):  # Channel.Open -> Open-Ok
                        self._method(conn, channel, 20, 11, _longstr(""))
                    elif (cls, meth) == (20, 40):  # Channel.Close -> Close-Ok
                        self._method(conn, channel, 20, 41)
                    elif (cls, meth) == (40, 10):  # Exchange.Declare -> Declare-Ok
                        self._method(conn, channel, 40, 11)
                    elif (cls, meth) == (85, 10):  # Confirm.Select -> Select-Ok
                        self._method(conn, channel, 85, 11)
                    elif (cls, meth) == (60, 40):  # Basic.Publish: reserved, exchange, key
                        n = args[2]
                        exchange = args[3:3 + n].decode()
                        m = args[3 + n]
                        key = args[4 + n:4 + n + m].decode()
                        pending[channel] = [exchange, key, None, b""]
                elif ftype == FRAME_HEADER and channel in pending:
                    pending[channel][2] = struct.unpack(">Q", payload[4:12])[0]
                    if pending[channel][2] == 0:
                        self._done(pending.pop(channel))
                elif ftype == FRAME_BODY and channel in pending:
                    p = pending[channel]
                    p[3] += payload
                    if p[2] is not None and len(p[3]) >= p[2]:
                        self._done(pending.pop(channel))
        except (EOFError, OSError):
            return
        finally:
            conn.close()

    def _done(self, p):
        body = p[3]
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        with self.lock:
            self.messages.append((p[0], p[1], body))
