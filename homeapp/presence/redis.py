"""Presence in Redis, shared by every server process.

Each transition is one Lua script so that two tabs connecting or closing at the
same moment on different processes see one "came online" / "went offline" between
them, never two or none.

Every process keeps a hash of its own sockets and a heartbeat key with a TTL, and
is listed in a registry of servers. A process whose heartbeat expired is dead:
another process reaps it with one script that claims its hash (deleting it), so
however many reapers race, its users' "went offline" is reported once.

On a Redis Cluster every presence key is in the slot of `onlineUsers` (redis_keys.PresenceKeys),
so that each script, the reaper's included, touches one slot.
"""
import os
import socket
import time

import redis

from homeapp.presence.base import PresenceStore, PresenceUnavailable
from homeapp.store import redis_keys
from homeapp.store.redis_client import is_cluster, slot_master

# KEYS: user sockets, onlineUsers, server sockets, server registry, heartbeat.
# ARGV: socket key, user id, sid, server id, heartbeat TTL (ms), heartbeat value, deadline.
# A live process is registered and beating by the time it holds a socket, even if Redis
# lost both since its last heartbeat, so that its sockets can always be reaped.
# The deadline (Unix ms on Redis's clock, 0: none) is when the caller stops waiting: a call
# that reaches Redis later (Redis was stalled) was answered UNAVAILABLE, and changes nothing.
# Returns 1 when the user came online, 0 when not, -1 when too late.
_ADD = """
if ARGV[7] ~= '0' then
  local now = redis.call('TIME')
  if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(ARGV[7]) then
    return -1
  end
end
redis.call('HSET', KEYS[3], ARGV[3], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[4])
redis.call('SET', KEYS[5], ARGV[6], 'PX', ARGV[5], 'NX')
local added = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
if added == 1 and redis.call('SCARD', KEYS[1]) == 1 then return 1 end
return 0
"""

# KEYS: user sockets, onlineUsers, server sockets. ARGV: socket key, user id, sid.
_REMOVE = """
redis.call('HDEL', KEYS[3], ARGV[3])
local removed = redis.call('SREM', KEYS[1], ARGV[1])
if redis.call('SCARD', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[2])
  if removed == 1 then return 1 end
end
return 0
"""

# Takes every socket of one server out of presence.
# KEYS: server registry, its heartbeat, its sockets hash, onlineUsers.
# ARGV: server id, user-sockets key prefix, "retire" (its own shutdown) or "reap" (it is dead).
# Returns {sockets removed, {users gone}}, or nil when there is nothing to claim: a reaped
# server turns out to be beating, or another reaper already took it.
# The user-socket keys come from the hash, undeclared: on a cluster they share the slot of the
# declared ones (redis_keys.PresenceKeys), which Redis allows.
_DROP_SERVER = """
if ARGV[3] == 'reap' and redis.call('EXISTS', KEYS[2]) == 1 then return nil end
local held = redis.call('HGETALL', KEYS[3])
redis.call('DEL', KEYS[3], KEYS[2])
local registered = redis.call('SREM', KEYS[1], ARGV[1])
if registered == 0 and #held == 0 then return nil end
local gone = {}
for i = 1, #held, 2 do
  local user_key = ARGV[2] .. held[i + 1]
  local removed = redis.call('SREM', user_key, ARGV[1] .. '/' .. held[i])
  if removed == 1 and redis.call('SCARD', user_key) == 0 then
    redis.call('SREM', KEYS[4], held[i + 1])
    table.insert(gone, held[i + 1])
  end
end
return {#held / 2, gone}
"""


def _unavailable(exc):
    return PresenceUnavailable(str(exc) or type(exc).__name__)


class RedisPresence(PresenceStore):
    """With `health`, the calls events make fail fast while an outage is known, so that no
    transition happens, and goes unannounced to the other processes, until the presence
    keeper has seen Redis back and re-asserted (homeapp.presence.keeper). Its own calls always try.
    """

    def __init__(self, client, server_id, heartbeat_ttl=20.0, health=None, call_timeout=None):
        self._redis = client
        self._names = redis_keys.PresenceKeys(cluster=is_cluster(client))
        self.server_id = server_id
        self._health = health
        self._heartbeat_ms = max(1, int(heartbeat_ttl * 1000))
        self._call_timeout = call_timeout  # seconds a caller waits for Redis; None: no deadline
        self._clock_offset = None  # Redis's clock minus this one, in seconds, measured by beat()
        # what an operator sees in the heartbeat key: which process this is
        self._heartbeat_value = f"{socket.gethostname()} pid {os.getpid()}"
        self._add = client.register_script(_ADD)
        self._remove = client.register_script(_REMOVE)
        self._drop_server = client.register_script(_DROP_SERVER)

    def _check(self):
        if self._health is not None and self._health.down:
            raise PresenceUnavailable("Redis is unreachable")

    def _socket_key(self, sid):
        return f"{self.server_id}/{sid}"

    def _keys(self, user_id):
        return [self._names.user_sockets(user_id), redis_keys.ONLINE_USERS,
                self._names.server_sockets(self.server_id)]

    def add_socket(self, user_id, sid):
        self._check()
        keys = self._keys(user_id) + [self._names.servers, self._names.heartbeat(self.server_id)]
        args = [self._socket_key(sid), user_id, sid, self.server_id, self._heartbeat_ms,
                self._heartbeat_value, self._deadline_ms()]
        try:
            result = self._add(keys, args)
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc
        if result == -1:
            raise PresenceUnavailable("Redis answered after the call's deadline")
        return result == 1

    def _deadline_ms(self):
        """When a call made now stops being waited for, on Redis's clock; 0 while unknown."""
        if self._call_timeout is None or self._clock_offset is None:
            return 0
        return int((time.time() + self._clock_offset + self._call_timeout) * 1000)

    def remove_socket(self, user_id, sid):
        self._check()
        return self.forget_socket(user_id, sid)

    def forget_socket(self, user_id, sid):
        """remove_socket for the presence keeper, which tries Redis while an outage is known.

        Raises PresenceUnavailable.
        """
        try:
            return self._remove(self._keys(user_id), [self._socket_key(sid), user_id, sid]) == 1
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc

    def online_users(self):
        self._check()
        try:
            return set(self._redis.smembers(redis_keys.ONLINE_USERS))
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc

    def is_online(self, user_id):
        """True while the user has a live socket on some process. Raises PresenceUnavailable."""
        try:
            return bool(self._redis.sismember(redis_keys.ONLINE_USERS, user_id))
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc

    def sockets_of(self, user_id):
        self._check()
        try:
            keys = self._redis.smembers(self._names.user_sockets(user_id))
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc
        return {key.partition("/")[2] for key in keys}

    # --- liveness of server processes -------------------------------------------------

    def beat(self):
        """Refresh this process's heartbeat and registration, and measure Redis's clock against
        this one (for the add's deadline).

        Returns the run id of the Redis server that answered: another one after a failover or
        a restart. Raises PresenceUnavailable.
        """
        if is_cluster(self._redis):
            return self._beat_on_cluster()
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(redis_keys.heartbeat(self.server_id), self._heartbeat_value,
                         px=self._heartbeat_ms)
                pipe.sadd(redis_keys.SERVERS, self.server_id)
                pipe.info("server")
                pipe.time()
                sent = time.time()
                *_, server, redis_time = pipe.execute()
                received = time.time()
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc
        seconds, microseconds = redis_time
        self._clock_offset = seconds + microseconds / 1e6 - (sent + received) / 2
        return server.get("run_id")

    def _beat_on_cluster(self):
        """beat() on a cluster: the writes, then INFO and TIME from the master that took them
        (the master of presence's slot; a cluster client sends a command without a key to any
        node). Its run id changes when a replica takes the slot over."""
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(self._names.heartbeat(self.server_id), self._heartbeat_value,
                         px=self._heartbeat_ms)
                pipe.sadd(self._names.servers, self.server_id)
                pipe.execute()
            master = slot_master(self._redis, self._names.servers)
            server = self._redis.info("server", target_nodes=master)
            sent = time.time()
            seconds, microseconds = self._redis.time(target_nodes=master)
            received = time.time()
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc
        self._clock_offset = seconds + microseconds / 1e6 - (sent + received) / 2
        return server.get("run_id")

    def sockets_here(self):
        """{sid: user id} of the sockets Redis believes this process holds. Raises PresenceUnavailable."""
        try:
            return self._redis.hgetall(self._names.server_sockets(self.server_id))
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc

    def dead_servers(self):
        """Ids of registered processes, other than this one, whose heartbeat has expired.

        Raises PresenceUnavailable.
        """
        try:
            others = sorted(self._redis.smembers(self._names.servers) - {self.server_id})
            if not others:
                return []
            with self._redis.pipeline(transaction=False) as pipe:
                for server_id in others:
                    pipe.exists(self._names.heartbeat(server_id))
                beating = pipe.execute()
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc
        return [server_id for server_id, alive in zip(others, beating) if not alive]

    def reap(self, server_id):
        """Take a dead process's sockets out of presence.

        Returns (sockets removed, users left with no socket), or None when the process
        is beating after all or another reaper got there first. Raises PresenceUnavailable.
        """
        return self._drop(server_id, "reap")

    def retire(self):
        """Take this process's own sockets out of presence, at shutdown; see reap()."""
        return self._drop(self.server_id, "retire")

    def _drop(self, server_id, mode):
        keys = [self._names.servers, self._names.heartbeat(server_id),
                self._names.server_sockets(server_id), redis_keys.ONLINE_USERS]
        try:
            result = self._drop_server(keys, [server_id, self._names.user_sockets_prefix, mode])
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc
        if result is None:
            return None
        count, users = result
        return int(count), list(users)
