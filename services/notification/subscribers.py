"""Subscribers: the street's residents as the registry's events describe them, kept in step.

Every resident event carries the record's version, and a subscriber row only ever moves forward:
an event delivered twice, or overtaken by a newer one, changes nothing. Bulk imports arrive as
`residents_imported` events of up to 500 residents and are applied in one statement. Party
membership adds or removes the `party_member` role used to target notices.
"""
from services.notification import store
from shared.errors import ValidationFailed

ROLE_EVENTS = {"party_member_reported": ("party_member", True), "party_member_registered": ("party_member", True),
               "party_member_withdrawn": ("party_member", False)}


def _values(r):
    return {"id": r["id"], "name": r["name"], "community_code": r["community_code"],
            "grid_code": r.get("grid_code"), "household_id": r.get("household_id"), "tags": list(r.get("tags") or []),
            "roles": [], "status": r["status"], "version": r["version"]}


def apply_resident(tx, payload):
    """A resident event (registered, updated, moved, left, died): True if it changed the row."""
    return tx.execute(store.UPSERT_SUBSCRIBER, _values(payload)).rowcount == 1


def apply_import(tx, payload):
    """A `residents_imported` event: up to 500 residents, applied in one pipelined round."""
    rows = [_values(r) for r in payload["residents"]]
    with tx.conn.cursor() as cur:
        cur.executemany(store.UPSERT_SUBSCRIBER, rows)
    return len(rows)


def apply_role(tx, event_type, payload):
    role, on = ROLE_EVENTS[event_type]
    return tx.execute(store.SET_ROLE, {"on": on, "role": role, "id": payload["resident_id"]}).rowcount == 1


def reach(tx, target):
    """How many active subscribers a target reaches, per community (before anything is sent)."""
    if not target.get("prefix") or not str(target["prefix"]).isdigit():
        raise ValidationFailed("a target needs a node-code prefix", {"prefix": ["digits of a node code"]})
    rows = tx.all(store.COUNT_TARGET, {"prefix": target["prefix"], "tags": list(target.get("tags") or []),
                                       "roles": list(target.get("roles") or [])})
    return {r["community_code"]: r["n"] for r in rows}

