"""Presence in Redis, shared by every server process.

Each transition is one Lua script so that two tabs connecting or closing at the
same moment on different processes see one "came online" / "went offline" between
them, never two or none.
"""
import redis

from homeapp import metrics, redis_keys
from homeapp.presence.base import PresenceStore, PresenceUnavailable

# KEYS: user sockets, onlineUsers, server sockets. ARGV: socket key, user id, sid.
_ADD = """
redis.call('HSET', KEYS[3], ARGV[3], ARGV[2])
local added = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
if added == 1 and redis.call('SCARD', KEYS[1]) == 1 then return 1 end
return 0
"""

_REMOVE = """
redis.call('HDEL', KEYS[3], ARGV[3])
local removed = redis.call('SREM', KEYS[1], ARGV[1])
if redis.call('SCARD', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[2])
  if removed == 1 then return 1 end
end
return 0
"""


def _unavailable(operation, exc):
    """Count a failed Redis call and turn it into the store's one error."""
    metrics.redis_error(operation)
    return PresenceUnavailable(str(exc))


class RedisPresence(PresenceStore):
    def __init__(self, client, server_id):
        self._redis = client
        self._server_id = server_id
        self._add = client.register_script(_ADD)
        self._remove = client.register_script(_REMOVE)

    def _socket_key(self, sid):
        return f"{self._server_id}/{sid}"

    def _keys(self, user_id):
        return [redis_keys.user_sockets(user_id), redis_keys.ONLINE_USERS,
                redis_keys.server_sockets(self._server_id)]

    def add_socket(self, user_id, sid):
        try:
            return self._add(self._keys(user_id), [self._socket_key(sid), user_id, sid]) == 1
        except redis.RedisError as exc:
            raise _unavailable("add_socket", exc) from exc

    def remove_socket(self, user_id, sid):
        try:
            return self._remove(self._keys(user_id), [self._socket_key(sid), user_id, sid]) == 1
        except redis.RedisError as exc:
            raise _unavailable("remove_socket", exc) from exc

    def online_users(self):
        try:
            return set(self._redis.smembers(redis_keys.ONLINE_USERS))
        except redis.RedisError as exc:
            raise _unavailable("online_users", exc) from exc

    def sockets_of(self, user_id):
        try:
            keys = self._redis.smembers(redis_keys.user_sockets(user_id))
        except redis.RedisError as exc:
            raise _unavailable("sockets_of", exc) from exc
        return {key.partition("/")[2] for key in keys}
