"""The Socket.IO packets a client may send: python-socketio would take more than this protocol does.

guard() registers with homeapp/seams/socketio.py, which passes it python-socketio's Engine.IO
messages (a private method of its Server; homeapp.seams checks python-socketio's version first).
"""
import logging

from homeapp.seams import socketio as socketio_seam
from homeapp.seams.engineio import end_session
from homeapp.telemetry import metrics

log = logging.getLogger("homeapp.transport")

# Socket.IO packet types 5 and 6: an event or ack whose binary attachments follow
_BINARY_PACKETS = ("5", "6")


def guard(server):
    """Make `server` drop a packet that does not decode (bad JSON, an event without a name) with
    one log line instead of a traceback per packet, the socket staying connected; and close the
    connection of a client that sends a binary packet or attachment: the protocol is JSON text
    only, and python-socketio would otherwise hold every attachment of an unfinished binary
    packet in memory."""
    socketio_seam.guard_messages(server, _guarded)


def _guarded(server, eio_sid, data):
    if not isinstance(data, str) or data[:1] in _BINARY_PACKETS:
        log.info("closing %s: it sent a binary Socket.IO packet", eio_sid)
        metrics.count_malformed_packet()
        sock = server.eio.sockets.get(eio_sid)
        if sock is not None:  # not Engine.IO's disconnect: it waits for a poll that may never come
            end_session(sock)
        return None
    try:
        return socketio_seam.handle_message(server, eio_sid, data)
    except (ValueError, KeyError, IndexError, TypeError, RecursionError) as exc:
        metrics.count_malformed_packet()
        log.info("dropped a malformed packet from %s: %s: %s", eio_sid, type(exc).__name__, exc)
