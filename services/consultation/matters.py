"""一上一下: matters raised through the community's channels, backed, screened, escalated, rated, settled.

Each use case runs in the caller's transaction: the change, its history row, the
domain event and the de-identified fact commit together. `people(resident_id,
caller)` is the registry's answer on a resident (by RPC), so a raiser, backer or
rater must be someone on the register within the caller's scope. A matter is
handled by its community until it is escalated; then by the street above it
(`level_code`), whose token must reach that level.
"""
from services.consultation import cases, disclosure, rules, store
from services.consultation.schemas import (ConsultationDeadlineSchema, MatterBackSchema, MatterCreateSchema,
                                           MatterListQuerySchema, MatterRateSchema, MatterSchema, MatterScreenSchema,
                                           MatterSettleSchema, SimilarQuerySchema)
from shared import clock, facts, streams
from shared.db import unique_races
from shared.errors import Conflict, DomainError, ValidationFailed, load
from shared.nodes import known, live
from shared.scope import first_of, forbid, in_scope, missing, under, visible

_matter = MatterSchema()


def view(row, now):
    return _matter.dump({**row, "overdue": row["status"] not in rules.CLOSED and row["settle_due_at"] < now,
                         "screening_overdue": row["status"] in rules.UNSCREENED and row["screening_due_at"] < now})


def event(row, **extra):
    return {"id": row["id"], "community_code": row["community_code"], "category": row["category"],
            "title": row["title"], "status": row["status"], "raiser_resident_id": row["raiser_resident_id"],
            "level_code": row["level_code"], "version": row["version"], **extra}


def fact(fact_type, row, day, **dims):
    # No names, no free text: the category, how it came and how urgent, and what happened.
    return facts.fact(fact_type, row["community_code"], day, category=row["category"], channel=row["channel"],
                      urgency=row["urgency"], **dims)


def unraised(row):
    """A repeat merged into the open matter it repeats is not a matter of its own: "raised" counts
    matters that are not repeats, here (rules.figures) and at every level above. So the merge takes
    the raise back, -1 on the day it was raised with its dimensions, which cancels its +1 in every
    period, whenever the merge happens."""
    return {**fact("matter_raised", row, clock.local_date(row["raised_at"])), "delta": -1}


def history(tx, row, version, status, note, actor):
    tx.execute(store.ADD_HISTORY, (row["id"], version, status, note, actor))


def resident(people, resident_id, caller, field):
    try:
        holder = people(resident_id, caller)
    except DomainError as exc:  # the registry names its own field; name the caller's
        raise type(exc)(exc.message, {field: [m for ms in exc.fields.values() for m in ms] or [exc.message]})
    if holder["status"] != "active":
        raise ValidationFailed("not on the active register", {field: [f"resident {resident_id} is "
                                                                      f"{holder['status']}"]})
    return holder


def matter_in_scope(tx, matter_id, caller, for_update=False, handling=False):
    """The matter, if the caller reaches its community (or, to act on it, the level handling it)."""
    row = visible(tx.one(store.MATTER_FOR_UPDATE if for_update else store.MATTER, (matter_id,)), caller,
                  missing("matter", matter_id))
    # The caller sees the matter (its community is theirs): the level handling it now is theirs or not.
    if handling and not in_scope(row["level_code"], caller):
        forbid(f"matter {matter_id} (handled at {row['level_code']})", caller, "id")
    return row


def similar(tx, query, caller, nodes=None):
    q = load(SimilarQuerySchema, query)
    if not in_scope(q["community_code"], caller):
        forbid(q["community_code"], caller, "community_code")
    if nodes is not None:
        known(nodes, q["community_code"], "community_code")
    return {"items": _similar(tx, q["community_code"], q["category"], q["text"])}


def _similar(tx, community_code, category, text):
    rows = tx.all(store.SIMILAR, {"community_code": community_code, "category": category, "text": text,
                                  "threshold": store.SIMILARITY})
    return [{"id": r["id"], "title": r["title"], "status": r["status"], "backers": r["backers"],
             "similarity": round(float(r["similarity"]), 3)} for r in rows]


def raise_matter(tx, people, data, caller, now, nodes=None):
    """`nodes(code)` is the registry's answer on a node (its get_node): the community must be live today.
    Asked before the transaction opens, so it costs no re-run. Without it (the demo loader, raising
    matters in communities it has just made) the community is not checked."""
    d = load(MatterCreateSchema, data)
    if not in_scope(d["community_code"], caller):
        forbid(d["community_code"], caller, "community_code")
    if nodes is not None:
        live(nodes, d["community_code"], "community_code", clock.local_date(now), level="community")
    if d.get("request_id"):
        first = tx.one(store.MATTER_BY_REQUEST, (d["request_id"],))
        if first is not None:
            return _replay(first, d, caller, now)
    if d.get("raiser_resident_id") is not None:
        holder = resident(people, d["raiser_resident_id"], caller, "raiser_resident_id")
        if holder["community_code"][:9] != d["community_code"][:9]:
            raise ValidationFailed("the raiser lives in another street", {"raiser_resident_id": ["not of this street"]})
    alike = _similar(tx, d["community_code"], d["category"], f"{d['title']} {d['description']}")
    if not d["confirm_new"]:
        if alike:
            best = alike[0]
            raise Conflict("a similar matter is open in this community",
                           {"description": [f"like open matter {best['id']} ({best['title']}, "
                                            f"{best['backers']} backers): back it instead, or send confirm_new"],
                            "similar": [str(m["id"]) for m in alike]})
    deadline = rules.deadline_for(tx.all(store.DEADLINES), d["category"], d["urgency"])
    screening_due, settle_due = rules.due_dates(now, deadline["screening_hours"], deadline["settle_days"])
    values = {**{k: d.get(k) for k in ("request_id", "community_code", "building", "category", "urgency", "channel",
                                        "title", "description", "raiser_resident_id", "attachments")},
              "level_code": d["community_code"], "raised_at": now, "screening_due_at": screening_due,
              "settle_due_at": settle_due, "similar_to": alike[0]["id"] if alike else None}
    inserted = tx.one(store.ADD_MATTER, values)
    if inserted is None:  # the same request id, committed meanwhile by a concurrent retry
        return _replay(tx.one(store.MATTER_BY_REQUEST, (d["request_id"],)), d, caller, now)
    row = tx.one(store.MATTER, (inserted["id"],))
    history(tx, row, 1, "raised", None, caller["actor"])
    tx.emit("matter_raised", event(row, channel=row["channel"], urgency=row["urgency"],
                                   screening_due_at=row["screening_due_at"].isoformat()))
    tx.publish_facts("matter_raised", [fact("matter_raised", row, now.date())])
    return view(row, now)


def _replay(first, d, caller, now):
    first_of(first, d["request_id"], caller)
    if (first["community_code"], first["category"], first["title"]) != (d["community_code"], d["category"],
                                                                        d["title"]):
        raise Conflict(f"request id {d['request_id']} was already used for another matter",
                       {"request_id": [f"already used by matter {first['id']}"]})
    return {**view(first, now), "replayed": True}


def back(tx, people, matter_id, data, caller, now):
    """A resident backs an open matter instead of raising it again; each resident counts once."""
    d = load(MatterBackSchema, data)
    matter_in_scope(tx, matter_id, caller)
    resident(people, d["resident_id"], caller, "resident_id")  # asked before the lock: the registry may be slow
    row = matter_in_scope(tx, matter_id, caller, for_update=True)
    if row["status"] in rules.CLOSED:
        raise Conflict(f"matter {matter_id} is {row['status']}", {"id": [f"a {row['status']} matter takes no "
                                                                        "backers"]})
    if d["resident_id"] == row["raiser_resident_id"]:
        raise Conflict("the raiser already stands behind the matter", {"resident_id": ["is the raiser"]})
    if tx.execute(store.ADD_BACKER, (matter_id, d["resident_id"])).rowcount:
        tx.execute(store.COUNT_BACKER, (1, matter_id))
        tx.emit("matter_backed", {"id": matter_id, "community_code": row["community_code"],
                                  "resident_id": d["resident_id"]})
    return view(tx.one(store.MATTER, (matter_id,)), now)


def screen(tx, matter_id, data, caller, now, names_in=None):
    """The committee's (or, once escalated, the street's) answer to a matter; also how deliberation that
    adopted nothing ends (reject or refer a deliberating matter, which leaves its agenda item).

    `names_in(text, street)` is the registry's answer whether a text names a resident of the street:
    a reason escalated to the district is refused if it carries anything personal (see `outgoing`).
    Without it (the demo loader) nothing can go up to the district."""
    d = load(MatterScreenSchema, data)
    to = rules.SCREENING[d["outcome"]]
    if to == "merged":
        # Both rows locked in id order, as agenda items lock them, so two merges never deadlock.
        locked = {r["id"]: r for r in tx.all(store.MATTERS_FOR_UPDATE, (sorted({matter_id, d["duplicate_of"]}),))}
    row = matter_in_scope(tx, matter_id, caller, for_update=True, handling=True)
    # An escalated matter the street cannot settle goes on up to the district: escalated again.
    further = to == "escalated" and row["status"] == "escalated" and len(row["level_code"]) == 9
    why = None if further else rules.matter_move(row["status"], to)
    if why:
        raise Conflict(why, {"outcome": [why]})
    if to == "escalated" and rules.escalate_to(row["level_code"]) is None:
        raise Conflict("a district escalates no further from here", {"outcome": ["escalation ends at the district"]})
    if to == "escalated" and len(rules.escalate_to(row["level_code"])) == 6:
        outgoing(d["note"], row["community_code"][:9], names_in)
    values = {"status": to, "actor": caller["actor"], "note": d.get("note"), "referred_to": d.get("referred_to"),
              "duplicate_of": None, "level_code": row["level_code"], "id": matter_id, "now": now,
              "screening_due_at": row["screening_due_at"], "rescreen": False}
    if to == "escalated":
        # The street screens it afresh, within the same deadline counted from now.
        deadline = rules.deadline_for(tx.all(store.DEADLINES), row["category"], row["urgency"])
        values.update(level_code=rules.escalate_to(row["level_code"]), rescreen=True,
                      screening_due_at=rules.due_dates(now, deadline["screening_hours"], 1)[0])
    if to == "merged":
        target = locked.get(d["duplicate_of"])
        if (target is None or target["id"] == matter_id or target["community_code"] != row["community_code"]
                or target["status"] in rules.CLOSED or not in_scope(target["level_code"], caller)):
            raise ValidationFailed("not an open matter of the same community",
                                   {"duplicate_of": [f"matter {d['duplicate_of']} cannot take this one in"]})
        values["duplicate_of"] = target["id"]
        # The raiser and every backer now stand behind the matter it repeats, each counted once.
        moved = tx.execute(store.MOVE_BACKERS, {"to": target["id"], "from": matter_id,
                                                "raiser": row["raiser_resident_id"]}).rowcount
        if moved:
            tx.execute(store.COUNT_BACKER, (moved, target["id"]))
    if row["status"] == "deliberating":
        tx.execute(store.DETACH, (matter_id,))
    version = tx.one(store.SCREEN, values)["version"]
    after = tx.one(store.MATTER, (matter_id,))
    history(tx, after, version, to, d.get("note"), caller["actor"])
    on_time = (row["screened_at"] or now) <= row["screening_due_at"]
    tx.emit("matter_screened", event(after, outcome=d["outcome"], note=d.get("note"), on_time=on_time))
    facts_out = [fact("matter_screened", after, now.date(), outcome=d["outcome"], on_time=on_time)]
    if to == "merged":
        facts_out.append(unraised(row))
    if to == "escalated":
        tx.emit("matter_escalated", event(after, to_level=after["level_code"], reason=d.get("note")))
        facts_out.append(fact("matter_escalated", after, now.date(), to_level=len(after["level_code"])))
        if len(after["level_code"]) == 6:
            cases.escalate_up(tx, after, d.get("note"))
    tx.publish_facts("matter_screened", facts_out)
    return view(after, now)


def outgoing(note, street, names_in):
    """Refuse a reason for the district that carries anything personal, naming only what kind it is.
    The registry is asked last (an RPC, which re-runs the worker): most refusals need no answer."""
    found = disclosure.findings(note)
    if not found:
        if names_in is None:
            raise RuntimeError("a reason for the district is checked against the register: pass names_in")
        if names_in(note, street):
            found = [disclosure.NAME]
    if found:
        raise ValidationFailed("the reason goes to the district and must carry nothing personal",
                               {"note": found})


def settle(tx, matter_id, data, caller, now, by=None):
    """办结: the matter is closed, once answered, referred, or its decision carried out and published."""
    d = load(MatterSettleSchema, data)
    row = matter_in_scope(tx, matter_id, caller, for_update=True, handling=True)
    why = rules.matter_move(row["status"], "settled")
    if why:
        raise Conflict(why, {"id": [why]})
    return _settle(tx, row, d.get("note"), by or caller["actor"], now)


def _settle(tx, row, note, actor, now):
    version = tx.one(store.SETTLE, (now, row["id"]))["version"]
    after = tx.one(store.MATTER, (row["id"],))
    history(tx, after, version, "settled", note, actor)
    days = round((after["settled_at"] - after["raised_at"]).total_seconds() / 86400, 2)
    on_time = after["settled_at"] <= after["settle_due_at"]
    tx.emit("matter_settled", event(after, days_to_settle=days, on_time=on_time))
    tx.publish_facts("matter_settled", [fact("matter_settled", after, now.date(), days_to_settle=days,
                                             on_time=on_time)])
    return view(after, now)


def rate(tx, people, matter_id, data, caller, now):
    """The raiser, a backer or a participant rates the result once; the raiser's rating settles it."""
    d = load(MatterRateSchema, data)
    rid = d["resident_id"]
    matter_in_scope(tx, matter_id, caller)
    resident(people, rid, caller, "resident_id")  # asked before the lock: the registry may be slow
    row = matter_in_scope(tx, matter_id, caller, for_update=True)
    if row["status"] not in ("answered", "referred", "published", "settled"):
        raise Conflict(f"a {row['status']} matter has no result to rate yet", {"id": ["nothing to rate yet"]})
    raiser_or_backer = rid == row["raiser_resident_id"] or tx.one(store.IS_BACKER, (matter_id, rid)) is not None
    attended = row["agenda_item_id"] is not None and tx.one(store.IN_ROSTER, (row["agenda_item_id"], rid))
    if not (raiser_or_backer or attended):
        raise ValidationFailed("only the raiser, a backer or a participant rates a matter",
                               {"resident_id": [f"resident {rid} raised, backed or deliberated nothing here"]})
    if not raiser_or_backer and tx.one(store.RATED_ITEM, (row["agenda_item_id"], rid)):
        # A participant rates the deliberation once, not once per matter it gathered.
        raise Conflict("already rated", {"resident_id": [f"resident {rid} rated agenda item "
                                                         f"{row['agenda_item_id']} already"]})
    if tx.execute(store.ADD_RATING, (matter_id, rid, d["score"], d.get("comment"))).rowcount == 0:
        raise Conflict("already rated", {"resident_id": [f"resident {rid} rated matter {matter_id} already"]})
    satisfied = d["score"] >= rules.SATISFIED
    tx.emit("matter_rated", event(row, resident_id=rid, score=d["score"]))
    tx.publish_facts("matter_rated", [fact("matter_rated", row, now.date(), score=d["score"], satisfied=satisfied)])
    # The raiser's rating settles the matter, if the caller may act where it is handled (an escalated
    # matter is settled by the street).
    if (rid == row["raiser_resident_id"] and rules.matter_move(row["status"], "settled") is None
            and in_scope(row["level_code"], caller)):
        return _settle(tx, row, f"rated {d['score']} by the raiser", caller["actor"], now)
    return view(tx.one(store.MATTER, (matter_id,)), now)


def get(tx, matter_id, caller, now):
    row = matter_in_scope(tx, matter_id, caller)
    return {**view(row, now), "history": [dict(h, at=h["at"].isoformat()) for h in tx.all(store.HISTORY,
                                                                                          (matter_id,))]}


def search(tx, query, caller, now, nodes=None):
    q = load(MatterListQuerySchema, query)
    prefix = under(q, caller)
    if nodes is not None and q.get("under"):
        known(nodes, q["under"], "under")
    rows = tx.all(store.LIST_MATTERS, {"under": prefix, "status": q.get("status"),
                                       "category": q.get("category"), "overdue": q["overdue"],
                                       "screening_overdue": q["screening_overdue"],
                                       "escalated": q["escalated"], "after": q["after"], "limit": q["limit"]})
    return {"items": [view(r, now) for r in rows], "next": rows[-1]["id"] if len(rows) == q["limit"] else None}


def set_deadline(tx, data, caller):
    d = load(ConsultationDeadlineSchema, data)
    with unique_races({}):
        tx.execute(store.SET_DEADLINE, (d["category"], d["urgency"], d["screening_hours"], d["settle_days"]))
    tx.emit("consultation_deadline_set", {**d, "actor": caller["actor"]})
    return {"items": tx.all(store.DEADLINES)}


def answered_from_above(tx, body, parent_key, now):
    """At the street: the district's answer to a case it raised, or the head of this street's
    answers stream. True if it applied (False: applied before, or not this street's); a forged one
    raises cases.Rejected."""
    if not parent_key or not isinstance(body, dict) or not facts.verify(body, parent_key):
        raise cases.Rejected("the answer is not signed by this instance's parent", {"signature": ["refused"]})
    sender = streams.head_sender(body) if streams.is_head(body) else body.get("issuer")
    streams.count(tx, sender, "consultation", streams.answers_stream(tx.source["node_code"]), body)
    street, _, matter_id = str(body.get("case_id", "")).partition(":")
    if street != tx.source["node_code"] or not matter_id.isdigit():
        return False
    row = tx.one(store.MATTERS_FOR_UPDATE, ([int(matter_id)],))
    if row is None or row["status"] != "escalated" or len(row["level_code"]) != 6:
        return False
    to = body["outcome"] if body.get("outcome") in ("answered", "referred") else "answered"
    values = {"status": to, "actor": f"{body.get('issuer')}:{body.get('answered_by')}", "note": body.get("answer"),
              "referred_to": body.get("referred_to"), "duplicate_of": None, "level_code": street, "id": row["id"],
              "now": now, "screening_due_at": row["screening_due_at"], "rescreen": False}
    version = tx.one(store.SCREEN, values)["version"]
    after = tx.one(store.MATTER, (row["id"],))
    history(tx, after, version, to, body.get("answer"), values["actor"])
    on_time = now <= row["screening_due_at"]
    tx.emit("matter_screened", event(after, outcome="answer" if to == "answered" else "refer",
                                     note=body.get("answer"), on_time=on_time, from_level=body.get("issuer")))
    tx.publish_facts("matter_screened", [fact("matter_screened", after, now.date(),
                                              outcome="answer" if to == "answered" else "refer", on_time=on_time)])
    return True
