"""The echo ceiling on an evented frame path: no greenlet per connection once it is open.

echo_server.py keeps, for every connection, a greenlet blocked in gevent-websocket's frame
reader, with its saved stack, its pywsgi handler, WSGI environ and read buffer. This peer
speaks exactly what that one speaks (echo_server.answer: the Engine.IO 4 open packet, the
namespace connect, pings, acks and the room copy), but after the HTTP upgrade the connection's
greenlet ends, and the connection is one small object, one event-loop watcher and the kernel's
socket:

- The watcher (libev, through gevent's loop) calls back when bytes arrive. The callback reads
  what is there without blocking, parses every complete frame (unmasked by wsaccel's
  XorMaskerSimple, text checked as UTF-8 by a strict decode, the one Engine.IO needs anyway)
  and keeps an incomplete one for the next call.
- Each text message goes to the handler: inline, in the callback, by default (the echo's
  handler never blocks); or, with --pool N, in a greenlet from a bounded gevent Pool that
  runs only while its connection has packets waiting, one at a time and in order, the way
  HomeApp runs its handlers (a handler there may wait on Redis). When every greenlet of the
  pool is busy, a connection waits for the next one to finish; one that has MAX_QUEUED
  packets waiting is not read from until they are handled.
- Writes never block: frames queue on the connection and leave in one system call when the
  event loop next runs (every connection written to in one turn of the loop, in one pass);
  what the kernel does not take waits for a write watcher, made only then.

    python bench/peers/evented_echo.py --port 5084 [--pool 64] [--nodelay]
"""
import argparse
import base64
import hashlib
import os
import socket
import struct
from collections import deque
from urllib.parse import parse_qs, urlsplit

import gevent
from gevent import Timeout
from gevent.pool import Pool
from gevent.server import StreamServer
from wsaccel.xormask import XorMaskerSimple

# the same protocol as the ceiling, from its one copy (this file's folder is on sys.path)
from echo_server import OPEN, PING_INTERVAL, answer

gevent.config.track_greenlet_tree = False  # as HomeApp: no spawning stack kept per greenlet

WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_REQUEST_HEAD = 16384  # bytes
HANDSHAKE_TIMEOUT = 10  # seconds for a client to send its upgrade request
MAX_MESSAGE = 1000000  # bytes: the maxPayload the open packet announces
MAX_QUEUED = 64  # packets waiting for a pool greenlet before the connection is not read from
BAD_REQUEST = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 25\r\n"
               b"Connection: close\r\n\r\nwebsocket transport only\n")
SWITCHING = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Accept: %s\r\n\r\n")

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0, 1, 2, 8, 9, 10
PROTOCOL_ERROR, INVALID_TEXT, TOO_BIG = 1002, 1007, 1009

LOOP = gevent.get_hub().loop
# Every read lands here first, then only what arrived is copied out: the event loop runs one
# callback at a time, so one buffer serves every connection.
_scratch = bytearray(65536)
_scratch_view = memoryview(_scratch)

rooms = {}  # room id -> list of Connection
connections = set()
pool = None  # a gevent Pool with --pool; None: handlers run inline in the read callback
nodelay = False
_to_flush = []  # connections written to since the event loop last flushed
_waiting = deque()  # connections with packets and no pool greenlet free for them


class ProtocolError(Exception):
    """A frame this server refuses; `code` is the websocket close code to answer with."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def frame(opcode, payload):
    """A final, unmasked frame as the server writes it."""
    size = len(payload)
    if size < 126:
        return bytes((0x80 | opcode, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, size) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, size) + payload


class Connection:
    """One open websocket, at rest between callbacks; nothing waits on it."""

    __slots__ = ("sock", "sid", "room_id", "members", "reader", "writer", "unparsed", "fragments",
                 "pending", "flush_due", "queue", "busy", "closed")

    def __init__(self, sock, room_id):
        self.sock = sock  # non-blocking, of the standard library: gevent's would add its own watchers
        self.sid = os.urandom(8).hex()
        self.room_id = room_id
        self.members = rooms.setdefault(room_id, []) if room_id else []
        self.reader = LOOP.io(sock.fileno(), 1)
        self.writer = None  # a write watcher while the kernel's send buffer is full
        self.unparsed = b""  # the start of a frame that has not fully arrived
        self.fragments = None  # [opcode, payload, ...] of a fragmented message in progress
        self.pending = None  # frames to write when the event loop next runs
        self.flush_due = False  # in _to_flush
        self.queue = None  # with a pool: packets waiting for the handler
        self.busy = False  # with a pool: a greenlet has this connection's packets, or will
        self.closed = False

    def open(self, early):
        """Start serving: the open packet, then reading (first whatever came with the request)."""
        connections.add(self)
        self.members.append(self)
        self.send(OPEN % self.sid)
        self.reader.start(self._on_readable)
        if early:
            self._received(early)

    # ------------------------------------------------------------ reading

    def _on_readable(self):
        """Runs in the event loop: one non-blocking read of what the kernel holds."""
        try:
            size = self.sock.recv_into(_scratch)
        except BlockingIOError:
            return
        except OSError:
            self.close()
            return
        if not size:  # the client closed its side
            self.close()
            return
        view = _scratch_view[:size]
        self._received(self.unparsed + view if self.unparsed else view.tobytes())

    def _received(self, data):
        """Hand every complete frame in `data` on; keep an incomplete one for the next read."""
        pos, end = 0, len(data)
        try:
            while end - pos >= 2 and not self.closed:
                first, second = data[pos], data[pos + 1]
                size, head = second & 0x7F, pos + 2
                if size == 126:
                    if end - head < 2:
                        break
                    size, head = int.from_bytes(data[head:head + 2], "big"), head + 2
                elif size == 127:
                    if end - head < 8:
                        break
                    size, head = int.from_bytes(data[head:head + 8], "big"), head + 8
                if not second & 0x80 or first & 0x70:  # unmasked, or an extension none agreed
                    raise ProtocolError(PROTOCOL_ERROR)
                if size > MAX_MESSAGE:
                    raise ProtocolError(TOO_BIG)
                start = head + 4
                if end - start < size:
                    break
                payload = XorMaskerSimple(data[head:start]).process(data[start:start + size])
                pos = start + size
                self._frame(first, payload)
        except ProtocolError as exc:
            self.close(exc.code.to_bytes(2, "big"))
            return
        self.unparsed = data[pos:] if pos < end else b""

    def _frame(self, first, payload):
        """One unmasked frame. Raises ProtocolError for a frame out of order or malformed, or
        text that is not UTF-8."""
        opcode = first & 0x0F
        if first & 0x80 and opcode == TEXT and self.fragments is None:  # nearly every frame
            self._message(payload)
            return
        if opcode >= CLOSE:  # control frames are never fragmented and carry at most 125 bytes
            if not first & 0x80 or len(payload) > 125:
                raise ProtocolError(PROTOCOL_ERROR)
            if opcode == PING:
                self._write_later(frame(PONG, payload))
            elif opcode == CLOSE:
                self.close(payload[:2])  # the client's code back, as the close handshake asks
            elif opcode != PONG:
                raise ProtocolError(PROTOCOL_ERROR)
            return
        if opcode == CONTINUATION and self.fragments is not None:
            self.fragments.append(payload)
            if sum(len(part) for part in self.fragments[1:]) > MAX_MESSAGE:
                raise ProtocolError(TOO_BIG)
        elif opcode in (TEXT, BINARY) and self.fragments is None:
            self.fragments = [opcode, payload]
        else:
            raise ProtocolError(PROTOCOL_ERROR)
        if first & 0x80:
            opcode, *parts = self.fragments
            self.fragments = None
            if opcode == TEXT:
                self._message(b"".join(parts))
            # a binary message is an Engine.IO attachment, which the ceiling drops too

    def _message(self, payload):
        """A complete text message: to the handler, now or through the pool."""
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(INVALID_TEXT) from None
        if pool is None:
            answer(self, self.members, self.sid, text)
            return
        queue = self.queue
        if queue is None:
            queue = self.queue = deque()
        queue.append(text)
        if len(queue) == MAX_QUEUED:
            self.reader.stop()  # the greenlet that empties the queue starts it again
        if not self.busy:
            self.busy = True
            if pool.full():  # Pool.spawn would wait for a slot, and the event loop must not
                _waiting.append(self)
            else:
                pool.spawn(_handle_queued, self)

    # ------------------------------------------------------------ writing

    def send(self, text, copies=1):
        """Queue `copies` text frames of `text`, written when the event loop next runs. Never
        blocks, never raises: a closed connection drops them. (echo_server.Peer's signature.)"""
        if not self.closed:
            self._write_later(frame(TEXT, text.encode()), copies)

    def _write_later(self, data, copies=1):
        if self.pending is None:
            self.pending = []
        self.pending += (data,) * copies
        if not self.flush_due:
            if not _to_flush:
                LOOP.run_callback(_flush_all)
            _to_flush.append(self)
            self.flush_due = True

    def flush(self):
        """Runs in the event loop: write what the kernel takes now. What it does not take waits
        for the write watcher, which calls this again."""
        if self.closed or not self.pending:
            return
        data = b"".join(self.pending)
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:  # the client is gone
            self.close()
            return
        if sent == len(data):
            self.pending = None
            if self.writer is not None:
                self.writer.close()
                self.writer = None
            return
        self.pending = [data[sent:]]
        if self.writer is None:
            self.writer = LOOP.io(self.sock.fileno(), 2)
            self.writer.start(self.flush)

    # ------------------------------------------------------------ the end

    def close(self, close_payload=None):
        """End the connection, once: a close frame with `close_payload` first if given (the
        status code, written now if the kernel takes it), then the descriptor."""
        if self.closed:
            return
        if close_payload is not None:
            if self.writer is None:  # else frames are already waiting for the kernel: it would not take this
                self._write_later(frame(CLOSE, close_payload))
                self.flush()
        self.closed = True
        self.reader.close()
        if self.writer is not None:
            self.writer.close()
        self.sock.close()
        self.pending = self.queue = None
        connections.discard(self)
        self.members.remove(self)
        if self.room_id and not self.members:
            rooms.pop(self.room_id, None)


def _flush_all():
    """Runs in the event loop once per turn that wrote anything: each connection's frames in
    one system call."""
    batch = _to_flush[:]
    _to_flush.clear()
    for conn in batch:
        conn.flush_due = False
        if conn.writer is None:  # else its write watcher is waiting for the kernel
            conn.flush()


def _handle_queued(conn):
    """In a pool greenlet: one connection's packets in order, then those of the connections
    that waited for a free greenlet; the greenlet ends when none is left."""
    while conn is not None:
        queue = conn.queue
        while queue and not conn.closed:
            answer(conn, conn.members, conn.sid, queue.popleft())
        conn.queue = None  # a deque is 600 bytes: an idle connection keeps none
        conn.busy = False
        if not conn.closed and not conn.reader.active:
            conn.reader.start(conn._on_readable)
        conn = _waiting.popleft() if _waiting else None


def _ping_all():
    """Engine.IO 4: the server pings; a client that hears nothing for 45 s hangs up."""
    for conn in list(connections):
        conn.send("2")


# ---------------------------------------------------------------- the upgrade, in a greenlet

def read_request(sock):
    """The request target, its headers (names in lower case) and any bytes after them.
    Raises ValueError for a head that is too long, malformed or cut short, OSError if the
    connection failed."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_REQUEST_HEAD:
            raise ValueError("request head too long")
        chunk = sock.recv(4096)
        if not chunk:
            raise ValueError("connection closed inside the request head")
        data += chunk
    head, early = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if method != "GET":
        raise ValueError("not a GET")
    return target, headers, early


def upgrade(sock, address):
    """The connection's greenlet, its only one: answer the websocket upgrade, hand the
    descriptor to a Connection, and end."""
    try:
        with Timeout(HANDSHAKE_TIMEOUT):
            target, headers, early = read_request(sock)
            key = headers.get("sec-websocket-key")
            if headers.get("upgrade", "").lower() != "websocket" or not key:
                sock.sendall(BAD_REQUEST)
                return
            accept = base64.b64encode(hashlib.sha1(key.encode() + WEBSOCKET_GUID).digest())
            sock.sendall(SWITCHING % accept)
    except (Timeout, ValueError, OSError):
        return  # the server closes the socket when this returns
    if nodelay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    room_id = parse_qs(urlsplit(target).query).get("room", [None])[0]
    plain = socket.socket(fileno=sock.detach())  # gevent's socket lets go of it and its watchers
    plain.setblocking(False)
    Connection(plain, room_id).open(early)


def main():
    global pool, nodelay
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5084)
    parser.add_argument("--pool", type=int, default=0, metavar="N",
                        help="handle packets in greenlets from a pool of N (default: inline)")
    parser.add_argument("--nodelay", action="store_true", help="set TCP_NODELAY on accepted sockets")
    args = parser.parse_args()
    pool = Pool(args.pool) if args.pool else None
    nodelay = args.nodelay
    LOOP.timer(PING_INTERVAL, PING_INTERVAL).start(_ping_all)
    server = StreamServer((args.host, args.port), upgrade)
    mode = f"a pool of {args.pool} greenlets" if pool is not None else "inline"
    print(f"evented echo on http://{args.host}:{args.port}/, handlers {mode}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
