from tests.live import room_of, settle


def test_two_users_chat(users):
    a, b = users(2)
    room = room_of(a, b)
    assert a.call("chatRoom.join", room) == {"ok": True}
    assert b.call("chatRoom.join", room) == {"ok": True}
    a.clear(), b.clear()
    ack = a.call("message", {"data": {"message": "hi", "from": a.user_id, "roomID": room}})
    assert ack["ok"] is True
    settle(a, b)
    assert [e for e, _ in b.got()] == ["messageRoom", "messagePage", "messageResponseNotify"]
