"""Engine.IO's sockets, tuned for many connections; their websockets are frames.py's.

- Engine.IO spawns a greenlet per socket that sleeps through the ping interval; a timer on
  the event loop does the same for a fraction of its memory. It holds the socket weakly: a
  closed connection is let go of at once, not when its next ping was due.
- gevent records, for every greenlet it spawns, the stack that spawned it: a debugging aid
  (`track_greenlet_tree`). Turned off.
- A packet for a socket on its websocket is written by its sender, straight to the
  connection (which never blocks), instead of through Engine.IO's queue and writer greenlet:
  a put, a switch and a Timeout per packet were about a tenth of the relay's CPU.

Hostile clients. What one client can make this process hold is bounded:

- output waiting for a client that does not fetch it: past Limits.pending_output bytes the
  client is disconnected, in Engine.IO's queue (long-polling) as on a websocket (frames.py);
- a long-polling POST over the packet limit is answered 413 at once, and a request for a
  session that is closing or closed 400, not a 500 (bounded_polling);
- a text message Engine.IO cannot decode is dropped instead of ending its connection with a
  traceback (_decode_error, used by evented.py);
- websocket frames and messages over the limits are frames.py's, requests whose headers
  never end worker.py's.
"""
import io
import logging
import string
import time
import urllib.parse
import weakref

import gevent
from engineio import packet
from engineio.socket import Socket

from homeapp.transport.bodies import body_within

log = logging.getLogger("homeapp.transport")


class Limits:
    """What one client may make this process hold; install() sets them from the settings."""

    pending_output = None  # bytes waiting for a client; None: no limit


def install(config):
    """Replace what this module replaces in gevent and python-engineio, and
    apply the settings that bound what one client can make this process hold. Called by
    homeapp.transport.overrides.install(), which checks the libraries' versions first; calling
    it again only applies the settings again."""
    Limits.pending_output = config["MAX_PENDING_OUTPUT_BYTES"]
    gevent.config.track_greenlet_tree = False
    Socket.schedule_ping = _schedule_ping
    Socket.poll = _poll
    Socket.send = _send
    Socket.direct_websocket = None  # the connection the socket is on, once it is on it (evented.py)
    Socket.queued_bytes = 0  # about the bytes of the packets in its queue
    Socket.cut_off = False  # disconnected for not fetching what it was sent


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
    to the connection, which never blocks (last_ping is now, so send cannot find the ping timed out
    and close the socket from here)."""
    timer.close()
    sock = socket_ref()
    if sock is not None and not sock.closing and not sock.closed:
        sock.last_ping = time.time()
        sock.send(packet.Packet(packet.PING))


# Engine.IO's own, for packets that wait in the socket's queue (polling, upgrading)
_queued_send = Socket.send
_queued_poll = Socket.poll


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
    """The connection the socket writes to directly, or None (polling, upgrading)."""
    ws = sock.direct_websocket
    return ws if ws is not None and sock.upgraded and not sock.upgrading else None


def _send(sock, pkt):
    ws = _on_websocket(sock)
    if ws is None or not sock.queue.empty():  # behind what is queued, so that the order holds
        return _enqueue(sock, pkt)
    if sock.check_ping_timeout():
        ws.send(pkt.encode())  # never blocks, never raises


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
    packets = _queued_poll(sock)
    for pkt in packets:
        sock.queued_bytes -= _size(pkt)
    return packets


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
