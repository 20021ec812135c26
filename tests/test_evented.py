"""The frame path's pieces on real sockets: frames.Connection's parser, writes, close and
output bound; evented.py feeding Engine.IO (a websocket from the start, an upgrade from
long-polling, the server's close). RFC 6455 case by case: tests/test_rfc6455.py."""
import _socket
import types

import engineio
import engineio.socket
import gevent
import gevent.event
import gevent.socket
import pytest
from engineio import packet
from websocket import ABNF

from homeapp import seams
from homeapp.config import load_config
from homeapp.transport import evented, frames, websocket, worker

LIMITS = worker.FrameLimits(max_message=1024, max_pending=None, close_grace=None)
CLOSE_FRAME = b"\x88\x00"


@pytest.fixture(autouse=True, scope="module")
def installed():
    """The seams as create_app installs them: explicitly, never by importing."""
    config = load_config({})
    seams.install(config)
    evented.configure(config)


def client_frame(data, opcode=ABNF.OPCODE_TEXT, fin=1):
    """A masked client frame, as bytes."""
    return ABNF.create_frame(data, opcode, fin).format()


class Listener:
    """What a connection handed on: its messages, and whether it ended (how many times)."""

    def __init__(self):
        self.messages = []
        self.ends = 0

    def received(self, message):
        self.messages.append(message)

    def ended(self):
        self.ends += 1


@pytest.fixture
def pair():
    """(new(limits, early) -> a Connection on our end, as worker.Handler hands it over; the
    client's gevent socket). Every connection is closed at the end: a descriptor closed under
    an active watcher would confuse the event loop once its number is reused."""
    ours, theirs = gevent.socket.socketpair()
    plain = _socket.socket(fileno=ours.detach())
    plain.setblocking(False)
    theirs.settimeout(2)
    made = []

    def new(limits=LIMITS, early=b""):
        made.append(frames.Connection(plain, early, limits))
        return made[-1]
    yield new, theirs
    for conn in made:
        conn.close()
    theirs.close()


@pytest.fixture
def connected(pair):
    """(connection(limits, early) -> a started Connection on our end, the client's socket)"""
    new, client = pair

    def connection(limits=LIMITS, early=b""):
        conn = new(limits, early)
        conn.start(Listener())
        return conn
    return connection, client


def until_closed(sock):
    """Everything this side writes until it closes the connection."""
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


# -- reading ----------------------------------------------------------------------------------

def test_a_frame_arriving_a_byte_at_a_time_is_one_message(connected):
    connection, client = connected
    conn = connection()
    for byte in client_frame('425["joinRoom","1"]'):
        client.sendall(bytes([byte]))
        gevent.sleep(0.001)
    assert conn.listener.messages == ['425["joinRoom","1"]']


def test_what_came_with_the_request_is_read_first(connected):
    connection, client = connected
    first = client_frame("40")
    conn = connection(early=first[:3])
    client.sendall(first[3:] + client_frame("3"))
    gevent.sleep(0.01)
    assert conn.listener.messages == ["40", "3"]


def test_a_fragmented_message_with_a_ping_between_its_fragments(connected):
    connection, client = connected
    conn = connection()
    client.sendall(client_frame("42", fin=0) + client_frame("are you there", ABNF.OPCODE_PING)
                   + client_frame('6["joinRoom","1"]', ABNF.OPCODE_CONT))
    assert client.recv(100) == b"\x8a\x0dare you there"  # the pong
    assert conn.listener.messages == ['426["joinRoom","1"]']


def test_a_binary_message_is_handed_on_as_bytes(connected):
    connection, client = connected
    conn = connection()
    client.sendall(client_frame(b"\x04\x00\xff", ABNF.OPCODE_BINARY))
    gevent.sleep(0.01)
    assert conn.listener.messages == [b"\x04\x00\xff"]


@pytest.mark.parametrize("frames_sent,code", [
    (client_frame((1000).to_bytes(2, "big"), ABNF.OPCODE_CLOSE), 1000),
    (client_frame(b'42["x","\xff"]'), 1007),
    (b"\x81\x0240", 1002),
    (client_frame("x", ABNF.OPCODE_CONT), 1002),
    (client_frame("42", fin=0) + client_frame("42"), 1002),
    (b"\xc1\x82mask42", 1002),
    (client_frame("x" * 126, ABNF.OPCODE_PING), 1002),
    (client_frame("x", ABNF.OPCODE_PING, fin=0), 1002),
    (client_frame(b"\x03", ABNF.OPCODE_CLOSE), 1002),
    (client_frame((1005).to_bytes(2, "big"), ABNF.OPCODE_CLOSE), 1002),
    (client_frame((1000).to_bytes(2, "big") + b"\xff", ABNF.OPCODE_CLOSE), 1007),
], ids=["client-close", "invalid-utf8", "unmasked", "continuation-first", "text-inside-fragments",
        "reserved-bit", "long-control", "fragmented-control", "close-of-one-byte", "close-code-reserved",
        "close-reason-not-utf8"])
def test_a_refused_frame_is_answered_with_its_close_code_and_the_connection_ends(connected, frames_sent, code):
    """(A message over the limit: tests/test_worker.py.)"""
    connection, client = connected
    conn = connection()
    client.sendall(frames_sent)
    assert until_closed(client) == b"\x88\x02" + code.to_bytes(2, "big")
    assert conn.closed and conn.listener.ends == 1 and conn.listener.messages == []


def test_the_end_of_the_stream_ends_the_connection_once(connected):
    connection, client = connected
    conn = connection()
    client.shutdown(_socket.SHUT_WR)
    gevent.sleep(0.01)
    assert conn.closed and conn.listener.ends == 1
    conn.close()
    assert conn.listener.ends == 1


# -- writing -----------------------------------------------------------------------------------

def test_messages_sent_in_one_turn_leave_together_when_the_loop_runs(connected):
    connection, client = connected
    conn = connection()
    for i in range(3):
        conn.send(f"4m{i}")
    client.setblocking(False)
    with pytest.raises(BlockingIOError):
        client.recv(100)  # nothing has left yet
    gevent.sleep(0)
    client.settimeout(2)
    assert client.recv(100) == b"\x81\x034m0\x81\x034m1\x81\x034m2"


def test_a_reader_slower_than_the_writer_gets_every_byte_in_order(connected):
    connection, client = connected
    conn = connection()
    texts = [chr(65 + i % 26) * 3999 for i in range(500)]  # 2 MB, far beyond the socket buffers
    for text in texts:
        conn.send(text)
        gevent.sleep(0)
    assert conn.writer is not None  # the kernel did not take it all at once
    expected = b"".join(frames.frame(frames.TEXT, text.encode()) for text in texts)
    received = bytearray()
    while len(received) < len(expected):
        received += client.recv(65536)
    assert received == expected
    gevent.sleep(0.01)
    assert conn.writer is None and conn.pending is None and conn.pending_bytes == 0


def test_a_client_further_behind_than_the_bound_is_cut_and_its_backlog_dropped(connected):
    connection, client = connected
    conn = connection(LIMITS._replace(max_pending=100_000))
    for _ in range(500):  # 2 MB that nobody reads
        conn.send("x" * 3999)
        gevent.sleep(0)
    assert conn.closed and conn.listener.ends == 1 and conn.pending is None
    received = len(until_closed(client))  # what the kernel had taken, then the end
    assert received < 500 * 4000


def test_the_servers_close_frame_leaves_at_once_after_what_was_pending_and_nothing_follows(connected):
    connection, client = connected
    conn = connection()
    conn.send("4last words")
    conn.close_gracefully()
    assert client.recv(100) == b"\x81\x0b4last words" + CLOSE_FRAME  # without the loop running
    conn.send("4after the close")
    client.sendall(client_frame("4ignored") + client_frame(b"", ABNF.OPCODE_CLOSE))  # the answer
    assert until_closed(client) == b""
    assert conn.listener.messages == [] and conn.listener.ends == 1


def test_a_client_that_does_not_answer_the_close_frame_is_cut_after_the_grace(connected):
    connection, client = connected
    conn = connection(LIMITS._replace(close_grace=0.05))
    conn.close_gracefully()
    assert until_closed(client) == CLOSE_FRAME
    assert conn.closed and conn.listener.ends == 1


def test_a_vanished_client_ends_the_connection_on_the_next_write(connected):
    connection, client = connected
    conn = connection()
    client.close()
    conn.send("4into the void")
    gevent.sleep(0.01)
    assert conn.closed and conn.listener.ends == 1


# -- Engine.IO fed by the connection -------------------------------------------------------------

@pytest.fixture
def engineio_socket():
    server = engineio.Server(async_mode="gevent", async_handlers=False)  # as create_app
    return engineio.socket.Socket(server, "sid")


def driver(conn):
    """The object Engine.IO's gevent driver hands its websocket handler."""
    return types.SimpleNamespace(_sock=conn)


def frames_of(data):
    """The text of each unmasked frame in `data`."""
    texts = []
    while data:
        size = data[1]
        texts.append(data[2:2 + size].decode())
        data = data[2 + size:]
    return texts


def test_a_websocket_from_the_start_is_written_directly_and_its_packets_handled_in_order(engineio_socket, pair):
    new, client = pair
    received, ended = [], []
    engineio_socket.server.on("message", lambda sid, data: (received.append(data), gevent.sleep(0.01)))
    engineio_socket.server.on("disconnect", lambda sid, reason: ended.append(reason))
    engineio_socket.server.sockets["sid"] = engineio_socket
    engineio_socket.send(packet.Packet(packet.OPEN, "queued before"))
    conn = new()
    assert engineio_socket._websocket_handler(driver(conn)) == []  # at once
    engineio_socket.send(packet.Packet(packet.MESSAGE, "direct"))
    assert engineio_socket.direct_websocket is conn and engineio_socket.queue.empty()
    client.sendall(b"".join(client_frame(f"4m{i}") for i in range(5)))
    gevent.sleep(0.2)
    assert received == [f"m{i}" for i in range(5)]  # one at a time, though each handler waits
    assert frames_of(client.recv(100)) == ["0queued before", "4direct"]
    client.sendall(client_frame(b"", ABNF.OPCODE_CLOSE))
    gevent.sleep(0.01)
    assert ended == ["transport close"] and engineio_socket.closed
    assert "sid" not in engineio_socket.server.sockets



def test_an_upgrade_from_polling_goes_through_the_probe_then_writes_directly(engineio_socket, pair):
    new, client = pair
    engineio_socket.connected = True  # on long-polling
    engineio_socket.send(packet.Packet(packet.MESSAGE, "polled"))
    assert [p.data for p in engineio_socket.poll()] == ["polled"]
    conn = new()
    assert engineio_socket._websocket_handler(driver(conn)) == []
    client.sendall(client_frame("2probe"))
    assert frames_of(client.recv(100)) == ["3probe"]
    assert engineio_socket.upgrading and not engineio_socket.upgraded
    engineio_socket.send(packet.Packet(packet.MESSAGE, "held"))  # in the queue, behind the poll's NOOP
    assert [p.packet_type for p in engineio_socket.poll()] == [packet.NOOP, packet.MESSAGE]
    engineio_socket.send(packet.Packet(packet.MESSAGE, "held too"))
    client.sendall(client_frame("5"))
    gevent.sleep(0.01)
    assert engineio_socket.upgraded and not engineio_socket.upgrading
    engineio_socket.send(packet.Packet(packet.MESSAGE, "after"))
    assert engineio_socket.direct_websocket is conn and engineio_socket.queue.empty()
    gevent.sleep(0)
    assert frames_of(client.recv(100)) == ["4held too", "4after"]


def test_an_upgrade_without_the_probe_ends_that_connection_and_the_socket_stays_on_polling(engineio_socket, pair):
    new, client = pair
    engineio_socket.connected = True
    engineio_socket._websocket_handler(driver(new()))
    client.sendall(client_frame("2"))  # a ping, not the probe
    assert until_closed(client) == CLOSE_FRAME
    assert not engineio_socket.upgrading and not engineio_socket.upgraded and not engineio_socket.closed
    engineio_socket.send(packet.Packet(packet.MESSAGE, "still polled"))
    assert [p.data for p in engineio_socket.poll()] == ["still polled"]


def test_closing_an_evented_socket_writes_its_close_packet_and_frame_without_waiting(engineio_socket, pair):
    new, client = pair
    engineio_socket._websocket_handler(driver(new()))
    with gevent.Timeout(1):  # Engine.IO's close(wait=True) would join a queue no writer empties
        engineio_socket.close()
    assert engineio_socket.closed
    assert client.recv(100) == b"\x81\x011" + CLOSE_FRAME


def test_a_malformed_packet_is_dropped_and_the_next_one_handled(engineio_socket, pair):
    new, client = pair
    received = []
    engineio_socket.server.on("message", lambda sid, data: received.append(data))
    engineio_socket._websocket_handler(driver(new(LIMITS._replace(max_message=65536))))
    client.sendall(client_frame("") + client_frame("4" + "[" * 3000) + client_frame("4after"))
    gevent.sleep(0.01)
    assert received == ["after"] and not engineio_socket.closed


def test_a_socket_with_many_packets_waiting_is_not_read_from_until_they_are_handled(engineio_socket, pair):
    new, client = pair
    received = []
    release = gevent.event.Event()
    engineio_socket.server.on("message", lambda sid, data: (release.wait(), received.append(data)))
    conn = new()
    engineio_socket._websocket_handler(driver(conn))
    client.sendall(b"".join(client_frame(f"4m{i}") for i in range(evented.MAX_QUEUED + 10)))
    gevent.sleep(0.05)
    assert not conn.reader.active  # 64 wait; the rest stay in the kernel
    release.set()
    gevent.sleep(0.05)
    assert received == [f"m{i}" for i in range(evented.MAX_QUEUED + 10)] and conn.reader.active


def test_a_websocket_not_handed_over_by_the_handler_is_closed_with_an_error(engineio_socket, caplog):
    """Under another server's handler (gunicorn -k geventwebsocket's worker), no frame path."""
    closed = []
    ws = types.SimpleNamespace(_sock=object(), close=lambda: closed.append(True))  # Engine.IO's driver
    assert engineio_socket._websocket_handler(ws) == []
    assert closed and "gunicorn.conf.py" in caplog.text


@pytest.fixture
def pool_of_one(monkeypatch):
    """HOMEAPP_HANDLER_POOL=1, with no worker left idle by earlier tests."""
    monkeypatch.setattr(evented, "_handler_pool", 1)
    monkeypatch.setattr(evented, "_workers", 0)
    monkeypatch.setattr(evented, "_idle", [])
    monkeypatch.setattr(evented, "_waiting", evented.deque())
    monkeypatch.setattr(evented, "_pool", set())


@pytest.mark.parametrize("aside", [True, False])
def test_a_handler_waiting_set_aside_does_not_hold_the_pool(pool_of_one, aside):
    """With one worker, a socket whose handler waits (a recovering CONNECT waiting for its turn
    to restore) holds it, and every other socket's packets wait behind it; set aside, the others
    are handled meanwhile, and its own next packet still waits for it."""
    server = engineio.Server(async_mode="gevent", async_handlers=False)
    release = gevent.event.Event()
    handled = []

    def on_message(sid, data):
        if data == "wait":
            if aside:
                with evented.set_aside():
                    release.wait()
            else:
                release.wait()
        handled.append((sid, data))
    server.on("message", on_message)
    clients = {}
    for sid in ("waits", "live"):
        ours, theirs = gevent.socket.socketpair()
        plain = _socket.socket(fileno=ours.detach())
        plain.setblocking(False)
        sock = engineio.socket.Socket(server, sid)
        server.sockets[sid] = sock
        sock._websocket_handler(driver(frames.Connection(plain, b"", LIMITS)))
        clients[sid] = theirs
    clients["waits"].sendall(client_frame("4wait") + client_frame("4after"))
    gevent.sleep(0.05)
    clients["live"].sendall(client_frame("4now"))
    gevent.sleep(0.05)
    assert handled == ([("live", "now")] if aside else [])
    release.set()
    gevent.sleep(0.05)
    assert handled == ([("live", "now"), ("waits", "wait"), ("waits", "after")] if aside
                       else [("waits", "wait"), ("waits", "after"), ("live", "now")])
    for sock in server.sockets.values():
        sock.close(wait=False, abort=True)
    for client in clients.values():
        client.close()
