"""Payloads of createUserGroup, addUserToGroup, kickUserFromGroup and deleteUserRoom."""
from marshmallow import ValidationError, validates_schema

from homeapp.schemas import fields
from homeapp.schemas.common import (BaseSchema, Notifications, RoomId, ShortText, UserId,
                                    Username, at_most)
from homeapp.services import rooms


class MemberSchema(BaseSchema):
    userID = UserId(required=True)
    username = Username(load_default=None)


class NewMemberDataSchema(BaseSchema):
    """The `data` of createUserGroup and addUserToGroup: one user joins roomID, making newRoomID."""

    newUserID = UserId(required=True)
    newUsername = Username(required=True)
    roomID = RoomId(required=True)
    newRoomID = RoomId(required=True)
    currentMember = fields.List(fields.Nested(MemberSchema), validate=at_most("room_members"),
                                load_default=list)
    clientID = UserId(required=True)
    clientUsername = Username(load_default=None)
    newUserPicturePath = ShortText(load_default=None, allow_none=True)
    online = fields.Boolean(load_default=None, allow_none=True)
    notifications = Notifications()

    @validates_schema
    def new_room_adds_the_new_user(self, data, **kwargs):
        if data["newUserID"] in data["roomID"].split(":"):
            raise ValidationError("Is already a member of roomID.", "newUserID")
        expected = rooms.with_member(data["roomID"], data["newUserID"])
        if data["newRoomID"] != expected:
            raise ValidationError(f"Must be roomID plus newUserID: {expected!r}.", "newRoomID")


class NewMemberSchema(BaseSchema):
    data = fields.Nested(NewMemberDataSchema, required=True)


class KickSchema(BaseSchema):
    firstRoomID = RoomId(required=True)
    roomID = RoomId(required=True)
    newRoomID = RoomId(required=True)
    kickedUserID = UserId(required=True)
    kickedUsername = Username(load_default=None)
    clientID = UserId(required=True)
    clientUsername = Username(load_default=None)
    notifications = Notifications()

    @validates_schema
    def new_room_drops_the_kicked_user(self, data, **kwargs):
        if data["kickedUserID"] not in data["roomID"].split(":"):
            raise ValidationError("Is not a member of roomID.", "kickedUserID")
        expected = rooms.without_member(data["roomID"], data["kickedUserID"])
        if data["newRoomID"] != expected:
            raise ValidationError(f"Must be roomID minus kickedUserID: {expected!r}.", "newRoomID")


class DeleteRoomSchema(BaseSchema):
    roomID = RoomId(required=True)
    clientID = UserId(required=True)
    clientUsername = Username(load_default=None)
    notifications = Notifications()


new_member_schema = NewMemberSchema()
kick_schema = KickSchema()
delete_room_schema = DeleteRoomSchema()
