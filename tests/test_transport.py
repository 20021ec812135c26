"""The frame path's pieces: coalesced writes, slow readers and the close frame on real sockets;
which packets a sender writes itself and which wait in Engine.IO's queue."""
import types

import engineio
import engineio.socket
import gevent
import gevent.queue
import gevent.socket
import pytest
from engineio import packet
from geventwebsocket import utf8validator
from geventwebsocket.websocket import Header

from homeapp.config import load_config
from homeapp.transport import websocket as transport

CLOSE_FRAME = b"\x88\x00"


@pytest.fixture(autouse=True, scope="module")
def installed():
    """The frame path as create_app installs it: explicitly, never by importing."""
    transport.install(load_config({}))


@pytest.fixture
def pair():
    ours, theirs = gevent.socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


def test_gevent_websocket_validates_and_unmasks_in_compiled_code():
    assert utf8validator.Utf8Validator.__module__.startswith("wsaccel")
    assert Header.unmask_payload is transport._unmask
    header = Header()
    header.mask = b"\x01\x02\x03\x04"
    assert header.unmask_payload(header.unmask_payload(b"hello, world")) == b"hello, world"


def test_frames_written_in_one_turn_leave_together_when_the_loop_runs(pair):
    ours, theirs = pair
    writer = transport._Writer(ours)
    for i in range(3):
        writer.write(b"\x81frame%d;" % i)
    theirs.setblocking(False)
    with pytest.raises(BlockingIOError):
        theirs.recv(100)  # nothing has left yet
    gevent.sleep(0)  # the event loop runs
    theirs.setblocking(True)
    assert theirs.recv(100) == b"\x81frame0;\x81frame1;\x81frame2;"


def test_a_reader_slower_than_the_writer_gets_every_byte_in_order(pair):
    ours, theirs = pair
    writer = transport._Writer(ours)
    # text frames (first byte 0x81) of 4,000 bytes: 2 MB, far beyond the socket buffers
    chunks = [b"\x81" + bytes([i % 128]) * 3999 for i in range(500)]
    for chunk in chunks:
        writer.write(chunk)
        gevent.sleep(0)
    assert writer.drainer is not None  # the kernel did not take it all at once

    received = bytearray()
    while len(received) < 2_000_000:
        received += theirs.recv(65536)
    assert received == b"".join(chunks)
    gevent.sleep(0.01)
    assert writer.drainer is None and writer.pending == []


def test_a_close_frame_leaves_at_once_after_what_was_pending_and_nothing_follows(pair):
    ours, theirs = pair
    writer = transport._Writer(ours)
    writer.write(b"\x81last words;")
    writer.write(CLOSE_FRAME)
    assert theirs.recv(100) == b"\x81last words;" + CLOSE_FRAME  # without the loop running
    with pytest.raises(OSError):
        writer.write(b"\x81after the close")


def test_a_close_frame_does_not_wait_for_a_client_that_does_not_read(pair):
    ours, theirs = pair
    writer = transport._Writer(ours)
    for _ in range(500):  # 2 MB that nobody reads
        writer.write(b"\x81" + b"x" * 3999)
        gevent.sleep(0)
    assert writer.drainer is not None
    with gevent.Timeout(1):
        writer.write(CLOSE_FRAME)  # queued behind the rest, returns at once
    received = bytearray()
    while not received.endswith(CLOSE_FRAME):
        received += theirs.recv(65536)
    assert len(received) == 500 * 4000 + len(CLOSE_FRAME)


def test_a_connection_whose_client_does_not_answer_the_close_frame_is_cut(pair):
    ours, theirs = pair
    transport._Writer(ours, close_grace=0.05).write(CLOSE_FRAME)
    theirs.settimeout(2)
    assert theirs.recv(100) == CLOSE_FRAME
    assert theirs.recv(100) == b""  # the end, without any answer from this side


def test_a_connection_closed_before_the_grace_runs_out_is_left_alone(pair):
    """Its descriptor number may belong to a new connection by then."""
    ours, theirs = pair
    transport._Writer(ours, close_grace=0.05).write(CLOSE_FRAME)
    ours.close()
    newer, peer = gevent.socket.socketpair()
    try:
        gevent.sleep(0.1)
        newer.sendall(b"still open")
        assert peer.recv(100) == b"still open"
    finally:
        newer.close()
        peer.close()


def test_a_client_further_behind_than_the_limit_is_cut_and_its_backlog_dropped(pair):
    ours, theirs = pair
    writer = transport._Writer(ours, max_pending=100_000)
    frame = b"\x81" + b"x" * 3999
    with pytest.raises(OSError):
        for _ in range(500):  # 2 MB that nobody reads
            writer.write(frame)
            gevent.sleep(0)
    assert writer.pending == [] and writer.pending_bytes == 0
    theirs.settimeout(2)
    received = 0
    while chunk := theirs.recv(65536):  # what the kernel had taken, then the end
        received += len(chunk)
    assert received < 500 * 4000


def test_a_slow_reader_within_the_limit_is_not_cut(pair):
    ours, theirs = pair
    writer = transport._Writer(ours, max_pending=1_000_000)
    frames = [b"\x81" + bytes([i % 128]) * 3999 for i in range(500)]  # 2 MB, read as it comes
    reader = gevent.spawn(lambda: [theirs.recv(65536) for _ in iter(int, 1)])
    try:
        for i, frame in enumerate(frames):
            writer.write(frame)
            gevent.sleep(0.001 if i % 10 == 0 else 0)  # now and then long enough for the reader
        gevent.sleep(0.1)
        assert writer.error is None and writer.pending_bytes == 0
    finally:
        reader.kill()


def test_writes_to_a_vanished_peer_fail_on_the_next_write(pair):
    ours, theirs = pair
    writer = transport._Writer(ours)
    theirs.close()
    writer.write(b"\x81into the void")
    gevent.sleep(0)
    with pytest.raises(OSError):
        writer.write(b"\x81again")


class _FakeWebsocket:
    """A gevent-websocket connection as Engine.IO's gevent driver hands it over, its frames
    going through a _Writer: what it is sent is recorded (or fails, once `fails` is set), what
    it reads comes from `incoming` (None: the client left)."""

    def __init__(self, writer):
        self._sock = types.SimpleNamespace(raw_write=writer.write)
        self.incoming = gevent.queue.Queue()
        self.sent = []
        self.fails = False

    def wait(self):
        return self.incoming.get()

    def send(self, data):
        if self.fails:
            raise OSError("the connection is gone")
        self.sent.append(data)

    def close(self):
        pass


@pytest.fixture
def fake_websocket(pair):
    return lambda: _FakeWebsocket(transport._Writer(pair[0]))


@pytest.fixture
def engineio_socket():
    server = engineio.Server(async_mode="gevent")
    return engineio.socket.Socket(server, "sid")


@pytest.fixture
def websocket_socket(engineio_socket, fake_websocket):
    """An Engine.IO socket past its upgrade, as transport._websocket_handler leaves it."""
    engineio_socket.connected = engineio_socket.upgraded = True
    engineio_socket.direct_websocket = fake_websocket()
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


def test_a_failed_direct_write_leaves_the_packet_to_the_writer(websocket_socket):
    websocket_socket.direct_websocket.fails = True
    websocket_socket.send(packet.Packet(packet.MESSAGE, "lost?"))
    assert [p.data for p in websocket_socket.poll()] == ["lost?"]  # the writer meets the error, and closes


def test_a_socket_on_a_websocket_from_the_start_is_written_directly_until_it_leaves(engineio_socket, fake_websocket):
    ws = fake_websocket()
    handler = gevent.spawn(engineio_socket._websocket_handler, ws)
    gevent.sleep(0.01)
    engineio_socket.send(packet.Packet(packet.MESSAGE, "direct"))
    assert ws.sent == ["4direct"] and engineio_socket.direct_websocket is ws
    ws.incoming.put(None)
    handler.join(timeout=2)
    assert handler.dead and engineio_socket.direct_websocket is None


def test_an_upgrade_makes_the_connection_that_completed_it_direct_not_a_later_one(engineio_socket, fake_websocket):
    engineio_socket.connected = True  # on long-polling
    upgrading, stray = fake_websocket(), fake_websocket()
    handlers = [gevent.spawn(engineio_socket._websocket_handler, ws) for ws in (upgrading, stray)]
    gevent.sleep(0.01)
    upgrading.incoming.put("2probe")
    gevent.sleep(0.01)
    assert engineio_socket.direct_websocket is None  # probing is not upgrading
    upgrading.incoming.put("5")
    gevent.sleep(0.01)
    engineio_socket.send(packet.Packet(packet.MESSAGE, "after"))
    assert upgrading.sent == ["3probe", "6", "4after"]  # the poll's NOOP went through the writer first
    assert stray.sent == []
    stray.incoming.put("2")  # not a probe: that connection's handler gives up
    handlers[1].join(timeout=2)
    assert engineio_socket.direct_websocket is upgrading
    upgrading.incoming.put(None)
    handlers[0].join(timeout=2)
    assert engineio_socket.direct_websocket is None


@pytest.fixture
def output_limit(monkeypatch):
    monkeypatch.setattr(transport.Limits, "pending_output", 100)


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


def test_a_malformed_packet_is_dropped_and_the_next_one_handled(engineio_socket, fake_websocket):
    received = []
    engineio_socket.server.on("message", lambda sid, data: received.append(data))
    ws = fake_websocket()
    handler = gevent.spawn(engineio_socket._websocket_handler, ws)
    for text in ["", "4" + "[" * 3000, "4after"]:
        ws.incoming.put(text)
    gevent.sleep(0.01)
    assert received == ["after"] and not engineio_socket.closed
    ws.incoming.put(None)
    handler.join(timeout=2)
