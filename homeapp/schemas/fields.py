"""marshmallow's field types, minus a cost the hot path pays on every field of every event.

These subclasses skip marshmallow's validator step when a field has no validators
(homeapp/seams/marshmallow.py's Lean), load a nested object, a list of them and an int with
fewer calls (LeanNested, LeanList, LeanInteger), and behave otherwise as marshmallow's own
(String aside, below). The schemas import their field types from here.
"""
from marshmallow import fields

from homeapp.seams.marshmallow import Lean, LeanInteger, LeanList, LeanNested


class Field(Lean, fields.Field):
    pass


class String(Lean, fields.String):
    """A JSON string only: marshmallow's String also takes bytes (a Socket.IO binary
    attachment) and decodes them, which no client of this protocol sends."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        return value


class Boolean(Lean, fields.Boolean):
    pass


class Integer(LeanInteger, Lean, fields.Integer):
    pass


class List(LeanList, Lean, fields.List):
    pass


class Nested(LeanNested, Lean, fields.Nested):
    pass
