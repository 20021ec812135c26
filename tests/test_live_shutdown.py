"""SIGTERM while browsers are connected: the process exits as soon as its sockets are closed.

A browser tab keeps the HTTP connection it loaded the page over open (keep-alive) beside its
socket, for minutes. The server must not wait for such idle connections to end: they carry no
request, and waiting for them held every shutdown for its whole grace.
"""
import json
import signal
import time
from http.client import HTTPConnection

import pytest
import requests

from tests.live import Peer, new_user_id
from tests.processes import ServerProcess, wait_until

GRACE = 10
GUNICORN = ("-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app")


class BrowserTab:
    """What a browser tab holds: the keep-alive connection it loaded the page and the online
    list over, and a socket that started with long-polling and upgraded to a websocket."""

    def __init__(self, server):
        self.http = HTTPConnection("127.0.0.1", server.port, timeout=5)
        self._get("/")
        page_connection = self.http.sock
        self._get("/api/online-users")
        assert self.http.sock is page_connection  # one connection, kept alive between requests
        self.user_id = new_user_id()
        self.socket = Peer(server.url, self.user_id, transports=("polling", "websocket"))
        identify = {"userID": self.user_id, "userUsername": "tab"}
        assert self.socket.call("addOnlineUser", identify) == {"ok": True}

    def _get(self, path):
        self.http.request("GET", path)
        response = self.http.getresponse()
        response.read()
        assert response.status == 200 and not response.will_close, (path, response.headers)

    def close(self):
        self.socket.close()
        self.http.close()


@pytest.mark.parametrize("entry", [("app.py",), GUNICORN], ids=["app.py", "gunicorn"])
def test_sigterm_with_browser_tabs_exits_once_their_sockets_are_closed(entry):
    server = ServerProcess({"HOMEAPP_SHUTDOWN_GRACE": GRACE, "HOMEAPP_ALLOW_OPEN": "1"}).start(entry)
    tabs = []
    try:
        tabs = [BrowserTab(server) for _ in range(3)]
        assert all(tab.socket.client.transport() == "websocket" for tab in tabs)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(GRACE + 10) == 0
        took = time.monotonic() - started
        wait_until(lambda: all(tab.socket.ended.is_set() for tab in tabs), 5, "a socket stayed open")
    finally:
        server.kill()
        for tab in tabs:
            tab.close()
    assert "shutdown: 3 sockets closed, 0 left open" in server.log()
    assert took < GRACE / 2, f"exited {took:.1f} s after SIGTERM; log:\n{server.log()}"


def polling_probe(server):
    """What a load balancer's or a monitor's probe leaves: an Engine.IO long-polling session
    that never sent a Socket.IO CONNECT (and never polls again). Returns its Engine.IO sid."""
    response = requests.get(f"{server.url}/socket.io/?EIO=4&transport=polling", timeout=5)
    assert response.status_code == 200, response.text
    open_packet = json.loads(response.text[1:])  # "0{...}": Engine.IO's open packet
    return open_packet["sid"]


@pytest.mark.parametrize("entry", [("app.py",), GUNICORN], ids=["app.py", "gunicorn"])
def test_sigterm_does_not_wait_for_polling_sessions_that_hold_no_socket(entry):
    server = ServerProcess({"HOMEAPP_SHUTDOWN_GRACE": GRACE, "HOMEAPP_ALLOW_OPEN": "1"}).start(entry)
    peers = []
    try:
        probes = [polling_probe(server) for _ in range(2)]
        assert len(set(probes)) == 2
        # beside them, a real socket: it is closed as always, its user announced offline
        user = Peer(server.url, new_user_id(), transports=("polling", "websocket"))
        peers.append(user)
        watcher = Peer(server.url, new_user_id())
        peers.append(watcher)
        for peer in peers:
            assert peer.call("addOnlineUser", {"userID": peer.user_id, "userUsername": "u"}) == {"ok": True}
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(GRACE + 10) == 0
        took = time.monotonic() - started
        wait_until(lambda: all(peer.ended.is_set() for peer in peers), 5, "a socket stayed open")
    finally:
        server.kill()
        for peer in peers:
            peer.close()
    log = server.log()
    assert "shutdown: 2 sockets closed, 0 left open" in log, log
    assert "2 Engine.IO sessions without a socket" in log, log
    assert took < 3, f"exited {took:.1f} s after SIGTERM (grace {GRACE} s); log:\n{log}"
