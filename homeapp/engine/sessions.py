"""The sessions of dropped sockets, kept for the recovery window under their private id.

The private id (`pid`) is a bearer secret: whoever presents it within the window, with the same
identity, gets the socket back. It is never logged and never stored: a session is kept under the
SHA-256 of its pid, so a lookup, timed or not, tells nothing about a pid, and the digest found is
compared in constant time. A session is claimed once: the first reconnect that presents its pid
takes it, and only after its identity was checked: a session is read, the reconnect's identity
compared with its user's, and only then consumed, atomically (deleted only if it still holds what
was read), so that a reconnect with the wrong identity leaves it to its owner, and two reconnects
racing with one pid cannot both recover.
"""
import hashlib
import hmac
import json
import secrets
import time
from collections import OrderedDict


from homeapp.store import redis_keys
from homeapp.store.redis_keys import EVERYONE

PID_BYTES = 24  # 192 random bits, in 32 URL-safe characters


def new_pid():
    return secrets.token_urlsafe(PID_BYTES)


def digest(pid):
    return hashlib.sha256(pid.encode()).hexdigest()


class Session:
    """What a dropped socket had: its id, who it was, whether it counted for presence, and where
    it was in each of its channels (homeapp.engine.positions: {channel: [base, start, tail]},
    everyone's "*" among them), and the offset a recovery last left its client with."""

    __slots__ = ("sid", "user_id", "username", "live", "channels", "anchor", "key", "text")

    def __init__(self, sid, user_id, username, live, channels, anchor=None, key=None):
        self.sid = sid
        self.user_id = user_id
        self.username = username
        self.live = live
        self.channels = channels
        self.anchor = anchor
        self.key = key  # the digest of its pid
        self.text = None  # as stored, for the compare-and-delete

    @property
    def rooms(self):
        """The app's rooms it was in (its channels but everyone's)."""
        return [channel for channel in self.channels if channel != EVERYONE]

    def dumps(self):
        return json.dumps({"sid": self.sid, "user": self.user_id, "name": self.username,
                           "live": self.live, "channels": self.channels, "anchor": self.anchor,
                           "key": self.key}, separators=(",", ":"))

    @classmethod
    def loads(cls, text):
        """Raises ValueError (or KeyError, TypeError) for a value this server did not write."""
        data = json.loads(text)
        channels = data["channels"]
        if not isinstance(channels, dict):
            raise TypeError("channels")
        session = cls(data["sid"], data["user"], data["name"], bool(data["live"]), channels,
                      data.get("anchor"), data["key"])
        session.text = text
        return session


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

    def save_all(self, sessions):
        for pid, session in sessions:
            self.save(pid, session)

    def find(self, pid):
        """The session of `pid`, left in the store; None when unknown or expired."""
        key = digest(pid)
        deadline, session = self._kept.get(key, (0, None))
        if deadline < time.monotonic() or not _matches(session, key):
            return None
        return session

    def consume(self, session):
        """Take a found session out of the store; False when another reconnect took it first."""
        kept = self._kept.get(session.key)
        if kept is None or kept[1] is not session:
            return False
        del self._kept[session.key]
        return True


# Deletes a session only if it still holds what was read. KEYS: the session. ARGV: its value.
_CONSUME = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisSessions:
    """Sessions in Redis, so that a socket recovers on any process. Raises RedisError."""

    def __init__(self, client, seconds):
        self._redis = client
        self._ms = max(1, int(seconds * 1000))
        self._consume = client.register_script(_CONSUME)

    def save(self, pid, session):
        self.save_all([(pid, session)])

    def save_all(self, sessions):
        """[(pid, session)], in pipelined round trips."""
        for start in range(0, len(sessions), 500):
            pipe = self._redis.pipeline(transaction=False)
            for pid, session in sessions[start:start + 500]:
                session.key = digest(pid)
                pipe.set(redis_keys.recovery_session(session.key), session.dumps(), px=self._ms)
            pipe.execute()

    def find(self, pid):
        key = digest(pid)
        text = self._redis.get(redis_keys.recovery_session(key))
        if text is None:
            return None
        try:
            session = Session.loads(text)
        except (ValueError, KeyError, TypeError):
            return None
        return session if _matches(session, key) else None

    def consume(self, session):
        return self._consume(keys=[redis_keys.recovery_session(session.key)],
                             args=[session.text]) == 1
