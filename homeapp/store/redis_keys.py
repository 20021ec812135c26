"""Every Redis key the server reads or writes is named here."""

# Read by the existing REST API: the ids of users with a live socket.
ONLINE_USERS = "onlineUsers"

_PREFIX = "homeapp:"


class PresenceKeys:
    """The names of presence's keys. On one Redis server (or Sentinel's master), today's names.
    On a Redis Cluster, every presence key carries onlineUsers' name as its hash tag, so that it
    lives in the slot of `onlineUsers` itself (a name the REST API reads, which cannot change):
    each presence script touches one slot, as a cluster requires (docs/scale-out.md)."""

    def __init__(self, cluster=False):
        base = f"{_PREFIX}presence:" + (f"{{{ONLINE_USERS}}}:" if cluster else "")
        self.online_users = ONLINE_USERS
        # Set of the ids of server processes that may hold sockets: where reapers look for dead ones.
        self.servers = f"{base}servers"
        # Prefix of the per-user socket sets, for the Lua script that walks a dead server's sockets.
        self.user_sockets_prefix = f"{base}user:"
        self._base = base

    def user_sockets(self, user_id):
        """Set of "<server id>/<sid>" for each live socket of a user, on every process."""
        return f"{self.user_sockets_prefix}{user_id}"

    def server_sockets(self, server_id):
        """Hash sid -> user id of the live sockets one server process holds."""
        return f"{self._base}server:{server_id}"

    def heartbeat(self, server_id):
        """A key that lives while its server process does: refreshed with a TTL, gone when it dies."""
        return f"{self._base}heartbeat:{server_id}"


# the names on one Redis server
_SERVER_PRESENCE = PresenceKeys()
SERVERS = _SERVER_PRESENCE.servers
USER_SOCKETS_PREFIX = _SERVER_PRESENCE.user_sockets_prefix
user_sockets = _SERVER_PRESENCE.user_sockets
server_sockets = _SERVER_PRESENCE.server_sockets
heartbeat = _SERVER_PRESENCE.heartbeat


def session(prefix, session_id):
    """JSON of one express-session, written by the REST API's connect-redis store (default prefix "sess:")."""
    return f"{prefix}{session_id}"


def idempotency(key):
    """JSON of what the backend API did with one Idempotency-Key: claimed, or answered."""
    return f"{_PREFIX}api:idempotency:{key}"


# The delivery engine's channels (homeapp.engine.message_queue, homeapp.engine): the app's
# Socket.IO rooms user:{id} and room:{id}, and everyone, written "*". Each has its own history
# (a Redis stream) and its own pub/sub channel; the braces are a Redis Cluster hash tag, so that
# both live in one hash slot and one script can append to the one and publish on the other.
EVERYONE = "*"
_HISTORY = f"{_PREFIX}h:"
_QUEUE = f"{_PREFIX}q:"


def history(channel):
    """Stream of what was sent to one channel, for the recovery window (docs/recovery.md)."""
    return f"{_HISTORY}{{{channel}}}"


def queue_channel(channel):
    """Pub/sub channel of one channel: only processes with a socket in it listen on it, and
    every process listens on everyone's."""
    return f"{_QUEUE}{{{channel}}}"


def channel_of_queue(name):
    """The channel a pub/sub channel name (str or bytes) belongs to; raises ValueError."""
    if isinstance(name, bytes):
        name = name.decode()
    if not (name.startswith(_QUEUE + "{") and name.endswith("}")):
        raise ValueError(name)
    return name[len(_QUEUE) + 1:-1]


# Everyone's pub/sub channel: emits to everyone (presence announcements) and the queue's own
# messages about one socket, which may be on any process.
QUEUE = queue_channel(EVERYONE)


def sent_mark(channel, sender):
    """The number of a process's last message appended to one channel's history, for the window:
    another copy of one appended (a retry) is not appended again. In the channel's slot."""
    return f"{history(channel)}:sent:{sender}"


def sent_refused(channel, sender):
    """Set of the numbers of a process's messages one channel's history refused, past their
    deadline (their event was answered UNAVAILABLE). In the channel's slot."""
    return f"{history(channel)}:refused:{sender}"


def recovery_session(digest):
    """JSON of a dropped socket's session, under the SHA-256 of its private id, for the window."""
    return f"{_PREFIX}recovery:{digest}"
