"""Two processes on one Redis behave as one server: delivery, group events and exact presence,
directly and through nginx."""
import os

import pytest

from homeapp.store import redis_keys
from tests import payloads
from tests.cluster import NGINX, Cluster, NginxProxy, all_at_once
from tests.live import Peer, new_user_id, room_of, settle
from tests.processes import wait_until

GUNICORN = ("-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app")


@pytest.fixture(scope="module")
def cluster():
    cluster = Cluster(2)
    yield cluster
    cluster.close()


def event_names(peer):
    return [event for event, _ in peer.got()]


def join_room_of(*peers):
    """Every peer opens the room of their users (a user's second tab counts once in its id)."""
    room = ":".join(sorted({p.user_id for p in peers}, key=int))
    for peer in peers:
        assert peer.call("chatRoom.join", room) == {"ok": True}
    return room


def clear(*peers):
    for peer in peers:
        peer.clear()


def test_message_crosses_processes(cluster):
    a, b = cluster.peer(0), cluster.peer(1)
    room = join_room_of(a, b)
    clear(a, b)
    assert a.call("message", payloads.message(a.user_id, room, "across", date=payloads.DATE))["ok"]
    settle(a, b)
    relayed = {"message": "across", "from": a.user_id, "roomID": room,
               "fromUsername": a.username, "date": payloads.DATE}
    assert a.got() == [("messageRoom", relayed)]
    assert b.got()[0] == ("messageRoom", relayed)
    assert event_names(b) == ["messageRoom", "messagePage", "messageResponseNotify"]


def test_a_burst_crosses_processes_complete_and_in_order(cluster):
    """Emits to other processes are queued and pipelined: none is lost, none overtakes."""
    a, b = cluster.peer(0), cluster.peer(1)
    room = join_room_of(a, b)
    clear(a, b)
    texts = [f"burst {i}" for i in range(200)]
    for text in texts:
        a.emit("message", payloads.message(a.user_id, room, text))
    wait_until(lambda: len(b.got("messageResponseNotify")) == len(texts), 10, "every notification")
    assert [data["message"] for _, data in b.got("messageRoom")] == texts
    assert [data["lastMessage"] for _, data in b.got("messagePage")] == texts
    assert [data["lastMessage"] for _, data in b.got("messageResponseNotify")] == texts


def test_create_user_group_reaches_members_on_the_other_process(cluster):
    a, b, c = cluster.peer(0), cluster.peer(1), cluster.peer(1)
    room = room_of(a, b)
    payload = payloads.new_member(a.user_id, room, c.user_id)
    clear(a, b, c)
    assert a.call("createUserGroup", payload) == {"ok": True}
    settle(a, b, c)
    for peer in (b, c):
        notification = next(n for n in payload["data"]["notifications"] if n["to"] == peer.user_id)
        assert peer.got() == [
            ("createUserToGroupNotify", notification),
            ("createUserGroupChange", {**{k: payload["data"][k] for k in (
                "newUserID", "newUsername", "roomID", "newRoomID", "currentMember",
                "newUserPicturePath", "online")}, "clientUsername": a.username}),
        ]
    assert a.got() == []


def test_add_user_to_group_reaches_the_open_room_on_the_other_process(cluster):
    a, b, c, d = cluster.peer(0), cluster.peer(1), cluster.peer(1), cluster.peer(0)
    room = join_room_of(a, b, c)
    payload = payloads.new_member(a.user_id, room, d.user_id)
    clear(a, b, c, d)
    assert a.call("addUserToGroup", payload) == {"ok": True}
    settle(a, b, c, d)
    new_room = payload["data"]["newRoomID"]
    assert a.got() == [("addUserToGroupChangeInRoom", new_room)]
    for peer in (b, c):
        assert event_names(peer) == ["addUserToGroupChangeInRoom", "addUserToGroupNotify",
                                     "addUserToGroupChange"]
        assert peer.got()[0] == ("addUserToGroupChangeInRoom", new_room)
    assert event_names(d) == ["addUserToGroupNotify", "addUserToGroupChange"]


def test_kicked_user_leaves_the_room_on_every_process(cluster):
    a, b = cluster.peer(0), cluster.peer(1)
    kicked_far = cluster.peer(1)                         # the kicked user's tab on the other process
    kicked_near = cluster.peer(0, user_id=kicked_far.user_id)  # and one on the kicker's process
    room = join_room_of(a, b, kicked_far, kicked_near)
    clear(a, b, kicked_far, kicked_near)
    payload = payloads.kick(a.user_id, room, kicked_far.user_id)
    assert a.call("kickUserFromGroup", payload) == {"ok": True}
    settle(a, b, kicked_far, kicked_near)
    in_room = {"firstRoomID": payload["firstRoomID"], "kickedUserID": kicked_far.user_id,
               "newRoomID": payload["newRoomID"]}
    for peer in (b, kicked_far, kicked_near):
        assert peer.got()[0] == ("kickUserFromGroupChangeInRoom", in_room)
        assert event_names(peer) == ["kickUserFromGroupChangeInRoom", "kickUserFromGroupNotify",
                                     "kickUserFromGroupChange"]
    clear(a, b, kicked_far, kicked_near)
    # the old room id still names the kicked user: their channel hears of it, their open room does not
    assert a.call("message", payloads.message(a.user_id, room, "after the kick"))["ok"]
    b.wait_for("messageRoom", lambda p: p["message"] == "after the kick")
    settle(a, b, kicked_far, kicked_near)
    for peer in (kicked_far, kicked_near):
        assert event_names(peer) == ["messagePage", "messageResponseNotify"]


def test_deleted_room_is_emptied_on_every_process(cluster):
    a, b, c = cluster.peer(0), cluster.peer(1), cluster.peer(1)
    room = join_room_of(a, b, c)
    clear(a, b, c)
    assert a.call("deleteUserRoom", payloads.delete_room(a.user_id, room)) == {"ok": True}
    settle(a, b, c)
    for peer in (b, c):
        assert event_names(peer) == ["deleteUserRoomNotify", "deleteUserRoomChange"]
        assert peer.got()[1] == ("deleteUserRoomChange", {"roomID": room})
    clear(a, b, c)
    assert b.call("message", payloads.message(b.user_id, room, "into the void"))["ok"]
    a.wait_for("messagePage")
    c.wait_for("messagePage")
    settle(a, b, c)
    for peer in (a, b, c):
        assert "messageRoom" not in event_names(peer)


def test_personal_channel_events_cross_processes(cluster):
    sender, houseworker = cluster.peer(0), cluster.peer(1)
    second_tab = cluster.peer(0, user_id=houseworker.user_id)
    clear(houseworker, second_tab)
    assert sender.call("ratingNotification", payloads.rating(sender.user_id, houseworker.user_id))["ok"]
    for tab in (houseworker, second_tab):
        tab.wait_for(f"privateRatingNotify-{houseworker.user_id}")


def test_two_tabs_on_two_processes_are_one_user(cluster):
    observer = cluster.peer(0, live=False, join=False)
    far_observer = cluster.peer(1, live=False, join=False)
    first = cluster.peer(0)
    second = cluster.peer(1, user_id=first.user_id)
    user = first.user_id
    settle(observer, far_observer)
    assert observer.presence_of(user) == far_observer.presence_of(user) == [{"type": "Add", "userID": user}]
    first.close()
    settle(observer, far_observer)
    assert len(observer.presence_of(user)) == 1 and user in cluster.online()
    second.close()
    for peer in (observer, far_observer):
        peer.wait_for("newOnlineUser", lambda p: p == {"type": "Remove", "userID": user})
    settle(observer, far_observer)
    for peer in (observer, far_observer):
        assert peer.presence_of(user) == [{"type": "Add", "userID": user},
                                          {"type": "Remove", "userID": user}]
    assert user not in cluster.online()


def test_connect_and_disconnect_storms_leave_presence_exact(cluster):
    """Every user opens a tab on each process at the same moment, then closes both at once."""
    observers = [cluster.peer(0, live=False, join=False), cluster.peer(1, live=False, join=False)]
    user_ids = [new_user_id() for _ in range(12)]
    tabs = [Peer(cluster[index].url, user_id) for user_id in user_ids for index in (0, 1)]
    cluster.peers.extend(tabs)

    def go_live(tab):
        return lambda: tab.call("addOnlineUser", {"userID": tab.user_id, "userUsername": "storm"})

    all_at_once([go_live(tab) for tab in tabs])
    for observer in observers:
        for user_id in user_ids:
            observer.wait_for("newOnlineUser", lambda p, u=user_id: p == {"type": "Add", "userID": u})
    assert set(user_ids) <= cluster.online()

    all_at_once([tab.close for tab in tabs])
    for observer in observers:
        for user_id in user_ids:
            observer.wait_for("newOnlineUser", lambda p, u=user_id: p == {"type": "Remove", "userID": u})
    settle(*observers)
    for observer in observers:
        for user_id in user_ids:
            assert observer.presence_of(user_id) == [{"type": "Add", "userID": user_id},
                                                     {"type": "Remove", "userID": user_id}]
    client = cluster.client()
    assert not set(user_ids) & cluster.online()
    assert not any(client.exists(redis_keys.user_sockets(u)) for u in user_ids)


def require_nginx():
    """CI installs nginx, so there its absence is a failure; elsewhere the test is skipped."""
    if not NGINX.exists():
        reason = f"{NGINX} is missing (apt-get install nginx)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def proxied():
    """Two gunicorn processes (gunicorn.conf.py) on one Redis behind deploy/nginx.conf."""
    require_nginx()
    cluster = Cluster(0)
    proxy = None
    try:
        for _ in range(2):
            cluster.add_process(GUNICORN, HOMEAPP_ALLOW_OPEN=1)
        proxy = NginxProxy(cluster.processes).start()
        yield cluster, proxy
    finally:
        if proxy is not None:
            proxy.stop()
        cluster.close()


def servers_of(cluster, peers):
    """{peer: id of the server process holding its socket}."""
    client = cluster.client()
    held = {}
    for server_id in client.smembers(redis_keys.SERVERS):
        for sid in client.hkeys(redis_keys.server_sockets(server_id)):
            held[sid] = server_id
    return {peer: held[peer.client.get_sid()] for peer in peers}


def test_through_nginx_sticky_polling_and_websockets_reach_both_processes(proxied):
    cluster, proxy = proxied
    polling = [Peer(proxy.url, new_user_id(), f"p{i}", transports=("polling",)) for i in range(6)]
    upgrading = [Peer(proxy.url, new_user_id(), f"u{i}", transports=("polling", "websocket"))
                 for i in range(6)]
    peers = polling + upgrading
    cluster.peers.extend(peers)
    for peer in peers:
        assert peer.call("addOnlineUser", {"userID": peer.user_id, "userUsername": peer.username}) \
            == {"ok": True}
        assert peer.call("joinRoom", peer.user_id) == {"ok": True}
    wait_until(lambda: all(p.client.transport() == "websocket" for p in upgrading), 10,
               "the upgrade to websocket did not go through nginx")
    where = servers_of(cluster, peers)
    assert len(set(where.values())) == 2, "nginx sent every session to one process"

    # every request of a polling session reaches the process that holds it: many round trips
    for sender in polling:
        receiver = next(p for p in peers if where[p] != where[sender])
        room = room_of(sender, receiver)
        for peer in (sender, receiver):
            assert peer.call("chatRoom.join", room) == {"ok": True}
        for text in ("ping", "pong"):
            assert sender.call("message", payloads.message(sender.user_id, room, text))["ok"]
            receiver.wait_for("messageRoom", lambda p, t=text, r=room: p["message"] == t and p["roomID"] == r)
        assert receiver.call("message", payloads.message(receiver.user_id, room, "back"))["ok"]
        sender.wait_for("messageRoom", lambda p, r=room: p["message"] == "back" and p["roomID"] == r)
    assert all(p.client.connected and p.client.transport() == "polling" for p in polling)
