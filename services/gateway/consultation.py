"""Gateway routes for consultation (三上三下): matters, agenda items, meetings, decisions, figures, the public view and
the cases escalated from the streets below (at a district).

The gateway checks the role and any node code the request names; the
consultation service checks each matter's, meeting's and decision's community
against the token's scope, since only it knows them. Raising a matter with a
`request_id` seen before answers 200 with the first one (marked `replayed`)
instead of 201. The published results (公示) are public: that route asks for no
token at all.
"""
import re

from services.gateway.http import api, as_json, json_body
from shared.errors import ValidationFailed

MATTERS = "/api/v1/matters"
ITEMS = "/api/v1/agenda-items"
MEETINGS = "/api/v1/meetings"
DECISIONS = "/api/v1/decisions"
CASES = "/api/v1/cases"
MAX_ID = 2 ** 63 - 1  # ids are bigints: anything larger would fail in the database, not answer 422
# Only ASCII digits: int() would also take signs, spaces, underscores and other scripts' digits.
DIGITS = re.compile(r"[0-9]{1,19}")
# A case is "<street>:<matter id>": the 9-digit code of the street that escalated it and its matter's id there.
CASE_ID = re.compile(r"[0-9]{9}:[0-9]{1,19}")


def _code(body, key="community_code"):
    # A code that is not a string cannot be scope-checked here; the service's schema refuses it with a 422.
    value = body.get(key)
    return value if isinstance(value, str) else None


def _created(result, location=None):
    """201 (with a Location when the thing made has its own URL), or 200 when a retry got the first result."""
    return as_json(result, 200 if result.get("replayed") else 201,
                   headers={"Location": location} if location else None)


def _positive_id(args, name):
    """A required id from the query string, or 422 naming it."""
    raw = args.get(name)
    if raw is None or raw == "":
        raise ValidationFailed(f"{name} is required", {name: ["required: the agenda item to tally"]})
    if not DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_ID:
        raise ValidationFailed(f"{name} must be a positive integer", {name: ["must be an id from 1 to 2^63-1"]})
    return int(raw)


def _case_id(raw):
    """The case id from the path, or 422: a malformed one would only be looked up in vain."""
    if not CASE_ID.fullmatch(raw):
        raise ValidationFailed("the case id is malformed",
                               {"case_id": ["must be a 9-digit street code, a colon and the matter id: 310110012:42"]})
    return raw


class ConsultationRoutes:

    def _consultation(self, method, *args, **kwargs):
        return self._call(method, *args, service="consultation", **kwargs)

    # -- matters (一上一下) -----------------------------------------------------------------------

    @api("POST", MATTERS)
    def raise_matter(self, request):
        body = json_body(request)
        principal = self._principal(request, "consultation:write", _code(body), field="community_code")
        matter = self._consultation("raise_matter", body, self._caller(principal))
        return _created(matter, f"{MATTERS}/{matter['id']}")

    @api("GET", MATTERS)
    def search_matters(self, request):
        query = request.args.to_dict()
        principal = self._principal(request, "consultation:read", query.get("under"), field="under")
        return as_json(self._consultation("search_matters", query, self._caller(principal)))

    # `similar` is no int, so it never meets `matters/<int:matter_id>`.
    @api("GET", f"{MATTERS}/similar")
    def similar_matters(self, request):
        query = request.args.to_dict()
        principal = self._principal(request, "consultation:read", query.get("community_code"),
                                    field="community_code")
        return as_json(self._consultation("similar_matters", query, self._caller(principal)))

    @api("GET", f"{MATTERS}/<int:matter_id>")
    def get_matter(self, request, matter_id):
        principal = self._principal(request, "consultation:read")
        return as_json(self._consultation("get_matter", matter_id, self._caller(principal)))

    @api("POST", f"{MATTERS}/<int:matter_id>/back")
    def back_matter(self, request, matter_id):
        body = json_body(request)
        principal = self._principal(request, "consultation:write")
        return as_json(self._consultation("back_matter", matter_id, body, self._caller(principal)))

    @api("POST", f"{MATTERS}/<int:matter_id>/screen")
    def screen_matter(self, request, matter_id):
        body = json_body(request)
        principal = self._principal(request, "consultation:write")
        return as_json(self._consultation("screen_matter", matter_id, body, self._caller(principal)))

    @api("POST", f"{MATTERS}/<int:matter_id>/rate")
    def rate_matter(self, request, matter_id):
        body = json_body(request)
        principal = self._principal(request, "consultation:write")
        return as_json(self._consultation("rate_matter", matter_id, body, self._caller(principal)))

    @api("POST", f"{MATTERS}/<int:matter_id>/settle")
    def settle_matter(self, request, matter_id):
        body = json_body(request)
        principal = self._principal(request, "consultation:write")
        return as_json(self._consultation("settle_matter", matter_id, body, self._caller(principal)))

    @api("PUT", "/api/v1/consultation/deadlines")
    def set_consultation_deadline(self, request):
        body = json_body(request)
        principal = self._principal(request, "consultation:admin")
        return as_json(self._consultation("set_deadline", body, self._caller(principal)))

    # -- agenda items and meetings (二上二下) ------------------------------------------------------

    @api("POST", ITEMS)
    def create_agenda_item(self, request):
        body = json_body(request)
        principal = self._principal(request, "consultation:write", _code(body), field="community_code")
        item = self._consultation("create_agenda_item", body, self._caller(principal))
        return _created(item, f"{ITEMS}/{item['id']}")

    @api("GET", f"{ITEMS}/<int:item_id>")
    def get_agenda_item(self, request, item_id):
        principal = self._principal(request, "consultation:read")
        return as_json(self._consultation("get_agenda_item", item_id, self._caller(principal)))

    @api("POST", f"{ITEMS}/<int:item_id>/options")
    def add_agenda_option(self, request, item_id):
        body = json_body(request)
        principal = self._principal(request, "consultation:write")
        # The answer is the whole item with its options; an option has no URL of its own.
        return _created(self._consultation("add_option", item_id, body, self._caller(principal)))

    @api("POST", MEETINGS)
    def schedule_meeting(self, request):
        body = json_body(request)
        principal = self._principal(request, "consultation:write", _code(body), field="community_code")
        meeting = self._consultation("schedule_meeting", body, self._caller(principal))
        return _created(meeting, f"{MEETINGS}/{meeting['id']}")

    @api("GET", f"{MEETINGS}/<int:meeting_id>")
    def get_meeting(self, request, meeting_id):
        principal = self._principal(request, "consultation:read")
        return as_json(self._consultation("get_meeting", meeting_id, self._caller(principal)))

    @api("POST", f"{MEETINGS}/<int:meeting_id>/move")
    def move_meeting(self, request, meeting_id):
        body = json_body(request)
        principal = self._principal(request, "consultation:write")
        return as_json(self._consultation("move_meeting", meeting_id, body, self._caller(principal)))

    @api("POST", f"{MEETINGS}/<int:meeting_id>/open")
    def open_meeting(self, request, meeting_id):
        body = json_body(request)
        principal = self._principal(request, "consultation:write")
        return as_json(self._consultation("open_meeting", meeting_id, body, self._caller(principal)))

    @api("POST", f"{MEETINGS}/<int:meeting_id>/votes")
    def cast_vote(self, request, meeting_id):
        body = json_body(request)
        principal = self._principal(request, "consultation:write")
        # The answer is the item's tally after this vote; a vote has no URL of its own.
        return _created(self._consultation("cast_vote", meeting_id, body, self._caller(principal)))

    @api("GET", f"{MEETINGS}/<int:meeting_id>/tally")
    def meeting_tally(self, request, meeting_id):
        # The service takes the item as a bare argument, with no schema of its own to refuse a bad one.
        item_id = _positive_id(request.args, "agenda_item_id")
        principal = self._principal(request, "consultation:read")
        return as_json(self._consultation("tally", meeting_id, item_id, self._caller(principal)))

    @api("POST", f"{MEETINGS}/<int:meeting_id>/close")
    def close_meeting(self, request, meeting_id):
        body = json_body(request)
        principal = self._principal(request, "consultation:write")
        return as_json(self._consultation("close_meeting", meeting_id, body, self._caller(principal)))

    @api("POST", f"{MEETINGS}/<int:meeting_id>/cancel")
    def cancel_meeting(self, request, meeting_id):
        body = json_body(request)
        principal = self._principal(request, "consultation:write")
        return as_json(self._consultation("cancel_meeting", meeting_id, body, self._caller(principal)))

    # -- decisions, tasks and publication (三上三下) -----------------------------------------------

    @api("POST", DECISIONS)
    def decide(self, request):
        body = json_body(request)
        principal = self._principal(request, "consultation:write")
        decision = self._consultation("decide", body, self._caller(principal))
        return _created(decision, f"{DECISIONS}/{decision['id']}")

    @api("GET", f"{DECISIONS}/<int:decision_id>")
    def get_decision(self, request, decision_id):
        principal = self._principal(request, "consultation:read")
        return as_json(self._consultation("get_decision", decision_id, self._caller(principal)))

    @api("POST", f"{DECISIONS}/<int:decision_id>/tasks")
    def add_decision_task(self, request, decision_id):
        body = json_body(request)
        principal = self._principal(request, "consultation:write")
        # The answer is the decision with all its tasks; progress is reported under /tasks/{id}.
        return _created(self._consultation("add_task", decision_id, body, self._caller(principal)))

    @api("POST", f"{DECISIONS}/<int:decision_id>/publish")
    def publish_result(self, request, decision_id):
        body = json_body(request)
        principal = self._principal(request, "consultation:write")
        return as_json(self._consultation("publish_result", decision_id, body, self._caller(principal)))

    @api("POST", "/api/v1/tasks/<int:task_id>/progress")
    def task_progress(self, request, task_id):
        body = json_body(request)
        principal = self._principal(request, "consultation:write")
        return as_json(self._consultation("task_progress", task_id, body, self._caller(principal)))

    # -- figures and the public view ----------------------------------------------------------------

    @api("GET", "/api/v1/consultation/figures")
    def consultation_figures(self, request):
        query = request.args.to_dict()
        principal = self._principal(request, "consultation:figures", query.get("under"), field="under")
        return as_json(self._consultation("figures", query, self._caller(principal)))

    @api("GET", "/api/v1/public/results")
    def public_results(self, request):
        # 公示 is for every resident: no token is asked for, and the service shows nothing personal.
        return as_json(self._consultation("public_results", request.args.to_dict()))

    # -- cases escalated from the streets below (at a district) -------------------------------------------

    @api("GET", CASES)
    def list_cases(self, request):
        query = request.args.to_dict()
        principal = self._principal(request, "consultation:read", query.get("under"), field="under")
        return as_json(self._consultation("list_cases", query, self._caller(principal)))

    @api("POST", f"{CASES}/<string:case_id>/answer")
    def answer_case(self, request, case_id):
        body = json_body(request)
        principal = self._principal(request, "consultation:write")
        # The service checks the case's street against the token's scope (404 outside it).
        case_id = _case_id(case_id)
        return as_json(self._consultation("answer_case", case_id, body, self._caller(principal)))
