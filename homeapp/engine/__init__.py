"""The delivery engine: everything between a handler's emit and a socket's write. Rooms and
channels, the message queue between processes, each channel's history, and the recovery
sessions of dropped sockets with their persist and restore (docs/recovery.md, docs/scale-out.md).

One interface, two implementations. The interface is python-socketio's client manager, which
the Socket.IO server emits through, with these additions that the rest of homeapp uses:

- `manager.last_id(channel)`: where a socket joining a channel now starts in its history;
- `manager.publish_cut(user_id, channel)`: a user taken out of a channel by the server;
- `manager.wait_until_following(rooms, timeout)`, when the manager has it: return once what is
  sent to those rooms from another process reaches this one;
- `manager.flush(timeout)`, when the manager has it: at shutdown, hand over what is queued;
- `manager.recovery`: the Recovery (recovery.py) when HOMEAPP_RECOVERY_SECONDS is set.

| part | in memory (one process) | in Redis (several processes) |
| --- | --- | --- |
| client manager | seams.socketio.KeepingManager (python-socketio's, each emit encoded once), or memory.LoggingManager with recovery | message_queue.QueueManager (outbox.py, durability.py) |
| histories | history.MemoryHistory | history.RedisHistory, appended by history.Appender |
| sessions | sessions.MemorySessions | sessions.RedisSessions |

Shared by both: copies.py (one emit, several channels: which copy reaches which socket),
positions.py (where a socket is in each channel, from its one offset), channels.py (which rooms
are channels), recovery.py (keep a dropped socket's session, restore it under a budget) and
handshake.py (the recovering CONNECT, which calls back into the app through a hook).
"""
from homeapp.engine import handshake
from homeapp.engine.channels import NAMESPACE
from homeapp.engine.memory import LoggingManager
from homeapp.engine.message_queue import QueueManager
from homeapp.engine.recovery import log_seconds
from homeapp.seams.engineio import session_open
from homeapp.seams.socketio import KeepingManager


def create_manager(config, health):
    """The client manager for this deployment: the Redis one when REDIS_URL is set, the memory
    one when recovery is on without Redis, and otherwise python-socketio's in this process,
    keeping nothing (seams.socketio.KeepingManager: its emits take emit_here)."""
    if config["REDIS_URL"]:
        return QueueManager(config["REDIS_URL"], health, config["REDIS_TIMEOUT"],
                            log_seconds(config), config["HISTORY_SIZE"],
                            config["REDIS_MAX_CONNECTIONS"])
    if config["RECOVERY_SECONDS"] > 0:
        return LoggingManager()
    return KeepingManager()


def attach(server, hub, reinstate):
    """Bind the hub's recovery to the server, once both exist. `reinstate(hub, conn, session)`
    is the app's: it gives a recovered socket what its session had (identity, presence), so
    that the engine imports no feature."""
    server.manager.recovery = hub.recovery
    if hub.recovery is not None:
        hub.recovery.reinstate = reinstate
        handshake.install(server, hub)


def cut(hub, user_id, channel):
    """A user is taken out of a channel by the server (a kick, a deleted room): a session of
    theirs that dropped meanwhile must not get it back. Nothing to do with recovery off."""
    if hub.recovery is not None:
        hub.recovery.cut(user_id, channel)


def ended_in_rooms(server):
    """How many sockets this process's rooms hold whose Engine.IO session has ended: for a
    moment while a busy process gets to their disconnects; any that stay are never disconnected
    (the metric homeapp_ended_sockets_in_rooms, read at scrape time)."""
    eio = server.eio
    sockets = server.manager.rooms.get(NAMESPACE, {}).get(None, {})
    return sum(1 for eio_sid in sockets.values() if not session_open(eio, eio_sid))
