"""REDIS_URL naming Sentinels: two processes carry on with the new master after a failover,
without a restart."""
import itertools
import threading
import time

from tests import payloads
from tests.cluster import Cluster, SentinelGroup
from tests.live import open_room, room_of, settle
from tests.processes import wait_until

TIMEOUT = 6.0  # HOMEAPP_PRESENCE_TIMEOUT: heartbeats live 4 s
SHORT = {"HOMEAPP_PRESENCE_TIMEOUT": TIMEOUT, "HOMEAPP_REDIS_TIMEOUT": 0.5}
WITHIN = 30  # seconds after the promotion by which everything works again


def add(user):
    return {"type": "Add", "userID": user}


def test_a_failover_is_carried_through_without_a_restart():
    group = SentinelGroup()
    cluster = Cluster(2, redis_server=group, **SHORT)
    try:
        observers = [cluster.peer(index, live=False, join=False) for index in (0, 1)]
        a, b = cluster.peer(0), cluster.peer(1)
        cluster.peer(0, user_id=b.user_id)             # b has a tab on each process
        room = room_of(a, b)
        open_room(room, a, b)
        cluster.wait_for_queue(2)
        assert a.call("message", payloads.message(a.user_id, room, "before"))["ok"]
        b.wait_for("messageRoom", lambda p: p["message"] == "before")
        for observer in observers:
            observer.wait_for("newOnlineUser", lambda p: p == add(b.user_id))
        settle(*observers)
        for observer in observers:
            observer.clear()

        old_master = group.master.port
        group.master.proc.kill()
        wait_until(lambda: group.sentinel.master_port() != old_master, 30,
                   "Sentinel did not promote the replica")
        promoted = time.monotonic()

        def remaining():
            return max(0.1, promoted + WITHIN - time.monotonic())

        # messages cross processes again (those sent while no master answered are lost), and
        # addOnlineUser works once the process has re-asserted its sockets
        newcomer = cluster.carries_on_after_failover(a, b, room, observers[0], remaining)

        cluster.keeps_everyone_online_after_failover([a, b, newcomer], observers, promoted, TIMEOUT,
                                                     remaining)

        # and a departure is announced once, as before
        newcomer.close()
        for observer in observers:
            observer.wait_for("newOnlineUser", lambda p: p == {"type": "Remove", "userID": newcomer.user_id})
        assert cluster.online() == {a.user_id, b.user_id}
    finally:
        cluster.close()


PRESENCE_LAG = 3.0  # seconds presence may trail the message path after a promotion (loaded machine)


def _first_success(attempt, until):
    """A thread calling attempt() until it returns True or `until` (monotonic) passes; its
    result list gets the monotonic time of the first success."""
    result = []

    def run():
        while time.monotonic() < until:
            started = time.monotonic()
            if attempt():
                result.append(started)
                return
            time.sleep(0.1)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_presence_follows_a_promotion_as_soon_as_messages_do():
    """With the default settings: addOnlineUser answers ok again within PRESENCE_LAG of the
    first message crossing processes after Sentinel promoted the replica."""
    group = SentinelGroup()
    cluster = Cluster(2, redis_server=group)
    try:
        a, b = cluster.peer(0), cluster.peer(1)
        room = room_of(a, b)
        open_room(room, a, b)
        cluster.wait_for_queue(2)
        newcomer = cluster.peer(1, live=False)
        hello = {"userID": newcomer.user_id, "userUsername": newcomer.username}

        old_master = group.master.port
        group.master.proc.kill()
        wait_until(lambda: group.sentinel.master_port() != old_master, 30,
                   "Sentinel did not promote the replica")
        promoted = time.monotonic()
        sent = itertools.count()

        def crossed():
            text = f"after {next(sent)}"
            a.emit("message", payloads.message(a.user_id, room, text))
            time.sleep(0.2)
            return any(p["message"] == text for _, p in b.got("messageRoom"))

        def added():
            ack = newcomer.call("addOnlineUser", hello, timeout=WITHIN)
            assert ack == {"ok": True} or ack["code"] == "UNAVAILABLE", ack
            return ack == {"ok": True}

        threads = [_first_success(check, promoted + WITHIN) for check in (crossed, added)]
        for thread, _ in threads:
            thread.join(WITHIN + 5)
        (_, message_back), (_, presence_back) = threads
        assert message_back, "no message crossed processes after the failover"
        assert presence_back, "addOnlineUser kept failing after the failover"
        print(f"after the promotion: messages cross from {message_back[0] - promoted:.1f} s, "
              f"addOnlineUser answers ok from {presence_back[0] - promoted:.1f} s")
        assert presence_back[0] <= message_back[0] + PRESENCE_LAG
    finally:
        cluster.close()
