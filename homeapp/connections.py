"""What this process knows about each of its sockets: identity, liveness, typing, rate limits."""
import time


class TokenBucket:
    """Allows `rate` events per second on average and bursts of up to `burst`."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate, burst):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def allow(self):
        """Take one token; False when the bucket is empty."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class Connection:
    """One socket. Its identity, once set, never changes (docs/auth.md)."""

    __slots__ = ("sid", "user_id", "username", "expires_at", "session_id", "live", "adding", "typing",
                 "buckets", "pid", "since", "rooms")

    def __init__(self, sid, user_id=None, username=None, expires_at=None, session_id=None):
        self.sid = sid
        self.user_id = user_id
        self.username = username
        self.expires_at = expires_at  # Unix seconds when its token or session ends; None: never
        self.session_id = session_id  # the express-session it was proven by, re-read at expiry
        self.live = False       # counted for presence, from its addOnlineUser on
        self.adding = False     # its addOnlineUser is waiting on the presence store
        self.typing = {}        # room ids it is typing in, oldest first (a dict keeps the order)
        self.buckets = {}       # rate class -> TokenBucket, made on first use
        self.pid = None         # its recovery session's private id, with recovery on
        self.since = None       # with recovery on: the offset a recovery left its client with
        self.rooms = set()      # room: channels it opened, some maybe closed since (services.rooms)


class Connections:
    """The sockets of this process, by sid."""

    def __init__(self, rates):
        self._by_sid = {}
        self._rates = rates  # rate class -> (rate, burst); a rate of 0 means unlimited

    def open(self, sid, user_id=None, username=None, expires_at=None, session_id=None):
        conn = Connection(sid, user_id, username, expires_at, session_id)
        self._by_sid[sid] = conn
        return conn

    def get(self, sid):
        return self._by_sid.get(sid)

    def close(self, sid):
        return self._by_sid.pop(sid, None)

    def of_user(self, user_id):
        return [conn for conn in self._by_sid.values() if conn.user_id == user_id]

    def live(self):
        """The sockets counted for presence, from their addOnlineUser on."""
        return [conn for conn in self._by_sid.values() if conn.live]

    def __len__(self):
        return len(self._by_sid)

    def sids(self):
        """A snapshot of the open sockets' ids."""
        return list(self._by_sid)

    def allow(self, conn, rate_class):
        """Charge one event of rate_class to the socket; False when it is over its limit."""
        bucket = conn.buckets.get(rate_class)
        if bucket is None:
            rate, burst = self._rates[rate_class]
            if rate <= 0:
                return True
            bucket = conn.buckets[rate_class] = TokenBucket(rate, burst)
        return bucket.allow()
