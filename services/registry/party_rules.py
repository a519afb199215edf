"""Rules about party members under dual management (双重管理): pure, no I/O.

A member's membership is held by a party organisation, often their employer's
(`membership_org`); they also report (报到) to the community they live in, which
places them in its own structure (committee → branch → building group) and
gives them service posts (岗位). The report status is a small state machine:

    unreported --report--> reported --withdraw--> withdrawn --report--> reported
    unreported --withdraw--> withdrawn
    unreported | reported --relocate--> unreported     (system: moved to another community)

Withdrawal means the member no longer serves here: moved out of the community,
transferred, left the street or died. A relocation within the street resets the
report, because the report was made to the old community; the new one has to
receive it again. Every check returns field-level messages.
"""
from services.registry import identity

CATEGORIES = {"on_the_job": "在职", "retired": "退休", "mobile": "流动", "student": "学生"}
POSTS = {"building_liaison": "楼组联络", "security_patrol": "治安巡逻", "environment": "环境整治",
         "policy_outreach": "政策宣传", "care_visits": "关爱帮困", "civility": "文明劝导",
         "consultation": "议事协商", "volunteer": "志愿服务"}
STATUSES = {"unreported": "未报到", "reported": "已报到", "withdrawn": "已退出"}
ORG_KINDS = {"committee": "社区党委", "branch": "党支部", "group": "楼组党小组"}
# The kind each kind's parent must have (the migration enforces the same with a foreign key).
PARENT_KIND = {"committee": None, "branch": "committee", "group": "branch"}
# Where a member may sit: a committee is the whole community's, members belong to its branches and groups.
PLACEABLE = ("branch", "group")

TRANSITIONS = {("unreported", "report"): "reported", ("withdrawn", "report"): "reported",
               ("unreported", "withdraw"): "withdrawn", ("reported", "withdraw"): "withdrawn",
               ("unreported", "relocate"): "unreported", ("reported", "relocate"): "unreported"}
POSTS_MAX = 5
MEMBERSHIP_ORG_MAX = 100
# The Party Constitution admits people who have reached eighteen (年满十八岁).
JOINING_AGE = 18


def next_status(status, action):
    """The status after `action` (report, withdraw, relocate), or None when the move is not allowed."""
    return TRANSITIONS.get((status, action))


def _status_error(member, action):
    allowed = sorted({s for (s, a) in TRANSITIONS if a == action})
    since = {"reported": member.get("reported_on"), "withdrawn": member.get("withdrawn_on")}.get(member["report_status"])
    when = f" since {since}" if since else ""
    return {"status": [f"party member {member['resident_id']} is {member['report_status']}{when}; "
                       f"{action} applies to a member who is {' or '.join(allowed)}"]}


def _not_future(day, today, field, errors):
    if day > today:
        errors[field] = ["must not be in the future"]
        return False
    return True


def check_registration(d, birth_date, today):
    """Errors for a new member: `d` holds category, membership_org, joined_party."""
    errors = {}
    joined = d["joined_party"]
    if _not_future(joined, today, "joined_party", errors) and identity.age_on(birth_date, max(joined, birth_date)) < JOINING_AGE:
        errors["joined_party"] = [f"must be on or after the member's {JOINING_AGE}th birthday (born {birth_date})"]
    return errors


def clean_posts(posts):
    """(posts without repeats, in the order given; errors)."""
    unique = list(dict.fromkeys(posts or ()))
    unknown = [p for p in unique if p not in POSTS]
    if unknown:
        return unique, {"posts": [f"unknown post(s) {', '.join(unknown)}; known: {', '.join(POSTS)}"]}
    if not 1 <= len(unique) <= POSTS_MAX:
        return unique, {"posts": [f"choose 1 to {POSTS_MAX} different posts"]}
    return unique, {}


def check_report(member, reported_on, posts, today):
    """(clean posts, errors) for a report or re-report to the community.

    `member` holds report_status, joined_party, withdrawn_on and resident_status.
    """
    if next_status(member["report_status"], "report") is None:
        return posts, _status_error(member, "report")
    if member["resident_status"] != "active":
        return posts, {"status": [f"resident {member['resident_id']} is {member['resident_status']}; "
                                  "only a resident of this street can report"]}
    clean, errors = clean_posts(posts)
    if _not_future(reported_on, today, "reported_on", errors):
        if reported_on < member["joined_party"]:
            errors["reported_on"] = [f"must not be before joining the party ({member['joined_party']})"]
        elif member.get("withdrawn_on") and reported_on < member["withdrawn_on"]:
            errors["reported_on"] = [f"must not be before the last withdrawal ({member['withdrawn_on']})"]
    return clean, errors


def check_withdrawal(member, effective, today):
    if next_status(member["report_status"], "withdraw") is None:
        return _status_error(member, "withdraw")
    errors = {}
    if _not_future(effective, today, "effective", errors):
        start = member.get("reported_on") or member["joined_party"]
        if effective < start:
            errors["effective"] = [f"must not be before {start}"]
    return errors


def check_placement(member, org):
    """Errors for placing `member` in `org` (a party_orgs row, or None when it does not exist)."""
    if member["report_status"] == "withdrawn":
        return {"status": [f"party member {member['resident_id']} is withdrawn since {member['withdrawn_on']}; "
                           "report again before placing"]}
    return check_org_for(member["community_code"], org, member.get("party_org_id"))


def check_org_for(community_code, org, current_org_id=None):
    """Errors unless `org` is a branch or group of `community_code` other than the current one."""
    if org is None:
        return {"party_org_id": ["no such party organisation"]}
    if org["community_code"] != community_code:
        return {"party_org_id": [f"{org['name']} belongs to community {org['community_code']}, "
                                 f"not to the member's community {community_code}"]}
    if org["kind"] not in PLACEABLE:
        return {"party_org_id": [f"{org['name']} is a {org['kind']}; place members in a branch or a group"]}
    if org["id"] == current_org_id:
        return {"party_org_id": [f"already placed in {org['name']}"]}
    return {}


def check_org(kind, community_code, parent, building_given, building):
    """Errors for a new party organisation of `kind` in `community_code`.

    `parent` is the parent row (for a branch, the community's committee when none was named)
    or None; `building` the row of the named building, None when it is not in the community.
    """
    errors = {}
    want = PARENT_KIND[kind]
    if want is None and parent is not None:
        errors["parent_id"] = ["a committee has no parent"]
    elif want is not None:
        if parent is None:
            errors["parent_id"] = [f"a {kind} needs its {want}" + (
                f": community {community_code} has no party committee yet" if want == "committee" else "")]
        elif parent["community_code"] != community_code:
            errors["parent_id"] = [f"{parent['name']} belongs to community {parent['community_code']}"]
        elif parent["kind"] != want:
            errors["parent_id"] = [f"the parent of a {kind} is a {want}; {parent['name']} is a {parent['kind']}"]
    if building_given:
        if kind != "group":
            errors["building"] = ["only a building party group is tied to a building"]
        elif building is None:
            errors["building"] = [f"no building of that name in community {community_code}"]
    return errors


def relocation(member, resident_community_code, resident_status):
    """The member's new report status when the resident now lives in another community, else None."""
    if resident_status != "active" or member["community_code"] == resident_community_code:
        return None
    return next_status(member["report_status"], "relocate")


def counts_toward_rate(status):
    """Members expected to report here: everyone not withdrawn."""
    return status != "withdrawn"


def report_rate(reported, members):
    """报到率 = reported / members not withdrawn, to 4 places; None when there is nobody to report.

    The one definition: the report-rate query returns counts and calls this.
    """
    if members == 0:
        return None
    if not 0 <= reported <= members:
        raise ValueError(f"{reported} reported out of {members} members is not a rate")
    return round(reported / members, 4)


def fact_dims(member, birth_date):
    """The de-identified view of a member that may leave the street (DESIGN §5): no name, ID or phone.
    The birth cohort, not an age band, as for residents (residency.fact_dims)."""
    return {"category": member["category"], "report_status": member["report_status"],
            "cohort": birth_date.year,
            "org_kind": member.get("org_kind"), "posts": sorted(member.get("posts") or [])}
