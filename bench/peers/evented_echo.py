"""The echo ceiling on an evented frame path: no greenlet per connection once it is open.

echo_server.py keeps, for every connection, a greenlet blocked in gevent-websocket's frame
reader, with its saved stack, its pywsgi handler, WSGI environ and read buffer. This peer
speaks exactly what that one speaks (echo_server.answer: the Engine.IO 4 open packet, the
namespace connect, pings, acks and the room copy), but after the HTTP upgrade the connection's
greenlet ends, and the connection is the product's frames.Connection (one small object, one
event-loop watcher and the kernel's socket: homeapp/transport/frames.py reads, parses, writes
and closes) with an Echo as its listener:

- Each text message goes to the handler: inline, in the read callback, by default (the echo's
  handler never blocks); or, with --pool N, in a greenlet from a bounded gevent Pool that
  runs only while its connection has packets waiting, one at a time and in order, the way
  HomeApp runs its handlers (a handler there may wait on Redis). When every greenlet of the
  pool is busy, a connection waits for the next one to finish; one that has MAX_QUEUED
  packets waiting is not read from until they are handled.
- Binary messages (Engine.IO attachments) are dropped, as the ceiling drops them.

    python bench/peers/evented_echo.py --port 5084 [--pool 64] [--nodelay]
"""
import argparse
import base64
import hashlib
import os
import socket
import sys
from collections import deque
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import gevent
from gevent import Timeout
from gevent.pool import Pool
from gevent.server import StreamServer

# the same protocol as the ceiling, from its one copy (this file's folder is on sys.path)
from echo_server import OPEN, PING_INTERVAL, answer

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from homeapp.transport import frames  # noqa: E402  (the product's frame path, after the path)
from homeapp.transport.worker import FrameLimits  # noqa: E402

gevent.config.track_greenlet_tree = False  # as HomeApp: no spawning stack kept per greenlet

WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_REQUEST_HEAD = 16384  # bytes
HANDSHAKE_TIMEOUT = 10  # seconds for a client to send its upgrade request
# the maxPayload the open packet announces; no bound on output waiting and no close grace,
# as the prototype had none
LIMITS = FrameLimits(max_message=1000000, max_pending=None, close_grace=None)
MAX_QUEUED = 64  # packets waiting for a pool greenlet before the connection is not read from
BAD_REQUEST = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 25\r\n"
               b"Connection: close\r\n\r\nwebsocket transport only\n")
SWITCHING = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Accept: %s\r\n\r\n")

rooms = {}  # room id -> list of Echo
connections = set()  # of Echo
pool = None  # a gevent Pool with --pool; None: handlers run inline in the read callback
nodelay = False
_waiting = deque()  # echoes with packets and no pool greenlet free for them


class Echo:
    """One open websocket's side of the echo: its room, and its packets on their way to
    echo_server.answer. The frames.Connection calls received() and ended() in the event loop."""

    __slots__ = ("conn", "sid", "room_id", "members", "queue", "busy")

    def __init__(self, conn, room_id):
        self.conn = conn
        self.sid = os.urandom(8).hex()
        self.room_id = room_id
        self.members = rooms.setdefault(room_id, []) if room_id else []
        self.queue = None  # with a pool: packets waiting for the handler
        self.busy = False  # with a pool: a greenlet has this connection's packets, or will

    def open(self):
        """Start serving: the open packet, then reading (first whatever came with the request)."""
        connections.add(self)
        self.members.append(self)
        self.send(OPEN % self.sid)
        self.conn.start(self)

    def send(self, text, copies=1):
        """Queue `copies` text frames of `text`; never blocks, never raises (echo_server.Peer's
        signature)."""
        for _ in range(copies):
            self.conn.send(text)

    def received(self, message):
        """A complete message: to the handler, now or through the pool."""
        if message.__class__ is not str:
            return  # a binary message is an Engine.IO attachment, which the ceiling drops too
        if pool is None:
            answer(self, self.members, self.sid, message)
            return
        queue = self.queue
        if queue is None:
            queue = self.queue = deque()
        queue.append(message)
        if len(queue) == MAX_QUEUED:
            self.conn.pause()  # the greenlet that empties the queue resumes it
        if not self.busy:
            self.busy = True
            if pool.full():  # Pool.spawn would wait for a slot, and the event loop must not
                _waiting.append(self)
            else:
                pool.spawn(_handle_queued, self)

    def ended(self):
        self.queue = None
        connections.discard(self)
        self.members.remove(self)
        if self.room_id and not self.members:
            rooms.pop(self.room_id, None)
        self.conn.listener = None  # no cycle left for the collector


def _handle_queued(echo):
    """In a pool greenlet: one connection's packets in order, then those of the connections
    that waited for a free greenlet; the greenlet ends when none is left."""
    while echo is not None:
        queue = echo.queue
        while queue and not echo.conn.closed:
            answer(echo, echo.members, echo.sid, queue.popleft())
        echo.queue = None  # a deque is 600 bytes: an idle connection keeps none
        echo.busy = False
        echo.conn.resume()
        echo = _waiting.popleft() if _waiting else None


def _ping_all():
    """Engine.IO 4: the server pings; a client that hears nothing for 45 s hangs up."""
    for echo in list(connections):
        echo.send("2")


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
    descriptor to a frames.Connection, and end."""
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
    Echo(frames.Connection(plain, early, LIMITS), room_id).open()


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
    gevent.get_hub().loop.timer(PING_INTERVAL, PING_INTERVAL).start(_ping_all)
    server = StreamServer((args.host, args.port), upgrade)
    mode = f"a pool of {args.pool} greenlets" if pool is not None else "inline"
    print(f"evented echo on http://{args.host}:{args.port}/, handlers {mode}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
