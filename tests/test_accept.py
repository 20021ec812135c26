"""How the server admits new connections (homeapp/seams/gevent.py): a burst of them takes turns
with the connections already open, ACCEPTS_PER_TURN at each turn of the event loop, instead of
a hundred of them going ahead of an open connection's request (a reconnect storm,
bench/recovery.md)."""
import _socket

import gevent
import pytest

from homeapp.seams import gevent as gevent_seam

BURST = 30


def connected(port):
    """A standard-library socket: connecting and sending never let the event loop run."""
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    sock.connect(("127.0.0.1", port))
    return sock


def ask(sock, path):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())


@pytest.fixture
def server():
    """A server as `python app.py` runs it, whose application notes each request's path, and
    has the open connection ask again while it serves the burst's first request."""
    served, open_one = [], []

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        served.append(path)
        if path == "/new/0":
            ask(open_one[0], "/open")
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]
    made = gevent_seam.Server(("127.0.0.1", 0), app, log=None)
    made.start()
    open_one.append(connected(made.server_port))
    yield made, served, open_one[0]
    made.stop()
    open_one[0].close()


def test_a_burst_of_new_connections_takes_turns_with_an_open_ones_request(server):
    made, served, open_one = server
    ask(open_one, "/first")
    gevent.sleep(0.1)
    assert served == ["/first"]
    # the burst waits in the listen backlog, each with its request, until the loop runs again
    burst = [connected(made.server_port) for _ in range(BURST)]
    for number, sock in enumerate(burst):
        ask(sock, f"/new/{number}")
    gevent.sleep(0.5)
    assert sorted(served) == sorted(["/first", "/open", *(f"/new/{n}" for n in range(BURST))])
    # asked while the first new one was served: at most ACCEPTS_PER_TURN more went ahead of it
    # (with gevent's own 100 a turn, the whole burst did)
    assert served.index("/open") <= 2 + gevent_seam.ACCEPTS_PER_TURN, served
    for sock in burst:
        sock.close()
