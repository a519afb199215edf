"""Request and response shapes of the consultation service; the gateway's OpenAPI document is built from them."""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.consultation.rules import CATEGORIES, CHANNELS, MATTER_MOVES, ROLES, SCREENING, URGENCIES
from shared.fields import CLIENT_ID, CODE, ID, Text, page
from shared.fields import one_of as _one_of

TITLE = validate.Length(min=1, max=100, error="must be 1 to 100 characters")
NOTE = validate.Length(min=1, max=1000, error="must be 1 to 1000 characters")
COMMUNITY = [*CODE, validate.Length(equal=12, error="must be a 12-digit community code")]


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


class BackSchema(Schema):
    resident_id = fields.Integer(required=True, validate=ID)


class ScreenSchema(Schema):
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


class RateSchema(Schema):
    resident_id = fields.Integer(required=True, validate=ID)
    score = fields.Integer(required=True, validate=validate.Range(1, 5))
    comment = Text(validate=validate.Length(1, 500))


class SettleSchema(Schema):
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


class MatterListQuerySchema(Schema):
    under = fields.String(validate=CODE)
    status = fields.String(validate=_one_of(MATTER_MOVES))
    category = fields.String(validate=_one_of(CATEGORIES))
    overdue = fields.Boolean(load_default=False)
    screening_overdue = fields.Boolean(load_default=False)
    escalated = fields.Boolean(load_default=False, metadata={"description": "only matters handled above "
                                                                            "their community"})
    limit, after = page()


class DeadlineSchema(Schema):
    category = fields.String(required=True, validate=_one_of([*CATEGORIES, "*"]))
    urgency = fields.String(required=True, validate=_one_of(URGENCIES))
    screening_hours = fields.Integer(required=True, validate=validate.Range(1, 720))
    settle_days = fields.Integer(required=True, validate=validate.Range(1, 365))


# -- deliberation (二上二下) -----------------------------------------------------------------------

class AgendaItemCreateSchema(Schema):
    community_code = fields.String(required=True, validate=COMMUNITY)
    title = Text(required=True, validate=TITLE, metadata={"example": "长海一村停车位重新规划"})
    matter_ids = fields.List(fields.Integer(validate=ID), required=True, validate=validate.Length(1, 50))


class OptionCreateSchema(Schema):
    title = Text(required=True, validate=TITLE, metadata={"example": "绿化带改建30个停车位"})
    description = Text(validate=validate.Length(1, 2000))
    budget = fields.Decimal(places=2, validate=validate.Range(0, 10 ** 9), allow_none=True, as_string=True)


class ParticipantSchema(Schema):
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
    roster = fields.List(fields.Nested(ParticipantSchema), required=True, validate=validate.Length(1, 200))


class MeetingMoveSchema(Schema):
    starts_at = fields.AwareDateTime(required=True)
    place = Text(validate=validate.Length(1, 100))
    reason = Text(validate=NOTE)


class AttendanceSchema(Schema):
    participant_ids = fields.List(fields.Integer(validate=ID), required=True, validate=validate.Length(0, 200))


class VoteSchema(Schema):
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


class CancelMeetingSchema(Schema):
    reason = Text(required=True, validate=NOTE, metadata={"example": "台风预警，会议取消"})


class CloseMeetingSchema(Schema):
    minutes = Text(required=True, validate=validate.Length(1, 20000))


class MeetingSchema(Schema):
    id = fields.Integer()
    community_code = fields.String()
    title = fields.String()
    starts_at = fields.DateTime()
    place = fields.String()
    quorum = fields.Integer()
    status = fields.String()
    minutes = fields.String(allow_none=True)
    items = fields.List(fields.Dict())
    roster = fields.List(fields.Dict())
    attendance_by_role = fields.Dict(keys=fields.String(), values=fields.Integer())
    version = fields.Integer()


class TallySchema(Schema):
    meeting_id = fields.Integer()
    agenda_item_id = fields.Integer()
    attended = fields.Integer()
    quorum = fields.Integer()
    quorum_met = fields.Boolean()
    priority = fields.Float(allow_none=True)
    options = fields.List(fields.Dict())
    adopted_option_id = fields.Integer(allow_none=True)
    why_none = fields.String(allow_none=True)


# -- decision, implementation, publication (三上三下) ---------------------------------------------

class DecisionCreateSchema(Schema):
    meeting_id = fields.Integer(required=True, validate=ID)
    agenda_item_id = fields.Integer(required=True, validate=ID)
    responsible = Text(required=True, validate=validate.Length(1, 100), metadata={"example": "居委会、物业公司"})
    budget = fields.Decimal(places=2, validate=validate.Range(0, 10 ** 9), allow_none=True, as_string=True)
    deadline = fields.Date(required=True)
    summary = Text(validate=validate.Length(1, 2000))


class TaskCreateSchema(Schema):
    request_id = fields.String(validate=CLIENT_ID, metadata={"description": "client-chosen; a retry adds nothing"})
    title = Text(required=True, validate=TITLE, metadata={"example": "绿化带改建停车位施工"})
    responsible = Text(required=True, validate=validate.Length(1, 100))
    due_on = fields.Date(required=True)


class ProgressSchema(Schema):
    progress = fields.Integer(required=True, validate=validate.Range(0, 100))
    note = Text(required=True, validate=NOTE)


class PublishSchema(Schema):
    summary = Text(required=True, validate=validate.Length(1, 2000),
                   metadata={"description": "the public notice (公示) as residents will read it: no names, "
                                            "no room numbers", "example": "新增停车位30个，夜间停车秩序明显好转。"})


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
    budget = fields.Decimal(as_string=True, allow_none=True)
    deadline = fields.Date()
    decided_at = fields.DateTime()
    published_at = fields.DateTime(allow_none=True)
    summary = fields.String(allow_none=True, metadata={"description": "internal"})
    public_summary = fields.String(allow_none=True, metadata={"description": "what the public notice says"})
    tasks = fields.List(fields.Dict())


# -- figures and the public view -------------------------------------------------------------------

class FiguresQuerySchema(Schema):
    under = fields.String(validate=CODE)
    category = fields.String(validate=_one_of(CATEGORIES))
    since = fields.Date(metadata={"description": "matters raised on or after; default: 1 January this year"})
    until = fields.Date(metadata={"description": "matters raised before; default: tomorrow"})


class FiguresSchema(Schema):
    rows = fields.List(fields.Dict(), metadata={"description": "per community and category"})
    total = fields.Dict()


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
    budget = fields.Decimal(as_string=True, allow_none=True)
    deadline = fields.Date()
    decided_at = fields.DateTime()
    published_at = fields.DateTime()
    vote = fields.Dict(metadata={"description": "approve / oppose / abstain / attended"})
    attendance_by_role = fields.Dict()
    progress = fields.Integer()
    ratings = fields.Integer()
    satisfied = fields.Integer()


class PublicPageSchema(Schema):
    items = fields.List(fields.Nested(PublicResultSchema))
    next = fields.Integer(allow_none=True)
