"""The OpenAPI 3 document, generated from the marshmallow schemas the services validate with."""
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from services.registry.schemas import (NodeChangeSchema, NodeCreateSchema, NodeListQuerySchema,
                                       NodeRenameSchema, NodeRetireSchema, NodeSchema, NodeSplitSchema)


class ProblemSchema(Schema):
    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"description": "field -> messages"})
    correlation_id = fields.String()


class NodeDetailSchema(NodeSchema):
    history = fields.List(fields.Nested(NodeChangeSchema))


class NodePageSchema(Schema):
    items = fields.List(fields.Nested(NodeSchema))
    next = fields.String(allow_none=True, metadata={"description": "pass as `after` for the next page"})


class SplitResultSchema(Schema):
    retired = fields.Nested(NodeSchema)
    created = fields.List(fields.Nested(NodeSchema))


ERRORS = {str(code): {"description": desc, "content": {"application/problem+json": {"schema": "Problem"}}}
          for code, desc in [(401, "no or bad token"), (403, "role or node scope refuses it"),
                             (404, "no such node"), (409, "conflicts with the current state"),
                             (422, "invalid fields; see `errors`"),
                             (503, "not done: the message broker, the database or a pool was unavailable. "
                                   "Nothing was changed; retry after the Retry-After header's seconds"),
                             (504, "outcome unknown: the request reached the service but no answer came within "
                                   "its deadline, so the change may have been made. Check, or send the same "
                                   "request again: a repeated registration answers 409 naming the record, and an "
                                   "operation with a request_id answers a repeat with its first result")]}


def _op(summary, ok_schema, body=None, status="200", params=None):
    op = {"summary": summary, "security": [{"bearer": []}],
          "responses": {status: {"description": "ok", "content": {"application/json": {"schema": ok_schema}}}, **ERRORS}}
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


CODE_PARAM = {"in": "path", "name": "code", "required": True, "schema": {"type": "string", "pattern": r"^\d+$"}}


def build(version):
    spec = APISpec(title="Linli API", version=version, openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()],
                   info={"description": "邻里 community governance: registers, hierarchy and feeds of one instance."})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for name, schema in [("Problem", ProblemSchema), ("Node", NodeSchema), ("NodeDetail", NodeDetailSchema),
                         ("NodePage", NodePageSchema), ("NodeCreate", NodeCreateSchema),
                         ("NodeRename", NodeRenameSchema), ("NodeSplit", NodeSplitSchema),
                         ("NodeRetire", NodeRetireSchema), ("SplitResult", SplitResultSchema)]:
        spec.components.schema(name, schema=schema)
    spec.path("/api/v1/nodes", operations={
        "get": _op("List nodes under a code (default: the token's scope)", "NodePage",
                   params=[{"in": "query", "schema": NodeListQuerySchema}]),
        "post": _op("Create a community or grid", "Node", body="NodeCreate", status="201"),
    })
    spec.path("/api/v1/nodes/{code}", operations={
        "get": _op("A node and its history", "NodeDetail", params=[CODE_PARAM]),
        "patch": _op("Rename a node (history is kept)", "Node", body="NodeRename", params=[CODE_PARAM]),
    })
    spec.path("/api/v1/nodes/{code}/split", operations={
        "post": _op("Split a node into new ones; the old one is retired", "SplitResult", body="NodeSplit",
                    params=[CODE_PARAM]),
    })
    spec.path("/api/v1/nodes/{code}/retire", operations={
        "post": _op("Retire a node, optionally naming its successor (a merge)", "Node", body="NodeRetire",
                    params=[CODE_PARAM]),
    })
    for path, summary in [("/healthz", "Liveness"), ("/readyz", "Readiness: database and broker reachable"),
                          ("/metrics", "Prometheus metrics"), ("/api/v1/openapi.json", "This document")]:
        responses = {"200": {"description": "ok"}}
        if path == "/readyz":
            responses["200"] = {"description": "ready: `status` is `ok`, or `busy` when `checks.database` is "
                                               "`pool exhausted` (this process's connections all busy; its workers "
                                               "wait for one, so it still takes traffic)"}
            responses["503"] = {"description": "not ready: `checks.database` is `server full` (PostgreSQL refuses "
                                               "more) or `unavailable`; `checks.broker` is `unavailable`"}
        spec.path(path, operations={"get": {"summary": summary, "responses": responses}})
    add_people(spec)
    add_party(spec)
    add_civic(spec)
    add_points(spec)
    add_consultation(spec)
    add_notification(spec)
    add_aggregates(spec)
    return spec.to_dict()


# -- party members under dual management --------------------------------------

from services.registry.schemas import (PartyMemberChangeSchema, PartyMemberCreateSchema,  # noqa: E402
                                       PartyMemberListQuerySchema, PartyMemberSchema, PartyOrgCreateSchema,
                                       PartyOrgSchema, PartyOrgTreeQuerySchema, PartyOrgTreeSchema,
                                       PartyPlaceSchema, PartyReportSchema, PartyWithdrawSchema,
                                       ReportRateQuerySchema, ReportRateSchema)


class PartyMemberDetailSchema(PartyMemberSchema):
    history = fields.List(fields.Nested(PartyMemberChangeSchema))


class PartyMemberPageSchema(Schema):
    items = fields.List(fields.Nested(PartyMemberSchema))
    next = fields.Integer(allow_none=True, metadata={"description": "pass as `after` for the next page"})


RESIDENT_ID_PARAM = {"in": "path", "name": "resident_id", "required": True, "schema": {"type": "integer"}}


def add_party(spec):
    for name, schema in [("PartyOrg", PartyOrgSchema), ("PartyOrgCreate", PartyOrgCreateSchema),
                         ("PartyOrgTree", PartyOrgTreeSchema), ("PartyMember", PartyMemberSchema),
                         ("PartyMemberDetail", PartyMemberDetailSchema), ("PartyMemberPage", PartyMemberPageSchema),
                         ("PartyMemberCreate", PartyMemberCreateSchema), ("PartyReport", PartyReportSchema),
                         ("PartyWithdraw", PartyWithdrawSchema), ("PartyPlace", PartyPlaceSchema),
                         ("ReportRate", ReportRateSchema)]:
        spec.components.schema(name, schema=schema)
    spec.path("/api/v1/party-orgs", operations={
        "get": _op("A community's party structure as a tree: committee, branches, building groups", "PartyOrgTree",
                   params=[{"in": "query", "schema": PartyOrgTreeQuerySchema}]),
        "post": _op("Create a party committee, branch or building group", "PartyOrg", body="PartyOrgCreate",
                    status="201"),
    })
    spec.path("/api/v1/party-members", operations={
        "get": _op("List party members (reads are audited)", "PartyMemberPage",
                   params=[{"in": "query", "schema": PartyMemberListQuerySchema}]),
        "post": _op("Register an active resident as a party member", "PartyMember", body="PartyMemberCreate",
                    status="201"),
    })
    spec.path("/api/v1/party-members/{resident_id}", operations={
        "get": _op("A party member and their history (the read is audited)", "PartyMemberDetail",
                   params=[RESIDENT_ID_PARAM]),
    })
    for action, body, summary in [
            ("report", "PartyReport", "Report (报到) to the community, or report again after a withdrawal"),
            ("withdraw", "PartyWithdraw", "Withdraw: the member no longer serves in this community"),
            ("place", "PartyPlace", "Place the member in a branch or building group of their community")]:
        spec.path(f"/api/v1/party-members/{{resident_id}}/{action}", operations={
            "post": _op(summary, "PartyMember", body=body, params=[RESIDENT_ID_PARAM])})
    spec.path("/api/v1/party/report-rate", operations={
        "get": _op("报到率: reported / members not withdrawn, per community and in total", "ReportRate",
                   params=[{"in": "query", "schema": ReportRateQuerySchema}]),
    })


# -- social organisations, volunteer teams and community workers ------------------------

from services.registry.schemas import (AssessmentCreateSchema, MemberJoinSchema, MemberLeaveSchema,  # noqa: E402
                                       OrganizationCreateSchema, OrganizationDetailSchema,
                                       OrganizationListQuerySchema, OrganizationMemberSchema,
                                       OrganizationPageSchema, OrganizationSchema, OrganizationStatusSchema,
                                       OrganizationUpdateSchema, ProjectCreateSchema, ProjectSchema,
                                       WorkerCreateSchema, WorkerDetailSchema, WorkerLeaveSchema,
                                       WorkerListQuerySchema, WorkerPageSchema, WorkerSchema)


def _id_param(name):
    return {"in": "path", "name": name, "required": True, "schema": {"type": "integer"}}


ORG = _id_param("organization_id")
WORKER = _id_param("worker_id")


def add_civic(spec):
    # Leaves first: apispec names a nested schema itself when it meets it unregistered.
    for name, schema in [("Organization", OrganizationSchema), ("OrganizationMember", OrganizationMemberSchema),
                         ("Project", ProjectSchema), ("OrganizationDetail", OrganizationDetailSchema),
                         ("OrganizationPage", OrganizationPageSchema), ("OrganizationCreate", OrganizationCreateSchema),
                         ("OrganizationUpdate", OrganizationUpdateSchema),
                         ("OrganizationStatus", OrganizationStatusSchema), ("MemberJoin", MemberJoinSchema),
                         ("MemberLeave", MemberLeaveSchema), ("ProjectCreate", ProjectCreateSchema),
                         ("Worker", WorkerSchema),
                         ("WorkerDetail", WorkerDetailSchema), ("WorkerPage", WorkerPageSchema),
                         ("WorkerCreate", WorkerCreateSchema), ("AssessmentCreate", AssessmentCreateSchema),
                         ("WorkerLeave", WorkerLeaveSchema)]:
        spec.components.schema(name, schema=schema)
    spec.path("/api/v1/organizations", operations={
        "get": _op("List social organisations and volunteer teams in scope", "OrganizationPage",
                   params=[{"in": "query", "schema": OrganizationListQuerySchema}]),
        "post": _op("Register an organisation or team; its leader becomes its first member", "Organization",
                    body="OrganizationCreate", status="201"),
    })
    spec.path("/api/v1/organizations/{organization_id}", operations={
        "get": _op("An organisation with members, projects and history (the member list read is audited)",
                   "OrganizationDetail", params=[ORG]),
        "patch": _op("Correct an organisation or name a new leader", "Organization", body="OrganizationUpdate",
                     params=[ORG]),
    })
    spec.path("/api/v1/organizations/{organization_id}/status", operations={
        "post": _op("Change status: filed → active ⇄ suspended; any → dissolved (ends every membership)",
                    "Organization", body="OrganizationStatus", params=[ORG]),
    })
    spec.path("/api/v1/organizations/{organization_id}/members", operations={
        "post": _op("An active resident joins", "OrganizationMember", body="MemberJoin", status="201",
                    params=[ORG]),
    })
    spec.path("/api/v1/organizations/{organization_id}/members/{resident_id}/leave", operations={
        "post": _op("A member leaves (the leader cannot)", "OrganizationMember", body="MemberLeave",
                    params=[ORG, _id_param("resident_id")]),
    })
    spec.path("/api/v1/organizations/{organization_id}/projects", operations={
        "post": _op("Record a contracted project (name, funder, budget, period)", "Project", body="ProjectCreate",
                    status="201", params=[ORG]),
    })
    spec.path("/api/v1/workers", operations={
        "get": _op("List community workers in scope (ID numbers and phones masked; the read is audited)",
                   "WorkerPage", params=[{"in": "query", "schema": WorkerListQuerySchema}]),
        "post": _op("Appoint a community worker", "Worker", body="WorkerCreate", status="201"),
    })
    spec.path("/api/v1/workers/{worker_id}", operations={
        "get": _op("A worker with assessments and history (the read is audited)", "WorkerDetail",
                   params=[WORKER]),
    })
    spec.path("/api/v1/workers/{worker_id}/assessments", operations={
        "post": _op("Record the annual assessment; outcome let_go ends the appointment", "WorkerDetail",
                    body="AssessmentCreate", status="201", params=[WORKER]),
    })
    spec.path("/api/v1/workers/{worker_id}/leave", operations={
        "post": _op("Record that a worker left", "Worker", body="WorkerLeave", params=[WORKER]),
    })


# -- residents, households, imports and the audit log ------------------------------------

from services.registry.schemas import (AuditEntrySchema, AuditQuerySchema, HouseholdRefSchema,  # noqa: E402
                                       ResidentChangeSchema, ResidentCreateSchema, ResidentDeathSchema,
                                       ResidentLeaveSchema, ResidentListQuerySchema, ResidentMoveSchema,
                                       ResidentSchema, ResidentUpdateSchema)


class ResidentDetailSchema(ResidentSchema):
    history = fields.List(fields.Nested(ResidentChangeSchema))


class ResidentPageSchema(Schema):
    items = fields.List(fields.Nested(ResidentSchema))
    next = fields.Integer(allow_none=True, metadata={"description": "pass as `after` for the next page"})


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


class AuditPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEntrySchema))
    next = fields.Integer(allow_none=True)


RESIDENT = _id_param("resident_id")


def add_people(spec):
    for name, schema in [("HouseholdRef", HouseholdRefSchema), ("Resident", ResidentSchema),
                         ("ResidentChange", ResidentChangeSchema), ("ResidentDetail", ResidentDetailSchema),
                         ("ResidentPage", ResidentPageSchema), ("ResidentCreate", ResidentCreateSchema),
                         ("ResidentUpdate", ResidentUpdateSchema), ("ResidentMove", ResidentMoveSchema),
                         ("ResidentLeave", ResidentLeaveSchema), ("ResidentDeath", ResidentDeathSchema),
                         ("Household", HouseholdSchema), ("ImportReport", ImportReportSchema),
                         ("AuditEntry", AuditEntrySchema), ("AuditPage", AuditPageSchema)]:
        spec.components.schema(name, schema=schema)
    spec.path("/api/v1/residents", operations={
        "get": _op("Search residents in scope (ID numbers and phones masked; every record listed is audited)",
                   "ResidentPage", params=[{"in": "query", "schema": ResidentListQuerySchema}]),
        "post": _op("Register a resident (the same person once per street)", "Resident",
                    body="ResidentCreate", status="201"),
    })
    spec.path("/api/v1/residents/{resident_id}", operations={
        "get": _op("A resident in full, with history (the read is audited)", "ResidentDetail", params=[RESIDENT]),
        "patch": _op("Correct name, phone, residence type, tags or grid", "Resident", body="ResidentUpdate",
                     params=[RESIDENT]),
    })
    for action, body, summary in [
            ("move", "ResidentMove", "Move to another community or household of this street"),
            ("departure", "ResidentLeave", "Record that the resident moved out of the street"),
            ("death", "ResidentDeath", "Record a death")]:
        spec.path(f"/api/v1/residents/{{resident_id}}/{action}", operations={
            "post": _op(summary, "Resident", body=body, params=[RESIDENT])})
    spec.path("/api/v1/households/{household_id}", operations={
        "get": _op("A household, its address and members (the read is audited)", "Household",
                   params=[_id_param("household_id")]),
    })
    for path, summary in [
            ("residents", "Import residents from CSV (UTF-8 or GB18030; Chinese headers). "
                          "422 when nothing was written."),
            ("party-members", "Import party members of residents already registered, from CSV (UTF-8 or "
                              "GB18030; Chinese headers and labels); each row is registered, and reported "
                              "when a report date is given, as over the API. 422 when nothing was written.")]:
        imp = _op(summary, "ImportReport", params=[{"in": "query", "name": "mode", "schema": {
            "type": "string", "enum": ["all_or_nothing", "valid_rows"], "default": "all_or_nothing"}}])
        imp["requestBody"] = {"required": True,
                              "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}}}
        spec.path(f"/api/v1/imports/{path}", operations={"post": imp})
    spec.path("/api/v1/audit", operations={
        "get": _op("Who read which personal record, when (operators and street admins)", "AuditPage",
                   params=[{"in": "query", "schema": AuditQuerySchema}]),
    })



# -- service points: catalogue, accounts, records, redemptions, evaluation ------------------------

from services.points.schemas import (AccountListQuerySchema, AccountOpenSchema, AccountPageSchema,  # noqa: E402
                                     AccountSchema, BatchResultSchema, BatchVerifySchema, CategoryCreateSchema,
                                     CategorySchema, CategoryUpdateSchema, EvaluationQuerySchema, EvaluationSchema,
                                     RecordCreateSchema, RecordListQuerySchema, RecordPageSchema, RecordSchema,
                                     RedemptionCloseSchema, RedemptionCreateSchema, RedemptionListQuerySchema,
                                     RedemptionPageSchema, RedemptionSchema, ReverseSchema, RewardCreateSchema,
                                     RewardSchema, RewardUpdateSchema, RuleSchema, RuleVersionSchema,
                                     SnapshotSchema, StandingSchema, StatementLineSchema, StatementQuerySchema,
                                     StatementSchema, VerifySchema, VoidSchema)


class CategoryListSchema(Schema):
    items = fields.List(fields.Nested(CategorySchema))


class RewardListSchema(Schema):
    items = fields.List(fields.Nested(RewardSchema))


class RecordResultSchema(RecordSchema):
    replayed = fields.Boolean(metadata={"description": "true when the request id (or transfer id) was seen "
                                                      "before; the answer is then 200 with the first result"})


class RedemptionResultSchema(RedemptionSchema):
    replayed = fields.Boolean(metadata={"description": "true when the request id was seen before; the answer "
                                                      "is then 200 with the first redemption"})


INCLUDE_INACTIVE = {"in": "query", "name": "include_inactive", "required": False,
                    "schema": {"type": "boolean", "default": False}}
CATEGORY = {"in": "path", "name": "code", "required": True,
            "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_]{1,39}$"}}
REWARD, ACCOUNT, RECORD, REDEMPTION = (_id_param(n) for n in ("reward_id", "account_id", "record_id",
                                                              "redemption_id"))


def _replayable(summary, ok_schema, body):
    op = _op(summary, ok_schema, body=body, status="201")
    op["responses"]["200"] = {"description": "a retry: the first result, with `replayed: true`",
                              "content": {"application/json": {"schema": ok_schema}}}
    return op


def add_points(spec):
    # Leaves first: apispec names a nested schema itself when it meets it unregistered.
    for name, schema in [("RuleVersion", RuleVersionSchema), ("Category", CategorySchema),
                         ("CategoryList", CategoryListSchema), ("CategoryCreate", CategoryCreateSchema),
                         ("CategoryUpdate", CategoryUpdateSchema), ("Rule", RuleSchema),
                         ("Reward", RewardSchema), ("RewardList", RewardListSchema),
                         ("RewardCreate", RewardCreateSchema), ("RewardUpdate", RewardUpdateSchema),
                         ("PointsAccount", AccountSchema), ("PointsAccountPage", AccountPageSchema),
                         ("PointsAccountOpen", AccountOpenSchema), ("StatementLine", StatementLineSchema),
                         ("Statement", StatementSchema), ("ServiceRecord", RecordSchema),
                         ("ServiceRecordResult", RecordResultSchema), ("ServiceRecordPage", RecordPageSchema),
                         ("ServiceRecordCreate", RecordCreateSchema), ("RecordVerify", VerifySchema),
                         ("RecordBatchVerify", BatchVerifySchema), ("RecordBatchResult", BatchResultSchema),
                         ("RecordVoid", VoidSchema), ("RecordReverse", ReverseSchema),
                         ("Redemption", RedemptionSchema), ("RedemptionResult", RedemptionResultSchema),
                         ("RedemptionPage", RedemptionPageSchema), ("RedemptionCreate", RedemptionCreateSchema),
                         ("RedemptionClose", RedemptionCloseSchema), ("Standing", StandingSchema),
                         ("Evaluation", EvaluationSchema), ("EvaluationSnapshot", SnapshotSchema)]:
        spec.components.schema(name, schema=schema)
    p = "/api/v1/points"
    spec.path(f"{p}/categories", operations={
        "get": _op("Service categories with the rule in force today and every version", "CategoryList",
                   params=[INCLUDE_INACTIVE]),
        "post": _op("Create a category with its first rule version (street admins)", "Category",
                    body="CategoryCreate", status="201"),
    })
    spec.path(f"{p}/categories/{{code}}", operations={
        "get": _op("A category and its rule versions", "Category", params=[CATEGORY]),
        "patch": _op("Rename a category, or (de)activate it (street admins)", "Category", body="CategoryUpdate",
                     params=[CATEGORY]),
    })
    spec.path(f"{p}/categories/{{code}}/rules", operations={
        "post": _op("Add a rule version valid from a day on; versions are never edited (street admins)",
                    "Category", body="Rule", status="201", params=[CATEGORY]),
    })
    spec.path(f"{p}/rewards", operations={
        "get": _op("Rewards points can buy", "RewardList", params=[INCLUDE_INACTIVE]),
        "post": _op("Add a reward (street admins)", "Reward", body="RewardCreate", status="201"),
    })
    spec.path(f"{p}/rewards/{{reward_id}}", operations={
        "patch": _op("Change a reward's stock, cost, per-person limit or active flag (street admins)", "Reward",
                     body="RewardUpdate", params=[REWARD]),
    })
    spec.path(f"{p}/accounts", operations={
        "get": _op("Points accounts in scope, with balance, held points, verified hours and stars",
                   "PointsAccountPage", params=[{"in": "query", "schema": AccountListQuerySchema}]),
        "post": _op("Open the account of a resident or an organisation (or answer the one that exists)",
                    "PointsAccount", body="PointsAccountOpen", status="201"),
    })
    spec.path(f"{p}/accounts/{{account_id}}", operations={
        "get": _op("A points account", "PointsAccount", params=[ACCOUNT]),
    })
    spec.path(f"{p}/accounts/{{account_id}}/statement", operations={
        "get": _op("An account's ledger lines, newest first", "Statement",
                   params=[ACCOUNT, {"in": "query", "schema": StatementQuerySchema}]),
    })
    spec.path(f"{p}/records", operations={
        "get": _op("Service records in scope (an organisation's leader sees its organisation's only)",
                   "ServiceRecordPage", params=[{"in": "query", "schema": RecordListQuerySchema}]),
        "post": _replayable("Claim or log a service record; it waits for verification", "ServiceRecordResult",
                            "ServiceRecordCreate"),
    })
    spec.path(f"{p}/records/{{record_id}}", operations={
        "get": _op("A service record", "ServiceRecord", params=[RECORD]),
    })
    spec.path(f"{p}/records/verify", operations={
        "post": _op("Verify many pending records at once: all are posted, or none (409/403 names each refused)",
                    "RecordBatchResult", body="RecordBatchVerify"),
    })
    for action, body, ok, summary in [
            ("verify", "RecordVerify", "ServiceRecordResult",
             "Verify a pending record: its points are posted under the rule in force on its service day"),
            ("void", "RecordVoid", "ServiceRecord", "Void a pending record (by whoever may verify it)"),
            ("reverse", "RecordReverse", "ServiceRecord",
             "Reverse a posted record: a new transfer takes the points back (community workers, street admins)")]:
        spec.path(f"{p}/records/{{record_id}}/{action}", operations={
            "post": _op(summary, ok, body=body, params=[RECORD])})
    spec.path(f"{p}/redemptions", operations={
        "get": _op("Redemptions in scope", "RedemptionPage",
                   params=[{"in": "query", "schema": RedemptionListQuerySchema}]),
        "post": _replayable("Redeem points for a reward: the points are held until fulfilment or cancellation",
                            "RedemptionResult", "RedemptionCreate"),
    })
    spec.path(f"{p}/redemptions/{{redemption_id}}", operations={
        "get": _op("A redemption", "Redemption", params=[REDEMPTION]),
    })
    for action, summary in [("fulfil", "Hand the reward over: the held points are spent"),
                            ("cancel", "Cancel: the held points go back and the stock is returned")]:
        spec.path(f"{p}/redemptions/{{redemption_id}}/{action}", operations={
            "post": _op(summary, "Redemption", body="RedemptionClose", params=[REDEMPTION])})
    evaluation = _op("The year's standings, ranked per community and party branch (live until the snapshot)",
                     "Evaluation", params=[{"in": "query", "schema": EvaluationQuerySchema}])
    evaluation["responses"]["200"]["description"] = "JSON, or with format=csv a UTF-8 CSV (with BOM) download"
    evaluation["responses"]["200"]["content"]["text/csv"] = {"schema": {"type": "string"}}
    spec.path(f"{p}/evaluation", operations={
        "get": evaluation,
        "post": _op("Take the year-end snapshot of the whole instance; it is immutable (street admins)",
                    "Evaluation", body="EvaluationSnapshot", status="201"),
    })


# -- consultation (三上三下): matters, deliberation, decisions, figures and the public view ---------------

from services.consultation.cases import AnswerSchema as CaseAnswerSchema  # noqa: E402
from services.consultation.cases import CaseListQuerySchema  # noqa: E402
from services.consultation.schemas import (AgendaItemCreateSchema, AttendanceSchema, BackSchema,  # noqa: E402
                                           CancelMeetingSchema, CloseMeetingSchema, DeadlineSchema,
                                           DecisionCreateSchema,
                                           DecisionSchema, FiguresQuerySchema, FiguresSchema,
                                           MatterCreateSchema, MatterListQuerySchema, MatterSchema,
                                           MeetingCreateSchema, MeetingMoveSchema, MeetingSchema,
                                           OptionCreateSchema, ParticipantSchema, ProgressSchema,
                                           PublicPageSchema, PublicQuerySchema, PublicResultSchema, PublishSchema,
                                           RateSchema, ScreenSchema, SettleSchema, SimilarQuerySchema,
                                           TallySchema, TaskCreateSchema, VoteSchema)


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


class MatterPageSchema(Schema):
    items = fields.List(fields.Nested(MatterSchema))
    next = fields.Integer(allow_none=True, metadata={"description": "pass as `after` for the next page"})


class SimilarMatterSchema(Schema):
    id = fields.Integer()
    title = fields.String()
    status = fields.String()
    backers = fields.Integer()
    similarity = fields.Float(metadata={"description": "0 to 1: how alike the texts are"})


class SimilarMatterListSchema(Schema):
    items = fields.List(fields.Nested(SimilarMatterSchema))


class DeadlineListSchema(Schema):
    items = fields.List(fields.Nested(DeadlineSchema), metadata={"description": "every deadline now in force"})


class OptionSchema(Schema):
    id = fields.Integer()
    title = fields.String()
    description = fields.String(allow_none=True)
    budget = fields.Decimal(as_string=True, allow_none=True)


class AgendaItemSchema(Schema):
    id = fields.Integer()
    community_code = fields.String()
    title = fields.String()
    status = fields.String()
    created_by = fields.String()
    created_at = fields.DateTime()
    matters = fields.List(fields.Nested(MatterSchema))
    options = fields.List(fields.Nested(OptionSchema))


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
    answered_by = fields.String(allow_none=True)
    answered_at = fields.DateTime(allow_none=True)
    received_at = fields.DateTime()


class CaseListSchema(Schema):
    items = fields.List(fields.Nested(CaseSchema))


MATTER, ITEM, MEETING, DECISION, TASK = (_id_param(n) for n in ("matter_id", "item_id", "meeting_id",
                                                                 "decision_id", "task_id"))
CASE = {"in": "path", "name": "case_id", "required": True,
        "schema": {"type": "string", "pattern": r"^[0-9]{9}:[0-9]{1,19}$", "example": "310110012:42"},
        "description": "the street's 9-digit code, a colon and the matter's id there; 422 when malformed"}
AGENDA_ITEM_QUERY = {"in": "query", "name": "agenda_item_id", "required": True,
                     "schema": {"type": "integer", "minimum": 1, "maximum": 2 ** 63 - 1},
                     "description": "the agenda item to tally; 422 when missing or not a positive integer"}


def add_consultation(spec):
    # Leaves first: apispec names a nested schema itself when it meets it unregistered.
    for name, schema in [("Matter", MatterSchema), ("MatterResult", MatterResultSchema),
                         ("MatterHistory", MatterHistorySchema), ("MatterDetail", MatterDetailSchema),
                         ("MatterPage", MatterPageSchema), ("MatterCreate", MatterCreateSchema),
                         ("SimilarMatter", SimilarMatterSchema), ("SimilarMatterList", SimilarMatterListSchema),
                         ("MatterBack", BackSchema), ("MatterScreen", ScreenSchema), ("MatterRate", RateSchema),
                         ("MatterSettle", SettleSchema), ("ConsultationDeadline", DeadlineSchema),
                         ("ConsultationDeadlineList", DeadlineListSchema), ("AgendaOption", OptionSchema),
                         ("AgendaItem", AgendaItemSchema), ("AgendaItemCreate", AgendaItemCreateSchema),
                         ("AgendaOptionCreate", OptionCreateSchema), ("MeetingParticipant", ParticipantSchema),
                         ("Meeting", MeetingSchema), ("MeetingCreate", MeetingCreateSchema),
                         ("MeetingMove", MeetingMoveSchema), ("MeetingAttendance", AttendanceSchema),
                         ("MeetingVote", VoteSchema), ("MeetingTally", TallySchema),
                         ("MeetingClose", CloseMeetingSchema), ("MeetingCancel", CancelMeetingSchema),
                         ("Decision", DecisionSchema), ("DecisionCreate", DecisionCreateSchema),
                         ("DecisionTaskCreate", TaskCreateSchema), ("TaskProgress", ProgressSchema),
                         ("ResultPublish", PublishSchema), ("ConsultationFigures", FiguresSchema),
                         ("PublicResult", PublicResultSchema), ("PublicResultPage", PublicPageSchema),
                         ("Case", CaseSchema), ("CaseList", CaseListSchema), ("CaseAnswer", CaseAnswerSchema)]:
        spec.components.schema(name, schema=schema)
    spec.tag({"name": "consultation", "description": "Consultation (三上三下); at a district, the matters "
                                                     "escalated from the streets below as de-identified cases"})
    m = "/api/v1/matters"
    spec.path(m, operations={
        "get": _op("Matters in scope, newest first (overdue, escalated, by status or category)", "MatterPage",
                   params=[{"in": "query", "schema": MatterListQuerySchema}]),
        "post": _replayable("Raise a matter (一上); 409 names similar open matters unless confirm_new is sent",
                            "MatterResult", "MatterCreate"),
    })
    spec.path(f"{m}/similar", operations={
        "get": _op("Open matters of a community and category that read alike: back one instead of raising anew",
                   "SimilarMatterList", params=[{"in": "query", "schema": SimilarQuerySchema}]),
    })
    spec.path(f"{m}/{{matter_id}}", operations={
        "get": _op("A matter and its history", "MatterDetail", params=[MATTER]),
    })
    for action, body, summary in [
            ("back", "MatterBack", "A resident backs an open matter; each resident counts once"),
            ("screen", "MatterScreen", "Screen a matter (一下): answer, refer, reject, merge, deliberate or "
                                       "escalate to the street"),
            ("rate", "MatterRate", "The raiser rates how the matter was settled (1-5)"),
            ("settle", "MatterSettle", "Record that a matter is settled")]:
        spec.path(f"{m}/{{matter_id}}/{action}", operations={
            "post": _op(summary, "Matter", body=body, params=[MATTER])})
    spec.path("/api/v1/consultation/deadlines", operations={
        "put": _op("Set the screening and settlement deadlines of a category and urgency (street admins)",
                   "ConsultationDeadlineList", body="ConsultationDeadline"),
    })
    spec.path("/api/v1/agenda-items", operations={
        "post": _op("Gather matters screened for deliberation into an agenda item (二上)", "AgendaItem",
                    body="AgendaItemCreate", status="201"),
    })
    spec.path("/api/v1/agenda-items/{item_id}", operations={
        "get": _op("An agenda item with its matters and drafted options", "AgendaItem", params=[ITEM]),
    })
    spec.path("/api/v1/agenda-items/{item_id}/options", operations={
        "post": _op("Draft an option for an open item; the answer is the item", "AgendaItem",
                    body="AgendaOptionCreate", status="201", params=[ITEM]),
    })
    spec.path("/api/v1/meetings", operations={
        "post": _op("Schedule a consultation meeting with its agenda and a roster by stakeholder role",
                    "Meeting", body="MeetingCreate", status="201"),
    })
    spec.path("/api/v1/meetings/{meeting_id}", operations={
        "get": _op("A meeting with its agenda, roster and attendance by role", "Meeting", params=[MEETING]),
    })
    for action, body, summary in [
            ("move", "MeetingMove", "Move a scheduled meeting to another time or place"),
            ("open", "MeetingAttendance", "Open the meeting with the attendance taken (it may be taken again "
                                          "while open)"),
            ("close", "MeetingClose", "Close the meeting with its minutes"),
            ("cancel", "MeetingCancel", "Call the meeting off")]:
        spec.path(f"/api/v1/meetings/{{meeting_id}}/{action}", operations={
            "post": _op(summary, "Meeting", body=body, params=[MEETING])})
    spec.path("/api/v1/meetings/{meeting_id}/votes", operations={
        "post": _op("An attending participant scores an item or votes on an option; the answer is the item's "
                    "tally", "MeetingTally", body="MeetingVote", status="201", params=[MEETING]),
    })
    spec.path("/api/v1/meetings/{meeting_id}/tally", operations={
        "get": _op("An item's tally: quorum, priority score, votes per option and the option adopted, if any",
                   "MeetingTally", params=[MEETING, AGENDA_ITEM_QUERY]),
    })
    spec.path("/api/v1/decisions", operations={
        "post": _op("Record the decision (三上) on an item's adopted option: who carries it out, budget, deadline",
                    "Decision", body="DecisionCreate", status="201"),
    })
    spec.path("/api/v1/decisions/{decision_id}", operations={
        "get": _op("A decision with its implementation tasks", "Decision", params=[DECISION]),
    })
    spec.path("/api/v1/decisions/{decision_id}/tasks", operations={
        "post": _op("Add an implementation task; the answer is the decision", "Decision",
                    body="DecisionTaskCreate", status="201", params=[DECISION]),
    })
    spec.path("/api/v1/decisions/{decision_id}/publish", operations={
        "post": _op("Publish the result (公示, 三下) once every task is done; raisers are then asked to rate it",
                    "Decision", body="ResultPublish", params=[DECISION]),
    })
    spec.path("/api/v1/tasks/{task_id}/progress", operations={
        "post": _op("Report a task's progress (it never goes back); the answer is the decision", "Decision",
                    body="TaskProgress", params=[TASK]),
    })
    spec.path("/api/v1/consultation/figures", operations={
        "get": _op("Settlement, on-time and satisfaction rates per community and category (no one named)",
                   "ConsultationFigures", params=[{"in": "query", "schema": FiguresQuerySchema}]),
    })
    public = _op("Published results (公示) of a street or community: vote, attendance by role, progress and "
                 "satisfaction, nothing personal. Public: no token.", "PublicResultPage",
                 params=[{"in": "query", "schema": PublicQuerySchema}])
    public["security"] = []  # explicitly none, so no client or gateway in front asks for a token
    for code in ("401", "403", "404", "409"):
        del public["responses"][code]
    spec.path("/api/v1/public/results", operations={"get": public})
    spec.path("/api/v1/cases", operations={
        "get": _tagged("consultation", _op(
            "Cases escalated from the streets under a code (default: the token's scope), newest first; 403 when "
            "`under` lies outside the token's scope", "CaseList",
            params=[{"in": "query", "schema": CaseListQuerySchema}])),
    })
    spec.path("/api/v1/cases/{case_id}/answer", operations={
        "post": _tagged("consultation", _op(
            "Answer a case (answered, or referred with where to); the answer goes down, signed, to the street that "
            "escalated it. 404 for a case outside the token's scope, 409 when answered already", "Case",
            body="CaseAnswer", params=[CASE])),
    })


# -- notification: broadcasts, notices, subscribers, a resident's own inbox, templates, receipts -----------

from services.notification.schemas import (BroadcastDraftSchema, BroadcastEditSchema,  # noqa: E402
                                           BroadcastListQuerySchema, ChannelAddressSchema, DeliveryQuerySchema,
                                           InboxQuerySchema, NoticeSchema, OrganizationNoticeSchema,
                                           PreferencesSchema, ReasonSchema, ReceiptSchema, ReceiptsSchema)
from services.notification.schemas import ROLES as NOTICE_ROLES  # noqa: E402


class BroadcastVersionSchema(Schema):
    version = fields.Integer()
    prefix = fields.String()
    title = fields.String()
    message = fields.String()
    channels = fields.List(fields.String())
    actor = fields.String()
    created_at = fields.DateTime()


class BroadcastLogEntrySchema(Schema):
    at = fields.DateTime()
    status = fields.String()
    version = fields.Integer()
    actor = fields.String()
    reason = fields.String(allow_none=True)


class RollupTotalSchema(Schema):
    # null only where the small-cell rule hides a count (services/aggregator/suppression.py) from a
    # token that sees aggregates only; broadcast readers' tokens see every count.
    targeted = fields.Integer(allow_none=True, metadata={"description": "people the notice was for"})
    reached = fields.Integer(allow_none=True, metadata={"description": "people sent to on at least one channel"})
    read = fields.Integer(allow_none=True, metadata={"description": "people who opened it"})


class RollupCommunitySchema(RollupTotalSchema):
    community_code = fields.String()


class RollupStreetSchema(RollupTotalSchema):
    street_code = fields.String()


class RollupSchema(Schema):
    source = fields.String(metadata={"description": "deliveries: this instance's own deliveries (a street); rollups: "
                                                   "at a district or city, the counts the streets reported under "
                                                   "the directive (`sent_down_as`), from the aggregator's roll-ups; "
                                                   "unavailable: the aggregator did not answer in time, so the "
                                                   "streets' figures are missing (GET only)"})
    streets = fields.List(fields.Nested(RollupStreetSchema), metadata={"description": "per street (from the "
                                                                                      "roll-ups; [] at a street)"})
    communities = fields.List(fields.Nested(RollupCommunitySchema))
    total = fields.Nested(RollupTotalSchema)
    channels = fields.Dict(keys=fields.String(), values=fields.Dict(keys=fields.String(), values=fields.Integer()),
                           metadata={"description": "channel -> delivery status -> count, of this instance's own "
                                                    "deliveries"})


class BroadcastSchema(Schema):
    id = fields.Integer()
    request_id = fields.String(allow_none=True)
    directive_id = fields.String(allow_none=True, metadata={"description": "set when ordered from above"})
    prefix = fields.String()
    title = fields.String()
    message = fields.String()
    channels = fields.List(fields.String())
    status = fields.String(metadata={"description": "draft, pending_approval, approved, rejected, sending, sent "
                                                    "or cancelled"})
    version = fields.Integer()
    created_by = fields.String()
    edited_by = fields.String()
    approved_by = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    notice_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    sent_down_as = fields.String(allow_none=True, metadata={
        "description": "at a district or city once approved: the directive id it went down to the streets "
                       "under; their acknowledgements are counted under it (the roll-up's `streets`)"})


class BroadcastDetailSchema(BroadcastSchema):
    versions = fields.List(fields.Nested(BroadcastVersionSchema))
    log = fields.List(fields.Nested(BroadcastLogEntrySchema))
    rollup = fields.Nested(RollupSchema, allow_none=True)
    replayed = fields.Boolean(metadata={"description": "true when the request id was seen before; the answer "
                                                      "is then 200 with the first broadcast"})
    deliveries_cancelled = fields.Integer(metadata={"description": "on cancel: deliveries stopped"})
    deliveries_queued = fields.Integer(metadata={"description": "on approval: deliveries queued here (none at a "
                                                               "district or city, whose streets deliver it)"})


class BroadcastPageSchema(Schema):
    items = fields.List(fields.Nested(BroadcastSchema))
    next = fields.Integer(allow_none=True, metadata={"description": "pass as `after` for the next page"})


class DeliverySchema(Schema):
    id = fields.Integer()
    resident_id = fields.Integer()
    community_code = fields.String()
    channel = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    provider = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    due_at = fields.DateTime(allow_none=True)
    sent_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)
    read_at = fields.DateTime(allow_none=True)


class DeliveryPageSchema(Schema):
    items = fields.List(fields.Nested(DeliverySchema))
    next = fields.Integer(allow_none=True, metadata={"description": "pass as `after` for the next page"})


class NoticeViewSchema(Schema):
    id = fields.Integer()
    trigger_key = fields.String()
    kind = fields.String()
    category = fields.String()
    priority = fields.String()
    template_code = fields.String()
    template_version = fields.Integer()
    context = fields.Dict()
    target = fields.Dict(allow_none=True)
    scope_code = fields.String()
    created_by = fields.String()
    created_at = fields.DateTime()
    rollup = fields.Nested(RollupSchema)


class NoticeResultSchema(NoticeViewSchema):
    deliveries_added = fields.Integer()
    replayed = fields.Boolean(metadata={"description": "true when the request id was seen before; the answer "
                                                      "is then 200 with the first notice"})


class SubscriberSchema(Schema):
    resident_id = fields.Integer()
    name = fields.String()
    community_code = fields.String()
    grid_code = fields.String(allow_none=True)
    household_id = fields.Integer(allow_none=True)
    tags = fields.List(fields.String())
    status = fields.String()
    version = fields.Integer()
    roles = fields.List(fields.String())
    organization_ids = fields.List(fields.Integer())


class SubscriberChannelSchema(Schema):
    channel = fields.String()
    address = fields.String(metadata={"description": "masked"})
    source = fields.String(metadata={"description": "registry (the phone on the register) or given"})
    updated_at = fields.DateTime()


class InboxItemSchema(Schema):
    id = fields.Integer(metadata={"description": "the delivery id, to mark it read"})
    status = fields.String()
    category = fields.String()
    priority = fields.String()
    subject = fields.String()
    body = fields.String()
    at = fields.DateTime(allow_none=True)
    read_at = fields.DateTime(allow_none=True)


class InboxSchema(Schema):
    items = fields.List(fields.Nested(InboxItemSchema))
    unread = fields.Integer()
    next = fields.Integer(allow_none=True, metadata={"description": "pass as `after` for the next page"})


class ReadResultSchema(Schema):
    id = fields.Integer()
    status = fields.String()
    replayed = fields.Boolean(metadata={"description": "true when it was read already (it counts once)"})


class TemplateTextSchema(Schema):
    subject = fields.String(required=True, metadata={"description": "Jinja2, at most 200 characters"})
    body = fields.String(required=True, metadata={"description": "Jinja2, at most 5000 characters"})


class TemplateSaveSchema(Schema):
    category = fields.String(metadata={"description": "for a new template: what its messages may refer to "
                                                      "(meetings, matters, points, organizations, emergency, "
                                                      "general, digest); kept for an existing one"})
    zh = fields.Nested(TemplateTextSchema, required=True)
    en = fields.Nested(TemplateTextSchema)


class TemplateVersionSchema(Schema):
    version = fields.Integer()
    locale = fields.String()
    subject = fields.String()
    body = fields.String()
    actor = fields.String()
    created_at = fields.DateTime()


class TemplateSchema(Schema):
    code = fields.String()
    category = fields.String()
    version = fields.Integer(metadata={"description": "the latest version"})
    created_at = fields.DateTime()
    versions = fields.List(fields.Nested(TemplateVersionSchema))


class ReceiptsResultSchema(Schema):
    applied = fields.Integer()
    ignored = fields.Integer(metadata={"description": "receipts that would move a delivery backwards"})
    unknown = fields.Integer(metadata={"description": "provider ids with no delivery"})


BROADCAST, NOTICE, DELIVERY = (_id_param(n) for n in ("broadcast_id", "notice_id", "delivery_id"))
CHANNEL_PARAM = {"in": "path", "name": "channel", "required": True,
                 "schema": {"type": "string", "enum": ["sms", "wechat", "email", "webhook"]}}
TEMPLATE_PARAM = {"in": "path", "name": "code", "required": True,
                  "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_]{1,59}$"}}
REACH_PARAMS = [
    {"in": "query", "name": "prefix", "schema": {"type": "string", "pattern": r"^\d{2,15}$"},
     "description": "the area: a node code (prefix) inside the token's scope (default: the token's scope); "
                    "403 outside it"},
    {"in": "query", "name": "tags", "schema": {"type": "array", "maxItems": 10,
                                               "items": {"type": "string", "pattern": "^[a-z][a-z0-9_]{1,39}$"}},
     "style": "form", "explode": False, "description": "any of these care tags (comma-separated or repeated)"},
    {"in": "query", "name": "roles", "schema": {"type": "array", "items": {"type": "string",
                                                                          "enum": list(NOTICE_ROLES)}},
     "style": "form", "explode": False, "description": "any of these roles (comma-separated or repeated)"},
]


def _tagged(tag, op):
    op["tags"] = [tag]
    return op


def _self(summary, ok_schema, body=None, params=None):
    """A resident's own route: their token, their resident_id; other roles get 403."""
    op = _tagged("notification", _op(summary + " (a resident's token; acts for the resident it names)",
                                     ok_schema, body=body, params=params))
    op["responses"]["403"] = {**op["responses"]["403"], "description": "not a resident's token"}
    return op


def add_notification(spec):
    spec.tag({"name": "broadcasts", "description": "Emergency broadcasts: drafted, approved by a second person, "
                                                   "sent down to every subscriber of an area"})
    spec.tag({"name": "notification", "description": "Notices, subscribers' channels and preferences, inboxes, "
                                                     "templates and provider receipts"})
    # Leaves first: apispec names a nested schema itself when it meets it unregistered.
    for name, schema in [("BroadcastVersion", BroadcastVersionSchema), ("BroadcastLogEntry", BroadcastLogEntrySchema),
                         ("RollupTotal", RollupTotalSchema), ("RollupCommunity", RollupCommunitySchema),
                         ("RollupStreet", RollupStreetSchema), ("NoticeRollup", RollupSchema),
                         ("Broadcast", BroadcastSchema),
                         ("BroadcastDetail", BroadcastDetailSchema), ("BroadcastPage", BroadcastPageSchema),
                         ("BroadcastDraft", BroadcastDraftSchema), ("BroadcastEdit", BroadcastEditSchema),
                         ("BroadcastReason", ReasonSchema), ("Delivery", DeliverySchema),
                         ("DeliveryPage", DeliveryPageSchema), ("Notice", NoticeViewSchema),
                         ("NoticeResult", NoticeResultSchema), ("NoticeCreate", NoticeSchema),
                         ("OrganizationNoticeCreate", OrganizationNoticeSchema), ("Subscriber", SubscriberSchema),
                         ("SubscriberChannel", SubscriberChannelSchema),
                         ("SubscriberChannelSet", ChannelAddressSchema),
                         ("NotificationPreferences", PreferencesSchema), ("InboxItem", InboxItemSchema),
                         ("Inbox", InboxSchema), ("InboxRead", ReadResultSchema),
                         ("TemplateText", TemplateTextSchema), ("NotificationTemplateSave", TemplateSaveSchema),
                         ("TemplateVersion", TemplateVersionSchema), ("NotificationTemplate", TemplateSchema),
                         ("Receipt", ReceiptSchema), ("Receipts", ReceiptsSchema),
                         ("ReceiptsResult", ReceiptsResultSchema)]:
        spec.components.schema(name, schema=schema)
    spec.components.schema("SubscriberChannelList", {"type": "array", "items": "SubscriberChannel"})
    spec.components.schema("NoticeReach", {"type": "object", "additionalProperties": {"type": "integer"},
                                           "description": "community code -> active subscribers the target reaches",
                                           "example": {"310110012003": 412, "310110012004": 388}})

    b = "/api/v1/broadcasts"
    spec.path(b, operations={
        "get": _tagged("broadcasts", _op("Emergency broadcasts in scope, newest first", "BroadcastPage",
                                         params=[{"in": "query", "schema": BroadcastListQuerySchema}])),
        "post": _tagged("broadcasts", _replayable("Draft an emergency broadcast for an area in scope (community "
                                                  "workers, street admins)", "BroadcastDetail", "BroadcastDraft")),
    })
    spec.path(f"{b}/{{broadcast_id}}", operations={
        "get": _tagged("broadcasts", _op("A broadcast with its versions, log and roll-up: at a street its own "
                                         "deliveries per community; at a district or city, reach and reads per "
                                         "street and per community as the streets reported them (roll-ups)",
                                         "BroadcastDetail",
                                         params=[BROADCAST])),
        "patch": _tagged("broadcasts", _op("Edit a draft or a rejected broadcast: a new version", "BroadcastDetail",
                                           body="BroadcastEdit", params=[BROADCAST])),
    })
    for action, body, summary in [
            ("submit", None, "Submit a draft for approval (community workers, street admins)"),
            ("approve", None, "Approve and send it: a street admin other than its author (two-person rule)"),
            ("reject", "BroadcastReason", "Reject it with a reason; it may be edited and submitted again "
                                          "(street admins)"),
            ("cancel", "BroadcastReason", "Call it off with a reason; deliveries not yet sent are cancelled")]:
        spec.path(f"{b}/{{broadcast_id}}/{action}", operations={
            "post": _tagged("broadcasts", _op(summary, "BroadcastDetail", body=body, params=[BROADCAST]))})
    spec.path(f"{b}/{{broadcast_id}}/deliveries", operations={
        "get": _tagged("broadcasts", _op("A broadcast's deliveries, one per person and channel", "DeliveryPage",
                                         params=[BROADCAST, {"in": "query", "schema": DeliveryQuerySchema}])),
    })

    n = "/api/v1/notices"
    spec.path(n, operations={
        "post": _tagged("notification", _replayable(
            "Send a notice to the subscribers of an area in scope, by care tags and roles (the request id is its "
            "idempotency key)", "NoticeResult", "NoticeCreate")),
    })
    spec.path(f"{n}/reach", operations={
        "get": _tagged("notification", _op("How many active subscribers a target reaches, per community, before "
                                           "anything is sent", "NoticeReach", params=REACH_PARAMS)),
    })
    spec.path(f"{n}/{{notice_id}}", operations={
        "get": _tagged("notification", _op("A notice and its delivery roll-up", "Notice", params=[NOTICE])),
    })
    organization_notice = _tagged("notification", _replayable(
        "Notify an organisation's current members (its leader, for their own organisation only; community "
        "workers, street admins)", "NoticeResult", "OrganizationNoticeCreate"))
    organization_notice["parameters"] = [ORG]
    spec.path("/api/v1/organizations/{organization_id}/notices", operations={"post": organization_notice})

    s = "/api/v1/subscribers/{resident_id}"
    spec.path(s, operations={
        "get": _tagged("notification", _op("A subscriber: community, tags, roles, organisations", "Subscriber",
                                           params=[RESIDENT])),
    })
    spec.path(f"{s}/channels", operations={
        "get": _tagged("notification", _op("A subscriber's addresses per channel (masked)", "SubscriberChannelList",
                                           params=[RESIDENT])),
        "put": _tagged("notification", _op("Set the subscriber's address for a channel; the answer is every "
                                           "channel", "SubscriberChannelList", body="SubscriberChannelSet",
                                           params=[RESIDENT])),
    })
    spec.path(f"{s}/channels/{{channel}}", operations={
        "delete": _tagged("notification", _op("Remove the subscriber's address for a channel", "SubscriberChannelList",
                                              params=[RESIDENT, CHANNEL_PARAM])),
    })
    spec.path(f"{s}/preferences", operations={
        "get": _tagged("notification", _op("A subscriber's opt-outs, quiet hours and language",
                                           "NotificationPreferences", params=[RESIDENT])),
        "put": _tagged("notification", _op("Set a subscriber's opt-outs, quiet hours and language (emergencies "
                                           "always arrive)", "NotificationPreferences",
                                           body="NotificationPreferences", params=[RESIDENT])),
    })
    spec.path(f"{s}/inbox", operations={
        "get": _tagged("notification", _op("A subscriber's inbox, newest first", "Inbox",
                                           params=[RESIDENT, {"in": "query", "schema": InboxQuerySchema}])),
    })
    spec.path(f"{s}/inbox/{{delivery_id}}/read", operations={
        "post": _tagged("notification", _op("Mark an inbox message read (again is no error)", "InboxRead",
                                            params=[RESIDENT, DELIVERY])),
    })

    me = "/api/v1/me"
    spec.path(f"{me}/inbox", operations={
        "get": _self("My inbox, newest first", "Inbox", params=[{"in": "query", "schema": InboxQuerySchema}]),
    })
    spec.path(f"{me}/inbox/{{delivery_id}}/read", operations={
        "post": _self("Mark one of my messages read", "InboxRead", params=[DELIVERY]),
    })
    spec.path(f"{me}/preferences", operations={
        "get": _self("My opt-outs, quiet hours and language", "NotificationPreferences"),
        "put": _self("Set my opt-outs, quiet hours and language", "NotificationPreferences",
                     body="NotificationPreferences"),
    })
    spec.path(f"{me}/channels", operations={
        "get": _self("My addresses per channel (masked)", "SubscriberChannelList"),
        "put": _self("Set my address for a channel", "SubscriberChannelList", body="SubscriberChannelSet"),
    })
    spec.path(f"{me}/channels/{{channel}}", operations={
        "delete": _self("Remove my address for a channel", "SubscriberChannelList", params=[CHANNEL_PARAM]),
    })

    spec.path("/api/v1/notification/templates/{code}", operations={
        "get": _tagged("notification", _op("A message template and its versions", "NotificationTemplate",
                                           params=[TEMPLATE_PARAM])),
        "put": _tagged("notification", _op(
            "Create a template or add a version: Chinese required, English optional; checked against its "
            "category's sample context before saving (street admins)", "NotificationTemplate",
            body="NotificationTemplateSave", params=[TEMPLATE_PARAM])),
    })

    receipts = _tagged("notification", _op(
        "Delivery receipts from a provider, signed with its secret over the raw body. No token.",
        "ReceiptsResult", body="Receipts", params=[
            {"in": "path", "name": "provider", "required": True, "schema": {"type": "string"},
             "description": "the provider's name in NOTIFICATION_PROVIDERS"},
            {"in": "header", "name": "X-Linli-Signature", "required": True,
             "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
             "description": "sha256=<hex HMAC-SHA256 of the raw request body with the provider's receipt "
                            "secret>"}]))
    receipts["security"] = []  # explicitly none: the signature is the provider's credential
    receipts["responses"]["401"] = {"description": "the signature is missing or wrong",
                                    "content": {"application/problem+json": {"schema": "Problem"}}}
    receipts["responses"]["404"] = {"description": "no provider of that name",
                                    "content": {"application/problem+json": {"schema": "Problem"}}}
    receipts["responses"]["413"] = {"description": "the body is larger than 1 MB",
                                    "content": {"application/problem+json": {"schema": "Problem"}}}
    for code in ("403", "409"):
        del receipts["responses"][code]
    spec.path("/api/v1/notification/receipts/{provider}", operations={"post": receipts})


# -- aggregator: roll-ups, the facts feed, child instances ---------------------------------------------

from services.aggregator.figures import FeedQuerySchema, HeadlineQuerySchema, RollupQuerySchema  # noqa: E402


class RollupPointSchema(Schema):
    period_start = fields.Date()
    n = fields.Integer(allow_none=True, metadata={"description": "null when suppressed"})
    suppressed = fields.Boolean(metadata={"description": "hidden from analysts' and feeds' tokens by the one "
                                                         "small-cell rule: a count of 1 to 4, or one that a "
                                                         "difference or rate with shown figures would give back"})
    total = fields.Float(allow_none=True, metadata={"description": "the measure's sum (points, hours, ...); null "
                                                                   "when suppressed"})


class RollupSeriesSchema(Schema):
    key = fields.String(metadata={"description": "'' without grouping, else the child node code or the dimension "
                                                 "value"})
    points = fields.List(fields.Nested(RollupPointSchema))


class RollupsSchema(Schema):
    metric = fields.String()
    node = fields.String()
    period = fields.String()
    start = fields.Date()
    end = fields.Date()
    group = fields.String()
    stock = fields.Boolean(metadata={"description": "true: the level at the end of each period; false: what "
                                                    "happened in it"})
    series = fields.List(fields.Nested(RollupSeriesSchema))


def _count(description):
    return fields.Integer(allow_none=True, metadata={"description": description + "; null where the small-cell "
                                                                   "rule hides it"})


def _rate(description):
    return fields.Float(allow_none=True, metadata={"description": description + "; null with no whole, or where "
                                                                   "a count it is made of is hidden"})


class HeadlinesSchema(Schema):
    """A node's headline figures. For district analysts' and department feeds' tokens, counts follow the
    one small-cell rule of every aggregate view (services/aggregator/suppression.py)."""
    node = fields.String()
    year = fields.Integer()
    as_of = fields.Date(metadata={"description": "the day stocks are counted at (today in the instance's zone)"})
    residents = _count("residents now")
    residents_by_residence_type = fields.Dict(keys=fields.String(), values=fields.Integer(allow_none=True))
    residents_by_age_band = fields.Dict(keys=fields.String(), values=fields.Integer(allow_none=True))
    party_members = _count("party members now")
    party_members_reported = _count("of them, reported to their community")
    report_rate = _rate("reported / party members")
    organizations = _count("organisations now")
    organizations_by_category = fields.Dict(keys=fields.String(), values=fields.Integer(allow_none=True))
    workers = _count("community workers now")
    points_posted = fields.Float(allow_none=True, metadata={"description": "points posted in the year; null where "
                                                                           "the count of postings is hidden"})
    points_redeemed = fields.Float(allow_none=True)
    service_hours = fields.Float(allow_none=True)
    matters_raised = _count("matters raised in the year")
    matters_settled = _count("matters settled in the year; hidden too where raised - settled is 1 to 4")
    settlement_rate = _rate("settled / raised")
    on_time_rate = _rate("settled on time / settled")
    satisfaction_rate = _rate("rated 4 or 5 / rated")
    median_days_to_settle = fields.Float(allow_none=True)


class FactSchema(Schema):
    seq = fields.Integer(metadata={"description": "the cursor"})
    fact_id = fields.String()
    batch_id = fields.String()
    source_code = fields.String(metadata={"description": "the instance that signed the batch"})
    type = fields.String()
    v = fields.Integer()
    node = fields.String()
    occurred_on = fields.Date()
    subject = fields.String(allow_none=True, metadata={"description": "a keyed pseudonym, never a person's data"})
    delta = fields.Integer()
    dims = fields.Dict(keys=fields.String())
    received_at = fields.DateTime()


class FeedPageSchema(Schema):
    items = fields.List(fields.Nested(FactSchema))
    next = fields.Integer(metadata={"description": "pass as `after` for the next page (unchanged when none came)"})


class StreamPositionSchema(Schema):
    service = fields.String(metadata={"description": "the child's service that numbers the stream"})
    stream = fields.String(metadata={"example": "facts", "description": "`facts` (every service) or `cases` (consultation)"})
    contiguous = fields.Integer(metadata={"description": "highest number below which nothing is missing"})
    highest = fields.Integer(metadata={"description": "highest number seen or announced"})
    missing = fields.Integer(metadata={"description": "numbers missing above `contiguous`"})
    oldest_gap_seconds = fields.Float(metadata={"description": "age of the oldest open gap (0: none)"})
    resends_requested = fields.Integer()
    resends_answered = fields.Integer(metadata={"description": "gaps closed after a request"})


class ChildInstanceSchema(Schema):
    code = fields.String()
    public_key = fields.String()
    amqp_uri = fields.String(allow_none=True, metadata={"description": "any password masked"})
    added_at = fields.DateTime()
    last_fact_at = fields.DateTime(allow_none=True)
    streams = fields.List(fields.Nested(StreamPositionSchema), metadata={
        "description": "completeness of what the child sends, per service's stream"})


class RebuildResultSchema(Schema):
    facts = fields.Integer(metadata={"description": "facts replayed from the log"})


def _aggregates(op):
    """Tagged, and without the 404 and 409 no aggregator route answers."""
    for code in ("404", "409"):
        del op["responses"][code]
    return _tagged("aggregates", op)


def add_aggregates(spec):
    spec.tag({"name": "aggregates", "description": "De-identified roll-ups and the facts feed of this instance's "
                                                   "subtree, for superior departments"})
    for name, schema in [("RollupPoint", RollupPointSchema), ("RollupSeries", RollupSeriesSchema),
                         ("Rollups", RollupsSchema), ("Fact", FactSchema), ("FeedPage", FeedPageSchema),
                         ("ChildInstance", ChildInstanceSchema), ("RebuildResult", RebuildResultSchema)]:
        spec.components.schema(name, schema=schema)
    spec.components.schema("ChildInstanceList", {"type": "array", "items": "ChildInstance"})
    spec.components.schema("Headlines", schema=HeadlinesSchema)
    readers = "(district analysts, department feeds, street admins, operators)"
    rollup_params = [{"in": "query", "schema": RollupQuerySchema}]
    spec.path("/api/v1/rollups", operations={
        "get": _aggregates(_op(f"One metric under a node in the token's scope, per day, month or year, in total, "
                               f"per child node or per dimension value {readers}", "Rollups", params=rollup_params)),
    })
    csv_op = _aggregates(_op(f"The same roll-up as a CSV download {readers}", "Rollups", params=rollup_params))
    csv_op["responses"]["200"] = {
        "description": "UTF-8 CSV with a BOM, Chinese column labels; "
                       'Content-Disposition: attachment; filename="rollups-<metric>-<node>.csv"',
        "content": {"text/csv": {"schema": {"type": "string"}}}}
    spec.path("/api/v1/rollups.csv", operations={"get": csv_op})
    spec.path("/api/v1/feed", operations={
        "get": _aggregates(_op(f"The facts log after a cursor, by type and node prefix in the token's scope (its "
                               f"default), a page at a time {readers}", "FeedPage",
                               params=[{"in": "query", "schema": FeedQuerySchema}])),
    })
    spec.path("/api/v1/children", operations={
        "get": _aggregates(_op("The child instances registered here, when each last sent facts, and whether "
                               "anything it sent is missing (street admins, operators)", "ChildInstanceList")),
    })
    spec.path("/api/v1/rollups/headlines", operations={
        "get": _aggregates(_op(f"A node's headline figures: residents by residence type and age band, party members "
                               f"and report rate, organisations, points, service hours, matters raised and settled, "
                               f"settlement, on-time and satisfaction rates, median days to settle {readers}",
                               "Headlines", params=[{"in": "query", "schema": HeadlineQuerySchema}])),
    })
    spec.path("/api/v1/rollups/rebuild", operations={
        "post": _aggregates(_op("Rebuild every roll-up from the facts log (street admins, operators)",
                                "RebuildResult")),
    })
