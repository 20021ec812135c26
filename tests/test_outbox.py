"""The message queue's outbox on its own: kept in order while Redis refuses, sent when it takes
them, and what waited past the log's window dropped, counted and logged once."""
import logging
import threading
import time

import socketio

from homeapp.engine import durability
from homeapp.engine.outbox import Outbox, Queued
from homeapp.telemetry import metrics
from tests.processes import wait_until


class Redis:
    """Stands in for the pipelined send: refuses while `down`, records what it takes."""

    def __init__(self):
        self.down = True
        self.taken = []
        self.unsent_calls = 0
        self.lock = threading.Lock()

    def send(self, batch):
        with self.lock:
            if self.down:
                return False
            self.taken += [item.text for item in batch]
            return True

    def unsent(self):
        self.unsent_calls += 1


def outbox(redis, keep_seconds):
    server = socketio.Server(async_mode="threading")
    return Outbox(server, redis.send, redis.unsent, keep_seconds)


def dropped():
    return metrics.QUEUE_DROPPED._value.get()


def test_messages_wait_in_order_while_redis_refuses_them_and_go_once_it_takes_them():
    redis = Redis()
    box = outbox(redis, keep_seconds=60)
    for number in range(5):
        box.add(Queued(["c"], f"m{number}", number, False))
    wait_until(lambda: redis.unsent_calls >= 2, 5, "the sender never retried")
    assert redis.taken == [] and len(box.items) == 5
    redis.down = False
    assert box.flush(5)
    assert redis.taken == ["m0", "m1", "m2", "m3", "m4"]


def test_what_waited_past_the_window_is_dropped_counted_and_logged_once(caplog):
    redis = Redis()
    box = outbox(redis, keep_seconds=0.3)
    before = dropped()
    with caplog.at_level(logging.WARNING, logger="homeapp.engine.message_queue"):
        for number in range(3):
            box.add(Queued(["c"], f"old{number}", number, False))
        wait_until(lambda: not box.items, 5, "nothing expired")
        box.add(Queued(["c"], "new", 3, False))
        redis.down = False
        assert box.flush(5)
    assert redis.taken == ["new"]
    assert dropped() - before == 3
    warnings = [r.getMessage() for r in caplog.records]
    assert len([w for w in warnings if "are dropped" in w]) == 1
    assert any("3 emits to other processes were dropped" in w for w in warnings)


# --- an event's ack waits until Redis took what it emitted (homeapp.engine.durability) ---------


class Answering(Redis):
    """Takes what it is sent unless `down`; `refuse` holds texts it answers refused (None)."""

    def __init__(self, down=False):
        super().__init__()
        self.down = down
        self.refuse = set()

    def send(self, batch):
        with self.lock:
            if self.down:
                return False
            self.taken += [item.text for item in batch if item.text not in self.refuse]
            return [None if item.text in self.refuse else b"1-0" for item in batch]


def emit_as_event(box, *texts, timeout=5.0):
    """Queue texts as one event's emits, as dispatch does. Returns the collection."""
    emitted, token = durability.collect(timeout)
    try:
        for text in texts:
            box.add(Queued(["c"], text, 0, True))
    finally:
        durability.stop(token)
    return emitted


def test_an_event_waits_until_redis_took_its_emits():
    redis = Answering()
    box = outbox(redis, keep_seconds=60)
    emitted = emit_as_event(box, "a", "b")
    assert [item.logged for item in emitted.items] == [False, False]  # held from its own sockets
    assert emitted.items[0].deadline > 0
    assert durability.settle(emitted, grace=1)
    assert redis.taken == ["a", "b"]


def test_emits_outside_an_event_are_not_waited_for():
    redis = Answering()
    box = outbox(redis, keep_seconds=60)
    box.add(Queued(["c"], "presence", 0, True))
    assert box.items[0].deadline == 0 and box.items[0].logged
    assert durability.settle(durability.collect(5)[0], grace=1)  # nothing emitted: at once


def test_what_redis_did_not_take_in_time_is_cancelled_and_never_sent():
    redis = Answering(down=True)
    box = outbox(redis, keep_seconds=60)
    emitted = emit_as_event(box, "late", timeout=0.3)
    box.add(Queued(["c"], "presence after", 0, False))
    assert not durability.settle(emitted, grace=0.2)
    redis.down = False
    assert box.flush(5)
    assert redis.taken == ["presence after"]


def test_a_message_written_when_the_timeout_came_is_decided_by_redis_within_the_grace():
    redis = Answering(down=True)
    box = outbox(redis, keep_seconds=60)
    emitted = emit_as_event(box, "maybe", timeout=0.2)
    wait_until(lambda: redis.unsent_calls >= 1, 5, "never tried")
    result = {}
    waiter = threading.Thread(target=lambda: result.update(ok=durability.settle(emitted, grace=5)))
    waiter.start()
    time.sleep(0.5)  # past the timeout: written once, so only Redis's answer decides
    assert waiter.is_alive()
    redis.down = False  # and Redis says it got in (a copy written before it stalled, say)
    waiter.join(5)
    assert result == {"ok": True}


def test_a_message_redis_refused_past_its_deadline_is_unavailable():
    redis = Answering()
    redis.refuse.add("refused")
    box = outbox(redis, keep_seconds=60)
    assert not durability.settle(emit_as_event(box, "fine", "refused"), grace=1)
    assert durability.settle(emit_as_event(box, "next"), grace=1)
    assert redis.taken == ["fine", "next"]


def test_an_emit_dropped_for_the_backlog_makes_its_event_unavailable():
    redis = Answering()
    box = outbox(redis, keep_seconds=60)
    emitted, token = durability.collect(5)
    try:
        box.drop(1, "a backlog")
    finally:
        durability.stop(token)
    assert not durability.settle(emitted, grace=1)
