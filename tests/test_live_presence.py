"""addOnlineUser, disconnect, joinRoom and leaveRoom, on both presence implementations."""
import pytest
import requests

from homeapp.store import redis_keys
from tests import payloads
from tests.live import Peer, assert_refused, new_user_id, settle
from tests.refusals import ADD_ONLINE_USER_CASES, ANONYMOUS_CASES, USER_CHANNEL_CASES


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


@pytest.mark.parametrize("make_payload, code", [c[1:] for c in ADD_ONLINE_USER_CASES],
                         ids=[c[0] for c in ADD_ONLINE_USER_CASES])
def test_add_online_user_refusals(connect, server, make_payload, code):
    observer = connect(live=False, join=False)
    me = connect(live=False, join=False)  # identity from the query, not yet live
    other = new_user_id()
    assert_refused(me, "addOnlineUser", make_payload(me.user_id, other), code, [observer])
    assert me.user_id not in online_ids(server) and other not in online_ids(server)


@pytest.mark.parametrize("event", ["joinRoom", "leaveRoom"])
@pytest.mark.parametrize("make_payload, code", [c[1:] for c in USER_CHANNEL_CASES],
                         ids=[c[0] for c in USER_CHANNEL_CASES])
def test_user_channel_refusals(connect_memory, event, make_payload, code):
    me, other = connect_memory(join=False), connect_memory()
    refusal = assert_refused(me, event, make_payload(me.user_id, other.user_id), code, [other])
    # a refused join does not subscribe: the other user's personal events still skip this socket
    assert other.call("ratingNotification", payloads.rating(other.user_id, other.user_id))["ok"]
    settle(me)
    assert me.got() == [("error", refusal)]


@pytest.mark.parametrize("event, payload", ANONYMOUS_CASES)
def test_every_event_but_add_online_user_needs_an_identity(connect_memory, event, payload):
    observer = connect_memory()
    anonymous = connect_memory(live=False, join=False, query=False)
    assert_refused(anonymous, event, payload, "UNAUTHENTICATED", [observer])
