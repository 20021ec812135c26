"""Engine.IO's sockets as homeapp/transport/websocket.py tunes them: which packets a sender
writes itself and which wait in Engine.IO's queue; the output bound on long-polling; which
text messages pass undecoded. (The connection's writes: tests/test_evented.py.)"""
import engineio
import engineio.socket
import gevent
import pytest
from engineio import packet

from homeapp.config import load_config
from homeapp import seams
from homeapp.seams import engineio as engineio_seam
from homeapp.transport import websocket as transport
from tests.inprocess import RecordingConnection

CLOSE_FRAME = b"\x88\x00"


@pytest.fixture(autouse=True, scope="module")
def installed():
    """The frame path as create_app installs it: explicitly, never by importing."""
    seams.install(load_config({}))


@pytest.fixture
def engineio_socket():
    server = engineio.Server(async_mode="gevent")
    return engineio.socket.Socket(server, "sid")


@pytest.fixture
def websocket_socket(engineio_socket):
    """An Engine.IO socket past its upgrade, as evented.py leaves it."""
    engineio_socket.connected = engineio_socket.upgraded = True
    engineio_socket.direct_websocket = RecordingConnection()
    return engineio_socket


def test_a_packet_for_an_idle_websocket_is_written_by_its_sender(websocket_socket):
    websocket_socket.send(packet.Packet(packet.MESSAGE, "hello"))
    assert websocket_socket.direct_websocket.sent == ["4hello"]
    assert websocket_socket.queue.empty()


def test_a_packet_queues_behind_packets_still_queued_so_the_order_holds(websocket_socket):
    websocket_socket.queue.put(packet.Packet(packet.MESSAGE, "first"))  # not yet written
    websocket_socket.send(packet.Packet(packet.MESSAGE, "second"))
    assert websocket_socket.direct_websocket.sent == []
    assert [p.data for p in websocket_socket.poll()] == ["first", "second"]


@pytest.mark.parametrize("state", ["upgrading", "polling"])
def test_a_socket_not_yet_on_its_websocket_queues(websocket_socket, state):
    if state == "upgrading":
        websocket_socket.upgrading = True
    else:
        websocket_socket.upgraded = False
    websocket_socket.send(packet.Packet(packet.MESSAGE, "held"))
    assert websocket_socket.direct_websocket.sent == []
    assert [p.data for p in websocket_socket.poll()] == ["held"]


@pytest.fixture
def output_limit(monkeypatch):
    monkeypatch.setattr(engineio_seam.Limits, "pending_output", 100)


def test_a_polling_client_that_lets_its_queue_pass_the_limit_is_disconnected(engineio_socket, output_limit):
    disconnected = []
    engineio_socket.server.on("disconnect", lambda sid, reason: disconnected.append(reason))
    engineio_socket.connected = True  # on long-polling, and never polling
    for i in range(5):
        engineio_socket.send(packet.Packet(packet.MESSAGE, f"{i}" * 30))
    gevent.sleep(0.01)
    assert disconnected == ["transport error"]
    assert engineio_socket.closed
    assert [p.data for p in engineio_socket.poll()][:3] == ["0" * 30, "1" * 30, "2" * 30]


def test_a_polling_client_that_polls_keeps_its_queue_under_the_limit(engineio_socket, output_limit):
    engineio_socket.connected = True
    for i in range(50):
        engineio_socket.send(packet.Packet(packet.MESSAGE, "x" * 30))
        assert [p.data for p in engineio_socket.poll()] == ["x" * 30]
    assert engineio_socket.queued_bytes == 0 and not engineio_socket.closed


@pytest.mark.parametrize("text", ["42[\"message\",{}]", "40", "3", "2probe", "5", "6"],
                         ids=["event", "connect", "pong", "probe", "upgrade", "noop"])
def test_the_packets_clients_send_pass_without_decoding(text):
    assert text[:2] in transport._PLAIN_STARTS


@pytest.mark.parametrize("text", ["4{\"a\":1}", "9x", "4 42"], ids=["json", "unknown type", "space"])
def test_other_packets_engineio_decodes_pass_once_decoded(text):
    assert text[:2] not in transport._PLAIN_STARTS and transport._decode_error(text) is None


@pytest.mark.parametrize("text", ["", "x", "babc", "4" + "[" * 3000, "4 " + "[" * 3000],
                         ids=["empty", "no type", "bad base64", "deep nesting", "nesting after a space"])
def test_what_engineio_cannot_decode_is_found_out(text):
    assert isinstance(transport._decode_error(text), Exception)


def test_sends_to_a_socket_that_closed_warn_once(websocket_socket, caplog):
    """Until its disconnect is handled, a closed socket is still in its rooms, and every emit to
    them sends to it: one warning says so, not one per emit."""
    server = websocket_socket.server
    server.sockets[websocket_socket.sid] = websocket_socket
    websocket_socket.closed = True
    with caplog.at_level("DEBUG", logger=server.logger.name):
        for _ in range(100):
            engineio_seam.send_message(server, websocket_socket.sid, '2["newOnlineUser"]')
    assert websocket_socket.direct_websocket.sent == []
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.getMessage() for r in warnings] == [f"Cannot send to sid {websocket_socket.sid}"]
    assert websocket_socket.sid not in server.sockets
