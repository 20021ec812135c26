"""Who is online: one small interface, an in-memory and a Redis implementation."""
from homeapp.presence.base import PresenceStore, PresenceUnavailable
from homeapp.presence.memory import MemoryPresence


def create_presence(config, redis_client=None, server_id=None, heartbeat_ttl=20.0, health=None):
    """The Redis store when Redis is configured, the in-process one otherwise."""
    if redis_client is None:
        return MemoryPresence()
    from homeapp.presence.redis import RedisPresence
    return RedisPresence(redis_client, server_id, heartbeat_ttl, health,
                         call_timeout=config["REDIS_TIMEOUT"])


__all__ = ["PresenceStore", "PresenceUnavailable", "MemoryPresence", "create_presence"]
