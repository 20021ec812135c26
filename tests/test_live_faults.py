"""Failures: a process killed outright, Redis stopped and started again under running processes."""
import signal
import time

import pytest
import requests

from homeapp.store import redis_keys
from tests import payloads
from tests.cluster import Cluster
from tests.live import Peer, new_user_id, room_of, settle
from tests.processes import wait_until

TIMEOUT = 3.0  # HOMEAPP_PRESENCE_TIMEOUT for these tests: a dead process is reaped within it
SHORT = {"HOMEAPP_PRESENCE_TIMEOUT": TIMEOUT, "HOMEAPP_REDIS_TIMEOUT": 0.5, "HOMEAPP_ACK_TIMEOUT": 2}


@pytest.fixture
def make_cluster():
    made = []

    def make(count):
        made.append(Cluster(count, **SHORT))
        return made[-1]

    yield make
    for cluster in made:
        cluster.close()


def server_holding(cluster, peer):
    """The id of the server process whose hash holds the peer's socket."""
    client, sid = cluster.client(), peer.client.get_sid()
    for server_id in client.smembers(redis_keys.SERVERS):
        if client.hexists(redis_keys.server_sockets(server_id), sid):
            return server_id
    raise AssertionError(f"no server holds socket {sid}")


def add(user):
    return {"type": "Add", "userID": user}


def remove(user):
    return {"type": "Remove", "userID": user}


def test_killed_process_is_reaped_once_within_the_timeout(make_cluster):
    cluster = make_cluster(3)
    observers = [cluster.peer(0, live=False, join=False), cluster.peer(1, live=False, join=False)]
    gone = cluster.peer(2)                               # two tabs, both on the process to be killed
    cluster.peer(2, user_id=gone.user_id)
    stays = cluster.peer(2)                              # one tab there, one on a survivor
    survivor_tab = cluster.peer(0, user_id=stays.user_id)
    settle(*observers)
    victim = server_holding(cluster, gone)
    survivor = server_holding(cluster, survivor_tab)

    killed_at = time.monotonic()
    cluster[2].stop(signal.SIGKILL)
    replacement = cluster.add_process()  # a restart gets a new id; it must not take or wipe sockets
    for observer in observers:  # both survivors race to reap; each observer hears one Remove
        observer.wait_for("newOnlineUser", lambda p: p == remove(gone.user_id), timeout=TIMEOUT + 5)
    elapsed = time.monotonic() - killed_at
    assert elapsed <= TIMEOUT + 0.5, f"reaped after {elapsed:.1f} s"
    settle(*observers, quiet=TIMEOUT / 3 + 0.5)
    for observer in observers:
        assert observer.presence_of(gone.user_id) == [add(gone.user_id), remove(gone.user_id)]
        assert observer.presence_of(stays.user_id) == [add(stays.user_id)]

    client = cluster.client()
    assert gone.user_id not in cluster.online() and stays.user_id in cluster.online()
    assert victim not in client.smembers(redis_keys.SERVERS)
    assert not client.exists(redis_keys.server_sockets(victim), redis_keys.heartbeat(victim))
    assert client.smembers(redis_keys.user_sockets(stays.user_id)) == \
        {f"{survivor}/{survivor_tab.client.get_sid()}"}
    # the replacement holds nothing of anyone else's and serves as usual
    newcomer = cluster.peer(replacement)
    assert client.hgetall(redis_keys.server_sockets(server_holding(cluster, newcomer))) == \
        {newcomer.client.get_sid(): newcomer.user_id}
    for observer in observers:
        observer.wait_for("newOnlineUser", lambda p: p == add(newcomer.user_id))


def test_sigterm_takes_the_users_offline_once(make_cluster):
    """Whether the process retires its sockets itself (graceful shutdown) or is reaped."""
    cluster = make_cluster(2)
    observer = cluster.peer(0, live=False, join=False)
    user = cluster.peer(1)
    settle(observer)
    cluster[1].stop(signal.SIGTERM)
    observer.wait_for("newOnlineUser", lambda p: p == remove(user.user_id), timeout=TIMEOUT + 5)
    settle(observer)
    assert observer.presence_of(user.user_id) == [add(user.user_id), remove(user.user_id)]


def outage_lines(process):
    log = process.log()
    return log.count("Redis is unreachable"), log.count("Redis is reachable again")


def test_processes_ride_out_a_redis_restart(make_cluster):
    cluster = make_cluster(2)
    observers = [cluster.peer(0, live=False, join=False), cluster.peer(1, live=False, join=False)]
    a, neighbour, leaver = cluster.peer(0), cluster.peer(0), cluster.peer(0)
    b = cluster.peer(1)
    far_room, near_room = room_of(a, b), room_of(a, neighbour)
    for peer, room in ((a, far_room), (b, far_room), (a, near_room), (neighbour, near_room)):
        assert peer.call("chatRoom.join", room) == {"ok": True}
    settle(*observers)
    for peer in observers + [a, b, neighbour]:
        peer.clear()

    cluster.redis.stop()
    # what needs Redis is refused, as often as it is asked, and logged once
    newcomer = Peer(cluster[0].url, new_user_id())
    cluster.peers.append(newcomer)
    for _ in range(3):
        ack = newcomer.call("addOnlineUser", {"userID": newcomer.user_id, "userUsername": "late"})
        assert ack["code"] == "UNAVAILABLE", ack
    kick = payloads.kick(a.user_id, room_of(a, b, neighbour), neighbour.user_id)
    assert a.call("kickUserFromGroup", kick)["code"] == "UNAVAILABLE"
    listing = requests.get(cluster[0].url + "/api/online-users", timeout=5)
    assert listing.status_code == 503 and listing.json()["code"] == "UNAVAILABLE"
    # a message is relayed within the process at once (recovery is off), but its ack waits for
    # Redis to hold it (acknowledged means durable): UNAVAILABLE once HOMEAPP_ACK_TIMEOUT passed
    ack = a.call("message", payloads.message(a.user_id, near_room, "still here"), timeout=10)
    assert ack["code"] == "UNAVAILABLE", ack
    neighbour.wait_for("messageRoom", lambda p: p["message"] == "still here")
    leaver.close()  # gone while Redis cannot hear of it
    time.sleep(0.5)

    cluster.redis.start()  # same port, and empty: it keeps nothing on disk
    wait_until(lambda: {a.user_id, b.user_id, neighbour.user_id} <= cluster.online(), 10,
               "live sockets were not re-asserted")
    for observer in observers:
        for user in (a, b, neighbour):  # they were lost with Redis's data and come back once
            observer.wait_for("newOnlineUser", lambda p, u=user.user_id: p == add(u))
        observer.wait_for("newOnlineUser", lambda p: p == remove(leaver.user_id))
    settle(*observers)
    for observer in observers:
        for user in (a, b, neighbour):
            assert observer.presence_of(user.user_id) == [add(user.user_id)]
        assert observer.presence_of(leaver.user_id) == [remove(leaver.user_id)]
    assert leaver.user_id not in cluster.online()

    # everything works again, across processes too, without a restart
    assert newcomer.call("addOnlineUser", {"userID": newcomer.user_id, "userUsername": "late"}) \
        == {"ok": True}
    cluster.wait_for_queue(2)
    assert a.call("message", payloads.message(a.user_id, far_room, "back again"))["ok"]
    b.wait_for("messageRoom", lambda p: p["message"] == "back again")
    for process in cluster.processes:
        assert outage_lines(process) == (1, 1), process.log()


def test_a_pause_longer_than_the_timeout_takes_no_live_user_offline(make_cluster):
    """Redis stalls (its data intact) past every heartbeat's expiry: nobody is reaped on return."""
    cluster = make_cluster(2)
    observer = cluster.peer(0, live=False, join=False)
    a, b, leaver = cluster.peer(0), cluster.peer(1), cluster.peer(1)
    settle(observer)
    observer.clear()
    cluster.redis.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(1.0)
        leaver.close()  # its removal cannot reach Redis
        time.sleep(TIMEOUT)
    finally:
        cluster.redis.proc.send_signal(signal.SIGCONT)
    observer.wait_for("newOnlineUser", lambda p: p == remove(leaver.user_id), timeout=10)
    settle(observer, quiet=TIMEOUT)  # longer than the reapers' hold-off after the outage
    assert observer.got("newOnlineUser") == [("newOnlineUser", remove(leaver.user_id))]
    assert {a.user_id, b.user_id} <= cluster.online() and leaver.user_id not in cluster.online()
