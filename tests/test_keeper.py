"""The presence keeper's rounds, run by hand against Redis, with announcements recorded."""
import time
import uuid

import pytest
import redis
import socketio

from homeapp.config import load_config
from homeapp.connections import Connections
from homeapp.hub import Hub
from homeapp.presence import keeper as keeper_module
from homeapp.presence import PresenceUnavailable
from homeapp.presence.keeper import PresenceKeeper, retire
from homeapp.presence.redis import RedisPresence
from homeapp.store import redis_keys
from homeapp.store.outage import RedisHealth
from tests.live import new_user_id
from tests.processes import RedisServer, free_port

TIMEOUT = 3.0


def make_hub(client):
    health = RedisHealth()
    store = RedisPresence(client, uuid.uuid4().hex, heartbeat_ttl=TIMEOUT * 2 / 3, health=health)
    hub = Hub(socketio.Server(async_mode="threading"), store, Connections({}), load_config({}), health=health)
    hub.announced = []
    hub.emit = lambda event, payload, **kwargs: hub.announced.append((payload["type"], payload["userID"]))
    hub.keeper = PresenceKeeper(hub, store, TIMEOUT)
    return hub


@pytest.fixture
def hub(redis_server):
    hub = make_hub(redis_server.client())
    yield hub
    hub.keeper.stop()


@pytest.fixture
def client(redis_server):
    return redis_server.client()


def go_live(hub, user_id, sid=None):
    """A socket of this process that sent addOnlineUser."""
    conn = hub.connections.open(sid or uuid.uuid4().hex, user_id)
    conn.live = True
    hub.presence.add_socket(user_id, conn.sid)
    return conn


def lose_everything(client, hub, *user_ids):
    """What a Redis restart does to this process's presence."""
    client.delete(redis_keys.server_sockets(hub.presence.server_id),
                  *(redis_keys.user_sockets(u) for u in user_ids))
    client.srem(redis_keys.ONLINE_USERS, *user_ids)


def test_a_round_restores_what_redis_lost_and_announces_each_user_once(hub, client):
    a, b = new_user_id(), new_user_id()
    go_live(hub, a), go_live(hub, a), go_live(hub, b)
    hub.keeper.tick()
    assert hub.announced == []  # nothing lost, nothing said
    lose_everything(client, hub, a, b)
    hub.keeper.tick()
    assert sorted(hub.announced) == sorted([("Add", a), ("Add", b)])
    assert len(client.hgetall(redis_keys.server_sockets(hub.presence.server_id))) == 3
    hub.keeper.tick()
    assert len(hub.announced) == 2


def test_a_socket_closed_during_an_outage_is_removed_when_redis_answers(hub, client):
    stays, leaves = new_user_id(), new_user_id()
    go_live(hub, stays)
    gone = go_live(hub, leaves)
    hub.connections.close(gone.sid)
    hub.keeper.owe_departure(leaves, gone.sid)  # its removal failed
    hub.keeper.tick()
    hub.keeper.tick()
    assert hub.announced == [("Remove", leaves)]
    assert not client.sismember(redis_keys.ONLINE_USERS, leaves)


def test_a_departure_lost_with_redis_data_is_still_announced(hub, client):
    leaves, other_tab_lives = new_user_id(), new_user_id()
    gone = go_live(hub, leaves)
    gone_tab = go_live(hub, other_tab_lives)
    go_live(hub, other_tab_lives)
    lose_everything(client, hub, leaves, other_tab_lives)
    for conn in (gone, gone_tab):
        hub.connections.close(conn.sid)
        hub.keeper.owe_departure(conn.user_id, conn.sid)
    hub.keeper.tick()
    assert sorted(hub.announced) == sorted([("Add", other_tab_lives), ("Remove", leaves)])


def test_redis_must_answer_a_while_before_the_outage_is_over(hub, monkeypatch):
    hub.health.lost(ConnectionError("test"))
    hub.keeper.tick()
    assert hub.health.down  # answered once: not yet
    monkeypatch.setattr(keeper_module, "SETTLE_SECONDS", 0.0)
    hub.keeper.tick()
    assert not hub.health.down


def test_reaping_waits_a_heartbeat_ttl_after_redis_first_answers(hub, client):
    dead = RedisPresence(client, uuid.uuid4().hex)
    user = new_user_id()
    dead.add_socket(user, "s")
    client.delete(redis_keys.heartbeat(dead.server_id))
    hub.keeper.tick()
    assert hub.announced == [] and client.sismember(redis_keys.ONLINE_USERS, user)
    hub.keeper.reap_dead()
    assert hub.announced == [("Remove", user)]


def test_retire_stops_beating_and_takes_own_users_offline(hub, client):
    a = new_user_id()
    go_live(hub, a), go_live(hub, a)
    hub.keeper.start()
    retire(hub)
    assert hub.announced == [("Remove", a)]
    assert not client.exists(redis_keys.heartbeat(hub.presence.server_id))
    assert hub.presence.server_id not in client.smembers(redis_keys.SERVERS)
    time.sleep(hub.keeper.interval + 0.2)  # the task is gone: nothing beats again
    assert not client.exists(redis_keys.heartbeat(hub.presence.server_id))


def test_retire_without_redis_leaves_the_reaping_to_others(caplog):
    hub = make_hub(redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5))
    retire(hub)  # does not raise
    assert "will reap them" in caplog.text


def test_retire_without_redis_configured_does_nothing():
    hub = make_hub(redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0"))
    hub.keeper = None
    retire(hub)


def test_a_socket_redis_holds_for_a_socket_that_never_went_live_is_dropped_unannounced(hub, client):
    """What an addOnlineUser that Redis applied after its caller gave up (a stall) leaves behind."""
    user = new_user_id()
    conn = hub.connections.open(uuid.uuid4().hex, user)  # open, its addOnlineUser refused
    hub.presence.add_socket(user, conn.sid)
    live = go_live(hub, new_user_id())
    hub.keeper.tick()
    assert client.smembers(redis_keys.ONLINE_USERS) & {user, live.user_id} == {live.user_id}
    assert client.hgetall(redis_keys.server_sockets(hub.presence.server_id)) == {live.sid: live.user_id}
    assert hub.announced == []


def test_an_add_that_reaches_redis_after_its_deadline_changes_nothing(redis_server, client):
    store = RedisPresence(client, uuid.uuid4().hex, heartbeat_ttl=2, call_timeout=0.5)
    store.beat()
    user = new_user_id()
    store._clock_offset -= 60  # as if the call had waited a minute in a stalled Redis
    with pytest.raises(PresenceUnavailable):
        store.add_socket(user, "late")
    assert user not in client.smembers(redis_keys.ONLINE_USERS)
    assert not client.exists(redis_keys.user_sockets(user))
    store._clock_offset += 60
    assert store.add_socket(user, "in-time") is True


def test_another_redis_server_answering_is_an_outage_that_holds_reaping(monkeypatch):
    """A failover, or a restart no call noticed (the next call reconnects by itself): the new
    server may have lost the latest heartbeats, so nobody is reaped until every process has
    beaten on it, and this process re-asserts its sockets."""
    server = RedisServer().start()
    try:
        client = server.client()
        hub = make_hub(client)
        user = new_user_id()
        go_live(hub, user)
        hub.keeper.tick()
        time.sleep(hub.keeper.heartbeat_ttl)  # reaping is allowed from now on
        server.stop()
        server.start()  # the same address, another server, empty
        beating_elsewhere = RedisPresence(client, uuid.uuid4().hex)
        other_user = new_user_id()
        beating_elsewhere.add_socket(other_user, "s")  # as the replica had it: its heartbeat lost
        client.delete(redis_keys.heartbeat(beating_elsewhere.server_id))
        hub.keeper.tick()
        assert hub.health.down
        monkeypatch.setattr(keeper_module, "SETTLE_SECONDS", 0.0)
        hub.keeper.tick()
        assert not hub.health.down and hub.announced == [("Add", user)]  # re-asserted
        assert client.smembers(redis_keys.ONLINE_USERS) == {user, other_user}
        hub.keeper.tick()
        assert hub.announced == [("Add", user)]  # and still nobody reaped
    finally:
        server.stop()
