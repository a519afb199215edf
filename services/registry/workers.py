"""Use cases on community workers: appoint, read, list, assess (rolling management), leave.

Same shape as residents.py. A worker's ID number and phone are sealed with the
Vault under their own purposes, so a worker's look-up hash cannot be matched
against a resident's; a worker who lives in the street may be linked to their
resident record, and is then checked to be the same person; when that resident
dies, the appointment ends with them (`residence_ended`, reason died). Moving out
of the street ends nothing: workers often live outside the street they serve.

Facts count appointments by community, role and origin (`worker_appointed` +1,
`worker_left` -1, with the reason) and assessments by outcome and score band
(`worker_assessed` +1). They carry no subject: the levels above compare
communities, not persons.
"""
from datetime import date

from services.registry import civic_rules as rules
from services.registry import nodes, residents, store
from shared.protect import mask_id, mask_phone
from services.registry.schemas import (AssessmentCreateSchema, AssessmentSchema, WorkerChangeSchema,
                                       WorkerCreateSchema, WorkerLeaveSchema, WorkerListQuerySchema, WorkerSchema)
from shared import facts
from shared.db import unique_races
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed, load
from shared.scope import visible
from shared import clock

ID, PHONE = "worker.id_number", "worker.phone"
_worker = WorkerSchema()
_assessments = AssessmentSchema(many=True)
_history = WorkerChangeSchema(many=True)

RACES = {"workers_one_seat": ("role", "the seat was filled meanwhile"),
         "workers_one_appointment": ("id_number", "this person was appointed to this role meanwhile"),
         "worker_assessments_pkey": ("year", "this year was assessed meanwhile")}


def _view(vault, row, full):
    id_number = vault.open(row["id_cipher"], ID)
    phone = vault.open(row["phone_cipher"], PHONE) if row["phone_cipher"] else None
    return _worker.dump({**row, "id_number": id_number if full else mask_id(id_number),
                         "phone": phone if full or phone is None else mask_phone(phone)})


def _detail(tx, vault, row, full=True):
    return {**_view(vault, row, full=full), "assessments": _assessments.dump(store.assessments(tx, row["id"])),
            "history": _history.dump(store.worker_history(tx, row["id"]))}


def _event(row):
    """The domain event view: no ID number or phone."""
    keys = ("id", "resident_id", "name", "role", "community_code", "grid_code", "origin", "started_on", "status",
            "left_on", "left_reason", "version")
    return {k: (row[k].isoformat() if isinstance(row[k], date) else row[k]) for k in keys}


def _fact(fact_type, row, on, delta, **extra):
    return facts.fact(fact_type, row["community_code"], on, delta=delta, **rules.worker_dims(row), **extra)


def _fail_on(errors, message):
    if errors:
        raise ValidationFailed(message, errors)


def _in_scope(tx, worker_id, caller, for_update=False):
    # A token scoped to a grid reaches the workers (and residents) of that grid, hence the grid code too.
    return visible(store.worker(tx, worker_id, for_update=for_update), caller,
                   NotFound(f"worker {worker_id} does not exist", {"id": [f"no worker {worker_id}"]}),
                   ("community_code", "grid_code"))


def _check_resident_link(tx, vault, resident_id, id_number, caller):
    resident = visible(store.resident(tx, resident_id), caller,
                       ValidationFailed("unknown resident", {"resident_id": [f"no resident {resident_id}"]}),
                       ("community_code", "grid_code"))
    if resident["status"] != "active":
        raise ValidationFailed("the resident is not on the active register",
                               {"resident_id": [f"resident {resident_id} is {resident['status']}"]})
    if vault.open(resident["id_cipher"], residents.ID) != id_number:
        raise ValidationFailed("the resident is another person",
                               {"resident_id": [f"resident {resident_id} has a different ID number"]})


def appoint(tx, vault, data, caller, today=None):
    today = today or clock.today()
    d, errors = rules.check_worker(load(WorkerCreateSchema, data), today)
    _fail_on(errors, "the worker has invalid fields")
    residents.community(tx, d["community_code"], caller, grid_code=d.get("grid_code"))
    if d.get("resident_id") is not None:
        _check_resident_link(tx, vault, d["resident_id"], d["id_number"], caller)
    id_hash = vault.lookup(d["id_number"], ID)
    existing = store.active_appointment(tx, id_hash, d["role"])
    if existing is not None:
        where = (f"as worker {existing['id']} in community {existing['community_code']}"
                 if existing["community_code"].startswith(caller["scope"]) else "outside your scope")
        raise Conflict(f"this person is already an active {d['role']}", {"id_number": [f"already appointed {where}"]})
    if d["role"] in rules.SINGLE_SEATS:
        holder = store.seat_holder(tx, d["community_code"], d["role"])
        if holder is not None:
            raise Conflict(f"the community already has a {d['role']}", {"role": [
                f"community {d['community_code']} has an active {d['role']} (worker {holder['id']}); "
                "they must leave first"]})
    values = {**d, "resident_id": d.get("resident_id"), "grid_code": d.get("grid_code"),
              "id_cipher": vault.seal(d["id_number"], ID), "id_hash": id_hash,
              "phone_cipher": vault.seal(d["phone"], PHONE) if d["phone"] else None,
              "phone_hash": vault.lookup(d["phone"], PHONE) if d["phone"] else None}
    with unique_races(RACES):
        worker_id = store.add_worker(tx, values)
    store.add_worker_history(tx, worker_id, 1, "appointed", d["started_on"],
                             {k: d.get(k) for k in ("role", "community_code", "grid_code", "origin")}, caller["actor"])
    row = store.worker(tx, worker_id)
    tx.emit("worker_appointed", _event(row))
    tx.publish_facts("worker_appointed", [_fact("worker_appointed", row, d["started_on"], +1)])
    return _view(vault, row, full=True)


def get(tx, vault, worker_id, caller):
    row = _in_scope(tx, worker_id, caller)
    store.audit(tx, caller["actor"], "read", "worker", [(row["id"], row["community_code"])], tx.correlation_id)
    return _detail(tx, vault, row)


def search(tx, vault, query, caller):
    q = load(WorkerListQuerySchema, query)
    if q.get("community_code") and not q["community_code"].startswith(caller["scope"]):
        raise Forbidden(f"{q['community_code']} lies outside this token's scope {caller['scope']}",
                        {"community_code": [f"outside scope {caller['scope']}"]})
    nodes.queried(tx, q, "community_code")
    rows = store.list_workers(tx, under=caller["scope"], community_code=q.get("community_code"), role=q.get("role"),
                              origin=q.get("origin"), status=q["status"], after=q.get("after", 0), limit=q["limit"])
    store.audit(tx, caller["actor"], "list", "worker", [(r["id"], r["community_code"]) for r in rows],
                tx.correlation_id)
    items = [_view(vault, r, full=False) for r in rows]
    return {"items": items, "next": items[-1]["id"] if len(items) == q["limit"] else None}


def assess(tx, vault, worker_id, data, caller, today=None):
    """Record the year's assessment; `let_go` ends the appointment in the same transaction."""
    today = today or clock.today()
    d = load(AssessmentCreateSchema, data)
    assessed_on = d.get("assessed_on") or today
    row = _in_scope(tx, worker_id, caller, for_update=True)
    _fail_on(rules.check_assessment(row, d["year"], d["score"], assessed_on, today), "the assessment is not possible")
    done = store.assessment(tx, worker_id, d["year"])
    if done is not None:
        raise Conflict(f"{d['year']} is already assessed", {"year": [
            f"worker {worker_id} was assessed for {d['year']} on {done['assessed_on']}"]})
    with unique_races(RACES):
        store.add_assessment(tx, {**d, "worker_id": worker_id, "assessed_on": assessed_on, "note": d.get("note"),
                                  "actor": caller["actor"]})
    version = store.touch_worker(tx, worker_id)
    result = {"year": d["year"], "score": str(d["score"]), "outcome": d["outcome"],
              "assessed_on": assessed_on.isoformat()}
    store.add_worker_history(tx, worker_id, version, "assessed", assessed_on, result, caller["actor"])
    tx.emit("worker_assessed", {**_event(store.worker(tx, worker_id)), "assessment": result})
    tx.publish_facts("worker_assessed", [_fact("worker_assessed", row, assessed_on, +1, outcome=d["outcome"],
                                               year=d["year"], score_band=rules.score_band(d["score"]))])
    if d["outcome"] == "let_go":
        _end(tx, worker_id, row, assessed_on, rules.ASSESSMENT_REASON, {"year": d["year"]}, caller)
    # Masked: a change is not a read; GET (audited) shows the values in full.
    return _detail(tx, vault, store.worker(tx, worker_id), full=False)


def leave(tx, vault, worker_id, data, caller, today=None):
    today = today or clock.today()
    d = load(WorkerLeaveSchema, data)
    row = _in_scope(tx, worker_id, caller, for_update=True)
    _fail_on(rules.check_worker_leave(row, d["left_on"], today), "the worker cannot leave")
    _end(tx, worker_id, row, d["left_on"], d["reason"], {"note": d.get("note")}, caller)
    return _view(vault, store.worker(tx, worker_id), full=False)


def residence_ended(tx, resident, on, caller):
    """End the active appointments linked to a resident who died, in that same transaction.

    Called by residents._end with the resident's row after the change; each ends as a departure
    does (history, `worker_left` event and -1 fact) with reason died. Moving out of the street
    ends nothing: community workers often live outside the street they serve. Returns the
    workers' ids.
    """
    status = resident["status"]
    if status != "deceased":
        return []
    rows = store.active_workers_of_resident(tx, resident["id"])
    for row in rows:
        _fail_on(rules.check_residence_end(status, on, row["started_on"],
                                           f"the first day of worker {row['id']} ({row['started_on']})"),
                 f"the resident cannot be marked {status}")
    for row in rows:
        _end(tx, row["id"], row, on, rules.RESIDENCE_ENDED_REASONS[status], {"resident_id": resident["id"]}, caller)
    return [row["id"] for row in rows]


def _end(tx, worker_id, row, on, reason, detail, caller):
    version = store.end_worker(tx, worker_id, on, reason)
    store.add_worker_history(tx, worker_id, version, "left", on, {"reason": reason, **detail}, caller["actor"])
    tx.emit("worker_left", _event(store.worker(tx, worker_id)))
    tx.publish_facts("worker_left", [_fact("worker_left", row, on, -1, reason=reason)])
