"""`HOMEAPP_AUTH=session`: the REST API's express-session cookie and the session it names in Redis.

What express-session, cookie-signature and connect-redis write, read back here:
the cookie `sessionLog=s%3A<sid>.<signature>`, the signature being
base64(HMAC-SHA256(secret, sid)) without `=` padding, and the session's JSON at
`sess:<sid>` with `user: {userID, username, type}` and `cookie: {expires, ...}`.
"""
import base64
import hashlib
import hmac
import json
import logging
import time
from datetime import datetime
from urllib.parse import unquote

import redis

from homeapp.identity import Identity, Refused
from homeapp.services.rooms import is_user_id
from homeapp.store import redis_keys

log = logging.getLogger("homeapp.identity")

SIGNED = "s:"  # express-session's mark of a signed cookie value


def cookie_value(header, name):
    """The first value of cookie `name` in a Cookie header, decoded as the npm `cookie` package does.

    None when the header does not carry it.
    """
    for pair in header.split(";"):
        key, eq, value = pair.partition("=")
        if not eq or key.strip() != name:
            continue
        value = value.strip()
        if value.startswith('"'):
            value = value[1:-1]
        return unquote(value) if "%" in value else value
    return None


def sign(value, secret):
    """cookie-signature's sign(): `value.` plus the unpadded base64 HMAC-SHA256 of value."""
    mac = hmac.new(secret.encode(), value.encode(), hashlib.sha256).digest()
    return f"{value}.{base64.b64encode(mac).decode().rstrip('=')}"


def unsign(signed, secrets):
    """The value of `value.signature` when one of the secrets signed it, else None.

    Compares in constant time, and tries every secret so that timing tells nothing either.
    """
    value, dot, _ = signed.rpartition(".")
    if not dot:
        return None
    given = signed.encode()
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(sign(value, secret).encode(), given)
    return value if matched else None


def _user_id(raw):
    """The REST API stores userID as a JSON number or string; both become the string form."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    return raw if is_user_id(raw) else None


def _cookie_expiry(session):
    """Unix seconds of the session cookie's `expires` (JSON of a JavaScript Date), or None."""
    cookie = session.get("cookie")
    expires = cookie.get("expires") if isinstance(cookie, dict) else None
    if expires is None:
        return None
    try:
        return datetime.fromisoformat(expires).timestamp()
    except (TypeError, ValueError):
        raise Refused("unreadable session: bad cookie.expires") from None


class SessionStore:
    """Reads sessions from the Redis the REST API's connect-redis writes to; never writes."""

    def __init__(self, client, prefix, max_username_length=64, clock=time.time):
        self._redis = client
        self._prefix = prefix
        self._max_username_length = max_username_length
        self._clock = clock

    def _fetch(self, session_id):
        """The session's JSON and its key's time to live in ms (negative: none, or gone)."""
        pipe = self._redis.pipeline(transaction=False)
        key = redis_keys.session(self._prefix, session_id)
        pipe.get(key)
        pipe.pttl(key)
        try:
            return pipe.execute()
        except redis.RedisError as exc:
            log.warning("session store unavailable: %s", exc)
            raise Refused("session store unavailable; try again") from None

    def load(self, session_id):
        """The identity of a live session; it ends at the cookie's `expires` or the key's TTL.

        Raises Refused for an unknown, expired or malformed session, or when Redis is down.
        """
        raw, ttl_ms = self._fetch(session_id)
        if raw is None:
            raise Refused("unknown session")
        try:
            session = json.loads(raw)
        except ValueError:
            raise Refused("unreadable session") from None
        user = session.get("user") if isinstance(session, dict) else None
        if not isinstance(user, dict):
            raise Refused("session has no user: log in first")
        user_id, username = _user_id(user.get("userID")), user.get("username")
        if user_id is None:
            raise Refused("session user has no valid userID")
        if not isinstance(username, str) or not 0 < len(username) <= self._max_username_length:
            raise Refused("session user has no valid username")
        now = self._clock()
        ends = [t for t in (_cookie_expiry(session), now + ttl_ms / 1000 if ttl_ms > 0 else None)
                if t is not None]
        expires_at = min(ends) if ends else None
        if expires_at is not None and expires_at <= now:
            raise Refused("session expired")
        return Identity(user_id, username, expires_at=expires_at, session_id=session_id)


class SessionIdentifier:
    """The handshake's signed session cookie names a session in Redis: that session's user."""

    def __init__(self, cookie_name, secrets, store):
        self._cookie_name = cookie_name
        self._secrets = secrets
        self._store = store

    def identify(self, environ, auth):
        """The identity of the cookie's session. Raises Refused saying what is missing or wrong."""
        raw = cookie_value(environ.get("HTTP_COOKIE", ""), self._cookie_name)
        if not raw:
            raise Refused(f"missing session cookie {self._cookie_name}: log in first")
        if not raw.startswith(SIGNED):
            raise Refused("session cookie is not signed")
        session_id = unsign(raw[len(SIGNED):], self._secrets)
        if not session_id:
            raise Refused("bad session cookie signature")
        return self._store.load(session_id)

    def renew(self, conn):
        """Re-read a socket's session at its expiry: the REST API may have extended it.

        Raises Refused when it is gone, expired or now someone else's.
        """
        identity = self._store.load(conn.session_id)
        if identity.user_id != conn.user_id:
            raise Refused("the session now belongs to another user")
        return identity
