"""`python -m tools.token USER_ID`: what it prints proves that user to a server with the same settings."""
import os
import subprocess
import sys
from urllib.parse import unquote

import pytest

from tests.credentials import JWT_SECRET, SESSION_SECRET
from tests.live import Peer, new_user_id
from tests.processes import ROOT


def run_tool(env, *args):
    """The tool's exit code, stdout and stderr, run as documented with the server's settings in env."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("HOMEAPP_") and k != "REDIS_URL"}
    full.update({k: str(v) for k, v in env.items()})
    done = subprocess.run([sys.executable, "-m", "tools.token", *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=30)
    return done.returncode, done.stdout, done.stderr


def test_a_jwt_mode_token_connects_as_its_user_with_its_username(server_factory):
    env = {"HOMEAPP_AUTH": "jwt", "HOMEAPP_JWT_SECRET": JWT_SECRET,
           "HOMEAPP_JWT_AUDIENCE": "homeapp-demo", "HOMEAPP_JWT_ISSUER": "dev-helper"}
    server = server_factory(**env)
    user_id, watcher_id = new_user_id(), new_user_id()
    code, out, err = run_tool(env, user_id, "--username", "jane")
    assert code == 0, err
    (token,) = out.split()
    code, out, err = run_tool(env, watcher_id)
    assert code == 0, err
    watcher = Peer(server.url, watcher_id, query=False, auth={"token": out.strip()})
    # the query names somebody else: the token's user is who connects
    peer = Peer(server.url, "1", query=True, auth={"token": token})
    try:
        assert watcher.call("addOnlineUser", {"userID": watcher_id, "userUsername": "x"}) == {"ok": True}
        assert peer.call("addOnlineUser", {"userID": user_id, "userUsername": "ignored"}) == {"ok": True}
        watcher.wait_for("newOnlineUser", lambda p: p == {"type": "Add", "userID": user_id})
        assert peer.call("addOnlineUser", {"userID": "1", "userUsername": "x"})["code"] == "FORBIDDEN"
    finally:
        peer.close()
        watcher.close()


def test_a_session_mode_cookie_connects_as_its_user(server_factory, redis_server):
    env = {"HOMEAPP_AUTH": "session", "HOMEAPP_SESSION_SECRET": SESSION_SECRET, "REDIS_URL": redis_server.url}
    server = server_factory(**env)
    user_id = new_user_id()
    code, out, err = run_tool(env, user_id, "--username", "sara", "--expires-in", "600")
    assert code == 0, err
    cookie = out.strip()
    assert cookie.startswith("sessionLog=s%3A")
    assert f'document.cookie = "{cookie}; path=/"' in err  # how to hand it to the demo page
    # its own session: other tests' sessions may share this Redis
    session_id = unquote(cookie.partition("=")[2]).removeprefix("s:").rpartition(".")[0]
    key = f"sess:{session_id}"
    assert 0 < redis_server.client().ttl(key) <= 600
    peer = Peer(server.url, user_id, query=False, headers={"Cookie": cookie})
    try:
        assert peer.call("addOnlineUser", {"userID": user_id, "userUsername": "x"}) == {"ok": True}
        assert peer.call("addOnlineUser", {"userID": "1", "userUsername": "x"})["code"] == "FORBIDDEN"
    finally:
        peer.close()
        redis_server.client().delete(key)


JWT = {"HOMEAPP_AUTH": "jwt", "HOMEAPP_JWT_SECRET": JWT_SECRET}


@pytest.mark.parametrize("env, args, code, says", [
    (JWT, ["abc"], 2, "USER_ID must be 1 to 20 digits"),
    (JWT, [""], 2, "USER_ID must be 1 to 20 digits"),
    (JWT, ["1" * 21], 2, "USER_ID must be 1 to 20 digits"),
    (JWT, ["-5"], 2, "usage"),
    (JWT, ["5", "--expires-in", "0"], 2, "--expires-in must be a positive"),
    (JWT, ["5", "--username", "x" * 65], 2, "longer than HOMEAPP_MAX_USERNAME_LENGTH"),
    ({"HOMEAPP_AUTH": "jwt"}, ["5"], 2, "HOMEAPP_AUTH=jwt needs HOMEAPP_JWT_SECRET"),
    ({}, ["5"], 2, "HOMEAPP_AUTH is open: a client just says who it is"),
    ({"HOMEAPP_AUTH": "session", "HOMEAPP_SESSION_SECRET": SESSION_SECRET,
      "REDIS_URL": "redis://127.0.0.1:1/0"}, ["5"], 1, "cannot store the session"),
], ids=["letters", "empty", "21-digits", "negative", "zero-lifetime", "long-username", "no-secret",
        "open-mode", "redis-down"])
def test_bad_arguments_and_settings_print_nothing_and_say_why(env, args, code, says):
    got, out, err = run_tool(env, *args)
    assert (got, out) == (code, "")
    assert says in err, err
