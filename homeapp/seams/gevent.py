"""gevent's WSGI server (pywsgi), bounded and drainable (versions: homeapp/seams/versions.py).

Handler is pywsgi's connection handler with three changes:

- each connection reads through a READ_BUFFER-byte buffer instead of 8 KB: a frame of this
  protocol is a few hundred bytes, and an idle socket held the rest for nothing
  (bench/optimised.md);
- a request's line and headers must arrive within `header_timeout` seconds of the handler
  starting to wait for them, or the connection is closed: gevent waits forever, so a client
  that never finishes its headers held a connection and a greenlet for as long as it liked;
- a response that closes the connection does not first read what is left of the request's
  body: gevent would wait for every byte a Content-Length announced, sent or not;

and, given `connections` (homeapp.operations.shutdown.HttpConnections), it reports when it waits
for a request line, so that a shutdown can end the connections between requests.
"""
import gevent
from gevent.pywsgi import Input, WSGIHandler

DISTRIBUTION = "gevent"

# a longer read goes around the buffer, straight into its destination
READ_BUFFER = 1024


def install():
    """gevent records, for every greenlet it spawns, the stack that spawned it: a debugging aid,
    turned off (a public setting: −4.3 KB per idle socket, bench/optimised.md)."""
    gevent.config.track_greenlet_tree = False


class Handler(WSGIHandler):
    header_timeout = None  # seconds; None: wait as long as the client likes
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

    def run_application(self):
        try:
            super().run_application()
        finally:
            if self.close_connection:
                # gevent reads what is left of the body before it closes: for a request
                # answered without it (413), that is whatever the client announced, or waits
                self.wsgi_input = Input(None, 0)


def draining(handler_class, connections):
    """`handler_class` (a Handler) reporting to `connections` (HttpConnections)."""
    return type(handler_class.__name__, (handler_class,), {"connections": connections})
