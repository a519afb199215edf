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


# -- residents and households -------------------------------------------------

from services.registry.residency import (ADDRESS_MAX, HOUSEHOLD_NO_MAX, NAME_MAX, RELATIONS,  # noqa: E402
                                         RESIDENCE_TYPES, STATUSES, TAGS)

ADDRESS = validate.Length(min=1, max=ADDRESS_MAX, error=f"must be 1 to {ADDRESS_MAX} characters")


def _choice(codes):
    labels = codes if isinstance(codes, dict) else {c: c for c in codes}
    return validate.OneOf(list(labels), error="must be one of: " + ", ".join(f"{k} ({v})" if k != v else k
                                                                            for k, v in labels.items()))


class PlacementSchema(Schema):
    """Where a resident lives: community, optional grid, and optionally a household at an address."""
    community_code = fields.String(required=True, validate=CODE, metadata={"example": "310110012001"})
    grid_code = fields.String(validate=CODE, allow_none=True, metadata={"example": "310110012001001"})
    household_no = Text(validate=validate.Length(max=HOUSEHOLD_NO_MAX), allow_none=True,
                        metadata={"description": "an existing household, or a new number; generated when absent"})
    building = Text(validate=ADDRESS, allow_none=True, metadata={"example": "12号"})
    unit = Text(validate=ADDRESS, allow_none=True, metadata={"example": "2单元"})
    room = Text(validate=ADDRESS, allow_none=True, metadata={"example": "302"})
    relation = fields.String(validate=_choice(RELATIONS), allow_none=True,
                             metadata={"description": "relation to the household head; `self` is the head"})


class ResidentCreateSchema(PlacementSchema):
    name = Text(required=True, validate=validate.Length(min=1, max=NAME_MAX), metadata={"example": "王秀英"})
    id_number = fields.String(required=True, validate=validate.Length(max=40),
                              metadata={"description": "GB 11643 citizen ID; 15-digit legacy numbers are converted",
                                        "example": "11010519491231002X"})
    phone = fields.String(allow_none=True, validate=validate.Length(max=40),
                          metadata={"description": "mainland mobile or landline with area code", "example": "13916275318"})
    sex = fields.String(validate=_choice({"M": "男", "F": "女"}), allow_none=True,
                        metadata={"description": "optional; must agree with the ID number"})
    birth_date = fields.Date(allow_none=True, metadata={"description": "optional; must agree with the ID number"})
    residence_type = fields.String(required=True, validate=_choice(RESIDENCE_TYPES))
    tags = fields.List(fields.String(validate=_choice(TAGS)), load_default=list,
                       validate=validate.Length(max=len(TAGS)))
    moved_in = fields.Date(allow_none=True)


class ResidentUpdateSchema(Schema):
    name = Text(validate=validate.Length(min=1, max=NAME_MAX))
    phone = fields.String(allow_none=True, validate=validate.Length(max=40))
    residence_type = fields.String(validate=_choice(RESIDENCE_TYPES))
    tags = fields.List(fields.String(validate=_choice(TAGS)), validate=validate.Length(max=len(TAGS)))
    grid_code = fields.String(validate=CODE, allow_none=True)

    @validates_schema
    def _not_empty(self, data, **_):
        if not data:
            raise ValidationError("give at least one field to change", "_schema")


class ResidentMoveSchema(PlacementSchema):
    effective = fields.Date(required=True, metadata={"description": "the day of the move; not in the future"})
    reason = Text(validate=REASON, allow_none=True)


class ResidentLeaveSchema(Schema):
    effective = fields.Date(required=True)
    destination = Text(validate=validate.Length(min=1, max=100), allow_none=True,
                       metadata={"example": "迁往浦东新区花木街道"})
    reason = Text(validate=REASON, allow_none=True)


class ResidentDeathSchema(Schema):
    date_of_death = fields.Date(required=True)
    note = Text(validate=REASON, allow_none=True)


class HouseholdRefSchema(Schema):
    id = fields.Integer()
    household_no = fields.String()
    address = fields.String(allow_none=True)


class ResidentSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    id_number = fields.String(metadata={"description": "masked in lists, in full when one record is read"})
    phone = fields.String(allow_none=True, metadata={"description": "masked in lists, in full when one record is read"})
    sex = fields.String()
    birth_date = fields.Date()
    age = fields.Integer()
    community_code = fields.String()
    grid_code = fields.String(allow_none=True)
    household = fields.Nested(HouseholdRefSchema, allow_none=True)
    relation = fields.String(allow_none=True)
    residence_type = fields.String()
    tags = fields.List(fields.String())
    moved_in = fields.Date(allow_none=True)
    status = fields.String()
    status_on = fields.Date(allow_none=True)
    version = fields.Integer()


class ResidentChangeSchema(Schema):
    version = fields.Integer()
    change = fields.String()
    effective = fields.Date()
    detail = fields.Dict()
    actor = fields.String(allow_none=True)
    changed_at = fields.DateTime()


class ResidentListQuerySchema(Schema):
    under = fields.String(validate=CODE, metadata={"description": "community or grid code prefix; defaults to the token's scope"})
    tag = fields.String(validate=_choice(TAGS))
    residence_type = fields.String(validate=_choice(RESIDENCE_TYPES))
    status = fields.String(load_default="active", validate=validate.OneOf(list(STATUSES) + ["all"]))
    name = Text(validate=validate.Length(max=NAME_MAX), metadata={"description": "part of the name"})
    id_number = fields.String(validate=validate.Length(max=40), metadata={"description": "exact ID number"})
    phone = fields.String(validate=validate.Length(max=40), metadata={"description": "exact phone"})
    household_id = fields.Integer()
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    after = fields.Integer(validate=validate.Range(min=0), metadata={"description": "cursor: `next` of the previous page"})


class AuditQuerySchema(Schema):
    actor = fields.String(validate=validate.Length(max=200))
    record_type = fields.String(validate=validate.Length(max=40))
    record_id = fields.Integer()
    since = fields.AwareDateTime()
    until = fields.AwareDateTime()
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
    after = fields.Integer(validate=validate.Range(min=0))


class AuditEntrySchema(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    actor = fields.String()
    action = fields.String()
    record_type = fields.String()
    record_id = fields.Integer()
    community_code = fields.String(allow_none=True)
    correlation_id = fields.String(allow_none=True)
