"""marshmallow's field types, minus a cost the hot path pays on every field of every event.

marshmallow 4 builds an `And` of a field's validators each time a field is loaded, even
when there are none, which with the inline checks of common.BoundedString was a fifth of a
`message`'s load (bench/optimised.md has the figures).
These subclasses skip that step when a field has no validators, and behave otherwise
as marshmallow's own (String aside, below). The schemas import their field types from here.
"""
from marshmallow import fields


class _Lean:
    def _validate(self, value):
        if self.validators:
            super()._validate(value)


class Field(_Lean, fields.Field):
    pass


class String(_Lean, fields.String):
    """A JSON string only: marshmallow's String also takes bytes (a Socket.IO binary
    attachment) and decodes them, which no client of this protocol sends."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        return value


class Boolean(_Lean, fields.Boolean):
    pass


class Integer(_Lean, fields.Integer):
    pass


class List(_Lean, fields.List):
    pass


class Nested(_Lean, fields.Nested):
    pass
