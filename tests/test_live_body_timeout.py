"""HOMEAPP_BODY_TIMEOUT on live servers, under app.py and gunicorn: a request whose body does not
arrive within it after the headers has its connection closed; a body that does is served."""
import http.client
import json
import socket
import time

import pytest
import requests

from tests.conftest import FAST
from tests.processes import ServerProcess, wait_until
from tests.test_live_polling import PollingClient

BODY_TIMEOUT = 2  # seconds
MARGIN = 10  # seconds more than the timeout a loaded machine may take to close
TOKEN = "body-timeout-token-" + "t" * 24
ENV = {"HOMEAPP_BODY_TIMEOUT": BODY_TIMEOUT, "HOMEAPP_API_TOKENS": TOKEN, **FAST}


@pytest.fixture(scope="module")
def body_server(server_factory, redis_server):
    return server_factory(REDIS_URL=redis_server.url, **ENV)


@pytest.fixture(scope="module")
def gunicorn_body_server(redis_server):
    # a short grace: the shutdown waits that long on the Engine.IO sessions the slow POSTs
    # named, whose clients never poll for their close packet
    process = ServerProcess({"REDIS_URL": redis_server.url, "HOMEAPP_ALLOW_OPEN": 1,
                             "HOMEAPP_SHUTDOWN_GRACE": 2, **ENV})
    process.start(entry=("-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"))
    yield process
    assert process.stop() == 0, process.log()


def head(server, path, *headers):
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            + "".join(f"{h}\r\n" for h in headers) + "\r\n").encode()


def polling_post(server, *headers):
    client = PollingClient(server)
    client.close()  # its session stays open; the slow POST comes on a connection of its own
    return head(server, f"/socket.io/?EIO=4&transport=polling&sid={client.sid}",
                "Content-Type: text/plain;charset=UTF-8", *headers)


def api_post(server, *headers):
    return head(server, "/api/events", f"Authorization: Bearer {TOKEN}",
                "Content-Type: application/json", *headers)


def unread_post(server, *headers):
    """A POST the application answers without reading its body (no such route)."""
    return head(server, "/no-such-page", *headers)


# what a slow client sends: a request head, then its body a byte at a time
SLOW_BODIES = {
    "long-polling, Content-Length": (polling_post, "Content-Length: 1000"),
    "long-polling, chunked": (polling_post, "Transfer-Encoding: chunked"),
    "backend API, Content-Length": (api_post, "Content-Length: 1000"),
    "backend API, chunked": (api_post, "Transfer-Encoding: chunked"),
    "a body nobody reads, Content-Length": (unread_post, "Content-Length: 1000"),
}


class Trickle:
    """One connection sending a request head, then a byte of its body a second."""

    def __init__(self, server, request_head):
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        self.sock.sendall(request_head)
        self.sock.setblocking(False)
        self.started = time.monotonic()
        self.closed_after = None
        self.received = b""

    def step(self, chunked):
        """Send one more byte unless closed; returns True once the server has closed it."""
        if self.closed_after is not None:
            return True
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.received += data
        except BlockingIOError:
            try:
                self.sock.send(b"1\r\nx\r\n" if chunked else b"x")
                return False
            except (BlockingIOError, OSError):
                pass
        except OSError:  # reset
            pass
        self.closed_after = time.monotonic() - self.started
        self.sock.close()
        return True


def trickle_all(trickles, chunked):
    deadline = time.monotonic() + BODY_TIMEOUT + MARGIN
    while not all(t.step(chunked) for t in trickles):
        assert time.monotonic() < deadline, (
            f"{sum(t.closed_after is None for t in trickles)} of {len(trickles)} slow bodies still open")
        time.sleep(1)


@pytest.mark.parametrize("make_head, framing", SLOW_BODIES.values(), ids=SLOW_BODIES.keys())
def test_a_body_trickling_in_is_cut_off_at_the_timeout(body_server, make_head, framing):
    trickle = Trickle(body_server, make_head(body_server, framing))
    trickle_all([trickle], chunked="chunked" in framing)
    # it was given its time, and got no answer: the connection was closed under it
    assert trickle.closed_after >= BODY_TIMEOUT - 0.5, trickle.closed_after
    # nothing, or the answer of an application that did not need the body (a 404 here)
    assert trickle.received == b"" or trickle.received.startswith(b"HTTP/1.1 4"), trickle.received
    log = body_server.log()
    assert "Traceback" not in log, log


def test_fifty_slow_bodies_are_all_closed_and_the_server_still_serves(body_server):
    trickles = [Trickle(body_server, make(body_server, "Content-Length: 1000"))
                for make in (polling_post, api_post) for _ in range(25)]
    trickle_all(trickles, chunked=False)
    assert all(t.closed_after >= BODY_TIMEOUT - 0.5 for t in trickles)
    assert_normal_posts_work(body_server)


def assert_normal_posts_work(server):
    answer = requests.post(f"{server.url}/api/events", timeout=10,
                           headers={"Authorization": f"Bearer {TOKEN}"},
                           data=json.dumps({"event": "addOnlineUser", "userID": "1", "payload": {}}).encode())
    assert answer.status_code != 500 and answer.json()["event"] == "addOnlineUser", answer.text
    client = PollingClient(server, "4242")
    try:
        client.connect()
        assert client.post('421["addOnlineUser",{"userID":"4242","userUsername":"x"}]').status_code == 200
        assert client.acks(1)[0] == {1: {"ok": True}}
        client.post("1")  # closed, as a client leaving does: a shutdown need not wait for it
    finally:
        client.close()


def test_a_body_sent_slowly_but_within_the_timeout_is_served(body_server):
    """A body in pieces, the last well before the deadline: answered as usual."""
    body = json.dumps({"event": "addOnlineUser", "userID": "1", "payload": {}}).encode()
    with socket.create_connection(("127.0.0.1", body_server.port), timeout=10) as sock:
        sock.sendall(api_post(body_server, f"Content-Length: {len(body)}"))
        for piece in (body[:10], body[10:20], body[20:]):
            time.sleep(BODY_TIMEOUT / 5)
            sock.sendall(piece)
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        text = answer.read()
    # the API's own answer to the event (refused: no such user online), not the server's 500
    assert answer.status != 500 and json.loads(text)["event"] == "addOnlineUser", (answer.status, text)


def test_under_gunicorn_a_slow_body_is_cut_off_and_normal_posts_work(gunicorn_body_server):
    trickles = [Trickle(gunicorn_body_server, make(gunicorn_body_server, "Content-Length: 1000"))
                for make in (polling_post, api_post)]
    trickle_all(trickles, chunked=False)
    assert all(t.closed_after >= BODY_TIMEOUT - 0.5 and t.received == b"" for t in trickles)
    assert_normal_posts_work(gunicorn_body_server)
    wait_until(lambda: "did not arrive within" in gunicorn_body_server.log(), 5, gunicorn_body_server.log())
