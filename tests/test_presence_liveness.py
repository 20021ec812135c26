"""Heartbeats, reaping a dead process's sockets and retiring one's own, on the Redis store itself."""
import logging
import threading
import uuid

import pytest

from homeapp.config import ConfigError, load_config
from homeapp.presence import PresenceUnavailable
from homeapp.presence.keeper import heartbeat_schedule
from homeapp.presence.redis import RedisPresence
from homeapp.store import redis_keys
from homeapp.store.outage import RedisHealth
from tests.live import new_user_id


@pytest.fixture
def client(redis_server):
    return redis_server.client()


def process(client, ttl=20.0, health=None):
    """A presence store as one server process sees it: a fresh server id."""
    return RedisPresence(client, uuid.uuid4().hex, ttl, health)


def die(client, store):
    """What a SIGKILL leaves: everything but the heartbeat, which expires."""
    client.delete(redis_keys.heartbeat(store.server_id))


def test_a_process_holding_sockets_is_registered_and_beating(client):
    store = process(client, ttl=5)
    store.add_socket(new_user_id(), "s1")
    assert store.server_id in client.smembers(redis_keys.SERVERS)
    assert 0 < client.pttl(redis_keys.heartbeat(store.server_id)) <= 5000
    client.delete(redis_keys.heartbeat(store.server_id))
    store.beat()
    assert 0 < client.pttl(redis_keys.heartbeat(store.server_id)) <= 5000


def test_dead_servers_are_the_registered_ones_that_stopped_beating(client):
    me, alive, dead = process(client), process(client), process(client)
    for store in (me, alive, dead):
        store.beat()
    die(client, dead)
    die(client, me)  # never its own
    found = me.dead_servers()
    assert dead.server_id in found and alive.server_id not in found and me.server_id not in found


def test_reaping_takes_the_dead_process_users_offline_once(client):
    reaper, dead = process(client), process(client)
    only_there, also_here = new_user_id(), new_user_id()
    dead.add_socket(only_there, "tab1")
    dead.add_socket(only_there, "tab2")
    dead.add_socket(also_here, "tab3")
    reaper.add_socket(also_here, "tab4")
    assert reaper.reap(dead.server_id) is None  # still beating: left alone
    assert only_there in reaper.online_users()
    die(client, dead)
    assert reaper.reap(dead.server_id) == (3, [only_there])
    assert reaper.online_users() >= {also_here} and only_there not in reaper.online_users()
    assert reaper.sockets_of(also_here) == {"tab4"}
    assert not client.exists(redis_keys.server_sockets(dead.server_id))
    assert dead.server_id not in client.smembers(redis_keys.SERVERS)
    assert reaper.reap(dead.server_id) is None  # claimed already


def test_racing_reapers_announce_each_user_once(client):
    dead = process(client)
    users = [new_user_id() for _ in range(30)]
    for i, user in enumerate(users):
        dead.add_socket(user, f"s{i}")
    die(client, dead)
    reapers = [process(client) for _ in range(6)]
    barrier = threading.Barrier(len(reapers))
    results = []

    def reap(store):
        barrier.wait()
        results.append(store.reap(dead.server_id))

    threads = [threading.Thread(target=reap, args=(store,)) for store in reapers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    claimed = [result for result in results if result is not None]
    assert len(results) == 6 and len(claimed) == 1
    count, gone = claimed[0]
    assert count == 30 and sorted(gone) == sorted(users)


def test_retiring_takes_own_users_offline_at_once_and_leaves_others_alone(client):
    leaving, staying = process(client), process(client)
    mine, shared = new_user_id(), new_user_id()
    leaving.add_socket(mine, "a")
    leaving.add_socket(shared, "b")
    staying.add_socket(shared, "c")
    assert leaving.retire() == (2, [mine])
    assert not client.exists(redis_keys.heartbeat(leaving.server_id),
                             redis_keys.server_sockets(leaving.server_id))
    assert leaving.server_id not in client.smembers(redis_keys.SERVERS)
    assert shared in staying.online_users() and mine not in staying.online_users()
    # a socket that closes afterwards changes nothing more
    assert leaving.remove_socket(mine, "a") is False


def test_a_restarted_process_neither_inherits_nor_wipes(client):
    old = process(client)
    user = new_user_id()
    old.add_socket(user, "same-sid")
    new = process(client)  # a restart: same sids may recur, the server id does not
    new.beat()
    assert new.sockets_here() == {}
    assert new.add_socket(user, "same-sid") is False
    assert old.sockets_of(user) == {"same-sid"} and len(client.smembers(redis_keys.user_sockets(user))) == 2
    assert old.remove_socket(user, "same-sid") is False and user in new.online_users()


def test_calls_for_events_fail_fast_during_a_known_outage(client):
    health = RedisHealth()
    store = process(client, health=health)
    health.lost(ConnectionError("test"))
    for call in (lambda: store.add_socket("1", "s"), lambda: store.remove_socket("1", "s"),
                 store.online_users, lambda: store.sockets_of("1")):
        with pytest.raises(PresenceUnavailable):
            call()
    store.beat()  # the keeper's own calls still try
    health.back()
    assert store.add_socket(new_user_id(), "s") is True


def test_an_outage_is_logged_once_and_so_is_its_end(caplog):
    health = RedisHealth()
    with caplog.at_level(logging.INFO, logger="homeapp.store.outage"):
        for _ in range(5):
            health.lost(ConnectionError("refused"))
        health.back()
        health.back()
    assert [r.levelname for r in caplog.records] == ["ERROR", "WARNING"]
    assert "5 calls" in caplog.records[1].getMessage() and not health.down


@pytest.mark.parametrize("timeout, interval, ttl", [(30, 10, 20), (3, 1, 2)])
def test_a_dead_process_is_found_within_the_timeout(timeout, interval, ttl):
    # a heartbeat lasts ttl after the last beat and reapers look every interval
    assert heartbeat_schedule(timeout) == pytest.approx((interval, ttl))


def test_presence_timeout_setting():
    assert load_config({})["PRESENCE_TIMEOUT"] == 30.0
    assert load_config({"HOMEAPP_PRESENCE_TIMEOUT": "3"})["PRESENCE_TIMEOUT"] == 3.0
    for bad in ("0.5", "soon"):
        with pytest.raises(ConfigError, match="HOMEAPP_PRESENCE_TIMEOUT"):
            load_config({"HOMEAPP_PRESENCE_TIMEOUT": bad})
