"""What the server sends: the payload of every server event and acknowledgement.

The server never loads these: it builds its payloads from validated input. They describe
them, for docs/asyncapi.yaml (tools/asyncapi.py), and tests/test_live_examples.py loads every
event a live server sends against them, so that the description cannot drift from the code.
A payload that is a validated client payload, or part of one, is described by that schema.
"""
from marshmallow import RAISE, validate
from marshmallow.fields import Dict

from homeapp import errors
from homeapp import names
from homeapp.schemas import fields
from homeapp.schemas.common import (BaseSchema, DateSchema, NotificationSchema, RoomId, Text,
                                    UserId, Username)
from homeapp.schemas.groups import MemberSchema
from homeapp.schemas.notifications import CommentNotificationSchema, CommentSchema, RatingNotificationSchema
from homeapp.schemas.rooms import ChatRoomSchema

# every code of homeapp/errors.py
CODES = sorted(value for name, value in vars(errors).items() if name.isupper() and value == name)


class OutgoingSchema(BaseSchema):
    """A field the description does not name is an error here: the server must not send it."""

    class Meta:
        unknown = RAISE


class PresenceChangeSchema(OutgoingSchema):
    """A user came online (its first live socket) or went offline (its last one closed)."""

    type = fields.String(required=True, validate=validate.OneOf(["Add", "Remove"]))
    userID = UserId(required=True)


class RoomMessageSchema(OutgoingSchema):
    """A message, as the open chat views of its room show it."""

    message = Text(required=True)
    from_ = UserId(required=True, data_key="from", attribute="from")
    roomID = RoomId(required=True)
    fromUsername = Username(required=True, allow_none=True)
    date = fields.Nested(DateSchema, required=True)


class MessagePageSchema(OutgoingSchema):
    """The last message of a room, for the recipient's list of conversations."""

    roomID = RoomId(required=True)
    lastMessage = Text(required=True)


class FirstMessageSchema(OutgoingSchema):
    """The first message of a conversation a client started (`contact`)."""

    roomID = RoomId(required=True)
    from_ = UserId(required=True, data_key="from", attribute="from")
    fromUsername = Username(required=True, allow_none=True)
    lastMessage = Text(required=True)


class MessageNoticeSchema(OutgoingSchema):
    """A new message for one recipient: its unread status and the room's creation notice."""

    roomID = RoomId(required=True)
    fromUsername = Username(required=True, allow_none=True)
    fromUserID = UserId(required=True)
    userID = UserId(required=True)
    lastMessage = Text(required=True)
    unreadUpdateStatus = fields.Boolean(required=True, allow_none=True)
    createRoomNotification = fields.Nested(NotificationSchema, required=True, allow_none=True)


class TypingNoticeSchema(OutgoingSchema):
    """Who started or stopped typing in which room."""

    senderID = UserId(required=True)
    senderUsername = Username(required=True, allow_none=True)
    roomID = RoomId(required=True)


class NewMemberChangeSchema(OutgoingSchema):
    """A user joined roomID, which is now newRoomID."""

    newUserID = UserId(required=True)
    newUsername = Username(required=True)
    roomID = RoomId(required=True)
    newRoomID = RoomId(required=True)
    currentMember = fields.List(fields.Nested(MemberSchema), required=True)
    clientUsername = Username(required=True, allow_none=True)
    newUserPicturePath = fields.String(required=True, allow_none=True)
    online = fields.Boolean(required=True, allow_none=True)


class KickInRoomSchema(OutgoingSchema):
    """A member was removed: the open views of the old room move to newRoomID."""

    firstRoomID = RoomId(required=True)
    kickedUserID = UserId(required=True)
    newRoomID = RoomId(required=True)


class KickNoticeSchema(OutgoingSchema):
    """A member was removed, with the notification addressed to this recipient."""

    roomID = RoomId(required=True)
    newRoomID = RoomId(required=True)
    kickedUserID = UserId(required=True)
    notification = fields.Nested(NotificationSchema, required=True)


class KickChangeSchema(OutgoingSchema):
    """A member was removed from roomID, which is now newRoomID."""

    roomID = RoomId(required=True)
    newRoomID = RoomId(required=True)
    kickedUsername = Username(required=True, allow_none=True)
    kickedUserID = UserId(required=True)


class DeletedRoomNoticeSchema(NotificationSchema):
    """The notification addressed to this recipient, and the room that was deleted."""

    class Meta:
        unknown = RAISE

    roomID = RoomId(required=True)


class RoomDeletedSchema(OutgoingSchema):
    """The room that was deleted."""

    roomID = RoomId(required=True)


class RefusalSchema(OutgoingSchema):
    """Why an event was refused: the `error` event, and the acknowledgement of that event."""

    ok = fields.Boolean(required=True, validate=validate.Equal(False))
    error = fields.String(required=True)
    code = fields.String(required=True, validate=validate.OneOf(CODES))
    event = fields.String(required=True, allow_none=True)
    timestamp = fields.String(required=True, validate=validate.Regexp(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"))
    details = Dict()  # marshmallow's messages, keyed like the payload


class AckSchema(OutgoingSchema):
    """The event was accepted."""

    ok = fields.Boolean(required=True, validate=validate.Equal(True))


class MessageAckSchema(AckSchema):
    """The message was accepted: the id the server gave it and the date it was sent with."""

    id = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{32}$"))
    date = fields.Nested(DateSchema, required=True)


# server event -> the schema of its payload
SERVER_EVENTS = {
    names.ERROR: RefusalSchema(),
    names.NEW_ONLINE_USER: PresenceChangeSchema(),
    names.MESSAGE_ROOM: RoomMessageSchema(),
    names.MESSAGE_PAGE: MessagePageSchema(),
    names.FIRST_MESSAGE_CONVERSATION: FirstMessageSchema(),
    names.MESSAGE_RESPONSE_NOTIFY: MessageNoticeSchema(),
    names.TYPING_START: TypingNoticeSchema(),
    names.TYPING_STOP: TypingNoticeSchema(),
    names.CREATE_GROUP_NOTIFY: NotificationSchema(),
    names.CREATE_GROUP_CHANGE: NewMemberChangeSchema(),
    names.ADD_TO_GROUP_NOTIFY: NotificationSchema(),
    names.ADD_TO_GROUP_CHANGE: NewMemberChangeSchema(),
    names.ADD_TO_GROUP_CHANGE_IN_ROOM: ChatRoomSchema(),
    names.KICK_NOTIFY: KickNoticeSchema(),
    names.KICK_CHANGE: KickChangeSchema(),
    names.KICK_CHANGE_IN_ROOM: KickInRoomSchema(),
    names.DELETE_ROOM_NOTIFY: DeletedRoomNoticeSchema(),
    names.DELETE_ROOM_CHANGE: RoomDeletedSchema(),
    names.PRIVATE_COMMENT_NOTIFY: CommentNotificationSchema(),
    names.NEW_COMMENT_CHANGE: CommentSchema(),
    names.private_rating_notify("{houseworkerID}"): RatingNotificationSchema(),
}

# the acknowledgement of an accepted client event, by event; any other event acks AckSchema
ACKS = {names.MESSAGE: MessageAckSchema()}

_RATING = names.private_rating_notify("")


def server_event_schema(event):
    """The schema of a server event's payload. Raises KeyError for an event not described here."""
    if event.startswith(_RATING):  # the event's name carries its addressee
        event = names.private_rating_notify("{houseworkerID}")
    return SERVER_EVENTS[event]
