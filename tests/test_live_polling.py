"""Long-polling on a live server, spoken by hand: a POST carrying many packets, and requests for
a session that is closing or closed."""
import json
import signal
import subprocess
import threading
import time

import pytest
import requests

from tests import payloads
from tests.conftest import FAST
from tests.credentials import NODE_DIR
from tests.live import new_user_id, peers_on, settle
from tests.processes import RedisServer
from tests.test_live_recovery import require_socket_io_client

BATCH = 30  # more than Engine.IO's 16 packets per POST


class PollingClient:
    """One Engine.IO long-polling session, its packets written and read by hand."""

    def __init__(self, server, user_id=None):
        self.base = f"{server.url}/socket.io/?EIO=4&transport=polling"
        self.http = requests.Session()
        opened = self.http.get(self.base + (f"&userID={user_id}" if user_id else ""), timeout=10)
        assert opened.status_code == 200 and opened.text.startswith("0{"), opened.text
        self.sid = json.loads(opened.text[1:])["sid"]
        self.url = f"{self.base}&sid={self.sid}"

    def close(self):
        """Closes its HTTP connections (not the session)."""
        self.http.close()

    def post(self, *packets):
        """One POST carrying `packets`; returns the response."""
        return self.http.post(self.url, data="\x1e".join(packets).encode(), timeout=10)

    def get(self):
        return self.http.get(self.url, timeout=30)

    def packets(self):
        """The packets of one poll."""
        answer = self.get()
        assert answer.status_code == 200, (answer.status_code, answer.text)
        return answer.text.split("\x1e")

    def connect(self):
        """The Socket.IO CONNECT of the main namespace, and its reply."""
        assert self.post("40").status_code == 200
        assert self.packets()[0].startswith("40{")

    def acks(self, count, timeout=30):
        """{ack id: payload} of the next `count` acks, polling for them, and their order."""
        got, order, deadline = {}, [], time.monotonic() + timeout
        while len(got) < count:
            assert time.monotonic() < deadline, f"only {len(got)} of {count} acks: {got}"
            for pkt in self.packets():
                if pkt.startswith("43"):
                    ack_id, _, body = pkt[2:].partition("[")
                    got[int(ack_id)] = json.loads("[" + body)[0]
                    order.append(int(ack_id))
        return got, order


def event(ack_id, name, data):
    return f"42{ack_id}" + json.dumps([name, data])


@pytest.fixture(scope="module")
def polling_server(server_factory):
    """A server of this module's own, so that its log holds only what these tests caused."""
    return server_factory(**FAST)


def test_a_post_of_more_packets_than_engineio_decodes_is_handled_whole_and_in_order(polling_server):
    """socket.io-client on long-polling batches what queued while a POST was in flight: all of
    it is handled, in order, each event acked and delivered."""
    with peers_on(polling_server) as connect:
        recipient = connect()
        sender_id = new_user_id()
        sender = PollingClient(polling_server, sender_id)
        sender.connect()
        assert sender.post(event(1, "addOnlineUser", {"userID": sender_id, "userUsername": "s"})).status_code == 200
        assert sender.acks(1)[0] == {1: {"ok": True}}
        recipient.clear()
        room = ":".join(sorted((recipient.user_id, sender_id), key=int))
        texts = [f"batched {n}" for n in range(BATCH)]
        batch = [event(10 + n, "message", payloads.message(sender_id, room, text))
                 for n, text in enumerate(texts)]
        answer = sender.post(*batch)
        assert answer.status_code == 200, answer.text
        acks, order = sender.acks(BATCH)
        assert order == list(range(10, 10 + BATCH))
        assert all(ack["ok"] is True for ack in acks.values()), acks
        settle(recipient)
        assert [p["lastMessage"] for _, p in recipient.got("messagePage")] == texts
        assert len(recipient.got("messageResponseNotify")) == BATCH
    assert "Too many packets" not in polling_server.log()


def test_socket_io_client_on_long_polling_gets_every_ack_of_a_burst(polling_server):
    """The real client (tests/node/polling_batch.js) emits 30 messages at once on long-polling:
    it batches those queued behind its first POST, and each is acked and delivered, in order."""
    require_socket_io_client()
    with peers_on(polling_server) as connect:
        recipient = connect()
        sender_id = new_user_id()
        room = ":".join(sorted((recipient.user_id, sender_id), key=int))
        recipient.clear()
        run = subprocess.run(["node", str(NODE_DIR / "polling_batch.js"), polling_server.url, sender_id,
                              room, str(BATCH)], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, (run.stdout, run.stderr)
        acks = json.loads(run.stdout)["acks"]
        # in order, each {"ok": true, ...}: not an error such as "Error: operation has timed out"
        assert [n for n, ack in acks if isinstance(ack, dict) and ack["ok"] is True] == list(range(BATCH)), acks
        settle(recipient)
        assert [p["lastMessage"] for _, p in recipient.got("messagePage")] == [f"batched {n}" for n in range(BATCH)]


# addOnlineUser payloads refused inside a batch, given the sender's id, and the refusal's code
REFUSED_IN_BATCH = {
    "another user's id": (lambda me: {"userID": "7", "userUsername": "x"}, "FORBIDDEN"),
    "not an object": (lambda me: "x", "VALIDATION_ERROR"),
    "username too long": (lambda me: {"userID": me, "userUsername": "u" * 65}, "VALIDATION_ERROR"),
    "id a list": (lambda me: {"userID": [me], "userUsername": "x"}, "VALIDATION_ERROR"),
}


@pytest.mark.parametrize("bad, code", REFUSED_IN_BATCH.values(), ids=REFUSED_IN_BATCH.keys())
def test_refused_events_in_a_big_batch_are_answered_each_in_its_place(polling_server, bad, code):
    sender_id = new_user_id()
    sender = PollingClient(polling_server, sender_id)
    sender.connect()
    good = {"userID": sender_id, "userUsername": "s"}
    batch = [event(n, "addOnlineUser", bad(sender_id) if n % 3 == 0 else good) for n in range(1, BATCH + 1)]
    assert sender.post(*batch).status_code == 200
    acks, order = sender.acks(BATCH)
    assert order == list(range(1, BATCH + 1))
    for n, ack in acks.items():
        if n % 3:
            assert ack == {"ok": True}, (n, ack)
        else:
            assert ack["ok"] is False and ack["code"] == code, (n, ack)


def closed_by_client(server):
    client = PollingClient(server, new_user_id())
    client.connect()
    assert client.post("1").status_code == 200  # the client's CLOSE: the session is closed
    return client


def unknown(server):
    client = PollingClient(server, new_user_id())
    client.url = client.url.replace(client.sid, "A" * 20)  # a sid from before a restart, say
    return client


CLOSED_SESSIONS = {
    "closed by the client, then a POST": (closed_by_client, lambda c: c.post(event(1, "addOnlineUser", {}))),
    "closed by the client, then a GET": (closed_by_client, PollingClient.get),
    "closed by the client, then a CLOSE": (closed_by_client, lambda c: c.post("1")),
    "unknown, a POST": (unknown, lambda c: c.post("40")),
    "unknown, a GET": (unknown, PollingClient.get),
}


@pytest.mark.parametrize("make, request_it", CLOSED_SESSIONS.values(), ids=CLOSED_SESSIONS.keys())
def test_a_request_for_a_closed_session_is_a_400_without_a_traceback(polling_server, make, request_it):
    before = len(polling_server.log())
    answer = request_it(make(polling_server))
    assert answer.status_code == 400, (answer.status_code, answer.text)
    time.sleep(0.2)  # what the server logs about it, if anything
    logged = polling_server.log()[before:]
    assert "Traceback" not in logged and " ERROR " not in logged, logged


MALFORMED_POSTS = {
    "not UTF-8": b"\xff\xfe",
    "not UTF-8 after a good packet": b"40\x1e\xff",
    "an empty packet between two": b"3\x1e\x1e3",
    "a packet type that is no number": b"x",
    "an unknown packet type": b"9",
    "a NOOP, which only servers send": b"6",
    "a PING, which only servers send on EIO 4": b"2",
    "an OPEN": b"0",
    "undecodable base64 binary": b"b!!!",
}


@pytest.mark.parametrize("body", MALFORMED_POSTS.values(), ids=MALFORMED_POSTS.keys())
def test_a_malformed_post_is_a_400_and_ends_its_session_at_once(polling_server, body):
    """Engine.IO answered some of these with a traceback and a 200, and held the others' POSTs
    until the client fetched its CLOSE: a client that never does held a greenlet each."""
    client = PollingClient(polling_server, new_user_id())
    client.connect()
    before = len(polling_server.log())
    answer = client.http.post(client.url, data=body, timeout=5)
    assert answer.status_code == 400, (answer.status_code, answer.text)
    assert client.get().status_code == 400  # the session is gone
    logged = polling_server.log()[before:]
    assert "Traceback" not in logged and " ERROR " not in logged, logged
    assert "refused a long-polling POST with" in logged


@pytest.fixture
def stoppable_redis():
    """A redis-server of this test's own, which it may freeze with SIGSTOP."""
    redis_server = RedisServer().start()
    yield redis_server
    redis_server.proc.send_signal(signal.SIGCONT)
    redis_server.stop()


def test_a_request_for_a_session_that_is_closing_is_a_400(server_factory, stoppable_redis):
    """A session stays closing while its disconnect handler waits on Redis (frozen here)."""
    server = server_factory(REDIS_URL=stoppable_redis.url, HOMEAPP_REDIS_TIMEOUT=3, **FAST)
    user_id = new_user_id()
    client = PollingClient(server, user_id)
    client.connect()
    assert client.post(event(1, "addOnlineUser", {"userID": user_id, "userUsername": "c"})).status_code == 200
    assert client.acks(1)[0] == {1: {"ok": True}}
    stoppable_redis.proc.send_signal(signal.SIGSTOP)
    closing = threading.Thread(target=client.post, args=("1",))  # waits in the disconnect handler
    closing.start()
    try:
        time.sleep(0.5)
        before = len(server.log())
        other = requests.Session()  # the first one is busy with the closing POST
        answers = [other.post(client.url, data=event(2, "addOnlineUser", {}), timeout=10),
                   other.get(client.url, timeout=10)]
    finally:
        stoppable_redis.proc.send_signal(signal.SIGCONT)
        closing.join(15)
    assert [a.status_code for a in answers] == [400, 400], [(a.status_code, a.text) for a in answers]
    logged = server.log()[before:]
    assert "Traceback" not in logged and "KeyError" not in logged, logged
