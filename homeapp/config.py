"""Settings, read from the environment once at start-up and validated.

Every limit of contract section 6 is a setting here; a bad value stops the
process with a message naming the variable instead of failing later.
"""
import os
import zoneinfo

AUTH_MODES = ("open", "jwt", "session")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it."""


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
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _list(env, name):
    raw = env.get(name, "")
    return [item.strip() for item in raw.split(",") if item.strip()]


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
    return {
        "HOST": env.get("HOST", "127.0.0.1"),
        "PORT": _int(env, "PORT", 5000, minimum=0),
        "REDIS_URL": env.get("REDIS_URL") or None,
        "AUTH_MODE": auth,
        "CORS_ORIGINS": _list(env, "HOMEAPP_CORS_ORIGINS"),
        "TIMEZONE": timezone,
        "LOG_LEVEL": env.get("HOMEAPP_LOG_LEVEL", "INFO").upper(),
        # contract section 6
        "MAX_MESSAGE_LENGTH": _int(env, "HOMEAPP_MAX_MESSAGE_LENGTH", 5000, minimum=1),
        "MAX_USERNAME_LENGTH": _int(env, "HOMEAPP_MAX_USERNAME_LENGTH", 64, minimum=1),
        "MAX_ROOM_MEMBERS": _int(env, "HOMEAPP_MAX_ROOM_MEMBERS", 50, minimum=2),
        "MAX_NOTIFICATIONS": _int(env, "HOMEAPP_MAX_NOTIFICATIONS", 100, minimum=1),
        "MAX_PACKET_BYTES": _int(env, "HOMEAPP_MAX_PACKET_BYTES", 64 * 1024, minimum=1024),
        # token buckets per socket: sustained events per second and burst; 0 turns a limit off
        "MESSAGE_RATE": _float(env, "HOMEAPP_MESSAGE_RATE", 10.0),
        "MESSAGE_BURST": _int(env, "HOMEAPP_MESSAGE_BURST", 20, minimum=1),
        "TYPING_RATE": _float(env, "HOMEAPP_TYPING_RATE", 5.0),
        "TYPING_BURST": _int(env, "HOMEAPP_TYPING_BURST", 10, minimum=1),
        # Redis calls must fail fast so that an outage answers UNAVAILABLE instead of hanging
        "REDIS_TIMEOUT": _float(env, "HOMEAPP_REDIS_TIMEOUT", 2.0, minimum=0.05),
        # seconds after which a process that stopped beating is dead and its users go offline
        "PRESENCE_TIMEOUT": _float(env, "HOMEAPP_PRESENCE_TIMEOUT", 30.0, minimum=1.0),
    }
