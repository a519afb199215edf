"""Request and reply shapes of the points service: it loads and dumps with them, and the gateway
validates, answers and documents its operations (services/points/api.py) with the same ones.

Decimals (hours) are sent as strings ("2.50"), exact, and documented so; a request may give them as
a number or a string.
"""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.points.rules import RECORD_MOVES, REDEMPTION_MOVES, VERIFIER_ROLES
from shared.api import page_schema
from shared.fields import CLIENT_ID, CODE, ID, Text, page
from shared.fields import one_of as _one_of
from shared import clock


def _hours(description=None, **kwargs):
    """Hours as a reply sends them: a decimal string, never a float."""
    metadata = {"type": "string", "example": "2.50", **({"description": description} if description else {})}
    return fields.Decimal(as_string=True, metadata=metadata, **kwargs)


def _next():
    return fields.Integer(allow_none=True, metadata={"description": "pass as `after` for the next page"})


class LocalDateTime(fields.AwareDateTime):
    """An instant; one sent without an offset is read in the instance's time zone (shared/clock)."""

    def _deserialize(self, value, attr, data, **kwargs):
        self.default_timezone = clock.zone()
        return super()._deserialize(value, attr, data, **kwargs)

NAME = validate.Length(min=1, max=64, error="must be 1 to 64 characters")
REASON = validate.Length(min=1, max=500, error="must be 1 to 500 characters")
CATEGORY_CODE = validate.Regexp(r"^[a-z][a-z0-9_]{1,39}\Z", error="2 to 40 lowercase letters, digits or _")
MEMBER_CATEGORIES = ("party_member", "volunteer", "resident", "organization")
CAP = validate.Range(1, 2 ** 31 - 1, error="must be from 1 to 2147483647")


# -- catalogue -----------------------------------------------------------------------------------

class RuleSchema(Schema):
    valid_from = fields.Date(metadata={"description": "applies to service done on or after this day; "
                                                      "defaults to today"})
    unit = fields.String(required=True, validate=_one_of(("hour", "occasion")))
    points_per_unit = fields.Integer(required=True, validate=validate.Range(1, 1000),
                                     metadata={"description": "points per hour, or per occasion"})
    daily_cap = fields.Integer(allow_none=True, validate=CAP,
                               metadata={"description": "most points per person and category per day"})
    yearly_cap = fields.Integer(allow_none=True, validate=CAP,
                                metadata={"description": "most points per person and category per year"})
    verifier_roles = fields.List(fields.String(validate=_one_of(VERIFIER_ROLES)), required=True,
                                 validate=validate.Length(min=1, max=2))
    note = Text(validate=REASON)


class CategoryCreateSchema(RuleSchema):
    code = fields.String(required=True, validate=CATEGORY_CODE, metadata={"example": "security_patrol"})
    name = Text(required=True, validate=NAME, metadata={"example": "平安巡逻"})


class CategoryUpdateSchema(Schema):
    name = Text(validate=NAME)
    active = fields.Boolean(metadata={"description": "false retires the category: no new records"})

    @validates_schema
    def _something(self, data, **_):
        if not data:
            raise ValidationError("give name or active", "_schema")


class RuleVersionSchema(Schema):
    version = fields.Integer()
    valid_from = fields.Date()
    unit = fields.String()
    points_per_unit = fields.Integer()
    daily_cap = fields.Integer(allow_none=True)
    yearly_cap = fields.Integer(allow_none=True)
    verifier_roles = fields.List(fields.String())
    note = fields.String(allow_none=True)
    actor = fields.String()
    created_at = fields.DateTime()


class CategorySchema(Schema):
    code = fields.String()
    name = fields.String()
    active = fields.Boolean()
    rule = fields.Nested(RuleVersionSchema, allow_none=True,
                         metadata={"description": "the version in force today; none before the first one starts"})
    versions = fields.List(fields.Nested(RuleVersionSchema))


class CatalogueQuerySchema(Schema):
    include_inactive = fields.Boolean(load_default=False, metadata={"description": "retired ones too"})


class CategoryListSchema(Schema):
    items = fields.List(fields.Nested(CategorySchema))


class RewardCreateSchema(Schema):
    name = Text(required=True, validate=NAME, metadata={"example": "环保购物袋"})
    kind = fields.String(required=True, validate=_one_of(("material", "honorary")))
    points_cost = fields.Integer(required=True, validate=validate.Range(1, 1_000_000))
    stock = fields.Integer(allow_none=True, validate=validate.Range(0, 1_000_000),
                           metadata={"description": "none means unlimited (an honorary title, say)"})
    per_person_limit = fields.Integer(allow_none=True, validate=validate.Range(1, 1000),
                                      metadata={"description": "most a person may redeem per calendar year"})
    description = Text(validate=REASON)


class RewardUpdateSchema(Schema):
    stock = fields.Integer(validate=validate.Range(0, 1_000_000))
    points_cost = fields.Integer(validate=validate.Range(1, 1_000_000),
                                 metadata={"description": "applies to new redemptions only"})
    per_person_limit = fields.Integer(validate=validate.Range(1, 1000))
    active = fields.Boolean()


class RewardSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    points_cost = fields.Integer()
    stock = fields.Integer(allow_none=True)
    per_person_limit = fields.Integer(allow_none=True)
    active = fields.Boolean()
    description = fields.String(allow_none=True)


class RewardListSchema(Schema):
    items = fields.List(fields.Nested(RewardSchema))


# -- accounts ------------------------------------------------------------------------------------

class PointsAccountOpenSchema(Schema):
    resident_id = fields.Integer(validate=ID)
    organization_id = fields.Integer(validate=ID)

    @validates_schema
    def _exactly_one(self, data, **_):
        if ("resident_id" in data) == ("organization_id" in data):
            raise ValidationError("give exactly one of resident_id and organization_id", "resident_id")


class PointsAccountSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    resident_id = fields.Integer(allow_none=True)
    organization_id = fields.Integer(allow_none=True)
    community_code = fields.String()
    name = fields.String(allow_none=True)
    member_category = fields.String(allow_none=True)
    party_org_id = fields.Integer(allow_none=True)
    party_org_name = fields.String(allow_none=True)
    status = fields.String()
    balance = fields.Integer()
    held = fields.Integer(metadata={"description": "points reserved by pending redemptions"})
    verified_hours = _hours("hours of posted records, and hours brought from another street")
    stars = fields.Integer()
    hours_to_next_star = _hours("none at five stars", allow_none=True)
    opened_at = fields.DateTime()


class PointsAccountResultSchema(PointsAccountSchema):
    replayed = fields.Boolean(metadata={"description": "true when the account was open already (opened by an "
                                                      "earlier request or a party member's report); the answer is "
                                                      "then 200 with it"})


class AccountListQuerySchema(Schema):
    under = fields.String(validate=CODE,
                          metadata={"description": "community code prefix; defaults to the token's scope"})
    member_category = fields.String(validate=_one_of(MEMBER_CATEGORIES))
    limit, after = page()


PointsAccountPageSchema = page_schema(PointsAccountSchema, _next())


class StatementQuerySchema(Schema):
    limit, after = page()


class StatementLineSchema(Schema):
    transfer = fields.Integer(attribute="id")
    transfer_id = fields.String()
    kind = fields.String()
    change = fields.Integer(metadata={"description": "+ credited to this account, - debited from it"})
    balance_after = fields.Integer()
    service_record_id = fields.Integer(allow_none=True)
    redemption_id = fields.Integer(allow_none=True)
    reverses = fields.Integer(allow_none=True)
    memo = fields.String(allow_none=True)
    actor = fields.String()
    created_at = fields.DateTime()


class StatementSchema(Schema):
    account = fields.Nested(PointsAccountSchema)
    lines = fields.List(fields.Nested(StatementLineSchema))
    next = _next()


# -- service records -----------------------------------------------------------------------------

class ServiceRecordCreateSchema(Schema):
    request_id = fields.String(validate=CLIENT_ID, metadata={"description": "client-chosen; the same id twice "
                                                                            "returns the first record"})
    resident_id = fields.Integer(validate=ID)
    organization_id = fields.Integer(validate=ID,
                                     metadata={"description": "the organisation whose activity this was; with no "
                                                              "resident_id, the record is the organisation's own"})
    category_code = fields.String(required=True, validate=CATEGORY_CODE)
    served_at = LocalDateTime(required=True,
                                     metadata={"example": "2026-11-21T09:00:00+08:00"})
    hours = fields.Decimal(required=True, places=2, validate=validate.Range(0.25, 24),
                           metadata={"description": "0.25 to 24, in quarter hours or finer (two decimals); "
                                                    "a number or a decimal string"})
    description = Text(required=True, validate=validate.Length(1, 1000))
    links = fields.List(fields.Url(schemes={"http", "https"}, validate=validate.Length(max=500)),
                        load_default=list, validate=validate.Length(max=10))
    source = fields.String(load_default="logged", validate=_one_of(("claimed", "logged")),
                           metadata={"description": "claimed by the member, or logged by an organiser or worker"})

    @validates_schema
    def _someone(self, data, **_):
        if "resident_id" not in data and "organization_id" not in data:
            raise ValidationError("give the resident who served (or the organisation, for its own record)",
                                  "resident_id")


class RecordVerifySchema(Schema):
    transfer_id = fields.String(validate=CLIENT_ID, metadata={"description": "client-chosen id of the posting; "
                                                                             "defaults to one derived from the record"})


class IdList(fields.Field):
    """Up to 5,000 positive record ids, checked in one pass (a field per id costs more than the posting)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list) or not 1 <= len(value) <= 5000:
            raise ValidationError("must be a list of 1 to 5000 record ids")
        bad = [i for i, v in enumerate(value) if type(v) is not int or not 0 < v < 2 ** 63]
        if bad:
            raise ValidationError(f"not a record id at positions {bad[:10]}")
        return value


class RecordBatchVerifySchema(Schema):
    record_ids = IdList(required=True, metadata={"type": "array", "items": {"type": "integer", "minimum": 1},
                                                 "maxItems": 5000})


class RecordVoidSchema(Schema):
    reason = Text(required=True, validate=REASON)


class RecordReverseSchema(Schema):
    reason = Text(required=True, validate=REASON)
    transfer_id = fields.String(validate=CLIENT_ID)


class _AccountItemSchema(Schema):
    """What a service record and a redemption both say about whose account they touch."""
    id = fields.Integer()
    request_id = fields.String(allow_none=True)
    account_id = fields.Integer()
    resident_id = fields.Integer(allow_none=True)
    name = fields.String(allow_none=True)
    community_code = fields.String()


class ServiceRecordSchema(_AccountItemSchema):
    category_code = fields.String()
    served_at = fields.DateTime()
    served_on = fields.Date()
    hours = _hours()
    description = fields.String()
    links = fields.List(fields.String())
    organization_id = fields.Integer(allow_none=True)
    source = fields.String()
    recorded_by = fields.String()
    status = fields.String()
    expires_at = fields.DateTime()
    rule_version = fields.Integer(allow_none=True)
    points = fields.Integer(allow_none=True)
    capped_from = fields.Integer(allow_none=True, metadata={"description": "the points before a cap cut them"})
    transfer = fields.Integer(attribute="transfer_pk", allow_none=True)
    decided_by = fields.String(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    reason = fields.String(allow_none=True)
    created_at = fields.DateTime()


class RecordListQuerySchema(Schema):
    under = fields.String(validate=CODE)
    status = fields.String(validate=_one_of(RECORD_MOVES))
    account_id = fields.Integer(validate=ID)
    category_code = fields.String(validate=CATEGORY_CODE)
    organization_id = fields.Integer(validate=ID)
    limit, after = page()


class ServiceRecordResultSchema(ServiceRecordSchema):
    replayed = fields.Boolean(metadata={"description": "true when the request id (or transfer id) was seen "
                                                      "before; the answer is then the first result (200)"})


ServiceRecordPageSchema = page_schema(ServiceRecordSchema, _next())


class PostedSchema(Schema):
    """What posting gave one record of a batch (not the whole record: a batch may be thousands)."""
    id = fields.Integer()
    status = fields.String()
    points = fields.Integer()
    capped_from = fields.Integer(allow_none=True)
    transfer = fields.Integer(allow_none=True)


class RecordBatchResultSchema(Schema):
    posted = fields.Integer()
    points = fields.Integer()
    capped = fields.Integer()
    records = fields.List(fields.Nested(PostedSchema), metadata={"description": "what each posting gave"})
    replayed = fields.List(fields.Integer(), metadata={"description": "records posted before (a retried batch)"})


# -- redemptions ---------------------------------------------------------------------------------

class RedemptionCreateSchema(Schema):
    request_id = fields.String(validate=CLIENT_ID, metadata={"description": "client-chosen; the same id twice "
                                                                            "returns the first redemption"})
    account_id = fields.Integer(required=True, validate=ID)
    reward_id = fields.Integer(required=True, validate=ID)
    quantity = fields.Integer(load_default=1, validate=validate.Range(1, 100))


class RedemptionCloseSchema(Schema):
    reason = Text(validate=REASON)


class RedemptionSchema(_AccountItemSchema):
    reward_id = fields.Integer()
    reward_name = fields.String()
    quantity = fields.Integer()
    points = fields.Integer()
    status = fields.String()
    requested_by = fields.String()
    requested_at = fields.DateTime()
    closed_by = fields.String(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    reason = fields.String(allow_none=True)


class RedemptionListQuerySchema(Schema):
    under = fields.String(validate=CODE)
    status = fields.String(validate=_one_of(REDEMPTION_MOVES))
    account_id = fields.Integer(validate=ID)
    limit, after = page()


class RedemptionResultSchema(RedemptionSchema):
    replayed = fields.Boolean(metadata={"description": "true when the request id was seen before; the answer "
                                                      "is then 200 with the first redemption"})


RedemptionPageSchema = page_schema(RedemptionSchema, _next())


# -- evaluation ----------------------------------------------------------------------------------

class EvaluationQuerySchema(Schema):
    year = fields.Integer(required=True, validate=validate.Range(2000, 2100))
    under = fields.String(validate=CODE)
    format = fields.String(load_default="json", validate=_one_of(("json", "csv")))


class EvaluationSnapshotSchema(Schema):
    year = fields.Integer(required=True, validate=validate.Range(2000, 2100))


class StandingSchema(Schema):
    account_id = fields.Integer()
    community_code = fields.String()
    party_org_id = fields.Integer(allow_none=True)
    party_org_name = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    member_category = fields.String(allow_none=True)
    points = fields.Integer()
    hours = _hours("this year's")
    cumulative_hours = _hours("all years', hours brought from another street included")
    stars = fields.Integer()
    community_rank = fields.Integer()
    branch_rank = fields.Integer(allow_none=True)


class EvaluationSchema(Schema):
    year = fields.Integer()
    snapshot = fields.Boolean(metadata={"description": "true once the year-end snapshot is taken (then immutable)"})
    taken_at = fields.DateTime(allow_none=True)
    taken_by = fields.String(allow_none=True)
    rows = fields.List(fields.Nested(StandingSchema))
