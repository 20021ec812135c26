"""Fields and schemas shared by every feature: ids, names, texts, dates, notifications."""
from datetime import date as calendar_date

from marshmallow import ValidationError, post_load, pre_load, validate, validates_schema

from homeapp.schemas import fields
from homeapp.schemas.limits import LIMITS
from homeapp.seams.marshmallow import LeanSchema
from homeapp.services import rooms
from homeapp.services.notifications import TO_EVERYONE


class BaseSchema(LeanSchema):
    """Unknown fields are dropped, never forwarded (homeapp/seams/marshmallow.py: with a leaner
    field loop than marshmallow's)."""


class UserId(fields.Field):
    """1 to 20 ASCII digits; a JSON integer is accepted and normalised to its string."""

    default_error_messages = {"invalid": "Not a valid user id (1 to 20 digits)."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            value = str(value)
        if not rooms.is_user_id(value):
            raise self.make_error("invalid")
        return value


class RoomId(fields.Field):
    """Two or more distinct user ids joined by ":", sorted numerically ("2:10", never "10:2"),
    at most HOMEAPP_MAX_ROOM_MEMBERS of them; the room's members are read from it."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            rooms.members_of(value, LIMITS.room_members)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        return value


class Recipient(UserId):
    """A notification's `to`: a user id, or "room" for every member."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value == TO_EVERYONE:
            return value
        return super()._deserialize(value, attr, data, **kwargs)


class RecordId(fields.Field):
    """An id the REST API made: a non-negative integer or a short string."""

    default_error_messages = {"invalid": "Not a valid id."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, str) and 0 < len(value) <= 64:
            return value
        raise self.make_error("invalid")


def check_at_most(value, limit_name):
    """Raise ValidationError when value is longer than LIMITS.<limit_name>, read now."""
    limit = getattr(LIMITS, limit_name)
    if len(value) > limit:
        raise ValidationError(f"Longer than {limit}.")


def at_most(limit_name):
    """A length validator whose bound is read from LIMITS when it runs."""
    def check(value):
        check_at_most(value, limit_name)
    check.limit_name = limit_name  # for the protocol description (tools/asyncapi.py)
    return check


class BoundedString(fields.String):
    """1 to LIMITS.<limit_name> characters, checked while loading: these strings are on the
    hot path, and a check here costs a fraction of marshmallow's validator objects."""

    def __init__(self, limit_name, **kwargs):
        super().__init__(**kwargs)
        self.limit_name = limit_name

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if not value:
            raise ValidationError("Shorter than minimum length 1.")
        check_at_most(value, self.limit_name)
        return value


def Username(**kwargs):
    """A user name: 1 to MAX_USERNAME_LENGTH characters."""
    return BoundedString("username_length", **kwargs)


def Text(**kwargs):
    """Message text: 1 to MAX_MESSAGE_LENGTH characters."""
    return BoundedString("message_length", **kwargs)


def ShortText(**kwargs):
    """A free-form string the protocol gives no size of its own: at most LIMITS.text_length characters."""
    return fields.String(validate=at_most("text_length"), **kwargs)


def Notifications(**kwargs):
    """A list of at most MAX_NOTIFICATIONS notifications."""
    return fields.List(fields.Nested(NotificationSchema), validate=at_most("notifications"),
                       load_default=list, **kwargs)


class DateSchema(BaseSchema):
    """{day, month, year, time "HH:MM"}, a real calendar date."""

    day = fields.Integer(required=True, strict=True, validate=validate.Range(1, 31))
    month = fields.Integer(required=True, strict=True, validate=validate.Range(1, 12))
    year = fields.Integer(required=True, strict=True, validate=validate.Range(1970, 9999))
    time = fields.String(required=True, validate=validate.Regexp(r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))

    @validates_schema
    def real_date(self, data, **kwargs):
        try:
            calendar_date(data["year"], data["month"], data["day"])
        except ValueError as exc:
            raise ValidationError(str(exc), "day") from None


class NotificationSchema(BaseSchema):
    """A notification as the REST API stores it."""

    id = RecordId(required=True)
    from_ = UserId(required=True, data_key="from", attribute="from")
    to = Recipient(required=True)
    type = fields.String(required=True, validate=validate.Length(min=1, max=64))
    date = fields.Nested(DateSchema, required=True)
    message = Text(required=True)
    read = fields.Boolean(required=True)


class ScalarSchema(BaseSchema):
    """A payload that is a bare value ("123", "1:2"): loaded as the schema's one field.

    Subclasses name the field in ``value_name``; errors are reported under that name.
    """

    value_name = None

    @pre_load
    def wrap(self, data, **kwargs):
        return {self.value_name: data}

    @post_load
    def unwrap(self, data, **kwargs):
        return data[self.value_name]

