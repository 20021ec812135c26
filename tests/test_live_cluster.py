"""REDIS_URL naming a Redis Cluster (three masters, a replica each): the subscriber follows each
channel to its slot's master, presence and messages work across processes, and a master's death
is carried through without a restart."""
import itertools
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
import redis
import requests

from homeapp.presence.redis import RedisPresence
from homeapp.services.rooms import room_channel
from homeapp.store import redis_client, redis_keys
from homeapp.store.sharded import ShardedPubSub
from tests import credentials as cred
from tests import payloads
from tests.cluster import UNLIMITED, Cluster
from tests.live import Peer, new_user_id, open_room, refusal, room_of, settle
from tests.processes import ServerProcess, wait_until
from tests.redis_cluster import RedisClusterGroup, cluster_port
from tests.test_live_backend_api import API, post, request_body
from tests.test_live_recovery import (CHAT, RECOVERY, Deployment, back, chat, everything, make_blip, say,
                                      text_of, until_said)

TIMEOUT = 6.0  # HOMEAPP_PRESENCE_TIMEOUT: heartbeats live 4 s
SHORT = {"HOMEAPP_PRESENCE_TIMEOUT": TIMEOUT, "HOMEAPP_REDIS_TIMEOUT": 0.5}
WITHIN = 30  # seconds after a master's death by which everything works again
PRESENCE = redis_keys.PresenceKeys(cluster=True)


def add(user):
    return {"type": "Add", "userID": user}


def remove(user):
    return {"type": "Remove", "userID": user}


class Borrowed:
    """The module's cluster lent to a tests.cluster.Cluster, which must not stop it."""

    def __init__(self, group):
        self.url = group.url
        self.client = group.client

    def stop(self):
        pass


def listening(group, channel=redis_keys.QUEUE):
    """How many connections, on all the masters, listen on a channel, by sharded or plain pub/sub."""
    total = 0
    for node in group.masters():
        client = node.client()
        total += client.pubsub_shardnumsub(channel)[0][1] + client.pubsub_numsub(channel)[0][1]
    return total


def wait_for_queue(group, processes, timeout=10):
    wait_until(lambda: listening(group) >= processes, timeout,
               "the processes did not all subscribe to the message queue")


@pytest.fixture(scope="module")
def group():
    group = RedisClusterGroup()
    try:
        yield group
    finally:
        group.stop()


@pytest.fixture(scope="module")
def cluster(group):
    cluster = Cluster(2, redis_server=Borrowed(group), **API)
    try:
        cluster.peer(0), cluster.peer(1)  # each process listens on the queue from its first socket
        wait_for_queue(group, 2)
        yield cluster
    finally:
        cluster.close()


# --- the clients and the presence store, alone -------------------------------------------------


def test_a_cluster_url_makes_clients_with_the_timeouts(group):
    client = redis_client.connect(group.url, 0.5, decode_responses=True)
    assert redis_client.is_cluster(client) and not redis_client.is_cluster(redis.Redis())
    for node in client.get_primaries():
        options = node.redis_connection.connection_pool.connection_kwargs
        assert (options["socket_timeout"], options["socket_connect_timeout"]) == (0.5, 0.5)
    subscriber = redis_client.pubsub(group.url, 0.5)
    try:
        assert isinstance(subscriber, ShardedPubSub)
    finally:
        subscriber.close()


def test_on_a_cluster_each_node_s_pool_is_bounded_and_a_call_waits_for_a_free_connection(group):
    """HOMEAPP_REDIS_MAX_CONNECTIONS on a cluster: per node, and more calls at once than that
    wait their turn instead of failing with Too many connections."""
    client = redis_client.connect(group.url, 2.0, decode_responses=True, max_connections=2)
    assert len(client.get_primaries()) == 3
    for node in client.get_primaries():
        pool = node.redis_connection.connection_pool
        assert (pool.max_connections, pool.connection_kwargs["socket_timeout"]) == (2, 2.0)
    with ThreadPoolExecutor(max_workers=12) as threads:
        # each call holds its connection 0.1 s (BLPOP on an empty list): twelve at once, more
        # than any node has connections
        keys = [f"nothing:{{{slot}}}" for slot in ("a", "b", "c") for _ in range(4)]
        assert list(threads.map(lambda key: client.blpop([key], timeout=0.1), keys)) == [None] * 12


def test_presence_scripts_each_touch_one_slot_and_a_dead_process_is_reaped_once(group):
    client = redis_client.connect(group.url, 1.0, decode_responses=True)
    reaper, dead = (RedisPresence(client, uuid.uuid4().hex, 20.0) for _ in range(2))
    only_there, also_here = new_user_id(), new_user_id()
    assert dead.add_socket(only_there, "tab1") and not dead.add_socket(only_there, "tab2")
    dead.add_socket(also_here, "tab3")
    reaper.add_socket(also_here, "tab4")
    assert reaper.beat() == group.master_of(redis_keys.ONLINE_USERS).client().info("server")["run_id"]
    assert dead.server_id not in reaper.dead_servers() and reaper.reap(dead.server_id) is None  # beating
    client.delete(PRESENCE.heartbeat(dead.server_id))  # what a SIGKILL leaves, once it expired
    assert dead.server_id in reaper.dead_servers()
    assert reaper.reap(dead.server_id) == (3, [only_there])
    assert only_there not in reaper.online_users() and also_here in reaper.online_users()
    assert reaper.sockets_of(also_here) == {"tab4"}
    assert reaper.reap(dead.server_id) is None  # claimed already
    assert reaper.remove_socket(also_here, "tab4") and also_here not in reaper.online_users()


# --- the subscriber, alone --------------------------------------------------------------------


def channels_on_every_master(group, count=12):
    """Room channels whose slots are spread so that every master holds some."""
    client = group.client()
    by_master = {}
    for index in itertools.count():
        channel = f"homeapp:q:{{room:{index}}}"
        by_master.setdefault(client.get_node_from_key(channel).name, []).append(channel)
        if len(by_master) == 3 and sum(map(len, by_master.values())) >= count:
            return [c for channels in by_master.values() for c in channels]


def test_the_subscriber_hears_every_channel_on_the_master_of_its_slot(group):
    channels = channels_on_every_master(group)
    subscriber = redis_client.pubsub(group.url, 1.0)
    try:
        subscriber.ssubscribe(*channels)
        subscriber.subscribe("homeapp:plain")
        heard = subscriber.listen()
        confirmed = [next(heard) for _ in range(len(channels) + 1)]
        assert sorted((m["type"], m["channel"].decode()) for m in confirmed) == \
            sorted([("ssubscribe", c) for c in channels] + [("subscribe", "homeapp:plain")])
        publisher = group.client()
        for channel in channels:
            publisher.spublish(channel, f"to {channel}")
        publisher.publish("homeapp:plain", "to everyone")
        received = [next(heard) for _ in range(len(channels) + 1)]
        assert sorted((m["type"], m["channel"].decode(), m["data"].decode()) for m in received) == \
            sorted([("smessage", c, f"to {c}") for c in channels]
                   + [("message", "homeapp:plain", "to everyone")])
        # on each master, each of its channels has one listener: the master of its slot was asked
        for node in group.masters():
            held = [c for c in channels if publisher.get_node_from_key(c).port == node.port]
            assert held and node.client().pubsub_shardnumsub(*held) == [(c, 1) for c in held]

        subscriber.sunsubscribe(channels[0])
        gone = next(heard)
        assert (gone["type"], gone["channel"]) == ("sunsubscribe", channels[0].encode())
        publisher.spublish(channels[0], "nobody hears this")
        publisher.spublish(channels[1], "still heard")
        assert next(heard)["data"] == b"still heard"
        # left and joined again at once: a leave confirmed after the join is no moved slot
        for _ in range(50):
            subscriber.sunsubscribe(channels[2])
            subscriber.ssubscribe(channels[2])
        assert [next(heard)["type"] for _ in range(100)] == ["sunsubscribe", "ssubscribe"] * 50
        publisher.spublish(channels[2], "joined again")
        assert next(heard)["data"] == b"joined again"
    finally:
        subscriber.close()
    assert list(heard) == []  # closed: listen() ends


def move_slot(group, slot, source, target):
    """Hand an empty slot (channels are not keys) from one master to another, as resharding does."""
    source_id, target_id = (node.client().cluster("myid") for node in (source, target))
    target.client().execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source_id)
    source.client().execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)
    for node in (target, source, *(n for n in group.masters() if n not in (source, target))):
        node.client().execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)


@pytest.mark.parametrize("how", ["moved-away", "stale-map"])
def test_a_slot_that_moves_fails_the_subscriber_and_a_new_one_follows_it(how):
    """A master that loses a slot ends its subscriptions there by itself; one asked for a slot it
    no longer holds answers MOVED. Either fails listen(); a new subscriber hears the new master."""
    group = RedisClusterGroup(masters=3, replicas=0)
    try:
        client = group.client()
        moving = "homeapp:q:{room:moving}"
        source = group.master_of(moving)
        staying = next(channel for channel in (f"homeapp:q:{{room:{i}}}" for i in itertools.count())
                       if group.master_of(channel) is source
                       and client.keyslot(channel) != client.keyslot(moving))
        target = next(node for node in group.masters() if node is not source)
        subscriber = redis_client.pubsub(group.url, 1.0)
        heard = subscriber.listen()
        if how == "moved-away":
            subscriber.ssubscribe(moving)
            assert next(heard)["type"] == "ssubscribe"
            move_slot(group, client.keyslot(moving), source, target)
        else:
            subscriber.ssubscribe(staying)  # a connection to the source, on another slot
            assert next(heard)["type"] == "ssubscribe"
            move_slot(group, client.keyslot(moving), source, target)
            try:
                subscriber.ssubscribe(moving)  # on the master its map names: the old one
            except redis.RedisError:
                pass  # the reader may see the failure first
        with pytest.raises(redis.RedisError):
            next(heard)
        subscriber.close()

        subscriber = redis_client.pubsub(group.url, 1.0)
        try:
            subscriber.ssubscribe(moving)
            heard = subscriber.listen()
            assert next(heard)["type"] == "ssubscribe"
            assert group.master_of(moving) is target
            redis_client.connect(group.url, 1.0).spublish(moving, "on the new master")
            assert next(heard)["data"] == b"on the new master"
        finally:
            subscriber.close()
    finally:
        group.stop()


def test_a_master_that_stops_answering_fails_the_subscriber():
    """A stalled master (SIGSTOP: nothing is closed, nothing sent) would hold a connection
    without a read timeout for good; an unanswered PING fails listen() instead."""
    group = RedisClusterGroup(masters=3, replicas=0)
    try:
        channel = "homeapp:q:{room:stalled}"
        subscriber = redis_client.pubsub(group.url, 1.0)
        heard = subscriber.listen()
        subscriber.ssubscribe(channel)
        assert next(heard)["type"] == "ssubscribe"
        stalled = group.master_of(channel)
        stalled.proc.send_signal(signal.SIGSTOP)
        failed = []

        def read():
            try:
                for message in heard:
                    failed.append(message)
            except redis.RedisError as exc:
                failed.append(exc)
        threading.Thread(target=read, daemon=True).start()
        wait_until(lambda: failed, 30, "the subscriber kept waiting on a stalled master")
        assert isinstance(failed[0], redis.TimeoutError), failed
        subscriber.close()
    finally:
        group.stop()


# --- two processes on the cluster -------------------------------------------------------------


def test_presence_is_announced_across_processes_and_kept_in_onlineUsers_slot(cluster):
    observers = [cluster.peer(index, live=False, join=False) for index in (0, 1)]
    a, b = cluster.peer(0), cluster.peer(1)
    for observer in observers:
        observer.wait_for("newOnlineUser", lambda p: p == add(a.user_id))
        observer.wait_for("newOnlineUser", lambda p: p == add(b.user_id))
    client = cluster.client()
    assert {a.user_id, b.user_id} <= client.smembers(redis_keys.ONLINE_USERS)
    # the REST API's set keeps its name; every other presence key is in its slot
    assert client.smembers(PRESENCE.user_sockets(b.user_id)) and \
        client.keyslot(PRESENCE.user_sockets(b.user_id)) == client.keyslot(redis_keys.ONLINE_USERS)
    assert not client.exists(redis_keys.user_sockets(b.user_id))

    b.close()
    for observer in observers:
        observer.wait_for("newOnlineUser", lambda p: p == remove(b.user_id))
    settle(*observers)
    for observer in observers:  # once each, from whichever process
        assert observer.presence_of(b.user_id) == [add(b.user_id), remove(b.user_id)]
    assert b.user_id not in client.smembers(redis_keys.ONLINE_USERS)
    assert a.user_id in client.smembers(redis_keys.ONLINE_USERS)


def test_messages_cross_processes_in_private_rooms_and_reach_no_one_else(cluster):
    pairs = [(cluster.peer(0), cluster.peer(1)) for _ in range(3)]
    bystander = cluster.peer(1)
    for a, b in pairs:
        open_room(room_of(a, b), a, b)
    bystander.clear()
    for a, b in pairs:
        assert a.call("message", payloads.message(a.user_id, room_of(a, b), f"to {b.user_id}"))["ok"]
        assert b.call("message", payloads.message(b.user_id, room_of(a, b), f"to {a.user_id}"))["ok"]
    for a, b in pairs:
        b.wait_for("messageRoom", lambda p, a=a: p["from"] == a.user_id)
        a.wait_for("messageRoom", lambda p, b=b: p["from"] == b.user_id)
    settle(bystander, *itertools.chain(*pairs))
    for a, b in pairs:
        for peer in (a, b):
            assert sorted(p["message"] for _, p in peer.got("messageRoom")) == \
                sorted([f"to {b.user_id}", f"to {a.user_id}"])
    assert bystander.got() == []


def test_a_repeated_idempotency_key_on_the_other_process_delivers_once(cluster):
    client, houseworker = cluster.peer(0), cluster.peer(1)
    body = request_body("message", client.user_id,
                        payloads.message(client.user_id, room_of(client, houseworker), "only once"))
    key = f"cluster-{new_user_id()}"
    first = post(cluster[0], body, key=key)
    again = post(cluster[1], body, key=key)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"
    settle(client, houseworker)
    assert [event for event, _ in houseworker.got()] == ["messagePage", "messageResponseNotify"]


def commands_by_master(group):
    """{port: commands processed so far} of each master."""
    return {node.port: node.client().info("stats")["total_commands_processed"] for node in group.masters()}


# Each channel's history (`homeapp:h:{<channel>}`) and pub/sub channel live in its own slot, so
# room traffic spreads over the masters.
def test_room_traffic_spreads_over_the_three_masters(cluster, group):
    pairs = [(cluster.peer(0), cluster.peer(1)) for _ in range(24)]
    for a, b in pairs:
        open_room(room_of(a, b), a, b)
    before = commands_by_master(group)
    for round_ in range(5):
        for a, b in pairs:
            a.emit("message", payloads.message(a.user_id, room_of(a, b), f"round {round_}"))
    for a, b in pairs:
        wait_until(lambda b=b: len(b.got("messageRoom")) == 5, 30, "the traffic did not arrive")
    after = commands_by_master(group)
    work = {port: after[port] - before[port] for port in after}
    total = sum(work.values())
    assert len(work) == 3 and all(share >= total / 6 for share in work.values()), work


def rooms_on_every_master(group, per_master):
    """Pairs of new users whose private rooms' channels hash to slots of each master, `per_master` each."""
    client = group.client()
    found = {}
    while len(found) < 3 or any(len(rooms) < per_master for rooms in found.values()):
        first, second = new_user_id(), new_user_id()
        room = ":".join(sorted((first, second), key=int))
        rooms = found.setdefault(client.get_node_from_key(f"homeapp:q:{{{room_channel(room)}}}").name, [])
        if len(rooms) < per_master:
            rooms.append((first, second))
    return [pair for rooms in found.values() for pair in rooms]


# The outbox appends a batch with one pipeline per master (homeapp/engine/cluster_appends.py):
# each room's messages must still arrive once, in the order sent.
def test_a_burst_of_emits_arrives_once_and_in_order_on_the_other_process(cluster, group):
    pairs = [(cluster.peer(0, user_id=first), cluster.peer(1, user_id=second))
             for first, second in rooms_on_every_master(group, 4)]
    for a, b in pairs:
        open_room(room_of(a, b), a, b)
    for n in range(25):
        for a, b in pairs:
            a.emit("message", payloads.message(a.user_id, room_of(a, b), f"burst {n}"))
    for a, b in pairs:
        wait_until(lambda b=b: len(b.got("messageRoom")) >= 25, 30, "the burst did not arrive")
    settle(*(b for _, b in pairs))
    for a, b in pairs:
        assert [(p["from"], p["message"]) for _, p in b.got("messageRoom")] == \
            [(a.user_id, f"burst {n}") for n in range(25)]


def test_the_rest_apis_sessions_are_read_from_the_cluster(group):
    """HOMEAPP_AUTH=session reads express-session's `sess:<sid>` wherever its slot is."""
    process = Cluster(1, redis_server=Borrowed(group), HOMEAPP_AUTH="session",
                      HOMEAPP_SESSION_SECRET=cred.SESSION_SECRET)
    try:
        user_id = new_user_id()
        cred.store_session(group.client(), f"sid-{user_id}", int(user_id), "carla")
        cookie = {"Cookie": f"sessionLog={quote(cred.python_signed(f'sid-{user_id}'), safe='')}"}
        peer = Peer(process[0].url, user_id, query=False, headers=cookie)
        process.peers.append(peer)
        assert peer.call("addOnlineUser", {"userID": user_id, "userUsername": "carla"}) == {"ok": True}
        assert user_id in group.client().smembers(redis_keys.ONLINE_USERS)
        unknown = {"Cookie": f"sessionLog={quote(cred.python_signed(f'sid-never-{user_id}'), safe='')}"}
        assert "unknown session" in refusal(process[0].url, headers=unknown)
    finally:
        process.close()


class ClusterDeployment(Deployment):
    """tests.test_live_recovery's two processes with recovery on, on the module's cluster."""

    def __init__(self, group):
        self.cluster = Cluster(2, redis_server=Borrowed(group), **UNLIMITED, **RECOVERY,
                               HOMEAPP_PRESENCE_GRACE=60)
        self.processes = self.cluster.processes

    def listening(self, *channels):
        pass  # a join is acknowledged once Redis confirmed the subscription


def test_a_dropped_socket_recovers_on_the_other_process_with_what_it_missed(group, clients):
    deploy = ClusterDeployment(group)
    try:
        a, b, room = make_blip(deploy, clients)
        a2 = back(clients, deploy.processes[1], a)
        assert (a2.recovered, a2.sid, a2.pid) == (True, a.sid, a.pid)
        missed = [(e, text_of(args[0])) for e, args, _ in a2.events[:a2.before_reply] if e in CHAT]
        assert missed == everything("missed 0") + everything("missed 1")
        say(b, room, "after")
        until_said(a2, "after")
        a2.quiet(0.3)
        # a room's and a user's channels live on different masters: their events keep their
        # order within each channel only (each event here is one channel's, and comes once)
        assert sorted(chat(a2)[len(missed):]) == sorted(everything("after"))
    finally:
        deploy.close()


def test_a_process_started_before_the_cluster_answers_carries_on_once_it_does():
    ports = set()
    while len(ports) < 6:
        ports.add(cluster_port())
    ports = sorted(ports)
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in ports)
    process = ServerProcess(dict(UNLIMITED, REDIS_URL=url, **SHORT)).start()  # it starts
    group = None
    try:
        user_id = new_user_id()
        peer = Peer(process.url, user_id, f"user{user_id}")
        hello = {"userID": user_id, "userUsername": f"user{user_id}"}
        assert peer.call("addOnlineUser", hello)["code"] == "UNAVAILABLE"
        assert requests.get(f"{process.url}/readyz", timeout=5).status_code == 503

        group = RedisClusterGroup(ports=ports)

        def added():
            ack = peer.call("addOnlineUser", hello)
            assert ack == {"ok": True} or ack["code"] == "UNAVAILABLE", ack
            return ack == {"ok": True} or time.sleep(0.2)
        wait_until(added, 30, "addOnlineUser kept failing once the cluster answered")
        assert user_id in group.client().smembers(redis_keys.ONLINE_USERS)
        wait_until(lambda: requests.get(f"{process.url}/readyz", timeout=5).status_code == 200, 30,
                   "the process never became ready")
        peer.close()
    finally:
        process.stop()
        if group is not None:
            group.stop()


# --- a master dies ----------------------------------------------------------------------------


def room_in_slot_of(group, key):
    """Two new users whose private room's channel hashes to a slot of the master of `key`."""
    client = group.client()
    target = client.get_node_from_key(key).name
    while True:
        first, second = new_user_id(), new_user_id()
        room = ":".join(sorted((first, second), key=int))
        if client.get_node_from_key(f"homeapp:q:{{{room_channel(room)}}}").name == target:
            return first, second


# Whose master dies: presence's (onlineUsers' slot), or that of the room's channel, chosen in the
# slot's master of today's one event log stream too (per-channel history has none)
DEATHS = {"presence": redis_keys.ONLINE_USERS, "room": "homeapp:events"}


@pytest.mark.parametrize("dies", DEATHS)
def test_a_masters_death_is_carried_through_without_a_restart(dies):
    group = RedisClusterGroup()
    cluster = Cluster(2, redis_server=group, **SHORT)
    try:
        observers = [cluster.peer(index, live=False, join=False) for index in (0, 1)]
        # the room's channel lives on the master that dies
        a_id, b_id = room_in_slot_of(group, DEATHS[dies])
        a, b = cluster.peer(0, user_id=a_id), cluster.peer(1, user_id=b_id)
        cluster.peer(0, user_id=b.user_id)             # b has a tab on each process
        room = room_of(a, b)
        open_room(room, a, b)
        wait_for_queue(group, 2)
        assert a.call("message", payloads.message(a.user_id, room, "before"))["ok"]
        b.wait_for("messageRoom", lambda p: p["message"] == "before")
        for observer in observers:
            observer.wait_for("newOnlineUser", lambda p: p == add(b.user_id))
        settle(*observers)
        for observer in observers:
            observer.clear()

        # traffic all along: every message acknowledged ok must arrive
        acknowledged, refused, stop = [], [], threading.Event()

        def traffic():
            for number in itertools.count():
                if stop.is_set():
                    return
                text = f"during {number}"
                try:
                    ack = a.call("message", payloads.message(a.user_id, room, text), timeout=15)
                except Exception:  # noqa: BLE001 - a timeout is neither ok nor a refusal
                    continue
                (acknowledged if ack.get("ok") else refused).append((text, ack))
                time.sleep(0.05)
        sender = threading.Thread(target=traffic, daemon=True)
        sender.start()
        time.sleep(0.5)

        victim = group.master_of(DEATHS[dies])
        group.kill(victim)
        killed = time.monotonic()
        group.wait_until_promoted(victim, DEATHS[dies])

        def remaining():
            return max(0.1, killed + WITHIN - time.monotonic())

        newcomer = cluster.carries_on_after_failover(a, b, room, observers[0], remaining)

        stop.set()
        sender.join(20)
        assert acknowledged, "no message was acknowledged during the failover"
        for code in {ack["code"] for _, ack in refused}:
            assert code == "UNAVAILABLE", refused
        # nothing acknowledged is lost
        def missing():
            heard = {p["message"] for _, p in b.got("messageRoom")}
            return [text for text, _ in acknowledged if text not in heard]
        try:
            wait_until(lambda: not missing(), remaining(), "")
        except AssertionError:
            raise AssertionError(f"acknowledged, never delivered: {missing()} of {len(acknowledged)}") from None

        cluster.keeps_everyone_online_after_failover([a, b, newcomer], observers, killed, TIMEOUT,
                                                     remaining)
        for process in cluster.processes:
            assert process.proc.poll() is None, process.log()
    except BaseException:
        for index, process in enumerate(cluster.processes):  # shown with the failure
            print(f"--- process {index}'s log, its end:\n{process.log()[-6000:]}")
        raise
    finally:
        cluster.close()
