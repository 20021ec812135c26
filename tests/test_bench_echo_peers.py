"""The benchmark's echo peers speak one protocol: the evented prototype
(bench/peers/evented_echo.py), with its handlers inline and in a greenlet pool, answers a
Socket.IO client as the gevent-websocket echo does, and its own frame parser holds.

Each peer runs as the benchmark starts it (bench.targets, pinned to core 0); the smoke run
(test_bench_smoke.py) drives the inline one with the load generator, not the pool one.
"""
import socket

import pytest
from websocket import ABNF

from bench.targets import TARGETS, RunningServer
from tests.live import new_user_id, peers_on, raw_socket, settle

MESSAGE = {"data": {"message": "t=1.000 Hello! Is the apartment still free on Friday?"}}


def _run(name, tmp_path_factory):
    log = tmp_path_factory.mktemp("peer") / f"{name}.log"
    with RunningServer(TARGETS[name], log) as server:
        yield server


@pytest.fixture(scope="module", params=["echo", "evented-echo", "evented-echo-pool"])
def echo(request, tmp_path_factory):
    yield from _run(request.param, tmp_path_factory)


@pytest.fixture(scope="module", params=["evented-echo", "evented-echo-pool"])
def evented(request, tmp_path_factory):
    yield from _run(request.param, tmp_path_factory)


@pytest.fixture
def member(echo):
    """member(room_id) -> a Socket.IO client in that room of the peer under test."""
    with peers_on(echo) as connect:
        def join(room_id):
            user_id = new_user_id()
            return connect(user_id, url=f"{echo.url}/?room={room_id}&userID={user_id}",
                           query=False, live=False, join=False)
        yield join


def test_a_message_comes_back_once_to_the_sender_and_three_times_to_the_other_member(member):
    room, other_room = new_user_id() + ":1", new_user_id() + ":2"
    sender, recipient, outsider = member(room), member(room), member(other_room)
    sender.emit("message", MESSAGE)
    recipient.wait_for("message")
    settle(sender, recipient, outsider)
    assert sender.got() == [("message", MESSAGE)]
    assert recipient.got() == [("message", MESSAGE)] * 3
    assert outsider.got() == []


def test_an_event_that_asks_for_an_ack_gets_ok_and_nothing_else(member):
    room = new_user_id() + ":1"
    caller, other = member(room), member(room)
    assert caller.call("joinRoom", caller.user_id) == {"ok": True}
    settle(caller, other)
    assert caller.got() == [] and other.got() == []


def _frame(data, opcode=ABNF.OPCODE_TEXT, fin=1):
    """A masked client frame, as bytes."""
    return ABNF.create_frame(data, opcode, fin).format()


def _until_closed(ws):
    """Everything the server writes until it closes the connection."""
    ws.sock.settimeout(5)
    data = b""
    while chunk := ws.sock.recv(4096):
        data += chunk
    return data


def test_a_frame_arriving_a_byte_at_a_time_is_one_message(evented):
    ws = raw_socket(evented, new_user_id())
    for byte in _frame('425["joinRoom","1"]'):
        ws.sock.sendall(bytes([byte]))
    assert ws.recv() == '435[{"ok":true}]'
    ws.close()


def test_a_fragmented_message_with_a_ping_between_its_fragments(evented):
    ws = raw_socket(evented, new_user_id())
    ws.sock.sendall(_frame("42", fin=0) + _frame("are you there", ABNF.OPCODE_PING)
                    + _frame('6["joinRoom","1"]', ABNF.OPCODE_CONT))
    assert ws.recv_data_frame(True)[1].data == b"are you there"  # the pong
    assert ws.recv() == '436[{"ok":true}]'
    ws.close()


@pytest.mark.parametrize("frames,code", [
    (_frame((1000).to_bytes(2, "big"), ABNF.OPCODE_CLOSE), 1000),
    (_frame(b'42["x","\xff"]'), 1007),
    (b"\x81\x0240", 1002),
    (_frame("x", ABNF.OPCODE_CONT), 1002),
    (_frame("42", fin=0) + _frame("42"), 1002),
    (b"\x81\xff" + (2_000_000).to_bytes(8, "big") + b"mask", 1009),
], ids=["client-close", "invalid-utf8", "unmasked", "continuation-first", "text-inside-fragments",
        "over-max-payload"])
def test_the_server_answers_with_a_close_frame_and_hangs_up(evented, frames, code):
    ws = raw_socket(evented, new_user_id())
    ws.sock.sendall(frames)
    assert _until_closed(ws) == b"\x88\x02" + code.to_bytes(2, "big")
    ws.sock.close()


def test_a_plain_http_request_is_refused(evented):
    with socket.create_connection(("127.0.0.1", evented.port), timeout=5) as sock:
        sock.sendall(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 400 ")
