"""The namespace CONNECT with recovery on: python-socketio's Server._handle_connect, replaced
(by homeapp.transport.overrides) with one that speaks Socket.IO 4.6's connection state recovery.

The reply carries `{"sid", "pid"}`. A CONNECT whose auth holds `pid` and `offset` (the client
merges them into whatever auth it sends) is a recovery: if the session is claimed, with the same
identity, and the log still holds the offset, the socket gets its old id and channels back, then
what it missed, then the reply with the same `pid`, which is how the client knows it recovered
(socket.recovered). Otherwise the CONNECT goes on as a fresh one, with a new id and a new `pid`.
Everything else is as python-socketio does it, for the one namespace this server has.
"""
import logging

from socketio import exceptions, packet
from bidict import ValueDuplicationError

from homeapp.events import lifecycle
from homeapp.operations import metrics
from homeapp.recovery.channels import NAMESPACE, event_packet, for_session
from homeapp.recovery.log import offset_key
from homeapp.recovery.sessions import new_pid

log = logging.getLogger(__name__)


def install(server, hub):
    """Replace the server's namespace CONNECT handling with the recovering one."""
    original = server._handle_connect

    def handle_connect(eio_sid, namespace, data):
        if (namespace or NAMESPACE) != NAMESPACE:
            return original(eio_sid, namespace, data)
        connect(server, hub, eio_sid, data)

    server._handle_connect = handle_connect


def _split(data):
    """(auth without the recovery fields, pid, offset) of a CONNECT's payload."""
    if not isinstance(data, dict) or "pid" not in data:
        return data, None, None
    auth = {key: value for key, value in data.items() if key not in ("pid", "offset")}
    return auth or None, data.get("pid"), data.get("offset")


def _identity(hub, environ, auth):
    """Who the reconnect proves it is, or None (open mode without a handshake userID, or a
    refusal, which the connect handler then answers)."""
    try:
        return hub.identifier.identify(environ, auth)
    except Exception:  # Refused, or the session store unreachable: the connect handler answers it
        return None


def connect(server, hub, eio_sid, data):
    """Handle the namespace CONNECT of Engine.IO session `eio_sid` with payload `data`: recover
    its session when it can, else connect it afresh; or refuse it as the connect handler says."""
    auth, pid, offset = _split(data)
    presented = pid is not None
    environ = server.environ[eio_sid]
    claimed = None
    if pid is not None and not hub.draining:  # a draining process refuses it: leave it to another
        claimed = hub.recovery.claim(pid, offset, _identity(hub, environ, auth),
                                     hub.config["AUTH_MODE"] == "open")
    session, missed, offset = claimed or (None, None, None)
    sid = _pre_connect(server.manager, eio_sid, session.sid if session else None)
    if sid is None:
        server._send_packet(eio_sid, server.packet_class(
            packet.CONNECT_ERROR, data="Unable to connect", namespace=NAMESPACE))
        return
    if session is not None and sid != session.sid:  # its id is taken here: start afresh
        session = None
    fail_reason = None
    try:
        if server._trigger_event("connect", NAMESPACE, sid, environ, auth) is False:
            fail_reason = exceptions.ConnectionRefusedError().error_args
    except exceptions.ConnectionRefusedError as exc:
        fail_reason = exc.error_args
    except ConnectionRefusedError:
        fail_reason = {"message": "Connection refused by server"}
    conn = hub.connections.get(sid)
    if fail_reason is not None or conn is None:
        server._send_packet(eio_sid, server.packet_class(
            packet.CONNECT_ERROR, data=fail_reason or exceptions.ConnectionRefusedError().error_args,
            namespace=NAMESPACE))
        server.manager.disconnect(sid, NAMESPACE, ignore_queue=True)
        return
    if session is None:
        pid = new_pid()
        conn.since = hub.recovery.position()
    elif _restore(server, hub, conn, session, missed, offset, eio_sid):
        conn.since = offset  # what came after it has been sent: a client without an offset had it all
    else:
        server.disconnect(sid)  # the log became unreadable midway: it reconnects afresh
        return
    if presented:
        metrics.RECOVERIES.labels("recovered" if session is not None else "fresh").inc()
    conn.pid = pid
    hub.recovery.connected(conn)
    server._send_packet(eio_sid, server.packet_class(
        packet.CONNECT, {"sid": sid, "pid": pid}, namespace=NAMESPACE))
    server.manager.connect(sid, NAMESPACE)


def _pre_connect(manager, eio_sid, sid):
    """The manager's pre_connect, keeping `sid` when given and free. Returns None when the
    Engine.IO session is connected to the namespace already."""
    if sid is None or sid in manager.rooms.get(NAMESPACE, {}).get(None, {}):
        return manager.pre_connect(eio_sid, NAMESPACE)
    try:
        manager.basic_enter_room(sid, NAMESPACE, None, eio_sid=eio_sid)
    except ValueDuplicationError:
        return None
    manager.basic_enter_room(sid, NAMESPACE, sid, eio_sid=eio_sid)
    manager.pending_connect.setdefault(NAMESPACE, []).append(sid)
    return sid


def _restore(server, hub, conn, session, missed, offset, eio_sid):
    """Give a recovered socket its state, channels and missed events, in order. What is sent to
    its channels meanwhile is held (Recovery.deliver) and sent after, without duplicates.
    Returns False when the log could not be read again."""
    recovery = hub.recovery
    held = recovery.restoring[conn.sid] = []
    try:
        lifecycle.reinstate(hub, conn, session)
        # the log read next must reach up to where pub/sub takes over
        hub.enter_channels(conn.sid, session.rooms)
        last = missed[-1][0] if missed else offset
        tail = recovery.catch_up(last)  # logged while it rejoined
        if tail is None:
            return False
        sent = offset_key(offset)
        for entry_offset, message in [*for_session(session, missed), *for_session(session, tail)]:
            sent = _send_after(server, eio_sid, sent, entry_offset, message)
        held_sent = 0
        while held_sent < len(held):  # it may grow while a packet is written
            sent = _send_after(server, eio_sid, sent, *held[held_sent])
            held_sent += 1
        log.info("socket %s of user %s recovered", conn.sid, conn.user_id)
        return True
    finally:
        del recovery.restoring[conn.sid]


def _send_after(server, eio_sid, sent, offset, message):
    """Send a logged event unless its offset is not past `sent`; returns the new `sent`."""
    key = offset_key(offset)
    if key <= sent:
        return sent
    server._send_packet(eio_sid, event_packet(server, message, offset))
    return key
