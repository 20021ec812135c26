"""Payloads of chatRoom.join and chatRoom.leave."""
from homeapp.schemas.common import RoomId, ScalarSchema


class ChatRoomSchema(ScalarSchema):
    """The bare canonical room id."""

    value_name = "roomID"
    roomID = RoomId(required=True)


chat_room_schema = ChatRoomSchema()
