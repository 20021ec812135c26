"""Each process hears from Redis only the emits addressed to rooms where it has sockets, and
emits to everyone: what that subscribes and unsubscribes, and what a process spends on
conversations it takes no part in."""
import pytest

from homeapp.store import redis_keys
from tests import payloads
from tests.cluster import Cluster
from tests.live import open_room, room_of, settle
from tests.processes import RedisServer, cpu_seconds, wait_until

ROUND = 100  # messages per sender and round of the CPU test
MAX_MESSAGES_PER_SENDER = 2000
MIN_BUSY_CPU = 0.3  # seconds of CPU each of the two busy processes must have spent


@pytest.fixture(scope="module")
def cluster():
    cluster = Cluster(3)
    try:
        for index in range(3):  # each process listens on the queue from its first socket
            cluster.peer(index, live=False, join=False)
        cluster.wait_for_queue(3)
        yield cluster
    finally:
        cluster.close()


def channel(room):
    """The message queue's channel of a Socket.IO room."""
    return redis_keys.queue_channel(room)


def heard_by(cluster, room, count):
    """Wait until `count` processes listen on the room's channel."""
    wait_until(lambda: cluster.listeners(channel(room)) == count, 10,
               f"{room} should have {count} listening processes, has {cluster.listeners(channel(room))}")


def test_a_process_listens_to_a_room_while_it_has_a_socket_in_it(cluster):
    first = cluster.peer(0)
    user_room = f"user:{first.user_id}"
    heard_by(cluster, user_room, 1)                  # joinRoom: the user's own channel
    second = cluster.peer(0)
    far = cluster.peer(1)
    chat = room_of(first, second, far)
    for peer in (first, second, far):
        assert peer.call("chatRoom.join", chat) == {"ok": True}
    heard_by(cluster, f"room:{chat}", 2)             # once per process, however many sockets
    assert first.call("chatRoom.leave", chat) == {"ok": True}
    assert first.call("leaveRoom", first.user_id) == {"ok": True}
    heard_by(cluster, user_room, 0)
    heard_by(cluster, f"room:{chat}", 2)             # `second` is still in it
    second.close()
    heard_by(cluster, f"room:{chat}", 1)             # a disconnect leaves every room
    assert far.call("chatRoom.leave", chat) == {"ok": True}
    heard_by(cluster, f"room:{chat}", 0)
    assert cluster.listeners() == 3                  # every process still hears emits to everyone


def test_a_process_that_hears_an_emit_on_two_channels_delivers_it_once_per_socket(cluster):
    sender = cluster.peer(0)
    b, c = cluster.peer(1), cluster.peer(1)         # messagePage goes to user:b and user:c
    other_process = cluster.peer(2)
    group = room_of(sender, b, c)
    open_room(group, sender, b, c)
    assert sender.call("message", payloads.message(sender.user_id, group, "to both"))["ok"]
    assert sender.call("message", payloads.message(sender.user_id, group, "and again"))["ok"]
    for peer in (b, c):
        peer.wait_for("messageResponseNotify", lambda p: p["lastMessage"] == "and again")
    settle(b, c, other_process)
    for peer in (b, c):
        assert [(event, data.get("message") or data["lastMessage"]) for event, data in peer.got()] == [
            ("messageRoom", "to both"), ("messagePage", "to both"), ("messageResponseNotify", "to both"),
            ("messageRoom", "and again"), ("messagePage", "and again"),
            ("messageResponseNotify", "and again")]
    assert other_process.got() == []


def test_one_senders_events_arrive_in_order_across_room_and_user_channels(cluster):
    a, b = cluster.peer(0), cluster.peer(1)
    room = room_of(a, b)
    open_room(room, a, b)
    texts = [f"in order {i}" for i in range(150)]
    for text in texts:
        a.emit("message", payloads.message(a.user_id, room, text))
    wait_until(lambda: len(b.got("messageResponseNotify")) == len(texts), 20, "every notification")
    # messageRoom comes by the room's channel, the other two by b's own: the same order still
    assert [(event, data.get("message") or data["lastMessage"]) for event, data in b.got()] == [
        (event, text) for text in texts
        for event in ("messageRoom", "messagePage", "messageResponseNotify")]


def test_presence_announcements_reach_processes_that_share_no_room(cluster):
    observers = [cluster.peer(index, live=False, join=False) for index in (1, 2)]
    newcomer = cluster.peer(0)
    for observer in observers:
        observer.wait_for("newOnlineUser", lambda p: p == {"type": "Add", "userID": newcomer.user_id})
    newcomer.close()
    for observer in observers:
        observer.wait_for("newOnlineUser", lambda p: p == {"type": "Remove", "userID": newcomer.user_id})


def test_without_sharded_pub_sub_processes_use_plain_channels():
    """A Redis without SPUBLISH/SSUBSCRIBE (older than 7): PUBLISH and SUBSCRIBE carry the same."""
    server = RedisServer("--rename-command", "SPUBLISH", "", "--rename-command", "SSUBSCRIBE", "").start()
    plain = Cluster(2, redis_server=server)
    try:
        a, b = plain.peer(0), plain.peer(1)
        room = room_of(a, b)
        open_room(room, a, b)
        assert plain.client().pubsub_numsub(channel(f"room:{room}"))[0][1] == 2
        assert a.call("message", payloads.message(a.user_id, room, "plain"))["ok"]
        b.wait_for("messageResponseNotify", lambda p: p["lastMessage"] == "plain")
        assert [event for event, _ in b.got()] == ["messageRoom", "messagePage", "messageResponseNotify"]
    finally:
        plain.close()


def test_processes_outside_a_conversation_spend_a_tenth_of_its_cpu_at_most():
    """Eight processes on one Redis, traffic among the sockets of two: each of the six others,
    though it holds sockets of its own, spends less than a tenth of what either of the two does."""
    cluster = Cluster(8)
    try:
        bystanders = [cluster.peer(index) for index in range(2, 8)]
        pairs = [(cluster.peer(0), cluster.peer(1)) for _ in range(4)]
        for a, b in pairs:
            open_room(room_of(a, b), a, b)
        cluster.wait_for_queue(8)
        settle(*bystanders)
        for peer in bystanders:
            peer.clear()

        before = [cpu_seconds(process.proc.pid) for process in cluster.processes]
        used = [0.0] * len(before)
        sent = 0
        # rounds until the two have spent enough to compare against (CPU time is counted in
        # 10 ms ticks), however fast the machine: a few seconds of traffic
        while min(used[:2]) < MIN_BUSY_CPU and sent < MAX_MESSAGES_PER_SENDER:
            for i in range(sent, sent + ROUND):
                for a, b in pairs:
                    room = room_of(a, b)
                    a.emit("message", payloads.message(a.user_id, room, f"a{i}"))
                    b.emit("message", payloads.message(b.user_id, room, f"b{i}"))
            sent += ROUND
            for a, b in pairs:
                for peer in (a, b):
                    wait_until(lambda p=peer: len(p.got("messageResponseNotify")) == sent, 60,
                               f"user {peer.user_id} did not get every message")
            used = [cpu_seconds(process.proc.pid) - start
                    for process, start in zip(cluster.processes, before)]

        busy = min(used[:2])
        assert busy >= MIN_BUSY_CPU, f"{sent} messages per sender cost too little CPU to compare: {used}"
        for index, spent in enumerate(used[2:], 2):
            assert spent < busy / 10, f"process {index} spent {spent:.2f} s of CPU; " \
                                      f"the two in the conversation {used[:2]}"
        settle(*bystanders)
        for peer in bystanders:
            assert peer.got() == []
    finally:
        cluster.close()
