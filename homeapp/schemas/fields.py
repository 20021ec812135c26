"""marshmallow's field types, minus a cost the hot path pays on every field of every event.

These subclasses skip marshmallow's validator step when a field has no validators
(homeapp/seams/marshmallow.py's Lean), and behave otherwise as marshmallow's own (String
aside, below). The schemas import their field types from here.
"""
from marshmallow import fields

from homeapp.seams.marshmallow import Lean


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


class Integer(Lean, fields.Integer):
    """An int is taken as it is, as marshmallow's Integer takes it, strict or not, without its
    checks for the other types (an abstract class's isinstance among them)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value.__class__ is int:
            return value
        return super()._deserialize(value, attr, data, **kwargs)


class List(Lean, fields.List):
    pass


class Nested(Lean, fields.Nested):
    pass
