"""Points accounts: opening them for people and organisations, reading them, and following the registry.

The registry owns who a person is; this service keeps on each account only what
rankings and scoping need (community, name, member category, party branch) and
refreshes it from the registry's events. `holders` is the registry seen through
one RPC, `account_holder(kind, id, caller)`, so tests can hand in a fake; `holders_of(ids, caller)`
is its `account_holders`, for many residents in one question.

`caller` is {"actor", "scope", "role", "organization_id"} from the gateway's token;
event handlers act as the instance itself (`system_caller`).
"""
from decimal import Decimal

from services.points import ledger, reported, rules, store
from services.points.schemas import (AccountListQuerySchema, PointsAccountOpenSchema, PointsAccountSchema,
                                     StatementLineSchema, StatementQuerySchema)
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed, load
from shared.nodes import known_in
from shared.scope import missing, under, visible  # noqa: F401  (evaluation uses `under` from here)

_account = PointsAccountSchema()
_lines = StatementLineSchema(many=True)


def system_caller(instance_code, name="points"):
    return {"actor": f"service:{name}", "scope": instance_code, "role": "service", "organization_id": None}


def not_for_leaders(caller, what):
    """An organisation's leader verifies its activities; people's accounts are the community's business."""
    if caller.get("role") == "organization_leader":
        raise Forbidden(f"an organisation's leader may not {what}",
                        {"role": ["organization_leader tokens reach their organisation's service records only"]})


def _holder_values(kind, holder):
    if kind == "person":
        return {"kind": "person", "resident_id": holder["resident_id"], "organization_id": None,
                "community_code": holder["community_code"], "name": holder["name"], "pseudonym": holder["pseudonym"],
                "member_category": holder["member_category"], "party_org_id": holder.get("party_org_id"),
                "party_org_name": holder.get("party_org_name")}
    return {"kind": "organization", "resident_id": None, "organization_id": holder["organization_id"],
            "community_code": holder["community_code"], "name": holder["name"], "pseudonym": None,
            "member_category": "organization", "party_org_id": None, "party_org_name": None}


def ensure(tx, holders, kind, ref_id, caller, field, holder=None):
    """The account of a resident or organisation, opened (once, even under a race) on first use.

    `holder` is the registry's answer on them if the caller asked already: a caller opening many
    accounts asks for all of them at once (`account_holders`), since every question asked with
    the transaction open costs the worker a whole re-run (shared/db.py).
    """
    row = tx.one(store.ACCOUNT_OF_RESIDENT if kind == "person" else store.ACCOUNT_OF_ORGANIZATION, (ref_id,))
    if row is not None:
        # An account outside the scope answers as its holder would: as a resident (or organisation) not there.
        return visible(row, caller, missing("resident" if kind == "person" else "organisation", ref_id, field)), False
    if holder is None:
        holder = holders(kind, ref_id, caller)  # raises the registry's NotFound, for one outside the scope too
    if kind == "person" and holder["status"] != "active":
        raise ValidationFailed("the resident is not on the active register",
                               {field: [f"resident {ref_id} is {holder['status']}"]})
    if kind == "organization" and holder["status"] not in ("filed", "active"):
        raise ValidationFailed("the organisation is not active",
                               {field: [f"organisation {ref_id} is {holder['status']}"]})
    values = _holder_values(kind, holder)
    row = tx.one(store.OPEN_ACCOUNT, values)
    if row is None:  # opened meanwhile by a concurrent request
        return tx.one(store.ACCOUNT_OF_RESIDENT if kind == "person" else store.ACCOUNT_OF_ORGANIZATION,
                      (ref_id,)), False
    tx.emit("points_account_opened", _event(row))
    return row, True


def _event(row):
    return {k: row[k] for k in ("id", "kind", "resident_id", "organization_id", "community_code", "member_category",
                                "status")}


def open_account(tx, holders, data, caller):
    not_for_leaders(caller, "open accounts")
    d = load(PointsAccountOpenSchema, data)
    if "resident_id" in d:
        row, opened = ensure(tx, holders, "person", d["resident_id"], caller, "resident_id")
    else:
        row, opened = ensure(tx, holders, "organization", d["organization_id"], caller, "organization_id")
    # An account open already is answered as it is, marked like a retried request's first result.
    return view(tx, row) if opened else {**view(tx, row), "replayed": True}


def account_in_scope(tx, account_id, caller, for_update=False):
    not_for_leaders(caller, "read or spend people's points")
    row = tx.one(store.ACCOUNT + (" FOR UPDATE" if for_update else ""), (account_id,))
    if row is not None and row["kind"] not in ("person", "organization"):
        row = None   # the ledger's own accounts (issuance, held, redeemed) are no one's to read or spend
    return visible(row, caller,
                   NotFound(f"no points account {account_id}", {"account_id": [f"no account {account_id}"]}))


def view(tx, row):
    """An account as the API shows it; a listing's rows bring their hours and holds along."""
    posted = row["posted_hours"] if "posted_hours" in row else tx.one(store.VERIFIED_HOURS, (row["id"],))["hours"]
    hours = Decimal(posted) + row["carried_hours"]
    held = row["held"] if "held" in row else tx.one(store.HELD, (row["id"],))["held"]
    return _account.dump({**row, "held": held, "verified_hours": hours, "stars": rules.stars(hours),
                          "hours_to_next_star": rules.next_star(hours)})


def get(tx, account_id, caller):
    return view(tx, account_in_scope(tx, account_id, caller))


def search(tx, query, caller, nodes=None):
    not_for_leaders(caller, "list accounts")
    q = load(AccountListQuerySchema, query)
    prefix = under(q, caller)
    if nodes is not None:
        known_in(nodes, q, "under")
    rows = tx.all(store.LIST_ACCOUNTS, {"under": prefix, "member_category": q.get("member_category"),
                                        "after": q["after"], "limit": q["limit"]})
    items = [view(tx, r) for r in rows]
    return {"items": items, "next": rows[-1]["id"] if len(rows) == q["limit"] else None}


def statement(tx, account_id, query, caller):
    q = load(StatementQuerySchema, query)
    row = account_in_scope(tx, account_id, caller)
    lines, nxt = ledger.statement(tx, account_id, q["after"], q["limit"])
    return {"account": view(tx, row), "lines": _lines.dump(lines), "next": nxt}


def require_active(row, field="account_id"):
    if row["status"] != "active":
        raise Conflict(f"account {row['id']} is frozen", {field: [f"account {row['id']} is frozen: its holder "
                                                                  "left the street or died"]})


# -- following the registry ------------------------------------------------------------------

def refresh(tx, holders, resident_id, instance_code):
    """Re-read a holder after a registry change (a move inside the street, a report, a placement)."""
    row = tx.one(store.ACCOUNT_OF_RESIDENT + " FOR UPDATE", (resident_id,))
    if row is None:
        return None
    holder = holders("person", resident_id, system_caller(instance_code))
    values = {**_holder_values("person", holder), "id": row["id"]}
    tx.execute(store.REFRESH_ACCOUNT, values)
    reported.restate(tx, row, {**row, **values})
    if values["community_code"] != row["community_code"]:
        tx.emit("points_account_moved", {**_event(row), "from_community_code": row["community_code"],
                                         "community_code": values["community_code"]})
    return row["id"]


def open_for_party_member(tx, holders, resident_id, instance_code):
    """A party member's report (报到) opens their account; a later report refreshes it.

    A report that arrives after the resident left (events can overtake each other) opens nothing.
    """
    try:
        row, opened = ensure(tx, holders, "person", resident_id, system_caller(instance_code), "resident_id")
    except ValidationFailed:
        return None
    if not opened:
        refresh(tx, holders, resident_id, instance_code)
    return row["id"]


def reactivate(tx, row):
    """A resident who left (or was frozen) is on this street's register again."""
    tx.execute(store.SET_STATUS, ("active", row["id"]))
    tx.emit("points_account_reactivated", {**_event(row), "status": "active"})


def freeze(tx, resident_id, why):
    row = tx.one(store.ACCOUNT_OF_RESIDENT + " FOR UPDATE", (resident_id,))
    if row is None or row["status"] == "frozen":
        return None
    tx.execute(store.SET_STATUS, ("frozen", row["id"]))
    tx.emit("points_account_frozen", {**_event(row), "status": "frozen", "why": why})
    return row
