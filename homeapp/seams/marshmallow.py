"""marshmallow's schema and field loading, minus costs the hot path pays on every field of every
event (versions: homeapp/seams/versions.py; bench/optimised.md has the figures).

The schemas build on LeanSchema and on the field types of homeapp/schemas/fields.py, which mix
Lean in.
"""
from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, missing
from marshmallow.utils import set_value

DISTRIBUTION = "marshmallow"


class LeanSchema(Schema):
    """Unknown fields are dropped, never forwarded."""

    class Meta:
        unknown = EXCLUDE

    def _deserialize(self, data, *, error_store, many=False, partial=None, unknown=RAISE, index=None):
        """marshmallow's loop over the fields, for the case every event payload takes (one JSON
        object, no partial loading, unknown keys dropped): the same calls to each field and the
        same errors, without the closure, the error-catching helper and the checks of options
        that are never set here, which marshmallow pays per field. That was a quarter of a
        `message`'s load (bench/optimised.md). tests/test_schemas.py compares the two loops."""
        if many or partial is not None or unknown != EXCLUDE or type(data) is not dict:
            return super()._deserialize(data, error_store=error_store, many=many, partial=partial,
                                        unknown=unknown, index=index)
        if not self.opts.index_errors:
            index = None
        result = self.dict_class()
        for name, field in self.load_fields.items():
            key = name if field.data_key is None else field.data_key
            try:
                value = field.deserialize(data.get(key, missing), key, data)
            except ValidationError as error:
                error_store.store_error(error.messages, key, index=index)
                value = error.valid_data or missing
            if value is not missing:
                set_value(result, field.attribute or name, value)
        return result


class Lean:
    """Mixed into a marshmallow field type: marshmallow 4 builds an `And` of a field's validators
    each time a field is loaded, even when there are none, which with the inline checks of
    homeapp.schemas.common.BoundedString was a fifth of a `message`'s load. Skipped when a field
    has no validators."""

    def _validate(self, value):
        if self.validators:
            super()._validate(value)
