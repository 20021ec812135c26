"""Acknowledged means durable: with Redis, a `message` is acknowledged `ok` (and the backend API
answers `200`) only once Redis holds what it emitted. While Redis stalls the ack waits; when the
stall outlasts HOMEAPP_ACK_TIMEOUT the event is answered UNAVAILABLE and what it emitted is never
delivered, not even once Redis is back. What was written to the stalled Redis is answered when it
resumes: Redis alone knows whether it carried it out before the deadline. Other sockets' events
that need no Redis go on meanwhile.
Two processes on one private Redis; the sender on one, the recipient on the other."""
import json
import signal
import threading
import time

import pytest
import requests

from tests import payloads
from tests.cluster import Cluster
from tests.link import Link
from tests.live import room_of, settle
from tests.processes import wait_until

TOKEN = "acks-token-" + "a" * 30
# a short ack timeout, and Redis calls failing sooner than it: the timeout is what is tested
SHORT = {"HOMEAPP_ACK_TIMEOUT": 2, "HOMEAPP_REDIS_TIMEOUT": 0.5, "HOMEAPP_PRESENCE_TIMEOUT": 30,
         "HOMEAPP_API_TOKENS": TOKEN}
STALL_LONGER = 6.0   # seconds Redis stays stopped when the ack must give up
AFTER = 3.0          # seconds to wait once Redis is back, for a late delivery to show


@pytest.fixture(params=["recovery off", "recovery on"])
def cluster(request):
    env = dict(SHORT, HOMEAPP_RECOVERY_SECONDS=30 if request.param == "recovery on" else 0)
    made = Cluster(2, **env)
    made.recovery = request.param == "recovery on"
    try:
        yield made
    finally:
        made.redis.proc.send_signal(signal.SIGCONT)  # whatever a failed test left stopped
        made.close()


class Pending:
    """An event sent with an acknowledgement in a thread: `ack` once it came."""

    def __init__(self, peer, event, data, timeout=20):
        self.ack = None
        self.error = None  # what the call raised instead (its process was killed, say)
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._call, args=(peer, event, data, timeout), daemon=True)
        self._thread.start()

    def _call(self, peer, event, data, timeout):
        try:
            self.ack = peer.call(event, data, timeout=timeout)
        except Exception as exc:  # the test asserts on `ack`; this keeps the thread quiet
            self.error = exc
        finally:
            self.done.set()


def texts(peer):
    """The texts of the messageRoom events the peer received, in order."""
    return [(p[0] if isinstance(p, tuple) else p)["message"] for _, p in peer.got("messageRoom")]


def pair(cluster):
    """a on the first process and b on the second, in one private room, both joined to it."""
    a, b = cluster.peer(0), cluster.peer(1)
    room = room_of(a, b)
    for peer in (a, b):
        assert peer.call("chatRoom.join", room) == {"ok": True}
    cluster.wait_for_queue(2)
    assert a.call("message", payloads.message(a.user_id, room, "warm"))["ok"]
    b.wait_for("messageRoom", lambda p: (p[0] if isinstance(p, tuple) else p)["message"] == "warm")
    return a, b, room


def stopped(cluster):
    cluster.redis.proc.send_signal(signal.SIGSTOP)


def resumed(cluster):
    cluster.redis.proc.send_signal(signal.SIGCONT)


def test_a_message_is_acknowledged_once_redis_holds_it(cluster):
    a, b, room = pair(cluster)
    bystander = cluster.peer(0)
    stopped(cluster)
    try:
        pending = Pending(a, "message", payloads.message(a.user_id, room, "held"))
        assert not pending.done.wait(1.0), f"acknowledged while Redis was stopped: {pending.ack}"
        # the same process answers what needs no Redis meanwhile
        assert bystander.call("chatRoom.leave", room_of(bystander, a), timeout=2) == {"ok": True}
        refused = bystander.call("message", {"data": {}}, timeout=2)
        assert refused["code"] == "VALIDATION_ERROR", refused
        assert "held" not in texts(b)
    finally:
        resumed(cluster)
    assert pending.done.wait(10), "no ack once Redis was back"
    assert pending.ack["ok"] is True, pending.ack
    b.wait_for("messageRoom", lambda p: (p[0] if isinstance(p, tuple) else p)["message"] == "held")
    settle(a, b)
    assert texts(b) == ["warm", "held"]
    assert texts(a) == ["warm", "held"]


def test_a_message_redis_did_not_take_in_time_is_unavailable_and_never_delivered(cluster):
    a, b, room = pair(cluster)
    stopped(cluster)
    try:
        pending = Pending(a, "message", payloads.message(a.user_id, room, "too late"))
        # written to the stalled Redis, which might carry it out before the deadline: only its
        # answer tells, so the ack waits for it past HOMEAPP_ACK_TIMEOUT
        assert not pending.done.wait(STALL_LONGER), f"answered while Redis was stopped: {pending.ack}"
    finally:
        resumed(cluster)
    assert pending.done.wait(10), "no answer once Redis was back"
    assert pending.ack["ok"] is False and pending.ack["code"] == "UNAVAILABLE", pending.ack
    assert pending.ack["event"] == "message"
    time.sleep(AFTER)
    settle(a, b)
    assert texts(b) == ["warm"], "a message answered UNAVAILABLE was delivered"
    # with recovery off, the sender's own process delivers to its sockets at once, as Socket.IO
    # does (docs/protocol.md); with it on, its sockets get what Redis holds, in the log's order
    assert texts(a) == (["warm"] if cluster.recovery else ["warm", "too late"])
    assert [p["code"] for _, p in a.got("error")] == ["UNAVAILABLE"]
    # and the next one goes through
    assert a.call("message", payloads.message(a.user_id, room, "again"), timeout=10)["ok"]
    b.wait_for("messageRoom", lambda p: (p[0] if isinstance(p, tuple) else p)["message"] == "again")
    settle(a, b)
    assert texts(b) == ["warm", "again"]


def test_a_message_redis_carried_out_before_its_answer_stalled_is_acknowledged_ok():
    """The race the chaos test met once: Redis carries out the append before the event's deadline,
    then its answer is held up past the deadline, a Redis timeout and a retry's pause. Here the
    sender's process reaches Redis through a link that passes what it sends and, from the append
    on, none of the answers (as if Redis stalled right after it); the recipient's process reaches
    Redis directly and gets the message at once. The sender's ack must agree with what the room's
    members got: not UNAVAILABLE for a message they got, so it waits for Redis's answer."""
    cluster = Cluster(0, **dict(SHORT, HOMEAPP_RECOVERY_SECONDS=30))
    link = Link(cluster.redis)
    try:
        cluster.add_process(REDIS_URL=f"redis://127.0.0.1:{link.port}/0")
        cluster.add_process()
        a, b, room = pair(cluster)
        link.mute_after(b"carried out")
        pending = Pending(a, "message", payloads.message(a.user_id, room, "carried out"))
        b.wait_for("messageRoom", lambda p: (p[0] if isinstance(p, tuple) else p)["message"] == "carried out")
        # longer than the ack timeout, a Redis timeout and a retry's pause: the old code's guess
        pending.done.wait(STALL_LONGER - 1.5)
        link.unmute()
        assert pending.done.wait(15), "no ack once Redis's answers came through again"
        a.wait_for("messageRoom", lambda p: (p[0] if isinstance(p, tuple) else p)["message"] == "carried out",
                   timeout=15)
        settle(a, b)
        assert texts(b) == ["warm", "carried out"]
        assert pending.ack["ok"] is True, f"b got the message, and its sender was answered {pending.ack}"
        assert texts(a) == ["warm", "carried out"]
    finally:
        link.close()
        cluster.close()


def post(process, body, timeout=20):
    return requests.post(f"{process.url}/api/events", data=json.dumps(body).encode(), timeout=timeout,
                         headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})


class PendingPost(Pending):
    def _call(self, process, body, _unused, timeout):
        try:
            self.ack = post(process, body, timeout)
        except Exception as exc:
            self.error = exc
        finally:
            self.done.set()


def api_message(a, room, text):
    return {"event": "message", "userID": a.user_id, "payload": payloads.message(a.user_id, room, text)}


def test_the_backend_api_answers_200_once_redis_holds_the_message(cluster):
    a, b, room = pair(cluster)
    stopped(cluster)
    try:
        pending = PendingPost(cluster[0], api_message(a, room, "by api"), None)
        assert not pending.done.wait(1.0), f"answered while Redis was stopped: {pending.ack}"
    finally:
        resumed(cluster)
    assert pending.done.wait(10), "no answer once Redis was back"
    assert pending.ack.status_code == 200 and pending.ack.json()["ok"] is True, pending.ack.text
    b.wait_for("messageRoom", lambda p: (p[0] if isinstance(p, tuple) else p)["message"] == "by api")
    settle(a, b)
    assert texts(b) == ["warm", "by api"]


def test_the_backend_api_answers_503_and_delivers_nothing_when_redis_stays_away(cluster):
    a, b, room = pair(cluster)
    stopped(cluster)
    try:
        pending = PendingPost(cluster[0], api_message(a, room, "api too late"), None)
        assert not pending.done.wait(STALL_LONGER), f"answered while Redis was stopped: {pending.ack}"
    finally:
        resumed(cluster)
    assert pending.done.wait(10), "no answer once Redis was back"
    body = pending.ack.json()
    assert (pending.ack.status_code, body["code"], body["event"]) == (503, "UNAVAILABLE", "message")
    time.sleep(AFTER)
    settle(a, b)
    assert texts(b) == ["warm"]
    assert texts(a) == (["warm"] if cluster.recovery else ["warm", "api too late"])


def test_an_acknowledged_message_survives_its_process_killed_right_after_the_ack():
    """The old code's loss: a message acknowledged before Redis took it, the process killed in that
    gap. Redis stalls first, so that the outbox's sender is busy with an earlier attempt and the
    message waits behind it; the process is killed right after the message's ack, if one comes.
    Whatever was acknowledged `ok` reaches the recipient once Redis resumes."""
    cluster = Cluster(2, HOMEAPP_REDIS_TIMEOUT=3, HOMEAPP_ACK_TIMEOUT=20)
    try:
        a, b, room = pair(cluster)
        stopped(cluster)
        try:
            first = Pending(a, "message", payloads.message(a.user_id, room, "first"))
            time.sleep(0.5)  # written to Redis's socket: the sender now waits for its answer
            second = Pending(a, "message", payloads.message(a.user_id, room, "second"))
            second.done.wait(1.0)
            cluster[0].kill()
        finally:
            resumed(cluster)
        time.sleep(AFTER)
        settle(b)
        acknowledged = [p.ack and p.ack.get("ok") for p in (first, second)]
        for text, ok in zip(("first", "second"), acknowledged):
            if ok:
                assert text in texts(b), f"{text!r} was acknowledged ok and lost: b got {texts(b)}"
        assert texts(b) == sorted(set(texts(b)), key=texts(b).index), "a message arrived twice"
    finally:
        resumed(cluster)
        cluster.close()
