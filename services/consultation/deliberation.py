"""二上二下: agenda items gather matters; consultation meetings with a roster by stakeholder role
score the items, vote on drafted options, and record attendance and minutes.

A meeting is scheduled (and may be moved), then opened with the attendance taken,
then closed with its minutes; only an open meeting takes votes, and only from
participants who attended. The tally (rules.option_tally) is explicit about the
quorum and the majority it needs.
"""
from datetime import timedelta

from services.consultation import matters as matters_mod
from services.consultation import rules, store
from services.consultation.schemas import (AgendaItemCreateSchema, AgendaOptionCreateSchema,
                                           MeetingAttendanceSchema, MeetingCancelSchema, MeetingCloseSchema,
                                           MeetingCreateSchema, MeetingMoveSchema, MeetingSchema, MeetingTallySchema,
                                           MeetingVoteSchema, TallyQuerySchema)
from shared import clock, facts
from shared.db import unique_races
from shared.errors import Conflict, NotFound, ValidationFailed, load
from shared.nodes import live
from shared.scope import first_of, forbid, in_scope, missing, visible

_meeting = MeetingSchema()
_tally = MeetingTallySchema()
RACES = {"options_agenda_item_id_title_key": ("title", "the item already has an option of that title"),
         "votes_one_score": ("participant_id", "this participant already scored the item"),
         "votes_one_choice": ("participant_id", "this participant already voted on the option"),
         "participants_resident": ("roster", "a resident is on the roster once")}


def agenda_item_in_scope(tx, item_id, caller, for_update=False, field="agenda_item_id"):
    return visible(tx.one(store.AGENDA_ITEM_FOR_UPDATE if for_update else store.AGENDA_ITEM, (item_id,)), caller,
                   missing("agenda item", item_id, field))


def create_item(tx, data, caller, now, nodes=None):
    """Take matters screened for deliberation into one agenda item (of a live community: `nodes` as for
    matters_mod.raise_matter)."""
    d = load(AgendaItemCreateSchema, data)
    if not in_scope(d["community_code"], caller):
        forbid(d["community_code"], caller, "community_code")
    if nodes is not None:
        live(nodes, d["community_code"], "community_code", clock.local_date(now), level="community")
    ids = sorted(set(d["matter_ids"]))
    rows = tx.all(store.MATTERS_FOR_UPDATE, (ids,))
    problems = {}
    # Each refusal is named by the matter's place in the request, as a schema names a list's items.
    where = {mid: f"matter_ids.{n}" for n, mid in reversed(list(enumerate(d["matter_ids"])))}
    rows = [r for r in rows if in_scope(r["community_code"], caller)]  # others read as missing: no leak
    for absent in set(ids) - {r["id"] for r in rows}:
        problems[where[absent]] = [f"no such matter {absent}"]
    for r in rows:
        if not in_scope(r["level_code"], caller):
            why = f"is handled by {r['level_code']}, above this token's scope"
        elif r["community_code"] != d["community_code"]:
            why = f"belongs to community {r['community_code']}"
        elif r["status"] != "deliberating":
            why = f"is {r['status']}: only matters screened for deliberation go on the agenda"
        elif r["agenda_item_id"] is not None:
            why = f"is on agenda item {r['agenda_item_id']} already"
        else:
            continue
        problems[where[r["id"]]] = [f"matter {r['id']} {why}"]
    if problems:
        raise ValidationFailed("these matters cannot go on the agenda", problems)
    item_id = tx.one(store.ADD_AGENDA_ITEM, (d["community_code"], d["title"], caller["actor"]))["id"]
    tx.execute(store.ATTACH_MATTERS, (item_id, ids))
    view = item(tx, item_id, caller, now)
    tx.emit("agenda_item_created", {"id": item_id, "community_code": d["community_code"], "matter_ids": ids})
    return view


def item(tx, item_id, caller, now):
    row = agenda_item_in_scope(tx, item_id, caller, field="id")
    decision = tx.one(store.DECISION_OF_ITEM, (item_id,))
    return {**row, "created_at": row["created_at"].isoformat(),
            "meetings": [{**m, "starts_at": m["starts_at"].isoformat()} for m in tx.all(store.MEETINGS_OF_ITEM, (item_id,))],
            "decision_id": decision["id"] if decision else None,
            "matters": [matters_mod.view(m, now) for m in tx.all(store.MATTERS_OF_ITEM, (item_id,))],
            "options": [{**o, "budget": None if o["budget"] is None else str(o["budget"])}
                        for o in tx.all(store.OPTIONS_OF_ITEM, (item_id,))]}


def add_option(tx, item_id, data, caller, now):
    d = load(AgendaOptionCreateSchema, data)
    row = agenda_item_in_scope(tx, item_id, caller, for_update=True, field="id")
    if row["status"] != "open":
        raise Conflict("the item is decided", {"id": [f"agenda item {item_id} is decided; options are closed"]})
    with unique_races(RACES):
        tx.one(store.ADD_OPTION, (item_id, d["title"], d.get("description"), d.get("budget")))
    return item(tx, item_id, caller, now)


# -- meetings --------------------------------------------------------------------------------

def meeting_in_scope(tx, meeting_id, caller, for_update=False):
    return visible(tx.one(store.MEETING_FOR_UPDATE if for_update else store.MEETING, (meeting_id,)), caller,
                   missing("meeting", meeting_id))


def _meeting_view(tx, row):
    roster = tx.all(store.PARTICIPANTS, (row["id"],))
    by_role = {}
    for p in roster:
        by_role[p["role"]] = by_role.get(p["role"], 0) + (1 if p["attended"] else 0)
    return _meeting.dump({**row, "items": tx.all(store.ITEMS_OF_MEETING, (row["id"],)), "roster": roster,
                          "attendance_by_role": by_role})


def _meeting_event(view, **extra):
    return {"id": view["id"], "community_code": view["community_code"], "title": view["title"],
            "starts_at": view["starts_at"], "place": view["place"], "status": view["status"],
            "participant_resident_ids": [p["resident_id"] for p in view["roster"] if p["resident_id"]], **extra}


LATEST = timedelta(days=730)  # a meeting is planned within two years (and a typo'd year 9999 is refused)


def _ahead(starts_at, now):
    if starts_at < now:
        raise ValidationFailed("a meeting is scheduled ahead", {"starts_at": ["must not be in the past"]})
    if starts_at > now + LATEST:
        raise ValidationFailed("too far ahead", {"starts_at": ["must be within two years"]})


def roster_on_register(people_of, roster, caller):
    """Every resident on the roster is on the active register within the caller's scope.

    The registry is asked once for the whole roster (`people_of(ids, caller)`, its
    `account_holders`): a question asked with the transaction open costs the worker a whole
    re-run, so one per resident would make a large roster cost a re-run each (shared/db.py).
    Every resident in the wrong is named under their own roster field; the error's kind is that of
    the first of them, as when they were asked one at a time.
    """
    ids = sorted({p["resident_id"] for p in roster if p.get("resident_id") is not None})
    if not ids:
        return
    answer = people_of(ids, caller)
    not_found = set(answer["not_found"])  # a resident outside the scope among them, as the registry answers
    problems, first = {}, None
    for n, p in enumerate(roster):
        rid = p.get("resident_id")
        if rid is None:
            continue
        if rid in not_found:
            kind, why = NotFound, f"no resident {rid}"
        elif answer["holders"][str(rid)]["status"] != "active":
            kind, why = ValidationFailed, f"resident {rid} is {answer['holders'][str(rid)]['status']}"
        else:
            continue
        first = first or kind
        problems[f"roster.{n}.resident_id"] = [why]
    if problems:
        raise first("residents on the roster must be on the active register within this token's scope", problems)


def schedule(tx, people_of, data, caller, now, nodes=None):
    """A meeting of a live community (`nodes` as for matters_mod.raise_matter, asked before the
    transaction opens) with open agenda items of it and a roster on the register."""
    d = load(MeetingCreateSchema, data)
    if not in_scope(d["community_code"], caller):
        forbid(d["community_code"], caller, "community_code")
    if nodes is not None:
        live(nodes, d["community_code"], "community_code", clock.local_date(now), level="community")
    if d.get("request_id"):
        first = tx.one(store.MEETING_BY_REQUEST, (d["request_id"],))
        if first is not None:
            return {**get(tx, first_of(first, d["request_id"], caller)["id"], caller), "replayed": True}
    _ahead(d["starts_at"], now)
    if d["quorum"] > len(d["roster"]):
        raise ValidationFailed("the quorum is larger than the roster",
                               {"quorum": [f"{d['quorum']} > {len(d['roster'])} on the roster"]})
    items = [agenda_item_in_scope(tx, i, caller, field="agenda_item_ids") for i in sorted(set(d["agenda_item_ids"]))]
    bad = [i["id"] for i in items if i["community_code"] != d["community_code"] or i["status"] != "open"]
    if bad:
        raise ValidationFailed("agenda items must be open and of the meeting's community",
                               {"agenda_item_ids": [f"cannot take {bad}"]})
    roster_on_register(people_of, d["roster"], caller)
    inserted = tx.one(store.ADD_MEETING, {**d, "request_id": d.get("request_id"), "actor": caller["actor"]})
    if inserted is None:  # the same request, committed meanwhile by a concurrent retry
        first = first_of(tx.one(store.MEETING_BY_REQUEST, (d["request_id"],)), d["request_id"], caller)
        return {**get(tx, first["id"], caller), "replayed": True}
    meeting_id = inserted["id"]
    for i in items:
        tx.execute(store.ADD_MEETING_ITEM, (meeting_id, i["id"]))
    with unique_races(RACES):
        for p in d["roster"]:
            tx.one(store.ADD_PARTICIPANT, {"meeting_id": meeting_id, "role": p["role"],
                                           "resident_id": p.get("resident_id"), "name": p["name"],
                                           "affiliation": p.get("affiliation")})
    view = _meeting_view(tx, tx.one(store.MEETING, (meeting_id,)))
    tx.emit("meeting_scheduled", _meeting_event(view))
    tx.publish_facts("meeting_scheduled", [facts.fact("meeting_scheduled", d["community_code"], now.date(),
                                                      roster=len(d["roster"]), items=len(items))])
    return view


def move(tx, meeting_id, data, caller, now):
    d = load(MeetingMoveSchema, data)
    row = meeting_in_scope(tx, meeting_id, caller, for_update=True)
    why = rules.meeting_move(row["status"], "scheduled")
    if why:
        raise Conflict(why, {"id": [why]})
    _ahead(d["starts_at"], now)
    tx.execute(store.MOVE_MEETING, {"starts_at": d["starts_at"], "place": d.get("place") or row["place"],
                                    "id": meeting_id})
    view = _meeting_view(tx, tx.one(store.MEETING, (meeting_id,)))
    tx.emit("meeting_moved", _meeting_event(view, from_starts_at=row["starts_at"].isoformat(),
                                            from_place=row["place"], reason=d.get("reason")))
    return view


def open_meeting(tx, meeting_id, data, caller):
    """Open the meeting with the attendance taken (it may be taken again while it is open)."""
    d = load(MeetingAttendanceSchema, data)
    row = meeting_in_scope(tx, meeting_id, caller, for_update=True)
    opening = row["status"] != "open"
    if opening:
        why = rules.meeting_move(row["status"], "open")
        if why:
            raise Conflict(why, {"id": [why]})
        tx.execute(store.SET_MEETING_STATUS, ("open", None, meeting_id))
    roster = {p["id"] for p in tx.all(store.PARTICIPANTS, (meeting_id,))}
    strangers = sorted(set(d["participant_ids"]) - roster)
    if strangers:
        raise ValidationFailed("not on this meeting's roster", {"participant_ids": [f"{strangers}"]})
    tx.execute(store.MARK_ATTENDED, (d["participant_ids"], meeting_id))
    view = _meeting_view(tx, tx.one(store.MEETING, (meeting_id,)))
    tx.emit("meeting_opened" if opening else "meeting_attendance_corrected",
            _meeting_event(view, attendance_by_role=view["attendance_by_role"]))
    return view


def vote(tx, meeting_id, data, caller):
    d = load(MeetingVoteSchema, data)
    row = meeting_in_scope(tx, meeting_id, caller, for_update=True)
    if row["status"] != "open":
        raise Conflict(f"a {row['status']} meeting takes no votes", {"id": [f"meeting {meeting_id} is "
                                                                            f"{row['status']}"]})
    participant = next((p for p in tx.all(store.PARTICIPANTS, (meeting_id,)) if p["id"] == d["participant_id"]), None)
    if participant is None or not participant["attended"]:
        raise ValidationFailed("only participants who attended vote",
                               {"participant_id": [f"{d['participant_id']} did not attend meeting {meeting_id}"]})
    items = {i["id"]: i for i in tx.all(store.ITEMS_OF_MEETING, (meeting_id,))}
    if d["agenda_item_id"] not in items:
        raise ValidationFailed("not on this meeting's agenda", {"agenda_item_id": [f"{d['agenda_item_id']}"]})
    if items[d["agenda_item_id"]]["status"] != "open":
        raise Conflict("the item is decided", {"agenda_item_id": [f"agenda item {d['agenda_item_id']} was decided; "
                                                                  "it takes no more votes"]})
    if d.get("option_id") is not None:
        option = tx.one(store.OPTION, (d["option_id"],))
        if option is None or option["agenda_item_id"] != d["agenda_item_id"]:
            raise ValidationFailed("not an option of that item", {"option_id": [f"{d['option_id']}"]})
    with unique_races(RACES):
        tx.execute(store.ADD_VOTE, {"meeting_id": meeting_id, "participant_id": d["participant_id"],
                                    "agenda_item_id": d["agenda_item_id"], "option_id": d.get("option_id"),
                                    "score": d.get("score"), "choice": d.get("choice")})
    return tally(tx, meeting_id, d["agenda_item_id"], caller)


def tally_of(tx, meeting_id, query, caller):
    """GET .../tally?agenda_item_id=: the tally of the item the query names."""
    return tally(tx, meeting_id, load(TallyQuerySchema, query)["agenda_item_id"], caller)


def tally(tx, meeting_id, item_id, caller):
    row = meeting_in_scope(tx, meeting_id, caller)
    if item_id not in {i["id"] for i in tx.all(store.ITEMS_OF_MEETING, (meeting_id,))}:
        raise NotFound("not on this meeting's agenda", {"agenda_item_id": [f"{item_id} is not on meeting "
                                                                           f"{meeting_id}'s agenda"]})
    attended = sum(1 for p in tx.all(store.PARTICIPANTS, (meeting_id,)) if p["attended"])
    counts = {c["option_id"]: c for c in tx.all(store.CHOICES, (meeting_id, item_id))}
    adopted, why = rules.option_tally(attended, row["quorum"], counts)
    return _tally.dump({"meeting_id": meeting_id, "agenda_item_id": item_id, "attended": attended,
                        "quorum": row["quorum"], "quorum_met": rules.quorum_met(attended, row["quorum"]),
                        "priority": rules.priority([s["score"] for s in tx.all(store.SCORES, (meeting_id, item_id))]),
                        "options": list(counts.values()), "adopted_option_id": adopted, "why_none": why})


def close(tx, meeting_id, data, caller, now):
    d = load(MeetingCloseSchema, data)
    row = meeting_in_scope(tx, meeting_id, caller, for_update=True)
    why = rules.meeting_move(row["status"], "closed")
    if why:
        raise Conflict(why, {"id": [why]})
    tx.execute(store.SET_MEETING_STATUS, ("closed", d["minutes"], meeting_id))
    view = _meeting_view(tx, tx.one(store.MEETING, (meeting_id,)))
    tx.emit("meeting_closed", _meeting_event(view, attendance_by_role=view["attendance_by_role"]))
    tx.publish_facts("meeting_closed", [facts.fact("meeting_closed", row["community_code"], now.date(),
                                                   attended=sum(view["attendance_by_role"].values()),
                                                   **{f"attended_{k}": v for k, v in
                                                      view["attendance_by_role"].items()})])
    return view


def cancel(tx, meeting_id, data, caller):
    d = load(MeetingCancelSchema, data)
    row = meeting_in_scope(tx, meeting_id, caller, for_update=True)
    why = rules.meeting_move(row["status"], "cancelled")
    if why:
        raise Conflict(why, {"id": [why]})
    tx.execute(store.SET_MEETING_STATUS, ("cancelled", None, meeting_id))
    view = _meeting_view(tx, tx.one(store.MEETING, (meeting_id,)))
    tx.emit("meeting_cancelled", _meeting_event(view, reason=d["reason"]))
    return view


def get(tx, meeting_id, caller):
    return _meeting_view(tx, meeting_in_scope(tx, meeting_id, caller))
