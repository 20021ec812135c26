"""Connection lifecycle, addOnlineUser, joinRoom and leaveRoom."""
import logging

from socketio import exceptions as socketio_errors

from homeapp import names
from homeapp.events.dispatch import handles
from homeapp.identity import Refused
from homeapp.presence import PresenceUnavailable
from homeapp.schemas import presence as schemas
from homeapp.schemas.typing_status import typing_payload
from homeapp.services.access import require_self
from homeapp.services.rooms import room_channel, user_channel

log = logging.getLogger(__name__)


def connect(hub, sid, environ, auth):
    """Fix the socket's identity, if the handshake proves one; refuse the connection otherwise.

    Raises socketio's ConnectionRefusedError, whose message the client gets as connect_error;
    a refused socket leaves no trace here.
    """
    try:
        identity = hub.identifier.identify(environ, auth)
    except Refused as refusal:
        log.info("refused a connection: %s", refusal)
        raise socketio_errors.ConnectionRefusedError(str(refusal)) from None
    if identity is None:
        hub.connections.open(sid)
        return
    hub.connections.open(sid, identity.user_id, identity.username, identity.expires_at, identity.session_id)
    if identity.expires_at is not None:
        hub.expiry.watch(sid, identity.expires_at)


def expire(hub, sid):
    """The socket's token or session reached its end: keep it if the proof was extended, else drop it."""
    conn = hub.connections.get(sid)
    if conn is None:
        return
    try:
        identity = hub.identifier.renew(conn)
    except Refused as refusal:
        log.info("disconnecting socket %s of user %s: %s", sid, conn.user_id, refusal)
        hub.server.disconnect(sid)
        return
    conn.expires_at = identity.expires_at
    if identity.expires_at is not None:
        hub.expiry.watch(sid, identity.expires_at)


def disconnect(hub, sid, reason=None):
    """Stop the socket's typing and take its user offline if it was their last live socket.

    With recovery on, a socket that may come back (`reason` is a drop, or a deploy) has its
    session kept; one that dropped, or whose process is shutting down with Redis, stays online
    for the presence grace (homeapp.operations.shutdown waits for it).
    """
    hub.expiry.forget(sid)
    conn = hub.connections.close(sid)
    if conn is None:
        return
    recovery = hub.recovery
    dropped = kept = False
    if recovery is not None:
        dropped = recovery.dropped(sid, reason)
        kept = recovery.keep(conn, dropped or hub.draining)
    for room_id in conn.typing:
        hub.emit(names.TYPING_STOP, typing_payload(conn, room_id, None),
                 to=room_channel(room_id), skip_sid=sid)
    if not conn.live:
        return
    # a deploy with Redis: its client recovers on another process, which then announces nothing
    deployed = hub.draining and hub.keeper is not None
    if kept and (dropped or deployed) and recovery.grace > 0:
        recovery.hold_presence(conn.user_id, sid)
        return
    hub.take_offline(conn.user_id, sid)


def reinstate(hub, conn, session):
    """Give a recovered socket what its session had: its identity, and its place in presence
    (announcing nothing while its user is still online, as within the grace)."""
    if conn.user_id is None:
        conn.user_id = session.user_id
    if conn.username is None:
        conn.username = session.username
    if not session.live:
        return
    hub.recovery.in_grace.pop(conn.sid, None)  # its entry in presence is its own again
    try:
        hub.add_live_socket(conn.user_id, conn.sid)
    except PresenceUnavailable as exc:
        hub.health.lost(exc)  # not live: the client's addOnlineUser on connect tries again
        return
    conn.live = True


@handles(names.ADD_ONLINE_USER, schema=schemas.add_online_user_schema, anonymous=True)
def add_online_user(hub, conn, payload):
    """Count the socket as live; the first live socket of a user announces "Add".

    The identity is claimed before presence is asked, because asking yields: a second
    addOnlineUser on the same socket meanwhile (two long-polling POSTs) must meet this claim,
    not an empty identity. If presence refuses, the claim is withdrawn: a refused event
    changes nothing.
    """
    user_id = payload["userID"]
    claimed = conn.user_id is None
    if claimed:
        conn.user_id = user_id
    else:
        require_self(conn, user_id, "userID")
    if conn.live or conn.adding:  # the client repeats it on every connect: nothing more to do
        return
    conn.adding = True
    try:
        hub.add_live_socket(user_id, conn.sid)
    except BaseException:
        if claimed:
            conn.user_id = None
        raise
    finally:
        conn.adding = False
    if hub.connections.get(conn.sid) is not conn:  # it disconnected while presence was asked
        hub.remove_live_socket(user_id, conn.sid)
        return
    if conn.username is None:
        conn.username = payload["userUsername"]
    conn.live = True


@handles(names.JOIN_ROOM, schema=schemas.user_channel_schema)
def join_room(hub, conn, user_id):
    """Subscribe the socket to its own user channel."""
    require_self(conn, user_id, "userID")
    hub.enter_channels(conn.sid, (user_channel(user_id),))


@handles(names.LEAVE_ROOM, schema=schemas.user_channel_schema)
def leave_room(hub, conn, user_id):
    """Unsubscribe the socket from its own user channel."""
    require_self(conn, user_id, "userID")
    hub.server.leave_room(conn.sid, user_channel(user_id))
