"""The one path every client event takes: identity, rate limit, validation, permission, handler.

Handlers are bound to python-socketio's server directly rather than through
Flask-SocketIO's decorators: those push a Flask request context for every event,
which the handlers here never use and which costs more than the handler itself
on the hot path (docs/performance.md).
"""
import logging
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from marshmallow import ValidationError

from homeapp import errors
from homeapp.errors import EventError, error_payload
from homeapp.events import names
from homeapp.expiry import ExpiryWatch
from homeapp.health import RedisHealth
from homeapp.identity import OpenIdentifier
from homeapp.presence import PresenceUnavailable

log = logging.getLogger("homeapp.events")

OK = {"ok": True}
_HANDLERS = {}


def handles(event, schema=None, rate=None, anonymous=False):
    """Register func(hub, conn, payload) for a client event.

    `rate` names the socket's token bucket to charge; `anonymous` lets the event
    through before the socket has an identity (only addOnlineUser).
    """
    def register(func):
        _HANDLERS[event] = (func, schema, rate, anonymous)
        return func
    return register


class Hub:
    """What handlers act on: the Socket.IO server, presence, this process's sockets, settings,
    how sockets prove who they are and when those proofs run out."""

    def __init__(self, server, presence, connections, config, identifier=None, health=None):
        self.server = server
        self.presence = presence
        self.connections = connections
        self.config = config
        self.identifier = identifier or OpenIdentifier()
        self.expiry = ExpiryWatch(server.start_background_task, server.sleep)
        self.health = health or RedisHealth()
        self.keeper = None  # the PresenceKeeper, when presence lives in Redis
        self.timezone = ZoneInfo(config["TIMEZONE"])
        self.emit = server.emit

    def now_date(self):
        """The server's clock in the protocol's date shape."""
        now = datetime.now(self.timezone)
        return {"day": now.day, "month": now.month, "year": now.year, "time": now.strftime("%H:%M")}

    @staticmethod
    def new_message_id():
        return uuid.uuid4().hex


def _summary(messages, path=""):
    """The first leaf of marshmallow's error dict, as "data.roomID: message"."""
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        return _summary(value, f"{path}.{key}" if path else str(key))
    if isinstance(messages, list) and messages:
        return _summary(messages[0], path)
    return f"{path}: {messages}" if path else str(messages)


def refuse(hub, sid, event, error):
    """Tell the sender why its event was refused; the result is also its ack."""
    payload = error_payload(error, event)
    hub.emit(names.ERROR, payload, to=sid)
    return payload


def _run(hub, event, spec, sid, data):
    func, schema, rate, anonymous = spec
    conn = hub.connections.get(sid)
    if conn is None:  # the socket is already gone
        return None
    try:
        if conn.user_id is None and not anonymous:
            raise EventError(errors.UNAUTHENTICATED, "Identify first: send addOnlineUser.")
        if rate is not None and not hub.connections.allow(conn, rate):
            raise EventError(errors.RATE_LIMITED, "Too many events; slow down.")
        if schema is not None:
            try:
                data = schema.load(data)
            except ValidationError as exc:
                raise EventError(errors.VALIDATION_ERROR, _summary(exc.messages), exc.messages) from None
        result = func(hub, conn, data)
    except EventError as error:
        return refuse(hub, sid, event, error)
    except PresenceUnavailable as exc:
        hub.health.lost(exc)  # logged once per outage, not per event
        return refuse(hub, sid, event, EventError(errors.UNAVAILABLE, "Presence is unavailable; try again."))
    except Exception:
        log.exception("handler failed", extra={"sid": sid, "event": event, "user_id": conn.user_id})
        return refuse(hub, sid, event, EventError(errors.INTERNAL_ERROR, "The server failed to handle this event."))
    return OK if result is None else dict(OK, **result)


def _unknown(event, sid, *args):
    """Unknown events are ignored; only a client that asked for an ack hears about it."""
    return error_payload(EventError(errors.UNKNOWN_EVENT, f"Unknown event {event!r}."), event)


def _drop_malformed_packets(server):
    """A Socket.IO packet that does not decode (bad JSON, an event without a name) is dropped
    with one log line, instead of a traceback per packet; the socket stays connected."""
    handle = server._handle_eio_message

    def guarded(eio_sid, data):
        try:
            return handle(eio_sid, data)
        except (ValueError, KeyError, IndexError, TypeError, RecursionError) as exc:
            log.info("dropped a malformed packet from %s: %s: %s", eio_sid, type(exc).__name__, exc)
    server.eio.on("message", guarded)


def bind(server, hub, on_connect, on_disconnect):
    """Register every client event, the catch-all and the connection hooks on the server."""
    _drop_malformed_packets(server)
    for event, spec in _HANDLERS.items():
        def handler(sid, data=None, *extra, _event=event, _spec=spec):
            return _run(hub, _event, _spec, sid, data)
        server.on(event, handler)
    server.on("*", _unknown)
    server.on("connect", on_connect)
    server.on("disconnect", on_disconnect)
