"""Schema rules that the live tables do not show from the outside."""
import pytest
from marshmallow import Schema, ValidationError, validate
from marshmallow import fields as marshmallows_fields

from homeapp.schemas import common, fields, groups, limits, messaging, notifications, presence, rooms
from homeapp.schemas import typing_status as typing_schemas
from tests import payloads


def test_integer_user_ids_are_normalised_to_strings():
    assert presence.add_online_user_schema.load({"userID": 42}) == {"userID": "42", "userUsername": None}
    assert presence.user_channel_schema.load(7) == "7"


def test_unknown_fields_are_dropped_at_every_depth():
    payload = payloads.message("1", "1:2", evil=1)
    payload["data"]["unreadMessArray"][0]["evil"] = 2
    payload["data"]["createRoomNotification"] = dict(payloads.notification("1", "2"), evil=3)
    payload["data"]["createRoomNotification"]["date"]["evil"] = 4
    data = messaging.message_schema.load(payload)["data"]
    assert "evil" not in data and "evil" not in data["unreadMessArray"][0]
    assert "evil" not in data["createRoomNotification"]
    assert "evil" not in data["createRoomNotification"]["date"]


def test_an_invalid_client_date_becomes_none_for_the_server_clock():
    payload = payloads.message("1", "1:2", date={"day": 30, "month": 2, "year": 2025, "time": "10:00"})
    assert messaging.message_schema.load(payload)["data"]["date"] is None


def test_limits_are_read_when_validating(monkeypatch):
    monkeypatch.setattr(limits.LIMITS, "room_members", 2)
    with pytest.raises(ValidationError):
        rooms.chat_room_schema.load("1:2:3")
    monkeypatch.setattr(limits.LIMITS, "message_length", 3)
    with pytest.raises(ValidationError) as raised:
        messaging.message_schema.load(payloads.message("1", "1:2", "four"))
    assert raised.value.messages["data"]["message"] == ["Longer than 3."]


# Every event's schema, each with a valid payload; the field loop is compared on it and on
# every variant with one value replaced (or dropped) at any depth.
VALID = {
    "message": (messaging.message_schema, payloads.message("1", "1:2")),
    "message-dated": (messaging.message_schema, payloads.message(
        "1", "1:2", date=payloads.DATE, createRoomNotification=payloads.notification("1", "2"))),
    "typing": (typing_schemas.typing_schema, payloads.typing("1", "1:2")),
    "new_member": (groups.new_member_schema, payloads.new_member("1", "1:2:3", "4")),
    "kick": (groups.kick_schema, payloads.kick("1", "1:2:3", "3")),
    "delete_room": (groups.delete_room_schema, payloads.delete_room("1", "1:2:3")),
    "comment": (notifications.comment_notification_schema, payloads.comment("1", "2")),
    "rating": (notifications.rating_notification_schema, payloads.rating("1", "2")),
    "addOnlineUser": (presence.add_online_user_schema, {"userID": "1", "userUsername": "user1"}),
    "joinRoom": (presence.user_channel_schema, "1"),
    "chatRoom.join": (rooms.chat_room_schema, "1:2"),
}
ODD_VALUES = [payloads.DROP, None, "", "7", 7, -1, 1.5, True, [], {}, [{}], "x" * 5000, "1:2", b"1"]


def paths(value, prefix=""):
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield f"{prefix}{key}"
        yield from paths(child, f"{prefix}{key}.")


def outcome(schema, payload):
    try:
        return "ok", schema.load(payload)
    except ValidationError as error:
        return "error", error.messages, error.valid_data


@pytest.mark.parametrize("name", VALID)
def test_the_lean_field_loop_loads_and_refuses_as_marshmallows_own(name, monkeypatch):
    schema, valid = VALID[name]
    cases = [valid, None, [], [valid], "7", 7, {}]
    cases += [payloads.changed(valid, path, value) for path in paths(valid) for value in ODD_VALUES]
    ours = [outcome(schema, case) for case in cases]
    monkeypatch.setattr(common.BaseSchema, "_deserialize", Schema._deserialize)
    monkeypatch.setattr(common.BaseSchema, "_do_load", Schema._do_load)
    for kind in ("Nested", "List", "Integer"):  # the field types' own shortcuts, off too
        monkeypatch.setattr(getattr(fields, kind), "_deserialize",
                            getattr(marshmallows_fields, kind)._deserialize)
    monkeypatch.setattr(fields.Lean, "_validate", marshmallows_fields.Field._validate)
    marshmallows = [outcome(schema, case) for case in cases]
    assert ours == marshmallows
    assert ours[0][0] == "ok" and sum(o[0] == "error" for o in ours) > len(cases) // 4


# The field types of homeapp/schemas/fields.py against marshmallow's own, built alike: an int
# taken as it is, one validator object called without an And around it.
FIELDS = {
    "strict integer": ("Integer", {"strict": True}),
    "integer": ("Integer", {}),
    "count": ("Integer", {"strict": True, "validate": validate.Range(min=0)}),
    "day": ("Integer", {"strict": True, "validate": validate.Range(1, 31), "allow_none": True}),
    "pattern": ("String", {"validate": validate.Regexp(r"^a+$")}),
    "two validators": ("String", {"validate": [validate.Length(max=3), validate.Regexp("^a")]}),
    "a function": ("Field", {"validate": lambda value: refuse_zero(value)}),
    "one of": ("Boolean", {"validate": validate.OneOf([True])}),
}


def refuse_zero(value):
    """A validator that words its refusal as a dict, which an And wraps in a list."""
    if value == 0:
        raise ValidationError({"value": ["Zero."]})


FIELD_VALUES = [0, 1, -1, 31, 32, 10**30, True, False, 1.0, 1.5, "1", "a", "aaaa", "b", "",
                None, [], {}, float("inf"), type("Subclass", (int,), {})(5)]


def field_outcome(field, value):
    try:
        loaded = field.deserialize(value)
        return "ok", loaded, type(loaded)
    except ValidationError as error:
        return "error", error.messages


@pytest.mark.parametrize("name", FIELDS)
def test_the_lean_field_types_load_and_refuse_as_marshmallows_own(name):
    kind, options = FIELDS[name]
    ours, theirs = getattr(fields, kind)(**options), getattr(marshmallows_fields, kind)(**options)
    outcomes = [field_outcome(ours, value) for value in FIELD_VALUES]
    assert outcomes == [field_outcome(theirs, value) for value in FIELD_VALUES]
    assert {o[0] for o in outcomes} == {"ok", "error"}

