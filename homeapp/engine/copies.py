"""One emit, several channels: which copy reaches which socket.

An emit to a list of rooms is appended to each room's channel (a room that is not a channel, a
socket's own id, goes by everyone's), each copy with its own id there. A socket in several of
them gets it once, by the copy of the first channel in the emit's order that it is in, on every
process alike: so no process needs to remember which copies it handled, and a socket's offset
always names a channel it is in.
"""
from homeapp.engine.channels import NAMESPACE, has_channel, rooms_of, skipped
from homeapp.store.redis_keys import EVERYONE


def channel_of(room):
    """The channel an emit to `room` (one room, or None for everyone) is appended to."""
    return room if has_channel(room) else EVERYONE


def channels_of(room):
    """The channels of an emit to `room` (None, one room or a list), in order, without repeats."""
    if room is None:
        return [EVERYONE]
    if isinstance(room, str):
        return [channel_of(room)]
    return list(dict.fromkeys(channel_of(r) for r in room))


def copy_for(manager, message, channel):
    """The emit `message` as its copy on `channel` delivers it on this process: to the rooms of
    that channel, skipping the sockets that the copy of an earlier channel reached. None when
    the message has nothing for that channel."""
    room = message.get("room")
    if room is None or isinstance(room, str):
        return message
    rooms = rooms_of(room)
    if len(rooms) == 1:
        return message
    order = channels_of(room)
    if channel not in order:
        return None
    mine = [r for r in rooms if channel_of(r) == channel]
    earlier = set(order[:order.index(channel)])
    skip = skipped(message)
    if earlier:
        local = manager.rooms.get(NAMESPACE, {})
        for r in rooms:
            if channel_of(r) in earlier:
                skip.extend(local.get(r, {}).keys())
    return dict(message, room=mine[0] if len(mine) == 1 else mine, skip_sid=skip)
