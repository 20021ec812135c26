"""Every Redis key the server reads or writes is named here."""

# Read by the existing REST API: the ids of users with a live socket.
ONLINE_USERS = "onlineUsers"

_PREFIX = "homeapp:"

# Set of the ids of server processes that may hold sockets: where reapers look for dead ones.
SERVERS = f"{_PREFIX}presence:servers"

# Prefix of the per-user socket sets, for the Lua script that walks a dead server's sockets.
USER_SOCKETS_PREFIX = f"{_PREFIX}presence:user:"


def user_sockets(user_id):
    """Set of "<server id>/<sid>" for each live socket of a user, on every process."""
    return f"{USER_SOCKETS_PREFIX}{user_id}"


def server_sockets(server_id):
    """Hash sid -> user id of the live sockets one server process holds."""
    return f"{_PREFIX}presence:server:{server_id}"


def heartbeat(server_id):
    """A key that lives while its server process does: refreshed with a TTL, gone when it dies."""
    return f"{_PREFIX}presence:heartbeat:{server_id}"


def session(prefix, session_id):
    """JSON of one express-session, written by the REST API's connect-redis store (default prefix "sess:")."""
    return f"{prefix}{session_id}"


def idempotency(key):
    """JSON of what the backend API did with one Idempotency-Key: claimed, or answered."""
    return f"{_PREFIX}api:idempotency:{key}"


# Pub/sub channels of the message queue between processes (homeapp.cluster.message_queue).
# Every process listens on this one: emits to everyone (presence announcements) and the
# queue's own messages about one socket, which may be on any process.
QUEUE = f"{_PREFIX}queue"


def queue_room(namespace, room):
    """Channel of one Socket.IO room: only processes with a socket in the room listen on it."""
    return f"{QUEUE}#{namespace}#{room}"


# The event log (a Redis stream): every message of the queue, in order, with its offset (the
# entry's id). A process that lost Redis resumes reading it where it stopped; a recovering
# socket gets what it missed from it (homeapp.recovery).
EVENT_LOG = f"{_PREFIX}events"


def sent_mark(sender):
    """The number of a process's last message appended to the event log, for the log's window:
    another copy of one appended is not appended again."""
    return f"{EVENT_LOG}:sent:{sender}"


def sent_refused(sender):
    """Set of the numbers of a process's messages the log refused, past their deadline."""
    return f"{EVENT_LOG}:refused:{sender}"


def recovery_session(digest):
    """JSON of a dropped socket's session, under the SHA-256 of its private id, for the window."""
    return f"{_PREFIX}recovery:{digest}"
