"""A server out of file descriptors: one quiet line about it, no traceback per failed accept,
and /healthz answering again once descriptors free up."""
import os
import resource
import socket
import time

import requests

from tests.processes import ServerProcess, wait_until

SPARE = 24  # descriptors the server is left beyond those it has open once started
CLIENTS = 150  # connections opened against it: far more than it can accept


def open_descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def connect_many(port, count):
    """`count` connections to port, each left to finish (or not) in the kernel's backlog."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        sockets.append(sock)
    return sockets


def healthy(server):
    try:
        return requests.get(f"{server.url}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_at_the_descriptor_limit_accepts_fail_quietly_and_healthz_comes_back():
    for entry in (("app.py",), ("-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app")):
        server = ServerProcess({"HOMEAPP_ALLOW_OPEN": 1, "HOMEAPP_SHUTDOWN_GRACE": 2})
        server.start(entry=entry)
        try:
            assert_quiet_at_the_limit(server, entry)
        finally:
            server.stop()


def serving_pid(server):
    """The process that accepts: app.py itself, or gunicorn's one worker."""
    children = open(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read().split()
    return int(children[0]) if children else server.proc.pid


def assert_quiet_at_the_limit(server, entry):
    pid = serving_pid(server)
    hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)[1]
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (open_descriptors(pid) + SPARE, hard))
    before = len(server.log())
    started = time.monotonic()
    clients = connect_many(server.port, CLIENTS)
    try:
        # every descriptor it may have is taken, and more clients wait
        wait_until(lambda: "accept failed" in server.log()[before:], 20,
                   f"{entry}: no accept failed; log:\n{server.log()[before:]}")
        time.sleep(3)  # accepts keep failing all the while
        assert not healthy(server)
    finally:
        for sock in clients:
            sock.close()
    wait_until(lambda: healthy(server), 30, f"{entry}: /healthz did not come back; log:\n{server.log()}")
    logged = server.log()[before:]
    failures = [line for line in logged.splitlines() if "accept failed" in line]
    # one line per 10 s at most, however many accepts failed
    assert 1 <= len(failures) <= 1 + (time.monotonic() - started) // 10, logged
    assert "too many open files (limit " in failures[0], failures
    assert "Traceback" not in logged, logged
