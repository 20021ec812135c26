"""gevent's WSGI server (pywsgi), bounded and drainable (versions: homeapp/seams/versions.py).

Handler is pywsgi's connection handler with four changes:

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

and, given `connections` (homeapp.operations.shutdown.HttpConnections), it reports when it waits
for a request line, so that a shutdown can end the connections between requests.

QuietAccept makes a gevent server (Server, `python app.py`'s, and the gunicorn worker's, through
quiet_accept()) pause accepting for a moment when the process is out of descriptors, and say
so in one line every ACCEPT_LOG_EVERY seconds: gevent logged a traceback for every failed accept;
and accept ACCEPTS_PER_TURN connections per turn of the event loop, not gevent's 100, so that a
burst of new connections (a reconnect storm) takes turns with the established ones.
"""
import errno
import logging
import os
import resource
import time
from contextlib import nullcontext

import gevent
from gevent.pywsgi import Input, WSGIHandler, WSGIServer

DISTRIBUTION = "gevent"

log = logging.getLogger("homeapp.transport.worker")

# a longer read goes around the buffer, straight into its destination
READ_BUFFER = 1024
# what an accept fails with when the process or the system is out of descriptors (or memory)
OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
ACCEPT_PAUSE = 0.1  # seconds without accepting after such a failure
ACCEPT_LOG_EVERY = 10.0  # seconds between two log lines about them
# connections accepted per turn of the event loop: a storm's handshakes take turns with the
# established sockets' events instead of going ahead of them
ACCEPTS_PER_TURN = 1


def install():
    """gevent records, for every greenlet it spawns, the stack that spawned it: a debugging aid,
    turned off (a public setting: −4.3 KB per idle socket, bench/optimised.md)."""
    gevent.config.track_greenlet_tree = False


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


class Handler(WSGIHandler):
    header_timeout = None  # seconds; None: wait as long as the client likes
    body_timeout = None  # seconds after the headers; None: as long as the client likes
    connections = None  # an HttpConnections that is told of handlers waiting for a request

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

    def read_requestline(self):
        connections = self.connections
        if connections is None:
            return super().read_requestline()
        if connections.ending:  # no further request: the connection closes
            return ""
        connections.waiting.add(self)
        try:
            return super().read_requestline()
        finally:
            connections.waiting.discard(self)

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


def draining(handler_class, connections):
    """`handler_class` (a Handler) reporting to `connections` (HttpConnections)."""
    return type(handler_class.__name__, (handler_class,), {"connections": connections})


class QuietAccept:
    """A gevent server's accept, which, out of descriptors, pauses for ACCEPT_PAUSE seconds and
    logs one line every ACCEPT_LOG_EVERY seconds. gevent logged each failure with a traceback and
    retried at once: the log filled as fast as clients connected. The connections wait in the
    listen backlog meanwhile, and are accepted once descriptors free up.

    It also accepts at most ACCEPTS_PER_TURN connections each time the event loop finds the
    listening socket readable (gevent's public `max_accept`, 100 by default): each accepted
    connection's handshake (about 0.5 ms of CPU) runs before what the loop's next turn brings,
    so in a reconnect storm a hundred of them at a time went ahead of the established sockets'
    events, and of what those events wait for (bench/recovery.md). The rest wait in the listen
    backlog for the next turn, as gevent itself does with several processes on one socket."""

    max_accept = ACCEPTS_PER_TURN

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


def quiet_accept(server_class):
    """`server_class` (a gevent server) with QuietAccept's accept."""
    return type(server_class.__name__, (QuietAccept, server_class), {})


class Server(QuietAccept, WSGIServer):
    """gevent's WSGI server, its accept quiet out of descriptors (`python app.py`)."""
