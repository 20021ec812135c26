"""The outbox's appends on a Redis Cluster (homeapp/engine/cluster_appends.py): a batch goes to
each master in one round trip, every message lands once and in order in each of its channels,
whatever a master answers (NOSCRIPT, MOVED, a message's own error)."""
import itertools
import json
import time
import uuid

import pytest
import redis
from redis.cluster import RedisCluster

from homeapp.engine.history import Appender
from homeapp.store import redis_client, redis_keys
from tests.redis_cluster import RedisClusterGroup
from tests.test_live_cluster import move_slot


@pytest.fixture(scope="module")
def group():
    # no replicas: nothing but these tests talks to the masters
    group = RedisClusterGroup(masters=3, replicas=0)
    try:
        yield group
    finally:
        group.stop()


@pytest.fixture
def client(group):
    return redis_client.connect(group.url, 2.0)


class Sender:
    """A process's messages, numbered in the order sent, as the message queue writes them."""

    def __init__(self):
        self.id = uuid.uuid4().hex[:8]
        self.numbers = itertools.count(1)

    def message(self, channels, body, deadline=0):
        text = f"{self.id} {next(self.numbers)} {json.dumps({'body': body})}"
        return text, channels, deadline


def appender(client):
    return Appender(client, window_seconds=60, size=10000, one_slot=True)


def stored(client, channel):
    """The bodies in a channel's history, oldest first."""
    return [json.loads(fields[b"m"].decode().split(" ", 2)[2])["body"]
            for _, fields in client.xrange(redis_keys.history(channel))]


def channels_on_every_master(client, count):
    """`count` new room channels whose slots are spread over the three masters, a third each."""
    by_master = {}
    prefix = uuid.uuid4().hex[:6]
    for index in itertools.count():
        channel = f"room:{prefix}{index}"
        found = by_master.setdefault(client.get_node_from_key(redis_keys.history(channel)).name, [])
        if len(found) < count // 3:
            found.append(channel)
        if len(by_master) == 3 and all(len(found) == count // 3 for found in by_master.values()):
            return [channel for found in by_master.values() for channel in found]


def evalsha_calls(group):
    """{port: EVALSHA calls so far} of each master."""
    return {node.port: node.client().info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
            for node in group.masters()}


class Counting(redis.Connection):
    """A connection that counts its round trips to its server: sending, then reading the answers."""

    round_trips = {}  # port -> count
    sent = False

    def send_packed_command(self, command, check_health=True):
        self.sent = True
        super().send_packed_command(command, check_health)

    def read_response(self, *args, **kwargs):
        if self.sent:
            self.sent = False
            Counting.round_trips[self.port] = Counting.round_trips.get(self.port, 0) + 1
        return super().read_response(*args, **kwargs)


def test_a_burst_goes_to_each_master_in_one_round_trip_and_lands_once_in_order(group, client):
    channels = channels_on_every_master(client, 33)
    warm, channels = channels[::11], [c for c in channels if c not in channels[::11]]
    sender = Sender()
    # 300 messages, one in ten to two channels (two calls: each channel has its own slot)
    burst = [sender.message([channels[n % 30]] + ([channels[(n + 7) % 30]] if n % 10 == 0 else []), n)
             for n in range(300)]
    # the product's client, its connections counting their round trips
    # (a client made from a URL: its nodes' pools are given the connection class)
    counted = RedisCluster(url=f"redis://127.0.0.1:{group.nodes[0].port}", connection_class=Counting,
                           socket_timeout=2.0)
    appending = appender(counted)
    # the slots learnt, a connection to each master made (its handshake has round trips of its own)
    appending.append_all(counted, [Sender().message(warm, "warm")], "SPUBLISH")
    calls_by_port = {}
    for _, targets, _ in burst:
        for channel in targets:
            port = client.get_node_from_key(redis_keys.history(channel)).port
            calls_by_port[port] = calls_by_port.get(port, 0) + 1

    before = evalsha_calls(group)
    Counting.round_trips.clear()
    results = appending.append_all(counted, burst, "SPUBLISH")
    after = evalsha_calls(group)

    assert results == [[0] * len(targets) for _, targets, _ in burst]
    assert Counting.round_trips == {port: 1 for port in calls_by_port}
    for port, calls in calls_by_port.items():  # one call per message and channel there, none again
        assert calls > 90 and after[port] - before[port] == calls
    for index, channel in enumerate(channels):
        expected = [n for n in range(300) if n % 30 == index or (n % 10 == 0 and (n + 7) % 30 == index)]
        assert stored(client, channel) == expected

    # the same batch again (a retry after a lost answer): nothing lands twice
    assert appending.append_all(client, burst, "SPUBLISH") == [[0] * len(t) for _, t, _ in burst]
    assert stored(client, channels[0]) == [n for n in range(300) if n % 30 == 0 or (n % 10 == 0 and (n + 7) % 30 == 0)]


def test_a_master_without_the_script_gets_it_at_the_head_of_its_pipeline(group, client):
    channels = channels_on_every_master(client, 6)
    sender = Sender()
    appending = appender(client)
    appending.append_all(client, [sender.message(channels, "first")], "SPUBLISH")
    flushed = group.master_of(redis_keys.history(channels[0]))
    flushed.client().script_flush()  # as a restart without its data, or a promoted replica
    calls = {node.port: node.client().info("commandstats")["cmdstat_evalsha"]["calls"]
             for node in group.masters()}
    refused = flushed.client().info("errorstats").get("errorstat_NOSCRIPT", {}).get("count", 0)

    batch = [sender.message([channel], f"second {channel}") for channel in channels]
    batch += [sender.message([channel], f"third {channel}") for channel in channels]
    assert appending.append_all(client, batch, "SPUBLISH") == [[0]] * 12
    for channel in channels:
        assert stored(client, channel) == ["first", f"second {channel}", f"third {channel}"]
    assert flushed.client().script_exists(appending.sha) == [True]
    # no call was refused for want of the script, and every call went once (two channels per
    # master, two messages each)
    assert flushed.client().info("errorstats").get("errorstat_NOSCRIPT", {}).get("count", 0) == refused
    for node in group.masters():
        assert node.client().info("commandstats")["cmdstat_evalsha"]["calls"] - calls[node.port] == 4


def test_calls_to_a_slot_that_moved_are_sent_again_through_the_cluster_client(group, client):
    channels = channels_on_every_master(client, 6)
    moving = channels[0]
    sender = Sender()
    appending = appender(client)
    appending.append_all(client, [sender.message(channels[1:], "first")], "SPUBLISH")  # a map now
    source = group.master_of(redis_keys.history(moving))
    target = next(node for node in group.masters() if node is not source)
    move_slot(group, client.keyslot(redis_keys.history(moving)), source, target)
    assert client.get_node_from_key(redis_keys.history(moving)).port == source.port  # a stale map

    batch = [sender.message([channel], f"{n} {channel}") for n in range(3) for channel in channels]
    assert appending.append_all(client, batch, "SPUBLISH") == [[0]] * 18
    assert stored(client, moving) == [f"{n} {moving}" for n in range(3)]
    assert group.master_of(redis_keys.history(moving)) is target
    assert client.get_node_from_key(redis_keys.history(moving)).port == target.port  # MOVED, learnt
    assert target.client().xlen(redis_keys.history(moving)) == 3
    for channel in channels[1:]:
        assert stored(client, channel) == ["first"] + [f"{n} {channel}" for n in range(3)]


def test_a_message_refused_or_failing_is_its_own_result_and_the_others_land(group, client):
    channels = channels_on_every_master(client, 3)
    broken = channels[1]
    client.set(redis_keys.history(broken), "not a stream")
    sender = Sender()
    past = int(time.time() * 1000) - 1000
    batch = [sender.message([channels[0]], "fine"), sender.message([broken], "fails"),
             sender.message([channels[2]], "too late", deadline=past),
             sender.message([channels[0], channels[2]], "fine too")]
    [[fine], [fails], [late], both] = appender(client).append_all(client, batch, "SPUBLISH")
    assert (fine, late, both) == (0, None, [0, 0])
    assert isinstance(fails, redis.ResponseError) and "WRONGTYPE" in str(fails)
    assert stored(client, channels[0]) == ["fine", "fine too"]
    assert stored(client, channels[2]) == ["fine too"]


def test_after_a_master_dies_the_next_try_reaches_the_promoted_replica():
    """A batch meeting a dead master is unreachable (the outbox tries again); the client has
    learnt the slots again by then, and the next try appends on the promoted replica."""
    group = RedisClusterGroup(masters=3, replicas=1)
    try:
        client = redis_client.connect(group.url, 1.0)
        channels = channels_on_every_master(client, 6)
        sender = Sender()
        appending = appender(client)
        appending.append_all(client, [sender.message(channels, "before")], "SPUBLISH")
        victim = group.master_of(redis_keys.history(channels[0]))
        group.kill(victim)
        group.wait_until_promoted(victim, redis_keys.history(channels[0]))

        batch = [sender.message([channel], f"after {channel}") for channel in channels]
        with pytest.raises(redis.ConnectionError):  # the client's map still names the dead master
            appending.append_all(client, batch, "SPUBLISH")
        assert appending.append_all(client, batch, "SPUBLISH") == [[0]] * 6
        for channel in channels:
            assert stored(client, channel) == ["before", f"after {channel}"]
    finally:
        group.stop()
