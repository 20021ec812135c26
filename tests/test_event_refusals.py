"""Every client event's refusal table, in process: the right code as the ack, one `error` event to
the sender, nothing to anyone else, nothing changed. The tables are tests/refusals.py's; the
live tests (tests/test_live_*.py) run them over the wire."""
from functools import partial

import pytest

from tests import payloads
from tests.inprocess import LocalClient, local_app
from tests.live import assert_refused, new_user_id, open_room, room_of, sockets_of
from tests.refusals import (ADD_ONLINE_USER_CASES, ANONYMOUS_CASES, BAD_MESSAGES, CHAT_ROOM_CASES,
                            DELETE_CASES, KICK_CASES, NEW_MEMBER_CASES, NOTIFICATION_CASES,
                            TYPING_CASES, USER_CHANNEL_CASES, refuse_kick, refuse_new_member)

TYPING_EVENTS = ["startTypingRoom", "stopTypingRoom"]


def table(cases):
    """pytest.param per case of a refusal table, named by its id."""
    return [pytest.param(*case[1:], id=case[0]) for case in cases]


def online(app):
    return app.extensions["homeapp"].presence.online_users()


@pytest.mark.parametrize("make_payload, code", table(ADD_ONLINE_USER_CASES))
def test_add_online_user(app, connect_local, make_payload, code):
    observer = connect_local(live=False, join=False)
    me = connect_local(live=False, join=False)  # identity from the query, not yet live
    other = new_user_id()
    assert_refused(me, "addOnlineUser", make_payload(me.user_id, other), code, [observer])
    assert not online(app)


@pytest.mark.parametrize("event", ["joinRoom", "leaveRoom"])
@pytest.mark.parametrize("make_payload, code", table(USER_CHANNEL_CASES))
def test_user_channel(connect_local, event, make_payload, code):
    me, other = connect_local(join=False), connect_local()
    refusal = assert_refused(me, event, make_payload(me.user_id, other.user_id), code, [other])
    assert other.call("ratingNotification", payloads.rating(other.user_id, other.user_id))["ok"]
    assert me.got() == [("error", refusal)]  # not subscribed to the other's channel


@pytest.mark.parametrize("event", ["chatRoom.join", "chatRoom.leave"])
@pytest.mark.parametrize("make_room, code", table(CHAT_ROOM_CASES))
def test_chat_room(local_users, event, make_room, code):
    a, b, c = local_users(3)
    room_bc = room_of(b, c)
    open_room(room_bc, b)
    refusal = assert_refused(a, event, make_room(a.user_id, b.user_id, c.user_id), code, [b, c])
    assert b.call("message", payloads.message(b.user_id, room_bc, "private"))["ok"]
    assert a.got() == [("error", refusal)]  # still outside the room


@pytest.mark.parametrize("make_payload, code", table(BAD_MESSAGES))
def test_message(local_users, make_payload, code):
    a, b, outsider = local_users(3)
    room = room_of(a, b)
    open_room(room, b)
    assert_refused(a, "message", make_payload(a.user_id, b.user_id, room), code, [b, outsider])


@pytest.mark.parametrize("event", TYPING_EVENTS)
@pytest.mark.parametrize("make_payload, code", table(TYPING_CASES))
def test_typing(local_users, event, make_payload, code):
    a, b = local_users(2)
    room = room_of(a, b)
    open_room(room, b)
    assert_refused(a, event, make_payload(a.user_id, b.user_id, room), code, [b])
    a.close()  # a refused start leaves no typing to stop
    assert b.got() == []


@pytest.mark.parametrize("event", ["createUserGroup", "addUserToGroup"])
@pytest.mark.parametrize("make_payload, code", table(NEW_MEMBER_CASES))
def test_new_member(local_users, event, make_payload, code):
    refuse_new_member(local_users, event, make_payload, code)


@pytest.mark.parametrize("make_payload, code", table(KICK_CASES))
def test_kick(local_users, make_payload, code):
    refuse_kick(local_users, make_payload, code)


@pytest.mark.parametrize("make_payload, code", table(DELETE_CASES))
def test_delete_room(local_users, make_payload, code):
    a, b, c = local_users(3)
    room = room_of(b, c)
    open_room(room, b, c)
    assert_refused(a, "deleteUserRoom", make_payload(a.user_id, b.user_id, c.user_id), code, [b, c])
    assert b.call("message", payloads.message(b.user_id, room, "room intact"))["ok"]
    assert c.got("messageRoom")


@pytest.mark.parametrize("event, make_payload, code",
                         [pytest.param(c[0], *c[2:], id=f"{c[0]}-{c[1]}") for c in NOTIFICATION_CASES])
def test_notification(local_users, event, make_payload, code):
    client, houseworker, bystander = local_users(3)
    assert_refused(client, event, make_payload(client.user_id, houseworker.user_id), code,
                   [houseworker, bystander])


@pytest.mark.parametrize("event, payload", ANONYMOUS_CASES)
def test_every_event_but_add_online_user_needs_an_identity(connect_local, event, payload):
    observer = connect_local()
    anonymous = connect_local(live=False, join=False, query=False)
    assert_refused(anonymous, event, payload, "UNAUTHENTICATED", [observer])


@pytest.mark.parametrize("event, setting", [("message", "MESSAGE"), ("startTypingRoom", "TYPING"),
                                            ("stopTypingRoom", "TYPING")])
def test_past_its_burst_a_socket_is_rate_limited(event, setting):
    app = local_app(**{f"{setting}_RATE": 1.0, f"{setting}_BURST": 2})
    with sockets_of(partial(LocalClient, app)) as connect:
        a, b = connect(), connect()
        room = room_of(a, b)
        open_room(room, b)
        build = payloads.message if event == "message" else payloads.typing
        for _ in range(2):
            assert a.call(event, build(a.user_id, room))["ok"]
        b.clear()
        assert_refused(a, event, build(a.user_id, room), "RATE_LIMITED", [b])
        tab = connect(user_id=a.user_id)  # another tab has its own allowance
        assert tab.call(event, build(a.user_id, room))["ok"]
