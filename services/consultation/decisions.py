"""三上三下: a decision from a closed meeting's vote, its implementation tasks, and the published result.

A decision takes the option the meeting adopted (rules.option_tally), with who is
responsible, the budget and the deadline, and moves the item's matters from
deliberating to decided; the first task starts implementation; the result is
published (公示) once every task is done, and the matters wait for their raisers'
ratings to be settled.
"""
from services.consultation import matters as matters_mod
from services.consultation import rules, store
from services.consultation.deliberation import agenda_item_in_scope, meeting_in_scope, tally
from services.consultation.schemas import (DecisionCreateSchema, DecisionSchema, DecisionTaskCreateSchema,
                                           ResultPublishSchema, TaskProgressSchema)
from shared.errors import Conflict, ValidationFailed, load
from shared.scope import missing, visible

_decision = DecisionSchema()


def _move_matters(tx, item_id, to, actor, note=None):
    moved = []
    for m in tx.all(store.MATTERS_OF_ITEM + " FOR UPDATE", (item_id,)):
        if rules.matter_move(m["status"], to) is None:
            version = tx.one(store.SET_STATUS, {"status": to, "id": m["id"]})["version"]
            matters_mod.history(tx, m, version, to, note, actor)
            moved.append(tx.one(store.MATTER, (m["id"],)))
    return moved


def _in_scope(tx, decision_id, caller, for_update=False):
    return visible(tx.one(store.DECISION_FOR_UPDATE if for_update else store.DECISION, (decision_id,)), caller,
                   missing("decision", decision_id))


def view(tx, row):
    tasks = [{**t, "updates": tx.all(store.TASK_UPDATES, (t["id"],))} for t in tx.all(store.TASKS, (row["id"],))]
    return _decision.dump({**row, "tasks": tasks})


def decide(tx, data, caller, now):
    d = load(DecisionCreateSchema, data)
    item = agenda_item_in_scope(tx, d["agenda_item_id"], caller, for_update=True)
    meeting = meeting_in_scope(tx, d["meeting_id"], caller)
    if meeting["status"] != "closed":
        raise Conflict("decide from a closed meeting", {"meeting_id": [f"meeting {meeting['id']} is "
                                                                       f"{meeting['status']}: close it first"]})
    if item["status"] != "open":
        raise Conflict("the item is decided already", {"agenda_item_id": [f"agenda item {item['id']} is decided"]})
    result = tally(tx, meeting["id"], item["id"], caller)
    if result["adopted_option_id"] is None:
        raise Conflict("the meeting adopted no option", {"agenda_item_id": [result["why_none"]]})
    if d["deadline"] < now.date():
        raise ValidationFailed("the deadline has passed", {"deadline": ["must not be in the past"]})
    counts = next(o for o in result["options"] if o["option_id"] == result["adopted_option_id"])
    inserted = tx.one(store.ADD_DECISION, {"agenda_item_id": item["id"], "meeting_id": meeting["id"],
                                           "option_id": result["adopted_option_id"], "approve": counts["approve"],
                                           "oppose": counts["oppose"], "abstain": counts["abstain"],
                                           "attended": result["attended"], "responsible": d["responsible"],
                                           "budget": d.get("budget"), "deadline": d["deadline"],
                                           "actor": caller["actor"], "summary": d.get("summary")})
    if inserted is None:
        raise Conflict("the item is decided already", {"agenda_item_id": ["decided meanwhile"]})
    tx.execute(store.ITEM_DECIDED, (item["id"],))
    moved = _move_matters(tx, item["id"], "decided", caller["actor"])
    row = tx.one(store.DECISION, (inserted["id"],))
    tx.emit("decision_made", {"id": row["id"], "community_code": row["community_code"], "agenda_item_id": item["id"],
                              "meeting_id": meeting["id"], "option_id": row["option_id"],
                              "matter_ids": [m["id"] for m in moved],
                              "raiser_resident_ids": sorted({m["raiser_resident_id"] for m in moved
                                                             if m["raiser_resident_id"]}),
                              "deadline": row["deadline"].isoformat()})
    tx.publish_facts("decision_made", [matters_mod.fact("decision_made", m, now.date(),
                                                        approve=row["approve"], attended=row["attended"])
                                       for m in moved])
    return view(tx, row)


def add_task(tx, decision_id, data, caller):
    d = load(DecisionTaskCreateSchema, data)
    row = _in_scope(tx, decision_id, caller, for_update=True)
    if d.get("request_id"):
        first = tx.one(store.TASK_BY_REQUEST, (d["request_id"],))
        if first is not None:
            if first["decision_id"] != decision_id:
                raise Conflict("request id used for another decision's task", {"request_id": ["already used"]})
            return {**view(tx, row), "replayed": True}
    if row["published_at"] is not None:
        raise Conflict("the result is published", {"id": ["a published decision takes no new tasks"]})
    tx.one(store.ADD_TASK, (d.get("request_id"), decision_id, d["title"], d["responsible"], d["due_on"]))
    moved = _move_matters(tx, row["agenda_item_id"], "implementing", caller["actor"])
    if moved:
        tx.emit("implementation_started", {"decision_id": decision_id, "community_code": row["community_code"],
                                           "matter_ids": [m["id"] for m in moved]})
    return view(tx, row)


def progress(tx, task_id, data, caller):
    d = load(TaskProgressSchema, data)
    task = visible(tx.one(store.TASK_FOR_UPDATE, (task_id,)), caller,
                   missing("task", task_id))
    last = tx.one(store.LAST_TASK_UPDATE, (task_id,))
    if last is not None and (last["progress"], last["note"]) == (d["progress"], d["note"]):
        return {**view(tx, tx.one(store.DECISION, (task["decision_id"],))), "replayed": True}  # a retry
    if d["progress"] < task["progress"]:
        raise ValidationFailed("progress does not go back", {"progress": [f"is {task['progress']} already"]})
    tx.execute(store.SET_PROGRESS, (d["progress"], task_id))
    tx.execute(store.ADD_TASK_UPDATE, (task_id, d["progress"], d["note"], caller["actor"]))
    row = tx.one(store.DECISION, (task["decision_id"],))
    tx.emit("task_progressed", {"task_id": task_id, "decision_id": row["id"], "community_code": row["community_code"],
                                "progress": d["progress"]})
    return view(tx, row)


def publish(tx, decision_id, data, caller, now):
    """公示: the result goes public once every task is done; raisers are then asked to rate it."""
    d = load(ResultPublishSchema, data)
    row = _in_scope(tx, decision_id, caller, for_update=True)
    if row["published_at"] is not None:
        raise Conflict("published already", {"id": [f"published on {row['published_at']:%Y-%m-%d}"]})
    tasks = tx.all(store.TASKS, (decision_id,))
    unfinished = [t["id"] for t in tasks if t["progress"] < 100]
    if not tasks or unfinished:
        raise Conflict("the decision is not carried out yet",
                       {"id": [f"tasks not done: {unfinished}" if tasks else "no implementation task recorded"]})
    tx.execute(store.PUBLISH, (d["summary"], decision_id))
    moved = _move_matters(tx, row["agenda_item_id"], "published", caller["actor"], d["summary"])
    row = tx.one(store.DECISION, (decision_id,))
    tx.emit("result_published", {"decision_id": decision_id, "community_code": row["community_code"],
                                 "matter_ids": [m["id"] for m in moved],
                                 "raiser_resident_ids": sorted({m["raiser_resident_id"] for m in moved
                                                                if m["raiser_resident_id"]})})
    tx.publish_facts("result_published", [matters_mod.fact("result_published", m, now.date()) for m in moved])
    return view(tx, row)


def get(tx, decision_id, caller):
    return view(tx, _in_scope(tx, decision_id, caller))
