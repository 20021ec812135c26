"""chatRoom.join and chatRoom.leave: members only, and they decide who sees messageRoom."""
import pytest

from homeapp.services.rooms import room_channel
from homeapp.store.redis_keys import queue_channel
from tests import payloads
from tests.conftest import FAST
from tests.live import assert_refused, peers_on, room_of, settle
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


MAX_ROOMS = 5


@pytest.fixture(scope="module")
def capped_server(server_factory, redis_server):
    return server_factory(HOMEAPP_MAX_ROOMS=MAX_ROOMS, REDIS_URL=redis_server.url, **FAST)


def test_a_join_past_max_rooms_is_rate_limited_and_subscribes_to_nothing(capped_server, redis_server):
    with peers_on(capped_server) as connect:
        me, *others = [connect() for _ in range(MAX_ROOMS + 2)]
        room_ids = [room_of(me, other) for other in others]
        for room_id in room_ids[:MAX_ROOMS]:
            assert me.call("chatRoom.join", room_id) == {"ok": True}
        me.clear()
        extra, extra_peer = room_ids[MAX_ROOMS], others[MAX_ROOMS]
        assert_refused(me, "chatRoom.join", extra, "RATE_LIMITED", others)
        client = redis_server.client()
        channels = client.pubsub_channels() + client.pubsub_shardchannels()  # Redis 7 shards them
        assert queue_channel(room_channel(room_ids[0])) in channels
        assert queue_channel(room_channel(extra)) not in channels
        me.clear()
        assert extra_peer.call("message", payloads.message(extra_peer.user_id, extra, "one"))["ok"]
        settle(me, extra_peer)
        # its own channel has the page update; the open-room event never comes
        assert [e for e, _ in me.got()] == ["messagePage", "messageResponseNotify"]

        assert me.call("chatRoom.leave", room_ids[0]) == {"ok": True}
        assert me.call("chatRoom.join", extra) == {"ok": True}
        me.clear()
        assert extra_peer.call("message", payloads.message(extra_peer.user_id, extra, "two"))["ok"]
        assert me.wait_for("messageRoom")["message"] == "two"
        assert me.call("chatRoom.join", room_ids[0])["code"] == "RATE_LIMITED"
