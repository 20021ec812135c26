"""Emits between processes across a Redis outage: a user on one process messages a user on
another every 200 ms while Redis restarts (its data lost) or stalls for 3 s. Every message
arrives, in order, once; with recovery off as with it on."""
import signal
import threading
import time

import pytest

from tests import payloads
from tests.cluster import Cluster
from tests.live import room_of
from tests.processes import wait_until

SHORT = {"HOMEAPP_PRESENCE_TIMEOUT": 3.0, "HOMEAPP_REDIS_TIMEOUT": 0.5}
EVERY = 0.2


@pytest.fixture(params=["recovery off", "recovery on"])
def cluster(request):
    env = dict(SHORT, HOMEAPP_RECOVERY_SECONDS=30 if request.param == "recovery on" else 0)
    made = Cluster(2, **env)
    yield made
    made.close()


def texts(peer):
    """The texts of the messageRoom events the peer received, in order (with recovery on, each
    event has its offset as a second argument)."""
    return [(p[0] if isinstance(p, tuple) else p)["message"] for _, p in peer.got("messageRoom")]


def converse(sender, room, stop):
    """Send a message every EVERY seconds until `stop`; returns the texts whose ack was ok."""
    sent = []
    number = 0
    while not stop.is_set():
        text = f"m{number}"
        number += 1
        ack = sender.call("message", payloads.message(sender.user_id, room, text), timeout=10)
        assert ack["ok"], ack
        sent.append(text)
        time.sleep(EVERY)
    return sent


def through(cluster, outage):
    a, b = cluster.peer(0), cluster.peer(1)
    room = room_of(a, b)
    for peer in (a, b):
        assert peer.call("chatRoom.join", room) == {"ok": True}
    cluster.wait_for_queue(2)
    stop = threading.Event()
    result = {}
    talker = threading.Thread(target=lambda: result.update(sent=converse(a, room, stop)))
    talker.start()
    try:
        time.sleep(1.0)
        outage(cluster)
        time.sleep(3.0)  # and on after Redis is back: the old queue lost these for 8 to 9 s
    finally:
        stop.set()
        talker.join(20)
    sent = result["sent"]
    assert len(sent) > 12  # one of them waited for its ack through the outage
    wait_until(lambda: len(texts(b)) >= len(sent), 20,
               f"b got {len(texts(b))} of {len(sent)} messages: {texts(b)}")
    time.sleep(0.5)  # anything more would be a duplicate
    assert texts(b) == sent
    assert texts(a) == sent, " ".join(texts(a))  # the sender's own copy, on its own process


def restart(cluster):
    cluster.redis.stop()
    time.sleep(2.0)
    cluster.redis.start()  # same port, and empty


def stall(cluster):
    cluster.redis.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(3.0)
    finally:
        cluster.redis.proc.send_signal(signal.SIGCONT)


def test_every_message_arrives_in_order_once_across_a_redis_restart(cluster):
    through(cluster, restart)


def test_every_message_arrives_in_order_once_across_a_redis_stall(cluster):
    through(cluster, stall)


def test_a_listener_whose_connection_broke_resumes_where_it_stopped(cluster):
    """Only the processes' subscriber connections are cut (Redis itself stays up, and so do
    the publishers'): what is published before they are back is read from the log."""
    def cut_listeners(cluster):
        client = cluster.client()
        for _ in range(3):  # each listener reconnects after a second: cut it again meanwhile
            client.client_kill_filter(_type="pubsub")
            time.sleep(0.4)
    through(cluster, cut_listeners)
