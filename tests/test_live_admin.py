"""The Socket.IO Admin UI's namespace and page on a live server, beside ordinary users."""
import signal
import threading
import time

import pytest
import requests

from tests import payloads
from tests.conftest import FAST
from tests.credentials import ADMIN, ADMIN_ENV
from tests.live import Peer, open_room, peers_on, refusal, room_of, settle

NAMESPACE = "/admin"


# the table of wrong credentials below would lock its own address out after five
# (tests/test_live_admin_limits.py tests that limit)
NO_LOGIN_LIMIT = {"HOMEAPP_ADMIN_LOGIN_ATTEMPTS": 1000}


@pytest.fixture(scope="module")
def admin_server(server_factory):
    return server_factory(**ADMIN_ENV, **NO_LOGIN_LIMIT, **FAST)


@pytest.fixture(scope="module")
def development_server(server_factory):
    return server_factory(HOMEAPP_ADMIN_MODE="development", **ADMIN_ENV, **NO_LOGIN_LIMIT, **FAST)


def admin(server):
    """An Admin UI client on the admin namespace, logged in."""
    return Peer(server.url, query=False, namespace=NAMESPACE, auth=dict(ADMIN))


@pytest.mark.parametrize("auth", [
    None,
    {},
    {"username": ADMIN["username"], "password": "a long admin passphrasf"},
    {"username": "operator2", "password": ADMIN["password"]},
    {"username": ADMIN["username"]},
    {"username": ADMIN["username"], "password": [ADMIN["password"]]},
    {"token": ADMIN["password"]},
], ids=["none", "empty", "wrong-password", "wrong-username", "no-password", "password-list", "token"])
def test_wrong_credentials_are_refused(admin_server, auth):
    assert refusal(admin_server.url, namespaces=[NAMESPACE], auth=auth) == "invalid credentials"


def test_the_admin_sees_config_and_server_stats_while_users_chat(admin_server):
    with peers_on(admin_server) as connect:
        # one user on a websocket from the start, one upgraded from long-polling: both frame paths
        a, b = connect(), connect(transports=("polling", "websocket"))
        room = room_of(a, b)
        open_room(room, a, b)
        sent, stop = [], threading.Event()

        def chat():  # ordinary traffic, all the while the admin logs in and watches
            while not stop.is_set():
                text = f"while watched {len(sent)}"
                sent.append((text, a.call("message", payloads.message(a.user_id, room, text))["ok"]))
                time.sleep(0.02)

        talker = threading.Thread(target=chat)
        talker.start()
        try:
            watcher = admin(admin_server)
            try:
                assert watcher.wait_for("config") == {"supportedFeatures": ["AGGREGATED_EVENTS"]}
                # one server_stats every 2 s, each with what was counted since the one before
                stats = watcher.wait_for("server_stats", lambda s: s["clientsCount"] >= 3 and {
                    "packetsIn", "packetsOut"} <= {e["type"] for e in s["aggregatedEvents"]}, timeout=10)
            finally:
                watcher.close()
        finally:
            stop.set()
            talker.join(10)
        assert len(sent) > 10 and all(ok for _, ok in sent)
        namespaces = {n["name"]: n["socketsCount"] for n in stats["namespaces"]}
        assert namespaces["/"] >= 2 and namespaces[NAMESPACE] >= 1
        assert stats["pid"] == admin_server.proc.pid
        assert {"bytesIn", "bytesOut"} <= {event["type"] for event in stats["aggregatedEvents"]}
        # production mode reports figures, never the sockets or their events
        assert {e for e, _ in watcher.events} <= {"config", "server_stats"}
        settle(a, b)
        for peer in (a, b):
            assert [p["message"] for _, p in peer.got("messageRoom")] == [text for text, _ in sent]


def test_the_page_is_served_from_this_server_only(admin_server):
    page = requests.get(admin_server.url + "/admin", timeout=5)
    assert page.status_code == 200 and page.url == admin_server.url + "/admin/"
    assert "Socket.IO Admin UI" in page.text
    assert "https://" not in page.text  # no stylesheet or font from a CDN
    assert requests.get(admin_server.url + "/static/node_modules/@mdi/font/css/materialdesignicons.min.css",
                        timeout=5).status_code == 200
    assert requests.get(admin_server.url + "/admin/favicon.png", timeout=5).status_code == 200
    assert requests.get(admin_server.url + "/admin/../app.py", timeout=5).status_code == 404


def test_without_the_settings_there_is_no_admin_page_and_no_namespace(memory_server):
    assert requests.get(memory_server.url + "/admin/", timeout=5).status_code == 404
    assert refusal(memory_server.url, namespaces=[NAMESPACE], auth=dict(ADMIN)) == "Unable to connect"


def test_development_mode_reports_sockets_and_events(development_server):
    watcher = admin(development_server)
    try:
        with peers_on(development_server) as connect:
            a, b = connect(), connect()
            assert a.call("message", payloads.message(a.user_id, room_of(a, b), "seen by the admin"))["ok"]
            received = watcher.wait_for("event_received", lambda e: e[2][0] == "message")
            assert received[1] == a.client.get_sid()
        assert received[2][1]["data"]["message"] == "seen by the admin"
        features = watcher.wait_for("config")["supportedFeatures"]
        assert {"ALL_EVENTS", "EMIT", "DISCONNECT"} <= set(features)
    finally:
        watcher.close()


@pytest.mark.parametrize("forged", [("disconnect",), ("disconnect", "transport close"),
                                    ("connect", {"QUERY_STRING": "userID=1"})],
                         ids=["disconnect", "disconnect-with-reason", "connect"])
def test_development_mode_takes_no_forged_lifecycle_event_for_real(development_server, forged):
    """The admin's event hook took a client's 42["disconnect"] for the real one: it forgot the
    socket, the real disconnect then failed before the app saw it, and the user stayed online."""
    watcher = admin(development_server)
    try:
        with peers_on(development_server) as connect:
            observer = connect(live=False, join=False)
            user = connect()
            sid = user.client.get_sid()
            ack = user.client.call(*forged, timeout=5)
            assert (ack["ok"], ack["code"], ack["event"]) == (False, "UNKNOWN_EVENT", forged[0])
            user.close()
            observer.wait_for("newOnlineUser", lambda p: p == {"type": "Remove", "userID": user.user_id})
            gone = watcher.wait_for("socket_disconnected", lambda e: e[1] == sid)
    finally:
        watcher.close()
    assert gone[0] == "/"
    # the socket came and went once, as far as the admin is told
    assert [e for e, p in watcher.events if (e == "socket_connected" and p[0]["id"] == sid)
            or (e == "socket_disconnected" and p[1] == sid)] == ["socket_connected", "socket_disconnected"]


def test_an_unknown_event_still_reaches_no_one_with_an_admin_watching(admin_server):
    watcher = admin(admin_server)
    try:
        with peers_on(admin_server) as connect:
            a, b = connect(), connect()
            ack = a.call("noSuchEvent", {"x": 1})
            assert (ack["ok"], ack["code"]) == (False, "UNKNOWN_EVENT")
            settle(a, b)
            assert a.got() == [] and b.got() == []
    finally:
        watcher.close()


def test_sigterm_closes_the_admins_socket_too(server_factory):
    """The shutdown closed the users' sockets only: an admin's kept the process up for the whole
    HOMEAPP_SHUTDOWN_GRACE, and its connection was cut at the end instead of closed."""
    grace = 30
    server = server_factory(HOMEAPP_SHUTDOWN_GRACE=grace, **ADMIN_ENV, **FAST)
    user = Peer(server.url, "1")
    watcher = admin(server)
    try:
        watcher.wait_for("config")
        started = time.monotonic()
        assert server.stop(signal.SIGTERM, timeout=grace + 10) == 0
        assert time.monotonic() - started < grace / 2
        assert watcher.ended.wait(5) and user.ended.wait(5)
    finally:
        watcher.close()
        user.close()
