"""A socket whose connection ends in the hard moments of a recovery leaves nothing behind, live:
once things settle, the process holds no socket in its rooms whose Engine.IO session ended, and
none among its sockets, and an emit to everyone is sent to nobody gone.

A reconnect storm on a starved process left 473 such sockets, each sent every emit to its rooms
until the run ended (bench/recovery.md): their pings had gone unanswered while their CONNECTs
waited (a socket's packets, its PONGs with them, wait behind its CONNECT), the write of the
CONNECT reply found them overdue and ended their Engine.IO sessions, and python-socketio, which
does not disconnect a socket still connecting, never did.

The server restores one socket at a time (HOMEAPP_RECOVERY_CONCURRENCY=1), so that reconnects
queue for their turns, and pings every second. A process without recovery answers the CONNECT
with python-socketio's own handler, which left such sockets too.
"""
import json
import signal
import threading
import time

import pytest
import websocket

from homeapp.engine.sessions import digest
from homeapp.store import redis_keys
from tests.cluster import UNLIMITED, all_at_once
from tests.live import new_user_id
from tests.processes import ServerProcess, wait_until
from tests.recovering import RawClient, metric, reset

PING_TIMEOUT = 2  # seconds, after a ping interval of 1
OPEN = "homeapp_connected_sockets"
ENDED = "homeapp_ended_sockets_in_rooms"


@pytest.fixture(scope="module")
def server(module_redis):
    process = ServerProcess(dict(
        UNLIMITED, REDIS_URL=module_redis.url, HOMEAPP_RECOVERY_SECONDS=30, HOMEAPP_RECOVERY_CONCURRENCY=1,
        HOMEAPP_PING_INTERVAL=1, HOMEAPP_PING_TIMEOUT=PING_TIMEOUT,
        HOMEAPP_LOG_LEVEL="DEBUG")).start()  # a send to a socket gone is logged at debug level
    yield process
    process.kill()  # its shutdown would hold its users' presence for the grace


@pytest.fixture(scope="module")
def plain_server():
    """Without Redis, nor recovery."""
    process = ServerProcess(dict(UNLIMITED, HOMEAPP_PING_INTERVAL=1, HOMEAPP_PING_TIMEOUT=PING_TIMEOUT,
                                 HOMEAPP_LOG_LEVEL="DEBUG")).start()
    yield process
    process.stop()


def member(server, user_id=None):
    """A RawClient of a new user, live and on its user channel."""
    user_id = user_id or new_user_id()
    client = RawClient(server, user_id)
    client.user_id = user_id
    assert client.call("addOnlineUser", {"userID": user_id, "userUsername": f"user{user_id}"}) == {"ok": True}
    assert client.call("joinRoom", user_id) == {"ok": True}
    return client


def away(server, module_redis, count):
    """`count` members whose connections dropped, once the server kept their sessions."""
    clients = [member(server) for _ in range(count)]
    for client in clients:
        client.drop()
    keys = [redis_keys.recovery_session(digest(client.pid)) for client in clients]
    store = module_redis.client()
    wait_until(lambda: store.exists(*keys) == count, 10, "the server never kept the sessions")
    return clients


def open_socket(server, user_id):
    """A websocket past its Engine.IO handshake, not yet connected to the namespace."""
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket&userID={user_id}", timeout=10)
    assert ws.recv().startswith("0")
    return ws


def connect_packet(client=None):
    """A namespace CONNECT: recovering `client`'s session, or a fresh one."""
    return "40" + (json.dumps({"pid": client.pid, "offset": client.offset}) if client else "")


def event_packet(event, data):
    return "42" + json.dumps([event, data])


def read_to_the_end(ws, pong=False):
    """Read until the connection ends; with `pong`, answering each ping at once."""
    try:
        while True:
            text = ws.recv()
            if not text:
                break
            if pong and text == "2":
                ws.send("3")
    except (websocket.WebSocketException, OSError):
        pass
    ws.close()


def assert_nothing_left(server):
    """Once every client is gone: no socket open, none in the rooms after its session ended, and
    an emit to everyone (a new user's presence) sent to nobody else than its one recipient."""
    deadline = time.monotonic() + 15
    while True:
        left = metric(server, OPEN), metric(server, ENDED)
        if left == (0, 0):
            break
        assert time.monotonic() < deadline, \
            f"left behind: {left[0]:.0f} sockets open, {left[1]:.0f} in rooms after their session ended"
        time.sleep(0.2)
    failed = server.log().count("Cannot send to sid")
    witness = member(server)
    announced = ("newOnlineUser", [{"type": "Add", "userID": witness.user_id}])
    deadline = time.monotonic() + 10
    while announced not in [(event, args) for event, args, _ in witness.events]:
        assert time.monotonic() < deadline, f"the witness was never announced: {witness.events}"
        witness.quiet(0.1)
    assert server.log().count("Cannot send to sid") == failed
    witness.close()
    wait_until(lambda: metric(server, OPEN) == 0, 10, "the witness never closed")


def connect_late(server, clients, fresh):
    """Connect to the namespace with pings unanswered for longer than the ping timeout, as when
    the PONGs wait behind the CONNECT: the write of the CONNECT reply finds them overdue and ends
    the session, with the socket's next packets still waiting. Recovering each of `clients`, and
    `fresh` more afresh. (The server may also find one overdue before its CONNECT comes.)"""
    def connect(client, user_id):
        def run():
            ws = open_socket(server, user_id)
            assert ws.recv() == "2"  # pinged, never answered
            time.sleep(PING_TIMEOUT + 0.1)
            ws.send(connect_packet(client))
            ws.send(event_packet("addOnlineUser", {"userID": user_id, "userUsername": "late"}))
            ws.send(event_packet("joinRoom", user_id))
            read_to_the_end(ws)
        return run

    all_at_once([connect(client, client.user_id) for client in clients]
                + [connect(None, new_user_id()) for _ in range(fresh)])


def test_a_reconnect_whose_pings_went_unanswered_is_disconnected(server, module_redis):
    connect_late(server, away(server, module_redis, 3), fresh=2)
    assert_nothing_left(server)


def test_without_recovery_a_connect_whose_pings_went_unanswered_is_disconnected(plain_server):
    """python-socketio's own CONNECT, as a process without recovery answers it."""
    connect_late(plain_server, (), fresh=5)
    assert_nothing_left(plain_server)


def test_reconnects_that_drop_while_they_wait_or_restore_are_disconnected(server, module_redis):
    """Eight reconnects at once, restored one at a time, each dropping at its own moment: while it
    waits for its turn, or while its restore is under way."""
    gone = away(server, module_redis, 8)
    recovered = metric(server, "homeapp_recoveries_total", outcome="recovered")

    def reconnect(client, pause):
        def run():
            ws = open_socket(server, client.user_id)
            ws.send(connect_packet(client))
            ws.send(event_packet("joinRoom", client.user_id))
            time.sleep(pause)
            reset(ws)
        return run

    all_at_once([reconnect(client, 0.005 * i) for i, client in enumerate(gone)])
    # their packets wait behind their CONNECTs, the end of their connections too: they are
    # restored, their disconnects handled after
    wait_until(lambda: metric(server, "homeapp_recoveries_total", outcome="recovered") > recovered,
               10, "no reconnect was restored")
    assert_nothing_left(server)


def test_a_superseded_socket_and_its_successor_that_drops_are_disconnected(server):
    """A reconnect with the pid of a socket still open ends that one (a supersede) and recovers
    in its place; both connections then end at once, the new one's restore maybe under way."""
    olds = [member(server) for _ in range(3)]
    news = []
    for old in olds:
        ws = open_socket(server, old.user_id)
        ws.send(connect_packet(old))
        news.append(ws)
    for old in olds:
        deadline = time.monotonic() + 10
        while not old.disconnected:  # the namespace DISCONNECT of the supersede
            assert time.monotonic() < deadline, "the old socket was never superseded"
            old.quiet(0.1)
    for old, ws in zip(olds, news):
        reset(ws)
        old.drop()
    assert_nothing_left(server)


def test_reconnects_that_wait_through_a_stall_are_disconnected(server, module_redis):
    """Clients that answer every ping at once, reconnecting while the process stalls (stopped, as a
    process starved of CPU) for longer than the ping timeout: their answers wait behind their
    CONNECTs, queued for their turns, which find them overdue when they come. (Those whose
    CONNECT was done before the stall stay connected.)"""
    gone = away(server, module_redis, 10)
    sent = threading.Semaphore(0)
    sockets = []

    def reconnect(client):
        ws = open_socket(server, client.user_id)
        sockets.append(ws)
        assert ws.recv() == "2"
        ws.send(connect_packet(client))
        ws.send("3")  # behind the CONNECT
        sent.release()
        read_to_the_end(ws, pong=True)

    threads = [threading.Thread(target=reconnect, args=(client,), daemon=True) for client in gone]
    for thread in threads:
        thread.start()
    for _ in gone:
        assert sent.acquire(timeout=10), "a reconnect never sent its CONNECT"
    server.proc.send_signal(signal.SIGSTOP)
    time.sleep(PING_TIMEOUT + 1)
    server.proc.send_signal(signal.SIGCONT)
    wait_until(lambda: not all(thread.is_alive() for thread in threads), 10,
               "the server ended no reconnect's connection")
    for ws in sockets:
        reset(ws)
    for thread in threads:
        thread.join(5)
    assert_nothing_left(server)
