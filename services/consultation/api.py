"""The consultation service's HTTP operations (shared/api.py): the gateway serves and documents exactly these.

三上三下: matters (一上一下), agenda items and meetings (二上二下), decisions, tasks and the published result
(三上三下), figures, the public view, and at a district the cases escalated from the streets below. The gateway
checks the role and any node code the request names; the consultation service checks each matter's,
meeting's and decision's community (and a case's street) against the token's scope, since only it knows them.
Raising a matter, scheduling a meeting or adding a task with a `request_id` seen before answers 200 with the
first result (marked `replayed`) instead of 201. The published results (公示) ask for no token at all.
"""
from services.consultation import schemas as s
from shared.api import Operation

TAG = "consultation"
TAGS = {TAG: "Consultation (三上三下); at a district, the matters escalated from the streets below as "
             "de-identified cases"}
READ, WRITE = "consultation:read", "consultation:write"
MATTERS, ITEMS, MEETINGS, DECISIONS = "/api/v1/matters", "/api/v1/agenda-items", "/api/v1/meetings", "/api/v1/decisions"
MATTER, ITEM = f"{MATTERS}/<int:matter_id>", f"{ITEMS}/<int:item_id>"
MEETING, DECISION = f"{MEETINGS}/<int:meeting_id>", f"{DECISIONS}/<int:decision_id>"
ACT = (404, 409, 422)   # an action on a thing by id: not there (or not in scope), not now, or invalid
COMMUNITY = dict(scope="body:community_code")
UNDER = (404, 422)      # a listing under a node code the registry does not hold: 404, not an empty page


def _matter_action(action, body, summary):
    return Operation("POST", f"{MATTER}/{action}", "consultation", f"{action}_matter", WRITE, summary, TAG,
                     body=body, reply=s.MatterSchema, problems=ACT)


def _meeting_action(action, rpc, body, summary):
    return Operation("POST", f"{MEETING}/{action}", "consultation", rpc, WRITE, summary, TAG,
                     body=body, reply=s.MeetingSchema, problems=ACT)


OPERATIONS = [
    # -- matters (一上一下) -------------------------------------------------------------------------
    Operation("POST", MATTERS, "consultation", "raise_matter", WRITE,
              "Raise a matter (一上); 409 names similar open matters unless confirm_new is sent", TAG,
              body=s.MatterCreateSchema, reply=s.MatterResultSchema, status=201, location=MATTERS + "/{id}",
              replayed_ok=True, problems=ACT, **COMMUNITY),
    Operation("GET", MATTERS, "consultation", "search_matters", READ,
              "Matters in scope, newest first (overdue, escalated, by status or category)", TAG,
              query=s.MatterListQuerySchema, reply=s.MatterPageSchema, scope="query:under", problems=UNDER),
    # `similar` is no int, so it never meets `matters/<int:matter_id>`.
    Operation("GET", f"{MATTERS}/similar", "consultation", "similar_matters", READ,
              "Open matters of a community and category that read alike: back one instead of raising anew", TAG,
              query=s.SimilarQuerySchema, reply=s.SimilarMatterListSchema, scope="query:community_code",
              problems=UNDER),
    Operation("GET", MATTER, "consultation", "get_matter", READ, "A matter and its history", TAG,
              reply=s.MatterDetailSchema, problems=(404,)),
    _matter_action("back", s.MatterBackSchema, "A resident backs an open matter; each resident counts once"),
    _matter_action("screen", s.MatterScreenSchema, "Screen a matter (一下): answer, refer, reject, merge, "
                                                   "deliberate or escalate to the street"),
    _matter_action("rate", s.MatterRateSchema, "The raiser rates how the matter was settled (1-5)"),
    _matter_action("settle", s.MatterSettleSchema, "Record that a matter is settled"),
    Operation("PUT", "/api/v1/consultation/deadlines", "consultation", "set_deadline", "consultation:admin",
              "Set the screening and settlement deadlines of a category and urgency (street admins)", TAG,
              body=s.ConsultationDeadlineSchema, reply=s.ConsultationDeadlineListSchema,
              name="set_consultation_deadline"),

    # -- agenda items and meetings (二上二下) -------------------------------------------------------
    Operation("POST", ITEMS, "consultation", "create_agenda_item", WRITE,
              "Gather matters screened for deliberation into an agenda item (二上)", TAG,
              body=s.AgendaItemCreateSchema, reply=s.AgendaItemSchema, status=201, location=ITEMS + "/{id}",
              **COMMUNITY),
    Operation("GET", ITEM, "consultation", "get_agenda_item", READ,
              "An agenda item with its matters and drafted options", TAG, reply=s.AgendaItemSchema, problems=(404,)),
    # The answer is the whole item with its options; an option has no URL of its own.
    Operation("POST", f"{ITEM}/options", "consultation", "add_option", WRITE,
              "Draft an option for an open item; the answer is the item", TAG, body=s.AgendaOptionCreateSchema,
              reply=s.AgendaItemSchema, status=201, problems=ACT, name="add_agenda_option"),
    Operation("POST", MEETINGS, "consultation", "schedule_meeting", WRITE,
              "Schedule a consultation meeting with its agenda and a roster by stakeholder role", TAG,
              body=s.MeetingCreateSchema, reply=s.MeetingResultSchema, status=201, location=MEETINGS + "/{id}",
              replayed_ok=True, problems=ACT, **COMMUNITY),
    Operation("GET", MEETING, "consultation", "get_meeting", READ,
              "A meeting with its agenda, roster and attendance by role", TAG, reply=s.MeetingSchema,
              problems=(404,)),
    _meeting_action("move", "move_meeting", s.MeetingMoveSchema, "Move a scheduled meeting to another time or place"),
    _meeting_action("open", "open_meeting", s.MeetingAttendanceSchema,
                    "Open the meeting with the attendance taken (it may be taken again while open)"),
    # The answer is the item's tally after this vote; a vote has no URL of its own.
    Operation("POST", f"{MEETING}/votes", "consultation", "cast_vote", WRITE,
              "An attending participant scores an item or votes on an option; the answer is the item's tally", TAG,
              body=s.MeetingVoteSchema, reply=s.MeetingTallySchema, status=201, problems=ACT),
    Operation("GET", f"{MEETING}/tally", "consultation", "tally", READ,
              "An item's tally: quorum, priority score, votes per option and the option adopted, if any", TAG,
              query=s.TallyQuerySchema, reply=s.MeetingTallySchema, problems=(404, 422), name="meeting_tally"),
    _meeting_action("close", "close_meeting", s.MeetingCloseSchema, "Close the meeting with its minutes"),
    _meeting_action("cancel", "cancel_meeting", s.MeetingCancelSchema, "Call the meeting off"),

    # -- decisions, tasks and publication (三上三下) ------------------------------------------------
    Operation("POST", DECISIONS, "consultation", "decide", WRITE,
              "Record the decision (三上) on an item's adopted option: who carries it out, budget, deadline", TAG,
              body=s.DecisionCreateSchema, reply=s.DecisionSchema, status=201, location=DECISIONS + "/{id}",
              problems=ACT),
    Operation("GET", DECISION, "consultation", "get_decision", READ, "A decision with its implementation tasks",
              TAG, reply=s.DecisionSchema, problems=(404,)),
    # The answer is the decision with all its tasks; progress is reported under /tasks/{id}.
    Operation("POST", f"{DECISION}/tasks", "consultation", "add_task", WRITE,
              "Add an implementation task; the answer is the decision", TAG, body=s.DecisionTaskCreateSchema,
              reply=s.DecisionResultSchema, status=201, replayed_ok=True, problems=ACT, name="add_decision_task"),
    Operation("POST", f"{DECISION}/publish", "consultation", "publish_result", WRITE,
              "Publish the result (公示, 三下) once every task is done; raisers are then asked to rate it", TAG,
              body=s.ResultPublishSchema, reply=s.DecisionSchema, problems=ACT),
    Operation("POST", "/api/v1/tasks/<int:task_id>/progress", "consultation", "task_progress", WRITE,
              "Report a task's progress (it never goes back); the answer is the decision", TAG,
              body=s.TaskProgressSchema, reply=s.DecisionResultSchema, problems=(404, 422)),

    # -- figures and the public view ----------------------------------------------------------------
    Operation("GET", "/api/v1/consultation/figures", "consultation", "figures", "consultation:figures",
              "Settlement, on-time and satisfaction rates per community and category (no one named)", TAG,
              query=s.FiguresQuerySchema, reply=s.ConsultationFiguresSchema, scope="query:under",
              name="consultation_figures", problems=UNDER),
    # 公示 is for every resident: no token is asked for, and the service shows nothing personal.
    Operation("GET", "/api/v1/public/results", "consultation", "public_results", None,
              "Published results (公示) of a street or community: vote, attendance by role, progress and "
              "satisfaction, nothing personal. Public: no token.", TAG,
              query=s.PublicQuerySchema, reply=s.PublicResultPageSchema, caller=False, problems=UNDER),

    # -- cases escalated from the streets below (at a district) ------------------------------------
    Operation("GET", "/api/v1/cases", "consultation", "list_cases", READ,
              "Cases escalated from the streets under a code (default: the token's scope), newest first; 403 when "
              "`under` lies outside the token's scope", TAG, query=s.CaseListQuerySchema, reply=s.CaseListSchema,
              scope="query:under"),
    # The service checks the case's street against the token's scope (404 outside it).
    Operation("POST", "/api/v1/cases/<string:case_id>/answer", "consultation", "answer_case", WRITE,
              "Answer a case (answered, or referred with where to); the answer goes down, signed, to the street that "
              "escalated it. 404 for a case outside the token's scope, 409 when answered already", TAG,
              path_schema=s.CaseIdSchema, body=s.CaseAnswerSchema, reply=s.CaseSchema, problems=ACT),
]
