"""addOnlineUser, disconnect, joinRoom and leaveRoom, on both presence implementations."""
import pytest
import requests

from homeapp.cluster import redis_keys
from tests import payloads
from tests.live import Peer, assert_refused, new_user_id, settle


def online_ids(server):
    return requests.get(server.url + "/api/online-users", timeout=5).json()


def test_first_tab_announces_add_to_everyone(connect, server):
    observer = connect(live=False, join=False)
    user = connect()
    settle(observer, user)
    assert observer.presence_of(user.user_id) == [{"type": "Add", "userID": user.user_id}]
    assert user.presence_of(user.user_id) == [{"type": "Add", "userID": user.user_id}]
    assert user.user_id in online_ids(server)


def test_second_tab_and_closing_one_tab_announce_nothing(connect, server):
    observer = connect(live=False, join=False)
    first = connect()
    second = connect(user_id=first.user_id)
    first.close()
    settle(observer, second)
    assert observer.presence_of(first.user_id) == [{"type": "Add", "userID": first.user_id}]
    assert first.user_id in online_ids(server)
    second.close()
    observer.wait_for("newOnlineUser", lambda p: p == {"type": "Remove", "userID": first.user_id})
    settle(observer)
    assert observer.presence_of(first.user_id) == [{"type": "Add", "userID": first.user_id},
                                                    {"type": "Remove", "userID": first.user_id}]
    assert first.user_id not in online_ids(server)


def test_online_users_set_in_redis_follows_live_sockets(redis_backed_server, redis_server):
    client = redis_server.client()
    observer = Peer(redis_backed_server.url)
    user = Peer(redis_backed_server.url, new_user_id())
    try:
        assert not client.sismember(redis_keys.ONLINE_USERS, user.user_id)  # connected, not yet live
        user.call("addOnlineUser", {"userID": user.user_id, "userUsername": "a"})
        assert client.sismember(redis_keys.ONLINE_USERS, user.user_id)
        user.close()
        observer.wait_for("newOnlineUser", lambda p: p == {"type": "Remove", "userID": user.user_id})
        assert not client.sismember(redis_keys.ONLINE_USERS, user.user_id)
    finally:
        user.close()
        observer.close()


def test_socket_that_never_went_live_announces_nothing(connect):
    observer = connect(live=False, join=False)
    quiet = connect(live=False)
    quiet.close()
    settle(observer)
    assert observer.presence_of(quiet.user_id) == []


def test_identity_can_come_from_add_online_user(connect):
    anonymous = connect(user_id=new_user_id(), live=False, join=False, query=False)
    assert_refused(anonymous, "joinRoom", anonymous.user_id, "UNAUTHENTICATED")
    anonymous.clear()
    assert anonymous.call("addOnlineUser", {"userID": anonymous.user_id, "username": "n"}) == {"ok": True}
    assert anonymous.call("joinRoom", anonymous.user_id) == {"ok": True}
    other = new_user_id()
    anonymous.clear()
    assert_refused(anonymous, "addOnlineUser", {"userID": other, "userUsername": "x"}, "FORBIDDEN")


def test_repeated_add_online_user_is_idempotent(connect):
    observer = connect(live=False, join=False)
    user = connect()
    assert user.call("addOnlineUser", {"userID": user.user_id, "userUsername": "again"}) == {"ok": True}
    settle(observer)
    assert len(observer.presence_of(user.user_id)) == 1


def test_join_room_receives_personal_events_and_leave_room_stops_them(connect):
    sender, houseworker = connect(), connect(join=False)
    assert sender.call("ratingNotification", payloads.rating(sender.user_id, houseworker.user_id))["ok"]
    settle(houseworker)
    assert houseworker.got() == []
    assert houseworker.call("joinRoom", houseworker.user_id) == {"ok": True}
    assert sender.call("ratingNotification", payloads.rating(sender.user_id, houseworker.user_id))["ok"]
    houseworker.wait_for(f"privateRatingNotify-{houseworker.user_id}")
    assert houseworker.call("leaveRoom", houseworker.user_id) == {"ok": True}
    houseworker.clear()
    assert sender.call("ratingNotification", payloads.rating(sender.user_id, houseworker.user_id))["ok"]
    settle(houseworker)
    assert houseworker.got() == []


USERNAME_TOO_LONG = "x" * 65


@pytest.mark.parametrize("make_payload, code", [
    (lambda me, other: None, "VALIDATION_ERROR"),
    (lambda me, other: me, "VALIDATION_ERROR"),
    (lambda me, other: [me], "VALIDATION_ERROR"),
    (lambda me, other: {}, "VALIDATION_ERROR"),
    (lambda me, other: {"userID": "abc"}, "VALIDATION_ERROR"),
    (lambda me, other: {"userID": -1}, "VALIDATION_ERROR"),
    (lambda me, other: {"userID": True}, "VALIDATION_ERROR"),
    (lambda me, other: {"userID": "1" * 21}, "VALIDATION_ERROR"),
    (lambda me, other: {"userID": me, "userUsername": USERNAME_TOO_LONG}, "VALIDATION_ERROR"),
    (lambda me, other: {"userID": me, "userUsername": 5}, "VALIDATION_ERROR"),
    (lambda me, other: {"userID": me, "userUsername": ""}, "VALIDATION_ERROR"),
    (lambda me, other: {"userID": other, "userUsername": "impostor"}, "FORBIDDEN"),
], ids=["null", "bare-string", "list", "empty", "letters", "negative", "boolean", "21-digits",
        "long-name", "name-not-string", "empty-name", "someone-else"])
def test_add_online_user_refusals(connect, server, make_payload, code):
    observer = connect(live=False, join=False)
    me = connect(live=False, join=False)  # identity from the query, not yet live
    other = new_user_id()
    assert_refused(me, "addOnlineUser", make_payload(me.user_id, other), code, [observer])
    assert me.user_id not in online_ids(server) and other not in online_ids(server)


@pytest.mark.parametrize("event", ["joinRoom", "leaveRoom"])
@pytest.mark.parametrize("make_payload, code", [
    (lambda me, other: None, "VALIDATION_ERROR"),
    (lambda me, other: "", "VALIDATION_ERROR"),
    (lambda me, other: "abc", "VALIDATION_ERROR"),
    (lambda me, other: f"user:{me}", "VALIDATION_ERROR"),
    (lambda me, other: {"userID": me}, "VALIDATION_ERROR"),
    (lambda me, other: [me], "VALIDATION_ERROR"),
    (lambda me, other: other, "FORBIDDEN"),
], ids=["null", "empty", "letters", "channel-name", "object", "list", "someone-else"])
def test_user_channel_refusals(connect_memory, event, make_payload, code):
    me, other = connect_memory(join=False), connect_memory()
    refusal = assert_refused(me, event, make_payload(me.user_id, other.user_id), code, [other])
    # a refused join does not subscribe: the other user's personal events still skip this socket
    assert other.call("ratingNotification", payloads.rating(other.user_id, other.user_id))["ok"]
    settle(me)
    assert me.got() == [("error", refusal)]


@pytest.mark.parametrize("event, payload", [
    ("joinRoom", "1"), ("leaveRoom", "1"), ("chatRoom.join", "1:2"), ("chatRoom.leave", "1:2"),
    ("message", payloads.message("1", "1:2")), ("startTypingRoom", payloads.typing("1", "1:2")),
    ("stopTypingRoom", payloads.typing("1", "1:2")),
    ("createUserGroup", payloads.new_member("1", "1:2", "3")),
    ("addUserToGroup", payloads.new_member("1", "1:2:3", "4")),
    ("kickUserFromGroup", payloads.kick("1", "1:2:3", "3")),
    ("deleteUserRoom", payloads.delete_room("1", "1:2:3")),
    ("commentNotification", payloads.comment("1", "2")),
    ("ratingNotification", payloads.rating("1", "2")),
])
def test_every_event_but_add_online_user_needs_an_identity(connect_memory, event, payload):
    observer = connect_memory()
    anonymous = connect_memory(live=False, join=False, query=False)
    assert_refused(anonymous, event, payload, "UNAUTHENTICATED", [observer])
