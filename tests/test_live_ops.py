"""Operations, live: health and readiness, metrics, logs with event context, graceful shutdown."""
import json
import re
import signal
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from homeapp.store import redis_keys
from tests import payloads
from tests.conftest import FAST
from tests.live import Peer, new_user_id, room_of, settle
from tests.processes import ServerProcess, wait_until

GUNICORN = ("-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app")


def scrape(server, **headers):
    """The server's metrics as {(sample name, ((label, value), ...)): value}."""
    response = requests.get(server.url + "/metrics", headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def emitted(before, after):
    """How many emits of each event name happened between two scrapes."""
    names = {dict(key[1])["event"] for key in after if key[0] == "homeapp_emits_total"}
    deltas = {n: value(after, "homeapp_emits_total", event=n) - value(before, "homeapp_emits_total", event=n)
              for n in names}
    return {n: d for n, d in deltas.items() if d}


def probe(server, path):
    response = requests.get(server.url + path, timeout=5)
    return response.status_code, response.json()


@pytest.fixture(scope="module")
def ops_server(server_factory):
    """A server of this module's own, so that its counters move only with what the tests here do."""
    return server_factory(**FAST)


@pytest.fixture
def peers(ops_server):
    """peers(n) -> n sockets with their identity from the handshake; closed, and gone, at the end."""
    opened = []

    def make(count, user_id=None):
        made = [Peer(ops_server.url, user_id or new_user_id()) for _ in range(count)]
        opened.extend(made)
        return made

    yield make
    for peer in opened:
        peer.close()
    # a disconnect emits too (typingMessageStop, newOnlineUser): wait until it has happened
    wait_until(lambda: value(scrape(ops_server), "homeapp_connected_sockets") == 0, 5,
               "sockets stayed open")


# ---------------------------------------------------------------- health and readiness

@pytest.fixture(scope="module")
def redis_server_with_own_redis(server_factory, module_redis):
    # a short presence timeout: the keeper, which declares an outage over, probes every second
    return server_factory(REDIS_URL=module_redis.url, HOMEAPP_READY_TIMEOUT=0.3,
                          HOMEAPP_REDIS_TIMEOUT=0.3, HOMEAPP_PRESENCE_TIMEOUT=3, **FAST)


def set_redis(redis, up):
    running = redis.proc is not None and redis.proc.poll() is None
    if up and not running:
        redis.start()
    elif not up and running:
        redis.stop()


@pytest.mark.parametrize("store, redis_up, path, status, state", [
    ("memory", None, "/healthz", 200, "ok"),
    ("memory", None, "/readyz", 200, "ready"),
    ("redis", True, "/healthz", 200, "ok"),
    ("redis", True, "/readyz", 200, "ready"),
    ("redis", False, "/healthz", 200, "ok"),
    ("redis", False, "/readyz", 503, "unavailable"),
])
def test_health_and_readiness(request, module_redis, store, redis_up, path, status, state):
    server = request.getfixturevalue("ops_server" if store == "memory" else "redis_server_with_own_redis")
    if redis_up is not None:
        set_redis(module_redis, redis_up)
    started = time.monotonic()
    answer = probe(server, path)
    assert time.monotonic() - started < 2  # a load balancer's probe never hangs
    assert answer[0] == status and answer[1]["status"] == state, answer
    if status == 503:
        assert answer[1]["reason"].startswith("redis unreachable")


def test_redis_outage_is_counted_and_readiness_returns_with_redis(redis_server_with_own_redis, module_redis):
    server = redis_server_with_own_redis
    set_redis(module_redis, True)
    wait_until(lambda: probe(server, "/readyz")[0] == 200, 10, "not ready to begin with")
    before = scrape(server)
    set_redis(module_redis, False)
    peer = Peer(server.url, new_user_id())
    try:
        ack = peer.call("addOnlineUser", {"userID": peer.user_id, "userUsername": "x"})
        assert ack["code"] == "UNAVAILABLE"
        during = scrape(server)
        assert probe(server, "/readyz") == (503, {"status": "unavailable", "reason":
                                                  "redis unreachable: presence events answer UNAVAILABLE"})
        set_redis(module_redis, True)
        # ready once the presence keeper has seen Redis answer for a while and re-asserted
        wait_until(lambda: probe(server, "/readyz")[0] == 200, 10, "never ready again")
        after = scrape(server)
    finally:
        peer.close()
        set_redis(module_redis, True)
    # the presence keeper's probes fail too while Redis is down: at least the event's call
    assert value(during, "homeapp_redis_errors_total") >= value(before, "homeapp_redis_errors_total") + 1
    assert value(during, "homeapp_events_received_total", event="addOnlineUser", outcome="UNAVAILABLE") == \
        value(before, "homeapp_events_received_total", event="addOnlineUser", outcome="UNAVAILABLE") + 1
    assert (value(before, "homeapp_redis_outage"), value(during, "homeapp_redis_outage"),
            value(after, "homeapp_redis_outage")) == (0, 1, 0)


# ---------------------------------------------------------------- metrics

def _reversed(room):
    """The room's id with its members in the wrong order."""
    return ":".join(sorted(room.split(":"), key=int, reverse=True))


@pytest.mark.parametrize("event, build, label, outcome, emits", [
    ("message", lambda a, b, room: payloads.message(a.user_id, room), "message", "ok",
     {"messageRoom": 1, "messagePage": 1, "messageResponseNotify": 1}),
    ("message", lambda a, b, room: payloads.message(a.user_id, room, contact=True), "message", "ok",
     {"messageRoom": 1, "firstMessageConversation": 1, "messageResponseNotify": 1}),
    ("startTypingRoom", lambda a, b, room: payloads.typing(a.user_id, room), "startTypingRoom", "ok",
     {"typingMessageStart": 1}),
    ("message", lambda a, b, room: payloads.message(a.user_id, room, roomID=_reversed(room)), "message",
     "VALIDATION_ERROR", {"error": 1}),
    ("message", lambda a, b, room: payloads.message(a.user_id, room, message=""), "message",
     "VALIDATION_ERROR", {"error": 1}),
    ("message", lambda a, b, room: payloads.message(b.user_id, room), "message", "FORBIDDEN", {"error": 1}),
    ("newComment", lambda a, b, room: {"comment": "x"}, "<unknown>", "UNKNOWN_EVENT", {}),
], ids=["message", "first contact", "typing", "bad room id", "empty text", "someone else's message",
        "unknown event"])
def test_events_move_their_counters(ops_server, peers, event, build, label, outcome, emits):
    a, b = peers(2)
    room = room_of(a, b)
    for peer in (a, b):
        assert peer.call("chatRoom.join", room) == {"ok": True}
    before = scrape(ops_server)
    ack = a.call(event, build(a, b, room))
    assert ack.get("code", "ok") == outcome
    settle(a, b)
    after = scrape(ops_server)
    assert value(after, "homeapp_events_received_total", event=label, outcome=outcome) == \
        value(before, "homeapp_events_received_total", event=label, outcome=outcome) + 1
    received = [k for k in after if k[0] == "homeapp_events_received_total" and after[k] != before.get(k, 0)]
    assert len(received) == 1, received
    assert emitted(before, after) == emits
    if label != "<unknown>":
        assert value(after, "homeapp_event_duration_seconds_count", event=label) == \
            value(before, "homeapp_event_duration_seconds_count", event=label) + 1


def test_rate_limited_events_are_counted(server_factory):
    server = server_factory(HOMEAPP_TYPING_RATE=0.01, HOMEAPP_TYPING_BURST=1)
    a, b = Peer(server.url, new_user_id()), Peer(server.url, new_user_id())
    try:
        room = room_of(a, b)
        before = scrape(server)
        assert a.call("startTypingRoom", payloads.typing(a.user_id, room)) == {"ok": True}
        assert a.call("stopTypingRoom", payloads.typing(a.user_id, room))["code"] == "RATE_LIMITED"
        after = scrape(server)
    finally:
        a.close(), b.close()
    assert value(after, "homeapp_events_received_total", event="stopTypingRoom", outcome="RATE_LIMITED") == \
        value(before, "homeapp_events_received_total", event="stopTypingRoom", outcome="RATE_LIMITED") + 1
    assert "RATE_LIMITED" not in server.log()  # a flood of refusals is not a flood of log lines


def test_socket_and_user_gauges(ops_server, peers):
    user_id = new_user_id()
    tabs = peers(2, user_id)
    peers(1)  # connected, never live
    for tab in tabs:
        assert tab.call("addOnlineUser", {"userID": user_id, "userUsername": "t"}) == {"ok": True}
    samples = scrape(ops_server)
    assert value(samples, "homeapp_connected_sockets") == 3
    assert value(samples, "homeapp_online_users") == 1


@pytest.fixture(scope="module")
def token_server(server_factory):
    return server_factory(HOMEAPP_METRICS_TOKEN="s3cret")


@pytest.mark.parametrize("authorization, status", [
    (None, 401),
    ("Bearer wrong", 401),
    ("Basic s3cret", 401),
    ("Bearer s3cret", 200),
    ("bearer s3cret", 200),
])
def test_metrics_token(token_server, authorization, status):
    server = token_server
    headers = {"Authorization": authorization} if authorization else {}
    assert requests.get(server.url + "/metrics", headers=headers, timeout=5).status_code == status
    assert probe(server, "/healthz")[0] == 200  # only /metrics is protected


# ---------------------------------------------------------------- logs

SECRET = "the-secret-text-{}"


def _json_lines(log):
    return [json.loads(line) for line in log.splitlines() if line.strip()]


_TEXT_LINE = re.compile(r"^\S+ \S+ (?P<level>[A-Z]+) (?P<logger>\S+) "
                        r"\[sid=(?P<sid>\S+) user_id=(?P<user_id>\S+) event=(?P<event>\S+)\]: (?P<message>.*)$")


def _text_lines(log):
    return [m.groupdict() for m in map(_TEXT_LINE.match, log.splitlines()) if m]


@pytest.fixture(scope="module", params=["json", "text"])
def log_server(request, server_factory):
    return request.param, server_factory(HOMEAPP_LOG_FORMAT=request.param, HOMEAPP_LOG_LEVEL="INFO", **FAST)


@pytest.mark.parametrize("build, code", [
    (lambda a, b, room, text: payloads.message(a.user_id, room, text, roomID=_reversed(room)),
     "VALIDATION_ERROR"),
    (lambda a, b, room, text: payloads.message(a.user_id, room, text + "x" * 6000), "VALIDATION_ERROR"),
    (lambda a, b, room, text: payloads.message(b.user_id, room, text), "FORBIDDEN"),
], ids=["bad room id", "text too long", "someone else's message"])
def test_refusal_is_logged_with_its_context_and_without_the_text(log_server, build, code):
    fmt, server = log_server
    a, b = Peer(server.url, new_user_id()), Peer(server.url, new_user_id())
    secret = SECRET.format(new_user_id())
    try:
        assert a.call("message", build(a, b, room_of(a, b), secret))["code"] == code
        sid = a.client.get_sid()
        parse = _json_lines if fmt == "json" else _text_lines

        def refusal_lines():
            return [line for line in parse(server.log()) if line.get("sid") == sid]

        wait_until(refusal_lines, 5, f"no log line for socket {sid}:\n{server.log()}")
    finally:
        a.close(), b.close()
    [line] = refusal_lines()
    assert (line["level"], line["user_id"], line["event"]) == ("INFO", a.user_id, "message")
    assert line["message"].startswith(f"refused {code}")
    assert secret not in server.log()
    if fmt == "json":
        _json_lines(server.log())  # every line of the log is one JSON object


# ---------------------------------------------------------------- shutdown

def start(env, entry=("app.py",)):
    return ServerProcess({**FAST, **env}).start(entry)


def live_peer(server, user_id=None):
    peer = Peer(server.url, user_id or new_user_id())
    assert peer.call("addOnlineUser", {"userID": peer.user_id, "userUsername": "u"}) == {"ok": True}
    return peer


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_sigterm_closes_every_socket_and_exits_0(redis_server, store):
    server = start({"REDIS_URL": redis_server.url} if store == "redis" else {})
    first = live_peer(server)
    sockets = [first, live_peer(server, first.user_id), live_peer(server), Peer(server.url)]
    try:
        started = time.monotonic()
        assert server.stop(signal.SIGTERM) == 0
        assert time.monotonic() - started < 5
        wait_until(lambda: not any(p.client.connected for p in sockets), 5, "a client stayed connected")
    finally:
        server.kill()
        for peer in sockets:
            peer.close()
    log = server.log()
    assert "shutting down: closing 4 sockets" in log
    assert "shutdown: 4 sockets closed, 0 left open" in log
    if store == "redis":
        online = redis_server.client().smembers(redis_keys.ONLINE_USERS)
        assert not online & {first.user_id, sockets[2].user_id}


@pytest.mark.parametrize("entry, signum", [
    (("app.py",), signal.SIGTERM),
    (("app.py",), signal.SIGINT),
    (GUNICORN, signal.SIGTERM),
    (GUNICORN, signal.SIGINT),  # gunicorn's quick shutdown: worker_int
    (GUNICORN, signal.SIGQUIT),
], ids=["app.py-TERM", "app.py-INT", "gunicorn-TERM", "gunicorn-INT", "gunicorn-QUIT"])
def test_stop_signal_takes_users_offline_at_once_everywhere(redis_server, redis_backed_server, entry, signum):
    """Another process sharing Redis hears Remove for each user of the stopped one, at once."""
    stopping = start({"REDIS_URL": redis_server.url, "HOMEAPP_ALLOW_OPEN": "1"}, entry)
    observer = Peer(redis_backed_server.url)
    first = live_peer(stopping)
    users = [first, live_peer(stopping, first.user_id), live_peer(stopping)]
    gone = {first.user_id, users[2].user_id}
    try:
        online = set(requests.get(redis_backed_server.url + "/api/online-users", timeout=5).json())
        assert gone <= online
        started = time.monotonic()
        stopping.proc.send_signal(signum)
        for user_id in gone:
            observer.wait_for("newOnlineUser", lambda p, u=user_id: p == {"type": "Remove", "userID": u})
        assert time.monotonic() - started < 2
        assert stopping.proc.wait(15) == 0
        settle(observer)
        removed = [p["userID"] for p in observer.presence_of(*gone) if p["type"] == "Remove"]
        assert sorted(removed) == sorted(gone)  # once each, though one user had two tabs
        online = set(requests.get(redis_backed_server.url + "/api/online-users", timeout=5).json())
        assert not gone & online
    finally:
        stopping.kill()
        observer.close()
        for peer in users:
            peer.close()


def test_sigterm_with_redis_down_still_exits_0_within_the_grace(module_redis):
    set_redis(module_redis, True)
    server = start({"REDIS_URL": module_redis.url, "HOMEAPP_REDIS_TIMEOUT": 0.3, "HOMEAPP_SHUTDOWN_GRACE": 3})
    peers = [live_peer(server) for _ in range(3)]
    try:
        module_redis.stop()
        started = time.monotonic()
        assert server.stop(signal.SIGTERM) == 0
        assert time.monotonic() - started < 4
    finally:
        server.kill()
        for peer in peers:
            peer.close()
        set_redis(module_redis, True)
    assert "other processes will reap them" in server.log()
