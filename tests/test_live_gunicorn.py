"""The production entry: wsgi:app under gunicorn.conf.py (homeapp's gevent-websocket worker) speaks the protocol."""
import pytest

from tests import payloads
from tests.live import Peer, new_user_id, room_of, settle
from tests.processes import ServerProcess


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
