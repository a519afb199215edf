"""The registry's HTTP operations (shared/api.py): the gateway serves and documents exactly these."""
from services.registry import schemas as s
from shared.api import Operation

NODES = "hierarchy"
PEOPLE, PARTY, ORGS, WORKERS = "people", "party", "organizations", "workers"
UNDER = (404, 422)  # a listing under a node code the register does not hold: 404, not an empty page
TAGS = {NODES: "The instance's communities and grids: created, renamed, split and retired with their history",
        PEOPLE: "Residents and households, bulk imports, and the audit log of who read which personal record",
        PARTY: "Party members under dual management (双重管理), the community party structure and the report rate",
        ORGS: "Social organisations and volunteer teams, their members and contracted projects",
        WORKERS: "Community workers: appointments, annual assessments, departures"}


def _split_codes(params, body):
    # Every node a split creates must lie in the caller's scope too, not only the old one.
    parts = body.get("parts") if isinstance(body.get("parts"), list) else []
    return [params["code"]] + [p.get("code") for p in parts if isinstance(p, dict)]


def _import(what, rpc, summary):
    """A CSV import: served by the gateway's hand-written method `rpc` (services/gateway/imports.py), which
    forwards the file base64-encoded and answers 422 with the report when nothing was written."""
    return Operation(
        "POST", f"/api/v1/imports/{what}", "registry", rpc, "people:write", summary, PEOPLE, custom=True,
        query=s.ImportQuerySchema, reply=s.ImportReportSchema, body={"type": "string", "format": "binary"},
        content_type="text/csv", problems=(413, 415, 422),
        description="The report lists every refused row. A 422 with the report (application/json) means "
                    "nothing was written; a 422 problem (application/problem+json), that the file (unreadable) "
                    "or the mode was refused as a whole. A file over 64 MB is a 413, a body not sent as text/csv "
                    "a 415.",
        extra={"responses": {"422": {
            "description": "nothing was written (the report says why), or the file or mode was refused",
            "content": {"application/json": {"schema": s.ImportReportSchema},
                        "application/problem+json": {"schema": "Problem"}}}}})


OPERATIONS = [
    Operation("GET", "/api/v1/nodes", "registry", "list_nodes", "nodes:read",
              "List nodes under a code (default: the token's scope)", NODES,
              query=s.NodeListQuerySchema, reply=s.NodePageSchema, scope="query:under", problems=UNDER),
    Operation("POST", "/api/v1/nodes", "registry", "create_node", "nodes:write",
              "Create a community or grid", NODES, body=s.NodeCreateSchema, reply=s.NodeSchema, status=201,
              scope="body:code", location="/api/v1/nodes/{code}", problems=(409, 422)),
    Operation("GET", "/api/v1/nodes/<string:code>", "registry", "get_node", "nodes:read",
              "A node and its history", NODES, reply=s.NodeDetailSchema, scope="path:code", caller=False,
              problems=(404,)),
    Operation("PATCH", "/api/v1/nodes/<string:code>", "registry", "rename_node", "nodes:write",
              "Rename a node (history is kept)", NODES, body=s.NodeRenameSchema, reply=s.NodeSchema,
              scope="path:code", problems=(404, 409, 422)),
    Operation("POST", "/api/v1/nodes/<string:code>/split", "registry", "split_node", "nodes:write",
              "Split a node into new ones; the old one is retired", NODES, body=s.NodeSplitSchema,
              reply=s.SplitResultSchema, scope=_split_codes, problems=(404, 409, 422)),
    Operation("POST", "/api/v1/nodes/<string:code>/retire", "registry", "retire_node", "nodes:write",
              "Retire a node, optionally naming its successor (a merge)", NODES, body=s.NodeRetireSchema,
              reply=s.NodeSchema, scope=lambda params, body: [params["code"], body.get("successor_code")],
              problems=(404, 409, 422)),

    # -- residents, households, imports and the audit log. Only the registry knows where a resident
    # lives, so it checks each record against the token's scope (and audits reads); the gateway
    # checks the role and any node code the request names.
    Operation("GET", "/api/v1/residents", "registry", "search_residents", "people:read",
              "Search residents in scope (ID numbers and phones masked; every record listed is audited)", PEOPLE,
              query=s.ResidentListQuerySchema, reply=s.ResidentPageSchema, scope="query:under", problems=UNDER),
    Operation("POST", "/api/v1/residents", "registry", "register_resident", "people:write",
              "Register a resident (the same person once per street)", PEOPLE, body=s.ResidentCreateSchema,
              reply=s.ResidentSchema, status=201, location="/api/v1/residents/{id}", problems=(409, 422)),
    Operation("GET", "/api/v1/residents/<int:resident_id>", "registry", "get_resident", "people:read",
              "A resident in full, with history (the read is audited)", PEOPLE, reply=s.ResidentDetailSchema,
              problems=(404,)),
    Operation("PATCH", "/api/v1/residents/<int:resident_id>", "registry", "update_resident", "people:write",
              "Correct name, phone, residence type, tags or grid", PEOPLE, body=s.ResidentUpdateSchema,
              reply=s.ResidentSchema, problems=(404, 422)),
    Operation("POST", "/api/v1/residents/<int:resident_id>/move", "registry", "move_resident", "people:write",
              "Move to another community or household of this street", PEOPLE, body=s.ResidentMoveSchema,
              reply=s.ResidentSchema, problems=(404, 409, 422)),
    Operation("POST", "/api/v1/residents/<int:resident_id>/departure", "registry", "record_departure",
              "people:write", "Record that the resident moved out of the street", PEOPLE,
              body=s.ResidentLeaveSchema, reply=s.ResidentSchema, problems=(404, 422)),
    Operation("POST", "/api/v1/residents/<int:resident_id>/death", "registry", "record_death", "people:write",
              "Record a death", PEOPLE, body=s.ResidentDeathSchema, reply=s.ResidentSchema, problems=(404, 422)),
    Operation("GET", "/api/v1/households/<int:household_id>", "registry", "get_household", "people:read",
              "A household, its address and members (the read is audited)", PEOPLE, reply=s.HouseholdSchema,
              problems=(404,)),
    _import("residents", "import_residents", "Import residents from CSV (UTF-8 or GB18030; Chinese headers)"),
    _import("party-members", "import_party_members",
            "Import party members of residents already registered, from CSV (UTF-8 or GB18030; Chinese headers "
            "and labels); each row is registered, and reported when a report date is given, as over the API"),
    Operation("GET", "/api/v1/audit", "registry", "audit_log", "audit:read",
              "Who read which personal record, when (operators and street admins)", PEOPLE,
              query=s.AuditQuerySchema, reply=s.AuditPageSchema),

    # -- party members under dual management: personal data, so people:read and people:write --
    Operation("GET", "/api/v1/party-orgs", "registry", "party_org_tree", "people:read",
              "A community's party structure as a tree: committee, branches, building groups", PARTY,
              query=s.PartyOrgTreeQuerySchema, reply=s.PartyOrgTreeSchema, scope="query:community_code",
              problems=UNDER),
    Operation("POST", "/api/v1/party-orgs", "registry", "create_party_org", "people:write",
              "Create a party committee, branch or building group", PARTY, body=s.PartyOrgCreateSchema,
              reply=s.PartyOrgSchema, status=201, scope="body:community_code", problems=(409, 422)),
    Operation("GET", "/api/v1/party-members", "registry", "search_party_members", "people:read",
              "List party members (reads are audited)", PARTY, query=s.PartyMemberListQuerySchema,
              reply=s.PartyMemberPageSchema, scope="query:under", problems=UNDER),
    Operation("POST", "/api/v1/party-members", "registry", "register_party_member", "people:write",
              "Register an active resident as a party member", PARTY, body=s.PartyMemberCreateSchema,
              reply=s.PartyMemberSchema, status=201, location="/api/v1/party-members/{resident_id}",
              problems=(409, 422)),
    Operation("GET", "/api/v1/party-members/<int:resident_id>", "registry", "get_party_member", "people:read",
              "A party member and their history (the read is audited)", PARTY, reply=s.PartyMemberDetailSchema,
              problems=(404,)),
    Operation("POST", "/api/v1/party-members/<int:resident_id>/report", "registry", "report_party_member",
              "people:write", "Report (报到) to the community, or report again after a withdrawal", PARTY,
              body=s.PartyReportSchema, reply=s.PartyMemberSchema, problems=(404, 422)),
    Operation("POST", "/api/v1/party-members/<int:resident_id>/withdraw", "registry", "withdraw_party_member",
              "people:write", "Withdraw: the member no longer serves in this community", PARTY,
              body=s.PartyWithdrawSchema, reply=s.PartyMemberSchema, problems=(404, 422)),
    Operation("POST", "/api/v1/party-members/<int:resident_id>/place", "registry", "place_party_member",
              "people:write", "Place the member in a branch or building group of their community", PARTY,
              body=s.PartyPlaceSchema, reply=s.PartyMemberSchema, problems=(404, 422)),
    Operation("GET", "/api/v1/party/report-rate", "registry", "party_report_rate", "people:read",
              "报到率: reported / members not withdrawn, per community and in total", PARTY,
              query=s.ReportRateQuerySchema, reply=s.ReportRateSchema, scope="query:under", problems=UNDER),

    # -- social organisations and volunteer teams: the registry checks the host community --
    Operation("GET", "/api/v1/organizations", "registry", "search_organizations", "orgs:read",
              "List social organisations and volunteer teams in scope", ORGS,
              query=s.OrganizationListQuerySchema, reply=s.OrganizationPageSchema, scope="query:community_code",
              problems=UNDER),
    Operation("POST", "/api/v1/organizations", "registry", "register_organization", "orgs:write",
              "Register an organisation or team; its leader becomes its first member", ORGS,
              body=s.OrganizationCreateSchema, reply=s.OrganizationSchema, status=201, scope="body:community_code",
              location="/api/v1/organizations/{id}", problems=(409, 422)),
    Operation("GET", "/api/v1/organizations/<int:organization_id>", "registry", "get_organization", "orgs:read",
              "An organisation with members, projects and history (the member list read is audited)", ORGS,
              reply=s.OrganizationDetailSchema, problems=(404,)),
    Operation("PATCH", "/api/v1/organizations/<int:organization_id>", "registry", "update_organization",
              "orgs:write", "Correct an organisation or name a new leader", ORGS, body=s.OrganizationUpdateSchema,
              reply=s.OrganizationSchema, problems=(404, 409, 422)),
    Operation("POST", "/api/v1/organizations/<int:organization_id>/status", "registry",
              "change_organization_status", "orgs:write",
              "Change status: filed → active ⇄ suspended; any → dissolved (ends every membership)", ORGS,
              body=s.OrganizationStatusSchema, reply=s.OrganizationSchema, problems=(404, 422)),
    Operation("POST", "/api/v1/organizations/<int:organization_id>/members", "registry", "join_organization",
              "orgs:write", "An active resident joins", ORGS, body=s.MemberJoinSchema,
              reply=s.OrganizationMemberSchema, status=201, problems=(404, 409, 422)),
    Operation("POST", "/api/v1/organizations/<int:organization_id>/members/<int:resident_id>/leave", "registry",
              "leave_organization", "orgs:write", "A member leaves (the leader cannot)", ORGS,
              body=s.MemberLeaveSchema, reply=s.OrganizationMemberSchema, problems=(404, 422)),
    Operation("POST", "/api/v1/organizations/<int:organization_id>/projects", "registry", "contract_project",
              "orgs:write", "Record a contracted project (name, funder, budget, period)", ORGS,
              body=s.ProjectCreateSchema, reply=s.ProjectSchema, status=201, problems=(404, 409, 422)),

    # -- community workers: street administrators appoint, assess and record departures; a
    # community worker's token may read its own community's workers (every read is audited) --
    Operation("GET", "/api/v1/workers", "registry", "search_workers", "workers:read",
              "List community workers in scope (ID numbers and phones masked; the read is audited)", WORKERS,
              query=s.WorkerListQuerySchema, reply=s.WorkerPageSchema, scope="query:community_code",
              problems=UNDER),
    Operation("POST", "/api/v1/workers", "registry", "appoint_worker", "workers:write",
              "Appoint a community worker", WORKERS, body=s.WorkerCreateSchema, reply=s.WorkerSchema, status=201,
              scope="body:community_code", location="/api/v1/workers/{id}", problems=(409, 422)),
    Operation("GET", "/api/v1/workers/<int:worker_id>", "registry", "get_worker", "workers:read",
              "A worker with assessments and history (the read is audited)", WORKERS, reply=s.WorkerDetailSchema,
              problems=(404,)),
    Operation("POST", "/api/v1/workers/<int:worker_id>/assessments", "registry", "assess_worker", "workers:write",
              "Record the annual assessment; outcome let_go ends the appointment", WORKERS,
              body=s.AssessmentCreateSchema, reply=s.WorkerDetailSchema, status=201, problems=(404, 409, 422)),
    Operation("POST", "/api/v1/workers/<int:worker_id>/leave", "registry", "record_worker_departure",
              "workers:write", "Record that a worker left", WORKERS, body=s.WorkerLeaveSchema, reply=s.WorkerSchema,
              problems=(404, 422)),
]
