"""Socket options for websocket connections served by gevent-websocket.

Each Socket.IO packet leaves as its own small websocket frame. With Nagle's algorithm
on, a frame written while the previous one waits for the client's delayed ACK is held
back for up to 40 ms, which put p99 delivery latency in the hundreds of milliseconds
under load (bench/). Node.js sockets, the original server's, disable Nagle by default.
"""
import socket


def without_nagle(wsgi_app):
    """Wrap a WSGI app so that every websocket it serves sends its frames at once."""
    def app(environ, start_response):
        websocket = environ.get("wsgi.websocket")
        if websocket is not None:
            _set_no_delay(websocket)
        return wsgi_app(environ, start_response)
    return app


def _set_no_delay(websocket):
    handler = getattr(getattr(websocket, "stream", None), "handler", None)
    sock = getattr(handler, "socket", None)
    if sock is None:  # another websocket implementation: leave it as it is
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:  # not a TCP socket (a unix socket behind a proxy)
        pass
