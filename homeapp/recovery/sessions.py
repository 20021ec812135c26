"""The sessions of dropped sockets, kept for the recovery window under their private id.

The private id (`pid`) is a bearer secret: whoever presents it within the window, with the same
identity, gets the socket back. It is never logged and never stored: a session is kept under the
SHA-256 of its pid, so a lookup, timed or not, tells nothing about a pid, and the digest found is
compared in constant time. A session is claimed once: the first reconnect that presents its pid
takes it (read and deleted in one step), so two reconnects racing with one pid cannot both recover.
"""
import hashlib
import hmac
import json
import secrets
import time
from collections import OrderedDict


from homeapp.cluster import redis_keys

PID_BYTES = 24  # 192 random bits, in 32 URL-safe characters


def new_pid():
    return secrets.token_urlsafe(PID_BYTES)


def digest(pid):
    return hashlib.sha256(pid.encode()).hexdigest()


class Session:
    """What a dropped socket had: its id, who it was, whether it counted for presence, and the
    channels (user:, room:) it had joined."""

    __slots__ = ("sid", "user_id", "username", "live", "rooms", "since", "key")

    def __init__(self, sid, user_id, username, live, rooms, since=None, key=None):
        self.sid = sid
        self.user_id = user_id
        self.username = username
        self.live = live
        self.rooms = list(rooms)
        self.since = since  # the log's position when it connected
        self.key = key  # the digest of its pid

    def dumps(self):
        return json.dumps({"sid": self.sid, "user": self.user_id, "name": self.username,
                           "live": self.live, "rooms": self.rooms, "since": self.since,
                           "key": self.key})

    @classmethod
    def loads(cls, text):
        """Raises ValueError (or KeyError, TypeError) for a value this server did not write."""
        data = json.loads(text)
        return cls(data["sid"], data["user"], data["name"], bool(data["live"]), data["rooms"],
                   data.get("since"), data["key"])


def _matches(session, key):
    return session is not None and hmac.compare_digest(session.key or "", key)


class MemorySessions:
    """Sessions in this process, for a deployment without Redis; at most `capacity`, the oldest
    forgotten first, so that clients dropping connections on purpose cannot fill the memory."""

    def __init__(self, seconds, capacity=100_000):
        self._seconds = seconds
        self._capacity = capacity
        self._kept = OrderedDict()  # digest -> (monotonic deadline, Session), oldest first

    def save(self, pid, session):
        key = session.key = digest(pid)
        self._kept[key] = (time.monotonic() + self._seconds, session)
        self._kept.move_to_end(key)
        while len(self._kept) > self._capacity:
            self._kept.popitem(last=False)

    def claim(self, pid):
        """The session of `pid`, taken out of the store; None when unknown or expired."""
        key = digest(pid)
        deadline, session = self._kept.pop(key, (0, None))
        if deadline < time.monotonic() or not _matches(session, key):
            return None
        return session


class RedisSessions:
    """Sessions in Redis, so that a socket recovers on any process. Raises RedisError."""

    def __init__(self, client, seconds):
        self._redis = client
        self._ms = max(1, int(seconds * 1000))

    def save(self, pid, session):
        session.key = digest(pid)
        self._redis.set(redis_keys.recovery_session(session.key), session.dumps(), px=self._ms)

    def claim(self, pid):
        key = digest(pid)
        text = self._redis.getdel(redis_keys.recovery_session(key))
        if text is None:
            return None
        try:
            session = Session.loads(text)
        except (ValueError, KeyError, TypeError):
            return None
        return session if _matches(session, key) else None
