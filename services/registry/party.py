"""Use cases on party members under dual management and the community party structure.

Each runs in the caller's transaction (`tx`): the change, its history row, the
domain event and the de-identified fact commit together or not at all. `caller`
is {"actor", "scope"}; the scope is checked against the community the member
reports to (or the resident's grid), as residents.py does for residents.

Member facts count members who are not withdrawn, by community and dimensions
(party_rules.fact_dims), naming nobody; a roll-up is
the sum of deltas: registration +1, withdrawal -1, re-report +1, and a change of
dimensions (report, placement in a branch or group, relocation) -1 with the old
values and +1 with the new. A change that leaves the dimensions as they were
(placement in another branch) has an event but no fact, as resident updates do.

As with residents, every member fact is dated the day the register changed, not
the report or withdrawal day entered (those stay in the history): a back-dated
withdrawal's -1 must not land before the registration's +1. The age goes as the
birth cohort (party_rules.fact_dims).
"""
from datetime import date

from services.registry import civic_rules, identity, party_rules, store
from services.registry.nodes import queried
from services.registry.residency import is_in_scope
from services.registry.schemas import (PartyMemberChangeSchema, PartyMemberCreateSchema, PartyMemberListQuerySchema,
                                       PartyMemberSchema, PartyOrgCreateSchema, PartyOrgSchema,
                                       PartyOrgTreeQuerySchema, PartyPlaceSchema, PartyReportSchema,
                                       PartyWithdrawSchema, ReportRateQuerySchema)
from shared import facts
from shared.db import unique_races
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed, load
from shared.scope import visible
from shared import clock

_member = PartyMemberSchema()
_org = PartyOrgSchema()
_history = PartyMemberChangeSchema(many=True)

# Reasons recorded when the registry itself withdraws a member because the resident's record ended.
ENDED = {"left": "moved out of the street", "deceased": "died"}

RACES = {"party_members_pkey": ("resident_id", "this resident was registered as a party member meanwhile"),
         "party_orgs_one_committee": ("kind", "the community got a party committee meanwhile"),
         "party_orgs_community_code_name_key": ("name", "the community already has a party organisation of that name")}


def _forbid(what, caller, field):
    raise Forbidden(f"{what} lies outside this token's scope {caller['scope']}",
                    {field: [f"outside scope {caller['scope']}"]})


def _community(tx, code, caller, field="community_code"):
    node = store.get(tx, code)
    if node is None or node.level != "community":
        raise ValidationFailed("unknown community", {field: [f"{code} is not a community of this street"]})
    if not is_in_scope(code, caller["scope"]):
        _forbid(code, caller, field)
    if node.valid_to is not None:
        raise ValidationFailed("the community is retired", {field: [f"{code} ({node.name}) was retired on {node.valid_to}"]})
    return node


def _member_in_scope(tx, resident_id, caller, for_update=False):
    return visible(store.party_member(tx, resident_id, for_update=for_update), caller,
                   NotFound(f"resident {resident_id} is not a registered party member",
                            {"resident_id": [f"no party member {resident_id}"]}),
                   ("community_code", "grid_code"))


def _view(row, today=None):
    org = None
    if row["party_org_id"] is not None:
        org = {"id": row["party_org_id"], "kind": row["org_kind"], "name": row["party_org_name"]}
    return _member.dump({**row, "age": identity.age_on(row["birth_date"], today or clock.today()), "party_org": org})


def _event(row, **extra):
    keys = ("resident_id", "community_code", "category", "membership_org", "joined_party", "report_status",
            "reported_on", "posts", "withdrawn_on", "party_org_id", "org_kind", "pseudonym", "version")
    return {**{k: (row[k].isoformat() if isinstance(row[k], date) else row[k]) for k in keys}, **extra}


def _fact(fact_type, row, day, delta, node=None):
    return facts.fact(fact_type, node or row["community_code"], day, delta=delta,
                      **party_rules.fact_dims(row, row["birth_date"]))


def _change(tx, fact_type, before, after, day):
    """-1 with the old dimensions and +1 with the new, when anything counted changed."""
    old, new = _fact(fact_type, before, day, -1), _fact(fact_type, after, day, +1)
    if (old["node"], old["dims"]) != (new["node"], new["dims"]):
        tx.publish_facts(fact_type, [old, new])


def _fail(message, errors):
    if errors:
        raise ValidationFailed(message, errors)


# -- the party structure ------------------------------------------------------------------------

def create_org(tx, data, caller):
    d = load(PartyOrgCreateSchema, data)
    code, kind = d["community_code"], d["kind"]
    _community(tx, code, caller)
    committee = store.party_committee(tx, code)
    if kind == "committee" and committee is not None:
        raise Conflict("the community already has a party committee",
                       {"kind": [f"community {code} has committee {committee['id']} ({committee['name']})"]})
    parent = None
    if d.get("parent_id") is not None:
        parent = store.party_org(tx, d["parent_id"])
        if parent is None:
            raise ValidationFailed("unknown parent", {"parent_id": [f"no party organisation {d['parent_id']}"]})
    elif kind == "branch":
        parent = committee
    building = store.party_building(tx, code, d["building"]) if d.get("building") else None
    _fail("the party organisation cannot be created",
          party_rules.check_org(kind, code, parent, bool(d.get("building")), building))
    with unique_races(RACES):
        org_id = store.add_party_org(tx, {"community_code": code, "kind": kind, "name": d["name"],
                                          "parent_id": parent["id"] if parent else None,
                                          "building_id": building["id"] if building else None})
    row = store.party_org(tx, org_id)
    view = _org.dump({**row, "members": 0, "children": []})
    tx.emit("party_org_created", {k: v for k, v in view.items() if k != "children"})
    tx.publish_facts("party_org_created", [facts.fact("party_org_created", code, clock.today(), kind=kind)])
    return view


def org_tree(tx, query, caller):
    q = load(PartyOrgTreeQuerySchema, query)
    code = q["community_code"]
    queried(tx, q, "community_code")
    node = store.get(tx, code)
    if node is None or node.level != "community":
        raise ValidationFailed("unknown community", {"community_code": [f"{code} is not a community of this street"]})
    if not is_in_scope(code, caller["scope"]):
        _forbid(code, caller, "community_code")
    nodes = {r["id"]: {**r, "children": []} for r in store.party_org_rows(tx, code)}
    roots = []
    for org in nodes.values():
        (nodes[org["parent_id"]]["children"] if org["parent_id"] else roots).append(org)
    return {"community_code": code, "name": node.name, "committee": _org.dump(roots[0]) if roots else None}


# -- party members -----------------------------------------------------------------------------

def register(tx, data, caller, today=None, import_id=None):
    """A resident becomes a registered party member; `import_id` names the bulk import that did it, if any."""
    today = today or clock.today()
    d = load(PartyMemberCreateSchema, data)
    rid = d["resident_id"]
    # for_update serialises with a departure of the same resident.
    resident = visible(store.resident(tx, rid, for_update=True), caller,
                       ValidationFailed("unknown resident", {"resident_id": [f"no resident {rid}"]}),
                       ("community_code", "grid_code"))
    if resident["status"] != "active":
        raise ValidationFailed("only an active resident can become a party member", {"resident_id": [
            f"resident {rid} is {resident['status']} since {resident['status_on']}"]})
    existing = store.party_member(tx, rid)
    if existing is not None:
        raise Conflict("this resident is already a registered party member", {"resident_id": [
            f"registered in community {existing['community_code']}, {existing['report_status']}"
            + ("; report again instead" if existing["report_status"] == "withdrawn" else "")]})
    errors = party_rules.check_registration(d, resident["birth_date"], today)
    org = None
    if d.get("party_org_id") is not None:
        org = store.party_org(tx, d["party_org_id"])
        errors.update(party_rules.check_org_for(resident["community_code"], org))
    _fail("the party member has invalid fields", errors)
    with unique_races(RACES):
        store.add_party_member(tx, {"resident_id": rid, "community_code": resident["community_code"],
                                    "category": d["category"], "membership_org": d["membership_org"],
                                    "joined_party": d["joined_party"], "party_org_id": org["id"] if org else None,
                                    "org_kind": org["kind"] if org else None})
    detail = {"community_code": resident["community_code"], "category": d["category"],
              "membership_org": d["membership_org"], "party_org_id": org["id"] if org else None}
    if import_id is not None:
        detail["import_id"] = import_id  # as a resident import records it, so an import can be traced
    store.add_party_history(tx, rid, 1, "registered", today, detail, caller["actor"])
    row = store.party_member(tx, rid)
    tx.emit("party_member_registered", _event(row))
    tx.publish_facts("party_member_registered", [_fact("party_member_registered", row, today, +1)])
    return _view(row, today)


def get(tx, resident_id, caller):
    row = _member_in_scope(tx, resident_id, caller)
    store.audit(tx, caller["actor"], "read", "party_member", [(row["resident_id"], row["community_code"])],
                tx.correlation_id)
    return {**_view(row), "history": _history.dump(store.party_history(tx, resident_id))}


def search(tx, query, caller):
    q = load(PartyMemberListQuerySchema, query)
    under = q.get("under") or caller["scope"]
    if not under.startswith(caller["scope"]):
        _forbid(under, caller, "under")
    queried(tx, q, "under")
    rows = store.list_party_members(tx, under=under, category=q.get("category"), report_status=q.get("report_status"),
                                    party_org_id=q.get("party_org_id"), after=q.get("after", 0), limit=q["limit"])
    store.audit(tx, caller["actor"], "list", "party_member", [(r["resident_id"], r["community_code"]) for r in rows],
                tx.correlation_id)
    items = [_view(r) for r in rows]
    return {"items": items, "next": items[-1]["resident_id"] if len(items) == q["limit"] else None}


def report(tx, resident_id, data, caller, today=None):
    """A report (报到) to the community the resident lives in; after a withdrawal, a re-report."""
    today = today or clock.today()
    d = load(PartyReportSchema, data)
    before = _member_in_scope(tx, resident_id, caller, for_update=True)
    posts, errors = party_rules.check_report(before, d["reported_on"], d["posts"], today)
    _fail("the party member cannot report", errors)
    # A withdrawn member reports wherever the resident lives now; otherwise where they are registered.
    again = before["report_status"] == "withdrawn"
    community = before["resident_community_code"] if again else before["community_code"]
    if not is_in_scope(community, caller["scope"]):
        _forbid(community, caller, "resident_id")
    version = store.report_party_member(tx, {"resident_id": resident_id, "reported_on": d["reported_on"],
                                             "posts": posts, "community_code": community})
    store.add_party_history(tx, resident_id, version, "reported", d["reported_on"],
                            {"posts": posts, "again": again, "community_code": community}, caller["actor"])
    after = store.party_member(tx, resident_id)
    tx.emit("party_member_reported", _event(after, again=again))
    if again:
        tx.publish_facts("party_member_reported", [_fact("party_member_reported", after, today, +1)])
    else:
        _change(tx, "party_member_reported", before, after, today)
    return _view(after, today)


def place(tx, resident_id, data, caller, today=None):
    """Place the member in a branch or building group of their community."""
    today = today or clock.today()
    d = load(PartyPlaceSchema, data)
    before = _member_in_scope(tx, resident_id, caller, for_update=True)
    org = store.party_org(tx, d["party_org_id"])
    _fail("the party member cannot be placed there", party_rules.check_placement(before, org))
    version = store.place_party_member(tx, resident_id, org["id"], org["kind"])
    store.add_party_history(tx, resident_id, version, "placed", today,
                            {"from": before["party_org_id"], "to": org["id"]}, caller["actor"])
    after = store.party_member(tx, resident_id)
    tx.emit("party_member_placed", _event(after, from_party_org_id=before["party_org_id"]))
    _change(tx, "party_member_placed", before, after, today)
    return _view(after, today)


def _withdraw(tx, before, effective, reason, actor, today):
    rid = before["resident_id"]
    version = store.withdraw_party_member(tx, rid, effective)
    store.add_party_history(tx, rid, version, "withdrawn", effective,
                            {"reason": reason, "from_status": before["report_status"],
                             "party_org_id": before["party_org_id"]}, actor)
    after = store.party_member(tx, rid)
    tx.emit("party_member_withdrawn", _event(after, reason=reason, from_status=before["report_status"]))
    tx.publish_facts("party_member_withdrawn", [_fact("party_member_withdrawn", before, today, -1)])
    return after


def withdraw(tx, resident_id, data, caller, today=None):
    """The member no longer serves in this community: moved out of it, transferred, …"""
    today = today or clock.today()
    d = load(PartyWithdrawSchema, data)
    before = _member_in_scope(tx, resident_id, caller, for_update=True)
    _fail("the party member cannot withdraw", party_rules.check_withdrawal(before, d["effective"], today))
    return _view(_withdraw(tx, before, d["effective"], d["reason"], caller["actor"], today), today)


def residence_ended(tx, resident, on, caller, today=None):
    """Withdraw the membership of a resident who left the street or died, in that same transaction.

    Called by residents._end with the resident's row after the change; `on` is the effective day,
    `today` the day it is recorded (the day of the fact).
    """
    before = store.party_member(tx, resident["id"], for_update=True)
    if before is None or before["report_status"] == "withdrawn":
        return None
    # A withdrawal dated before the membership or its report would put the -1 before the +1.
    since = max(d for d in (before["joined_party"], before["reported_on"]) if d is not None)
    errors = civic_rules.check_residence_end(resident["status"], on, since,
                                             f"party member {resident['id']}'s membership or report ({since})")
    if errors:
        raise ValidationFailed(f"the resident cannot be marked {resident['status']}", errors)
    return _withdraw(tx, before, on, ENDED[resident["status"]], caller["actor"], today or clock.today())


def residence_moved(tx, resident_id, actor):
    """After a resident moved within the street: a member now reports to the new community.

    Reads the present state rather than the event's, so a late or repeated call does nothing wrong.
    """
    before = store.party_member(tx, resident_id, for_update=True)
    if before is None:
        return None
    status = party_rules.relocation(before, before["resident_community_code"], before["resident_status"])
    if status is None:
        return None
    to = before["resident_community_code"]
    version = store.relocate_party_member(tx, resident_id, to)
    day = before["moved_in"] or clock.today()
    store.add_party_history(tx, resident_id, version, "relocated", day,
                            {"from": before["community_code"], "to": to, "from_status": before["report_status"],
                             "party_org_id": before["party_org_id"]}, actor)
    after = store.party_member(tx, resident_id)
    tx.emit("party_member_relocated", _event(after, from_community_code=before["community_code"],
                                             from_status=before["report_status"]))
    # The history keeps the day of the move; the facts the day the register changed.
    _change(tx, "party_member_relocated", before, after, clock.today())
    return after


def report_rate(tx, query, caller):
    """报到率 per community under a street or community code, and their total, from one query."""
    q = load(ReportRateQuerySchema, query)
    under = q.get("under") or caller["scope"]
    if not under.startswith(caller["scope"]):
        _forbid(under, caller, "under")
    queried(tx, q, "under")
    rows = store.party_report_rate(tx, under, [s for s in party_rules.STATUSES if party_rules.counts_toward_rate(s)])
    *communities, total = rows
    as_rate = party_rules.report_rate
    return {"under": under,
            "communities": [{**r, "rate": as_rate(r["reported"], r["members"])} for r in communities],
            "total": {"members": total["members"], "reported": total["reported"],
                      "rate": as_rate(total["reported"], total["members"])}}
