"""The connection handler of `python app.py` and of the gunicorn worker (gunicorn.conf.py).

homeapp/seams/geventwebsocket.py's handler (gevent-websocket's upgrade, on gevent's pywsgi
handler with a small read buffer, header and body timeouts and no body read before a closing
answer: homeapp/seams/gevent.py), whose websockets, plain or TLS, are taken over here by a
homeapp.transport.frames.Connection; the application runs once to register it with Engine.IO
(homeapp.transport.evented).

`handler_class(settings)` gives Handler with the limits of homeapp.config's settings.
"""
from collections import namedtuple

import gevent.ssl

from homeapp.seams import geventwebsocket
from homeapp.transport import frames

# What an evented connection may hold (homeapp.transport.frames.Connection): bytes in one
# message, bytes waiting for the client (None: no limit), seconds the client has to answer
# the server's close frame (None: forever).
FrameLimits = namedtuple("FrameLimits", "max_message max_pending close_grace")


class Handler(geventwebsocket.Handler):
    frame_limits = FrameLimits(max_message=64 * 1024, max_pending=None, close_grace=None)

    def take_over(self, sock, early, environ):
        if isinstance(sock, gevent.ssl.SSLSocket):
            sock = frames.TlsSocket(sock)
        conn = frames.Connection(sock, early, self.frame_limits)
        environ["wsgi.websocket"] = conn
        try:
            list(self.application(environ, lambda status, headers, exc_info=None: []))
        finally:
            if conn.listener is None and not conn.closed:  # nobody took it (a refused session)
                conn.close(b"")


def handler_class(settings):
    """Handler with the limits of `settings` (homeapp.config's HEADER_TIMEOUT, BODY_TIMEOUT,
    MAX_PACKET_BYTES, MAX_PENDING_OUTPUT_BYTES and PING_TIMEOUT: a client has as long to answer
    the server's close frame as it has to answer a ping)."""
    limits = FrameLimits(settings["MAX_PACKET_BYTES"], settings["MAX_PENDING_OUTPUT_BYTES"],
                         settings["PING_TIMEOUT"])
    return type("Handler", (Handler,), {"header_timeout": settings["HEADER_TIMEOUT"],
                                         "body_timeout": settings["BODY_TIMEOUT"],
                                         "frame_limits": limits})
