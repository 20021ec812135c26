"""The message queue's channels, with real Redis and python-socketio servers in this process:
which channels a process listens to, and which of its sockets get which emit, how often, in
what order. Only the last step is replaced: a packet is recorded instead of written."""
import json
import logging
import uuid

import pytest
import socketio

from homeapp.engine.message_queue import QueueManager
from homeapp.store import redis_keys
from homeapp.store.outage import RedisHealth
from tests.processes import RedisServer, wait_until

NS = "/"


class Process:
    """A Socket.IO server on the message queue; its sockets exist only in its manager, and what
    they would be sent is recorded."""

    def __init__(self, url):
        self.manager = QueueManager(url, RedisHealth(), timeout=2)
        self.server = socketio.Server(async_mode="threading", client_manager=self.manager,
                                      logger=logging.getLogger("tests.message_queue"))
        self.sent = {}  # eio sid -> [(event, data)]
        self.server._send_eio_packet = self._record
        self.manager.initialize()

    def _record(self, eio_sid, eio_packet):
        event, *data = json.loads(eio_packet.data[eio_packet.data.index("["):])
        self.sent.setdefault(eio_sid, []).append((event, data[0] if len(data) == 1 else data))

    def socket(self, *rooms):
        """A connected socket in the given rooms; returns its (sid, eio sid)."""
        eio_sid = uuid.uuid4().hex
        sid = self.manager.connect(eio_sid, NS)
        for room in rooms:
            self.manager.enter_room(sid, NS, room)
        return sid, eio_sid

    def got(self, socket):
        return list(self.sent.get(socket[1], []))

    def wait_for(self, socket, event, timeout=10):
        wait_until(lambda: event in [e for e, _ in self.got(socket)], timeout,
                   f"{event} never reached socket {socket[0]}; it got {self.got(socket)}")


@pytest.fixture(scope="module")
def redis_url(module_redis):
    return module_redis.url


@pytest.fixture
def processes(redis_url):
    made = []

    def make(count, url=redis_url):
        new = [Process(url) for _ in range(count)]
        made.extend(new)
        wait_until(lambda: listeners(new[0].manager, redis_keys.QUEUE) >= len(made), 10,
                   "the processes did not all listen on the queue")
        return new

    yield make
    for process in made:
        process.manager.close()


def listeners(manager, channel):
    """Connections listening on a channel, by sharded or plain pub/sub."""
    client = manager._redis()
    return client.pubsub_shardnumsub(channel)[0][1] + client.pubsub_numsub(channel)[0][1]


def room_channel(room):
    return redis_keys.queue_channel(room)


def test_a_process_listens_to_a_room_from_its_first_local_socket_in_it_to_its_last(processes):
    here, there = processes(2)
    room = f"room:{uuid.uuid4().hex}"
    channel = room_channel(room)

    def heard_by(count):
        wait_until(lambda: listeners(here.manager, channel) == count, 10,
                   f"{channel} should have {count} listeners, has {listeners(here.manager, channel)}")

    assert listeners(here.manager, channel) == 0
    first = here.socket(room)
    heard_by(1)
    second = here.socket(room)
    elsewhere = there.socket(room)
    heard_by(2)
    here.manager.leave_room(first[0], NS, room)
    here.manager.enter_room(first[0], NS, room)
    here.manager.leave_room(first[0], NS, room)
    heard_by(2)  # `second` is still in it
    here.manager.disconnect(second[0], NS)
    heard_by(1)  # only `there` listens now
    there.manager.close_room(room, NS)
    heard_by(0)
    assert listeners(here.manager, redis_keys.QUEUE) >= 2  # both still hear emits to everyone
    assert elsewhere[0] not in dict(there.manager.get_participants(NS, room))


def test_a_socket_in_two_of_the_rooms_an_emit_names_gets_it_once(processes):
    sender, receiver = processes(2)
    both = receiver.socket("room:7", "user:1")       # hears it on two channels
    room_only, user_only = receiver.socket("room:7"), receiver.socket("user:1")
    bystander = receiver.socket("user:2")
    sender.server.emit("messagePage", {"n": 1}, to=["room:7", "user:1"])
    sender.server.emit("marker", "after", to="user:1")
    for socket in (both, user_only):
        receiver.wait_for(socket, "marker")
    for socket in (both, user_only):
        assert receiver.got(socket) == [("messagePage", {"n": 1}), ("marker", "after")]
    assert receiver.got(room_only) == [("messagePage", {"n": 1})]
    assert receiver.got(bystander) == []


def test_one_senders_emits_arrive_in_order_whatever_channels_they_take(processes):
    sender, receiver = processes(2)
    socket = receiver.socket("room:9", "user:3")
    targets = ["room:9", "user:3", ["user:3", "room:9"]]
    for n in range(300):
        sender.server.emit("n", n, to=targets[n % 3])
    wait_until(lambda: len(receiver.got(socket)) >= 300, 10, "not every emit arrived")
    assert receiver.got(socket) == [("n", n) for n in range(300)]


def test_emits_cross_once_each_after_redis_forgot_its_scripts(processes, redis_url):
    """The append script runs by its digest, without asking Redis whether it knows it before
    every batch; a Redis that lost it (restarted, SCRIPT FLUSH) gets it again, and nothing is
    lost or doubled."""
    sender, receiver = processes(2)
    socket = receiver.socket("room:11")
    sender.server.emit("n", 0, to="room:11")
    receiver.wait_for(socket, "n")
    client = sender.manager._redis()
    client.script_flush()
    asked = client.info("commandstats").get("cmdstat_script|exists", {}).get("calls", 0)
    for n in range(1, 20):
        sender.server.emit("n", n, to="room:11")
    wait_until(lambda: len(receiver.got(socket)) >= 20, 10, f"not every emit arrived: {receiver.got(socket)}")
    assert receiver.got(socket) == [("n", n) for n in range(20)]
    assert client.info("commandstats").get("cmdstat_script|exists", {}).get("calls", 0) == asked


def test_an_emit_to_everyone_reaches_every_process(processes):
    sender, *others = processes(3)
    sockets = [(process, process.socket(f"user:{n}")) for n, process in enumerate(others)]
    sender.server.emit("newOnlineUser", {"type": "Add", "userID": "5"})
    for process, socket in sockets:
        process.wait_for(socket, "newOnlineUser")
        assert process.got(socket) == [("newOnlineUser", {"type": "Add", "userID": "5"})]


def test_an_emit_to_one_local_socket_is_not_published(processes, redis_url):
    sender, receiver = processes(2)
    own = sender.socket()
    far = receiver.socket("user:4")
    client = sender.manager._redis()

    def published():
        stats = client.info("commandstats")
        return sum(stats.get(f"cmdstat_{command}", {}).get("calls", 0) for command in ("spublish", "publish"))

    before = published()
    sender.server.emit("error", {"ok": False}, to=own[0])
    sender.server.emit("marker", "after", to="user:4")
    receiver.wait_for(far, "marker")
    assert sender.got(own) == [("error", {"ok": False})]
    assert published() - before == 1  # the marker's


def test_an_emit_to_a_socket_on_another_process_reaches_it_and_no_other(processes):
    """No process listens to a socket's own id: the emit takes everyone's channel (the Admin
    UI's development mode emits to one socket), and only the socket's process delivers it."""
    sender, holder, bystander = processes(3)
    target, neighbour = holder.socket("user:1"), holder.socket("user:2")
    other = bystander.socket("user:3")
    sender.server.emit("direct", "to one socket", to=target[0])
    holder.wait_for(target, "direct")
    sender.server.emit("marker", "after", to="user:2")
    holder.wait_for(neighbour, "marker")
    assert holder.got(target) == [("direct", "to one socket")]
    assert holder.got(neighbour) == [("marker", "after")] and bystander.got(other) == []
    assert listeners(sender.manager, room_channel(target[0])) == 0


def test_without_sharded_pub_sub_plain_channels_carry_the_same():
    """A server without SPUBLISH/SSUBSCRIBE (before Redis 7): PUBLISH and SUBSCRIBE instead."""
    server = RedisServer("--rename-command", "SPUBLISH", "", "--rename-command", "SSUBSCRIBE", "").start()
    made = []
    try:
        sender, receiver = made = [Process(server.url), Process(server.url)]
        both = receiver.socket("room:1", "user:1")
        wait_until(lambda: listeners(receiver.manager, room_channel("room:1")) == 1, 10,
                   "the room's channel was not subscribed")
        client = receiver.manager._redis()
        assert client.pubsub_numsub(room_channel("room:1"))[0][1] == 1
        sender.server.emit("messagePage", 1, to=["room:1", "user:1"])
        sender.server.emit("marker", 2, to="user:1")
        receiver.wait_for(both, "marker")
        assert receiver.got(both) == [("messagePage", 1), ("marker", 2)]
    finally:
        for process in made:
            process.manager.close()
        server.stop()


def test_a_slot_moving_between_masters_holds_a_batch_back_and_is_no_outage(processes):
    """On a cluster, TRYAGAIN (a slot's keys split between two masters while it moves) can
    outlast the cluster client's retries: the batch is sent again, and the process does not
    declare Redis unreachable (presence would answer UNAVAILABLE to every user)."""
    from redis.exceptions import TryAgainError

    sender, receiver = processes(2)
    socket = receiver.socket("room:11")
    appender = sender.manager._appender
    real, moving = appender.append_all, [2]

    def append_all(*args, **kwargs):
        if moving[0]:
            moving[0] -= 1
            raise TryAgainError("TRYAGAIN Multiple keys request during rehashing of slot")
        return real(*args, **kwargs)

    appender.append_all = append_all
    sender.server.emit("messageRoom", {"n": 1}, to="room:11")
    receiver.wait_for(socket, "messageRoom")
    assert moving == [0]
    assert receiver.got(socket) == [("messageRoom", {"n": 1})]
    assert not sender.manager._health.down
