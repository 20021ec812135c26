from functools import partial

import pytest

from homeapp.errors import EventError
from homeapp.services import rooms
from homeapp.services.notifications import notification_for
from tests import payloads
from tests.inprocess import LocalClient, local_app
from tests.live import assert_refused, room_of, sockets_of


@pytest.mark.parametrize("room_id, members", [
    ("1:2", ("1", "2")),
    ("2:10", ("2", "10")),
    ("1:2:5", ("1", "2", "5")),
    ("12345678901234567890:99999999999999999999", ("12345678901234567890", "99999999999999999999")),
])
def test_members_of_canonical_ids(room_id, members):
    assert rooms.members_of(room_id, 50) == members


@pytest.mark.parametrize("room_id, reason", [
    ("10:2", "sorted numerically"),
    ("2:1", "sorted numerically"),
    ("1", "at least two"),
    ("", "at least two"),
    ("1:1", "repeats"),
    ("1::2", "1 to 20 digits"),
    ("a:2", "1 to 20 digits"),
    ("1:2 ", "1 to 20 digits"),
    ("-1:2", "1 to 20 digits"),
    ("1:٢", "1 to 20 digits"),  # a non-ASCII digit
    ("1:123456789012345678901", "1 to 20 digits"),
    (":".join(str(i) for i in range(1, 52)), "more than 50"),
    (12, "must be a string"),
    (None, "must be a string"),
])
def test_members_of_refuses(room_id, reason):
    with pytest.raises(ValueError, match=reason):
        rooms.members_of(room_id, 50)


def test_with_and_without_member_keep_ids_canonical():
    assert rooms.with_member("2:10", "3") == "2:3:10"
    assert rooms.without_member("2:3:10", "3") == "2:10"
    assert rooms.recipients_of("1:2:5", "2") == ["1", "5"]


@pytest.mark.parametrize("notifications, user, expected_id", [
    ([{"to": "2", "id": 1}, {"to": "3", "id": 2}], "3", 2),
    ([{"to": "room", "id": 1}], "7", 1),
    ([{"to": "room", "id": 1}, {"to": "7", "id": 2}], "7", 2),  # a personal one wins
    ([{"to": "2", "id": 1}], "3", None),
    ([], "3", None),
])
def test_notification_for_never_hands_out_anothers(notifications, user, expected_id):
    found = notification_for(notifications, user)
    assert (found and found["id"]) == expected_id or (found is None and expected_id is None)


@pytest.mark.parametrize("open_rooms, opening, still_in, after", [
    (set(), ["room:1:2"], set(), {"room:1:2"}),
    ({"room:1:2", "room:1:3"}, ["room:1:4"], {"room:1:2", "room:1:3"},
     {"room:1:2", "room:1:3", "room:1:4"}),
    # at the limit, a room the socket was taken out of (a kick, a deletion) no longer counts
    ({"room:1:2", "room:1:3", "room:1:4"}, ["room:1:5"], {"room:1:2", "room:1:4"},
     {"room:1:2", "room:1:4", "room:1:5"}),
], ids=["first", "under-the-limit", "a-closed-room-frees-its-place"])
def test_rooms_after_opening(open_rooms, opening, still_in, after):
    assert rooms.rooms_after_opening(open_rooms, opening, 3, still_in.__contains__) == after


@pytest.mark.parametrize("open_rooms, opening", [
    ({"room:1:2", "room:1:3", "room:1:4"}, ["room:1:5"]),
    ({"room:1:2", "room:1:3"}, ["room:1:4", "room:1:5"]),
], ids=["one-past", "two-at-once"])
def test_rooms_after_opening_refuses_past_the_limit(open_rooms, opening):
    with pytest.raises(EventError) as refused:
        rooms.rooms_after_opening(open_rooms, opening, 3, open_rooms.__contains__)
    assert refused.value.code == "RATE_LIMITED"


MAX_ROOMS = 5


@pytest.fixture
def capped_users():
    """users(n) on an app in this process whose sockets may have MAX_ROOMS rooms open."""
    with sockets_of(partial(LocalClient, local_app(MAX_ROOMS=MAX_ROOMS))) as connect:
        yield lambda count: [connect() for _ in range(count)]


def _open_rooms(me, others):
    room_ids = [room_of(me, other) for other in others]
    for room_id in room_ids:
        assert me.call("chatRoom.join", room_id) == {"ok": True}
    me.clear()
    return room_ids


def _says(sender, room_id, text):
    assert sender.call("message", payloads.message(sender.user_id, room_id, text))["ok"]


def test_a_join_past_max_rooms_is_rate_limited_and_opens_nothing(capped_users):
    me, *others = capped_users(MAX_ROOMS + 2)
    room_ids = _open_rooms(me, others[:MAX_ROOMS])
    extra = room_of(me, others[-1])
    assert_refused(me, "chatRoom.join", extra, "RATE_LIMITED", others)
    me.clear()
    _says(others[-1], extra, "to a room me could not open")
    # its own channel still has the page update; the open-room event never comes
    assert [event for event, _ in me.got()] == ["messagePage", "messageResponseNotify"]
    assert me.call("chatRoom.join", room_ids[0]) == {"ok": True}  # one already open: no new room


def test_a_leave_makes_room_for_another_join(capped_users):
    me, *others = capped_users(MAX_ROOMS + 2)
    room_ids = _open_rooms(me, others[:MAX_ROOMS])
    extra = room_of(me, others[-1])
    assert me.call("chatRoom.leave", room_ids[0]) == {"ok": True}
    assert me.call("chatRoom.join", extra) == {"ok": True}
    _says(others[-1], extra, "now open")
    assert [p["message"] for _, p in me.got("messageRoom")] == ["now open"]
    assert me.call("chatRoom.join", room_ids[0])["code"] == "RATE_LIMITED"


def test_a_deleted_room_no_longer_counts(capped_users):
    me, *others = capped_users(MAX_ROOMS + 2)
    room_ids = _open_rooms(me, others[:MAX_ROOMS])
    assert others[0].call("deleteUserRoom", payloads.delete_room(others[0].user_id, room_ids[0]))["ok"]
    assert me.call("chatRoom.join", room_of(me, others[-1])) == {"ok": True}
