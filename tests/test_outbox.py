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

    def send(self, batch, writing):
        with self.lock:
            if self.down:  # not reached: nothing written
                return False
            writing()
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
    """Takes what it is sent unless `down` (then it cannot be reached: nothing is written);
    `refuse` holds texts it answers refused (None)."""

    def __init__(self, down=False):
        super().__init__()
        self.down = down
        self.refuse = set()

    def send(self, batch, writing):
        with self.lock:
            if self.down:
                return False
            writing()
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
    assert durability.settle(emitted)
    assert redis.taken == ["a", "b"]


def test_emits_outside_an_event_are_not_waited_for():
    redis = Answering()
    box = outbox(redis, keep_seconds=60)
    box.add(Queued(["c"], "presence", 0, True))
    assert box.items[0].deadline == 0 and box.items[0].logged
    emitted, token = durability.collect(5)
    durability.stop(token)  # (left open, it would collect the later tests' emits)
    assert durability.settle(emitted)  # nothing emitted: at once


def test_what_redis_did_not_take_in_time_is_cancelled_and_never_sent():
    redis = Answering(down=True)
    box = outbox(redis, keep_seconds=60)
    emitted = emit_as_event(box, "late", timeout=0.3)
    box.add(Queued(["c"], "presence after", 0, False))
    assert not durability.settle(emitted, )
    redis.down = False
    assert box.flush(5)
    assert redis.taken == ["presence after"]


class Marking(Redis):
    """Stands in for Redis with the append script's marks: a message is appended once (a resend
    of one appended is answered taken), and refused when it runs past its deadline. `stall`
    makes the next send carry the batch out and lose the answer (False), as when Redis stalls
    right after running it ("after") or before ("before": it runs when Redis resumes, as the
    resend does); `down`, no connection: nothing written."""

    def __init__(self):
        super().__init__()
        self.down = False
        self.stall = None
        self.sent = []       # texts of every copy sent, resends included

    def send(self, batch, writing):
        with self.lock:
            if self.down:
                return False
            writing()
            self.sent += [item.text for item in batch]
            if self.stall == "before":
                self.stall = None
                return False
            now_ms = time.time() * 1000
            results = []
            for item in batch:
                if item.text not in self.taken and item.deadline and now_ms > item.deadline:
                    results.append(None)
                    continue
                if item.text not in self.taken:
                    self.taken.append(item.text)
                results.append(b"1-0")
            if self.stall == "after":
                self.stall = None
                return False
            return results


def settle_in_thread(emitted):
    result = {}
    waiter = threading.Thread(target=lambda: result.update(ok=durability.settle(emitted)), daemon=True)
    waiter.start()
    return waiter, result


def test_a_message_redis_carried_out_before_a_stall_is_acknowledged_ok_when_it_answers():
    """The race: Redis runs the append before the event's deadline, then stalls before its answer
    arrives, past the deadline. The message is delivered once Redis resumes, so the ack must not
    be UNAVAILABLE: it waits for an exact answer, a resend's, which the mark makes say taken."""
    redis = Marking()
    redis.stall = "after"
    box = outbox(redis, keep_seconds=60)
    emitted = emit_as_event(box, "landed", timeout=0.3)
    wait_until(lambda: redis.taken == ["landed"], 5, "never sent")
    redis.down = True  # the stall goes on: no connection, no answer
    waiter, result = settle_in_thread(emitted)
    time.sleep(1.5)  # past the deadline, a Redis timeout and a retry's pause
    assert waiter.is_alive(), f"answered on a guess: {result}"
    assert box.items and not box.items[0].cancelled  # still to be sent again
    redis.down = False
    waiter.join(5)
    assert result == {"ok": True}
    assert redis.sent == ["landed", "landed"]  # sent again, once, and appended once
    assert redis.taken == ["landed"]


def test_a_message_written_but_not_carried_out_in_time_is_refused_by_redis_and_unavailable():
    redis = Marking()
    redis.stall = "before"
    box = outbox(redis, keep_seconds=60)
    emitted = emit_as_event(box, "late", timeout=0.3)
    wait_until(lambda: redis.sent, 5, "never sent")
    redis.down = True
    waiter, result = settle_in_thread(emitted)
    time.sleep(1.0)
    assert waiter.is_alive(), f"answered on a guess: {result}"
    box.cancel(emitted.items)  # as an event that gives up would: a written one stays
    redis.down = False
    waiter.join(5)
    assert result == {"ok": False}
    assert redis.sent == ["late", "late"] and redis.taken == []


def test_a_message_written_and_unanswered_for_the_whole_window_is_not_known():
    redis = Marking()
    redis.stall = "after"
    box = outbox(redis, keep_seconds=1.0)
    emitted = emit_as_event(box, "unknown", timeout=0.3)
    wait_until(lambda: redis.sent, 5, "never sent")
    redis.down = True
    assert durability.settle(emitted) is None  # neither ok nor UNAVAILABLE: it may be delivered
    assert not box.items


class Connecting(Redis):
    """A Redis that takes long to connect to (stalled: each handshake times out), then fails
    without anything written."""

    def __init__(self):
        super().__init__()
        self.connecting = False
        self.release = threading.Event()

    def send(self, batch, writing):
        self.connecting = True
        self.release.wait(10)
        self.connecting = False
        return False


def test_an_event_whose_messages_are_not_written_yet_is_unavailable_at_its_deadline_mid_try():
    redis = Connecting()
    box = outbox(redis, keep_seconds=60)
    emitted = emit_as_event(box, "never", timeout=0.3)
    assert durability.settle(emitted) is False
    assert redis.connecting, "waited for the try to end"
    redis.release.set()
    wait_until(lambda: not box.items, 5, "a cancelled message was kept")


def test_a_message_that_never_reached_redis_is_unavailable_at_its_deadline():
    redis = Marking()
    redis.down = True
    box = outbox(redis, keep_seconds=60)
    emitted = emit_as_event(box, "never", timeout=0.3)
    wait_until(lambda: redis.unsent_calls >= 1, 5, "never tried")
    assert durability.settle(emitted) is False
    redis.down = False
    box.add(Queued(["c"], "after", 0, False))
    assert box.flush(5)
    assert redis.sent == ["after"]


def test_a_message_redis_refused_past_its_deadline_is_unavailable():
    redis = Answering()
    redis.refuse.add("refused")
    box = outbox(redis, keep_seconds=60)
    assert not durability.settle(emit_as_event(box, "fine", "refused"))
    assert durability.settle(emit_as_event(box, "next"))
    assert redis.taken == ["fine", "next"]


def test_an_emit_dropped_for_the_backlog_makes_its_event_unavailable():
    redis = Answering()
    box = outbox(redis, keep_seconds=60)
    emitted, token = durability.collect(5)
    try:
        box.drop(1, "a backlog")
    finally:
        durability.stop(token)
    assert not durability.settle(emitted)


def test_an_event_s_messages_go_in_one_batch_even_past_the_batch_size():
    """Two batches could be taken one before and one after the event's deadline: part of the
    event delivered, and the event answered UNAVAILABLE. So a batch ends with an event's last
    message, and one that follows it starts the next."""
    from homeapp.engine.outbox import MAX_BATCH

    class Batches(Answering):
        def __init__(self):
            super().__init__(down=True)
            self.batches = []

        def send(self, batch, writing):
            taken = super().send(batch, writing)
            if taken:
                self.batches.append([item.text for item in batch])
            return taken

    redis = Batches()  # down: everything waits, then goes in as few batches as it may
    box = outbox(redis, keep_seconds=60)
    for number in range(MAX_BATCH - 1):
        box.add(Queued(["c"], f"m{number}", number, False))
    emitted = emit_as_event(box, "e1", "e2", "e3")
    box.add(Queued(["c"], "after", 0, False))
    wait_until(lambda: redis.unsent_calls >= 1, 5, "the sender never tried")
    redis.down = False
    assert durability.settle(emitted) is True
    assert box.flush(5)
    assert [batch[-3:] for batch in redis.batches] == [["e1", "e2", "e3"], ["after"]]
    assert len(redis.batches[0]) == MAX_BATCH + 2
