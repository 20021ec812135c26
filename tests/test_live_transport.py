"""The Engine.IO heartbeat: a client that answers pings stays, one that stops is dropped and goes offline."""
import time

import pytest
import websocket

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
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
            while True:  # the server closed the connection: reading ends
                if ws.recv() == "":
                    raise ConnectionError("closed")
    finally:
        ws.close()
        observer.close()
