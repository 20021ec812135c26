"""Group chats: each recipient gets its own notification and the room-list change, nobody else does."""
import pytest

from tests import payloads
from tests.live import assert_refused, open_room, room_of, settle
from tests.refusals import DELETE_CASES, KICK_CASES, NEW_MEMBER_CASES, refuse_kick, refuse_new_member


def notification_to(payload, user_id):
    return next(n for n in payload["notifications"] if n["to"] == user_id)


def test_create_user_group(users):
    a, b, c, outsider = users(4)
    payload = payloads.new_member(a.user_id, room_of(a, b), c.user_id)
    data = payload["data"]
    open_room(room_of(a, b), a, b)
    assert a.call("createUserGroup", payload) == {"ok": True}
    settle(a, b, c, outsider)
    change = {k: data[k] for k in ("newUserID", "newUsername", "roomID", "newRoomID", "currentMember",
                                   "clientUsername", "newUserPicturePath", "online")}
    for peer in (b, c):
        assert peer.got() == [("createUserToGroupNotify", notification_to(data, peer.user_id)),
                              ("createUserGroupChange", change)]
    assert a.got() == [] and outsider.got() == []


def test_a_recipient_without_a_notification_still_gets_the_change(users):
    a, b, c = users(3)
    payload = payloads.new_member(a.user_id, room_of(a, b), c.user_id)
    payload["data"]["notifications"] = [n for n in payload["data"]["notifications"] if n["to"] == c.user_id]
    assert a.call("createUserGroup", payload) == {"ok": True}
    settle(b, c)
    assert [e for e, _ in b.got()] == ["createUserGroupChange"]
    assert [e for e, _ in c.got()] == ["createUserToGroupNotify", "createUserGroupChange"]


def test_add_user_to_group(users):
    a, b, c, d, outsider = users(5)
    room = room_of(a, b, c)
    open_room(room, a, b)
    payload = payloads.new_member(a.user_id, room, d.user_id)
    data = payload["data"]
    assert a.call("addUserToGroup", payload) == {"ok": True}
    settle(a, b, c, d, outsider)
    change = {k: data[k] for k in ("newUserID", "newUsername", "roomID", "newRoomID", "currentMember",
                                   "clientUsername", "newUserPicturePath", "online")}
    in_room = ("addUserToGroupChangeInRoom", data["newRoomID"])
    assert a.got() == [in_room]
    assert b.got() == [in_room, ("addUserToGroupNotify", notification_to(data, b.user_id)),
                       ("addUserToGroupChange", change)]
    for peer in (c, d):  # members without the room open
        assert peer.got() == [("addUserToGroupNotify", notification_to(data, peer.user_id)),
                              ("addUserToGroupChange", change)]
    assert outsider.got() == []


def test_kick_user_from_group(users):
    a, b, c, d, outsider = users(5)
    room = room_of(a, b, c, d)
    open_room(room, a, b, c)
    payload = payloads.kick(a.user_id, room, c.user_id)
    assert a.call("kickUserFromGroup", payload) == {"ok": True}
    settle(a, b, c, d, outsider)
    in_room = ("kickUserFromGroupChangeInRoom", {"firstRoomID": payload["firstRoomID"],
                                                 "kickedUserID": c.user_id,
                                                 "newRoomID": payload["newRoomID"]})
    change = ("kickUserFromGroupChange", {"roomID": room, "newRoomID": payload["newRoomID"],
                                          "kickedUsername": f"user{c.user_id}", "kickedUserID": c.user_id})

    def notify(peer):
        return ("kickUserFromGroupNotify", {"roomID": room, "newRoomID": payload["newRoomID"],
                                            "kickedUserID": c.user_id,
                                            "notification": notification_to(payload, peer.user_id)})
    assert a.got() == [in_room]
    assert b.got() == [in_room, notify(b), change]
    assert c.got() == [in_room, notify(c), change]
    assert d.got() == [notify(d), change]
    assert outsider.got() == []
    # the kicked user's socket has left the old room: b's next message there does not reach it
    for peer in (a, b, c, d):
        peer.clear()
    assert b.call("message", payloads.message(b.user_id, room, "after the kick"))["ok"]
    settle(a, c)
    assert a.got("messageRoom") and not c.got("messageRoom")


def test_delete_user_room(users):
    a, b, c, outsider = users(4)
    room = room_of(a, b, c)
    open_room(room, a, b, c)
    payload = payloads.delete_room(a.user_id, room)
    assert a.call("deleteUserRoom", payload) == {"ok": True}
    settle(a, b, c, outsider)
    for peer in (b, c):
        assert peer.got() == [("deleteUserRoomNotify", dict(payload["notifications"][0], roomID=room)),
                              ("deleteUserRoomChange", {"roomID": room})]
    assert a.got() == [] and outsider.got() == []
    # the room was emptied: nobody's open view of it receives messageRoom any more
    for peer in (a, b, c):
        peer.clear()
    assert b.call("message", payloads.message(b.user_id, room, "anyone?"))["ok"]
    settle(a, b, c)
    assert not (a.got("messageRoom") or b.got("messageRoom") or c.got("messageRoom"))


@pytest.mark.parametrize("event", ["createUserGroup", "addUserToGroup"])
@pytest.mark.parametrize("make_payload, code", [c[1:] for c in NEW_MEMBER_CASES],
                         ids=[c[0] for c in NEW_MEMBER_CASES])
def test_new_member_refusals(memory_users, event, make_payload, code):
    refuse_new_member(memory_users, event, make_payload, code)


@pytest.mark.parametrize("make_payload, code", [c[1:] for c in KICK_CASES], ids=[c[0] for c in KICK_CASES])
def test_kick_refusals(memory_users, make_payload, code):
    refuse_kick(memory_users, make_payload, code)


@pytest.mark.parametrize("make_payload, code", [c[1:] for c in DELETE_CASES],
                         ids=[c[0] for c in DELETE_CASES])
def test_delete_refusals(memory_users, make_payload, code):
    a, b, c = memory_users(3)
    room = room_of(b, c)
    open_room(room, b, c)
    assert_refused(a, "deleteUserRoom", make_payload(a.user_id, b.user_id, c.user_id), code, [b, c])
    assert b.call("message", payloads.message(b.user_id, room, "room intact"))["ok"]
    c.wait_for("messageRoom")
