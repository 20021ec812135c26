"""chatRoom.join and chatRoom.leave: members only, and they decide who sees messageRoom."""
import pytest

from tests import payloads
from tests.live import assert_refused, room_of, settle
from tests.refusals import CHAT_ROOM_CASES


def test_joined_members_see_the_room_and_leaving_stops_it(users):
    a, b = users(2)
    room = room_of(a, b)
    assert a.call("chatRoom.join", room) == {"ok": True}
    assert b.call("chatRoom.join", room) == {"ok": True}
    assert a.call("message", payloads.message(a.user_id, room, "one"))["ok"]
    b.wait_for("messageRoom", lambda p: p["message"] == "one")
    assert b.call("chatRoom.leave", room) == {"ok": True}
    b.clear()
    assert a.call("message", payloads.message(a.user_id, room, "two"))["ok"]
    settle(a, b)
    # the page update still reaches b's own channel; the open-room event does not
    assert [e for e, _ in b.got()] == ["messagePage", "messageResponseNotify"]


@pytest.mark.parametrize("event", ["chatRoom.join", "chatRoom.leave"])
@pytest.mark.parametrize("make_room, code", [c[1:] for c in CHAT_ROOM_CASES],
                         ids=[c[0] for c in CHAT_ROOM_CASES])
def test_chat_room_refusals(memory_users, event, make_room, code):
    a, b, c = memory_users(3)
    room_bc = room_of(b, c)
    assert b.call("chatRoom.join", room_bc) == {"ok": True}
    b.clear()
    assert_refused(a, event, make_room(a.user_id, b.user_id, c.user_id), code, [b, c])
    # a refused join leaves a outside the room
    assert b.call("message", payloads.message(b.user_id, room_bc, "private"))["ok"]
    settle(a)
    assert [e for e, _ in a.got()] == ["error"]
