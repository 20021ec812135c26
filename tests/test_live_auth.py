"""jwt and session identities on live servers: who gets in, who is refused and why, and when they go."""
import os
import subprocess
import sys
import time
from urllib.parse import quote

import pytest
import redis
import requests
import websocket

from homeapp.store import redis_keys
from tests import credentials as cred
from tests import payloads
from tests.conftest import FAST
from tests.credentials import JWT_SECRET, OLD_SESSION_SECRET, SESSION_SECRET
from tests.live import Peer, assert_refused, new_user_id, refusal, room_of, settle
from tests.processes import ROOT, ServerProcess, free_port

APP_ORIGIN = "https://app.example"
GUNICORN = ("-m", "gunicorn", "-c", "gunicorn.conf.py")


@pytest.fixture(scope="module")
def jwt_server(server_factory, redis_server):
    return server_factory(HOMEAPP_AUTH="jwt", HOMEAPP_JWT_SECRET=JWT_SECRET, HOMEAPP_JWT_LEEWAY=0,
                          HOMEAPP_CORS_ORIGINS=APP_ORIGIN, REDIS_URL=redis_server.url, **FAST)


@pytest.fixture(scope="module")
def session_server(server_factory, redis_server):
    return server_factory(HOMEAPP_AUTH="session", REDIS_URL=redis_server.url,
                          HOMEAPP_SESSION_SECRET=f"{SESSION_SECRET},{OLD_SESSION_SECRET}", **FAST)


@pytest.fixture
def peers():
    made = []
    yield made
    for peer in made:
        peer.close()


def cookie_header(signed, name="sessionLog"):
    """A Cookie header carrying the signed value URL-encoded, as express sets it."""
    return {"Cookie": f"theme=dark; {name}={quote(signed, safe='')}"}


class Credentials:
    """Connects peers on one mode's server with that mode's proof of identity."""

    def __init__(self, mode, server, redis_client, peers):
        self.mode, self.server, self.redis, self.peers = mode, server, redis_client, peers

    def connect_kwargs(self, user_id, username, expires_in=60):
        if self.mode == "jwt-auth":
            return {"auth": {"token": cred.token(user_id, username, expires_in)}}
        if self.mode == "jwt-header":
            return {"headers": {"Authorization": f"Bearer {cred.token(user_id, username, expires_in)}"}}
        session_id = f"sid-{user_id}-{time.monotonic_ns()}"
        cred.store_session(self.redis, session_id, int(user_id), username, expires_in)
        return {"headers": cookie_header(cred.python_signed(session_id))}

    def peer(self, user_id=None, username=None, expires_in=60, live=True):
        """A proven user; `live` sends addOnlineUser and joinRoom with a payload username it ignores."""
        user_id = user_id or new_user_id()
        username = username or f"proven{user_id}"
        peer = Peer(self.server.url, user_id, username, query=False,
                    **self.connect_kwargs(user_id, username, expires_in))
        self.peers.append(peer)
        if live:
            assert peer.call("addOnlineUser", {"userID": user_id, "userUsername": "impostor"}) == {"ok": True}
            assert peer.call("joinRoom", user_id) == {"ok": True}
        return peer


@pytest.fixture(params=["jwt-auth", "jwt-header", "session"])
def proven(request, redis_server, peers):
    """Peers proven by a token in `auth`, a token in the Bearer header, or a session cookie."""
    server = request.getfixturevalue("session_server" if request.param == "session" else "jwt_server")
    return Credentials(request.param, server, redis_server.client(), peers)


def online_ids(server):
    """GET /api/online-users with the proof that the server's mode asks of a reader."""
    return requests.get(server.url + "/api/online-users", headers=reader_proof(server), timeout=5).json()


def reader_proof(server):
    if server.env.get("HOMEAPP_AUTH") == "jwt":
        return {"Authorization": f"Bearer {cred.token('1', 'reader')}"}
    session_id = f"reader-{time.monotonic_ns()}"
    cred.store_session(redis.Redis.from_url(server.env["REDIS_URL"], decode_responses=True),
                       session_id, 1, "reader")
    return cookie_header(cred.python_signed(session_id))


def test_the_proven_identity_is_used(proven):
    observer = proven.peer(live=False)
    a, b = proven.peer(username="ana"), proven.peer(username="ben")
    observer.wait_for("newOnlineUser", lambda p: p == {"type": "Add", "userID": b.user_id})
    assert a.user_id in online_ids(proven.server)
    room = room_of(a, b)
    for peer in (a, b):
        assert peer.call("chatRoom.join", room) == {"ok": True}
        peer.clear()
    assert a.call("message", payloads.message(a.user_id, room, "hi", fromUsername="impostor"))["ok"]
    relayed = b.wait_for("messageRoom")
    assert (relayed["from"], relayed["fromUsername"]) == (a.user_id, "ana")


def test_events_before_add_online_user_act_as_the_proven_user(proven):
    peer = proven.peer(live=False)
    assert peer.call("joinRoom", peer.user_id) == {"ok": True}
    assert_refused(peer, "joinRoom", new_user_id(), "FORBIDDEN")


def test_the_identity_cannot_be_changed_after_connect(proven):
    observer = proven.peer(live=False)
    peer = proven.peer()
    other = new_user_id()
    observer.wait_for("newOnlineUser", lambda p: p["userID"] == peer.user_id)
    peer.clear(), observer.clear()
    assert_refused(peer, "addOnlineUser", {"userID": other, "userUsername": "x"}, "FORBIDDEN",
                   bystanders=[observer])
    assert other not in online_ids(proven.server)


def test_a_query_user_id_does_not_override_the_proof(jwt_server, peers):
    claimed, proven_id = new_user_id(), new_user_id()
    peer = Peer(jwt_server.url, claimed, query=True, auth={"token": cred.token(proven_id)})
    peers.append(peer)
    assert_refused(peer, "addOnlineUser", {"userID": claimed, "userUsername": "x"}, "FORBIDDEN")
    assert peer.call("addOnlineUser", {"userID": proven_id, "userUsername": "x"}) == {"ok": True}


def assert_nothing_changed(server, redis_client, observer, user_id):
    settle(observer)
    # other tests' users may come and go on the shared server; this user must not
    assert observer.got() == [] and observer.presence_of(user_id) == []
    assert user_id not in online_ids(server)
    assert not redis_client.sismember(redis_keys.ONLINE_USERS, user_id)
    assert not redis_client.exists(redis_keys.user_sockets(user_id))


def _rsa(uid):
    return {"auth": {"token": cred.rs256_token(cred.claims(uid))}}


@pytest.mark.parametrize("connect_kwargs, reason", [
    (lambda uid: {}, "missing token"),
    (lambda uid: {"auth": {"token": cred.token(uid, expires_in=-10)}}, "token expired"),
    (lambda uid: {"auth": {"token": cred.with_claims(cred.token(new_user_id()), sub=uid)}},
     "bad token signature"),
    (lambda uid: {"auth": {"token": cred.token(uid, secret="wrong-secret-0123456789abcdef-0123456")}},
     "bad token signature"),
    (lambda uid: {"auth": {"token": cred.unsigned_token(cred.claims(uid))}}, "algorithm not allowed"),
    (_rsa, "algorithm not allowed"),
    (lambda uid: {"auth": {"token": cred.public_key_as_hmac_token(cred.claims(uid))}},
     "bad token signature"),
    (lambda uid: {"auth": {"token": cred.token(uid, username=cred.OMIT)}}, "lacks the username claim"),
    (lambda uid: {"auth": {"token": "garbage"}}, "malformed token"),
    (lambda uid: {"headers": {"Authorization": f"Basic {uid}"}}, "malformed Authorization header"),
    (lambda uid: {"headers": {"Authorization": f"Bearer {cred.token(uid, expires_in=-10)}"}},
     "token expired"),
], ids=["missing", "expired", "forged", "wrong-secret", "alg-none", "rs256", "rs256-key-confusion",
        "no-username", "garbage", "not-bearer", "expired-header"])
def test_bad_tokens_are_refused_and_change_nothing(jwt_server, redis_server, peers, connect_kwargs, reason):
    observer = Credentials("jwt-auth", jwt_server, None, peers).peer(live=False)
    user_id = new_user_id()
    assert reason in refusal(jwt_server.url, **connect_kwargs(user_id))
    assert_nothing_changed(jwt_server, redis_server.client(), observer, user_id)


def _session(redis_client, uid, signer=cred.python_signed, expires_in=600, user=True, name="sessionLog"):
    session_id = f"sid-{uid}"
    cred.store_session(redis_client, session_id, uid, expires_in=expires_in, user=user)
    return {"headers": cookie_header(signer(session_id), name)}


@pytest.mark.parametrize("connect_kwargs, reason", [
    (lambda r, uid: {}, "missing session cookie sessionLog"),
    (lambda r, uid: _session(r, uid, name="connect.sid"), "missing session cookie sessionLog"),
    (lambda r, uid: _session(r, uid, signer=lambda sid: cred.python_signed("sid-mine").replace("sid-mine", sid)),
     "bad session cookie signature"),
    (lambda r, uid: _session(r, uid, signer=lambda sid: cred.python_signed(sid)[:-2] + "AA"),
     "bad session cookie signature"),
    (lambda r, uid: _session(r, uid, signer=lambda sid: cred.python_signed(sid, "wrong-secret-01234567890")),
     "bad session cookie signature"),
    (lambda r, uid: _session(r, uid, signer=lambda sid: sid), "session cookie is not signed"),
    (lambda r, uid: {"headers": cookie_header(cred.python_signed(f"sid-never-stored-{uid}"))},
     "unknown session"),
    (lambda r, uid: _session(r, uid, user=False), "session has no user"),
    (lambda r, uid: {"auth": {"token": cred.token(uid)}}, "missing session cookie"),
], ids=["missing", "other-cookie-name", "tampered-sid", "tampered-signature", "wrong-secret",
        "unsigned", "unknown-session", "logged-out-session", "token-instead"])
def test_bad_sessions_are_refused_and_change_nothing(session_server, redis_server, peers, connect_kwargs,
                                                      reason):
    client = redis_server.client()
    observer = Credentials("session", session_server, client, peers).peer(live=False)
    user_id = new_user_id()
    assert reason in refusal(session_server.url, **connect_kwargs(client, user_id))
    assert_nothing_changed(session_server, client, observer, user_id)


@pytest.mark.parametrize("secret", [SESSION_SECRET, OLD_SESSION_SECRET], ids=["current", "rotated-out"])
def test_a_cookie_signed_by_express_is_accepted(session_server, redis_server, peers, secret):
    user_id = new_user_id()
    session_id = f"express-{user_id}"
    cred.store_session(redis_server.client(), session_id, int(user_id), "carla")
    cookie = cred.express_cookie("sessionLog", session_id, secret)
    assert cookie.startswith("sessionLog=s%3Aexpress-")
    peer = Peer(session_server.url, user_id, query=False, headers={"Cookie": f"theme=dark; {cookie}"})
    peers.append(peer)
    assert peer.call("addOnlineUser", {"userID": user_id, "userUsername": "impostor"}) == {"ok": True}
    assert user_id in online_ids(session_server)


def test_a_tampered_express_cookie_is_refused(session_server, redis_server):
    victim, attacker = new_user_id(), new_user_id()
    client = redis_server.client()
    cred.store_session(client, f"express-{victim}", victim)
    cred.store_session(client, f"express-{attacker}", attacker)
    cookie = cred.express_cookie("sessionLog", f"express-{attacker}")
    tampered = cookie.replace(f"express-{attacker}", f"express-{victim}")
    assert "bad session cookie signature" in refusal(session_server.url, headers={"Cookie": tampered})


def test_an_expired_session_is_refused(session_server, redis_server):
    client = redis_server.client()
    user_id = new_user_id()
    client.set(f"sess:sid-{user_id}", cred.session_json(user_id, expires_in=-60), ex=60)
    assert refusal(session_server.url, headers=cookie_header(cred.python_signed(f"sid-{user_id}"))) == \
        "session expired"


@pytest.mark.parametrize("mode", ["jwt-auth", "session"])
def test_expiry_disconnects_the_socket_and_takes_it_offline(request, redis_server, peers, mode):
    server = request.getfixturevalue("session_server" if mode == "session" else "jwt_server")
    credentials = Credentials(mode, server, redis_server.client(), peers)
    observer = credentials.peer(live=False)
    short = credentials.peer(expires_in=2)
    assert not short.ended.wait(0.5)
    assert short.ended.wait(6), "the socket outlived its token or session"
    observer.wait_for("newOnlineUser", lambda p: p == {"type": "Remove", "userID": short.user_id})
    assert short.user_id not in online_ids(server)


def _short_session_peer(server, client, user_id, peers):
    """A socket logged in with a session that expires in 2 s unless something extends it."""
    cred.store_session(client, f"sid-{user_id}", user_id, expires_in=2)
    peer = Peer(server.url, user_id, query=False,
                headers=cookie_header(cred.python_signed(f"sid-{user_id}")))
    peers.append(peer)
    return peer


def test_a_session_the_rest_api_extends_keeps_its_socket(session_server, redis_server, peers):
    client = redis_server.client()
    user_id = new_user_id()
    peer = _short_session_peer(session_server, client, user_id, peers)
    cred.store_session(client, f"sid-{user_id}", user_id, expires_in=60)  # rolling: the REST API touched it
    assert not peer.ended.wait(4)
    assert peer.call("joinRoom", user_id) == {"ok": True}


def test_a_session_destroyed_by_logout_ends_the_socket_at_its_expiry(session_server, redis_server, peers):
    client = redis_server.client()
    user_id = new_user_id()
    peer = _short_session_peer(session_server, client, user_id, peers)
    client.delete(f"sess:sid-{user_id}")
    assert peer.ended.wait(6)


def handshake(server, origin):
    return requests.get(server.url + "/socket.io/?EIO=4&transport=polling", headers={"Origin": origin},
                        timeout=5)


@pytest.mark.parametrize("server_name, origin, allowed", [
    ("jwt_server", APP_ORIGIN, True),
    ("jwt_server", "https://evil.example", False),
    ("jwt_server", "https://app.example.evil.example", False),
    ("jwt_server", "own", True),
    ("memory_server", "own", True),
    ("memory_server", APP_ORIGIN, False),
])
def test_only_listed_origins_and_the_own_one_may_connect(request, server_name, origin, allowed):
    server = request.getfixturevalue(server_name)
    origin = server.url if origin == "own" else origin
    response = handshake(server, origin)
    if allowed:
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
    else:
        assert response.status_code == 400 and "Access-Control-Allow-Origin" not in response.headers


def first_websocket_frame(server, origin):
    """What the server sends first on a raw websocket opened from `origin`; "" when it closes."""
    url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    try:
        ws = websocket.create_connection(url, origin=origin, timeout=5)
    except websocket.WebSocketBadStatusException:
        return ""
    try:
        return ws.recv()
    except websocket.WebSocketConnectionClosedException:
        return ""
    finally:
        ws.close()


@pytest.mark.parametrize("origin, opens", [(APP_ORIGIN, True), ("https://evil.example", False)])
def test_a_websocket_from_a_foreign_origin_never_opens(jwt_server, origin, opens):
    # gevent-websocket upgrades before Engine.IO answers 400, so a refusal is a socket closed unopened
    assert first_websocket_frame(jwt_server, origin).startswith('0{"sid"') is opens


def production_env(**settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEAPP_") and k != "REDIS_URL"}
    env.update(settings)
    return env


@pytest.mark.parametrize("settings, message", [
    ({}, "HOMEAPP_ALLOW_OPEN=1"),
    ({"HOMEAPP_AUTH": "open", "HOMEAPP_ALLOW_OPEN": "0"}, "HOMEAPP_ALLOW_OPEN=1"),
    ({"HOMEAPP_AUTH": "jwt"}, "needs HOMEAPP_JWT_SECRET"),
    ({"HOMEAPP_AUTH": "jwt", "HOMEAPP_JWT_SECRET": "x" * 31}, "HOMEAPP_JWT_SECRET is too short"),
    ({"HOMEAPP_AUTH": "session", "HOMEAPP_SESSION_SECRET": f"{SESSION_SECRET},short",
      "REDIS_URL": "redis://127.0.0.1:1/0"}, "HOMEAPP_SESSION_SECRET is too short"),
    ({"HOMEAPP_AUTH": "session", "HOMEAPP_SESSION_SECRET": SESSION_SECRET}, "needs REDIS_URL"),
    ({"HOMEAPP_AUTH": "jwt", "HOMEAPP_JWT_SECRET": JWT_SECRET, "HOMEAPP_CORS_ORIGINS": "*"}, "'*'"),
])
def test_wsgi_refuses_unsafe_settings(settings, message):
    result = subprocess_run([sys.executable, "-c", "import wsgi"], production_env(**settings))
    assert result.returncode == 4, result.stderr
    assert "homeapp: refusing to start" in result.stderr and message in result.stderr


@pytest.mark.parametrize("settings", [
    {"HOMEAPP_ALLOW_OPEN": "1"},
    {"HOMEAPP_AUTH": "jwt", "HOMEAPP_JWT_SECRET": JWT_SECRET},
])
def test_wsgi_starts_with_safe_settings(settings):
    result = subprocess_run([sys.executable, "-c", "import wsgi; print(wsgi.app.name)"], production_env(**settings))
    assert result.returncode == 0 and result.stdout.strip() == "homeapp", result.stderr


def subprocess_run(argv, env):
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_gunicorn_stops_at_once_on_a_refused_setting():
    result = subprocess_run([sys.executable, *GUNICORN, "-b", f"127.0.0.1:{free_port()}", "wsgi:app"],
                            production_env())
    assert result.returncode == 4
    assert result.stderr.count("homeapp: refusing to start") == 1 and "App failed to load" in result.stderr


def test_gunicorn_serves_token_identities():
    server = ServerProcess({"HOMEAPP_AUTH": "jwt", "HOMEAPP_JWT_SECRET": JWT_SECRET})
    server.start(entry=(*GUNICORN, "-b", f"127.0.0.1:{server.port}", "wsgi:app"))
    peer = None
    try:
        assert "missing token" in refusal(server.url)
        user_id = new_user_id()
        peer = Peer(server.url, user_id, query=False, auth={"token": cred.token(user_id)})
        assert peer.call("addOnlineUser", {"userID": user_id, "userUsername": "x"}) == {"ok": True}
    finally:
        if peer is not None:
            peer.close()
        assert server.stop() == 0, server.log()


@pytest.mark.parametrize("ci, outcome", [("true", pytest.fail.Exception), (None, pytest.skip.Exception)])
def test_without_node_the_express_test_fails_in_ci_and_skips_elsewhere(monkeypatch, ci, outcome):
    monkeypatch.setattr(cred.shutil, "which", lambda name: None)
    if ci:
        monkeypatch.setenv("CI", ci)
    else:
        monkeypatch.delenv("CI", raising=False)
    with pytest.raises(outcome, match="node is not installed"):
        cred.express_cookie("sessionLog", "sid")
