"""Engine.IO's sockets, tuned for many connections; their websockets are frames.py's.

The tuning of Engine.IO's Socket itself (an event-loop pinger, senders writing straight to the
connection, output bounded) is a library seam: homeapp/seams/engineio.py. Here, hostile clients:
what one client can make this process hold is bounded:

- output waiting for a client that does not fetch it (homeapp/seams/engineio.py; on a
  websocket, frames.py);
- a long-polling POST over the packet limit is answered 413 at once, and a request for a
  session that is closing or closed 400, not a 500 (bounded_polling);
- a long-polling POST that Engine.IO could not take whole (not UTF-8, an empty packet, a
  packet type a client never sends, an undecodable packet) is answered 400 and its session
  closed at once: Engine.IO answered some with a traceback and a 200, and held others until
  the client fetched the session's CLOSE, which a hostile one never does (_refused_body);
- a text message Engine.IO cannot decode is dropped instead of ending its connection with a
  traceback (_decode_error, used by evented.py);
- websocket frames and messages over the limits are frames.py's, requests whose headers
  never end homeapp/seams/gevent.py's.
"""
import io
import logging
import string
import urllib.parse

from engineio import packet

from homeapp.seams.engineio import end_session, session, session_open
from homeapp.transport.bodies import body_within

log = logging.getLogger("homeapp.transport")


# how every packet a client sends starts ("42[...", "3", "2probe"): an Engine.IO packet
# type, then a letter, a digit or nothing. Engine.IO always decodes those.
_PLAIN_STARTS = frozenset(kind + after for kind in "0123456"
                          for after in ["", *string.ascii_letters, *string.digits])


# what Engine.IO's Socket.receive takes from a client: CLOSE, PONG, MESSAGE, UPGRADE
_CLIENT_TYPES = frozenset("1345")


def _refused_body(body):
    """Why a long-polling POST's body is refused, or None when Engine.IO can take every packet."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    for encoded in text.split("\x1e"):
        if not encoded or encoded[0] not in _CLIENT_TYPES:
            return f"a packet of type {encoded[:1]!r}"
        if encoded[:2] not in _PLAIN_STARTS and _decode_error(encoded) is not None:
            return "an undecodable packet"
    return None


def _decode_error(text):
    """Why Engine.IO cannot decode a text message, or None when it can: decodes it once."""
    try:
        packet.Packet(encoded_packet=text)
    except Exception as exc:  # ValueError, binascii.Error, RecursionError (deep JSON)
        return exc
    return None


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
                _close_session(eio, environ, "a long-polling POST of more than the packet limit")
                # worker.Handler closes the connection without reading the rest
                start_response("413 Payload Too Large",
                               [("Content-Type", "text/plain"), ("Connection", "close")])
                return [b"Payload Too Large"]
            refused = _refused_body(body)
            if refused is not None and _session_open(eio, environ):
                _close_session(eio, environ, f"a long-polling POST with {refused}")
                start_response("400 Bad Request", [("Content-Type", "text/plain")])
                return [b"Bad Request"]
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
    return sid is None or session_open(eio, sid)


def _sid(environ):
    return urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("sid", [None])[0]


def _close_session(eio, environ, what):
    """Close the Engine.IO session a request names, as for a websocket message over the limit."""
    sid = _sid(environ)
    sock = session(eio, sid)
    log.info("refused %s from %s", what, sid)
    if sock is not None:
        end_session(sock)
