"""Messages on their way to Redis: queued in order, sent in pipelined batches by one background
task, kept while Redis cannot take them and retried every half second. What waited longer than
the event log's window, or arrived past the backlog bound, is dropped, counted in
homeapp_queue_dropped_total and logged once.

An event's ack waits here until Redis answered for what the event emitted
(homeapp.engine.durability): `wait_taken`, woken after every attempt to send; what was never
written to Redis by the event's deadline is cancelled, and the sender skips it."""
import logging
import time

from homeapp.engine import durability
from homeapp.telemetry import metrics

log = logging.getLogger("homeapp.engine.message_queue")

RETRY_SECONDS = 0.5
# messages per pipelined round trip: bounds one batch's memory and Redis's output buffer
MAX_BATCH = 1000
# messages waiting for Redis (about 0.5 KB each) past which new ones are dropped, not queued
MAX_OUTBOX = 20000


class Queued:
    """A message waiting for Redis."""

    __slots__ = ("channels", "text", "number", "logged", "since", "deadline", "seq", "refused",
                 "cancelled", "expired", "follows")

    def __init__(self, channels, text, number, is_logged):
        self.channels = channels
        self.text = text
        self.number = number
        self.logged = is_logged  # a logged emit of this process, not yet given to its own sockets
        self.since = time.monotonic()
        self.deadline = 0        # ms since the epoch after which Redis must refuse it; 0: never
        self.seq = 0             # its place in the outbox, from 1
        self.refused = False     # Redis refused it: past its deadline
        self.cancelled = False   # its event stopped waiting for it: never send it
        self.expired = False     # dropped unanswered, past the log's window
        self.follows = False     # not the first message of its event: goes in the same batch


class Outbox:
    """`send(batch, writing)` returns whether Redis took it, calling `writing()` once connected,
    just before the batch goes; `unsent()` is called when it did not, and before what waited too
    long is dropped (the manager gives its own sockets what they miss)."""

    def __init__(self, server, send, unsent, keep_seconds):
        self.items = []          # Queued, oldest first
        self._server = server
        self._send = send
        self._unsent = unsent
        self._keep = keep_seconds
        self._queued = None      # an Event of the server's async mode, once the sender runs
        self._sending = False
        self._dropped = 0        # messages that could not be kept, since that was last logged
        self._added = 0          # seq of the last item added
        self._written = 0        # seq of the last item ever sent to Redis (maybe not taken)
        self._taken = 0          # seq of the last item of the last batch Redis answered
        self._answered = None    # an Event, set and replaced after each attempt to send
        self._cancelled = False  # some item is cancelled: drop them before the next batch

    def full(self):
        return len(self.items) >= MAX_OUTBOX

    def add(self, item):
        self._added += 1
        item.seq = self._added
        self.items.append(item)
        durability.note(self, item)
        if self._queued is None:
            self._queued = self._server.eio.create_event()
            self._answered = self._server.eio.create_event()
            self._server.start_background_task(self._send_forever)
        self._queued.set()

    def drop(self, count, why):
        """Count messages that could not be kept; the first since the last report is logged."""
        durability.lost()  # when called for an event's emit: its ack cannot be ok
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
                if self._cancelled:
                    self._cancelled = False
                    self.items = [item for item in self.items if not item.cancelled]
                batch = self.items[:self._batch_end()]
                if not batch:
                    break
                taken = self._send(batch, self._writing(batch[-1].seq))
                if not taken:
                    self._answer()
                    self._unsent()
                    self._server.sleep(RETRY_SECONDS)
                    continue
                if taken is not True and None in taken:  # one result per item: None, refused
                    for item, result in zip(batch, taken):
                        item.refused = result is None
                del self.items[:len(batch)]
                self._taken = batch[-1].seq
                self._answer()
            self._sending = False
            if self._dropped:
                log.warning("message queue caught up; %d emits to other processes were dropped",
                            self._dropped)
                self._dropped = 0

    def _batch_end(self):
        """Where the next batch ends: at MAX_BATCH, or past it at the end of the event its last
        message is of. An event's messages are never split between two batches, which Redis
        could take one before and one after the event's deadline: part of an event delivered
        and the event answered UNAVAILABLE."""
        items = self.items
        end = min(MAX_BATCH, len(items))
        while end < len(items) and items[end].follows:
            end += 1
        return end

    def _writing(self, last):
        """What `send` calls once a connection to Redis is open, just before the batch goes: from
        then on its items may get in, whatever the try's outcome."""
        def writing():
            self._written = max(self._written, last)
        return writing

    def _answer(self):
        """Wake whoever waits for an answer from Redis."""
        answered, self._answered = self._answered, self._server.eio.create_event()
        answered.set()

    def wait_taken(self, items, deadline):
        """Wait until Redis answered for `items` (this outbox's, in order). Returns True when it
        took them all; False when it did not: it refused one (past its deadline), or none of
        them was written to it by `deadline` (time.monotonic()): they are cancelled, never sent.
        Once written, they are not given up at the deadline: Redis may have carried them out
        just before, its answer held up by a stall, and only its answer tells. They are sent
        again until one comes (the sender's marks make a resend of one that got in a no-op that
        says so, and refuse one that did not, past its deadline), at most until they expire
        (the log's window): then returns None, not known."""
        first, last = items[0].seq, items[-1].seq
        while True:
            answered = self._answered  # before looking: an answer after the look sets this one
            if any(item.expired for item in items):
                return None if self._written >= first else False
            if self._taken >= last:
                return not any(item.refused for item in items)
            now = time.monotonic()
            if self._written < first:
                if now >= deadline:
                    self.cancel(items)
                    return False
                answered.wait(deadline - now)
            else:
                answered.wait()

    def cancel(self, items):
        """Never send these items, unless they were written to Redis already: those are sent
        until Redis answers for them (wait_taken)."""
        for item in items:
            if item.seq > self._written:
                item.cancelled = True
                self._cancelled = True

    def _expire(self):
        """Drop what waited for Redis longer than the log keeps an entry: too late to deliver."""
        horizon = time.monotonic() - self._keep
        stale = 0
        while stale < len(self.items) and self.items[stale].since < horizon:
            stale += 1
        if stale:
            self._unsent()
            for item in self.items[:stale]:
                item.expired = True
            del self.items[:stale]
            self._answer()
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
