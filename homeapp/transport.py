"""The websocket frame path of gevent-websocket, tuned for many small frames.

The profile of the private-chat relay (bench/profile.py) put over a third of the
server's CPU here, before any Socket.IO code ran:

- UTF-8 validation of every text frame, in pure Python unless `wsaccel` is importable;
  gevent-websocket picks wsaccel's compiled validator up by itself.
- Unmasking client frames one byte at a time; wsaccel's masker does it in C.
- gevent's `sendall` asks the kernel for the send buffer size (a getsockopt) on every
  call; a frame this small almost always leaves in one `send`.
- Nagle's algorithm: each Socket.IO packet leaves as its own small frame, and a frame
  written while the previous one waits for the client's delayed ACK is held back for
  up to 40 ms (p99 in the hundreds of milliseconds under load). Node.js sockets, the
  original server's, disable Nagle by default.
"""
import socket

from wsaccel.xormask import XorMaskerSimple

try:
    from geventwebsocket.websocket import Header
except ImportError:  # served by simple-websocket (HOMEAPP_WEBSOCKET): nothing here applies
    Header = None


def _unmask(header, payload):
    return XorMaskerSimple(header.mask).process(payload)


if Header is not None:
    # One class attribute for every connection; gevent-websocket calls it for each masked frame.
    Header.unmask_payload = _unmask


def tuned_websockets(wsgi_app):
    """Wrap a WSGI app so that every gevent-websocket connection it serves sends its
    frames at once and in one system call where it can."""
    def app(environ, start_response):
        websocket = environ.get("wsgi.websocket")
        if websocket is not None:
            _tune(websocket)
        return wsgi_app(environ, start_response)
    return app


def _tune(websocket):
    handler = getattr(getattr(websocket, "stream", None), "handler", None)
    sock = getattr(handler, "socket", None)
    if sock is None:  # another websocket implementation: leave it as it is
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:  # not a TCP socket (a unix socket behind a proxy)
        pass
    websocket.raw_write = _writer(sock)


def _writer(sock):
    """sendall without its per-call getsockopt: one send, and sendall for what is left."""
    send, sendall = sock.send, sock.sendall

    def write(data):
        sent = send(data)
        if sent < len(data):
            sendall(memoryview(data)[sent:])
    return write
