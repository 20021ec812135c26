"""The same contract for both presence stores; the Redis one also across two processes' views."""
import threading
import uuid

import pytest

from homeapp.presence import MemoryPresence
from homeapp.presence.redis import RedisPresence
from homeapp.store import redis_keys
from tests.live import new_user_id


@pytest.fixture(params=["memory", "redis"])
def store(request):
    if request.param == "memory":
        return MemoryPresence()
    return RedisPresence(request.getfixturevalue("redis_server").client(), uuid.uuid4().hex)


def test_transitions_are_reported_once(store):
    user = new_user_id()
    assert store.add_socket(user, "tab1") is True
    assert store.add_socket(user, "tab2") is False
    assert store.add_socket(user, "tab2") is False  # the same socket twice is one socket
    assert user in store.online_users()
    assert store.sockets_of(user) == {"tab1", "tab2"}
    assert store.remove_socket(user, "tab1") is False
    assert user in store.online_users()
    assert store.remove_socket(user, "tab2") is True
    assert user not in store.online_users()
    assert store.remove_socket(user, "tab2") is False
    assert store.sockets_of(user) == set()


def test_users_are_independent(store):
    a, b = new_user_id(), new_user_id()
    store.add_socket(a, "s1")
    store.add_socket(b, "s2")
    assert store.remove_socket(a, "s1") is True
    assert b in store.online_users() and a not in store.online_users()


def test_redis_store_writes_online_users_for_the_rest_api(redis_server):
    client = redis_server.client()
    store = RedisPresence(client, "server-x")
    user = new_user_id()
    store.add_socket(user, "s1")
    assert client.sismember(redis_keys.ONLINE_USERS, user)
    assert client.hget(redis_keys.server_sockets("server-x"), "s1") == user
    store.remove_socket(user, "s1")
    assert not client.sismember(redis_keys.ONLINE_USERS, user)
    assert client.hget(redis_keys.server_sockets("server-x"), "s1") is None


def test_simultaneous_tabs_on_two_processes_make_one_transition_each_way(redis_server):
    processes = [RedisPresence(redis_server.client(), uuid.uuid4().hex) for _ in range(2)]
    for _ in range(20):
        user = new_user_id()
        barrier = threading.Barrier(2)
        results = []

        def tab(store, op):
            barrier.wait()
            results.append(op(store))

        for op in (lambda s: s.add_socket(user, "tab"), lambda s: s.remove_socket(user, "tab")):
            results.clear()
            threads = [threading.Thread(target=tab, args=(s, op)) for s in processes]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(results) == [False, True]
        assert user not in processes[0].online_users()
