"""homeapp.api.idempotency: both stores answer a repeated key once, refuse conflicts, and forget."""
import pytest

from homeapp.store import redis_keys
from homeapp.api.idempotency import (CHANGED, IN_FLIGHT, IN_FLIGHT_SECONDS, Answer, Conflict, MemoryIdempotency,
                                 RedisIdempotency)
from tests.live import new_user_id

ANSWER = Answer(200, b'{"ok":true}')


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture(params=["memory", "redis"])
def store(request):
    """Each test runs once per store; keys are unique per test, so the shared Redis needs no flush."""
    if request.param == "memory":
        return MemoryIdempotency(seconds=60, capacity=100)
    return RedisIdempotency(request.getfixturevalue("redis_server").client(), seconds=60)


@pytest.fixture
def key():
    return f"key-{new_user_id()}"


def test_a_new_key_is_claimed_then_answered_again(store, key):
    ticket = store.claim(key, "body-a")
    assert ticket.answer is None
    store.finish(ticket, ANSWER)
    assert store.claim(key, "body-a").answer == ANSWER
    assert store.claim(key, "body-a").answer == ANSWER


def test_a_key_in_flight_is_a_conflict_whatever_the_body(store, key):
    store.claim(key, "body-a")
    for fingerprint in ("body-a", "body-b"):
        with pytest.raises(Conflict, match=IN_FLIGHT):
            store.claim(key, fingerprint)


def test_an_answered_key_with_another_body_is_a_conflict(store, key):
    store.finish(store.claim(key, "body-a"), ANSWER)
    with pytest.raises(Conflict, match=CHANGED):
        store.claim(key, "body-b")


def test_a_released_key_is_performed_again(store, key):
    store.release(store.claim(key, "body-a"))
    ticket = store.claim(key, "body-b")
    assert ticket.answer is None


def test_a_ticket_that_lost_its_key_changes_nothing(store, key):
    stale = store.claim(key, "body-a")
    store.release(stale)
    current = store.claim(key, "body-a")
    store.finish(stale, Answer(500, b"{}"))
    store.release(stale)
    with pytest.raises(Conflict, match=IN_FLIGHT):  # still the current claim's
        store.claim(key, "body-a")
    store.finish(current, ANSWER)
    assert store.claim(key, "body-a").answer == ANSWER


def test_memory_keys_expire_after_the_window():
    clock = Clock()
    store = MemoryIdempotency(seconds=60, capacity=100, clock=clock)
    store.finish(store.claim("k", "body-a"), ANSWER)
    clock.now += 59
    assert store.claim("k", "body-a").answer == ANSWER
    clock.now += 2
    assert store.claim("k", "body-b").answer is None


def test_memory_holds_at_most_its_capacity_forgetting_the_oldest():
    store = MemoryIdempotency(seconds=60, capacity=3)
    for name in ("k1", "k2", "k3", "k4"):
        store.finish(store.claim(name, "body"), ANSWER)
    assert len(store._entries) == 3
    assert store.claim("k1", "body").answer is None  # forgotten: performed again
    assert store.claim("k4", "body").answer == ANSWER


def test_redis_keeps_answers_for_the_window_and_claims_for_a_lease(redis_server, key):
    client = redis_server.client()
    store = RedisIdempotency(client, seconds=600)
    ticket = store.claim(key, "body-a")
    assert 0 < client.pttl(redis_keys.idempotency(key)) <= IN_FLIGHT_SECONDS * 1000
    store.finish(ticket, ANSWER)
    assert IN_FLIGHT_SECONDS * 1000 < client.pttl(redis_keys.idempotency(key)) <= 600 * 1000
