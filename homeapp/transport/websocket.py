"""The websocket path of gevent-websocket and Engine.IO, tuned for many connections.

CPU. The profile of the private-chat relay (bench/profile.py) put over a third of the
server's CPU here, before any Socket.IO code ran:

- UTF-8 validation of every text frame, in pure Python unless `wsaccel` is installed;
  gevent-websocket picks wsaccel's compiled validator up by itself.
- Unmasking client frames one byte at a time; wsaccel's masker does it in C.
- One system call per frame, each a trip through the whole TCP stack; and gevent's
  `sendall` asks the kernel for the send buffer size (a getsockopt) on every call. The
  frames a socket is given in one go leave together, in one non-blocking write.
- Nagle's algorithm: each Socket.IO packet leaves as its own small frame, and a frame
  written while the previous one waits for the client's delayed ACK is held back for
  up to 40 ms (p99 in the hundreds of milliseconds under load). Node.js sockets, the
  original server's, disable Nagle by default.
- A queue and a writer greenlet between every packet and its websocket: the sender writes
  it itself when nothing is queued before it.

Memory. An idle socket cost 57 KB (bench/, idle scenario), 14 KB of it in three greenlets
that only wait, and 8 KB in a read buffer that holds a few hundred bytes at a time:

- gevent records, for every greenlet it spawns, the stack that spawned it: a debugging
  aid (`track_greenlet_tree`) at about 2.5 KB per greenlet, two per socket. Turned off.
- Engine.IO spawns a greenlet per socket that sleeps through the ping interval (4 KB
  with its stack); a timer on the event loop does the same for about 100 bytes.
- Each connection reads through a 1 KB buffer instead of 8 KB (homeapp/transport/worker.py).
"""
import errno
import os
import socket
import time

import gevent
import gevent.socket
from engineio import packet
from engineio.exceptions import QueueEmpty
from engineio.socket import Socket
from wsaccel.xormask import XorMaskerSimple

try:
    from geventwebsocket.websocket import Header
except ImportError:  # served by simple-websocket (bench/peers/homeapp_simple_ws.py): the frame path is not ours
    Header = None

gevent.config.track_greenlet_tree = False


def _unmask(header, payload):
    return XorMaskerSimple(header.mask).process(payload)


if Header is not None:
    # One class attribute for every connection; gevent-websocket calls it for each masked frame.
    Header.unmask_payload = _unmask


# Engine.IO's own, kept for other async modes. This replaces a method of python-engineio's
# Socket (pinned in requirements.txt); tests/test_live_transport.py checks pings still flow.
_spawn_pinger = Socket.schedule_ping


def _schedule_ping(sock):
    """Engine.IO's schedule_ping, with an event-loop timer where it spawns a sleeping greenlet."""
    if sock.server.async_mode != "gevent":
        return _spawn_pinger(sock)
    if sock.last_ping:  # as Engine.IO: one ping at a time, the next once the pong came
        sock.last_ping = None
        timer = gevent.get_hub().loop.timer(sock.server.ping_interval)
        timer.start(_ping, sock, timer)


def _ping(sock, timer):
    """Runs in the event loop, so it must not block: send only queues the packet, or hands it
    to a _Writer, which never blocks (last_ping is now, so send cannot find the ping timed out
    and close the socket from here)."""
    timer.close()
    if not sock.closing and not sock.closed:
        sock.last_ping = time.time()
        sock.send(packet.Packet(packet.PING))


Socket.schedule_ping = _schedule_ping


# Engine.IO hands every packet for a websocket to a writer greenlet through a queue: a put,
# a switch to the writer and a new gevent Timeout for each of its waits, about a tenth of the
# relay's CPU. A connection whose frames go through _Writer never blocks on a write, so the
# greenlet that sends a packet can write it itself, as long as nothing sent before it is
# still queued (the writer keeps the order: it takes packets and writes them without
# yielding in between). Everything else goes through the queue as before: polling, the
# upgrade, TLS, simple-websocket. tests/test_transport.py and test_live_transport.py cover it.
#
# The writer still waits on the queue, for those packets and for the end of the connection.
# Engine.IO's writer gives up when its queue stays empty for a ping interval and timeout,
# which a connection written to directly would meet while in use: it waits on instead. A
# client that stops answering pings is closed by Engine.IO's service task, as before.
_queued_send = Socket.send
_queued_poll = Socket.poll
_serve_websocket = Socket._websocket_handler
Socket.direct_websocket = None  # the _Writer connection the socket is on, once it is on it
_UPGRADE = packet.Packet(packet.UPGRADE).encode()


def _websocket_handler(sock, ws):
    raw_write = getattr(getattr(ws, "_sock", None), "raw_write", None)
    if not isinstance(getattr(raw_write, "__self__", None), _Writer):
        return _serve_websocket(sock, ws)
    if sock.connected:  # an upgrade from polling: this connection counts once it completes it
        handled = _UpgradeWatch(sock, ws)
    else:  # a websocket from the start: Engine.IO marks it upgraded at once
        handled = ws
        sock.direct_websocket = ws
    try:
        return _serve_websocket(sock, handled)
    finally:
        if sock.direct_websocket is ws:  # not another connection's, which may have upgraded since
            sock.direct_websocket = None


class _UpgradeWatch:
    """An upgrading connection as Engine.IO's handler sees it: it becomes the socket's direct
    websocket when the client's UPGRADE packet arrives on it, not when it opens (a second
    connection may open for the same socket, and never upgrade)."""

    __slots__ = ("_engineio_socket", "_ws")

    def __init__(self, sock, ws):
        self._engineio_socket, self._ws = sock, ws

    def wait(self):
        data = self._ws.wait()
        if data == _UPGRADE and self._engineio_socket.upgrading:
            self._engineio_socket.direct_websocket = self._ws
        return data

    def __getattr__(self, name):
        return getattr(self._ws, name)


def _on_websocket(sock):
    """The _Writer connection the socket writes to directly, or None (polling, upgrading,
    TLS, simple-websocket)."""
    ws = sock.direct_websocket
    return ws if ws is not None and sock.upgraded and not sock.upgrading else None


def _send(sock, pkt):
    ws = _on_websocket(sock)
    if ws is None or not sock.queue.empty():
        return _queued_send(sock, pkt)
    if not sock.check_ping_timeout():
        return
    try:
        ws.send(pkt.encode())
    except Exception:  # the connection is gone: the writer meets the same error and closes it
        sock.queue.put(pkt)


def _poll(sock):
    while True:
        try:
            return _queued_poll(sock)
        except QueueEmpty:
            if _on_websocket(sock) is None or sock.closed:
                raise


Socket._websocket_handler = _websocket_handler
Socket.poll = _poll
Socket.send = _send


def tuned_websockets(wsgi_app, close_grace):
    """Wrap a WSGI app so that every gevent-websocket connection it serves sends its
    frames at once and in one system call where it can, and ends `close_grace` seconds
    after the server's close frame if the client has not answered it by then."""
    def app(environ, start_response):
        websocket = environ.get("wsgi.websocket")
        if websocket is not None:
            _tune(websocket, close_grace)
        return wsgi_app(environ, start_response)
    return app


def _tune(websocket, close_grace):
    handler = getattr(getattr(websocket, "stream", None), "handler", None)
    sock = getattr(handler, "socket", None)
    if sock is None:  # another websocket implementation: leave it as it is
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:  # not a TCP socket (a unix socket behind a proxy)
        pass
    if type(sock) is gevent.socket.socket:  # not TLS: _Writer writes to the descriptor itself
        websocket.raw_write = _Writer(sock, close_grace).write


_CLOSE_FRAME = b"\x88"  # FIN + opcode 8
_CLOSED = BrokenPipeError(errno.EPIPE, "the websocket sent its close frame")


class _Writer:
    """One connection's frame writes, coalesced: the frames written while the calling
    greenlet runs (a `message` makes two to five for one socket) leave in one system call
    when the event loop next runs, instead of one call each. A close frame is written at
    once, with what is pending, since the connection may be closed right after it; nothing
    is written after it.

    Writes never block the caller. One writer at a time: a non-blocking write of all that
    is pending, or the `drainer` greenlet that sends what the kernel would not take at once.

    `close_grace` seconds after a close frame, a connection still open is cut: a client that
    went silent (Engine.IO dropped it for missing pings) never answers the frame, and its
    connection would wait for TCP to give up on it, about 15 minutes.
    """

    __slots__ = ("sock", "fd", "close_grace", "pending", "scheduled", "drainer", "error")

    def __init__(self, sock, close_grace=None):
        self.sock = sock
        self.close_grace = close_grace  # None: never cut
        self.fd = sock.fileno()
        self.pending = []
        self.scheduled = False
        self.drainer = None
        self.error = None  # raised by every later write (gevent-websocket expects OSError)

    def write(self, data):
        if self.error is not None:
            raise self.error
        self.pending.append(data)
        if data[:1] == _CLOSE_FRAME:
            self.error = _CLOSED
            self._flush()  # now, not when the loop runs; never waiting for a client that does not read
            if self.close_grace is not None:
                timer = gevent.get_hub().loop.timer(self.close_grace)
                timer.start(self._cut, timer)
        elif not self.scheduled and self.drainer is None:
            self.scheduled = True
            gevent.get_hub().loop.run_callback(self._flush)

    def _flush(self):
        """Runs in the event loop, so it must not block: writes what the kernel takes now,
        and leaves the rest to the drainer."""
        self.scheduled = False
        # a socket closed since (fileno -1) is left alone: its number may belong to another
        if not self.pending or self.drainer is not None or self.sock.fileno() != self.fd:
            return
        data = b"".join(self.pending)
        self.pending.clear()
        try:
            sent = os.write(self.fd, data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:  # the peer is gone: the next write raises, the reader sees EOF
            self.error = exc
            return
        if sent < len(data):  # the client reads slower than this server writes
            self.pending.insert(0, data[sent:])
            self.drainer = gevent.spawn(self._drain)

    def _cut(self, timer):
        """Runs in the event loop, close_grace after the close frame: ends a connection still
        open, so that its reader, if still waiting, sees the end and lets it go."""
        timer.close()
        try:  # a socket closed since has let go of its descriptor: this raises, touching no other
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _drain(self):
        """In the drainer: send everything pending, blocking as long as it takes."""
        try:
            while self.pending:
                data = b"".join(self.pending)
                self.pending.clear()
                self.sock.sendall(data)
        except OSError as exc:
            self.pending.clear()
            if self.error is None:
                self.error = exc
        finally:
            self.drainer = None
