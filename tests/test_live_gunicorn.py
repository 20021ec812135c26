"""The production entry: wsgi:app under gunicorn.conf.py (homeapp's gevent-websocket worker) speaks the protocol."""
import subprocess
import sys

import pytest

from tests import payloads
from tests.live import Peer, new_user_id, room_of, settle
from tests.processes import ROOT, ServerProcess


@pytest.fixture(scope="module")
def gunicorn_server():
    process = ServerProcess({"HOMEAPP_ALLOW_OPEN": 1})
    process.start(entry=("-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"))
    yield process
    assert process.stop() == 0, process.log()


def test_websocket_chat_under_gunicorn(gunicorn_server):
    a, b = Peer(gunicorn_server.url, new_user_id()), Peer(gunicorn_server.url, new_user_id())
    try:
        for peer in (a, b):
            assert peer.call("addOnlineUser", {"userID": peer.user_id, "userUsername": "u"}) == {"ok": True}
            assert peer.call("joinRoom", peer.user_id) == {"ok": True}
        assert a.call("message", payloads.message(a.user_id, room_of(a, b)))["ok"]
        settle(b)
        assert [e for e, _ in b.got()] == ["messagePage", "messageResponseNotify"]
        assert a.client.transport() == "websocket"
    finally:
        a.close()
        b.close()


def test_the_master_loads_its_settings_and_worker_without_the_homeapp_package():
    """Importing homeapp in gunicorn's master would import redis, Flask and Socket.IO before
    the worker's gevent monkey-patching (redis would keep a blocking time.sleep)."""
    probe = ("import runpy, sys; from gunicorn.config import Config; "
             "settings = runpy.run_path('gunicorn.conf.py'); config = Config(); "
             "config.set('worker_class', settings['worker_class']); "  # what the master loads
             "print(config.worker_class.__name__, "
             "sorted(m for m in sys.modules if m.split('.')[0] in "
             "('homeapp', 'redis', 'flask', 'flask_socketio', 'engineio', 'socketio')))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True).stdout.split(None, 1)
    assert out == ["GeventWebSocketWorker", "[]\n"]


def test_the_master_refuses_an_untested_gunicorn_before_it_loads_the_worker():
    probe = ("import runpy, sys; from importlib import metadata; real = metadata.version; "
             "metadata.version = lambda name: '28.0.0' if name == 'gunicorn' else real(name)\n"
             "try:\n    runpy.run_path('gunicorn.conf.py')\n"
             "except SystemExit as exc:\n    print(exc, 'geventwebsocket' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.startswith("homeapp: cannot start: gunicorn 28.0.0 is installed"), out
    assert "gunicorn>=27.0.1,<27.1" in out and out.endswith(" False\n"), out
