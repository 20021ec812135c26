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
  written while the previous one waits for the client's delayed ACK is held back until
  that ACK comes. Node.js sockets, the original server's, disable Nagle by default.
- A queue and a writer greenlet between every packet and its websocket: the sender writes
  it itself when nothing is queued before it.

Memory. Much of an idle socket was greenlets that only wait, and a read buffer that holds a
few hundred bytes at a time (bench/optimised.md has the figures):

- gevent records, for every greenlet it spawns, the stack that spawned it: a debugging
  aid (`track_greenlet_tree`), two greenlets per socket. Turned off.
- Engine.IO spawns a greenlet per socket that sleeps through the ping interval; a timer on
  the event loop does the same for a fraction of its memory.
- Each connection reads through a 1 KB buffer instead of 8 KB (homeapp/transport/worker.py).
- A closed connection is let go of at once: the timers that wait on it (the next ping, the
  close frame's grace) hold it weakly. Held strongly, they kept every connection of the
  last ping interval alive, and the memory a burst of connections took stayed taken.

Hostile clients. What one client can make this process hold is bounded:

- output waiting for a client that does not read it: past Limits.pending_output bytes the
  client is disconnected, on a websocket (_Writer) and in Engine.IO's queue (polling);
- a long-polling POST over the packet limit is answered 413 at once, and a request for a
  session that is closing or closed 400, not a 500 (bounded_polling);
- a text message Engine.IO cannot decode is dropped (_Incoming) instead of ending its
  connection with a traceback;
- websocket messages over the packet limit, and requests whose headers never end, are
  homeapp/transport/worker.py's.
"""
import errno
import io
import logging
import os
import socket
import string
import time
import urllib.parse
import weakref

import gevent
import gevent.socket
from engineio import packet
from engineio.exceptions import QueueEmpty
from engineio.socket import Socket
from wsaccel.xormask import XorMaskerSimple

from homeapp.transport.bodies import body_within

try:
    from geventwebsocket.websocket import Header
except ImportError:  # served by simple-websocket (bench/peers/homeapp_simple_ws.py): the frame path is not ours
    Header = None

log = logging.getLogger("homeapp.transport")


class Limits:
    """What one client may make this process hold; install() sets them from the settings."""

    pending_output = None  # bytes waiting for a client; None: no limit


def install(config):
    """Replace what this module replaces in gevent, gevent-websocket and python-engineio, and
    apply the settings that bound what one client can make this process hold. Called by
    homeapp.transport.overrides.install(), which checks the libraries' versions first; calling
    it again only applies the settings again."""
    Limits.pending_output = config["MAX_PENDING_OUTPUT_BYTES"]
    gevent.config.track_greenlet_tree = False
    if Header is not None:
        # one class attribute for every connection; gevent-websocket calls it for each masked frame
        Header.unmask_payload = _unmask
    Socket.schedule_ping = _schedule_ping
    Socket._websocket_handler = _websocket_handler
    Socket.poll = _poll
    Socket.send = _send
    Socket.direct_websocket = None  # the _Writer connection the socket is on, once it is on it
    Socket.queued_bytes = 0  # about the bytes of the packets in its queue
    Socket.cut_off = False  # disconnected for not fetching what it was sent


def _unmask(header, payload):
    return XorMaskerSimple(header.mask).process(payload)


# Engine.IO's own, kept for other async modes. install() replaces this method of
# python-engineio's Socket; tests/test_live_transport.py checks pings still flow.
_spawn_pinger = Socket.schedule_ping


def _schedule_ping(sock):
    """Engine.IO's schedule_ping, with an event-loop timer where it spawns a sleeping greenlet."""
    if sock.server.async_mode != "gevent":
        return _spawn_pinger(sock)
    if sock.last_ping:  # as Engine.IO: one ping at a time, the next once the pong came
        sock.last_ping = None
        timer = gevent.get_hub().loop.timer(sock.server.ping_interval)
        # weakly: a socket that closes meanwhile is freed now, not when its ping was due
        timer.start(_ping, weakref.ref(sock), timer)


def _ping(socket_ref, timer):
    """Runs in the event loop, so it must not block: send only queues the packet, or hands it
    to a _Writer, which never blocks (last_ping is now, so send cannot find the ping timed out
    and close the socket from here)."""
    timer.close()
    sock = socket_ref()
    if sock is not None and not sock.closing and not sock.closed:
        sock.last_ping = time.time()
        sock.send(packet.Packet(packet.PING))




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
_UPGRADE = packet.Packet(packet.UPGRADE).encode()


def _websocket_handler(sock, ws):
    raw_write = getattr(getattr(ws, "_sock", None), "raw_write", None)
    direct = isinstance(getattr(raw_write, "__self__", None), _Writer)
    # an upgrade from polling counts once the connection completes it; a websocket from the
    # start is marked upgraded by Engine.IO at once
    upgrade = direct and sock.connected
    if direct and not upgrade:
        sock.direct_websocket = ws
    try:
        return _serve_websocket(sock, _Incoming(sock, ws, upgrade))
    finally:
        if sock.direct_websocket is ws:  # not another connection's, which may have upgraded since
            sock.direct_websocket = None


class _Incoming:
    """A websocket as Engine.IO's handler reads it.

    A text message that Engine.IO cannot decode is dropped: Engine.IO decodes outside its
    error handling, and one empty frame ended the connection with a traceback. An upgrading
    connection (`upgrade`) becomes the socket's direct websocket when the client's UPGRADE
    packet arrives on it, not when it opens (a second connection may open for the same
    socket, and never upgrade)."""

    __slots__ = ("_engineio_socket", "_ws", "_upgrade")

    def __init__(self, sock, ws, upgrade):
        self._engineio_socket, self._ws, self._upgrade = sock, ws, upgrade

    def wait(self):
        data = self._ws.wait()
        # None (the end) and binary messages pass, and text as clients send it (one lookup)
        while data.__class__ is str and data[:2] not in _PLAIN_STARTS:
            error = _decode_error(data)
            if error is None:
                break
            log.info("dropped a malformed Engine.IO packet from %s: %s: %s",
                     self._engineio_socket.sid, type(error).__name__, error)
            data = self._ws.wait()
        if self._upgrade and data == _UPGRADE and self._engineio_socket.upgrading:
            self._engineio_socket.direct_websocket = self._ws
        return data

    def __getattr__(self, name):
        return getattr(self._ws, name)


# how every packet a client sends starts ("42[...", "3", "2probe"): an Engine.IO packet
# type, then a letter, a digit or nothing. Engine.IO always decodes those.
_PLAIN_STARTS = frozenset(kind + after for kind in "0123456"
                          for after in ["", *string.ascii_letters, *string.digits])


def _decode_error(text):
    """Why Engine.IO cannot decode a text message, or None when it can: decodes it once."""
    try:
        packet.Packet(encoded_packet=text)
    except Exception as exc:  # ValueError, binascii.Error, RecursionError (deep JSON)
        return exc
    return None


def _on_websocket(sock):
    """The _Writer connection the socket writes to directly, or None (polling, upgrading,
    TLS, simple-websocket)."""
    ws = sock.direct_websocket
    return ws if ws is not None and sock.upgraded and not sock.upgrading else None


def _send(sock, pkt):
    ws = _on_websocket(sock)
    if ws is None or not sock.queue.empty():
        return _enqueue(sock, pkt)
    if not sock.check_ping_timeout():
        return
    try:
        ws.send(pkt.encode())
    except Exception:  # the connection is gone: the writer meets the same error and closes it
        sock.queued_bytes += _size(pkt)
        sock.queue.put(pkt)


def _enqueue(sock, pkt):
    """Engine.IO's send, through the socket's queue, unless more than Limits.pending_output
    waits there already: then the client, which does not fetch what it is sent (a polling
    client that never polls), is disconnected and the packet dropped."""
    sock.queued_bytes += _size(pkt)
    if Limits.pending_output is None or sock.queued_bytes <= Limits.pending_output:
        return _queued_send(sock, pkt)
    if not sock.cut_off:
        sock.cut_off = True
        # not from here: this may be another socket's event handler, emitting
        sock.server.start_background_task(_cut_off, sock)


def _cut_off(sock):
    log.info("disconnecting %s: %d bytes wait for a client that does not fetch them",
             sock.sid, sock.queued_bytes)
    end_session(sock)


def end_session(sock):
    """Engine.IO's disconnect, without its wait for a poll that the client may never make.

    Dropped from the server's sockets at once, as Engine.IO's disconnect does: a POST for a
    closed session still there fails with a traceback and a 500.
    """
    sock.close(wait=False, reason=sock.server.reason.TRANSPORT_ERROR)
    sock.server.sockets.pop(sock.sid, None)


def _size(pkt):
    """About the bytes a packet takes: its data's length. (Encoding it here would fix its
    encoding before the transport that sends it chooses one.)"""
    data = pkt.data
    return 1 + len(data) if data.__class__ is str or data.__class__ is bytes else 1


def _poll(sock):
    while True:
        try:
            packets = _queued_poll(sock)
        except QueueEmpty:
            if _on_websocket(sock) is None or sock.closed:
                raise
        else:
            for pkt in packets:
                sock.queued_bytes -= _size(pkt)
            return packets



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
        websocket.raw_write = _Writer(sock, close_grace, Limits.pending_output).write


def bounded_polling(wsgi_app, eio, limit):
    """Wrap Flask-SocketIO's middleware (`wsgi_app`) so that a long-polling POST bigger than
    `limit` bytes is answered 413, and its Engine.IO session (`eio`'s) closed, as soon as that
    is known: from its Content-Length, or while reading a chunked body. Engine.IO refused it
    with a disconnect that waits for the client's next poll, which a client that sends too
    much need never make, and read no chunked body at all."""
    path = wsgi_app.engineio_path

    def app(environ, start_response):
        if not environ.get("PATH_INFO", "").startswith(path):
            return wsgi_app(environ, start_response)
        if environ["REQUEST_METHOD"] == "POST":
            body = body_within(environ, limit)
            if body is None:
                _close_session(eio, environ)
                # worker.Handler closes the connection without reading the rest
                start_response("413 Payload Too Large",
                               [("Content-Type", "text/plain"), ("Connection", "close")])
                return [b"Payload Too Large"]
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        # checked once the body is in: the session may have closed while it was read
        if not _session_open(eio, environ):
            # Engine.IO fails on a closed one with a KeyError and a 500, and logs an unknown
            # one as an ERROR
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"Session is closed"]
        return wsgi_app(environ, start_response)
    return app


def _session_open(eio, environ):
    """False for a request naming an Engine.IO session that is closing, closed or unknown (a
    client's sid from before a restart); True for a live one and for a handshake (no sid)."""
    sid = _sid(environ)
    if sid is None:
        return True
    sock = eio.sockets.get(sid)
    return sock is not None and not sock.closing and not sock.closed


def _sid(environ):
    return urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("sid", [None])[0]


def _close_session(eio, environ):
    """Close the Engine.IO session a request names, as for a websocket message over the limit."""
    sid = _sid(environ)
    sock = eio.sockets.get(sid)
    log.info("refused a long-polling POST of more than the packet limit from %s", sid)
    if sock is not None:
        end_session(sock)


_CLOSE_FRAME = b"\x88"  # FIN + opcode 8
_CLOSED = BrokenPipeError(errno.EPIPE, "the websocket sent its close frame")
_UNREAD = ConnectionAbortedError(errno.ECONNABORTED, "the client did not read what it was sent")


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

    More than `max_pending` bytes waiting (None: no limit), and the client is not reading:
    they are dropped and the connection is cut, so that its reader sees the end and Engine.IO
    disconnects the socket. Unbounded, a client that sent events and never read the answers
    grew the server as long as it liked.
    """

    __slots__ = ("sock", "fd", "close_grace", "max_pending", "pending", "pending_bytes",
                 "scheduled", "drainer", "error")

    def __init__(self, sock, close_grace=None, max_pending=None):
        self.sock = sock
        self.close_grace = close_grace  # None: never cut
        self.max_pending = max_pending
        self.fd = sock.fileno()
        self.pending = []
        self.pending_bytes = 0  # in pending, and in the drainer's hands
        self.scheduled = False
        self.drainer = None
        self.error = None  # raised by every later write (gevent-websocket expects OSError)

    def write(self, data):
        if self.error is not None:
            raise self.error
        self.pending.append(data)
        self.pending_bytes += len(data)
        if data[:1] == _CLOSE_FRAME:
            self.error = _CLOSED
            self._flush()  # now, not when the loop runs; never waiting for a client that does not read
            if self.close_grace is not None:
                timer = gevent.get_hub().loop.timer(self.close_grace)
                # weakly: a connection that ends meanwhile is freed now, not when the grace ends
                timer.start(_cut, weakref.ref(self.sock), timer)
        elif self.max_pending is not None and self.pending_bytes > self.max_pending:
            self._give_up()
        elif not self.scheduled and self.drainer is None:
            self.scheduled = True
            gevent.get_hub().loop.run_callback(self._flush)

    def _give_up(self):
        """Drop what the client did not read, and cut the connection."""
        try:
            peer = self.sock.getpeername()
        except OSError:  # gone already
            peer = None
        gevent.get_hub().loop.run_callback(  # not in the writer's log context: another socket's
            log.info, "cutting the connection of %s, which did not read %d bytes", peer, self.pending_bytes)
        self.pending.clear()
        self.pending_bytes = 0
        self.error = _UNREAD
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # closed already
            pass

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
            self.pending_bytes = 0
            return
        self.pending_bytes -= sent
        if sent < len(data):  # the client reads slower than this server writes
            self.pending.insert(0, data[sent:])
            self.drainer = gevent.spawn(self._drain)

    def _drain(self):
        """In the drainer: send everything pending, blocking as long as it takes."""
        try:
            while self.pending:
                data = b"".join(self.pending)
                self.pending.clear()
                self.sock.sendall(data)
                self.pending_bytes -= len(data)
        except OSError as exc:
            self.pending.clear()
            self.pending_bytes = 0
            if self.error is None:
                self.error = exc
        finally:
            self.drainer = None


def _cut(socket_ref, timer):
    """Runs in the event loop, close_grace after a close frame: ends a connection still open,
    so that its reader, if still waiting, sees the end and lets it go."""
    timer.close()
    sock = socket_ref()
    if sock is None:  # the connection ended, and was freed
        return
    try:  # a socket closed since has let go of its descriptor: this raises, touching no other
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
