"""Payloads of addOnlineUser, joinRoom and leaveRoom."""
from marshmallow import pre_load

from homeapp.schemas.common import BaseSchema, ScalarSchema, UserId, Username


class AddOnlineUserSchema(BaseSchema):
    """{userID, userUsername}; `username` is read when `userUsername` is missing, as some clients send it."""

    userID = UserId(required=True)
    userUsername = Username(load_default=None)

    @pre_load
    def accept_username(self, data, **kwargs):
        if isinstance(data, dict) and "userUsername" not in data and "username" in data:
            data = dict(data, userUsername=data["username"])
        return data


class UserChannelSchema(ScalarSchema):
    """joinRoom / leaveRoom: the bare user id of the socket's own channel."""

    value_name = "userID"
    userID = UserId(required=True)


add_online_user_schema = AddOnlineUserSchema()
user_channel_schema = UserChannelSchema()
