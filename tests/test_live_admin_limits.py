"""The Admin UI's login, rate-limited per client address, and the development mode, which never
shows a user's token, cookie or Authorization header."""
import http.client
import json

import pytest

from tests.conftest import FAST
from tests.credentials import ADMIN, ADMIN_ENV
from tests.live import Peer, new_user_id, peers_on, refusal
from tests.processes import wait_until

NAMESPACE = "/admin"
WINDOW = 15  # seconds: HOMEAPP_ADMIN_LOGIN_WINDOW of these servers
ATTEMPTS = 5  # the default HOMEAPP_ADMIN_LOGIN_ATTEMPTS
INVALID = "invalid credentials"
LOCKED = "too many failed logins from this address"

# failed logins of each kind count alike
WRONG_LOGINS = [
    {"username": ADMIN["username"], "password": "a long admin passphrasf"},
    {"username": "operator2", "password": ADMIN["password"]},
    {},
    {"username": ADMIN["username"], "password": [ADMIN["password"]]},
    {"token": ADMIN["password"]},
    {"username": ADMIN["username"], "password": "another wrong guess!!"},
]


def polling_login(server, auth, source):
    """An Admin UI login over long-polling from the local address `source`; returns None when
    accepted, else the refusal's message."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10, source_address=(source, 0))
    base = "/socket.io/?EIO=4&transport=polling"

    def request(method, path, body=None):
        conn.request(method, path, body=body, headers={"Content-Type": "text/plain;charset=UTF-8"})
        answer = conn.getresponse()
        text = answer.read().decode()
        assert answer.status == 200, (answer.status, text)
        return text

    try:
        sid = json.loads(request("GET", base)[1:])["sid"]
        request("POST", f"{base}&sid={sid}", f"40{NAMESPACE}," + json.dumps(auth))
        for packet in request("GET", f"{base}&sid={sid}").split("\x1e"):
            if packet.startswith(f"40{NAMESPACE},"):
                request("POST", f"{base}&sid={sid}", "1")  # logged in: leave
                return None
            if packet.startswith(f"44{NAMESPACE},"):
                return json.loads(packet.partition(",")[2])["message"]
        raise AssertionError("no answer to the login")
    finally:
        conn.close()


def login(server, auth, **kwargs):
    """None when the login over a websocket is accepted (and then left), else the refusal's message."""
    try:
        return refusal(server.url, namespaces=[NAMESPACE], auth=auth, **kwargs)
    except AssertionError as accepted:
        if "was accepted" in str(accepted):
            return None
        raise


def summary_lines(server, address):
    return [line for line in server.log().splitlines() if f"Admin UI logins from {address} " in line]


def test_failed_logins_lock_their_address_out_for_a_window_with_one_log_line(server_factory):
    server = server_factory(HOMEAPP_ADMIN_LOGIN_WINDOW=WINDOW, **ADMIN_ENV, **FAST)
    answers = [login(server, auth) for auth in WRONG_LOGINS]
    assert answers == [INVALID] * ATTEMPTS + [answers[-1]] and answers[-1].startswith(LOCKED), answers
    # the right password too, and from behind a forged X-Forwarded-For (no proxy is trusted)
    for headers in ({}, {"X-Forwarded-For": "10.9.8.7"}):
        refused = login(server, dict(ADMIN), headers=headers)
        assert refused is not None and refused.startswith(LOCKED), refused
    # another address is not affected: it logs in, and its own wrong guess is its own
    assert polling_login(server, dict(ADMIN), "127.0.0.2") is None
    assert polling_login(server, WRONG_LOGINS[0], "127.0.0.2") == INVALID
    assert polling_login(server, dict(ADMIN), "127.0.0.2") is None
    # one line per address for the window, not one per guess
    wait_until(lambda: summary_lines(server, "127.0.0.1"), WINDOW + 10, server.log())
    lines = summary_lines(server, "127.0.0.1")
    assert len(lines) == 1, server.log()
    assert "refused 8 Admin UI logins from 127.0.0.1" in lines[0], lines
    assert "5 with wrong credentials, 3 while locked out" in lines[0], lines
    assert "refused an Admin UI" not in server.log()
    # once the lockout is over, the right password logs in
    wait_until(lambda: login(server, dict(ADMIN)) is None, WINDOW + 10, "still locked out")
    wait_until(lambda: summary_lines(server, "127.0.0.2"), WINDOW + 10, server.log())
    assert len(summary_lines(server, "127.0.0.2")) == 1


def test_the_lockout_says_how_long_it_lasts(server_factory):
    server = server_factory(HOMEAPP_ADMIN_LOGIN_WINDOW=60, HOMEAPP_ADMIN_LOGIN_ATTEMPTS=1, **ADMIN_ENV, **FAST)
    assert login(server, WRONG_LOGINS[0]) == INVALID
    refused = login(server, dict(ADMIN))
    seconds = int(refused.removeprefix(LOCKED + ": try again in ").removesuffix(" s"))
    assert 50 <= seconds <= 60, refused


SECRETS = {"bearer": "secret-bearer-token-0123456789", "cookie": "secret-cookie-value-0123456789",
           "query": "secret-query-token-0123456789", "proxy": "secret-proxy-credentials-0123"}


def user_with_secrets(server, transports):
    user_id = new_user_id()
    return Peer(f"{server.url}/?userID={user_id}&token={SECRETS['query']}", user_id, query=False,
                transports=transports,
                headers={"Authorization": f"Bearer {SECRETS['bearer']}",
                         "Cookie": f"sessionLog={SECRETS['cookie']}; theme=dark",
                         "Proxy-Authorization": f"Basic {SECRETS['proxy']}"})


@pytest.mark.parametrize("transports", [("websocket",), ("polling",)], ids=["websocket", "polling"])
def test_development_mode_shows_the_sockets_but_no_token_or_cookie(server_factory, transports):
    server = server_factory(HOMEAPP_ADMIN_MODE="development", **ADMIN_ENV, **FAST)
    before = user_with_secrets(server, transports)  # in the list the UI gets at login
    watcher = Peer(server.url, query=False, namespace=NAMESPACE, auth=dict(ADMIN))
    try:
        after = user_with_secrets(server, transports)  # reported as it connects
        with peers_on(server) as connect:
            connect()  # an ordinary user, its events reported too
        shown = {p["id"]: p for e, p in watcher.events if e == "socket_connected" for p in [p[0]]}
        wait_until(lambda: any(e == "all_sockets" for e, _ in watcher.events), 10, watcher.events)
        for e, p in watcher.events:
            if e == "all_sockets":
                shown.update({s["id"]: s for s in p})
        wait_until(lambda: after.client.get_sid() in {
            p[0]["id"] for e, p in watcher.events if e == "socket_connected"}, 10, watcher.events)
        shown.update({p[0]["id"]: p[0] for e, p in watcher.events if e == "socket_connected"})
        for user in (before, after):
            handshake = shown[user.client.get_sid()]["handshake"]
            assert handshake["query"]["userID"] == user.user_id and handshake["query"]["token"] == "[redacted]"
            assert {handshake["headers"][h] for h in ("authorization", "cookie", "proxy_authorization")} == {
                "[redacted]"}, handshake
        everything = json.dumps(watcher.events)
        for name, secret in SECRETS.items():
            assert secret not in everything, f"the Admin UI was shown the {name}"
    finally:
        watcher.close()
        before.close()
        after.close()
