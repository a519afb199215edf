"""Request and reply shapes of the consultation service: it loads and dumps with them, and its declared
operations (api.py) name them, so the gateway validates, answers and documents with the very same."""
import re

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.consultation.rules import CATEGORIES, CHANNELS, MATTER_MOVES, ROLES, SCREENING, URGENCIES
from shared.api import page_schema
from shared.fields import CLIENT_ID, CODE, ID, Text, page
from shared.fields import one_of as _one_of

TITLE = validate.Length(min=1, max=100, error="must be 1 to 100 characters")
NOTE = validate.Length(min=1, max=1000, error="must be 1 to 1000 characters")
COMMUNITY = [*CODE, validate.Length(equal=12, error="must be a 12-digit community code")]
MAX_BUDGET = 10 ** 9
# Only ASCII digits: int() would also take signs, spaces, underscores and other scripts' digits.
DIGITS = re.compile(r"[0-9]{1,19}")


def budget_in():
    """A budget in yuan as a request sends it: a JSON number or a numeric string, kept to two decimals."""
    # The document's range is numbers (services/gateway/openapi.numeric_bounds), not this field's "0.00".
    return fields.Decimal(places=2, validate=validate.Range(0, MAX_BUDGET), allow_none=True, as_string=True,
                          metadata={"example": 180000, "description": "yuan, at most two decimals"})


def budget_out():
    """A budget in yuan as a reply sends it: a string with two decimals (no float rounding)."""
    return fields.Decimal(as_string=True, allow_none=True,
                          metadata={"type": "string", "example": "180000.00", "description": "yuan"})


class QueryId(fields.Integer):
    """An id in a query string: ASCII digits only, from 1 to 2^63-1."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and not DIGITS.fullmatch(value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


# -- matters (一上一下) ----------------------------------------------------------------------------

class MatterCreateSchema(Schema):
    request_id = fields.String(validate=CLIENT_ID, metadata={"description": "client-chosen; a retry returns the "
                                                                            "first matter"})
    community_code = fields.String(required=True, validate=COMMUNITY, metadata={"example": "310110012001"})
    building = Text(validate=validate.Length(1, 40), metadata={"example": "8号楼"})
    category = fields.String(required=True, validate=_one_of(CATEGORIES))
    urgency = fields.String(load_default="normal", validate=_one_of(URGENCIES))
    channel = fields.String(required=True, validate=_one_of(CHANNELS))
    title = Text(required=True, validate=TITLE, metadata={"example": "小区夜间停车难"})
    description = Text(required=True, validate=validate.Length(1, 2000),
                       metadata={"example": "晚上8点后小区内车辆乱停，消防通道被占，希望重新规划停车位。"})
    raiser_resident_id = fields.Integer(allow_none=True, validate=ID,
                                        metadata={"description": "omit for an anonymous matter"})
    attachments = fields.List(fields.Url(schemes={"http", "https"}, validate=validate.Length(max=500)),
                              load_default=list, validate=validate.Length(max=10))
    confirm_new = fields.Boolean(load_default=False,
                                 metadata={"description": "raise it even though a similar open matter exists"})


class SimilarQuerySchema(Schema):
    community_code = fields.String(required=True, validate=COMMUNITY)
    category = fields.String(required=True, validate=_one_of(CATEGORIES))
    text = Text(required=True, validate=validate.Length(2, 2000))


class MatterBackSchema(Schema):
    resident_id = fields.Integer(required=True, validate=ID)


class MatterScreenSchema(Schema):
    outcome = fields.String(required=True, validate=_one_of(SCREENING))
    note = Text(validate=NOTE, metadata={"description": "the answer, the reason for rejecting, or why it goes up"})
    referred_to = Text(validate=validate.Length(1, 100), metadata={"example": "区绿化市容局"})
    duplicate_of = fields.Integer(validate=ID,
                                  metadata={"description": "with outcome merge: the open matter it repeats"})

    @validates_schema
    def _needs(self, data, **_):
        outcome = data.get("outcome")
        if outcome in ("answer", "reject", "escalate") and not data.get("note"):
            raise ValidationError(f"a note is required to {outcome}", "note")
        if outcome == "refer" and not data.get("referred_to"):
            raise ValidationError("say where it is referred", "referred_to")
        if outcome == "merge" and not data.get("duplicate_of"):
            raise ValidationError("name the matter it repeats", "duplicate_of")


class MatterRateSchema(Schema):
    resident_id = fields.Integer(required=True, validate=ID)
    score = fields.Integer(required=True, validate=validate.Range(1, 5))
    comment = Text(validate=validate.Length(1, 500))


class MatterSettleSchema(Schema):
    note = Text(validate=NOTE)


class MatterSchema(Schema):
    id = fields.Integer()
    request_id = fields.String(allow_none=True)
    community_code = fields.String()
    building = fields.String(allow_none=True)
    category = fields.String()
    urgency = fields.String()
    channel = fields.String()
    title = fields.String()
    description = fields.String()
    raiser_resident_id = fields.Integer(allow_none=True)
    attachments = fields.List(fields.String())
    status = fields.String()
    duplicate_of = fields.Integer(allow_none=True)
    backers = fields.Integer()
    level_code = fields.String(metadata={"description": "who handles it: the community, or the street above it"})
    raised_at = fields.DateTime()
    screening_due_at = fields.DateTime()
    settle_due_at = fields.DateTime()
    screened_at = fields.DateTime(allow_none=True)
    screen_note = fields.String(allow_none=True)
    referred_to = fields.String(allow_none=True)
    agenda_item_id = fields.Integer(allow_none=True)
    settled_at = fields.DateTime(allow_none=True)
    overdue = fields.Boolean(metadata={"description": "not settled by its deadline"})
    screening_overdue = fields.Boolean(metadata={"description": "not screened by its deadline"})
    similar_to = fields.Integer(allow_none=True, metadata={"description": "raised anyway although like this open "
                                                                          "matter (a repeat)"})
    version = fields.Integer()


class MatterResultSchema(MatterSchema):
    replayed = fields.Boolean(metadata={"description": "true when the request id was seen before; the answer "
                                                      "is then 200 with the first matter"})


class MatterHistorySchema(Schema):
    version = fields.Integer()
    status = fields.String()
    note = fields.String(allow_none=True)
    actor = fields.String()
    at = fields.DateTime()


class MatterDetailSchema(MatterSchema):
    history = fields.List(fields.Nested(MatterHistorySchema))


MatterPageSchema = page_schema(MatterSchema, fields.Integer(
    allow_none=True, metadata={"description": "pass as `after` for the next page"}))


class SimilarMatterSchema(Schema):
    id = fields.Integer()
    title = fields.String()
    status = fields.String()
    backers = fields.Integer()
    similarity = fields.Float(metadata={"description": "0 to 1: how alike the texts are"})


class SimilarMatterListSchema(Schema):
    items = fields.List(fields.Nested(SimilarMatterSchema))


class MatterListQuerySchema(Schema):
    under = fields.String(validate=CODE)
    status = fields.String(validate=_one_of(MATTER_MOVES))
    category = fields.String(validate=_one_of(CATEGORIES))
    overdue = fields.Boolean(load_default=False)
    screening_overdue = fields.Boolean(load_default=False)
    escalated = fields.Boolean(load_default=False, metadata={"description": "only matters handled above "
                                                                            "their community"})
    limit, after = page()


class ConsultationDeadlineSchema(Schema):
    category = fields.String(required=True, validate=_one_of([*CATEGORIES, "*"]))
    urgency = fields.String(required=True, validate=_one_of(URGENCIES))
    screening_hours = fields.Integer(required=True, validate=validate.Range(1, 720))
    settle_days = fields.Integer(required=True, validate=validate.Range(1, 365))


class ConsultationDeadlineListSchema(Schema):
    items = fields.List(fields.Nested(ConsultationDeadlineSchema),
                        metadata={"description": "every deadline now in force"})


# -- deliberation (二上二下) -----------------------------------------------------------------------

class AgendaItemCreateSchema(Schema):
    community_code = fields.String(required=True, validate=COMMUNITY)
    title = Text(required=True, validate=TITLE, metadata={"example": "长海一村停车位重新规划"})
    matter_ids = fields.List(fields.Integer(validate=ID), required=True, validate=validate.Length(1, 50))


class AgendaOptionCreateSchema(Schema):
    title = Text(required=True, validate=TITLE, metadata={"example": "绿化带改建30个停车位"})
    description = Text(validate=validate.Length(1, 2000))
    budget = budget_in()


class AgendaOptionSchema(Schema):
    id = fields.Integer()
    title = fields.String()
    description = fields.String(allow_none=True)
    budget = budget_out()


class AgendaMeetingSchema(Schema):
    id = fields.Integer()
    title = fields.String()
    starts_at = fields.DateTime()
    status = fields.String()


class AgendaItemSchema(Schema):
    id = fields.Integer()
    community_code = fields.String()
    title = fields.String()
    status = fields.String()
    created_by = fields.String()
    created_at = fields.DateTime()
    matters = fields.List(fields.Nested(MatterSchema))
    options = fields.List(fields.Nested(AgendaOptionSchema))
    meetings = fields.List(fields.Nested(AgendaMeetingSchema), metadata={"description": "the meetings that take it up"})
    decision_id = fields.Integer(allow_none=True, metadata={"description": "its decision, once one is taken"})


class MeetingParticipantSchema(Schema):
    role = fields.String(required=True, validate=_one_of(ROLES))
    resident_id = fields.Integer(validate=ID, metadata={"description": "for residents of the street"})
    name = Text(required=True, validate=validate.Length(1, 64))
    affiliation = Text(validate=validate.Length(1, 100), metadata={"example": "长海路派出所"})


class MeetingCreateSchema(Schema):
    request_id = fields.String(validate=CLIENT_ID, metadata={"description": "client-chosen; a retry returns the "
                                                                            "first meeting"})
    community_code = fields.String(required=True, validate=COMMUNITY)
    title = Text(required=True, validate=TITLE, metadata={"example": "长海一村停车问题协商议事会"})
    starts_at = fields.AwareDateTime(required=True)
    place = Text(required=True, validate=validate.Length(1, 100), metadata={"example": "居委会二楼会议室"})
    quorum = fields.Integer(required=True, validate=validate.Range(1, 500))
    agenda_item_ids = fields.List(fields.Integer(validate=ID), required=True, validate=validate.Length(1, 20))
    roster = fields.List(fields.Nested(MeetingParticipantSchema), required=True, validate=validate.Length(1, 200))


class MeetingMoveSchema(Schema):
    starts_at = fields.AwareDateTime(required=True)
    place = Text(validate=validate.Length(1, 100))
    reason = Text(validate=NOTE)


class MeetingAttendanceSchema(Schema):
    participant_ids = fields.List(fields.Integer(validate=ID), required=True, validate=validate.Length(0, 200))


class MeetingVoteSchema(Schema):
    participant_id = fields.Integer(required=True, validate=ID)
    agenda_item_id = fields.Integer(required=True, validate=ID)
    score = fields.Integer(validate=validate.Range(1, 5), metadata={"description": "priority of the item, 1-5"})
    option_id = fields.Integer(validate=ID)
    choice = fields.String(validate=_one_of(("approve", "oppose", "abstain")))

    @validates_schema
    def _score_or_choice(self, data, **_):
        if ("score" in data) == ("option_id" in data):
            raise ValidationError("give a score for the item, or an option_id with a choice", "score")
        if ("option_id" in data) != ("choice" in data):
            raise ValidationError("an option vote needs both option_id and choice", "choice")


class MeetingCancelSchema(Schema):
    reason = Text(required=True, validate=NOTE, metadata={"example": "台风预警，会议取消"})


class MeetingCloseSchema(Schema):
    minutes = Text(required=True, validate=validate.Length(1, 20000))


class MeetingItemSchema(Schema):
    id = fields.Integer()
    title = fields.String()
    status = fields.String()


class RosterEntrySchema(Schema):
    id = fields.Integer(metadata={"description": "the participant id that attendance and votes name"})
    role = fields.String()
    resident_id = fields.Integer(allow_none=True)
    name = fields.String()
    affiliation = fields.String(allow_none=True)
    attended = fields.Boolean()


class MeetingSchema(Schema):
    id = fields.Integer()
    community_code = fields.String()
    title = fields.String()
    starts_at = fields.DateTime()
    place = fields.String()
    quorum = fields.Integer()
    status = fields.String()
    minutes = fields.String(allow_none=True)
    items = fields.List(fields.Nested(MeetingItemSchema))
    roster = fields.List(fields.Nested(RosterEntrySchema))
    attendance_by_role = fields.Dict(keys=fields.String(), values=fields.Integer())
    version = fields.Integer()


class MeetingResultSchema(MeetingSchema):
    replayed = fields.Boolean(metadata={"description": "true when the request id was seen before; the answer "
                                                      "is then 200 with the first meeting"})


class TallyQuerySchema(Schema):
    agenda_item_id = QueryId(required=True, validate=ID,
                             error_messages={"required": "required: the agenda item to tally",
                                             "invalid": "must be an id from 1 to 2^63-1"},
                             metadata={"description": "the agenda item to tally"})


class TallyOptionSchema(Schema):
    option_id = fields.Integer()
    approve = fields.Integer()
    oppose = fields.Integer()
    abstain = fields.Integer()


class MeetingTallySchema(Schema):
    meeting_id = fields.Integer()
    agenda_item_id = fields.Integer()
    attended = fields.Integer()
    quorum = fields.Integer()
    quorum_met = fields.Boolean()
    priority = fields.Float(allow_none=True)
    options = fields.List(fields.Nested(TallyOptionSchema))
    adopted_option_id = fields.Integer(allow_none=True)
    why_none = fields.String(allow_none=True)


# -- decision, implementation, publication (三上三下) ---------------------------------------------

class DecisionCreateSchema(Schema):
    meeting_id = fields.Integer(required=True, validate=ID)
    agenda_item_id = fields.Integer(required=True, validate=ID)
    responsible = Text(required=True, validate=validate.Length(1, 100), metadata={"example": "居委会、物业公司"})
    budget = budget_in()
    deadline = fields.Date(required=True)
    summary = Text(validate=validate.Length(1, 2000))


class DecisionTaskCreateSchema(Schema):
    request_id = fields.String(validate=CLIENT_ID, metadata={"description": "client-chosen; a retry adds nothing"})
    title = Text(required=True, validate=TITLE, metadata={"example": "绿化带改建停车位施工"})
    responsible = Text(required=True, validate=validate.Length(1, 100))
    due_on = fields.Date(required=True)


class TaskProgressSchema(Schema):
    progress = fields.Integer(required=True, validate=validate.Range(0, 100))
    note = Text(required=True, validate=NOTE)


class ResultPublishSchema(Schema):
    summary = Text(required=True, validate=validate.Length(1, 2000),
                   metadata={"description": "the public notice (公示) as residents will read it: no names, "
                                            "no room numbers", "example": "新增停车位30个，夜间停车秩序明显好转。"})


class TaskUpdateSchema(Schema):
    progress = fields.Integer()
    note = fields.String()
    actor = fields.String()
    at = fields.DateTime()


class DecisionTaskSchema(Schema):
    id = fields.Integer(metadata={"description": "report progress under /tasks/{id}/progress"})
    decision_id = fields.Integer()
    title = fields.String()
    responsible = fields.String()
    due_on = fields.Date()
    progress = fields.Integer(metadata={"description": "0 to 100"})
    created_at = fields.DateTime()
    updates = fields.List(fields.Nested(TaskUpdateSchema))


class DecisionSchema(Schema):
    id = fields.Integer()
    agenda_item_id = fields.Integer()
    meeting_id = fields.Integer()
    community_code = fields.String()
    item_title = fields.String()
    option_id = fields.Integer()
    option_title = fields.String()
    approve = fields.Integer()
    oppose = fields.Integer()
    abstain = fields.Integer()
    attended = fields.Integer()
    responsible = fields.String()
    budget = budget_out()
    deadline = fields.Date()
    decided_at = fields.DateTime()
    published_at = fields.DateTime(allow_none=True)
    summary = fields.String(allow_none=True, metadata={"description": "internal"})
    public_summary = fields.String(allow_none=True, metadata={"description": "what the public notice says"})
    tasks = fields.List(fields.Nested(DecisionTaskSchema))


class DecisionResultSchema(DecisionSchema):
    replayed = fields.Boolean(metadata={"description": "true when the request repeats the last one (the same "
                                                      "task request id, or the same progress and note)"})


# -- figures and the public view -------------------------------------------------------------------

class FiguresQuerySchema(Schema):
    under = fields.String(validate=CODE)
    category = fields.String(validate=_one_of(CATEGORIES))
    since = fields.Date(metadata={"description": "matters raised on or after; default: 1 January this year"})
    until = fields.Date(metadata={"description": "matters raised before; default: tomorrow"})


class _Figures(Schema):
    matters = fields.Integer(metadata={"description": "raised in the period, repeats merged away not counted"})
    settled = fields.Integer()
    settlement_rate = fields.Float(allow_none=True, metadata={"description": "0 to 1; null with no matters"})
    on_time_rate = fields.Float(allow_none=True, metadata={"description": "of the settled, settled by the deadline"})
    screened_on_time_rate = fields.Float(allow_none=True)
    satisfaction_rate = fields.Float(allow_none=True, metadata={"description": "of the ratings, 4 or 5"})
    median_days_to_settle = fields.Float(allow_none=True)
    repeat_matters = fields.Integer()
    overdue = fields.Integer(metadata={"description": "open past the settlement deadline"})
    screening_overdue = fields.Integer(metadata={"description": "unscreened past the screening deadline"})


class ConsultationFigureRowSchema(_Figures):
    community_code = fields.String()
    category = fields.String()
    category_name = fields.String(allow_none=True)


class ConsultationFigureTotalSchema(_Figures):
    under = fields.String()
    since = fields.Date()
    until = fields.Date(metadata={"description": "exclusive"})


class ConsultationFiguresSchema(Schema):
    rows = fields.List(fields.Nested(ConsultationFigureRowSchema), metadata={"description": "per community and "
                                                                                           "category"})
    total = fields.Nested(ConsultationFigureTotalSchema)


class PublicQuerySchema(Schema):
    under = fields.String(required=True, validate=[*CODE, validate.Length(min=9, max=12)],
                          metadata={"description": "a street or community code"})
    limit, after = page()


class PublicResultSchema(Schema):
    id = fields.Integer()
    community_code = fields.String()
    categories = fields.List(fields.String())
    item_title = fields.String()
    option_title = fields.String()
    summary = fields.String(allow_none=True)
    budget = budget_out()
    deadline = fields.Date()
    decided_at = fields.DateTime()
    published_at = fields.DateTime()
    vote = fields.Dict(keys=fields.String(), values=fields.Integer(),
                       metadata={"description": "approve / oppose / abstain / attended"})
    attendance_by_role = fields.Dict(keys=fields.String(), values=fields.Integer())
    progress = fields.Integer()
    ratings = fields.Integer()
    satisfied = fields.Integer()


PublicResultPageSchema = page_schema(PublicResultSchema, fields.Integer(
    allow_none=True, metadata={"description": "pass as `after` for the next page"}))


# -- cases escalated from the streets below (at a district) ---------------------------------------

class CaseAnswerSchema(Schema):
    outcome = fields.String(required=True, validate=_one_of(("answered", "referred")))
    answer = Text(required=True, validate=validate.Length(min=1, max=2000),
                  metadata={"example": "已协调区建管委，下周起对该路段实施夜间临时停车管理。"})
    referred_to = Text(validate=validate.Length(min=1, max=200))


class CaseListQuerySchema(Schema):
    under = fields.String()
    status = fields.String(validate=_one_of(("open", "answered")))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))


CASE_ID = "must be a 9-digit street code, a colon and the matter id: 310110012:42"


def _no_newline(value):
    # The pattern documents the rule; Python's `$` would also match before a final newline.
    if value.endswith("\n"):
        raise ValidationError(CASE_ID)


class CaseIdSchema(Schema):
    """The case id in a path: a malformed one would only be looked up in vain."""
    case_id = fields.String(required=True, validate=[validate.Regexp(r"^[0-9]{9}:[0-9]{1,19}$", error=CASE_ID),
                                                     _no_newline],
                            metadata={"description": "the street's 9-digit code, a colon and the matter's id there",
                                      "example": "310110012:42"})


class CaseSchema(Schema):
    """A matter escalated from a street below, as the district keeps it: de-identified (no raiser, no
    resident's words)."""
    case_id = fields.String(metadata={"description": "<street code>:<matter id at that street>",
                                      "example": "310110012:42"})
    from_code = fields.String(metadata={"description": "the street that escalated it"})
    community_code = fields.String()
    category = fields.String()
    urgency = fields.String()
    channel = fields.String()
    reason = fields.String(allow_none=True, metadata={"description": "the street's own reason for escalating"})
    raised_on = fields.Date()
    status = fields.String(metadata={"enum": ["open", "answered"]})
    outcome = fields.String(allow_none=True, metadata={"enum": ["answered", "referred"]})
    answer = fields.String(allow_none=True)
    referred_to = fields.String(allow_none=True, metadata={"description": "where a referred case was sent"})
    answered_by = fields.String(allow_none=True)
    answered_at = fields.DateTime(allow_none=True)
    received_at = fields.DateTime()


class CaseListSchema(Schema):
    items = fields.List(fields.Nested(CaseSchema))
