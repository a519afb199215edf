"""Use cases on social organisations and volunteer teams: register, read, list, correct, change
status, members joining and leaving, contracted projects.

Same shape as residents.py: each runs in the caller's transaction (`tx`), and the
change, its history row, the domain event and the de-identified facts commit
together or not at all. `caller` is {"actor", "scope"}; the organisation's host
community is checked against the scope here, because only the registry knows it.

Facts are counts the levels above add up (sum of deltas):
- organisations by community, category, subcategory, status and activities:
  `organization_registered` +1; a status change or a correction of those
  dimensions -1 with the old and +1 with the new;
- memberships: `organization_member_joined` +1 / `organization_member_left` -1,
  counting memberships, not people (a fact names nobody, not even by pseudonym). Every
  membership has its +1, the founding leader's included (registration sends it),
  and its -1 carries the same dimensions: a change of role (a new leader) or of
  the subcategory moves the open memberships -1 with the old and +1 with the
  new. So a dissolution, which ends every membership with one
  `organization_member_left` fact each, brings the organisation's members back
  to exactly 0 in every cell, and so does every member leaving the street or
  dying (`residence_ended`);
- contracted projects: +1 with the budget in fen.

Every fact is dated the day the register changed (the instance's today), not the
founding, joining, leaving or status day entered, which stay in the history: a
back-dated -1 must never land before its +1 (as for residents).

When the leader leaves the street or dies, the organisation is not dissolved
behind the clerk's back: it goes on without a leader (leader_resident_id null)
until a new one is named, and its history records that.
"""
from datetime import date
from decimal import Decimal

from services.registry import civic_rules as rules
from services.registry import nodes, residents, store
from services.registry.party import ENDED
from services.registry.residency import is_in_scope
from services.registry.schemas import (OrganizationChangeSchema, OrganizationCreateSchema, OrganizationListQuerySchema,
                                       OrganizationMemberSchema, OrganizationSchema, OrganizationStatusSchema,
                                       OrganizationUpdateSchema, MemberJoinSchema, MemberLeaveSchema,
                                       ProjectCreateSchema, ProjectSchema)
from shared import facts
from shared.db import unique_races
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed, load
from shared.scope import visible
from shared import clock

_org = OrganizationSchema()
_member = OrganizationMemberSchema()
_project = ProjectSchema()
_history = OrganizationChangeSchema(many=True)

RACES = {"organizations_one_name": ("name", "an organisation of that name was registered meanwhile"),
         "organizations_filing_no": ("filing_no", "that filing number is used by another organisation"),
         "organization_members_open": ("resident_id", "this resident joined meanwhile"),
         "organization_members_one_leader": ("leader_resident_id", "another leader was named meanwhile"),
         "organization_projects_once": ("name", "this project, starting that day, is already recorded")}


def _plain(value):
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _event(row):
    keys = ("id", "name", "category", "subcategory", "status", "status_on", "community_code", "leader_resident_id",
            "activities", "founded_on", "filing_no", "version")
    return {k: _plain(row[k]) for k in keys}


def _org_fact(fact_type, row, on, delta, **extra):
    return facts.fact(fact_type, row["community_code"], on, delta=delta, **rules.org_dims(row), **extra)


def _member_fact(fact_type, org, member, on, delta):
    return facts.fact(fact_type, org["community_code"], on, delta=delta, category=org["category"],
                      subcategory=org["subcategory"], role=member["role"])


def _fail_on(errors, message):
    if errors:
        raise ValidationFailed(message, errors)


def _in_scope(tx, organization_id, caller, for_update=False):
    return visible(store.organization(tx, organization_id, for_update=for_update), caller,
                   NotFound(f"organisation {organization_id} does not exist",
                            {"id": [f"no organisation {organization_id}"]}))


def _resident(tx, resident_id, caller, field, lock=False):
    """An active resident the caller may see: only they may lead or join an organisation.

    `lock` holds the resident row until commit, so a departure or death racing the change waits
    for it (and then ends the new membership) instead of leaving a departed member behind.
    """
    row = visible(store.resident(tx, resident_id, for_update=lock), caller,
                  ValidationFailed("unknown resident", {field: [f"no resident {resident_id}"]}),
                  ("community_code", "grid_code"))
    if row["status"] != "active":
        raise ValidationFailed("the resident is not on the active register",
                               {field: [f"resident {resident_id} is {row['status']} since {row['status_on']}"]})
    return row


def _unique_name(tx, community_code, name, organization_id=None):
    existing = store.organization_by_name(tx, community_code, name)
    if existing is not None and existing["id"] != organization_id:
        raise Conflict("an organisation of that name exists in this community", {"name": [
            f"already registered as organisation {existing['id']} ({existing['status']})"]})


def _member_view(organization_id, member, resident, left_on=None):
    return _member.dump({"organization_id": organization_id, "resident_id": resident["id"], "name": resident["name"],
                         "community_code": resident["community_code"], "role": member["role"],
                         "joined_on": member["joined_on"], "left_on": left_on})


def register(tx, data, caller, today=None):
    today = today or clock.today()
    d = load(OrganizationCreateSchema, data)
    _fail_on(rules.check_founding(d["founded_on"], today), "the organisation has invalid fields")
    residents.community(tx, d["community_code"], caller)
    leader = _resident(tx, d["leader_resident_id"], caller, "leader_resident_id", lock=True)
    _unique_name(tx, d["community_code"], d["name"])
    values = {**d, "subcategory": d.get("subcategory"), "filing_no": d.get("filing_no"),
              "activities": list(dict.fromkeys(d["activities"])), "status_on": d["founded_on"]}
    with unique_races(RACES):
        organization_id = store.add_organization(tx, values)
        # The founder leads from the founding day; later leaders join on the day they are named.
        store.add_organization_member(tx, organization_id, leader["id"], "leader", d["founded_on"])
    store.add_organization_history(tx, organization_id, 1, "registered", d["founded_on"],
                                   {"community_code": d["community_code"], "status": d["status"],
                                    "leader_resident_id": leader["id"]}, caller["actor"])
    row = store.organization(tx, organization_id)
    tx.emit("organization_registered", _event(row))
    tx.publish_facts("organization_registered", [_org_fact("organization_registered", row, today, +1)])
    tx.publish_facts("organization_member_joined", [_member_fact(
        "organization_member_joined", row, {"role": "leader", "pseudonym": leader["pseudonym"]}, today, +1)])
    return _org.dump(row)


def get(tx, organization_id, caller):
    """The organisation with its current members, projects and history; the member list is audited."""
    row = _in_scope(tx, organization_id, caller)
    members = store.organization_members(tx, organization_id)
    # None once the leader left the street or died and nobody was named since.
    leader = store.resident(tx, row["leader_resident_id"]) if row["leader_resident_id"] is not None else None
    # Members who live outside the caller's scope are listed without their names (a worker of
    # community A reads nobody of community B, even through an organisation hosted in A).
    def reached(code):
        return is_in_scope(code, caller["scope"])

    members = [m if reached(m["community_code"]) else {**m, "name": None} for m in members]
    read = {m["resident_id"]: m["community_code"] for m in members if m["name"] is not None}
    if leader is not None and reached(leader["community_code"]):
        read[leader["id"]] = leader["community_code"]
    store.audit(tx, caller["actor"], "organization_members", "resident", sorted(read.items()), tx.correlation_id)
    return {**_org.dump(row), "leader_name": leader["name"] if leader and reached(leader["community_code"]) else None,
            "members": [_member.dump(m) for m in members],
            "projects": [_project.dump(p) for p in store.organization_projects(tx, organization_id)],
            "history": _history.dump(store.organization_history(tx, organization_id))}


def search(tx, query, caller):
    """Organisations in scope; the list names no person (only the leader's resident id), so it is not audited."""
    q = load(OrganizationListQuerySchema, query)
    if q.get("community_code") and not q["community_code"].startswith(caller["scope"]):
        raise Forbidden(f"{q['community_code']} lies outside this token's scope {caller['scope']}",
                        {"community_code": [f"outside scope {caller['scope']}"]})
    nodes.queried(tx, q, "community_code")
    rows = store.list_organizations(tx, under=caller["scope"], community_code=q.get("community_code"),
                                    category=q.get("category"), subcategory=q.get("subcategory"),
                                    status=q.get("status"), after=q.get("after", 0), limit=q["limit"])
    items = [_org.dump(r) for r in rows]
    return {"items": items, "next": items[-1]["id"] if len(items) == q["limit"] else None}


def update(tx, organization_id, data, caller, today=None):
    """Correct the name, subcategory, activities or filing number, or name a new leader."""
    today = today or clock.today()
    d = load(OrganizationUpdateSchema, data)
    row = _in_scope(tx, organization_id, caller, for_update=True)
    if row["status"] == "dissolved":
        raise ValidationFailed("a dissolved organisation does not change",
                               {"status": [f"organisation {organization_id} was dissolved on {row['status_on']}"]})
    if "activities" in d:
        d["activities"] = list(dict.fromkeys(d["activities"]))
    new = {k: d.get(k, row[k]) for k in ("name", "subcategory", "activities", "filing_no", "leader_resident_id")}
    changed = sorted(k for k in new if (sorted(new[k]) != sorted(row[k]) if k == "activities" else new[k] != row[k]))
    if not changed:
        raise ValidationFailed("nothing changes", {"_schema": ["every field given already has that value"]})
    leader = None
    if "leader_resident_id" in changed:
        leader = _resident(tx, new["leader_resident_id"], caller, "leader_resident_id")
        if store.open_membership(tx, organization_id, leader["id"]) is None:
            # An outsider named leader joins, and a suspended organisation takes no new members.
            _fail_on(rules.check_working(row), "the new leader cannot join")
    if "name" in changed:
        _unique_name(tx, row["community_code"], new["name"], organization_id)
    with unique_races(RACES):
        version = store.update_organization(tx, {**new, "id": organization_id})
        joined, moved = _hand_over(tx, row, leader, today) if leader else (None, [])
    detail = {k: {"from": _plain(row[k]), "to": _plain(new[k])} for k in changed}
    store.add_organization_history(tx, organization_id, version, "updated", today, detail, caller["actor"])
    after = store.organization(tx, organization_id)
    tx.emit("organization_updated", {**_event(after), "changed": changed})
    if joined is not None:
        tx.emit("organization_member_joined", {"organization_id": organization_id, "resident_id": leader["id"],
                                               "role": "leader", "joined_on": today.isoformat()})
        tx.publish_facts("organization_member_joined",
                         [_member_fact("organization_member_joined", after, joined, today, +1)])
    # Open memberships whose counted dimensions changed (a role handed over, the subcategory
    # corrected): -1 as they were and +1 as they are, so their -1 on leaving meets their +1.
    restated = []
    for m in store.organization_members(tx, organization_id):
        was = next((b for b in moved if b["resident_id"] == m["resident_id"]), None)
        old = {**m, "role": was["role"]} if was else m
        if (joined is not None and m["resident_id"] == leader["id"]) or \
                (old["role"], row["subcategory"]) == (m["role"], after["subcategory"]):
            continue
        restated += [_member_fact("organization_member_changed", row, old, today, -1),
                     _member_fact("organization_member_changed", after, m, today, +1)]
    tx.publish_facts("organization_member_changed", restated)
    if {"subcategory", "activities"} & set(changed):
        tx.publish_facts("organization_updated", [_org_fact("organization_updated", row, today, -1),
                                                  _org_fact("organization_updated", after, today, +1)])
    return _org.dump(after)


def _hand_over(tx, row, leader, today):
    """Make `leader` the one leader. Returns (their new membership if they were not a member yet,
    [{"resident_id", "role"} before] of the open memberships whose role changed)."""
    moved = []
    old = store.open_membership(tx, row["id"], row["leader_resident_id"])
    if old is not None:
        store.set_member_role(tx, old["id"], "member")
        moved.append({"resident_id": row["leader_resident_id"], "role": old["role"]})
    current = store.open_membership(tx, row["id"], leader["id"])
    if current is not None:
        store.set_member_role(tx, current["id"], "leader")
        moved.append({"resident_id": leader["id"], "role": current["role"]})
        return None, moved
    store.add_organization_member(tx, row["id"], leader["id"], "leader", today)
    return {"role": "leader", "pseudonym": leader["pseudonym"]}, moved


def change_status(tx, organization_id, data, caller, today=None):
    """filed → active ⇄ suspended; any → dissolved, which ends every membership on the same day."""
    today = today or clock.today()
    d = load(OrganizationStatusSchema, data)
    effective = d.get("effective") or today
    row = _in_scope(tx, organization_id, caller, for_update=True)
    members = store.organization_members(tx, organization_id)
    last_joined = max((m["joined_on"] for m in members), default=None)
    _fail_on(rules.check_transition(row, d["status"], effective, today, last_joined),
             f"the organisation cannot become {d['status']}")
    version = store.set_organization_status(tx, organization_id, d["status"], effective)
    closed = store.close_memberships(tx, organization_id, effective) if d["status"] == "dissolved" else []
    store.add_organization_history(tx, organization_id, version, "status_changed", effective,
                                   {"from": row["status"], "to": d["status"], "reason": d.get("reason"),
                                    "members_left": len(closed)}, caller["actor"])
    after = store.organization(tx, organization_id)
    tx.emit("organization_status_changed", {**_event(after), "from_status": row["status"], "reason": d.get("reason"),
                                            "members_left": [m["resident_id"] for m in closed]})
    tx.publish_facts("organization_status_changed", [_org_fact("organization_status_changed", row, today, -1),
                                                      _org_fact("organization_status_changed", after, today, +1)])
    if closed:
        tx.publish_facts("organization_member_left",
                         [_member_fact("organization_member_left", row, m, today, -1) for m in closed])
    return _org.dump(after)


def join(tx, organization_id, data, caller, today=None):
    today = today or clock.today()
    d = load(MemberJoinSchema, data)
    joined_on = d.get("joined_on") or today
    _in_scope(tx, organization_id, caller)
    # Then lock the resident before the organisation: the same order as a departure (residents._end).
    resident = _resident(tx, d["resident_id"], caller, "resident_id", lock=True)
    org = _in_scope(tx, organization_id, caller, for_update=True)
    _fail_on(rules.check_join(org, joined_on, today), "the resident cannot join")
    current = store.open_membership(tx, organization_id, resident["id"])
    if current is not None:
        raise Conflict("the resident is already a member", {"resident_id": [
            f"resident {resident['id']} has been a {current['role']} since {current['joined_on']}"]})
    with unique_races(RACES):
        store.add_organization_member(tx, organization_id, resident["id"], d["role"], joined_on)
    version = store.touch_organization(tx, organization_id)
    store.add_organization_history(tx, organization_id, version, "member_joined", joined_on,
                                   {"resident_id": resident["id"], "role": d["role"]}, caller["actor"])
    tx.emit("organization_member_joined", {"organization_id": organization_id, "resident_id": resident["id"],
                                           "role": d["role"], "joined_on": joined_on.isoformat()})
    member = {"role": d["role"], "joined_on": joined_on, "pseudonym": resident["pseudonym"]}
    tx.publish_facts("organization_member_joined",
                     [_member_fact("organization_member_joined", org, member, today, +1)])
    return _member_view(organization_id, member, resident)


def leave(tx, organization_id, resident_id, data, caller, today=None):
    today = today or clock.today()
    d = load(MemberLeaveSchema, data)
    left_on = d.get("left_on") or today
    org = _in_scope(tx, organization_id, caller, for_update=True)
    member = store.open_membership(tx, organization_id, resident_id)
    if member is None:
        raise NotFound(f"resident {resident_id} is not a member of organisation {organization_id}",
                       {"resident_id": [f"no current membership of resident {resident_id}"]})
    _fail_on(rules.check_leave(member, left_on, today), "the member cannot leave")
    store.end_membership(tx, member["id"], left_on)
    version = store.touch_organization(tx, organization_id)
    store.add_organization_history(tx, organization_id, version, "member_left", left_on,
                                   {"resident_id": resident_id, "role": member["role"], "reason": d.get("reason")},
                                   caller["actor"])
    tx.emit("organization_member_left", {"organization_id": organization_id, "resident_id": resident_id,
                                         "role": member["role"], "left_on": left_on.isoformat(),
                                         "reason": d.get("reason")})
    tx.publish_facts("organization_member_left", [_member_fact("organization_member_left", org, member, today, -1)])
    return _member_view(organization_id, member, {"id": resident_id, "name": member["name"],
                                                  "community_code": member["community_code"]}, left_on)


def residence_ended(tx, resident, on, caller, today=None):
    """End every open membership of a resident who left the street or died, in that same transaction.

    Called by residents._end with the resident's row after the change. Each is a leave like any
    other (history, `organization_member_left` event and -1 fact), with the reason party.ENDED
    gives. A leader's membership ends too, as the person is gone: the organisation stays, without
    a leader, and its history and an `organization_updated` event say so. Returns the ids of the
    organisations left.
    """
    rid, status = resident["id"], resident["status"]
    reason = ENDED[status]
    today = today or clock.today()  # the day of the facts; `on`, the effective day, goes in the history
    ended = []
    # Organisation first, then membership, in id order: the lock order of leave() and update().
    for organization_id in store.organizations_joined(tx, rid):
        org = store.organization(tx, organization_id, for_update=True)
        member = store.open_membership(tx, organization_id, rid)
        if member is None:
            continue  # left meanwhile
        _fail_on(rules.check_residence_end(status, on, member["joined_on"],
                                           f"joining organisation {organization_id} ({member['joined_on']})"),
                 f"the resident cannot be marked {status}")
        store.end_membership(tx, member["id"], on)
        leads = org["leader_resident_id"] == rid
        detail = {"resident_id": rid, "role": member["role"], "reason": reason}
        if leads:
            version = store.clear_leader(tx, organization_id)
            detail["leader_resident_id"] = {"from": rid, "to": None}
        else:
            version = store.touch_organization(tx, organization_id)
        store.add_organization_history(tx, organization_id, version, "member_left", on, detail, caller["actor"])
        tx.emit("organization_member_left", {"organization_id": organization_id, "resident_id": rid,
                                             "role": member["role"], "left_on": on.isoformat(), "reason": reason})
        tx.publish_facts("organization_member_left", [_member_fact("organization_member_left", org, member, today, -1)])
        if leads:
            tx.emit("organization_updated", {**_event(store.organization(tx, organization_id)),
                                             "changed": ["leader_resident_id"]})
        ended.append(organization_id)
    return ended


def contract(tx, organization_id, data, caller, today=None):
    """A project the organisation takes on (government-purchased services and the like)."""
    today = today or clock.today()
    d = load(ProjectCreateSchema, data)
    org = _in_scope(tx, organization_id, caller, for_update=True)
    _fail_on(rules.check_project(org, d), "the project has invalid fields")
    with unique_races(RACES):
        project = store.add_organization_project(tx, {**d, "organization_id": organization_id})
    version = store.touch_organization(tx, organization_id)
    view = _project.dump(project)
    store.add_organization_history(tx, organization_id, version, "project_contracted", today,
                                   {k: view[k] for k in ("id", "name", "funder", "budget", "starts_on", "ends_on")},
                                   caller["actor"])
    tx.emit("organization_project_contracted", view)
    tx.publish_facts("organization_project_contracted", [_org_fact(
        "organization_project_contracted", org, today, +1, budget_cents=rules.budget_cents(project["budget"]),
        starts_on=view["starts_on"], ends_on=view["ends_on"])])
    return view
