"""Every Redis key the server reads or writes is named here."""

# Read by the existing REST API: the ids of users with a live socket.
ONLINE_USERS = "onlineUsers"

_PREFIX = "homeapp:"


def user_sockets(user_id):
    """Set of "<server id>/<sid>" for each live socket of a user, on every process."""
    return f"{_PREFIX}presence:user:{user_id}"


def server_sockets(server_id):
    """Hash sid -> user id of the live sockets one server process holds."""
    return f"{_PREFIX}presence:server:{server_id}"


def session(prefix, session_id):
    """JSON of one express-session, written by the REST API's connect-redis store (default prefix "sess:")."""
    return f"{prefix}{session_id}"
