"""The namespace CONNECT with recovery on: answered, in place of python-socketio's (through
homeapp.seams.socketio.handle_connects), by one that speaks Socket.IO 4.6's connection state
recovery.

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

from homeapp.engine.channels import NAMESPACE, event_packet
from homeapp.engine.history import Budget, id_key
from homeapp.engine.positions import offset_of
from homeapp.engine.recovery import MAX_RESTORE_BYTES, Refused
from homeapp.engine.sessions import new_pid
from homeapp.seams import engineio as engineio_seam
from homeapp.seams import socketio as socketio_seam
from homeapp.store.redis_keys import EVERYONE
from homeapp.telemetry import metrics
from homeapp.transport import evented

log = logging.getLogger(__name__)


def install(server, hub):
    """Have the server answer its namespace CONNECT with the recovering one."""

    def handle_connect(server, eio_sid, namespace, data):
        if (namespace or NAMESPACE) != NAMESPACE:
            return socketio_seam.handle_connect(server, eio_sid, namespace, data)
        connect(server, hub, eio_sid, data)

    socketio_seam.handle_connects(server, handle_connect)


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
    its session when it can, else connect it afresh; or refuse it as the connect handler says.
    A recovery runs in one of HOMEAPP_RECOVERY_CONCURRENCY slots, or not at all; while it waits
    for one, its user counts as online (Recovery.admit), and in its turn it lets the live
    traffic go first. Meanwhile it does not hold a worker of the handler pool
    (evented.set_aside): a storm's thousand reconnects waiting their turns held all of them,
    and the live sockets' events waited behind the restores."""
    auth, pid, offset = _split(data)
    if pid is None or hub.draining:  # a draining process refuses it: leave it to another
        outcome = _connect(server, hub, eio_sid, auth, None, pid)
        if outcome is not None:
            metrics.RECOVERIES.labels(outcome).inc()
        return
    with evented.set_aside():
        _recover(server, hub, eio_sid, auth, pid, offset)


def _recover(server, hub, eio_sid, auth, pid, offset):
    recovery = hub.recovery
    recovery.yield_to_live()  # a storm's thousand CONNECTs come after the live sockets' events
    if eio_sid not in server.environ:
        return  # its client went away meanwhile
    identity = _identity(hub, server.environ[eio_sid], auth)
    open_mode = hub.config["AUTH_MODE"] == "open"
    found = recovery.admit(pid, offset, identity, open_mode) if not recovery.crowded() else None
    outcome = None
    try:
        with recovery.slot() as turn:
            replay = None
            if not turn:
                outcome = "budget"
                log.debug("a reconnect gets a fresh session: no turn to restore in time")
            elif eio_sid not in server.environ:
                return  # its client went away while it waited
            else:
                recovery.yield_to_live()
                try:
                    replay = recovery.claim(pid, offset, identity, open_mode, found)
                    outcome = "recovered"
                except Refused as refused:
                    outcome = refused.outcome
                    log.debug("a reconnect gets a fresh session: %s", refused.why)
            outcome = _connect(server, hub, eio_sid, auth, replay, pid, offset, outcome)
    finally:
        recovery.done(found, outcome == "recovered")
    if outcome is not None:
        metrics.RECOVERIES.labels(outcome).inc()


def _connect(server, hub, eio_sid, auth, replay, pid, offset=None, outcome="fresh"):
    """Connect afresh, or restore `replay` under the `pid` presented. Returns the outcome to
    count, None when none was presented or the CONNECT was refused."""
    environ = server.environ.get(eio_sid)
    if environ is None:  # its Engine.IO session ended meanwhile (a session it claimed is spent)
        return None
    session = replay.session if replay is not None else None
    if session is None:
        return _connect_as(server, hub, eio_sid, environ, auth, None, pid, offset, outcome)
    # what is sent to its channels from the moment it is back in any of them waits (Recovery.deliver)
    hub.recovery.restoring[session.sid] = []
    try:
        return _connect_as(server, hub, eio_sid, environ, auth, replay, pid, offset, outcome)
    finally:
        hub.recovery.restoring.pop(session.sid, None)


def _connect_as(server, hub, eio_sid, environ, auth, replay, pid, offset, outcome):
    presented = pid is not None
    session = replay.session if replay is not None else None
    sid = _pre_connect(server.manager, eio_sid, session.sid if session else None)
    if sid is None:
        socketio_seam.send_packet(server, eio_sid, server.packet_class(
            packet.CONNECT_ERROR, data="Unable to connect", namespace=NAMESPACE))
        return None
    if session is not None and sid != session.sid:  # its id is taken here: start afresh
        hub.recovery.restoring.pop(session.sid, None)
        session, outcome = None, "fresh"
    fail_reason = None
    try:
        trigger = socketio_seam.event_trigger(server)
        if trigger("connect", NAMESPACE, sid, environ, auth) is False:
            fail_reason = exceptions.ConnectionRefusedError().error_args
    except exceptions.ConnectionRefusedError as exc:
        fail_reason = exc.error_args
    except ConnectionRefusedError:
        fail_reason = {"message": "Connection refused by server"}
    conn = hub.connections.get(sid)
    if fail_reason is not None or conn is None:
        socketio_seam.send_packet(server, eio_sid, server.packet_class(
            packet.CONNECT_ERROR, data=fail_reason or exceptions.ConnectionRefusedError().error_args,
            namespace=NAMESPACE))
        server.manager.disconnect(sid, NAMESPACE, ignore_queue=True)
        return None
    if session is None:
        pid = new_pid()
    elif not _restore(server, hub, conn, replay, eio_sid, offset):
        # the histories became unreadable midway: its transport is closed, and its client
        # reconnects afresh. Connected first: python-socketio disconnects no socket still
        # connecting; and after a namespace DISCONNECT socket.io-client does not reconnect
        server.manager.connect(sid, NAMESPACE)
        sock = engineio_seam.session(server.eio, eio_sid)
        if sock is not None:  # else it ended meanwhile: disconnected once the CONNECT is done
            engineio_seam.end_session(sock)
        return "fresh"
    conn.pid = pid
    hub.recovery.connected(conn)
    socketio_seam.send_packet(server, eio_sid, server.packet_class(
        packet.CONNECT, {"sid": sid, "pid": pid}, namespace=NAMESPACE))
    server.manager.connect(sid, NAMESPACE)
    if not presented:
        return None
    return "recovered" if session is not None else outcome if outcome != "recovered" else "fresh"


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


def _restore(server, hub, conn, replay, eio_sid, offset):
    """Give a recovered socket its state, channels and missed events, in order. What is sent to
    its channels meanwhile is held (Recovery.deliver) and sent after, without duplicates.
    Returns False when the histories could not be read again."""
    recovery = hub.recovery
    session = replay.session
    held = recovery.restoring[conn.sid]
    try:
        recovery.reinstate(hub, conn, session)
        rooms = [room for room in session.rooms if room not in replay.cut]
        # the histories read next must reach up to where pub/sub takes over
        hub.enter_channels(conn.sid, rooms)
        if not recovery.catch_up(replay, Budget(recovery.max_entries, MAX_RESTORE_BYTES)):
            return False
        recovery.yield_to_live()  # what it missed waits a moment more; the live do not
        for room in replay.cut.intersection(rooms):  # cut while it rejoined
            server.leave_room(conn.sid, room)
        sent = []
        for channel, entry_id, _, message in replay.entries:
            sent.append((channel, entry_id))
            socketio_seam.send_packet(server, eio_sid,
                                      event_packet(server, message, offset_of(entry_id, channel)))
        done = 0
        while done < len(held):  # it may grow while a packet is written
            channel, entry_id, origin, message = held[done]
            done += 1
            if replay.fresh_copy(channel, entry_id, origin):
                replay.seen.add(origin)
                sent.append((channel, entry_id))
                socketio_seam.send_packet(server, eio_sid, event_packet(
                    server, message, offset_of(entry_id, channel)))
        # what was read may still come through the listener, which lags behind Redis
        recovery.settle(conn.sid, {c: id_key(i) for c, i in replay.read_to.items()
                                   if c not in replay.cut})
        # a later drop finds its client's positions among what it was sent here, or at the
        # offset it presented
        conn.since = offset
        recovery.positions.restored(conn.sid, {c: replay.positions[c] for c in (EVERYONE, *rooms)
                                               if c in replay.positions and c not in replay.cut},
                                    sent)
        log.info("socket %s of user %s recovered", conn.sid, conn.user_id)
        log.debug("socket %s restored from %s at %s: %d events", conn.sid, offset, replay.positions,
                  len(sent))
        return True
    finally:
        recovery.restoring.pop(conn.sid, None)
