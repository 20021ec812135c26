"""python-engineio's Socket, tuned for many connections (its versions: homeapp/seams/versions.py).

- Engine.IO spawns a greenlet per socket that sleeps through the ping interval; a timer on
  the event loop does the same for a fraction of its memory. It holds the socket weakly: a
  closed connection is let go of at once, not when its next ping was due.
- A packet for a socket on its websocket is written by its sender, straight to the
  connection (which never blocks), instead of through Engine.IO's queue and writer greenlet:
  a put, a switch and a Timeout per packet were about a tenth of the relay's CPU.
- Output waiting for a client that does not fetch it: past Limits.pending_output bytes in
  Engine.IO's queue (long-polling) the client is disconnected (on a websocket: frames.py).
- A long-polling POST may carry as many packets as the packet limit allows: Engine.IO refuses
  more than 16 (a traceback behind a 200, every packet lost), and socket.io-client batches
  whatever queued while a POST was in flight.
- Its websocket handler is handed to the frame path (homeapp.transport.evented registers it
  with hand_websockets_to), and closing a socket on a websocket does not wait for a queue
  that no writer empties, then writes the close frame.

What this module installs is written against Engine.IO's objects and duck-types ours: a socket's
`direct_websocket` has send(text), its `frames` has close_gracefully().
"""
import logging
import time
import weakref

import gevent
from engineio import packet
from engineio.payload import Payload
from engineio.socket import Socket

log = logging.getLogger("homeapp.transport")

DISTRIBUTION = "python-engineio"


class Limits:
    """What one client may make this process hold; install() sets them from the settings."""

    pending_output = None  # bytes waiting for a client; None: no limit


# Engine.IO's own: the pinger kept for other async modes, the send and poll for packets that
# wait in the socket's queue (polling, upgrading), its close and its websocket handler
_spawn_pinger = Socket.schedule_ping
_queued_send = Socket.send
_queued_poll = Socket.poll
_engineio_close = Socket.close
_engineio_websocket_handler = Socket._websocket_handler

_take_over = None  # what runs a socket's websocket instead of Engine.IO's read loop


def install(config):
    """Replace what this module replaces in python-engineio's Socket, and apply the settings
    that bound what one client can make this process hold. Called by homeapp.seams.install(),
    which checks the libraries' versions first; calling it again only applies the settings again."""
    Limits.pending_output = config["MAX_PENDING_OUTPUT_BYTES"]
    # A packet takes at least a byte and its separator, so the body's own limit
    # (max_http_buffer_size, MAX_PACKET_BYTES) bounds the count.
    Payload.max_decode_packets = config["MAX_PACKET_BYTES"]
    Socket.schedule_ping = _schedule_ping
    Socket.poll = _poll
    Socket.send = _send
    Socket.close = _close
    Socket._websocket_handler = _websocket_handler
    Socket.direct_websocket = None  # the connection the socket writes to, once it is on it
    Socket.frames = None  # the connection the socket is on, once it is on it (evented.py)
    Socket.queued_bytes = 0  # about the bytes of the packets in its queue
    Socket.cut_off = False  # disconnected for not fetching what it was sent


def hand_websockets_to(take_over):
    """Have `take_over(sock, ws)` run each socket's websocket (`ws`: Engine.IO's gevent driver)
    instead of Engine.IO's read loop."""
    global _take_over
    _take_over = take_over


def _websocket_handler(sock, ws):
    if _take_over is None:
        return _engineio_websocket_handler(sock, ws)
    return _take_over(sock, ws)


def driver_connection(ws):
    """The websocket that Engine.IO's gevent driver `ws` wraps: the environ's `wsgi.websocket`."""
    return ws._sock


def read_through(ws, source):
    """Have Engine.IO's gevent driver `ws` read and write through `source` (receive(), send())
    from now on, as when the Admin UI counts packets in its wait and send."""
    ws._sock = source


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


_DIGITS = frozenset("0123456789")


def receive_message(sock, message):
    """Engine.IO's Socket.receive of a websocket message (text or bytes), with the same outcome:
    the text of a MESSAGE whose data is not JSON (every Socket.IO packet: its type, a digit,
    comes first) goes to the server's message handler, run as Engine.IO runs it (its error
    logged, not raised), without the packet object and the decoding that Engine.IO tries first.
    Anything else (bytes among it), Engine.IO's logging on, or handlers run in greenlets of
    their own go through Engine.IO's decoding and receive. Raises what Engine.IO's receive
    raises."""
    server = sock.server
    if message[:1] != "4" or message[1:2] not in _DIGITS or server.async_handlers \
            or server.logger.isEnabledFor(logging.INFO):
        return sock.receive(packet.Packet(encoded_packet=message))
    handler = server.handlers.get("message")
    if handler is not None:
        try:
            handler(sock.sid, message[1:])
        except Exception:
            server.logger.exception("message handler error")
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


def send_message(eio, sid, text):
    """Engine.IO server `eio`'s send_packet of a MESSAGE packet whose data is `text`, without the
    packet object on a websocket: the text is written as it is, "4" before it, so that an emit
    to many sockets encodes its packet once (homeapp.seams.socketio.emit_here). Elsewhere
    (long-polling, an upgrade, what waits in the queue) the packet goes through the queue as
    Engine.IO sends it."""
    sock = eio.sockets.get(sid)
    if sock is None or sock.closed:  # as Engine.IO's send_packet (_get_socket), logged once
        if sock is not None:
            del eio.sockets[sid]
            eio.logger.warning("Cannot send to sid %s", sid)
        else:
            # its rooms outlive it until its disconnect is handled, which a busy process may do
            # seconds later: a warning per emit to them was 395,668 lines (35 MB) for 473
            # sockets in one reconnect storm (bench/recovery.md)
            eio.logger.debug("Cannot send to sid %s", sid)
        return
    ws = _on_websocket(sock)
    if ws is None or not sock.queue.empty():
        return _enqueue(sock, packet.Packet(packet.MESSAGE, text))
    if sock.check_ping_timeout():
        ws.send("4" + text)  # never blocks, never raises


def _enqueue(sock, pkt):
    """Engine.IO's send, through the socket's queue, unless more than Limits.pending_output
    waits there already: then the client, which does not fetch what it is sent (a polling
    client that never polls), is disconnected and the packet dropped."""
    sock.queued_bytes += size(pkt)
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


def session(eio, sid):
    """Engine.IO server `eio`'s socket of session `sid`, or None."""
    return eio.sockets.get(sid)


def session_open(eio, sid):
    """False for a session that is closing, closed or unknown to `eio` (a client's sid from
    before a restart): Engine.IO fails on a closed one with a KeyError and a 500, and logs an
    unknown one as an ERROR."""
    sock = session(eio, sid)
    return sock is not None and not sock.closing and not sock.closed


def end_session(sock):
    """Engine.IO's disconnect, without its wait for a poll that the client may never make.

    Dropped from the server's sockets at once, as Engine.IO's disconnect does: a POST for a
    closed session still there fails with a traceback and a 500.
    """
    sock.close(wait=False, reason=sock.server.reason.TRANSPORT_ERROR)
    sock.server.sockets.pop(sock.sid, None)


def size(pkt):
    """About the bytes a packet takes: its data's length. (Encoding it here would fix its
    encoding before the transport that sends it chooses one.)"""
    data = pkt.data
    return 1 + len(data) if data.__class__ is str or data.__class__ is bytes else 1


def _poll(sock):
    packets = _queued_poll(sock)
    for pkt in packets:
        sock.queued_bytes -= size(pkt)
    return packets


def _close(sock, wait=True, abort=False, reason=None):
    """Engine.IO's close; for a socket on the frame path without waiting on its queue (no
    writer empties it), and followed by the close frame."""
    conn = sock.frames
    if conn is None:
        return _engineio_close(sock, wait, abort, reason)
    _engineio_close(sock, False, abort, reason)  # its CLOSE packet goes straight to conn
    conn.close_gracefully()
