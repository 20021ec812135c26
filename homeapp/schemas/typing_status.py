"""Payloads of startTypingRoom and stopTypingRoom."""
from homeapp.schemas import fields
from homeapp.schemas.common import BaseSchema, RoomId, UserId, Username


class TypistSchema(BaseSchema):
    userID = UserId(required=True)
    username = Username(load_default=None)


class TypingSchema(BaseSchema):
    roomID = RoomId(required=True)
    user = fields.Nested(TypistSchema, required=True)


typing_schema = TypingSchema()
