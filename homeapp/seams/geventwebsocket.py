"""gevent-websocket's handler, which answers the websocket upgrade, then hands the websocket over
instead of reading it (versions: homeapp/seams/versions.py).

After the `101`, the connection's descriptor (with TLS that this process terminates, gevent's
TLS socket) and what its read buffer holds past the request head go to `take_over` (defined by
homeapp.transport.worker.Handler: a frames.Connection, and the application run once to register
it with Engine.IO); the connection's greenlet, this handler and its buffer end.
gevent-websocket's own frame reading is never used. Long-polling stays on pywsgi.
"""
import _socket
import io
import socket

import gevent.ssl
from geventwebsocket.handler import WebSocketHandler

from homeapp.seams import gevent as gevent_seam

DISTRIBUTION = "gevent-websocket"

# environ entries that would keep the handler, its buffer or gevent's socket alive
_HANDLER_KEYS = ("wsgi.input", "gunicorn.sock")


class Handler(gevent_seam.Handler, WebSocketHandler):
    def take_over(self, sock, early, environ):
        """Run the websocket on `sock` (plain: a non-blocking socket; TLS: gevent's SSLSocket at
        timeout 0), `early` being the bytes read past the request head, `environ` the request's
        without what holds this handler."""
        raise NotImplementedError

    def run_websocket(self):
        """Hand the websocket over to take_over() instead of reading it here."""
        self.websocket.closed = True  # never used: its finalizer must not write a close frame
        self.websocket = None
        sock, early = self._hand_over()
        # the environ Engine.IO keeps for the socket's life, without what holds this handler
        environ = {name: value for name, value in self.environ.items() if name not in _HANDLER_KEYS}
        environ["wsgi.input"] = io.BytesIO()
        self.environ["wsgi.websocket"] = None
        self.socket = None  # the connection's now: pywsgi must neither read from it nor close it
        self.take_over(sock, early, environ)

    def _hand_over(self):
        """The connection as a non-blocking socket (TLS: gevent's SSLSocket), and what the read
        buffer holds past the request head (read without waiting). A plain socket leaves
        gevent's: its descriptor and watchers go."""
        sock = self.socket
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Node.js sockets
        except OSError:  # not TCP (a unix socket behind a proxy)
            pass
        sock.settimeout(0)
        try:
            early = self.rfile.read1(gevent_seam.READ_BUFFER)
        except gevent.ssl.SSLWantReadError:  # TLS, and nothing buffered
            early = b""
        if isinstance(sock, gevent.ssl.SSLSocket):
            return sock, early
        plain = _socket.socket(fileno=sock.detach())  # _socket: monkey-patching leaves it alone
        plain.setblocking(False)
        return plain, early
