"""Settings, read from the environment once at start-up and validated.

Every limit of the protocol (docs/protocol.md) is a setting here; a bad value stops the
process with a message naming the variable instead of failing later.
"""
import math
import os
import re
import zoneinfo
from collections import namedtuple
from urllib.parse import unquote, urlsplit

AUTH_MODES = ("open", "jwt", "session")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ADMIN_MODES = ("production", "development")
# a secret an attacker cannot brute-force offline from one signed token or cookie
MIN_SECRET_BYTES = 32
MAX_JWT_LEEWAY = 300
# the Admin UI's password is typed by a person, not generated, and no login is rate-limited
MIN_ADMIN_PASSWORD = 12
_ORIGIN = re.compile(r"^https?://[^/\s?#]+$")
_COOKIE_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # an RFC 6265 token
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
# a bearer token an attacker cannot guess, sent as one HTTP header word
MIN_API_TOKEN_LENGTH = 32
_HEADER_WORD = re.compile(r"^[!-~]+$")  # visible ASCII: no spaces, nothing a header would mangle


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it."""


SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"
_REDIS_SCHEMES = ("redis", "rediss", "unix", SENTINEL_SCHEME, CLUSTER_SCHEME)

# What a redis+sentinel:// URL names: the Sentinels' (host, port) pairs, the service they
# watch, and the database, user and password of its master.
SentinelURL = namedtuple("SentinelURL", "sentinels service db username password")
# What a redis+cluster:// URL names: (host, port) pairs of some nodes of a Redis Cluster, from
# which the client learns the rest, and the user and password of every node.
ClusterURL = namedtuple("ClusterURL", "nodes username password")


def _database(raw, url_form):
    if raw == "":
        return 0
    if not raw.isdigit():
        raise ConfigError(f"REDIS_URL: the database must be a number, got {raw!r} ({url_form})")
    return int(raw)


def _addresses(hosts, what, url_form):
    """[(host, port)] of a comma-separated `host:port,...`. Raises ConfigError."""
    addresses = []
    for address in hosts.split(","):
        host, _, port = address.strip().rpartition(":")
        host = host.strip("[]")  # an IPv6 address is written [::1]:26379
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"REDIS_URL: each {what} is host:port, got {address!r} ({url_form})")
        addresses.append((host, int(port)))
    return addresses


def parse_sentinel_url(url):
    """The parts of a Sentinel URL, `redis+sentinel://[user:password@]host:port[,host:port...]/db/service`
    (python-socketio's form); None for any other URL.

    Raises ConfigError saying what is malformed.
    """
    form = f"{SENTINEL_SCHEME}://[user:password@]host:port[,host:port...]/db/service"
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        return None
    if parts.query or parts.fragment:
        raise ConfigError(f"REDIS_URL: a Sentinel URL takes no ?options or #fragment ({form})")
    credentials, _, hosts = parts.netloc.rpartition("@")
    sentinels = _addresses(hosts, "Sentinel", form)
    path = parts.path.split("/")
    if len(path) != 3 or not path[2]:
        raise ConfigError(f"REDIS_URL: a Sentinel URL ends with /<db>/<service name> ({form})")
    username, _, password = credentials.partition(":")
    return SentinelURL(sentinels, unquote(path[2]), _database(path[1], form),
                       unquote(username) or None, unquote(password) or None)


def parse_cluster_url(url):
    """The parts of a Redis Cluster URL, `redis+cluster://[user:password@]host:port[,host:port...]`;
    None for any other URL.

    A cluster has only database 0, so the URL names none. Raises ConfigError saying what is malformed.
    """
    form = f"{CLUSTER_SCHEME}://[user:password@]host:port[,host:port...]"
    parts = urlsplit(url)
    if parts.scheme != CLUSTER_SCHEME:
        return None
    if parts.query or parts.fragment:
        raise ConfigError(f"REDIS_URL: a cluster URL takes no ?options or #fragment ({form})")
    if parts.path not in ("", "/"):
        raise ConfigError(f"REDIS_URL: a cluster has only database 0, so its URL ends after the "
                          f"nodes ({form})")
    credentials, _, hosts = parts.netloc.rpartition("@")
    nodes = _addresses(hosts, "cluster node", form)
    username, _, password = credentials.partition(":")
    return ClusterURL(nodes, unquote(username) or None, unquote(password) or None)


def _redis_url(env):
    """REDIS_URL, checked: one Redis server (redis://, rediss://, unix://), the Sentinels of one
    (redis+sentinel://), or nodes of a Redis Cluster (redis+cluster://). None when unset.
    Raises ConfigError."""
    url = env.get("REDIS_URL", "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in _REDIS_SCHEMES:
        raise ConfigError(f"REDIS_URL must start with one of "
                          f"{', '.join(s + '://' for s in _REDIS_SCHEMES)}; got {url.split(':')[0]!r}")
    if parts.scheme == SENTINEL_SCHEME:
        parse_sentinel_url(url)
    elif parts.scheme == CLUSTER_SCHEME:
        parse_cluster_url(url)
    elif parts.scheme == "unix":
        if not parts.path:
            raise ConfigError("REDIS_URL: a unix:// URL names the socket's path, unix:///path/to/redis.sock")
    else:
        try:
            parts.port  # noqa: B018 - raises ValueError when the port is not a port
        except ValueError:
            raise ConfigError(f"REDIS_URL: the port is not a number from 1 to 65535 "
                              f"({parts.scheme}://host:port/db)") from None
        _database(parts.path.lstrip("/"), f"{parts.scheme}://host:port/db")
    return url


def _int(env, name, default, minimum=0):
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env, name, default, minimum=0.0):
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {raw!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _ack_timeout(env):
    value = _float(env, "HOMEAPP_ACK_TIMEOUT", 10.0, minimum=0.1)
    if value > 60:
        raise ConfigError(f"HOMEAPP_ACK_TIMEOUT must be at most 60, got {value}")
    return value


def _list(env, name):
    raw = env.get(name, "")
    return [item.strip() for item in raw.split(",") if item.strip()]


def _flag(env, name, default):
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name} must be 1 or 0, got {raw!r}")


def _cors(env):
    """Allowed origins and whether credentials (cookies) may come with them."""
    origins = _list(env, "HOMEAPP_CORS_ORIGINS")
    credentials = _flag(env, "HOMEAPP_CORS_CREDENTIALS", True)
    for origin in origins:
        if origin == "*":
            if credentials:
                raise ConfigError("HOMEAPP_CORS_ORIGINS may not be '*' while credentials are allowed: "
                                  "list the origins, or set HOMEAPP_CORS_CREDENTIALS=0")
        elif not _ORIGIN.match(origin):
            raise ConfigError(f"HOMEAPP_CORS_ORIGINS entries must look like https://host[:port], "
                              f"got {origin!r}")
    return {"CORS_ORIGINS": origins, "CORS_CREDENTIALS": credentials,
            # X-Forwarded-Proto/-Host name this server's own origin only when a proxy of ours sets them
            "TRUST_PROXY": _flag(env, "HOMEAPP_TRUST_PROXY", False)}


def _tls(env):
    """A certificate and its key for `python app.py` to terminate TLS itself: both or neither,
    each a readable file. gunicorn takes its own (`--certfile`, `--keyfile`)."""
    cert = env.get("HOMEAPP_TLS_CERT") or None
    key = env.get("HOMEAPP_TLS_KEY") or None
    if (cert is None) != (key is None):
        raise ConfigError("HOMEAPP_TLS_CERT and HOMEAPP_TLS_KEY go together: set both, or neither")
    for name, path in (("HOMEAPP_TLS_CERT", cert), ("HOMEAPP_TLS_KEY", key)):
        if path is not None and not os.access(path, os.R_OK):
            raise ConfigError(f"{name} is not a readable file: {path!r}")
    return {"TLS_CERT": cert, "TLS_KEY": key}


def _auth(env, auth, redis_url):
    """The settings of the identity modes (docs/auth.md); a mode's own are required."""
    settings = {
        "JWT_SECRET": env.get("HOMEAPP_JWT_SECRET") or None,
        "JWT_AUDIENCE": env.get("HOMEAPP_JWT_AUDIENCE") or None,
        "JWT_ISSUER": env.get("HOMEAPP_JWT_ISSUER") or None,
        "JWT_LEEWAY": _float(env, "HOMEAPP_JWT_LEEWAY", 10.0),
        # comma-separated for rotation: any of them verifies a cookie
        "SESSION_SECRETS": _list(env, "HOMEAPP_SESSION_SECRET"),
        "SESSION_COOKIE": env.get("HOMEAPP_SESSION_COOKIE", "sessionLog").strip(),
        "SESSION_PREFIX": env.get("HOMEAPP_SESSION_PREFIX", "sess:"),
        # only wsgi.py reads it: production may run open only when told so
        "ALLOW_OPEN": _flag(env, "HOMEAPP_ALLOW_OPEN", False),
    }
    if settings["JWT_LEEWAY"] > MAX_JWT_LEEWAY:
        raise ConfigError(f"HOMEAPP_JWT_LEEWAY is a clock-skew margin of at most {MAX_JWT_LEEWAY} s, "
                          f"got {settings['JWT_LEEWAY']}")
    if not _COOKIE_NAME.match(settings["SESSION_COOKIE"]):
        raise ConfigError(f"HOMEAPP_SESSION_COOKIE is not a cookie name: {settings['SESSION_COOKIE']!r}")
    if auth == "jwt" and not settings["JWT_SECRET"]:
        raise ConfigError("HOMEAPP_AUTH=jwt needs HOMEAPP_JWT_SECRET")
    if auth == "session":
        if not settings["SESSION_SECRETS"]:
            raise ConfigError("HOMEAPP_AUTH=session needs HOMEAPP_SESSION_SECRET")
        if not redis_url:
            raise ConfigError("HOMEAPP_AUTH=session needs REDIS_URL: the sessions live in Redis")
    return settings


def _backend_api(env):
    """The backend API's settings: its tokens, the events only it may send, idempotency.

    Whether the server-only events are ones the API performs is checked by homeapp.api.endpoint,
    which knows the events (this module is loaded without the package by gunicorn.conf.py).
    """
    tokens = _list(env, "HOMEAPP_API_TOKENS")
    for position, token in enumerate(tokens, 1):
        # the message names the token by its position: a token is never printed
        if len(token) < MIN_API_TOKEN_LENGTH:
            raise ConfigError(f"HOMEAPP_API_TOKENS: token {position} has {len(token)} characters; "
                              f"each must have at least {MIN_API_TOKEN_LENGTH}")
        if not _HEADER_WORD.match(token):
            raise ConfigError(f"HOMEAPP_API_TOKENS: token {position} may hold only visible ASCII "
                              f"characters (no spaces)")
    return {
        "API_TOKENS": tokens,
        "SERVER_ONLY_EVENTS": frozenset(_list(env, "HOMEAPP_SERVER_ONLY_EVENTS")),
        "IDEMPOTENCY_SECONDS": _int(env, "HOMEAPP_IDEMPOTENCY_SECONDS", 86400, minimum=1),
        # without Redis, keys are kept in process memory: at most this many
        "IDEMPOTENCY_KEYS": _int(env, "HOMEAPP_IDEMPOTENCY_KEYS", 10000, minimum=1),
    }
def _admin(env):
    """The Socket.IO Admin UI's login and reporting mode (homeapp.operations.admin); both credentials or neither.

    Raises ConfigError when only one credential is set or the mode is unknown.
    """
    username = env.get("HOMEAPP_ADMIN_USERNAME") or None
    password = env.get("HOMEAPP_ADMIN_PASSWORD") or None
    if (username is None) != (password is None):
        raise ConfigError("HOMEAPP_ADMIN_USERNAME and HOMEAPP_ADMIN_PASSWORD go together: set both "
                          "to serve the Admin UI, or neither")
    mode = env.get("HOMEAPP_ADMIN_MODE", "production").strip().lower()
    if mode not in ADMIN_MODES:
        raise ConfigError(f"HOMEAPP_ADMIN_MODE must be one of {', '.join(ADMIN_MODES)}, got {mode!r}")
    return {"ADMIN_USERNAME": username, "ADMIN_PASSWORD": password, "ADMIN_MODE": mode,
            # failed logins an address may make in a window; past them it is refused for a window
            "ADMIN_LOGIN_ATTEMPTS": _int(env, "HOMEAPP_ADMIN_LOGIN_ATTEMPTS", 5, minimum=1),
            "ADMIN_LOGIN_WINDOW": _float(env, "HOMEAPP_ADMIN_LOGIN_WINDOW", 60.0, minimum=1.0)}


def check_production(config):
    """Refuse settings that are fine on a laptop and unsafe in production (wsgi.py).

    Raises ConfigError naming the setting to change.
    """
    if config["ALLOW_UNTESTED_LIBRARIES"]:
        raise ConfigError("HOMEAPP_ALLOW_UNTESTED_LIBRARIES is for tools.upgrade_check's test runs: "
                          "production runs only the library versions the tests cover")
    mode = config["AUTH_MODE"]
    if mode == "open" and not config["ALLOW_OPEN"]:
        raise ConfigError("HOMEAPP_AUTH=open trusts every client to say who it is; set HOMEAPP_AUTH "
                          "to jwt or session, or HOMEAPP_ALLOW_OPEN=1 to run open anyway")
    name, secrets = {"jwt": ("HOMEAPP_JWT_SECRET", [config["JWT_SECRET"]]),
                     "session": ("HOMEAPP_SESSION_SECRET", config["SESSION_SECRETS"])}.get(mode, (None, []))
    if name and not any(secrets):
        raise ConfigError(f"{name} is missing")
    for secret in secrets:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"{name} is too short: a secret of {len(secret.encode())} bytes; "
                              f"each must have at least {MIN_SECRET_BYTES}")
    password = config["ADMIN_PASSWORD"]
    if password is not None and len(password) < MIN_ADMIN_PASSWORD:
        raise ConfigError(f"HOMEAPP_ADMIN_PASSWORD is too short: {len(password)} characters; "
                          f"the Admin UI needs at least {MIN_ADMIN_PASSWORD}")


def load_config(env=None):
    """Return the settings as a dict for ``app.config``.

    Raises ConfigError when a variable is malformed.
    """
    env = os.environ if env is None else env
    auth = env.get("HOMEAPP_AUTH", "open").strip().lower()
    if auth not in AUTH_MODES:
        raise ConfigError(f"HOMEAPP_AUTH must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
    timezone = env.get("HOMEAPP_TIMEZONE", "UTC")
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"HOMEAPP_TIMEZONE is not a known time zone: {timezone!r}") from None
    log_level = env.get("HOMEAPP_LOG_LEVEL", "INFO").strip().upper()
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"HOMEAPP_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    log_format = env.get("HOMEAPP_LOG_FORMAT", "text").strip().lower()
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"HOMEAPP_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    redis_url = _redis_url(env)
    return {
        "HOST": env.get("HOST", "127.0.0.1"),
        "PORT": _int(env, "PORT", 5000, minimum=0),
        **_tls(env),
        "REDIS_URL": redis_url,
        "AUTH_MODE": auth,
        **_auth(env, auth, redis_url),
        **_cors(env),
        **_backend_api(env),
        **_admin(env),
        "TIMEZONE": timezone,
        "LOG_LEVEL": log_level,
        "LOG_FORMAT": log_format,
        # the protocol's limits (docs/protocol.md)
        "MAX_MESSAGE_LENGTH": _int(env, "HOMEAPP_MAX_MESSAGE_LENGTH", 5000, minimum=1),
        "MAX_USERNAME_LENGTH": _int(env, "HOMEAPP_MAX_USERNAME_LENGTH", 64, minimum=1),
        "MAX_ROOM_MEMBERS": _int(env, "HOMEAPP_MAX_ROOM_MEMBERS", 50, minimum=2),
        "MAX_NOTIFICATIONS": _int(env, "HOMEAPP_MAX_NOTIFICATIONS", 100, minimum=1),
        "MAX_ROOMS": _int(env, "HOMEAPP_MAX_ROOMS", 1000, minimum=1),
        "MAX_PACKET_BYTES": _int(env, "HOMEAPP_MAX_PACKET_BYTES", 64 * 1024, minimum=1024),
        # output a socket may have waiting for a client that does not read it; past this it
        # is disconnected
        "MAX_PENDING_OUTPUT_BYTES": _int(env, "HOMEAPP_MAX_PENDING_OUTPUT_BYTES", 1024 * 1024,
                                         minimum=64 * 1024),
        # seconds a connection has to send a request's line and headers
        "HEADER_TIMEOUT": _float(env, "HOMEAPP_HEADER_TIMEOUT", 10.0, minimum=0.1),
        # seconds a request's body has to arrive once its headers are in
        "BODY_TIMEOUT": _float(env, "HOMEAPP_BODY_TIMEOUT", 10.0, minimum=0.1),
        # token buckets per socket: sustained events per second and burst; 0 turns a limit off
        "MESSAGE_RATE": _float(env, "HOMEAPP_MESSAGE_RATE", 10.0),
        "MESSAGE_BURST": _int(env, "HOMEAPP_MESSAGE_BURST", 20, minimum=1),
        "TYPING_RATE": _float(env, "HOMEAPP_TYPING_RATE", 5.0),
        "TYPING_BURST": _int(env, "HOMEAPP_TYPING_BURST", 10, minimum=1),
        "NOTIFICATION_RATE": _float(env, "HOMEAPP_NOTIFICATION_RATE", 1.0),
        "NOTIFICATION_BURST": _int(env, "HOMEAPP_NOTIFICATION_BURST", 5, minimum=1),
        # rooms a socket is remembered typing in, for the stops its disconnect sends
        "TYPING_ROOMS": _int(env, "HOMEAPP_TYPING_ROOMS", 32, minimum=1),
        # Redis calls must fail fast so that an outage answers UNAVAILABLE instead of hanging
        "REDIS_TIMEOUT": _float(env, "HOMEAPP_REDIS_TIMEOUT", 2.0, minimum=0.05),
        # connections each Redis client of a process keeps at most (per node on a cluster); a
        # call finding them all busy waits for one, at most HOMEAPP_REDIS_TIMEOUT, rather than
        # failing at once as if Redis were down (a reconnect storm makes a thousand calls at once)
        "REDIS_MAX_CONNECTIONS": _int(env, "HOMEAPP_REDIS_MAX_CONNECTIONS", 100, minimum=2),
        # with Redis, how long an event's ack waits for Redis to take what it emitted; at most
        # the event log's shortest window (60 s), within which what waits for Redis is kept
        "ACK_TIMEOUT": _ack_timeout(env),
        # operations (docs/operations.md)
        "READY_TIMEOUT": _float(env, "HOMEAPP_READY_TIMEOUT", 0.5, minimum=0.05),
        "METRICS_TOKEN": env.get("HOMEAPP_METRICS_TOKEN") or None,
        "SHUTDOWN_GRACE": _float(env, "HOMEAPP_SHUTDOWN_GRACE", 10.0, minimum=0.1),
        # with recovery and Redis: the seconds over which a shutdown spreads its sockets' closes
        # (at most a quarter of the grace), so that they reconnect elsewhere a few at a time
        "SHUTDOWN_SPREAD": _float(env, "HOMEAPP_SHUTDOWN_SPREAD", 2.0),
        # Engine.IO heartbeat, the Socket.IO defaults: a client that misses a pong for
        # interval + timeout seconds is disconnected (and goes offline)
        "PING_INTERVAL": _int(env, "HOMEAPP_PING_INTERVAL", 25, minimum=1),
        "PING_TIMEOUT": _int(env, "HOMEAPP_PING_TIMEOUT", 20, minimum=1),
        # seconds after which a process that stopped beating is dead and its users go offline
        "PRESENCE_TIMEOUT": _float(env, "HOMEAPP_PRESENCE_TIMEOUT", 30.0, minimum=1.0),
        # connection state recovery (docs/recovery.md): how long a dropped socket's session and
        # the events sent to its channels are kept for it; 0 turns recovery off
        "RECOVERY_SECONDS": _float(env, "HOMEAPP_RECOVERY_SECONDS", 0.0),
        # with recovery on: how long a user whose last socket dropped stays online
        "PRESENCE_GRACE": _float(env, "HOMEAPP_PRESENCE_GRACE", 5.0),
        # each channel's history (a Redis stream per channel, or memory) keeps entries for the
        # recovery window, at least 60 s, and at most this many per channel
        "HISTORY_SIZE": _int(env, "HOMEAPP_HISTORY_SIZE", 10000, minimum=10),
        # without Redis: the most the histories of all channels together take in this process's
        # memory, the oldest entries of any channel dropped first
        "HISTORY_MAX_BYTES": _int(env, "HOMEAPP_HISTORY_MAX_BYTES", 64 * 1024 * 1024,
                                  minimum=1024 * 1024),
        # with recovery on: the most recently delivered copies a process remembers, all channels
        # together (what a dropped socket's offset is placed by), the oldest forgotten first
        "RECOVERY_RECENT_COPIES": _int(env, "HOMEAPP_RECOVERY_RECENT_COPIES", 100000, minimum=1000),
        # a storm of reconnects is bounded: restores under way at once, entries read by one
        "RECOVERY_CONCURRENCY": _int(env, "HOMEAPP_RECOVERY_CONCURRENCY", 32, minimum=1),
        "RECOVERY_MAX_ENTRIES": _int(env, "HOMEAPP_RECOVERY_MAX_ENTRIES", 5000, minimum=1),
        # start on library versions outside the ranges the seams are tested with
        # (homeapp/seams/versions.py): only for tools.upgrade_check's runs
        "ALLOW_UNTESTED_LIBRARIES": _flag(env, "HOMEAPP_ALLOW_UNTESTED_LIBRARIES", False),
        # greenlets handling websocket packets at once (homeapp/transport/evented.py)
        "HANDLER_POOL": _int(env, "HOMEAPP_HANDLER_POOL", 1000, minimum=1),
    }
