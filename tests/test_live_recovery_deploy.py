"""A deploy: the process a socket is on shuts down (SIGTERM); the socket reconnects to another
process with its pid and offset and recovers, with what was sent to it while it was away."""
import threading

import websocket

from tests import payloads
from tests.cluster import Cluster
from tests.recovering import RawClient, again


def message_texts(events):
    return [args[0]["message"] for event, args, _ in events if event == "messageRoom"]


def test_a_socket_whose_process_is_redeployed_recovers_on_another():
    cluster = Cluster(2, HOMEAPP_RECOVERY_SECONDS=30)
    try:
        a = RawClient(cluster[0], user_id="501")
        b = RawClient(cluster[1], user_id="502")
        for client, user in ((a, "501"), (b, "502")):
            assert client.call("addOnlineUser", {"userID": user, "userUsername": f"user{user}"})["ok"]
            assert client.call("joinRoom", user)["ok"]
            assert client.call("chatRoom.join", "501:502")["ok"]
        cluster.wait_for_queue(2)
        assert b.call("message", payloads.message("502", "501:502", "before"))["ok"]
        a.wait_for(1)
        a.quiet(0.5)
        assert message_texts(a.events) == ["before"]

        # SIGTERM: the deploy closes every socket; the client reads on, and answers the close
        stopping = threading.Thread(target=lambda: exits.append(cluster[0].stop()))
        exits = []
        stopping.start()
        try:
            a.quiet(5)
        except (websocket.WebSocketException, OSError):
            pass  # the connection ended
        stopping.join(15)
        assert exits == [0]
        for text in ("while away 1", "while away 2"):
            assert b.call("message", payloads.message("502", "501:502", text))["ok"]

        back = again(cluster[1], a, user_id="501")
        assert back.recovered and back.sid == a.sid and back.pid == a.pid
        assert message_texts(back.events[:back.before_reply]) == ["while away 1", "while away 2"]
        offsets = [offset for _, _, offset in back.events]
        assert all(offsets) and len(set(offsets)) == len(offsets)
        assert b.call("message", payloads.message("502", "501:502", "after"))["ok"]
        back.wait_for(back.before_reply + 1)
        back.quiet(0.5)
        assert message_texts(back.events) == ["while away 1", "while away 2", "after"]
        back.close()
        b.close()
    finally:
        cluster.close()


def presence_of(events, user):
    return [args[0]["type"] for event, args, _ in events
            if event == "newOnlineUser" and args[0]["userID"] == user]


def test_a_deploy_announces_nobody_who_recovers_elsewhere_and_removes_who_does_not():
    """A deploy's sockets keep their users online for the presence grace: one that recovers on
    another process is announced neither Remove nor Add (each such pair was sent to every
    recovering socket, the bulk of a deploy's storm); one that does not come back is Remove."""
    cluster = Cluster(2, HOMEAPP_RECOVERY_SECONDS=30, HOMEAPP_PRESENCE_GRACE=3)
    try:
        clients = {}
        for user, process in (("601", 0), ("602", 0), ("603", 1)):
            clients[user] = RawClient(cluster[process], user_id=user)
            assert clients[user].call("addOnlineUser", {"userID": user, "userUsername": f"user{user}"})["ok"]
        cluster.wait_for_queue(2)
        watcher = clients["603"]
        watcher.quiet(0.5)
        seen = len(watcher.events)

        stopping = threading.Thread(target=lambda: exits.append(cluster[0].stop()))
        exits = []
        stopping.start()
        for user in ("601", "602"):
            try:
                clients[user].quiet(1)
            except (websocket.WebSocketException, OSError):
                pass  # the connection ended
        back = again(cluster[1], clients["601"], user_id="601")  # 602 never comes back
        assert back.recovered
        stopping.join(20)
        assert exits == [0]
        watcher.quiet(1)
        after = watcher.events[seen:]
        assert presence_of(after, "601") == []
        assert presence_of(after, "602") == ["Remove"]
        assert {"601", "603"} <= cluster.online() and "602" not in cluster.online()
        back.close()
    finally:
        cluster.close()
