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
