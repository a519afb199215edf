"""Rules about social organisations, volunteer teams and community workers: pure, no I/O.

Every check returns field-level messages ({field: [message]}) instead of
stopping at the first, so a request is refused once with everything wrong in it.
The use cases (organizations.py, workers.py) call these after marshmallow has
typed the input and before anything is written.
"""
from datetime import date
from decimal import Decimal

from services.registry import identity

# -- social organisations and volunteer teams ----------------------------------------

CATEGORIES = {"interest_culture": "兴趣文化类", "public_service": "公益服务类（承接政府职能）",
              "party_building": "党建类", "online_community": "网络社群", "volunteer_team": "志愿服务队"}
# The subcategory is a code, not prose, so facts can count by it and no name slips into them;
# these are the ones seen in practice, others may be added without a migration.
TEAM_TYPES = {"security_patrol": "治安巡逻队", "civility_patrol": "文明劝导队", "elderly_care": "为老服务队",
              "environment": "环境保护队", "emergency_rescue": "应急救援队", "mediation": "矛盾调解队"}
SUBCATEGORY_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
ACTIVITIES = {"elderly_care": "为老服务", "children_youth": "青少年服务", "culture_sports": "文体活动",
              "public_safety": "治安防范", "civility": "文明创建", "environment": "环境保护",
              "mediation": "矛盾调解", "health": "卫生健康", "disability": "助残服务", "assistance": "帮困救助",
              "education": "教育培训", "governance": "社区治理", "party_building": "党建引领"}
ORG_STATUSES = {"filed": "已备案", "active": "活动中", "suspended": "暂停活动", "dissolved": "已解散"}
# filed -> active -> suspended -> active ...; dissolution is possible from anywhere and final.
TRANSITIONS = {"filed": ("active", "dissolved"), "active": ("suspended", "dissolved"),
               "suspended": ("active", "dissolved"), "dissolved": ()}
INITIAL_STATUSES = ("filed", "active")  # an organisation entered after the fact may already be active
MEMBER_ROLES = {"member": "成员", "deputy": "副负责人", "leader": "负责人"}
JOINABLE_ROLES = ("member", "deputy")  # the leader is named on the organisation itself
# A suspended organisation keeps its people but takes no new members or contracts.
WORKING_STATUSES = ("filed", "active")
ORG_NAME_MAX, FILING_NO_MAX, PROJECT_TEXT_MAX = 100, 40, 100
MAX_BUDGET = Decimal("999999999999.99")  # numeric(14, 2)


def check_transition(org, target, effective, today, last_joined=None):
    """May `org` (a row with status, status_on, founded_on) move to `target` on `effective`?

    Dissolution ends every open membership on `effective`, so it may not precede
    `last_joined`, the latest joining day among them.
    """
    current = org["status"]
    if target == current:
        return {"status": [f"the organisation is already {current}"]}
    if target not in TRANSITIONS[current]:
        allowed = TRANSITIONS[current]
        return {"status": [f"cannot go from {current} to {target}; "
                           + (f"allowed: {', '.join(allowed)}" if allowed else f"{current} is final")]}
    return _on_or_after(effective, today, "effective",
                        (org["status_on"], f"the last status change ({org['status_on']})"),
                        (org["founded_on"], f"the founding date ({org['founded_on']})"),
                        (last_joined if target == "dissolved" else None,
                         f"the last member joined ({last_joined})"))


def check_founding(founded_on, today):
    return {"founded_on": ["must not be in the future"]} if founded_on > today else {}


def check_working(org, field="status"):
    """New members and projects only for an organisation that is filed or active."""
    if org["status"] not in WORKING_STATUSES:
        return {field: [f"organisation {org['id']} is {org['status']}; only filed or active organisations "
                        "take new members or projects"]}
    return {}


def check_join(org, joined_on, today):
    return check_working(org) or _on_or_after(joined_on, today, "joined_on",
                                              (org["founded_on"], f"the founding date ({org['founded_on']})"))


def check_leave(membership, left_on, today):
    if membership["role"] == "leader":
        return {"resident_id": ["the leader cannot leave; name another leader first (PATCH leader_resident_id)"]}
    return _on_or_after(left_on, today, "left_on", (membership["joined_on"], f"joining ({membership['joined_on']})"))


def check_budget(budget):
    if not budget.is_finite():
        return {"budget": ["must be a finite amount"]}
    if budget < 0:
        return {"budget": ["must not be negative"]}
    if budget > MAX_BUDGET:
        return {"budget": [f"must not exceed {MAX_BUDGET}"]}
    if budget.as_tuple().exponent < -2:
        return {"budget": ["must have at most 2 decimal places (yuan and fen)"]}
    return {}


def check_project(org, d):
    """A contracted project: a working organisation, a sane budget, a period inside its life."""
    errors = {**check_working(org), **check_budget(d["budget"])}
    if d["ends_on"] < d["starts_on"]:
        errors["ends_on"] = [f"must not be before starts_on ({d['starts_on']})"]
    if d["starts_on"] < org["founded_on"]:
        errors["starts_on"] = [f"must not be before the organisation was founded ({org['founded_on']})"]
    return errors


def budget_cents(budget):
    """Money travels up as integer fen, so roll-ups add exactly."""
    return int(budget * 100)


def org_dims(org):
    """The de-identified view of an organisation that may leave the street (DESIGN §5)."""
    return {"category": org["category"], "subcategory": org["subcategory"], "status": org["status"],
            "activities": sorted(org["activities"] or [])}


# -- community workers ----------------------------------------------------------------

WORKER_ROLES = {"secretary": "社区党组织书记", "director": "居委会主任", "member": "两委委员/社区工作者",
                "grid_worker": "网格员"}
# One holder each per community; one person may hold both (书记、主任"一肩挑") as two appointments.
SINGLE_SEATS = ("secretary", "director")
ORIGINS = {"kept_on": "留任", "recruited": "公开招聘", "seconded": "选派"}
OUTCOMES = {"kept": "留任", "improved": "限期改进", "let_go": "退出"}
LEAVE_REASONS = {"resigned": "辞职", "retired": "退休", "transferred": "调离", "dismissed": "解聘", "other": "其他"}
ASSESSMENT_REASON = "assessment"  # the leave reason recorded when an assessment lets a worker go
# The leave reasons recorded when the registry ends the appointment of a worker whose resident record
# ended (workers.residence_ended); like ASSESSMENT_REASON, not offered to a clerk.
RESIDENCE_ENDED_REASONS = {"deceased": "died"}
WORKER_STATUSES = ("active", "left")
MIN_WORKING_AGE = 18
SCORE_MAX = Decimal(100)


def check_worker(d, today):
    """Semantic checks on an appointment; returns (clean values, {field: [messages]}).

    `d` holds name, id_number, phone, role, community_code, grid_code, origin, started_on.
    """
    errors = {}
    out = dict(d)
    info = None
    try:
        info = identity.parse_id_number(d.get("id_number") or "", today)
        out["id_number"] = info.number
    except identity.IdNumberError as exc:
        errors["id_number"] = [str(exc)]
    out["phone"] = None
    if d.get("phone"):
        try:
            out["phone"] = identity.normalize_phone(d["phone"])
        except identity.PhoneError as exc:
            errors["phone"] = [str(exc)]
    grid = d.get("grid_code")
    if d["role"] == "grid_worker" and not grid:
        errors["grid_code"] = ["required for a grid worker"]
    elif grid and not grid.startswith(d["community_code"]):
        errors["grid_code"] = [f"{grid} is not a grid of community {d['community_code']}"]
    started = d["started_on"]
    if started > today:
        errors["started_on"] = ["must not be in the future"]
    elif info is not None and identity.age_on(info.birth_date, max(started, info.birth_date)) < MIN_WORKING_AGE:
        errors["started_on"] = [f"the worker must be at least {MIN_WORKING_AGE} on the first day "
                                f"(born {info.birth_date})"]
    return out, errors


def check_active(worker):
    if worker["status"] != "active":
        return {"status": [f"worker {worker['id']} left on {worker['left_on']}; only active workers change"]}
    return {}


def check_score(score):
    if not score.is_finite() or not 0 <= score <= SCORE_MAX:
        return {"score": [f"must be between 0 and {SCORE_MAX}"]}
    if score.as_tuple().exponent < -2:
        return {"score": ["must have at most 2 decimal places"]}
    return {}


def check_assessment(worker, year, score, assessed_on, today):
    """The annual assessment of an active worker for a year that has begun and that they worked in."""
    errors = check_active(worker)
    if errors:
        return errors
    errors.update(check_score(score))
    if year > today.year:
        errors["year"] = [f"must not be in the future (this is {today.year})"]
    elif year < worker["started_on"].year:
        errors["year"] = [f"the worker started on {worker['started_on']}; there is nothing to assess in {year}"]
    elif assessed_on > today:
        errors["assessed_on"] = ["must not be in the future"]
    elif assessed_on < max(date(year, 1, 1), worker["started_on"]):
        errors["assessed_on"] = [f"must not be before {max(date(year, 1, 1), worker['started_on'])}"]
    return errors


def check_worker_leave(worker, left_on, today):
    return check_active(worker) or _on_or_after(left_on, today, "left_on",
                                                (worker["started_on"], f"the first day ({worker['started_on']})"))


def score_band(score):
    """Scores travel up banded: the level above compares communities, not persons."""
    for floor, band in ((90, "90-100"), (80, "80-89"), (70, "70-79"), (60, "60-69")):
        if score >= floor:
            return band
    return "0-59"


def worker_dims(worker):
    return {"role": worker["role"], "origin": worker["origin"]}


# -- shared -----------------------------------------------------------------------------

# The field of the departure or death request (residents.leave, residents.die) that gave the day.
RESIDENCE_END_FIELDS = {"left": "effective", "deceased": "date_of_death"}


def check_residence_end(status, on, since, what):
    """A departure or death (resident `status` after it, on `on`) cannot precede a membership or
    appointment that began `since`; the error names the field of the departure or death."""
    if on < since:
        return {RESIDENCE_END_FIELDS[status]: [f"must not be before {what}"]}
    return {}


def _on_or_after(day, today, field, *floors):
    """`day` must not be in the future nor before any (floor, description) given."""
    if day > today:
        return {field: ["must not be in the future"]}
    for floor, what in floors:
        if floor is not None and day < floor:
            return {field: [f"must not be before {what}"]}
    return {}
