"""Use cases on residents and households: register, read, search, correct, move, leave, die.

Each runs in the caller's transaction (`tx`): the change, its history row, the
domain event for this instance's services and the de-identified fact for the
levels above commit together or not at all. `caller` is {"actor", "scope"}: the
scope is the node-code prefix of the caller's token, checked here against the
record itself because only the registry knows where a resident lives.

Resident facts carry a `delta` on the head-count of their node and dimensions,
so a roll-up is the sum of deltas: registration +1, departure or death -1, a
move -1 at the old community and +1 at the new, a correction -1 with the old
dimensions and +1 with the new.

Every resident fact is dated the day the register changed (the instance's today),
never the effective day the clerk enters: a departure or death is often recorded
weeks after it happened, and dating its -1 back while the registration's +1 is
dated when it was recorded gave negative stocks on the days between. So the
roll-ups' stock on any past day is the register as it stood at the end of that
day; the effective days stay on the register and in its history. The age is sent
as the birth cohort (shared.facts.age_band_of), not as a band, for the same reason.
"""
from datetime import date

from services.registry import identity, nodes, organizations, party, residency, store, workers
from shared.protect import mask_id, mask_phone
from services.registry.schemas import (AuditEntrySchema, AuditQuerySchema, ResidentChangeSchema,
                                       ResidentCreateSchema, ResidentDeathSchema, ResidentLeaveSchema,
                                       ResidentListQuerySchema, ResidentMoveSchema, ResidentSchema,
                                       ResidentUpdateSchema)
from shared import facts
from shared.db import unique_races
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed, load
from shared.scope import visible
from shared import clock

ID, PHONE = "resident.id_number", "resident.phone"
_resident = ResidentSchema()
_history = ResidentChangeSchema(many=True)
_audit = AuditEntrySchema(many=True)


def _forbid(code, caller):
    raise Forbidden(f"{code} lies outside this token's scope {caller['scope']}",
                    {"community_code": [f"outside scope {caller['scope']}"]})


def community(tx, code, caller, field="community_code", grid_code=None):
    """The active community `code`, inside the caller's scope; its grid is checked too."""
    node = store.get(tx, code)
    if node is None or node.level != "community":
        raise ValidationFailed("unknown community", {field: [f"{code} is not a community of this street"]})
    if node.valid_to is not None:
        raise ValidationFailed("the community is retired",
                               {field: [f"{code} ({node.name}) was retired on {node.valid_to}"]})
    if not code.startswith(caller["scope"]) and not (grid_code or "").startswith(caller["scope"]):
        _forbid(code, caller)
    if grid_code:
        grid = store.get(tx, grid_code)
        if grid is None or grid.level != "grid" or grid.parent_code != code or grid.valid_to is not None:
            raise ValidationFailed("unknown grid", {"grid_code": [f"{grid_code} is not an active grid of {code}"]})
    if grid_code and not grid_code.startswith(caller["scope"]):
        _forbid(grid_code, caller)
    return node


def place(tx, d):
    """(household row or None) for the placement fields of a registration or move."""
    room_id = None
    if d.get("room"):
        room_id = store.add_room(tx, d["community_code"], d.get("grid_code"), d["building"], d["unit"], d["room"])
    household = None
    if d.get("household_no"):
        household = store.household_by_no(tx, d["household_no"])
        if household is not None:
            if household["community_code"] != d["community_code"]:
                raise ValidationFailed("the household is in another community", {"household_no": [
                    f"{d['household_no']} belongs to community {household['community_code']}"]})
            if room_id is not None and household["room_id"] not in (None, room_id):
                raise ValidationFailed("the household lives at another address",
                                       {"room": [f"{d['household_no']} is registered at another room"]})
    elif room_id is not None:
        household = store.household_in_room(tx, room_id)
    if household is None and (d.get("household_no") or room_id is not None):
        household = store.add_household(tx, d.get("household_no"), d["community_code"], room_id)
    return household


# Two requests racing past the checks above meet the database's unique indexes; answer as the checks would.
RACES = {"residents_one_active_person": ("id_number", "this person was registered meanwhile"),
         "households_household_no_key": ("household_no", "a household with this number was registered meanwhile"),
         "residents_one_head": ("relation", "the household got a head meanwhile")}


def _check_head(tx, household, relation, resident_id=None):
    """Refuse a second head: a household has one active member with relation `self`."""
    if household is None or relation != "self" or household["head_resident_id"] in (None, resident_id):
        return
    head = store.resident(tx, household["head_resident_id"])
    if head is not None and head["status"] == "active":
        raise Conflict("the household already has a head", {"relation": [
            f"household {household['household_no']} is headed by resident {head['id']}"]})


def _seat(tx, household, relation, resident_id):
    if household is not None and relation == "self":
        store.set_head(tx, household["id"], resident_id)


def _view(vault, row, full, today=None):
    id_number = vault.open(row["id_cipher"], ID)
    phone = vault.open(row["phone_cipher"], PHONE) if row["phone_cipher"] else None
    household = None
    if row["household_id"] is not None:
        household = {"id": row["household_id"], "household_no": row["household_no"], "address": row["address"]}
    return _resident.dump({
        **row, "id_number": id_number if full else mask_id(id_number),
        "phone": phone if full or phone is None else mask_phone(phone),
        "age": identity.age_on(row["birth_date"], today or clock.today()), "household": household})


def _event(row):
    """The domain event view: no ID number or phone (those stay sealed; services ask by RPC)."""
    keys = ("id", "name", "sex", "birth_date", "community_code", "grid_code", "household_id", "relation",
            "residence_type", "tags", "moved_in", "status", "status_on", "pseudonym", "version")
    return {k: (row[k].isoformat() if isinstance(row[k], date) else row[k]) for k in keys}


def _fact(fact_type, row, today, delta, node=None, **extra):
    """A resident fact, dated `today`: the day the register changed (see the module's docstring)."""
    return facts.fact(fact_type, node or row["community_code"], today, delta=delta,
                      **residency.fact_dims(row), **extra)


def _values_or_fail(d, today):
    clean, errors = residency.check_resident(d, today)
    if errors:
        raise ValidationFailed("the resident has invalid fields", errors)
    return clean


def register(tx, vault, data, caller, today=None):
    today = today or clock.today()
    d = _values_or_fail(load(ResidentCreateSchema, data), today)
    community(tx, d["community_code"], caller, grid_code=d.get("grid_code"))
    id_hash = vault.lookup(d["id_number"], ID)
    existing = store.active_by_id_hash(tx, id_hash)
    if existing is not None:
        raise Conflict("this person is already registered in this street", {"id_number": [
            residency.already_on_register({**existing, "status": "active"}, caller["scope"])]})
    dead = store.deceased_by_id_hash(tx, id_hash)
    if dead is not None:
        raise Conflict("this person is recorded as deceased", {"id_number": [
            residency.already_on_register({**dead, "status": "deceased"}, caller["scope"])]})
    with unique_races(RACES):
        household = place(tx, d)
    _check_head(tx, household, d.get("relation"))
    values = {**d, "id_cipher": vault.seal(d["id_number"], ID), "id_hash": id_hash,
              "handover_hash": vault.handover(d["id_number"]),
              "phone_cipher": vault.seal(d["phone"], PHONE) if d["phone"] else None,
              "phone_hash": vault.lookup(d["phone"], PHONE) if d["phone"] else None,
              "grid_code": d.get("grid_code"), "household_id": household["id"] if household else None,
              "relation": d.get("relation") if household else None, "moved_in": d.get("moved_in"),
              "pseudonym": vault.pseudonym(d["id_number"])}
    with unique_races(RACES):
        resident_id = store.add_resident(tx, values)
    _seat(tx, household, values["relation"], resident_id)
    store.add_history(tx, resident_id, 1, "registered", d.get("moved_in") or today,
                      {"community_code": d["community_code"], "household_id": values["household_id"]},
                      caller["actor"])
    row = store.resident(tx, resident_id)
    tx.emit("resident_registered", _event(row))
    tx.publish_facts("resident_registered", [_fact("resident_registered", row, today, +1)])
    return _view(vault, row, full=True, today=today)


def _in_scope(tx, resident_id, caller, for_update=False):
    return visible(store.resident(tx, resident_id, for_update=for_update), caller,
                   NotFound(f"resident {resident_id} does not exist", {"id": [f"no resident {resident_id}"]}),
                   ("community_code", "grid_code"))


def get(tx, vault, resident_id, caller):
    row = _in_scope(tx, resident_id, caller)
    store.audit(tx, caller["actor"], "read", "resident", [(row["id"], row["community_code"])], tx.correlation_id)
    return {**_view(vault, row, full=True), "history": _history.dump(store.resident_history(tx, resident_id))}


def search(tx, vault, query, caller):
    q = load(ResidentListQuerySchema, query)
    under = q.get("under") or caller["scope"]
    if not under.startswith(caller["scope"]):
        raise Forbidden(f"{under} lies outside this token's scope {caller['scope']}",
                        {"under": [f"outside scope {caller['scope']}"]})
    nodes.queried(tx, q, "under")
    hashes = {}
    for field, purpose in (("id_number", ID), ("phone", PHONE)):
        hashes[field] = None
        if q.get(field):
            try:
                value = (identity.parse_id_number(q[field], clock.today()).number if field == "id_number"
                         else identity.normalize_phone(q[field]))
            except ValueError as exc:
                raise ValidationFailed("the search has invalid fields", {field: [str(exc)]})
            hashes[field] = vault.lookup(value, purpose)
    rows = store.list_residents(tx, under=under, status=q["status"], tag=q.get("tag"),
                                residence_type=q.get("residence_type"), name=q.get("name"),
                                id_hash=hashes["id_number"], phone_hash=hashes["phone"],
                                household_id=q.get("household_id"), building=q.get("building"),
                                after=q.get("after", 0), limit=q["limit"])
    store.audit(tx, caller["actor"], "list", "resident", [(r["id"], r["community_code"]) for r in rows],
                tx.correlation_id)
    items = [_view(vault, r, full=False) for r in rows]
    return {"items": items, "next": items[-1]["id"] if len(items) == q["limit"] else None}


def update(tx, vault, resident_id, data, caller, today=None):
    today = today or clock.today()
    d = load(ResidentUpdateSchema, data)
    row = _in_scope(tx, resident_id, caller, for_update=True)
    errors = residency.check_status_change(row, today, today)
    if errors:
        raise ValidationFailed("the resident cannot change", errors)
    if "phone" in d and d["phone"]:
        try:
            d["phone"] = identity.normalize_phone(d["phone"])
        except identity.PhoneError as exc:
            raise ValidationFailed("the resident has invalid fields", {"phone": [str(exc)]})
    if d.get("grid_code"):
        community(tx, row["community_code"], caller, grid_code=d["grid_code"])
    old_phone = vault.open(row["phone_cipher"], PHONE) if row["phone_cipher"] else None
    new = {"name": d.get("name", row["name"]), "residence_type": d.get("residence_type", row["residence_type"]),
           "tags": sorted(set(d.get("tags", row["tags"]))), "grid_code": d.get("grid_code", row["grid_code"]),
           "phone": d.get("phone", old_phone)}
    changed = sorted(k for k in new if new[k] != (old_phone if k == "phone" else
                                                   sorted(row[k]) if k == "tags" else row[k]))
    if not changed:
        raise ValidationFailed("nothing changes", {"_schema": ["every field given already has that value"]})
    version = store.update_resident(tx, {
        **new, "id": resident_id, "phone_cipher": vault.seal(new["phone"], PHONE) if new["phone"] else None,
        "phone_hash": vault.lookup(new["phone"], PHONE) if new["phone"] else None})
    # History names what changed; it never copies a phone into a readable column.
    detail = {k: ("(changed)" if k == "phone" else {"from": row[k], "to": new[k]}) for k in changed}
    store.add_history(tx, resident_id, version, "updated", today, detail, caller["actor"])
    after = store.resident(tx, resident_id)
    tx.emit("resident_updated", {**_event(after), "changed": changed})
    if {"residence_type", "tags", "grid_code"} & set(changed):
        tx.publish_facts("resident_updated", [_fact("resident_updated", row, today, -1),
                                              _fact("resident_updated", after, today, +1)])
    # A change answers with the record masked, as lists do: full values are a read, and reads are audited.
    return _view(vault, after, full=False, today=today)


def move(tx, vault, resident_id, data, caller, today=None):
    """A move to another community of this street (and optionally another household)."""
    today = today or clock.today()
    d = load(ResidentMoveSchema, data)
    row = _in_scope(tx, resident_id, caller, for_update=True)
    errors = residency.check_status_change(row, d["effective"], today)
    _, placement_errors = residency.check_resident({**d, "id_number": None, "tags": []}, today)
    errors.update({k: v for k, v in placement_errors.items() if k in ("grid_code", "relation", "building")})
    if errors:
        raise ValidationFailed("the move is not possible", errors)
    if d["community_code"] == row["community_code"] and not (d.get("household_no") or d.get("room")):
        raise ValidationFailed("nothing moves", {"community_code": [
            "already lives there; give a household or address to move within the community"]})
    community(tx, d["community_code"], caller, grid_code=d.get("grid_code"))
    with unique_races(RACES):
        household = place(tx, d)
    if household is not None and household["id"] == row["household_id"]:
        raise ValidationFailed("nothing moves", {"household_no": ["already a member of that household"]})
    _check_head(tx, household, d.get("relation"), resident_id)
    if row["relation"] == "self":
        store.clear_head(tx, resident_id)
    with unique_races(RACES):
        version = store.move_resident(tx, {"id": resident_id, "community_code": d["community_code"],
                                           "grid_code": d.get("grid_code"),
                                           "household_id": household["id"] if household else None,
                                           "relation": d.get("relation") if household else None,
                                           "effective": d["effective"]})
    _seat(tx, household, d.get("relation") if household else None, resident_id)
    detail = {"from": {"community_code": row["community_code"], "household_id": row["household_id"]},
              "to": {"community_code": d["community_code"], "household_id": household["id"] if household else None},
              "reason": d.get("reason")}
    store.add_history(tx, resident_id, version, "moved", d["effective"], detail, caller["actor"])
    after = store.resident(tx, resident_id)
    tx.emit("resident_moved", {**_event(after), "from_community_code": row["community_code"],
                               "from_household_id": row["household_id"]})
    if after["community_code"] != row["community_code"] or after["grid_code"] != row["grid_code"]:
        tx.publish_facts("resident_moved", [_fact("resident_moved", row, today, -1),
                                            _fact("resident_moved", after, today, +1)])
    # A change answers with the record masked, as lists do: full values are a read, and reads are audited.
    return _view(vault, after, full=False, today=today)


def _end(tx, vault, resident_id, caller, status, change, event, on, detail, today):
    row = _in_scope(tx, resident_id, caller, for_update=True)
    errors = residency.check_status_change(row, on, today, "effective" if status == "left" else "date_of_death")
    if errors:
        raise ValidationFailed(f"the resident cannot be marked {status}", errors)
    if row["relation"] == "self":
        store.clear_head(tx, resident_id)
    version = store.end_residence(tx, resident_id, status, on)
    store.add_history(tx, resident_id, version, change, on, detail, caller["actor"])
    after = store.resident(tx, resident_id)
    tx.emit(event, {**_event(after), **{k: v for k, v in detail.items() if k != "note"}})
    tx.publish_facts(event, [_fact(event, row, today, -1)])
    party.residence_ended(tx, after, on, caller, today)
    organizations.residence_ended(tx, after, on, caller, today)
    workers.residence_ended(tx, after, on, caller)
    # A change answers with the record masked, as lists do: full values are a read, and reads are audited.
    return _view(vault, after, full=False, today=today)


def leave(tx, vault, resident_id, data, caller, today=None):
    """Moving out of the street: the record stays, marked left, with where they went."""
    d = load(ResidentLeaveSchema, data)
    return _end(tx, vault, resident_id, caller, "left", "left", "resident_left", d["effective"],
                {"destination": d.get("destination"), "reason": d.get("reason")}, today or clock.today())


def die(tx, vault, resident_id, data, caller, today=None):
    d = load(ResidentDeathSchema, data)
    return _end(tx, vault, resident_id, caller, "deceased", "died", "resident_died", d["date_of_death"],
                {"note": d.get("note")}, today or clock.today())


def household(tx, vault, household_id, caller):
    h = visible(store.household(tx, household_id), caller,
                NotFound(f"household {household_id} does not exist", {"id": [f"no household {household_id}"]}))
    members = store.list_residents(tx, under=h["community_code"], status="active", tag=None, residence_type=None,
                                   name=None, id_hash=None, phone_hash=None, household_id=household_id,
                                   building=None, after=0, limit=500)
    store.audit(tx, caller["actor"], "read", "resident", [(r["id"], r["community_code"]) for r in members],
                tx.correlation_id)
    address = store.address_of(tx, h["room_id"]) if h["room_id"] else None
    return {"id": h["id"], "household_no": h["household_no"], "community_code": h["community_code"],
            "address": address, "head_resident_id": h["head_resident_id"],
            "members": [_view(vault, r, full=False) for r in members]}


def audit_log(tx, query, caller):
    """The audit trail of reads of records inside the caller's scope (a community sees its own)."""
    q = load(AuditQuerySchema, query)
    rows = store.list_audit(tx, scope=caller["scope"], actor=q.get("actor"), record_type=q.get("record_type"),
                            record_id=q.get("record_id"), since=q.get("since"), until=q.get("until"),
                            after=q.get("after", 0), limit=q["limit"])
    items = _audit.dump(rows)
    return {"items": items, "next": items[-1]["id"] if len(items) == q["limit"] else None}
