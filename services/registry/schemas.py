"""Request and response shapes of the registry; the gateway's OpenAPI document is built from them."""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.registry.domain import LEVELS

def _no_trailing_newline(value):
    # The regex documents the rule in OpenAPI; Python's `$` also matches before a final newline,
    # which PostgreSQL's CHECK would then turn into a 500.
    if value.endswith("\n"):
        raise ValidationError("must be digits only (0-9)")


CODE = [validate.Regexp(r"^[0-9]+$", error="must be digits only (0-9)"), _no_trailing_newline]


class Text(fields.String):
    """A string stripped of surrounding space, refused if blank or holding NUL (PostgreSQL rejects it)."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs).strip()
        if "\x00" in value:
            raise ValidationError("must not contain NUL characters")
        if not value:
            raise ValidationError("must not be blank")
        return value


NAME = validate.Length(min=1, max=64, error="must be 1 to 64 characters")
REASON = validate.Length(min=1, max=500, error="must be 1 to 500 characters")


class NodeCreateSchema(Schema):
    code = fields.String(required=True, validate=CODE, metadata={"example": "310110012007"})
    name = Text(required=True, validate=NAME, metadata={"example": "市光一村居委会"})
    level = fields.String(validate=validate.OneOf(list(LEVELS)),
                          metadata={"description": "optional; derived from the code's length when absent"})
    parent_code = fields.String(validate=CODE, metadata={"description": "optional; must be the code's prefix"})
    valid_from = fields.Date(metadata={"description": "defaults to today"})

    @validates_schema
    def _level_matches_code(self, data, **_):
        code = data.get("code", "")
        if "level" not in data and code.isdigit() and len(code) not in LEVELS.values():
            raise ValidationError(f"{len(code)} digits match no level (4, 6, 9, 12 or 15 digits)", "code")


class NodeRenameSchema(Schema):
    name = Text(required=True, validate=NAME)
    effective = fields.Date(metadata={"description": "the day the new name took effect; defaults to today, never in the future"})


class SplitPartSchema(Schema):
    code = fields.String(required=True, validate=CODE)
    name = Text(required=True, validate=NAME)


class NodeSplitSchema(Schema):
    parts = fields.List(fields.Nested(SplitPartSchema), required=True,
                        validate=validate.Length(min=2, max=20, error="must list 2 to 20 new nodes"))
    effective = fields.Date(required=True)
    reason = Text(required=True, validate=REASON)


class NodeRetireSchema(Schema):
    valid_to = fields.Date(required=True, metadata={"description": "first day the node no longer exists"})
    successor_code = fields.String(validate=CODE, metadata={"description": "the node that takes over (a merge)"})
    reason = Text(required=True, validate=REASON)


class NodeSchema(Schema):
    code = fields.String()
    name = fields.String()
    level = fields.String()
    parent_code = fields.String(allow_none=True)
    valid_from = fields.Date()
    valid_to = fields.Date(allow_none=True)
    successor_codes = fields.List(fields.String())
    predecessor_code = fields.String(allow_none=True)
    retired_reason = fields.String(allow_none=True)
    version = fields.Integer()


class NodeChangeSchema(Schema):
    version = fields.Integer()
    change = fields.String()
    name = fields.String()
    effective = fields.Date()
    detail = fields.Dict()
    actor = fields.String(allow_none=True)
    changed_at = fields.DateTime()


class NodeListQuerySchema(Schema):
    under = fields.String(validate=CODE, metadata={"description": "a node code; defaults to the token's scope"})
    level = fields.String(validate=validate.OneOf(list(LEVELS)))
    include_retired = fields.Boolean(load_default=False)
    limit = fields.Integer(load_default=200, validate=validate.Range(1, 1000))
    after = fields.String(validate=CODE, metadata={"description": "cursor: the last code of the previous page"})
