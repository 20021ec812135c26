"""marshmallow's schema and field loading, minus costs the hot path pays on every field of every
event (versions: homeapp/seams/versions.py; bench/optimised.md and bench/round5.md have the
figures).

The schemas build on LeanSchema and on the field types of homeapp/schemas/fields.py, which mix
Lean in.
"""
from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, missing
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from marshmallow.error_store import ErrorStore
from marshmallow.fields import Field
from marshmallow.utils import set_value
from marshmallow.validate import Validator

DISTRIBUTION = "marshmallow"


class LeanSchema(Schema):
    """Unknown fields are dropped, never forwarded."""

    class Meta:
        unknown = EXCLUDE

    def _do_load(self, data, *, many=None, partial=None, unknown=None, postprocess=True):
        """marshmallow's load, for the case every event payload and each object nested in it
        takes (one object, no partial loading, no pre- or post-load processor, no validator
        of a single field by name): the same steps, the fields then the schema's validators,
        and the same error, without the steps for what is never set here."""
        hooks = self._hooks
        if many or self.many or partial is not None or self.partial is not None \
                or hooks[PRE_LOAD] or hooks[POST_LOAD] or hooks[VALIDATES]:
            return super()._do_load(data, many=many, partial=partial, unknown=unknown,
                                    postprocess=postprocess)
        if unknown is None:
            unknown = self.unknown
        error_store = ErrorStore()
        result = self._deserialize(data, error_store=error_store, unknown=unknown)
        if hooks[VALIDATES_SCHEMA]:
            field_errors = bool(error_store.errors)
            for pass_collection in (True, False):
                self._invoke_schema_validators(
                    error_store=error_store, pass_collection=pass_collection, data=result,
                    original_data=data, many=False, partial=None, unknown=unknown,
                    field_errors=field_errors)
        if error_store.errors:
            error = ValidationError(error_store.errors, data=data, valid_data=result)
            self.handle_error(error, data, many=False, partial=None)
            raise error
        return result

    def _deserialize(self, data, *, error_store, many=False, partial=None, unknown=RAISE, index=None):
        """marshmallow's loop over the fields, for the case every event payload takes (one JSON
        object, no partial loading, unknown keys dropped): the same calls to each field and the
        same errors, without the closure, the error-catching helper and the checks of options
        that are never set here, which marshmallow pays per field. That was a quarter of a
        `message`'s load (bench/optimised.md). A field given a value (not None) that has no
        validators or processors is loaded by its own `_deserialize`, which is all its
        `deserialize` would run; one not given or null, what `deserialize` gives or refuses.
        tests/test_schemas.py compares the two loops."""
        if many or partial is not None or unknown != EXCLUDE or type(data) is not dict:
            return super()._deserialize(data, error_store=error_store, many=many, partial=partial,
                                        unknown=unknown, index=index)
        if not self.opts.index_errors:
            index = None
        plan = self.__dict__.get("_lean_plan")
        if plan is None:
            plan = self._lean_plan = _plan(self.load_fields)
        result = self.dict_class()
        for key, attribute, field, plain, dotted in plan:
            value = data.get(key, missing)
            try:
                if not plain:
                    value = field.deserialize(value, key, data)
                elif value is not missing and value is not None:
                    value = field._deserialize(value, key, data)
                elif value is missing and not field.required:  # its default, as deserialize gives it
                    value = field.load_default
                    if callable(value):
                        value = value()
                elif value is not None or not field.allow_none:  # a refusal: deserialize words it
                    value = field.deserialize(value, key, data)
            except ValidationError as error:
                error_store.store_error(error.messages, key, index=index)
                value = error.valid_data or missing
            if value is not missing:
                if dotted:
                    set_value(result, attribute, value)
                else:
                    result[attribute] = value
        return result


def _plan(load_fields):
    """(key in the payload, attribute, field, loaded by its _deserialize alone (or its default, or
    None), dotted attribute) of each field a schema loads, in order."""
    plan = []
    for name, field in load_fields.items():
        attribute = field.attribute or name
        plan.append((name if field.data_key is None else field.data_key, attribute, field,
                     _plain(field), "." in attribute))
    return tuple(plan)


def _plain(field):
    """Whether all a field's deserialize runs for a value given (not None) is its own
    _deserialize: marshmallow's deserialize and missing-value check, no validators, no
    processors."""
    kind = type(field)
    return (kind.deserialize is Field.deserialize and kind._validate_missing is Field._validate_missing
            and not field.validators and not field.pre_load and not field.post_load)


class Lean:
    """Mixed into a marshmallow field type: marshmallow 4 builds an `And` of a field's validators
    each time a field is loaded, even when there are none, which with the inline checks of
    homeapp.schemas.common.BoundedString was a fifth of a `message`'s load. Skipped when a field
    has no validators; built once while its validators stay the same when it has some, and
    for a single validator object (a Range, a Regexp) that validator itself."""

    def _validate(self, value):
        validators = self.validators
        if validators:
            built = self.__dict__.get("_lean_all")
            if built is None or built[0] != validators:
                # one of marshmallow's validator objects raises what an And of it would (a
                # message or a list of them, never a dict): called alone
                alone = len(validators) == 1 and isinstance(validators[0], Validator)
                built = self._lean_all = (list(validators),
                                          validators[0] if alone else self._validate_all)
            built[1](value)


class LeanNested:
    """Mixed into marshmallow's Nested: one object loaded by a LeanSchema goes to the schema's
    _do_load, which its load() calls, without Nested's three calls around it (the collection
    check, _load, load)."""

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        schema = self.schema
        if partial is not None or self.many or schema.many or not isinstance(schema, LeanSchema):
            return super()._deserialize(value, attr, data, partial=partial, **kwargs)
        try:
            return schema._do_load(value, unknown=self.unknown)
        except ValidationError as error:  # as Nested._load words it
            raise ValidationError(error.messages, valid_data=error.valid_data) from error


class LeanList:
    """Mixed into marshmallow's List: a JSON array of objects for a plain LeanNested (an
    event's list of entries) has each object loaded by the
    nested field's _deserialize, which is all its deserialize runs for an object; other items
    by deserialize; and the errors gathered by index, as List's loop does."""

    def _deserialize(self, value, attr, data, **kwargs):
        inner = self.inner
        if kwargs or value.__class__ is not list or not isinstance(inner, LeanNested) \
                or not _plain(inner):
            return super()._deserialize(value, attr, data, **kwargs)
        result, errors = [], {}
        for index, each in enumerate(value):
            try:
                if each.__class__ is dict:
                    result.append(inner._deserialize(each, None, None))
                else:
                    result.append(inner.deserialize(each))
            except ValidationError as error:
                if error.valid_data is not None:
                    result.append(error.valid_data)
                errors[index] = error.messages
        if errors:
            raise ValidationError(errors, valid_data=result)
        return result


class LeanInteger:
    """Mixed into marshmallow's Integer: an int is taken as it is, as Integer takes it, strict
    or not, without its checks for the other types (an abstract class's isinstance among
    them): an unread entry's count was two fifths of the entry's load."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value.__class__ is int:
            return value
        return super()._deserialize(value, attr, data, **kwargs)
