"""The one path every client event takes: identity, rate limit, validation, permission, handler.

Handlers are bound to python-socketio's server directly rather than through
Flask-SocketIO's decorators: those push a Flask request context for every event,
which the handlers here never use and which costs more than the handler itself
on the hot path (bench/optimised.md).
"""
import logging
from time import perf_counter

from marshmallow import ValidationError

from homeapp import errors
from homeapp import names
from homeapp.connections import Connection
from homeapp.engine import durability
from homeapp.errors import EventError, error_payload
from homeapp.presence import PresenceUnavailable
from homeapp.seams import socketio as socketio_seam
from homeapp.telemetry import metrics
from homeapp.telemetry.logs import EVENT_CONTEXT

log = logging.getLogger("homeapp.events")

OK = {"ok": True}
UNANSWERED = "unanswered"  # the metrics outcome of an event left without an ack (durability.Unknown)
CONNECT, DISCONNECT = "connect", "disconnect"
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
    # the message names the rule that failed, never the payload's text
    log.log(logging.DEBUG if error.code == errors.RATE_LIMITED else logging.INFO,
            "refused %s: %s", error.code, error.message)
    payload = error_payload(error, event)
    hub.emit(names.ERROR, payload, to=sid)
    return payload


def _run(hub, event, spec, meter, sid, data):
    """Handle one client event: count its outcome, time it, and name it on every log line."""
    conn = hub.connections.get(sid)
    if conn is None:  # the socket is already gone
        return None
    started = perf_counter()
    context = EVENT_CONTEXT.set((conn, event))
    try:
        result = _accept(hub, event, spec, conn, data)
        meter.ok.inc()
    except EventError as error:
        meter.refusal(error.code).inc()
        result = refuse(hub, sid, event, error)
    except durability.Unknown:
        meter.refusal(UNANSWERED).inc()
        log.warning("not acknowledged: Redis could not tell, within the event log's window, "
                    "whether it took what the event sent")
        result = socketio_seam.no_ack(hub.server)
    finally:
        EVENT_CONTEXT.reset(context)
    meter.duration.observe(perf_counter() - started)
    return result


def _accept(hub, event, spec, conn, data, from_socket=True):
    """Identity, rate limit, validation, then the handler; returns the ack.

    An event from a socket is charged to the socket's rate limit, and refused when only the
    backend may send it (HOMEAPP_SERVER_ONLY_EVENTS, a permission: checked after validation);
    one performed for the backend API is neither.
    Raises EventError for every refusal, an unavailable store or a failed handler included.
    With Redis, returns once Redis holds what the handler emitted (_durably).
    """
    func, schema, rate, anonymous = spec
    try:
        if conn.user_id is None and not anonymous:
            raise EventError(errors.UNAUTHENTICATED, "Identify first: send addOnlineUser.")
        if from_socket and rate is not None and not hub.connections.allow(conn, rate):
            raise EventError(errors.RATE_LIMITED, "Too many events; slow down.")
        if schema is not None:
            data = validated(schema, data)
        if from_socket and event in hub.config["SERVER_ONLY_EVENTS"]:
            raise errors.forbidden(f"Only the server's backend sends {event}.")
        if hub.config["REDIS_URL"]:
            result = _durably(hub, func, conn, data)
        else:
            result = func(hub, conn, data)
    except (EventError, durability.Unknown):
        raise
    except PresenceUnavailable as exc:
        hub.health.lost(exc)  # logged once per outage, not per event
        raise EventError(errors.UNAVAILABLE, "Presence is unavailable; try again.") from None
    except Exception:
        log.exception("handler failed")
        raise EventError(errors.INTERNAL_ERROR, "The server failed to handle this event.") from None
    return OK if result is None else dict(OK, **result)


def _durably(hub, func, conn, data):
    """Run the handler, then wait until Redis holds what it emitted: acknowledged means durable
    (docs/protocol.md). Raises EventError (UNAVAILABLE) when Redis did not take it within
    HOMEAPP_ACK_TIMEOUT: then none of it is delivered; durability.Unknown when Redis could not
    tell within the event log's window whether it took it."""
    emitted, token = durability.collect(hub.config["ACK_TIMEOUT"])
    try:
        result = func(hub, conn, data)
    finally:
        durability.stop(token)
    settled = durability.settle(emitted)
    if settled is None:
        raise durability.Unknown()
    if not settled:
        raise EventError(errors.UNAVAILABLE, "Redis did not take this event in time; nothing of it "
                                             "was delivered. Try again.")
    return result


def validated(schema, data):
    """Load data with a marshmallow schema.

    Raises EventError (VALIDATION_ERROR) with marshmallow's messages as its details.
    """
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise EventError(errors.VALIDATION_ERROR, _summary(exc.messages), exc.messages) from None


# The sid of the connection an event performed for the backend API acts through: never a real
# socket's (Engine.IO's are 20 random characters), so nothing sent to it reaches anyone.
API_SID = "api"


def perform(hub, event, user_id, data):
    """Perform a client event as user_id without a socket, for the backend API.

    The event takes a socket's path: the same schema, permission rules, handler and emits, with
    a connection that exists only for this call and whose identity has no proven username (the
    handlers take usernames from the payload). No rate limit applies. Returns the ack.
    Raises EventError: UNKNOWN_EVENT for an event without a handler, and every refusal.
    """
    spec = _HANDLERS.get(event)
    if spec is None:
        raise EventError(errors.UNKNOWN_EVENT, f"Unknown event {event!r}.")
    conn = Connection(API_SID, user_id)
    context = EVENT_CONTEXT.set((conn, event))
    try:
        return _accept(hub, event, spec, conn, data, from_socket=False)
    finally:
        EVENT_CONTEXT.reset(context)


def _unknown(event, sid, *args):
    """Unknown events are ignored; only a client that asked for an ack hears about it."""
    metrics.count_unknown_event()
    name = event if isinstance(event, str) else repr(event)  # a binary attachment can name it
    return error_payload(EventError(errors.UNKNOWN_EVENT, f"Unknown event {name!r}."), name)


def bind(server, hub, on_connect, on_disconnect):
    """Register every client event, the catch-all and the connection hooks on the server.

    A connection is refused while the hub drains for shutdown; a disconnect's log lines
    name its socket and user like an event's.
    """
    for event, spec in _HANDLERS.items():
        def handler(sid, data=None, *extra, _event=event, _spec=spec, _meter=metrics.EventMeter(event)):
            return _run(hub, _event, _spec, _meter, sid, data)
        server.on(event, handler)

    # python-socketio calls these two handlers for the connection's own lifecycle, and also for
    # a client event that merely bears the name (42["disconnect"]): that one must not reach them,
    # or a client could forge its own handshake or drop its socket's state while staying connected.
    def connect(sid, environ, auth=None):
        if hub.connections.get(sid) is not None:  # the socket is connected already
            return _unknown(CONNECT, sid)
        try:
            if hub.draining:
                raise ConnectionRefusedError("The server is shutting down; connect again.")
            on_connect(sid, environ, auth)
        except ConnectionRefusedError:
            metrics.CONNECTIONS_REFUSED.inc()
            raise

    def disconnect(sid, reason=None):
        if server.manager.is_connected(sid, "/"):  # a real disconnect has begun by now
            return _unknown(DISCONNECT, sid)
        conn = hub.connections.get(sid)
        if conn is None:
            return on_disconnect(sid, reason)
        context = EVENT_CONTEXT.set((conn, DISCONNECT))
        try:
            log.debug("disconnected: %s", reason)
            return on_disconnect(sid, reason)
        finally:
            EVENT_CONTEXT.reset(context)

    server.on("*", _unknown)
    server.on("connect", connect)
    server.on(DISCONNECT, disconnect)
