"""The demo page's connections: identified on connect by default, one state per situation,
and two tabs of one user told apart."""
import os
import socket
import subprocess
import sys
import time

import requests

from tests.browser import ROOT, DemoPage, chromium
from tests.credentials import SESSION_SECRET


def connect_errors(demo, key):
    return demo.role(key, "log").locator('li[data-kind="lifecycle"][data-name="connect_error"]').count()


def test_panels_identify_on_connect_by_default_and_their_online_lists_agree(server_factory):
    server = server_factory()
    with chromium() as browser:
        demo = DemoPage(browser.new_page(), server.url)
        assert demo.page.is_checked("#auto-identify")
        demo.wait_connected("1", "2", "3")
        for key in "123":
            demo.wait_online(key, ["1", "2", "3"])
            sent = demo.sent_entries(key)
            assert [(entry["name"], entry["ack"]) for entry in sent] == [
                ("joinRoom", "ok"), ("addOnlineUser", "ok")]

        demo.add_panel("4", "mike_butler")
        for key in "1234":
            demo.wait_online(key, ["1", "2", "3", "4"])
        assert requests.get(server.url + "/api/online-users", timeout=5).json() == ["1", "2", "3", "4"]

        # with the box off a panel only connects: nobody, itself included, counts it as online
        demo.page.uncheck("#auto-identify")
        demo.add_panel("5", "lena")
        assert demo.sent_entries("5") == []
        time.sleep(0.5)
        for key in "12345":
            assert demo.online(key) == ["1", "2", "3", "4"], key
        assert demo.errors == []


def test_connecting_then_unreachable_while_the_server_is_down_then_connected_again(server_factory):
    server = server_factory()
    with chromium() as browser:
        demo = DemoPage(browser.new_page(), server.url)
        demo.wait_connected("1", "2", "3")

        # a server that accepts the TCP connection and never answers: still connecting
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen()
            demo.open_connection("3")
            demo.role("3", "server-url").fill(f"http://127.0.0.1:{silent.getsockname()[1]}")
            demo.role("3", "connect").click()
            time.sleep(1)
            assert demo.status("3") == ("connecting", "connecting…")

        server.stop()
        for key in "12":
            demo.wait_status(key, "unreachable")
            assert demo.status(key)[1].startswith("unreachable (retrying"), demo.status(key)
        time.sleep(4)  # several retries, still one log entry for the outage
        assert demo.status("1")[0] == "unreachable"
        assert "attempt" in demo.status("1")[1]
        assert connect_errors(demo, "1") == 1

        server.start()
        demo.wait_connected("1", "2")
        for key in "12":  # identified again on reconnect, as the production client does
            demo.wait_online(key, ["1", "2"])
        assert demo.errors == []


JWT = {"HOMEAPP_AUTH": "jwt", "HOMEAPP_JWT_SECRET": "demo-page-test-secret-0123456789abcdef"}
USERS = {"1": "john_doe", "2": "jane", "3": "sara_cleaner"}


def helper_output(env, user_id, username):
    """What `python -m tools.token USER_ID --username NAME` prints, run with the server's settings."""
    done = subprocess.run([sys.executable, "-m", "tools.token", user_id, "--username", username],
                          cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), done.stderr


def test_in_jwt_mode_a_panel_without_a_token_says_how_to_get_one_and_connects_with_the_helpers(
        server_factory):
    server = server_factory(**JWT)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        sockets = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        demo = DemoPage(page, server.url)
        first_step = demo.page.locator('#walkthrough-steps > li[data-step="connect"]').inner_text()
        assert "python -m tools.token 1 --username john_doe" in first_step
        assert "On load every panel connected" not in first_step
        for key, username in USERS.items():
            demo.wait_status(key, "no-token")
            assert demo.status(key) == ("no-token", "no token")
            help_text = demo.role(key, "proof-help").inner_text()
            assert help_text.startswith("No token yet: this server runs in jwt mode")
            assert f"python -m tools.token {key} --username {username}" in help_text
            assert demo.role(key, "online").inner_text() == "not connected"
        time.sleep(1)
        assert sockets == [] and connect_errors(demo, "1") == 0, "no handshake without a token"
        assert "malformed" not in demo.page.inner_text("body")

        # a token from the helper, pasted: the panel connects as its user and the help goes
        for key in "12":
            token, _ = helper_output(JWT, key, USERS[key])
            demo.role(key, "token").fill(token)
            demo.role(key, "connect").click()
            demo.wait_connected(key)
            assert demo.role(key, "proof-help").is_hidden()
        for key in "12":
            demo.wait_online(key, ["1", "2"])
            assert [(entry["name"], entry["ack"]) for entry in demo.sent_entries(key)] == [
                ("joinRoom", "ok"), ("addOnlineUser", "ok")]
        assert demo.status("3") == ("no-token", "no token")
        mark = demo.mark()
        assert demo.send("1", "chatRoom.join")["ok"] is True
        assert demo.send("2", "chatRoom.join")["ok"] is True
        assert demo.send("1", "message")["ok"] is True
        demo.expect(mark, p1=["messageRoom"], p2=["messageRoom", "messagePage", "messageResponseNotify"])
        assert demo.errors == []


def test_a_connection_the_server_refuses_says_refused_and_how_to_get_a_token_and_is_not_retried(
        server_factory):
    server = server_factory(**JWT)
    other_secret = {**JWT, "HOMEAPP_JWT_SECRET": "not-the-server-secret-0123456789abcdef"}
    with chromium() as browser:
        demo = DemoPage(browser.new_page(), server.url)
        demo.wait_status("1", "no-token")
        bad = {"1": ("not a token", "malformed token"),
               "2": (helper_output(other_secret, "2", "jane")[0], "bad token signature")}
        for key, (token, reason) in bad.items():
            demo.role(key, "token").fill(token)
            demo.role(key, "connect").click()
            demo.wait_status(key, "refused")
            state, text = demo.status(key)
            assert text == f"refused: {reason}", text
            help_text = demo.role(key, "proof-help").inner_text()
            assert help_text.startswith(f"Refused: {reason}.")
            assert f"python -m tools.token {key} --username {USERS[key]}" in help_text
        time.sleep(2)
        assert demo.status("1")[0] == "refused"
        assert connect_errors(demo, "1") == 1
        assert demo.errors == []


def test_in_session_mode_the_helpers_cookie_connects_and_a_panel_without_one_says_how(
        server_factory, redis_server):
    env = {"HOMEAPP_AUTH": "session", "HOMEAPP_SESSION_SECRET": SESSION_SECRET, "REDIS_URL": redis_server.url}
    server = server_factory(**env)
    with chromium() as browser:
        context = browser.new_context()
        demo = DemoPage(context.new_page(), server.url)
        first_step = demo.page.locator('#walkthrough-steps > li[data-step="connect"]').inner_text()
        assert "session mode" in first_step and "python -m tools.token 1 --username john_doe" in first_step
        for key in "123":
            demo.wait_status(key, "refused")
            assert demo.status(key)[1] == "refused: missing session cookie sessionLog: log in first"
            help_text = demo.role(key, "proof-help").inner_text()
            assert "sessionLog cookie" in help_text and f"python -m tools.token {key} --username" in help_text
        for key in "23":
            demo.role(key, "remove").click()
        # what the helper prints, set as its message says (in the page's console)
        cookie, how = helper_output(env, "1", "john_doe")
        (line,) = [line for line in how.splitlines() if "document.cookie" in line]
        demo.page.evaluate(line.split("#", 1)[1].strip())
        demo.role("1", "connect").click()
        demo.wait_connected("1")
        demo.wait_online("1", ["1"])
        assert demo.role("1", "proof-help").is_hidden()
        assert demo.errors == []


def test_two_tabs_of_one_user_are_told_apart(server_factory):
    server = server_factory()
    with chromium() as browser:
        demo = DemoPage(browser.new_page(), server.url)
        demo.wait_connected("1", "2", "3")
        assert demo.panel("2").locator(".identity").text_content() == "jane #2"

        assert demo.add_panel("2", "jane") == "2-2"
        labels = {key: demo.panel(key).locator(".identity").text_content() for key in ("1", "2", "2-2")}
        assert labels == {"1": "john_doe #1", "2": "jane #2 · tab 1", "2-2": "jane #2 · tab 2"}
        colours = [demo.panel(key).evaluate("panel => getComputedStyle(panel).borderTopColor")
                   for key in demo.keys()]
        assert len(set(colours)) == 4, colours
        lanes = demo.page.locator("#timeline-lanes g.tl-lane").evaluate_all("lanes => lanes.map(g => g.dataset.label)")
        assert lanes == ["server", "john_doe #1", "jane #2 · tab 1", "sara_cleaner #3", "jane #2 · tab 2"]

        demo.role("2-2", "remove").click()
        assert demo.panel("2").locator(".identity").text_content() == "jane #2"
        assert demo.errors == []
