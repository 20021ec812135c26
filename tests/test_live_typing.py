"""startTypingRoom / stopTypingRoom, and the stop a disconnect sends on the typist's behalf."""
import pytest

from tests import payloads
from tests.conftest import FAST
from tests.live import assert_refused, open_room, peers_on, room_of, settle
from tests.refusals import TYPING_CASES

EVENTS = [("startTypingRoom", "typingMessageStart"), ("stopTypingRoom", "typingMessageStop")]


@pytest.fixture
def room(users):
    a, b, outsider = users(3)
    room_id = room_of(a, b)
    open_room(room_id, a, b)
    outsider.clear()
    return a, b, outsider, room_id


@pytest.mark.parametrize("client_event, server_event", EVENTS)
def test_typing_reaches_the_room_but_not_the_typist(room, client_event, server_event):
    a, b, outsider, room_id = room
    assert a.call(client_event, payloads.typing(a.user_id, room_id, "typed-name")) == {"ok": True}
    settle(a, b, outsider)
    assert b.got() == [(server_event, {"senderID": a.user_id, "senderUsername": f"user{a.user_id}",
                                       "roomID": room_id})]
    assert a.got() == [] and outsider.got() == []


def test_disconnecting_while_typing_stops_it(room):
    a, b, _, room_id = room
    assert a.call("startTypingRoom", payloads.typing(a.user_id, room_id)) == {"ok": True}
    b.wait_for("typingMessageStart")
    a.close()
    stop = b.wait_for("typingMessageStop")
    assert stop == {"senderID": a.user_id, "senderUsername": f"user{a.user_id}", "roomID": room_id}


def test_disconnecting_after_stopping_sends_no_second_stop(room):
    a, b, _, room_id = room
    assert a.call("startTypingRoom", payloads.typing(a.user_id, room_id)) == {"ok": True}
    assert a.call("stopTypingRoom", payloads.typing(a.user_id, room_id)) == {"ok": True}
    a.close()
    settle(b)
    assert [e for e, _ in b.got()] == ["typingMessageStart", "typingMessageStop"]


@pytest.mark.parametrize("client_event", ["startTypingRoom", "stopTypingRoom"])
@pytest.mark.parametrize("make_payload, code", [c[1:] for c in TYPING_CASES],
                         ids=[c[0] for c in TYPING_CASES])
def test_typing_refusals(memory_users, client_event, make_payload, code):
    a, b = memory_users(2)
    room_id = room_of(a, b)
    open_room(room_id, b)
    assert_refused(a, client_event, make_payload(a.user_id, b.user_id, room_id), code, [b])


@pytest.mark.parametrize("remembered", [3, 32])
def test_typing_in_endless_rooms_remembers_only_the_latest(server_factory, remembered):
    server = server_factory(HOMEAPP_TYPING_ROOMS=remembered, **FAST)
    with peers_on(server) as connect:
        a, first, last = (connect(live=False, join=False) for _ in range(3))
        others = [f"{a.user_id}:{int(last.user_id) + i}" for i in range(1, remembered)]
        rooms = [room_of(a, first)] + others + [room_of(a, last)]
        assert first.call("chatRoom.join", rooms[0]) == {"ok": True}
        assert last.call("chatRoom.join", rooms[-1]) == {"ok": True}
        for room_id in rooms:
            assert a.call("startTypingRoom", payloads.typing(a.user_id, room_id)) == {"ok": True}
        last.wait_for("typingMessageStart")
        a.close()
        # the first room fell out of what a remembers, so no stop is sent for it; the latest did not
        last.wait_for("typingMessageStop")
        settle(first, last)
        assert [e for e, _ in first.got()] == ["typingMessageStart"]
        assert [e for e, _ in last.got()] == ["typingMessageStart", "typingMessageStop"]
