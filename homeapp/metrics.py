"""Prometheus metrics of this process; docs/operations.md lists them with example queries.

The metrics are module-level singletons in prometheus_client's default registry, like
the extensions, so that create_app() can run many times. On the hot path an event
costs one pre-bound counter increment and one histogram observation: the label
children are looked up once, when the handlers are bound, never per event.

Each process counts its own events; under gunicorn with several workers each worker
has its own numbers (docs/operations.md).
"""
from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from homeapp import errors

disable_created_metrics()  # the *_created series double the page and nothing here reads them

OK = "ok"
OUTCOMES = (OK, errors.VALIDATION_ERROR, errors.UNAUTHENTICATED, errors.FORBIDDEN,
            errors.RATE_LIMITED, errors.UNAVAILABLE, errors.INTERNAL_ERROR)
UNKNOWN_EVENT_LABEL = "<unknown>"  # client-chosen names would make the label set unbounded
_DYNAMIC_EMITS = ("privateRatingNotify-",)  # emitted names that carry a user id

EVENTS_RECEIVED = Counter(
    "homeapp_events_received_total",
    "Client events handled, by event name and outcome (ok or the error code sent back).",
    ["event", "outcome"])
EVENT_DURATION = Histogram(
    "homeapp_event_duration_seconds",
    "Time to handle one client event: checks, validation, handler and its emits.",
    ["event"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
             1.0, 2.5))
EMITS = Counter(
    "homeapp_emits_total",
    "Server events emitted by this process, by event name: one per emit call, however many "
    "sockets it reaches.",
    ["event"])
CONNECTIONS_REFUSED = Counter(
    "homeapp_connections_refused_total",
    "Socket.IO connections refused: no valid identity, or the process is shutting down.")
REDIS_ERRORS = Counter(
    "homeapp_redis_errors_total",
    "Redis calls that failed (timeout, refused connection, error reply), by operation.",
    ["operation"])
CONNECTED_SOCKETS = Gauge(
    "homeapp_connected_sockets", "Socket.IO connections open on this process.")
ONLINE_USERS = Gauge(
    "homeapp_online_users", "Distinct users with a live socket (after addOnlineUser) on this process.")


class EventMeter:
    """The pre-bound metric children of one client event."""

    __slots__ = ("event", "ok", "refused", "duration")

    def __init__(self, event):
        self.event = event
        self.ok = EVENTS_RECEIVED.labels(event, OK)
        self.refused = {code: EVENTS_RECEIVED.labels(event, code) for code in OUTCOMES if code != OK}
        self.duration = EVENT_DURATION.labels(event)

    def refusal(self, code):
        """The counter of events refused with `code`."""
        child = self.refused.get(code)
        if child is None:  # a code no handler was expected to raise
            child = self.refused[code] = EVENTS_RECEIVED.labels(self.event, code)
        return child


def count_unknown_event():
    EVENTS_RECEIVED.labels(UNKNOWN_EVENT_LABEL, errors.UNKNOWN_EVENT).inc()


def emit_label(event):
    """The label of an emitted event name; names that embed a user id share one label."""
    for prefix in _DYNAMIC_EMITS:
        if event.startswith(prefix):
            return prefix + "*"
    return event


def counting_emits(emit):
    """Wrap an emit function so that every call counts one emit of its event name."""
    children = {}
    labels = EMITS.labels

    def counted_emit(event, *args, **kwargs):
        child = children.get(event)
        if child is None:
            label = emit_label(event)
            child = labels(label)
            if label == event:  # names with a user id in them are not cached: unbounded
                children[event] = child
        child.inc()
        return emit(event, *args, **kwargs)

    return counted_emit


def watch_connections(connections):
    """Read the socket and user gauges from `connections` whenever metrics are scraped."""
    CONNECTED_SOCKETS.set_function(lambda: len(connections))
    ONLINE_USERS.set_function(lambda: len(connections.live_users()))


def redis_error(operation):
    """Count one failed Redis call."""
    REDIS_ERRORS.labels(operation).inc()
