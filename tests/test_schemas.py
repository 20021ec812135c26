"""Schema rules that the live tables do not show from the outside."""
import pytest
from marshmallow import ValidationError

from homeapp.schemas import limits, messaging, presence, rooms
from tests import payloads


def test_integer_user_ids_are_normalised_to_strings():
    assert presence.add_online_user.load({"userID": 42}) == {"userID": "42", "userUsername": None}
    assert presence.user_channel.load(7) == "7"


def test_unknown_fields_are_dropped_at_every_depth():
    payload = payloads.message("1", "1:2", evil=1)
    payload["data"]["unreadMessArray"][0]["evil"] = 2
    payload["data"]["createRoomNotification"] = dict(payloads.notification("1", "2"), evil=3)
    payload["data"]["createRoomNotification"]["date"]["evil"] = 4
    data = messaging.message.load(payload)["data"]
    assert "evil" not in data and "evil" not in data["unreadMessArray"][0]
    assert "evil" not in data["createRoomNotification"]
    assert "evil" not in data["createRoomNotification"]["date"]


def test_an_invalid_client_date_becomes_none_for_the_server_clock():
    payload = payloads.message("1", "1:2", date={"day": 30, "month": 2, "year": 2025, "time": "10:00"})
    assert messaging.message.load(payload)["data"]["date"] is None


def test_limits_are_read_when_validating(monkeypatch):
    monkeypatch.setattr(limits.LIMITS, "room_members", 2)
    with pytest.raises(ValidationError):
        rooms.chat_room.load("1:2:3")
    monkeypatch.setattr(limits.LIMITS, "message_length", 3)
    with pytest.raises(ValidationError) as raised:
        messaging.message.load(payloads.message("1", "1:2", "four"))
    assert raised.value.messages["data"]["message"] == ["Longer than 3."]
