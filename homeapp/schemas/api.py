"""The body of a backend API request: which event, performed as whom, with what payload."""
from marshmallow import validate

from homeapp.schemas import fields
from homeapp.schemas.common import BaseSchema, UserId

MAX_EVENT_NAME = 64  # longer than any event name, short enough to echo back in an error


class EventRequestSchema(BaseSchema):
    event = fields.String(required=True, validate=validate.Length(min=1, max=MAX_EVENT_NAME))
    userID = UserId(required=True)
    # exactly what the user's socket would send, judged by the event's own schema
    payload = fields.Field(load_default=None, allow_none=True)


event_request_schema = EventRequestSchema()
