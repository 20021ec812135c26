"""The connection handler of `python app.py` and the gunicorn worker of gunicorn.conf.py.

gevent's and gevent-websocket's handler, which answers the websocket upgrade, with five changes:

- each connection reads through a READ_BUFFER-byte buffer instead of 8 KB: a frame of this
  protocol is a few hundred bytes, and an idle socket held the rest for nothing
  (bench/optimised.md);
- a request's line and headers must arrive within `header_timeout` seconds of the handler
  starting to wait for them, or the connection is closed: gevent waits forever, so a client
  that never finishes its headers held a connection and a greenlet for as long as it liked;
- a request's body must arrive within `body_timeout` seconds of its headers, or the
  connection is closed: gevent waits for it forever, so a client trickling a byte at a time
  held a connection and a greenlet for as long as it liked (long-polling POSTs and the
  backend API alike);
- a response that closes the connection does not first read what is left of the request's
  body: gevent would wait for every byte a Content-Length announced, sent or not;
- after the `101`, a websocket is handed over instead of read here: its descriptor (with TLS
  that this process terminates, gevent's TLS socket) goes to a
  homeapp.transport.frames.Connection, the application runs once to register it with
  Engine.IO (homeapp.transport.evented), and the connection's greenlet, this handler and its
  buffer end. gevent-websocket's own frame reading is never used. Long-polling stays here.

Both entries' servers (Server, and the gunicorn worker's) also pause accepting for a moment
when the process is out of descriptors, and say so in one line every ACCEPT_LOG_EVERY seconds:
gevent logged a traceback for every failed accept.

`handler_class(settings)` and `worker_class(settings)` give the two entries these classes
with the limits of homeapp.config's settings.

gunicorn's master loads this file on its own, as gunicorn.conf.py does config.py: it
imports only gevent, gevent-websocket and gunicorn, never the homeapp package, which must
not be imported before the worker's gevent monkey-patching.
"""
import _socket
import errno
import io
import logging
import os
import resource
import socket
import time
from collections import namedtuple
from contextlib import nullcontext

import gevent
import gevent.ssl
from gevent.pywsgi import Input, WSGIServer
from geventwebsocket.gunicorn.workers import GeventWebSocketWorker
from geventwebsocket.handler import WebSocketHandler as BaseHandler
from gunicorn.workers.ggevent import PyWSGIServer

log = logging.getLogger("homeapp.transport.worker")  # a name only: the package is not imported

# a longer read goes around the buffer, straight into its destination
READ_BUFFER = 1024
# what an accept fails with when the process or the system is out of descriptors (or memory)
OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
ACCEPT_PAUSE = 0.1  # seconds without accepting after such a failure
ACCEPT_LOG_EVERY = 10.0  # seconds between two log lines about them

# What an evented connection may hold (homeapp.transport.frames.Connection): bytes in one
# message, bytes waiting for the client (None: no limit), seconds the client has to answer
# the server's close frame (None: forever).
FrameLimits = namedtuple("FrameLimits", "max_message max_pending close_grace")


class BodyTimeout(BaseException):
    """A request's body not in by its deadline. Not an Exception, as gevent.Timeout is not:
    the application's `except Exception` (Flask's error handlers) lets it through to the
    Handler, which closes the connection."""


class TimedInput(Input):
    """gevent's request body, whose every read must end by `deadline` (time.monotonic()),
    or raises BodyTimeout."""

    __slots__ = ("deadline",)

    def read(self, length=None):
        with self._in_time():
            return super().read(length)

    def readline(self, size=None):  # readlines and iteration go through it
        with self._in_time():
            return super().readline(size)

    def _in_time(self):
        if not self.chunked_input and self.position >= (self.content_length or 0):
            return nullcontext()  # nothing (left) to read: no timer
        return gevent.Timeout(max(0.0, self.deadline - time.monotonic()), BodyTimeout)

    def drain(self):
        """Read what is left of the body, within the deadline. Raises BodyTimeout."""
        while self.read(16 * READ_BUFFER):
            pass


class Handler(BaseHandler):
    header_timeout = None  # seconds; None: wait as long as the client likes
    body_timeout = None  # seconds after the headers; None: as long as the client likes
    frame_limits = FrameLimits(max_message=64 * 1024, max_pending=None, close_grace=None)

    def __init__(self, sock, address, server, rfile=None):
        # gevent's handler takes rfile (an argument it calls deprecated) and makes its own
        # 8 KB reader only without one: one reader per connection, not one made and dropped
        super().__init__(sock, address, server, rfile or sock.makefile("rb", READ_BUFFER))
        self.header_deadline = None

    def handle_one_request(self):
        """gevent's, the request line and headers read within header_timeout; past it the
        connection is closed. The time runs from when the handler starts waiting, so it also
        bounds how long a kept-alive connection may sit idle between requests."""
        if self.header_timeout is None:
            return super().handle_one_request()
        deadline = self.header_deadline = gevent.Timeout.start_new(self.header_timeout)
        try:
            return super().handle_one_request()
        except gevent.Timeout as timeout:
            if timeout is not deadline:
                raise
            return None  # gevent's "close this connection"
        finally:
            self._end_header_deadline()

    def read_request(self, raw_requestline):
        """gevent's header parsing; once the headers are in, the rest is the application's time."""
        parsed = super().read_request(raw_requestline)
        self._end_header_deadline()
        return parsed

    def _end_header_deadline(self):
        if self.header_deadline is not None:
            self.header_deadline.close()
            self.header_deadline = None  # not held for the life of a websocket

    def get_environ(self):
        """gevent's, its body a TimedInput due body_timeout seconds from now: the headers are in."""
        environ = super().get_environ()
        if self.body_timeout is not None:
            plain = self.wsgi_input
            timed = TimedInput(plain.rfile, plain.content_length, plain.socket, plain.chunked_input)
            timed.deadline = time.monotonic() + self.body_timeout
            if environ["wsgi.input"] is plain:  # not for an upgrade, which reads the raw stream
                environ["wsgi.input"] = timed
            self.wsgi_input = timed
        return environ

    def run_application(self):
        try:
            super().run_application()
            if not self.close_connection and isinstance(self.wsgi_input, TimedInput):
                # what the application left of the body, read here, where being late can
                # close the connection quietly: gevent reads it next, and would log a traceback
                self.wsgi_input.drain()
        except BodyTimeout:
            peer = self.client_address
            log.info("closed a connection from %s: its request body did not arrive within %s s",
                     peer[0] if isinstance(peer, tuple) else peer, self.body_timeout)
            self.close_connection = True
        finally:
            if self.close_connection:
                # gevent reads what is left of the body before it closes: for a request
                # answered without it (413), that is whatever the client announced, or waits
                self.wsgi_input = Input(None, 0)

    def run_websocket(self):
        """Hand the websocket over to the frame path instead of reading it here."""
        # imported here, in the worker: gunicorn's master loads this file without the package
        from homeapp.transport import frames
        self.websocket.closed = True  # never used: its finalizer must not write a close frame
        self.websocket = None
        conn = frames.Connection(*self._hand_over(), self.frame_limits)
        # the environ Engine.IO keeps for the socket's life, without what holds this handler
        environ = {name: value for name, value in self.environ.items() if name not in _HANDLER_KEYS}
        environ["wsgi.input"] = io.BytesIO()
        environ["wsgi.websocket"] = conn
        self.environ["wsgi.websocket"] = None
        self.socket = None  # the connection's now: pywsgi must neither read from it nor close it
        try:
            list(self.application(environ, lambda status, headers, exc_info=None: []))
        finally:
            if conn.listener is None and not conn.closed:  # nobody took it (a refused session)
                conn.close(b"")

    def _hand_over(self):
        """The connection as a non-blocking socket for frames.Connection (TLS: a
        frames.TlsSocket), and what the read buffer holds past the request head (read
        without waiting). A plain socket leaves gevent's: its descriptor and watchers go."""
        sock = self.socket
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Node.js sockets
        except OSError:  # not TCP (a unix socket behind a proxy)
            pass
        sock.settimeout(0)
        try:
            early = self.rfile.read1(READ_BUFFER)
        except gevent.ssl.SSLWantReadError:  # TLS, and nothing buffered
            early = b""
        if isinstance(sock, gevent.ssl.SSLSocket):
            from homeapp.transport import frames
            return frames.TlsSocket(sock), early
        plain = _socket.socket(fileno=sock.detach())  # _socket: monkey-patching leaves it alone
        plain.setblocking(False)
        return plain, early


# environ entries that would keep the handler, its buffer or gevent's socket alive
_HANDLER_KEYS = ("wsgi.input", "gunicorn.sock")


class QuietAccept:
    """A gevent server's accept, which, out of descriptors, pauses for ACCEPT_PAUSE seconds and
    logs one line every ACCEPT_LOG_EVERY seconds. gevent logged each failure with a traceback and
    retried at once: the log filled as fast as clients connected. The connections wait in the
    listen backlog meanwhile, and are accepted once descriptors free up."""

    accept_failures = 0  # since the last line about them
    accept_logged_at = None

    def do_read(self):
        try:
            return super().do_read()
        except OSError as exc:
            if exc.errno not in OUT_OF_DESCRIPTORS:
                raise
            self._accept_failed(exc)
            return None  # gevent's "nothing to accept now"

    def _accept_failed(self, exc):
        self.accept_failures += 1
        now = time.monotonic()
        if self.accept_logged_at is None or now - self.accept_logged_at >= ACCEPT_LOG_EVERY:
            log.warning("accept failed: %s (limit %d); %d failed accepts since the last such line; "
                        "new connections wait until descriptors free up (raise the limit: ulimit -n, "
                        "systemd's LimitNOFILE)", os.strerror(exc.errno).lower(),
                        resource.getrlimit(resource.RLIMIT_NOFILE)[0], self.accept_failures)
            self.accept_logged_at, self.accept_failures = now, 0
        # the listening socket stays readable: accepting again at once would spin on it
        self.stop_accepting()
        pause = self.loop.timer(ACCEPT_PAUSE)
        pause.start(self._resume_accepting, pause)

    def _resume_accepting(self, pause):
        pause.close()
        if self.started and self.socket is not None:
            self.start_accepting()


class Server(QuietAccept, WSGIServer):
    """gevent's WSGI server, its accept quiet out of descriptors (`python app.py`)."""


def handler_class(settings):
    """Handler with the limits of `settings` (homeapp.config's HEADER_TIMEOUT, BODY_TIMEOUT,
    MAX_PACKET_BYTES, MAX_PENDING_OUTPUT_BYTES and PING_TIMEOUT: a client has as long to answer
    the server's close frame as it has to answer a ping)."""
    limits = FrameLimits(settings["MAX_PACKET_BYTES"], settings["MAX_PENDING_OUTPUT_BYTES"],
                         settings["PING_TIMEOUT"])
    return type("Handler", (Handler,), {"header_timeout": settings["HEADER_TIMEOUT"],
                                         "body_timeout": settings["BODY_TIMEOUT"],
                                         "frame_limits": limits})


class Worker(GeventWebSocketWorker):
    wsgi_handler = Handler
    server_class = type("Server", (QuietAccept, PyWSGIServer), {})


def worker_class(settings):
    """The gunicorn worker, its connections handled with the limits of `settings`."""
    return type("Worker", (Worker,), {"wsgi_handler": handler_class(settings)})
