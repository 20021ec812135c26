"""Room ids (docs/protocol.md): members, canonical form, Socket.IO room names.

A room id is two or more distinct user ids joined by ":" and sorted numerically.
Membership is read from the id itself and nowhere else.
"""
from functools import lru_cache

from homeapp.errors import RATE_LIMITED, EventError

USER_ID_MAX_DIGITS = 20


def is_user_id(text):
    """True for a string of 1 to 20 ASCII digits."""
    return (isinstance(text, str) and 0 < len(text) <= USER_ID_MAX_DIGITS
            and text.isascii() and text.isdigit())


def canonical(members):
    """The room id of a collection of distinct user ids."""
    return ":".join(sorted(members, key=int))


def members_of(room_id, max_members):
    """Split a room id into its member ids.

    Raises ValueError with a message for the user when it is not canonical.
    """
    if not isinstance(room_id, str):
        raise ValueError("Room id must be a string.")
    _check(room_id, max_members)
    return tuple(room_id.split(":"))


# The schemas check every room id of every `message` (its own and its unread entries'), and
# the active rooms of a process repeat. Only valid ids are remembered (a ValueError is not
# cached), at most 1,024 of at most about 1 KB each.
@lru_cache(maxsize=1024)
def _check(room_id, max_members):
    members = room_id.split(":")
    if len(members) < 2:
        raise ValueError("Room id needs at least two user ids joined by ':'.")
    if len(members) > max_members:
        raise ValueError(f"Room has more than {max_members} members.")
    if not all(is_user_id(member) for member in members):
        raise ValueError("Room id members must be user ids of 1 to 20 digits.")
    if len(set(members)) != len(members):
        raise ValueError("Room id repeats a member.")
    if canonical(members) != room_id:
        raise ValueError(f"Room id must be sorted numerically: {canonical(members)!r}.")


def with_member(room_id, user_id):
    """The id of the room that adds user_id to room_id's members."""
    return canonical(room_id.split(":") + [user_id])


def without_member(room_id, user_id):
    """The id of the room that drops user_id from room_id's members."""
    return canonical([m for m in room_id.split(":") if m != user_id])


def recipients_of(room_id, sender_id):
    """The members of room_id other than the sender."""
    return [m for m in room_id.split(":") if m != sender_id]


USER_CHANNEL, ROOM_CHANNEL = "user:", "room:"  # the prefixes of the app's Socket.IO rooms


def user_channel(user_id):
    """Socket.IO room of one user's sockets, on every process."""
    return USER_CHANNEL + user_id


def room_channel(room_id):
    """Socket.IO room of the sockets that have a chat view open."""
    return ROOM_CHANNEL + room_id


def is_room_channel(channel):
    """Whether a Socket.IO room is a chat room's channel (the ones HOMEAPP_MAX_ROOMS counts)."""
    return isinstance(channel, str) and channel.startswith(ROOM_CHANNEL)


def rooms_after_opening(open_rooms, opening, limit, still_in):
    """The room channels a socket is in once it opens `opening` (new to it) too.

    `open_rooms` may name rooms the socket was taken out of without a leave of its own (a kick,
    a deleted room): at the limit they are dropped, by asking `still_in(channel)`, before the
    count is final. Raises EventError(RATE_LIMITED) when that count passes `limit`.
    """
    if len(open_rooms) + len(opening) > limit:
        open_rooms = {channel for channel in open_rooms if still_in(channel)}
        if len(open_rooms) + len(opening) > limit:
            raise EventError(RATE_LIMITED, f"A socket may have at most {limit} rooms open.")
    return open_rooms | set(opening)
