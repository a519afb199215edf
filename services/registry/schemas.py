"""Request and response shapes of the registry; the gateway's OpenAPI document is built from them."""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.registry.domain import LEVELS
from shared.fields import CODE, Text, no_trailing_newline
from shared.api import page_schema

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


class NodeDetailSchema(NodeSchema):
    history = fields.List(fields.Nested(NodeChangeSchema))


NodePageSchema = page_schema(NodeSchema)


class SplitResultSchema(Schema):
    retired = fields.Nested(NodeSchema)
    created = fields.List(fields.Nested(NodeSchema))


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
    building = Text(validate=validate.Length(max=32), metadata={"description": "the building lived in, by its name "
                                                                              "(exact): 12号"})
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


def _page(item, name=None):
    """A page of `item`s; the registry's cursors are ids, so `next` is an integer."""
    cursor = fields.Integer(allow_none=True, metadata={"description": "pass as `after` for the next page"})
    return page_schema(item, cursor, name)


class ResidentDetailSchema(ResidentSchema):
    history = fields.List(fields.Nested(ResidentChangeSchema))


ResidentPageSchema = _page(ResidentSchema)
AuditPageSchema = _page(AuditEntrySchema, "AuditPage")


class AddressSchema(Schema):
    building = fields.String()
    unit = fields.String()
    room = fields.String()


class HouseholdSchema(Schema):
    id = fields.Integer()
    household_no = fields.String()
    community_code = fields.String()
    address = fields.Nested(AddressSchema, allow_none=True)
    head_resident_id = fields.Integer(allow_none=True)
    members = fields.List(fields.Nested(ResidentSchema))


# -- bulk imports (CSV in, a report out) --

IMPORT_MODES = ("all_or_nothing", "valid_rows")


class ImportQuerySchema(Schema):
    mode = fields.String(load_default="all_or_nothing", validate=validate.OneOf(IMPORT_MODES),
                         metadata={"description": "all_or_nothing writes nothing if any row is refused; "
                                                  "valid_rows writes the rows that pass"})


class ImportErrorSchema(Schema):
    row = fields.Integer(metadata={"description": "the spreadsheet row (the header is row 1)"})
    field = fields.String()
    message = fields.String()


class ImportReportSchema(Schema):
    mode = fields.String()
    encoding = fields.String()
    columns = fields.Dict(keys=fields.String(), values=fields.String(),
                          metadata={"description": "field -> the column header it was read from"})
    ignored_columns = fields.List(fields.String())
    rows = fields.Integer()
    accepted = fields.Integer()
    rejected = fields.Integer()
    written = fields.Integer()
    import_id = fields.String(allow_none=True)
    errors = fields.List(fields.Nested(ImportErrorSchema))
    errors_truncated = fields.Boolean()
    seconds = fields.Dict(keys=fields.String(), values=fields.Float(),
                          metadata={"description": "where the time went, per phase"})


# -- party members under dual management ----------------------------------------

from services.registry.party_rules import (CATEGORIES, MEMBERSHIP_ORG_MAX, ORG_KINDS, POSTS,  # noqa: E402
                                           POSTS_MAX, STATUSES as PARTY_STATUSES)


class PartyOrgCreateSchema(Schema):
    community_code = fields.String(required=True, validate=CODE, metadata={"example": "310110012001"})
    kind = fields.String(required=True, validate=_choice(ORG_KINDS))
    name = Text(required=True, validate=NAME, metadata={"example": "长海一村第一党支部"})
    parent_id = fields.Integer(allow_none=True, metadata={
        "description": "a branch's committee (defaults to the community's) or a group's branch (required)"})
    building = Text(validate=ADDRESS, allow_none=True, metadata={
        "description": "for a building group: a building of the community", "example": "12号"})


class PartyOrgRefSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    name = fields.String()


class PartyOrgSchema(Schema):
    id = fields.Integer()
    community_code = fields.String()
    kind = fields.String()
    name = fields.String()
    parent_id = fields.Integer(allow_none=True)
    building = fields.String(allow_none=True)
    members = fields.Integer(metadata={"description": "members placed directly in this organisation"})
    children = fields.List(fields.Nested(lambda: PartyOrgSchema()))


class PartyOrgTreeQuerySchema(Schema):
    community_code = fields.String(required=True, validate=CODE)


class PartyOrgTreeSchema(Schema):
    community_code = fields.String()
    name = fields.String()
    committee = fields.Nested(PartyOrgSchema, allow_none=True)


class PartyMemberCreateSchema(Schema):
    resident_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    category = fields.String(required=True, validate=_choice(CATEGORIES))
    membership_org = Text(required=True, validate=validate.Length(min=1, max=MEMBERSHIP_ORG_MAX),
                          metadata={"description": "the party organisation holding the membership",
                                    "example": "上海电气集团党委"})
    joined_party = fields.Date(required=True, metadata={"description": "not in the future, not before 18"})
    party_org_id = fields.Integer(allow_none=True, strict=True,
                                  metadata={"description": "a branch or group of the resident's community"})


class PartyReportSchema(Schema):
    reported_on = fields.Date(required=True, metadata={"description": "not in the future, not before joining"})
    posts = fields.List(fields.String(validate=_choice(POSTS)), required=True,
                        validate=validate.Length(min=1, max=POSTS_MAX, error=f"choose 1 to {POSTS_MAX} posts"))


class PartyWithdrawSchema(Schema):
    effective = fields.Date(required=True)
    reason = Text(required=True, validate=REASON, metadata={"example": "组织关系转出"})


class PartyPlaceSchema(Schema):
    party_org_id = fields.Integer(required=True, strict=True)


class PartyMemberSchema(Schema):
    resident_id = fields.Integer()
    name = fields.String()
    sex = fields.String()
    age = fields.Integer()
    community_code = fields.String(metadata={"description": "the community the member reports to"})
    grid_code = fields.String(allow_none=True)
    category = fields.String()
    membership_org = fields.String()
    joined_party = fields.Date()
    report_status = fields.String()
    reported_on = fields.Date(allow_none=True)
    posts = fields.List(fields.String())
    withdrawn_on = fields.Date(allow_none=True)
    party_org = fields.Nested(PartyOrgRefSchema, allow_none=True)
    version = fields.Integer()


class PartyMemberChangeSchema(ResidentChangeSchema):
    pass


class PartyMemberDetailSchema(PartyMemberSchema):
    history = fields.List(fields.Nested(PartyMemberChangeSchema))


PartyMemberPageSchema = _page(PartyMemberSchema)


class PartyMemberListQuerySchema(Schema):
    under = fields.String(validate=CODE, metadata={"description": "community or grid code prefix; defaults to the token's scope"})
    category = fields.String(validate=_choice(CATEGORIES))
    report_status = fields.String(validate=_choice(PARTY_STATUSES))
    party_org_id = fields.Integer()
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    after = fields.Integer(validate=validate.Range(min=0), metadata={"description": "cursor: `next` of the previous page"})


class ReportRateQuerySchema(Schema):
    under = fields.String(validate=[*CODE, validate.Length(max=12, error="give a street or community code")],
                          metadata={"description": "a street or community code (or any prefix above); "
                                                   "defaults to the token's scope"})


class ReportRateRowSchema(Schema):
    community_code = fields.String()
    name = fields.String()
    members = fields.Integer(metadata={"description": "members not withdrawn"})
    reported = fields.Integer()
    rate = fields.Float(allow_none=True, metadata={"description": "reported / members; null when there are no members"})


class ReportRateTotalSchema(Schema):
    members = fields.Integer()
    reported = fields.Integer()
    rate = fields.Float(allow_none=True)


class ReportRateSchema(Schema):
    under = fields.String()
    communities = fields.List(fields.Nested(ReportRateRowSchema))
    total = fields.Nested(ReportRateTotalSchema)


# -- social organisations, volunteer teams and community workers -------------------------

from services.registry import civic_rules as civic  # noqa: E402

ORG_NAME = validate.Length(min=1, max=civic.ORG_NAME_MAX, error=f"must be 1 to {civic.ORG_NAME_MAX} characters")
PROJECT_TEXT = validate.Length(min=1, max=civic.PROJECT_TEXT_MAX,
                               error=f"must be 1 to {civic.PROJECT_TEXT_MAX} characters")
SUBCATEGORY = validate.Regexp(civic.SUBCATEGORY_PATTERN,
                              error="must be a lower-case code such as "
                                    + ", ".join(f"{k} ({v})" for k, v in civic.TEAM_TYPES.items()))
PAGE_LIMIT = validate.Range(1, 500)
CURSOR = {"description": "cursor: `next` of the previous page"}


class Money(fields.Decimal):
    """Yuan with at most two decimals, sent as a string (no float rounding)."""

    def __init__(self, **kwargs):
        kwargs["metadata"] = {"type": "string", **kwargs.get("metadata", {})}
        super().__init__(as_string=True, **kwargs)


class OrganizationCreateSchema(Schema):
    name = Text(required=True, validate=ORG_NAME, metadata={"example": "长海一村平安巡逻队"})
    category = fields.String(required=True, validate=_choice(civic.CATEGORIES))
    subcategory = fields.String(allow_none=True, validate=[SUBCATEGORY, no_trailing_newline],
                                metadata={"description": "team type or other sub-kind, as a code",
                                          "example": "security_patrol"})
    community_code = fields.String(required=True, validate=CODE,
                                   metadata={"description": "the host community", "example": "310110012001"})
    leader_resident_id = fields.Integer(required=True, metadata={"description": "an active resident in scope"})
    activities = fields.List(fields.String(validate=_choice(civic.ACTIVITIES)), load_default=list,
                             validate=validate.Length(max=len(civic.ACTIVITIES)),
                             metadata={"description": "fields of activity"})
    founded_on = fields.Date(required=True)
    filing_no = Text(allow_none=True, validate=validate.Length(min=1, max=civic.FILING_NO_MAX),
                     metadata={"description": "the street's filing number (备案号)"})
    status = fields.String(load_default="filed", validate=_choice({k: civic.ORG_STATUSES[k]
                                                                   for k in civic.INITIAL_STATUSES}))


class OrganizationUpdateSchema(Schema):
    name = Text(validate=ORG_NAME)
    subcategory = fields.String(allow_none=True, validate=[SUBCATEGORY, no_trailing_newline])
    activities = fields.List(fields.String(validate=_choice(civic.ACTIVITIES)),
                             validate=validate.Length(max=len(civic.ACTIVITIES)))
    filing_no = Text(allow_none=True, validate=validate.Length(min=1, max=civic.FILING_NO_MAX))
    leader_resident_id = fields.Integer(metadata={"description": "a new leader; joins as a member if not one"})

    @validates_schema
    def _not_empty(self, data, **_):
        if not data:
            raise ValidationError("give at least one field to change", "_schema")


class OrganizationStatusSchema(Schema):
    status = fields.String(required=True, validate=_choice(civic.ORG_STATUSES),
                           metadata={"description": "filed → active ⇄ suspended; any → dissolved (final)"})
    effective = fields.Date(metadata={"description": "defaults to today; not in the future"})
    reason = Text(validate=REASON, allow_none=True)


class MemberJoinSchema(Schema):
    resident_id = fields.Integer(required=True)
    role = fields.String(load_default="member",
                         validate=_choice({k: civic.MEMBER_ROLES[k] for k in civic.JOINABLE_ROLES}))
    joined_on = fields.Date(metadata={"description": "defaults to today"})


class MemberLeaveSchema(Schema):
    left_on = fields.Date(metadata={"description": "defaults to today"})
    reason = Text(validate=REASON, allow_none=True)


class ProjectCreateSchema(Schema):
    name = Text(required=True, validate=PROJECT_TEXT, metadata={"example": "长者助餐服务"})
    funder = Text(required=True, validate=PROJECT_TEXT, metadata={"example": "长海路街道办事处"})
    # A JSON number or a string of one; documented as a number with its bounds (civic_rules.check_budget).
    budget = fields.Decimal(required=True, metadata={"description": "yuan, at most two decimals",
                                                     "minimum": 0, "maximum": float(civic.MAX_BUDGET),
                                                     "example": 120000.00})
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)


class OrganizationListQuerySchema(Schema):
    community_code = fields.String(validate=CODE, metadata={"description": "the host community; "
                                                                          "defaults to all in the token's scope"})
    category = fields.String(validate=_choice(civic.CATEGORIES))
    subcategory = fields.String(validate=[SUBCATEGORY, no_trailing_newline])
    status = fields.String(validate=_choice(civic.ORG_STATUSES))
    limit = fields.Integer(load_default=50, validate=PAGE_LIMIT)
    after = fields.Integer(validate=validate.Range(min=0), metadata=CURSOR)


class OrganizationSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    category = fields.String()
    subcategory = fields.String(allow_none=True)
    status = fields.String()
    status_on = fields.Date()
    community_code = fields.String()
    leader_resident_id = fields.Integer(allow_none=True, metadata={
        "description": "null once the leader left the street or died, until a new leader is named"})
    activities = fields.List(fields.String())
    founded_on = fields.Date()
    filing_no = fields.String(allow_none=True)
    member_count = fields.Integer(metadata={"description": "current members, the leader included"})
    version = fields.Integer()


class OrganizationMemberSchema(Schema):
    organization_id = fields.Integer()
    resident_id = fields.Integer()
    name = fields.String(allow_none=True, metadata={"description": "null for a member outside the caller's scope"})
    community_code = fields.String(metadata={"description": "where the member lives"})
    role = fields.String()
    joined_on = fields.Date()
    left_on = fields.Date(allow_none=True)


class ProjectSchema(Schema):
    id = fields.Integer()
    organization_id = fields.Integer()
    name = fields.String()
    funder = fields.String()
    budget = Money()
    starts_on = fields.Date()
    ends_on = fields.Date()


class OrganizationChangeSchema(ResidentChangeSchema):
    pass


class OrganizationDetailSchema(OrganizationSchema):
    leader_name = fields.String(allow_none=True)
    members = fields.List(fields.Nested(OrganizationMemberSchema), metadata={"description": "current members"})
    projects = fields.List(fields.Nested(ProjectSchema))
    history = fields.List(fields.Nested(OrganizationChangeSchema))


OrganizationPageSchema = _page(OrganizationSchema)


class WorkerCreateSchema(Schema):
    name = Text(required=True, validate=validate.Length(min=1, max=NAME_MAX), metadata={"example": "陈志明"})
    id_number = fields.String(required=True, validate=validate.Length(max=40),
                              metadata={"description": "GB 11643 citizen ID; stored sealed"})
    phone = fields.String(allow_none=True, validate=validate.Length(max=40),
                          metadata={"description": "stored sealed"})
    resident_id = fields.Integer(allow_none=True,
                                 metadata={"description": "the worker's resident record, if they live in this "
                                                          "street; must be the same person"})
    role = fields.String(required=True, validate=_choice(civic.WORKER_ROLES))
    community_code = fields.String(required=True, validate=CODE, metadata={"example": "310110012001"})
    grid_code = fields.String(validate=CODE, allow_none=True, metadata={"description": "required for a grid worker"})
    origin = fields.String(required=True, validate=_choice(civic.ORIGINS),
                           metadata={"description": "how the worker came to the post"})
    started_on = fields.Date(required=True)


class AssessmentCreateSchema(Schema):
    year = fields.Integer(required=True, strict=True, validate=validate.Range(1949, 9999))
    score = fields.Decimal(required=True, metadata={"description": "0 to 100, at most two decimals",
                                                    "minimum": 0, "maximum": float(civic.SCORE_MAX)})
    outcome = fields.String(required=True, validate=_choice(civic.OUTCOMES),
                            metadata={"description": "let_go ends the appointment (rolling management)"})
    assessed_on = fields.Date(metadata={"description": "defaults to today"})
    note = Text(validate=REASON, allow_none=True)


class WorkerLeaveSchema(Schema):
    left_on = fields.Date(required=True)
    reason = fields.String(required=True, validate=_choice(civic.LEAVE_REASONS))
    note = Text(validate=REASON, allow_none=True)


class WorkerListQuerySchema(Schema):
    community_code = fields.String(validate=CODE, metadata={"description": "defaults to all in the token's scope"})
    role = fields.String(validate=_choice(civic.WORKER_ROLES))
    origin = fields.String(validate=_choice(civic.ORIGINS))
    status = fields.String(load_default="active", validate=validate.OneOf([*civic.WORKER_STATUSES, "all"]))
    limit = fields.Integer(load_default=50, validate=PAGE_LIMIT)
    after = fields.Integer(validate=validate.Range(min=0), metadata=CURSOR)


class AssessmentSchema(Schema):
    year = fields.Integer()
    score = fields.Decimal(as_string=True, metadata={"type": "string", "example": "86.50"})
    outcome = fields.String()
    assessed_on = fields.Date()
    note = fields.String(allow_none=True)
    actor = fields.String(allow_none=True)


class WorkerSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    id_number = fields.String(metadata={"description": "masked in lists, in full when one record is read"})
    phone = fields.String(allow_none=True, metadata={"description": "masked in lists, in full when one record is read"})
    resident_id = fields.Integer(allow_none=True)
    role = fields.String()
    community_code = fields.String()
    grid_code = fields.String(allow_none=True)
    origin = fields.String()
    started_on = fields.Date()
    status = fields.String()
    left_on = fields.Date(allow_none=True)
    left_reason = fields.String(allow_none=True)
    version = fields.Integer()


class WorkerChangeSchema(ResidentChangeSchema):
    pass


class WorkerDetailSchema(WorkerSchema):
    assessments = fields.List(fields.Nested(AssessmentSchema))
    history = fields.List(fields.Nested(WorkerChangeSchema))


WorkerPageSchema = _page(WorkerSchema)
