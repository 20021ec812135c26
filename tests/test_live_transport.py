"""The connection itself: the Engine.IO heartbeat, and clients that read slowly."""
import json
import socket
import time

import pytest

from tests import payloads
from tests.conftest import FAST
from tests.live import Peer, new_user_id, raw_socket

INTERVAL, TIMEOUT = 1, 1  # whole seconds: Engine.IO announces them in milliseconds, rounded down


@pytest.fixture(scope="module")
def quick_pings(server_factory):
    return server_factory(HOMEAPP_PING_INTERVAL=INTERVAL, HOMEAPP_PING_TIMEOUT=TIMEOUT, **FAST)


PRESENCE = '42["newOnlineUser"'


def live_raw_socket(server, user_id):
    ws = raw_socket(server, user_id)
    ws.send(f'420["addOnlineUser",{{"userID":"{user_id}","userUsername":"raw"}}]')
    assert next_frame(ws) == '430[{"ok":true}]'
    return ws


def next_frame(ws):
    """The next frame that is not a presence broadcast (a socket hears its own)."""
    while True:
        frame = ws.recv()
        if not frame.startswith(PRESENCE):
            return frame


def test_a_client_that_answers_pings_stays_connected(quick_pings):
    observer = Peer(quick_pings.url)
    user = new_user_id()
    ws = live_raw_socket(quick_pings, user)
    try:
        pings = 0
        until = time.monotonic() + 4 * (INTERVAL + TIMEOUT)
        while time.monotonic() < until:
            assert next_frame(ws) == "2"
            ws.send("3")
            pings += 1
        assert pings >= 6  # one per interval
        assert ws.connected
        assert observer.presence_of(user) == [{"type": "Add", "userID": user}]
    finally:
        ws.close()
        observer.close()


def test_a_client_that_stops_answering_is_dropped_and_goes_offline(quick_pings):
    observer = Peer(quick_pings.url)
    user = new_user_id()
    ws = live_raw_socket(quick_pings, user)
    try:
        started = time.monotonic()
        assert next_frame(ws) == "2"  # and no pong
        observer.wait_for("newOnlineUser", lambda p: p == {"type": "Remove", "userID": user},
                          timeout=5 * (INTERVAL + TIMEOUT))
        assert time.monotonic() - started >= TIMEOUT * 0.9  # not before the timeout ran out
        # the server's close frame, then the end of the connection, though the client never
        # answered it (a websocket library would: read the bare socket)
        ws.sock.settimeout(TIMEOUT + 5)  # the client has a ping timeout to answer the close frame
        received = b""
        while chunk := ws.sock.recv(4096):
            received += chunk
        assert received.endswith(b"\x88\x00")
    finally:
        ws.close()
        observer.close()


def test_a_slow_reader_gets_every_frame_in_order(memory_server, memory_users):
    """Frames for a client that reads slower than the server writes wait in the server, in
    order, instead of failing or blocking everyone else's."""
    a, = memory_users(1)
    reader = new_user_id()
    room = ":".join(sorted([a.user_id, reader], key=int))
    # a small receive window, and nothing read while about 800 KB are sent to it (a client
    # further behind than HOMEAPP_MAX_PENDING_OUTPUT_BYTES is disconnected instead:
    # tests/test_live_hostile_transport.py)
    ws = raw_socket(memory_server, reader, sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    try:
        ws.send(f'420["joinRoom","{reader}"]')
        texts = [f"{i:04d}" + "x" * 4000 for i in range(100)]
        for text in texts:
            a.emit("message", payloads.message(a.user_id, room, text))
        assert a.call("joinRoom", a.user_id) == {"ok": True}  # the server answers others meanwhile
        relayed = []
        while len(relayed) < len(texts):
            frame = ws.recv()
            if frame.startswith('42["messagePage"'):
                relayed.append(json.loads(frame[2:])[1]["lastMessage"])
        assert relayed == texts
    finally:
        ws.close()


def test_a_client_upgraded_from_polling_gets_every_frame_in_order(connect_memory):
    """A socket that started on long-polling, as browsers connect, and upgraded is written to
    on its websocket. (The upgrade itself, packet by packet, is in tests/test_transport.py:
    the Python client upgrades before connect() returns.)"""
    sender = connect_memory()
    upgrading = connect_memory(transports=("polling", "websocket"))
    room = ":".join(sorted([sender.user_id, upgrading.user_id], key=int))
    texts = [f"m{i:03d}" for i in range(300)]
    for text in texts:
        sender.emit("message", payloads.message(sender.user_id, room, text))
    deadline = time.monotonic() + 10
    while len(upgrading.got("messagePage")) < len(texts) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p["lastMessage"] for _, p in upgrading.got("messagePage")] == texts
    assert upgrading.client.transport() == "websocket"
    assert upgrading.call("joinRoom", upgrading.user_id) == {"ok": True}
