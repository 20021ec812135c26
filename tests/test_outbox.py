"""The message queue's outbox on its own: kept in order while Redis refuses, sent when it takes
them, and what waited past the log's window dropped, counted and logged once."""
import logging
import threading

import socketio

from homeapp.cluster.outbox import Outbox, Queued
from homeapp.operations import metrics
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
    with caplog.at_level(logging.WARNING, logger="homeapp.cluster.message_queue"):
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
