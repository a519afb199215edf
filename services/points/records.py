"""Service records: claimed or logged, then verified (posted to the ledger) or voided, or left to expire.

Posting is one code path for a single verification and a batch: lock the
records, check each can be posted by this caller under the rule in force on its
service day, apply the caps against what is already posted (rules.award_batch),
post one transfer per record from the community's issuance account, then mark
the records, write one `points_posted` event per record and one signed fact
batch, all in the caller's transaction.
"""
from datetime import timedelta
from decimal import Decimal

from services.points import accounts, ledger, reported, rules, store
from services.points.schemas import (RecordBatchVerifySchema, RecordListQuerySchema, RecordReverseSchema,
                                     RecordVerifySchema, RecordVoidSchema, ServiceRecordCreateSchema,
                                     ServiceRecordSchema)
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed, load
from shared.nodes import known_in
from shared.scope import first_of, in_scope, visible
from shared import clock

_record = ServiceRecordSchema()
SKEW = timedelta(minutes=5)      # clocks of phones and kiosks run a little fast
OLDEST_CLAIM = timedelta(days=366)


def _event(r, **extra):
    return {"id": r["id"], "account_id": r["account_id"], "resident_id": r["resident_id"],
            "community_code": r["community_code"], "category_code": r["category_code"],
            "served_on": r["served_on"].isoformat(), "hours": str(r["hours"]), "status": r["status"],
            "organization_id": r["organization_id"], **extra}


def _rule_on(tx, category_code, day, field="served_at"):
    row = tx.one(store.RULE_ON, (category_code, day))
    if row is None:
        raise ValidationFailed("no rule in force on that day",
                               {field: [f"category {category_code} has no rule in force on {day}"]})
    return rules.Rule.from_row(row)


def create(tx, holders, data, caller, pending_days, now=None):
    now = now or clock.now()
    d = load(ServiceRecordCreateSchema, data)
    if d.get("request_id"):
        first = tx.one(store.RECORD_BY_REQUEST, (d["request_id"],))
        if first is not None:
            return _replay(first, d, caller)
    category = tx.one(store.CATEGORY, (d["category_code"],))
    if category is None or not category["active"]:
        raise ValidationFailed("unknown category", {"category_code": [f"no active category {d['category_code']}"]})
    errors = {}
    if d["served_at"] > now + SKEW:
        errors["served_at"] = ["must not be in the future"]
    elif d["served_at"] < now - OLDEST_CLAIM:
        errors["served_at"] = ["service more than a year ago can no longer be claimed"]
    org = d.get("organization_id")
    if caller["role"] == "organization_leader" and org != caller["organization_id"]:
        errors["organization_id"] = [f"an organisation's leader records activities of organisation "
                                     f"{caller['organization_id']} only"]
    if errors:
        raise ValidationFailed("the service record has invalid fields", errors)
    day = rules.service_day(d["served_at"])
    _rule_on(tx, d["category_code"], day)
    # The organisation named must exist, lie in scope and still work: a dissolved or suspended one's
    # account, opened while it was active, takes no new record.
    organization = holders("organization", org, caller) if org is not None else None
    if organization is not None and organization["status"] not in ("filed", "active"):
        raise ValidationFailed("the organisation is not active",
                               {"organization_id": [f"organisation {org} is {organization['status']}"]})
    if "resident_id" in d:
        account, _ = accounts.ensure(tx, holders, "person", d["resident_id"], caller, "resident_id")
        if caller["role"] == "organization_leader":
            if org not in holders("person", d["resident_id"], caller).get("organization_ids", ()):
                raise ValidationFailed("not a member of the organisation",
                                       {"resident_id": [f"resident {d['resident_id']} is not a member of "
                                                        f"organisation {org}"]})
    else:
        account, _ = accounts.ensure(tx, holders, "organization", org, caller, "organization_id", organization)
    accounts.require_active(account, "resident_id" if "resident_id" in d else "organization_id")
    values = {"request_id": d.get("request_id"), "account_id": account["id"],
              "community_code": account["community_code"], "category_code": d["category_code"],
              "served_at": d["served_at"], "served_on": day, "hours": d["hours"], "description": d["description"],
              "links": d["links"], "organization_id": org, "source": d["source"], "recorded_by": caller["actor"],
              "expires_at": now + timedelta(days=pending_days)}
    inserted = tx.one(store.ADD_RECORD, values)
    if inserted is None:  # the same request id, committed meanwhile by a concurrent retry
        return _replay(tx.one(store.RECORD_BY_REQUEST, (d["request_id"],)), d, caller)
    row = tx.one(store.RECORD, (inserted["id"],))
    tx.emit(f"service_record_{d['source']}", _event(row, source=d["source"]))
    return _record.dump(row)


def _replay(first, d, caller):
    first_of(first, d["request_id"], caller)
    _leaders_own(first, caller, "request_id")
    same = (first["category_code"] == d["category_code"] and first["served_at"] == d["served_at"]
            and Decimal(first["hours"]) == d["hours"] and first["organization_id"] == d.get("organization_id")
            and (first["resident_id"] == d.get("resident_id") if "resident_id" in d else True))
    if not same:
        raise Conflict(f"request id {d['request_id']} was already used for a different record",
                       {"request_id": [f"already used by record {first['id']}"]})
    return {**_record.dump(first), "replayed": True}


def record_in_scope(tx, record_id, caller, for_update=False):
    row = visible(tx.one(store.RECORD + (" FOR UPDATE OF s" if for_update else ""), (record_id,)), caller,
                  NotFound(f"no service record {record_id}", {"id": [f"no record {record_id}"]}))
    _leaders_own(row, caller, "id")
    return row


def _leaders_own(row, caller, field):
    if caller.get("role") == "organization_leader" and row["organization_id"] != caller["organization_id"]:
        raise Forbidden(f"record {row['id']} is not of organisation {caller['organization_id']}'s activities",
                        {field: [f"not a record of organisation {caller['organization_id']}"]})


def get(tx, record_id, caller):
    return _record.dump(record_in_scope(tx, record_id, caller))


def search(tx, query, caller, nodes=None):
    q = load(RecordListQuerySchema, query)
    under = accounts.under(q, caller)
    if nodes is not None:
        known_in(nodes, q, "under")
    org = q.get("organization_id")
    if caller["role"] == "organization_leader":
        org = caller["organization_id"]
    rows = tx.all(store.LIST_RECORDS, {"under": under, "status": q.get("status"), "account_id": q.get("account_id"),
                                       "category_code": q.get("category_code"), "organization_id": org,
                                       "after": q["after"], "limit": q["limit"]})
    return {"items": [_record.dump(r) for r in rows], "next": rows[-1]["id"] if len(rows) == q["limit"] else None}


# -- posting ---------------------------------------------------------------------------------

def client_transfer_id(given, default):
    """Client-chosen ids live apart from the service's own (posting:…, hold:…, …), so neither can take the other's."""
    return f"client:{given}" if given else default


def verify(tx, record_id, data, caller, now=None):
    d = load(RecordVerifySchema, data)
    record_in_scope(tx, record_id, caller)
    tid = client_transfer_id(d.get("transfer_id"), f"posting:{record_id}")
    done = post(tx, [record_id], caller, {record_id: tid}, now, single=True)
    view = _record.dump(tx.one(store.RECORD, (record_id,)))
    return {**view, "replayed": True} if done["replayed"] else view


def verify_batch(tx, data, caller, now=None):
    d = load(RecordBatchVerifySchema, data)
    return post(tx, list(dict.fromkeys(d["record_ids"])), caller, {}, now)


def _check_postable(r, caller, now, rule):
    why = rules.record_move(r["status"], "posted")
    if why is None and r["expires_at"] <= now:
        why = f"the record expired on {r['expires_at']:%Y-%m-%d} without being verified"
    if why is None and r["account_status"] != "active":
        why = f"account {r['account_id']} is frozen: its holder left the street or died"
    if why is None:
        why = rules.may_verify(rule, caller["role"], caller.get("organization_id"), r["organization_id"])
        if why is None and caller["role"] == "organization_leader" and r["recorded_by"] == caller["actor"]:
            why = "an organisation's leader does not verify a record they recorded themselves"
        if why is not None:
            return "id", why, Forbidden
    return ("id", why, Conflict) if why else None


def _replays(tx, rows, transfer_ids):
    """Posted records asked to be posted again: a retried batch, or a verify retried with the same id."""
    out = []
    for r in rows:
        if r["status"] != "posted":
            continue
        wanted = transfer_ids.get(r["id"])
        if wanted is None or r["transfer_pk"] is None:
            out.append(r)
        elif tx.one(store.TRANSFER, (r["transfer_pk"],))["transfer_id"] == wanted:
            out.append(r)
    return out


def post(tx, record_ids, caller, transfer_ids, now=None, single=False):
    """Post the records, all or none: {posted, points, capped, records (what each posting gave), replayed
    (ids posted before)}. A refusal names `id` for a `single` verification, else each refused record."""
    now = now or clock.now()
    tx.execute(store.LOCK_ACCOUNTS_OF_RECORDS, (list(record_ids),))
    tx.execute(store.ALIGN_RECORDS, (list(record_ids),))
    # Records outside the caller's scope are missing to them, as each is to record_in_scope.
    rows = [r for r in tx.all(store.RECORDS_FOR_UPDATE, (record_ids,)) if in_scope(r["community_code"], caller)]
    found = {r["id"] for r in rows}
    missing = [i for i in record_ids if i not in found]
    if missing:
        raise NotFound(f"no service record {missing[:10]}", {"record_ids": [f"no record {missing[:10]}"]})
    replayed = _replays(tx, rows, transfer_ids)
    if single and replayed:
        return {"posted": 0, "points": 0, "capped": 0, "records": [], "replayed": [record_ids[0]]}
    replayed_ids = {r["id"] for r in replayed}
    todo = [r for r in rows if r["id"] not in replayed_ids]
    # Lock the people's accounts and the communities' issuance accounts, in id order, before reading
    # what is already posted: two verifications for one person then see each other under the caps,
    # and a departure (which locks the account to hand the balance over) cannot slip in between.
    issuance = {code: ledger.system_account(tx, "issuance", code, f"{code} 积分发放")
                for code in sorted({r["community_code"] for r in todo})}
    locked = {a["id"]: a for a in tx.all(store.LOCK_ACCOUNTS, (sorted({r["account_id"] for r in todo}
                                                                      | set(issuance.values())),))}
    todo = [{**r, "account_status": locked[r["account_id"]]["status"]} for r in todo]
    versions = {}
    for r in todo:
        key = (r["category_code"], r["served_on"])
        if key not in versions:
            versions[key] = _rule_on(tx, r["category_code"], r["served_on"], "record_ids")
    problems = {}
    worst = Conflict
    for r in todo:
        bad = _check_postable(r, caller, now, versions[(r["category_code"], r["served_on"])])
        if bad:
            field, why, kind = bad
            problems[str(r["id"])] = [why]
            worst = Forbidden if kind is Forbidden else worst
    if problems:
        if single:
            why = next(iter(problems.values()))
            raise worst(why[0], {"id": why})
        raise worst(f"{len(problems)} of {len(rows)} records cannot be posted", {"record_ids": problems})
    todo = [{**r, "rule_version": versions[(r["category_code"], r["served_on"])].version} for r in todo]
    awarded = _award(tx, todo, versions)
    items = []
    for r, (points, _) in zip(todo, awarded):
        if points == 0:
            continue
        code = r["community_code"]
        items.append({"transfer_id": transfer_ids.get(r["id"]) or f"posting:{r['id']}", "kind": "posting",
                      "debit_account": issuance[code], "credit_account": r["account_id"], "amount": points,
                      "service_record_id": r["id"], "memo": r["category_code"]})
    done = ledger.transfer(tx, items, caller["actor"])
    pk_of = {t["service_record_id"]: t["id"] for t in done.values()}
    tx.execute(store.POST_RECORDS, (caller["actor"], caller["role"], [r["id"] for r in todo],
                                    [r["rule_version"] for r in todo], [p for p, _ in awarded],
                                    [c for _, c in awarded], [pk_of.get(r["id"]) for r in todo]))
    fresh = [{**r, "status": "posted", "points": p, "capped_from": c, "transfer_pk": pk_of.get(r["id"])}
             for r, (p, c) in zip(todo, awarded)]
    tx.emit_many("points_posted", [_event(r, points=r["points"], capped_from=r["capped_from"],
                                          rule_version=r["rule_version"], transfer=r["transfer_pk"])
                                   for r in fresh])
    tx.publish_facts("points_posted", [reported.posting("points_posted", r, +1) for r in fresh])
    return {"posted": len(fresh), "points": sum(r["points"] for r in fresh),
            "capped": sum(1 for r in fresh if r["capped_from"] is not None),
            "records": [{"id": r["id"], "status": "posted", "points": r["points"], "capped_from": r["capped_from"],
                         "transfer": r["transfer_pk"]} for r in fresh],
            "replayed": [r["id"] for r in replayed]}


def _award(tx, todo, versions):
    if not todo:
        return []
    pairs = sorted({(r["account_id"], r["category_code"]) for r in todo})
    years = [r["served_on"].year for r in todo]
    day_totals, year_totals = {}, {}
    for t in tx.all(store.POSTED_TOTALS, ([a for a, _ in pairs], [c for _, c in pairs], min(years), max(years))):
        day_totals[(t["account_id"], t["category_code"], t["served_on"])] = t["points"]
        key = (t["account_id"], t["category_code"], t["served_on"].year)
        year_totals[key] = year_totals.get(key, 0) + t["points"]
    by_key = {(rule.category_code, rule.version): rule for rule in versions.values()}
    return rules.award_batch(todo, by_key, day_totals, year_totals)


# -- voiding, expiry and correction ----------------------------------------------------------

def void(tx, record_id, data, caller, now=None):
    d = load(RecordVoidSchema, data)
    r = record_in_scope(tx, record_id, caller, for_update=True)
    why = rules.record_move(r["status"], "voided")
    if why:
        raise Conflict(why, {"id": [why]})
    rule = _rule_on(tx, r["category_code"], r["served_on"], "id")
    why = rules.may_verify(rule, caller["role"], caller.get("organization_id"), r["organization_id"])
    if why:
        raise Forbidden(why, {"id": [why]})
    tx.execute(store.CLOSE_RECORD, {"status": "voided", "actor": caller["actor"], "role": caller["role"],
                                    "reason": d["reason"], "id": record_id})
    row = tx.one(store.RECORD, (record_id,))
    tx.emit("service_record_voided", _event(row, reason=d["reason"]))
    return _record.dump(row)


def expire_due(tx, limit=500):
    rows = tx.all(store.EXPIRE_DUE, (limit,))
    if rows:
        tx.emit_many("service_record_expired", [
            {"id": r["id"], "account_id": r["account_id"], "resident_id": r["resident_id"],
             "community_code": r["community_code"], "category_code": r["category_code"],
             "served_on": r["served_on"].isoformat(), "status": "expired"} for r in rows])
    return len(rows)


def reverse(tx, record_id, data, caller):
    """A correction: the posting is reversed by a new transfer, and the record's hours stop counting."""
    d = load(RecordReverseSchema, data)
    tx.execute(store.LOCK_ACCOUNTS_OF_RECORDS, ([record_id],))
    r = record_in_scope(tx, record_id, caller, for_update=True)
    tid = client_transfer_id(d.get("transfer_id"), f"reversal:{r['transfer_pk']}")
    if r["status"] == "reversed" and r["transfer_pk"] is not None:
        done = tx.one(store.REVERSAL_OF, (r["transfer_pk"],))
        if done is not None and done["transfer_id"] == tid:
            return {**_record.dump(r), "replayed": True}
    why = rules.record_move(r["status"], "reversed")
    if why:
        raise Conflict(why, {"id": [why]})
    reversal = None
    if r["transfer_pk"] is not None:
        reversal = ledger.reverse(tx, r["transfer_pk"], tid, d["reason"], caller["actor"])
    tx.execute(store.CLOSE_RECORD, {"status": "reversed", "actor": caller["actor"], "role": caller["role"],
                                    "reason": d["reason"], "id": record_id})
    row = tx.one(store.RECORD, (record_id,))
    tx.emit("points_reversed", _event(row, points=r["points"], reason=d["reason"],
                                      transfer=reversal["id"] if reversal else None))
    # Dated like the posting it cancels, so a roll-up per period nets out where the points were counted.
    tx.publish_facts("points_reversed", [reported.posting("points_reversed", r, -1)])
    return _record.dump(row)
