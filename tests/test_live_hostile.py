"""Hostile clients at the event layer: each test reproduces an attack found by an adversarial
test of a live server, and checks what the attack measured (who received what, presence, memory)."""
import json
import signal
import threading
import time

import pytest
import requests
import websocket

from homeapp.store import redis_keys
from tests import credentials as cred
from tests import payloads
from tests.cluster import Cluster
from tests.conftest import FAST
from tests.live import Peer, new_user_id, open_room, raw_socket, room_of, settle
from tests.processes import wait_until


RESERVED = ["connect", "disconnect", "connect_error", "disconnecting", "newListener", "removeListener"]


def add(user_id):
    return {"type": "Add", "userID": user_id}


def remove(user_id):
    return {"type": "Remove", "userID": user_id}


@pytest.fixture(scope="module")
def jwt_server(server_factory):
    return server_factory(HOMEAPP_AUTH="jwt", HOMEAPP_JWT_SECRET=cred.JWT_SECRET,
                          HOMEAPP_JWT_LEEWAY=0, **FAST)


def jwt_peer(server, user_id, expires_in=60):
    return Peer(server.url, user_id, f"user{user_id}", query=False,
                auth={"token": cred.token(user_id, f"user{user_id}", expires_in)})


# --- reserved event names --------------------------------------------------------------------

def test_a_forged_disconnect_keeps_the_expiry_watch_and_the_user_online(jwt_server):
    """42["disconnect"] used to make the app forget the socket: it stayed connected past its
    token's end, receiving its user's messages, and was shown offline meanwhile."""
    watcher = jwt_peer(jwt_server, new_user_id())
    user = new_user_id()
    victim = jwt_peer(jwt_server, user, expires_in=3)
    try:
        assert victim.call("addOnlineUser", {"userID": user, "userUsername": "x"}) == {"ok": True}
        assert victim.call("joinRoom", user) == {"ok": True}
        watcher.wait_for("newOnlineUser", lambda p: p == add(user))

        ack = victim.call("disconnect")
        assert (ack["ok"], ack["code"], ack["event"]) == (False, "UNKNOWN_EVENT", "disconnect")
        settle(watcher, victim)
        assert watcher.presence_of(user) == [add(user)], "a forged disconnect took the user offline"
        assert victim.client.connected

        # the token still ends the socket, and only then does its user go offline
        assert victim.ended.wait(8), "the socket outlived its token"
        watcher.wait_for("newOnlineUser", lambda p: p == remove(user))
        assert watcher.presence_of(user) == [add(user), remove(user)]
    finally:
        victim.close()
        watcher.close()


def test_a_forged_connect_cannot_switch_the_socket_to_another_user(connect_memory):
    """Open mode: 42["connect", {"QUERY_STRING": "userID=<b>"}] switched the socket to user b,
    which then joined user:b and received b's messages, and left its own user online for ever."""
    watcher = connect_memory(live=False, join=False)
    attacker, target, friend = connect_memory(), connect_memory(), connect_memory()
    ack = attacker.call("connect", {"QUERY_STRING": f"userID={target.user_id}",
                                    "wsgi.url_scheme": "http"})
    assert (ack["ok"], ack["code"]) == (False, "UNKNOWN_EVENT")
    # still its own user: another's channel is refused, its own messages go out as itself
    assert attacker.call("joinRoom", target.user_id)["code"] == "FORBIDDEN"
    room = room_of(target, friend)
    open_room(room, target, friend)
    attacker.clear()
    assert friend.call("message", payloads.message(friend.user_id, room, "for target only"))["ok"]
    target.wait_for("messagePage")
    settle(attacker, target)
    assert attacker.got() == []

    attacker.close()
    watcher.wait_for("newOnlineUser", lambda p: p == remove(attacker.user_id))
    settle(watcher)
    assert watcher.presence_of(target.user_id) == [add(target.user_id)]


@pytest.mark.parametrize("name", RESERVED)
def test_reserved_event_names_reach_no_handler(connect_memory, name):
    watcher = connect_memory(live=False, join=False)
    sender, friend = connect_memory(), connect_memory()
    room = room_of(sender, friend)
    open_room(room, sender, friend)
    settle(watcher)
    watcher.clear()

    ack = sender.call(name, {"QUERY_STRING": "userID=1"})
    assert (ack["ok"], ack["code"], ack["event"]) == (False, "UNKNOWN_EVENT", name)
    settle(sender, friend, watcher)
    assert sender.got() == [] and friend.got() == [] and watcher.got("newOnlineUser") == []
    # the socket goes on as before, as the same user
    assert sender.call("message", payloads.message(sender.user_id, room, "still me"))["ok"]
    assert friend.wait_for("messageRoom")["from"] == sender.user_id


# --- binary packets --------------------------------------------------------------------------

def rss_bytes(process):
    for line in open(f"/proc/{process.proc.pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def closed_by_server(ws, timeout=5):
    """True once the server has closed the websocket (a close frame or the end of the stream)."""
    ws.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            opcode, _ = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return True
    except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
        return True
    return False


@pytest.mark.parametrize("first", [
    pytest.param('451-["message",{"_placeholder":true,"num":0}]', id="binary-event"),
    pytest.param('461-0[{"_placeholder":true,"num":0}]', id="binary-ack"),
    pytest.param(b"\x00" * 1000, id="binary-frame"),
])
def test_a_binary_packet_closes_its_connection_and_holds_no_memory(memory_server, connect_memory, first):
    """451-[...] followed by 60 KB binary frames grew the server by 287 MB in 2.6 s."""
    bystander = connect_memory()
    ws = raw_socket(memory_server, new_user_id())
    before = rss_bytes(memory_server)
    try:
        if isinstance(first, bytes):
            ws.send_binary(first)
        else:
            ws.send(first)
        sent = 0
        try:
            for _ in range(300):  # what the attack sent: the server must not hold it
                ws.send_binary(b"\x01" * 60_000)
                sent += 1
        except (websocket.WebSocketException, OSError):
            pass
        assert closed_by_server(ws), "the connection stayed open"
    finally:
        ws.close()
    assert rss_bytes(memory_server) - before < 20 * 2**20
    log = memory_server.log()
    assert "Traceback" not in log
    # everyone else is served as before
    assert bystander.call("joinRoom", bystander.user_id) == {"ok": True}


def test_a_message_with_a_binary_attachment_closes_the_senders_connection_only(connect_memory):
    a, b = connect_memory(), connect_memory()
    room = room_of(a, b)
    open_room(room, b)
    a.emit("message", payloads.changed(payloads.message(a.user_id, room), "data.message", b"Hello!"))
    assert a.ended.wait(5), "a binary attachment was accepted"
    settle(b)
    assert b.got() == []
    assert b.call("joinRoom", b.user_id) == {"ok": True}


# --- identity claimed once ---------------------------------------------------------------------

class PollingSocket:
    """A long-polling Engine.IO + Socket.IO client, raw, so that two POSTs can race."""

    def __init__(self, url):
        self.base = f"{url}/socket.io/?EIO=4&transport=polling"
        handshake = requests.get(self.base, timeout=5).text
        self.sid = json.loads(handshake[1:])["sid"]
        self.url = f"{self.base}&sid={self.sid}"
        self.post("40")
        assert self.poll()[0].startswith("40")

    def post(self, packet):
        response = requests.post(self.url, data=packet.encode(), timeout=10,
                                 headers={"Content-Type": "text/plain;charset=UTF-8"})
        assert response.status_code == 200, response.text
        return response

    def poll(self):
        return requests.get(self.url, timeout=10).text.split("\x1e")

    def acks(self, count):
        """The next `count` ack packets, by ack id."""
        found = {}
        deadline = time.monotonic() + 10
        while len(found) < count and time.monotonic() < deadline:
            for packet in self.poll():
                if packet.startswith("43"):
                    ack_id = int(packet[2:packet.index("[")])
                    found[ack_id] = json.loads(packet[packet.index("["):])[0]
        return found

    def close(self):
        try:
            self.post("1")
        except (AssertionError, requests.RequestException):
            pass


def test_two_racing_add_online_users_claim_one_identity(redis_backed_server, redis_server, connect):
    """Two concurrent long-polling POSTs of addOnlineUser for two ids on one socket were both
    accepted in 12 of 30 tries; one of the two stayed in onlineUsers for ever."""
    client = redis_server.client()
    for _ in range(15):
        ids = [new_user_id(), new_user_id()]
        sock = PollingSocket(redis_backed_server.url)
        barrier = threading.Barrier(2)

        def claim(ack_id, user_id):
            barrier.wait(5)
            sock.post(f'42{ack_id}["addOnlineUser",{{"userID":"{user_id}","userUsername":"u"}}]')

        threads = [threading.Thread(target=claim, args=(i + 1, user_id)) for i, user_id in enumerate(ids)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        acks = sock.acks(2)
        outcomes = sorted(ack.get("code", "ok") for ack in acks.values())
        assert outcomes == ["FORBIDDEN", "ok"], acks
        winner = ids[[acks[1], acks[2]].index({"ok": True})]
        assert client.smembers(redis_keys.ONLINE_USERS) & set(ids) == {winner}
        sock.close()
        wait_until(lambda: not client.smembers(redis_keys.ONLINE_USERS) & set(ids), 5,
                   "a user of the closed socket stayed online")


def test_a_binary_packet_over_long_polling_is_answered_at_once_and_ends_the_session(memory_server):
    """Closing the session must not wait for a poll the client never makes: the POST that
    carried the binary packet would hang, holding its connection, for as long as it liked."""
    sock = PollingSocket(memory_server.url)
    started = time.monotonic()
    sock.post('451-["message",{"_placeholder":true,"num":0}]')
    assert time.monotonic() - started < 5
    refused = requests.post(sock.url, data=b'42["joinRoom","1"]', timeout=10,
                            headers={"Content-Type": "text/plain;charset=UTF-8"})
    assert refused.status_code == 400  # the session is gone


# --- notifications reach only their addressee ----------------------------------------------------

@pytest.mark.parametrize("to, expected", [
    pytest.param("b", {"b": True, "c": False}, id="to-one-recipient"),
    pytest.param("room", {"b": True, "c": True}, id="to-the-room"),
    pytest.param("outsider", {"b": False, "c": False}, id="to-someone-outside"),
])
def test_a_message_carries_each_recipient_only_its_own_room_notification(connect_memory, to, expected):
    a, b, c = connect_memory(), connect_memory(), connect_memory()
    outsider = connect_memory()
    names = {"b": b.user_id, "c": c.user_id, "room": "room", "outsider": outsider.user_id}
    room = room_of(a, b, c)
    notification = payloads.notification(a.user_id, names[to], "a group was made")
    ack = a.call("message", payloads.message(a.user_id, room, "hi", createRoomNotification=notification))
    assert ack["ok"]
    for key, peer in (("b", b), ("c", c)):
        got = peer.wait_for("messageResponseNotify")["createRoomNotification"]
        assert got == (notification if expected[key] else None), key
    settle(outsider)
    assert outsider.got() == []


# --- a refused addOnlineUser changes nothing, even when Redis applies it late -----------------------

def test_an_add_refused_during_a_redis_stall_is_not_applied_when_redis_resumes():
    cluster = Cluster(2, HOMEAPP_PRESENCE_TIMEOUT=3.0, HOMEAPP_REDIS_TIMEOUT=0.5)
    try:
        watcher = cluster.peer(1, live=False, join=False)
        cluster.peer(0)  # Redis has the presence scripts by now: the stalled one is not refused unknown
        user = cluster.peer(0, live=False, join=False)
        cluster.wait_for_queue(2)
        hello = {"userID": user.user_id, "userUsername": "stalled"}
        time.sleep(1.5)  # the keeper has measured Redis's clock by now

        cluster.redis.proc.send_signal(signal.SIGSTOP)
        try:
            ack = user.call("addOnlineUser", hello)
            assert ack["code"] == "UNAVAILABLE", ack
            time.sleep(0.5)
        finally:
            cluster.redis.proc.send_signal(signal.SIGCONT)
        ready = lambda: requests.get(cluster[0].url + "/readyz", timeout=2).status_code == 200  # noqa: E731
        wait_until(ready, 15, "the process never saw Redis back")
        time.sleep(0.5)
        held = cluster.client().hgetall(redis_keys.server_sockets(
            next(iter(cluster.client().smembers(redis_keys.SERVERS)))))
        assert user.user_id not in cluster.online(), "the refused add was applied late"
        assert user.client.get_sid() not in held

        # the client's retry is the one that brings the user online, announced once
        assert user.call("addOnlineUser", hello) == {"ok": True}
        watcher.wait_for("newOnlineUser", lambda p: p == add(user.user_id))
        user.close()
        watcher.wait_for("newOnlineUser", lambda p: p == remove(user.user_id))
        settle(watcher)
        assert watcher.presence_of(user.user_id) == [add(user.user_id), remove(user.user_id)]
    finally:
        cluster.close()


# --- who may read the online list, and whose origin is "same origin" -------------------------------

@pytest.fixture(scope="module")
def session_server(server_factory, redis_server):
    return server_factory(HOMEAPP_AUTH="session", REDIS_URL=redis_server.url,
                          HOMEAPP_SESSION_SECRET=cred.SESSION_SECRET, **FAST)


def session_cookie(redis_client, user_id):
    session_id = f"reader-{time.monotonic_ns()}"
    cred.store_session(redis_client, session_id, int(user_id), "reader")
    return {"Cookie": f"sessionLog={requests.utils.quote(cred.python_signed(session_id), safe='')}"}


def test_the_online_list_needs_the_modes_proof(jwt_server, session_server, redis_server, memory_server):
    def status(server, headers=None):
        return requests.get(server.url + "/api/online-users", headers=headers or {}, timeout=5)

    for server in (jwt_server, session_server):
        refused = status(server)
        assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHENTICATED"
    assert status(jwt_server, {"Authorization": "Bearer not-a-token"}).status_code == 401
    forged = cred.token("5", "x", secret="another secret of at least thirty-two bytes")
    assert status(jwt_server, {"Authorization": f"Bearer {forged}"}).status_code == 401
    assert status(jwt_server, {"Authorization": f"Bearer {cred.token('5', 'x')}"}).status_code == 200
    assert status(session_server, session_cookie(redis_server.client(), "5")).status_code == 200
    assert status(memory_server).status_code == 200  # open mode: anyone may connect and hear it


FOREIGN = "http://evil.example"


def opens_from(server, origin, **headers):
    """True when a websocket from `origin` gets the Engine.IO handshake. gevent-websocket
    completes the upgrade before Engine.IO checks the origin, so a refusal is a connection that
    ends without one."""
    try:
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket&userID={new_user_id()}",
            timeout=5, origin=origin, header=[f"{k}: {v}" for k, v in headers.items()])
    except websocket.WebSocketBadStatusException:
        return False
    try:
        return ws.recv().startswith("0")
    except (websocket.WebSocketException, OSError):
        return False
    finally:
        ws.close()


@pytest.fixture(scope="module")
def proxied_server(server_factory):
    return server_factory(HOMEAPP_TRUST_PROXY=1, **FAST)


def test_forwarded_headers_make_no_foreign_origin_same_origin(memory_server, proxied_server):
    forged = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"}
    assert not opens_from(memory_server, FOREIGN, **forged)
    assert opens_from(memory_server, memory_server.url)
    # behind a proxy that sets them (HOMEAPP_TRUST_PROXY=1) they name the server's public origin
    public = {"X-Forwarded-Host": "chat.example", "X-Forwarded-Proto": "https"}
    assert opens_from(proxied_server, "https://chat.example", **public)
    assert not opens_from(proxied_server, FOREIGN)
    assert not opens_from(proxied_server, FOREIGN, **public)
