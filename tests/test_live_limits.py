"""Rate limits, oversized and malformed packets, unknown events: answered, never a crash or a drop."""
import json
import time

import pytest
import websocket

from tests import payloads
from tests.live import Peer, assert_refused, new_user_id, raw_socket, room_of, settle

LIMITED = {"HOMEAPP_MESSAGE_RATE": 1, "HOMEAPP_MESSAGE_BURST": 3,
           "HOMEAPP_TYPING_RATE": 1, "HOMEAPP_TYPING_BURST": 2}


@pytest.fixture(scope="module")
def limited_server(server_factory):
    return server_factory(**LIMITED)


@pytest.fixture
def pair(limited_server):
    peers = []
    for _ in range(2):
        user = new_user_id()
        peer = Peer(limited_server.url, user)
        assert peer.call("addOnlineUser", {"userID": user, "userUsername": "u"})["ok"]
        assert peer.call("joinRoom", user)["ok"]
        peers.append(peer)
    room = room_of(*peers)
    for peer in peers:
        assert peer.call("chatRoom.join", room)["ok"]
    yield peers[0], peers[1], room
    for peer in peers:
        peer.close()


def test_message_flood_is_rate_limited_per_socket(pair, limited_server):
    a, b, room = pair
    acks = [a.call("message", payloads.message(a.user_id, room, f"m{i}")) for i in range(6)]
    assert [ack.get("code", "ok") for ack in acks] == ["ok"] * 3 + ["RATE_LIMITED"] * 3
    settle(a, b)
    assert [p["message"] for _, p in b.got("messageRoom")] == ["m0", "m1", "m2"]
    assert [p["code"] for _, p in a.got("error")] == ["RATE_LIMITED"] * 3
    # another tab of the same user has its own allowance
    tab = Peer(limited_server.url, a.user_id)
    try:
        assert tab.call("message", payloads.message(a.user_id, room, "from the tab"))["ok"]
    finally:
        tab.close()


def test_typing_flood_is_rate_limited_and_checked_before_validation(pair):
    a, b, room = pair
    acks = [a.call("startTypingRoom", payloads.typing(a.user_id, room)) for _ in range(3)]
    assert [ack.get("code", "ok") for ack in acks] == ["ok", "ok", "RATE_LIMITED"]
    assert a.call("stopTypingRoom", "not even a payload")["code"] == "RATE_LIMITED"
    settle(b)
    assert len(b.got("typingMessageStart")) == 2 and not b.got("typingMessageStop")


def test_identity_is_checked_before_the_rate_limit(limited_server):
    anonymous = Peer(limited_server.url)
    try:
        codes = {anonymous.call("message", payloads.message("1", "1:2"))["code"] for _ in range(5)}
        assert codes == {"UNAUTHENTICATED"}
    finally:
        anonymous.close()


def test_an_oversized_packet_closes_only_its_own_connection(memory_users):
    a, b = memory_users(2)
    room = room_of(a, b)
    assert b.call("chatRoom.join", room)["ok"]
    b.clear()
    a.emit("message", payloads.message(a.user_id, room, "x" * 70_000))
    deadline = time.monotonic() + 5
    while a.client.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not a.client.connected
    settle(b)
    assert b.got() == []
    assert b.call("chatRoom.join", room) == {"ok": True}  # everyone else carries on


def test_unknown_events_are_ignored_unless_an_ack_was_asked(memory_users):
    a, b = memory_users(2)
    a.emit("newComment", {"anything": 1})  # the existing client sends it; the server ignores it
    ack = a.call("noSuchEvent", {"x": 1})
    assert ack["ok"] is False and ack["code"] == "UNKNOWN_EVENT" and ack["event"] == "noSuchEvent"
    settle(a, b)
    assert a.got() == [] and b.got() == []


def test_malformed_packets_are_dropped_and_the_socket_lives_on(memory_server):
    user = new_user_id()
    ws = raw_socket(memory_server, user)
    try:
        for frame in ['42[bad json', '42{"a":1}', '42[]', '42[1,2]', '42["message"', '42null',
                      '421["joinRoom"' + ",1" * 10 + "]", "42" + "[" * 3000 + "]" * 3000]:
            ws.send(frame)
        ws.send(f'427["joinRoom","{user}"]')
        replies = []
        while not any(r.startswith("437") for r in replies):
            replies.append(ws.recv())
        assert json.loads(replies[-1][3:]) == [{"ok": True}]
    finally:
        ws.close()


def test_invalid_utf8_closes_that_socket_only(memory_server, memory_users):
    bystander, = memory_users(1)
    ws = raw_socket(memory_server, new_user_id())
    try:
        ws.send(b'42["joinRoom","\xff\xfe"]', opcode=websocket.ABNF.OPCODE_TEXT)
        opcode, _ = ws.recv_data(control_frame=True)
        while opcode != websocket.ABNF.OPCODE_CLOSE:  # a ping may come first
            opcode, _ = ws.recv_data(control_frame=True)
        # (gevent-websocket's close frame carries no status code, so 1007 cannot be checked)
    finally:
        ws.close()
    assert bystander.call("joinRoom", bystander.user_id) == {"ok": True}


def test_error_payload_shape(memory_users):
    a, b = memory_users(2)
    ack = assert_refused(a, "chatRoom.join", f"{b.user_id}:{a.user_id}", "VALIDATION_ERROR", [b])
    assert set(ack) == {"ok", "error", "code", "event", "timestamp", "details"}
    assert ack["details"] == {"roomID": [ack["error"].split(": ", 1)[1]]}
    assert time.strptime(ack["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
