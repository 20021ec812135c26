"""The benchmark's echo peers speak one protocol: the evented prototype
(bench/peers/evented_echo.py), with its handlers inline and in a greenlet pool, answers a
Socket.IO client as the gevent-websocket echo does. (The frame parser's cases moved to the
product's, homeapp/transport/frames.py: tests/test_evented.py and tests/test_worker.py.)

Each peer runs as the benchmark starts it (bench.targets, pinned to core 0); the smoke run
(test_bench_smoke.py) drives the inline one with the load generator, not the pool one.
"""
import socket

import pytest

from bench.targets import TARGETS, RunningServer
from tests.live import new_user_id, peers_on, settle

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


def test_a_plain_http_request_is_refused(evented):
    with socket.create_connection(("127.0.0.1", evented.port), timeout=5) as sock:
        sock.sendall(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 400 ")
