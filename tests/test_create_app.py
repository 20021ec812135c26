"""create_app() in one process, again and again: each app has its own state and settings."""
import pytest
from engineio.socket import Socket

from homeapp.operations import admin
from homeapp.seams import engineio as engineio_seam
from tests import payloads
from tests.credentials import ADMIN
from tests.inprocess import LocalClient, local_app
from tests.live import assert_refused, open_room, room_of

ADMIN_SETTINGS = {"ADMIN_USERNAME": ADMIN["username"], "ADMIN_PASSWORD": ADMIN["password"]}


@pytest.fixture(autouse=True)
def uninstrumented():
    """engineio's Socket class as the other tests of this process expect it, after each test."""
    yield
    admin.release()
    assert Socket._websocket_handler is engineio_seam._websocket_handler


def test_the_app_can_be_created_twice_in_one_process():
    first = local_app(**ADMIN_SETTINGS)
    early = LocalClient(first, "7", "early")
    assert early.call("addOnlineUser", {"userID": "7", "userUsername": "early"}) == {"ok": True}

    second = local_app(MAX_MESSAGE_LENGTH=10, **ADMIN_SETTINGS)
    a, b = (LocalClient(second, user_id, f"user{user_id}") for user_id in ("1", "2"))
    for peer in (a, b):
        assert peer.call("addOnlineUser", {"userID": peer.user_id, "userUsername": peer.username}) == {"ok": True}
        assert peer.call("joinRoom", peer.user_id) == {"ok": True}
    room = room_of(a, b)
    open_room(room, a, b)

    # each event is handled once, by the second app's handlers, with its settings
    assert a.call("message", payloads.message(a.user_id, room, "ten chars!"))["ok"]
    assert [e for e, _ in b.got()] == ["messageRoom", "messagePage", "messageResponseNotify"]
    assert [e for e, _ in a.got()] == ["messageRoom"]
    a.clear(), b.clear()
    assert_refused(a, "message", payloads.message(a.user_id, room, "eleven chars"), "VALIDATION_ERROR", [b])

    # presence is each app's own
    assert first.test_client().get("/api/online-users").json == ["7"]
    assert second.test_client().get("/api/online-users").json == ["1", "2"]
    assert second.test_client().get("/admin/").status_code == 200
    # python-socketio's Admin UI patches engineio's Socket class for the whole process: the
    # second app's instrumentation replaced the first's instead of wrapping it
    assert Socket._InstrumentedServer__websocket_handler is engineio_seam._websocket_handler


def test_an_app_without_the_admin_settings_has_no_admin_page_or_namespace():
    app = local_app()
    assert app.test_client().get("/admin/").status_code == 404
    assert not LocalClient(app, namespace="/admin", auth=dict(ADMIN)).connected
