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


def typing_payload(conn, room_id, claimed_username):
    """typingMessageStart/Stop's payload; the name is the identity's when it has one."""
    return {"senderID": conn.user_id, "senderUsername": conn.username or claimed_username,
            "roomID": room_id}
