"""Payload of `message`."""
from marshmallow import ValidationError, validate, validates_schema

from homeapp.schemas import fields
from homeapp.schemas.common import (BaseSchema, DateSchema, NotificationSchema, RoomId, Text,
                                    UserId, Username)
from homeapp.schemas.limits import LIMITS
from homeapp.services import rooms


class LenientDate(fields.Nested):
    """The client's date of the message when it is a valid date; otherwise the server's clock."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return super()._deserialize(value, attr, data, **kwargs)
        except ValidationError:
            return None


class UnreadEntrySchema(BaseSchema):
    recipientID = UserId(required=True)
    roomID = RoomId()
    countNumber = fields.Integer(strict=True, validate=validate.Range(min=0), load_default=None)
    updateStatus = fields.Boolean(load_default=None, allow_none=True)


class MessageDataSchema(BaseSchema):
    message = Text(required=True)
    from_ = UserId(required=True, data_key="from", attribute="from")
    roomID = RoomId(required=True)
    fromUsername = Username(load_default=None)
    roomKey = fields.String()
    lastMessage = Text(load_default=None)
    unreadMessArray = fields.List(fields.Nested(UnreadEntrySchema), load_default=list)
    createRoomNotification = fields.Nested(NotificationSchema, allow_none=True, load_default=None)
    contact = fields.Boolean(load_default=False)
    date = LenientDate(DateSchema, load_default=None, allow_none=True)

    @validates_schema
    def agrees_with_room(self, data, **kwargs):
        """Derived fields must repeat the server's own values; recipients must be members."""
        room_id = data["roomID"]
        if "roomKey" in data and data["roomKey"] != rooms.room_channel(room_id):
            raise ValidationError(f"Must be {rooms.room_channel(room_id)!r}.", "roomKey")
        entries = data["unreadMessArray"]
        if len(entries) > LIMITS.room_members:
            raise ValidationError(f"Longer than {LIMITS.room_members}.", "unreadMessArray")
        recipients = set(rooms.recipients_of(room_id, data["from"]))
        seen = set()
        for entry in entries:
            if entry.get("roomID", room_id) != room_id:
                raise ValidationError("Entry roomID must be the message's roomID.", "unreadMessArray")
            if entry["recipientID"] not in recipients or entry["recipientID"] in seen:
                raise ValidationError("Entries must name distinct recipients of the room.",
                                      "unreadMessArray")
            seen.add(entry["recipientID"])


class MessageSchema(BaseSchema):
    data = fields.Nested(MessageDataSchema, required=True)


message_schema = MessageSchema()
