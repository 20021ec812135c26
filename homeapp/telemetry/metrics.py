"""Prometheus metrics of this process; docs/operations.md lists them with example queries.

The metrics are module-level singletons in prometheus_client's default registry, like
the extensions, so that create_app() can run many times. Each process counts its own
events; under gunicorn with several workers each worker has its own numbers.

The three families counted per event (events received, their duration, emits) are kept
here as plain numbers and handed to Prometheus at scrape time. prometheus_client guards
every increment with a threading.Lock, which gevent's monkey-patching turns into a
greenlet lock taken several times per event (bench/metrics_overhead.py measures what
metrics cost an event). Under gevent all
greenlets share one thread and `+=` never yields, so these counts need no lock (in the
threading mode of the tests, concurrent increments may, rarely, lose one). Their label
children are looked up once, when the handlers are bound, never per event.
"""
from bisect import bisect_left

from prometheus_client import REGISTRY, Counter, Gauge, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from homeapp import errors

disable_created_metrics()  # the *_created series double the page and nothing here reads them

OK = "ok"
OUTCOMES = (OK, errors.VALIDATION_ERROR, errors.UNAUTHENTICATED, errors.FORBIDDEN,
            errors.RATE_LIMITED, errors.UNAVAILABLE, errors.INTERNAL_ERROR)
UNKNOWN_EVENT_LABEL = "<unknown>"  # client-chosen names would make the label set unbounded
_DYNAMIC_EMITS = ("privateRatingNotify-",)  # emitted names that carry a user id
DURATION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5)


class Count:
    """One counter child: a number and inc()."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0

    def inc(self, amount=1):
        self.value += amount


class Distribution:
    """One histogram child: a count per bucket (not cumulative) and the sum."""

    __slots__ = ("counts", "sum")

    def __init__(self):
        self.counts = [0] * (len(DURATION_BUCKETS) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, seconds):
        self.counts[bisect_left(DURATION_BUCKETS, seconds)] += 1  # bucket "le" bound included
        self.sum += seconds


class _Family:
    """Children by label values, collected into one metric family at scrape time."""

    def __init__(self, name, documentation, labelnames, child):
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self._child = child
        self._children = {}
        REGISTRY.register(self)

    def labels(self, *values):
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._child()
        return child

    def collect(self):
        family = self._family()
        for values, child in list(self._children.items()):
            self._add(family, list(values), child)
        yield family


class _CounterFamily(_Family):
    def __init__(self, name, documentation, labelnames):
        super().__init__(name, documentation, labelnames, Count)

    def _family(self):
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    @staticmethod
    def _add(family, values, child):
        family.add_metric(values, child.value)


class _HistogramFamily(_Family):
    def __init__(self, name, documentation, labelnames):
        super().__init__(name, documentation, labelnames, Distribution)

    def _family(self):
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    @staticmethod
    def _add(family, values, child):
        buckets, total = [], 0
        for bound, count in zip(DURATION_BUCKETS + (float("inf"),), child.counts):
            total += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), total))
        family.add_metric(values, buckets, child.sum)


EVENTS_RECEIVED = _CounterFamily(
    "homeapp_events_received_total",
    "Client events handled, by event name and outcome (ok or the error code sent back).",
    ["event", "outcome"])
EVENT_DURATION = _HistogramFamily(
    "homeapp_event_duration_seconds",
    "Time to handle one client event: checks, validation, handler and its emits.",
    ["event"])
EMITS = _CounterFamily(
    "homeapp_emits_total",
    "Server events emitted by this process, by event name: one per emit call, however many "
    "sockets it reaches.",
    ["event"])
CONNECTIONS_REFUSED = Counter(
    "homeapp_connections_refused_total",
    "Socket.IO connections refused: no valid identity, or the process is shutting down.")
MALFORMED_PACKETS = Counter(
    "homeapp_malformed_packets_total",
    "Socket.IO packets dropped because they do not decode, or refused because they are binary "
    "(which also closes their connection).")
REDIS_ERRORS = Counter(
    "homeapp_redis_errors_total",
    "Redis calls that failed, or were refused at once during a known outage: presence, the "
    "message queue, the presence keeper, readiness probes.")
QUEUE_DROPPED = Counter(
    "homeapp_queue_dropped_total",
    "Emits to other processes that could not be kept for them: waiting for Redis longer than the "
    "histories' window, or past the queue's backlog bound.")
RECOVERIES = Counter(
    "homeapp_recoveries_total",
    "Reconnects that presented a recovery session, by outcome: recovered, fresh (a new "
    "session: unknown or expired, another identity, offset not held, Redis unreachable), or "
    "budget (a new session: restores under way or entries to read past their bounds).",
    ["outcome"])
RECOVERY_READ_ENTRIES = Counter(
    "homeapp_recovery_read_entries_total",
    "History entries read by restores (each channel of a recovering socket, after its position).")
RECOVERY_READ_BYTES = Counter(
    "homeapp_recovery_read_bytes_total", "Bytes of history entries read by restores.")
REDIS_OUTAGE = Gauge(
    "homeapp_redis_outage", "1 while this process considers Redis unreachable, else 0.")
CONNECTED_SOCKETS = Gauge(
    "homeapp_connected_sockets", "Socket.IO connections open on this process.")
ENDED_IN_ROOMS = Gauge(
    "homeapp_ended_sockets_in_rooms",
    "Socket.IO sockets that this process's rooms still hold after their Engine.IO session "
    "ended: a few for a moment while a busy process gets to their disconnects; any that stay "
    "were never disconnected, and are sent every emit to their rooms.")
ONLINE_USERS = Gauge(
    "homeapp_online_users", "Distinct users with a live socket (after addOnlineUser) on this process.")
API_REQUESTS = Counter(
    "homeapp_api_requests_total",
    "Backend API requests (POST /api/events), by event name and outcome: ok, replayed (a repeated "
    "Idempotency-Key answered from memory) or the error code answered. Names the API does not "
    "perform are counted as <unknown>.",
    ["event", "outcome"])
IDEMPOTENCY_KEYS_FORGOTTEN = Counter(
    "homeapp_idempotency_keys_forgotten_total",
    "Idempotency keys forgotten before their time because process memory holds "
    "HOMEAPP_IDEMPOTENCY_KEYS already (without REDIS_URL only).")


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


def count_malformed_packet():
    MALFORMED_PACKETS.inc()


def emit_label(event):
    """The label of an emitted event name; names that embed a user id share one label."""
    for prefix in _DYNAMIC_EMITS:
        if event.startswith(prefix):
            return prefix + "*"
    return event


def counting_emits(emit):
    """Wrap Socket.IO's emit so that every call counts one emit of its event name.

    The wrapper names the two options the handlers use instead of forwarding *args and
    **kwargs, which would cost more than the counting itself.
    """
    children = {}

    def counted_emit(event, data=None, to=None, skip_sid=None):
        child = children.get(event)
        if child is None:
            label = emit_label(event)
            child = EMITS.labels(label)
            if label == event:  # names with a user id in them are not cached: unbounded
                children[event] = child
        child.value += 1
        return emit(event, data, to=to, skip_sid=skip_sid)

    return counted_emit


def watch(connections, health, ended_in_rooms):
    """Read the gauges from this app's sockets, rooms (`ended_in_rooms()`) and Redis health
    whenever metrics are scraped."""
    CONNECTED_SOCKETS.set_function(lambda: len(connections))
    ENDED_IN_ROOMS.set_function(ended_in_rooms)
    ONLINE_USERS.set_function(lambda: len({conn.user_id for conn in connections.live()}))
    REDIS_OUTAGE.set_function(lambda: 1 if health.down else 0)
