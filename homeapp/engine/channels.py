"""Which emits are to channels, and so logged and recoverable: those on the app's namespace to a
user's channel (user:{id}), a room's (room:{id}), or everyone."""
from socketio import packet

from homeapp.services.rooms import ROOM_CHANNEL, USER_CHANNEL
from homeapp.store.redis_keys import EVERYONE

NAMESPACE = "/"
CHANNEL_PREFIXES = (USER_CHANNEL, ROOM_CHANNEL)


def has_channel(room):
    """Whether a Socket.IO room is a channel: the app's rooms (user:, room:) are; a socket's own
    room (its id) is not, nor is a room of the Admin UI's."""
    return isinstance(room, str) and room.startswith(CHANNEL_PREFIXES)


def channel_of_room(namespace, room):
    """The channel a Socket.IO room of this process is in (everyone's for room None), or None (a
    socket's own room, a room of another namespace)."""
    if namespace != NAMESPACE:
        return None
    if room is None:
        return EVERYONE
    return room if has_channel(room) else None


def rooms_of(room):
    """A message's room as a tuple: python-socketio takes one room or a list of them."""
    if room is None:
        return ()
    return (room,) if isinstance(room, str) else tuple(room)


def logged(message):
    """Whether an emit is recoverable (and carries an offset): one to a channel or to everyone on the app's
    namespace, without an acknowledgement asked of its recipients."""
    if message.get("method", "emit") != "emit" or message.get("callback"):
        return False
    return to_channel(message.get("namespace"), message.get("room"))


def to_channel(namespace, room):
    """Whether an emit to `room` on `namespace` is to a channel or to everyone, on the app's
    namespace (which None stands for)."""
    if namespace not in (None, NAMESPACE):
        return False
    if room is None:
        return True
    if isinstance(room, str):
        return room.startswith(CHANNEL_PREFIXES)
    return any(has_channel(r) for r in room)


def skipped(message):
    """The sids a message skips, as a list."""
    skip = message.get("skip_sid")
    if skip is None:
        return []
    return list(skip) if isinstance(skip, (list, tuple)) else [skip]


def addressed(manager, room, sid):
    """Whether a socket of this process is among the recipients of an emit to `room`."""
    rooms = manager.rooms.get(NAMESPACE, {})
    if room is None:
        return sid in rooms.get(None, ())
    return any(sid in rooms.get(r, ()) for r in rooms_of(room))


def for_session(session, entries):
    """The entries of `entries` addressed to a restored session, in order."""
    rooms = set(session.rooms)
    for offset, message in entries:
        if not logged(message) or session.sid in skipped(message):
            continue
        room = message.get("room")
        if room is None or rooms.intersection(rooms_of(room)):
            yield offset, message


def event_packet(server, message, offset):
    """The Socket.IO packet of a logged emit, its offset as the last argument."""
    return server.packet_class(packet.EVENT, namespace=NAMESPACE,
                               data=[message["event"], *(message.get("data") or ()), offset])
