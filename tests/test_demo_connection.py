"""The demo page's connections: identified on connect by default, one state per situation,
and two tabs of one user told apart."""
import socket
import time

import requests

from tests.browser import DemoPage, chromium


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


def test_a_connection_the_server_refuses_says_refused_and_is_not_retried(server_factory):
    server = server_factory(HOMEAPP_AUTH="jwt", HOMEAPP_JWT_SECRET="demo-page-test-secret")
    with chromium() as browser:
        demo = DemoPage(browser.new_page(), server.url)
        for key in "123":  # no token pasted
            demo.wait_status(key, "refused")
            state, text = demo.status(key)
            assert text.startswith("refused: ") and "websocket" not in text, text
        time.sleep(2)
        assert demo.status("1")[0] == "refused"
        assert connect_errors(demo, "1") == 1
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
