"""Acknowledged means durable: with Redis, an event is acknowledged only once Redis holds what
its handler emitted (docs/protocol.md, "Acknowledgements").

The dispatch opens a collection around the handler (`collect`); every message the handler
queues for Redis is noted in it (the outbox calls `note`, in the handler's own greenlet: a
context variable finds the collection, so background tasks' emits are never counted); the
dispatch then waits (`settle`) until the outbox's sender has seen Redis take them all.

An event whose messages Redis did not take within its timeout is answered UNAVAILABLE, and
they are never delivered: those not yet written are cancelled, and each message carries its
deadline, past which the log's append script refuses it, so a copy written before Redis stalled
and executed when it resumes is refused too. Once written, though, a message is not given up at
the timeout: Redis may have carried it out just before, its answer held up by a stall, and then
it is delivered when Redis resumes; the ack waits for Redis's answer, to that try or to a resend
(homeapp.engine.outbox's `wait_taken`), at most for the log's window. Past that nothing can tell
(`settle` returns None) and the event is not acknowledged at all: the client's own ack timeout
says "not known", as when a connection drops. While this process's own sockets would otherwise
get emits at once during an outage (homeapp.engine.message_queue's `_unsent`), an emit whose
event waits is held back: it reaches them through Redis like any other, or never.
"""
import time
from contextvars import ContextVar

_CURRENT = ContextVar("homeapp.durability", default=None)


class Emitted:
    """The messages one event queued for Redis, and when it stops waiting for them."""

    __slots__ = ("timeout", "outbox", "items", "deadline", "expires_ms", "lost")

    def __init__(self, timeout):
        self.timeout = timeout
        self.outbox = None
        self.items = []
        self.deadline = None     # time.monotonic() after which the ack stops waiting
        self.expires_ms = 0      # the same moment on the wall clock, in ms: Redis's deadline
        self.lost = False        # a message was dropped instead of queued


def collect(timeout):
    """Start collecting what the current greenlet queues for Redis. Returns the collection and
    the token that `stop` needs."""
    emitted = Emitted(timeout)
    return emitted, _CURRENT.set(emitted)


def stop(token):
    _CURRENT.reset(token)


def note(outbox, item):
    """A message was queued: part of the current event's emits, if an event is being handled."""
    emitted = _CURRENT.get()
    if emitted is None:
        return
    if emitted.deadline is None:
        emitted.outbox = outbox
        emitted.deadline = time.monotonic() + emitted.timeout
        emitted.expires_ms = int((time.time() + emitted.timeout) * 1000)
    item.deadline = emitted.expires_ms
    item.follows = bool(emitted.items)
    item.logged = False  # never given to this process's sockets before Redis took it
    emitted.items.append(item)


def lost():
    """A message of the current event could not even be queued (the backlog is full)."""
    emitted = _CURRENT.get()
    if emitted is not None:
        emitted.lost = True


def settle(emitted):
    """Wait until Redis answered for every message of `emitted`. Returns True when it took them
    all; False when it did not (refused one, or none was written to it within the timeout), or
    one was lost: none of them is delivered then. None when Redis could not answer within the
    log's window for what was written to it: it may be delivered or not."""
    if emitted.lost:
        if emitted.outbox is not None:
            emitted.outbox.cancel(emitted.items)
        return False
    if not emitted.items:
        return True
    return emitted.outbox.wait_taken(emitted.items, emitted.deadline)


class Unknown(Exception):
    """Whether Redis took an event's messages cannot be known (`settle` returned None)."""
