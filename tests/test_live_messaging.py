"""`message`: who receives which event with which payload, and who does not."""
import json

import pytest

from tests import payloads
from tests.payloads import DROP, changed
from tests.live import assert_refused, open_room, raw_socket, room_of, settle
from tests.refusals import BAD_MESSAGES


@pytest.fixture
def chat(users):
    """Two users with the room open in one tab each, and an outsider."""
    a, b, outsider = users(3)
    room = room_of(a, b)
    open_room(room, a, b)
    outsider.clear()
    return a, b, outsider, room


def test_private_message_reaches_each_party_once(chat):
    a, b, outsider, room = chat
    ack = a.call("message", payloads.message(a.user_id, room, "Hello!", date=payloads.DATE))
    assert ack["ok"] is True and len(ack["id"]) == 32 and ack["date"] == payloads.DATE
    settle(a, b, outsider)
    relayed = {"message": "Hello!", "from": a.user_id, "roomID": room,
               "fromUsername": f"user{a.user_id}", "date": payloads.DATE}
    assert a.got() == [("messageRoom", relayed)]
    assert b.got() == [
        ("messageRoom", relayed),
        ("messagePage", {"roomID": room, "lastMessage": "Hello!"}),
        ("messageResponseNotify", {"roomID": room, "fromUsername": f"user{a.user_id}",
                                   "fromUserID": a.user_id, "userID": b.user_id,
                                   "lastMessage": "Hello!", "unreadUpdateStatus": True,
                                   "createRoomNotification": None}),
    ]
    assert outsider.got() == []


def test_message_ids_are_unique_and_utf8_texts_arrive_intact(chat, server):
    a, b, outsider, room = chat
    # raw UTF-8 on the wire (Python's client would escape it to ASCII), in frames long enough
    # for 16-bit lengths: what the server's unmasking and UTF-8 validation see from a browser
    texts = ["Grüße, señor! こんにちは 👋🏽", "ż" * 5000, "👋" * 5000]
    ws = raw_socket(server, a.user_id)
    try:
        for ack_id, text in enumerate(texts):
            packet = json.dumps(["message", payloads.message(a.user_id, room, text)], ensure_ascii=False)
            ws.send(f"42{ack_id}{packet}")
        acks = [ws.recv() for _ in texts]
    finally:
        ws.close()
    assert [ack[:3] for ack in acks] == ["430", "431", "432"]
    ids = {json.loads(ack[3:])[0]["id"] for ack in acks}
    assert len(ids) == len(texts) and all(len(i) == 32 and set(i) <= set("0123456789abcdef") for i in ids)
    settle(a, b, outsider)
    assert [data["message"] for event, data in b.got() if event == "messageRoom"] == texts
    assert outsider.got() == []


def test_first_contact_replaces_the_page_update(chat):
    a, b, outsider, room = chat
    note = payloads.notification(a.user_id, b.user_id, "new conversation")
    assert a.call("message", payloads.message(a.user_id, room, "Hi there", contact=True,
                                              createRoomNotification=note))["ok"]
    settle(a, b, outsider)
    assert b.got("firstMessageConversation", "messagePage") == [
        ("firstMessageConversation", {"roomID": room, "from": a.user_id,
                                      "fromUsername": f"user{a.user_id}", "lastMessage": "Hi there"})]
    assert b.got("messageResponseNotify")[0][1]["createRoomNotification"] == note
    assert outsider.got() == []


@pytest.mark.parametrize("date", [None, DROP, {"day": 31, "month": 2, "year": 2025, "time": "10:00"},
                                  {"day": 1, "month": 1, "year": 2025, "time": "25:00"}, "yesterday"],
                         ids=["null", "absent", "no-such-day", "no-such-time", "string"])
def test_missing_or_invalid_date_is_replaced_by_the_server_clock(chat, date):
    a, b, _, room = chat
    ack = a.call("message", changed(payloads.message(a.user_id, room), "data.date", date)
                 if date is not DROP else payloads.message(a.user_id, room))
    assert ack["ok"] is True
    assert set(ack["date"]) == {"day", "month", "year", "time"} and ack["date"] != date
    assert b.wait_for("messageRoom")["date"] == ack["date"]


def test_group_message_gives_each_recipient_its_own_unread_status(users):
    a, b, c = users(3)
    room = room_of(a, b, c)
    payload = payloads.message(a.user_id, room, "to all", unreadMessArray=[
        {"recipientID": b.user_id, "countNumber": 3, "updateStatus": False}])
    assert a.call("message", payload)["ok"]
    settle(a, b, c)
    assert b.got("messageResponseNotify")[0][1]["unreadUpdateStatus"] is False
    assert c.got("messageResponseNotify")[0][1]["unreadUpdateStatus"] is None
    assert [p["userID"] for p in (b.got("messageResponseNotify")[0][1],
                                  c.got("messageResponseNotify")[0][1])] == [b.user_id, c.user_id]
    assert a.got() == []  # the room was not opened: no echo, and nothing addressed to the sender


def test_every_tab_of_a_recipient_is_notified(connect):
    a, b = connect(), connect()
    b_tab = connect(user_id=b.user_id)
    assert a.call("message", payloads.message(a.user_id, room_of(a, b), "both tabs"))["ok"]
    settle(b, b_tab)
    assert b.got() == b_tab.got() and [e for e, _ in b.got()] == ["messagePage", "messageResponseNotify"]


def test_sender_name_comes_from_the_identity_and_unknown_fields_are_dropped(chat):
    a, b, _, room = chat
    note = dict(payloads.notification(a.user_id, b.user_id), secret="x")
    payload = payloads.message(a.user_id, room, "hey", fromUsername="impostor", evil=True,
                               createRoomNotification=note)
    assert a.call("message", payload)["ok"]
    settle(a, b)
    relayed = b.got("messageRoom")[0][1]
    assert relayed["fromUsername"] == f"user{a.user_id}" and "evil" not in relayed
    assert "secret" not in b.got("messageResponseNotify")[0][1]["createRoomNotification"]


@pytest.mark.parametrize("make_payload, code", [c[1:] for c in BAD_MESSAGES],
                         ids=[c[0] for c in BAD_MESSAGES])
def test_message_refusals(memory_users, make_payload, code):
    a, b = memory_users(2)
    room = room_of(a, b)
    open_room(room, b)
    assert_refused(a, "message", make_payload(a.user_id, b.user_id, room), code, [b])


def test_no_message_for_a_room_of_others(memory_users):
    a, b, c = memory_users(3)
    room = room_of(b, c)
    open_room(room, b, c)
    assert_refused(a, "message", payloads.message(a.user_id, room), "FORBIDDEN", [b, c])
