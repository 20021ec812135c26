"""Messages on their way to Redis: queued in order, sent in pipelined batches by one background
task, kept while Redis cannot take them and retried every half second. What waited longer than
the event log's window, or arrived past the backlog bound, is dropped, counted in
homeapp_queue_dropped_total and logged once."""
import logging
import time

from homeapp.operations import metrics

log = logging.getLogger("homeapp.cluster.message_queue")

RETRY_SECONDS = 0.5
# messages per pipelined round trip: bounds one batch's memory and Redis's output buffer
MAX_BATCH = 1000
# messages waiting for Redis (about 0.5 KB each) past which new ones are dropped, not queued
MAX_OUTBOX = 20000


class Queued:
    """A message waiting for Redis."""

    __slots__ = ("channels", "text", "number", "logged", "since")

    def __init__(self, channels, text, number, is_logged):
        self.channels = channels
        self.text = text
        self.number = number
        self.logged = is_logged  # a logged emit of this process, not yet given to its own sockets
        self.since = time.monotonic()


class Outbox:
    """`send(batch)` returns whether Redis took it; `unsent()` is called when it did not, and
    before what waited too long is dropped (the manager gives its own sockets what they miss)."""

    def __init__(self, server, send, unsent, keep_seconds):
        self.items = []          # Queued, oldest first
        self._server = server
        self._send = send
        self._unsent = unsent
        self._keep = keep_seconds
        self._queued = None      # an Event of the server's async mode, once the sender runs
        self._sending = False
        self._dropped = 0        # messages that could not be kept, since that was last logged

    def full(self):
        return len(self.items) >= MAX_OUTBOX

    def add(self, item):
        self.items.append(item)
        if self._queued is None:
            self._queued = self._server.eio.create_event()
            self._server.start_background_task(self._send_forever)
        self._queued.set()

    def drop(self, count, why):
        """Count messages that could not be kept; the first since the last report is logged."""
        self._dropped += count
        metrics.QUEUE_DROPPED.inc(count)
        if self._dropped == count:
            log.warning("message queue: emits to other processes are dropped: %s", why)

    def _send_forever(self):
        while True:
            self._queued.wait()
            self._queued.clear()
            self._sending = True
            while self.items:
                self._expire()
                batch = self.items[:MAX_BATCH]
                if not batch:
                    break
                if not self._send(batch):
                    self._unsent()
                    self._server.sleep(RETRY_SECONDS)
                    continue
                del self.items[:len(batch)]
            self._sending = False
            if self._dropped:
                log.warning("message queue caught up; %d emits to other processes were dropped",
                            self._dropped)
                self._dropped = 0

    def _expire(self):
        """Drop what waited for Redis longer than the log keeps an entry: too late to deliver."""
        horizon = time.monotonic() - self._keep
        stale = 0
        while stale < len(self.items) and self.items[stale].since < horizon:
            stale += 1
        if stale:
            self._unsent()
            del self.items[:stale]
            self.drop(stale, "Redis was unreachable for longer than the event log's window")

    def flush(self, timeout):
        """Wait, at most timeout seconds, until what was queued has been sent. Returns True when
        nothing is left."""
        deadline = time.monotonic() + timeout
        while self.items or self._sending:
            if time.monotonic() >= deadline:
                return False
            self._server.sleep(0.01)
        return True
