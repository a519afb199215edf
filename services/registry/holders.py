"""Who a points account belongs to: the registry's answer to the points and consultation services.

The points service keeps only what rankings and scoping need; it asks here, by
RPC, for a resident's or an organisation's current standing (consultation asks
the same of a matter's raiser or a meeting's roster), one at a time or many at once. A resident is a
party member while not withdrawn, else a volunteer while in a volunteer team,
else a resident. Reads on behalf of a person's token are audited like any other
read of a personal record; the service's own look-ups (from events) are not.
"""
import unicodedata

from services.registry import store
from services.registry.residency import is_in_scope
from services.registry.residents import ID, PHONE
from shared.errors import ValidationFailed
from shared.scope import missing, visible

def member_category(row):
    if row["report_status"] in ("unreported", "reported"):
        return "party_member"
    return "volunteer" if row["volunteer"] else "resident"


def _person(vault, row):
    in_party = row["report_status"] in ("unreported", "reported")
    return {"resident_id": row["resident_id"], "name": row["name"], "community_code": row["community_code"],
            "grid_code": row["grid_code"], "status": row["status"], "pseudonym": row["pseudonym"],
            "member_category": member_category(row),
            "party_org_id": row["party_org_id"] if in_party else None,
            "party_org_name": row["party_org_name"] if in_party else None,
            "organization_ids": list(row["organization_ids"]),
            "handover_key": vault.handover(vault.open(row["id_cipher"], ID)).hex()}


def account_holder(tx, vault, kind, ref_id, caller):
    if kind == "person":
        row = visible(store.account_holder(tx, ref_id), caller,
                      missing("resident", ref_id, "resident_id"),
                      ("community_code", "grid_code"))
        if not caller["actor"].startswith("service:"):
            store.audit(tx, caller["actor"], "read", "resident", [(ref_id, row["community_code"])], tx.correlation_id)
        return _person(vault, row)
    if kind == "organization":
        row = visible(store.organization(tx, ref_id), caller,
                      missing("organisation", ref_id, "organization_id"))
        return {"organization_id": row["id"], "name": row["name"], "community_code": row["community_code"],
                "status": row["status"], "category": row["category"]}
    raise ValidationFailed("unknown holder kind", {"kind": ["must be person or organization"]})


MAX_HOLDERS = 1000


def account_holders(tx, vault, resident_ids, caller):
    """`account_holder("person", …)` for many residents in one call, with the same scope rule and audit.

    A caller that needs many residents (a meeting's roster, a timer matching handovers) asks once
    instead of once each: every call it makes with its transaction open costs it a whole re-run
    (shared/db.py). Nothing is refused as a whole for one resident: the answer says, per id, who is
    on the register within the caller's scope ("holders", keyed by the id as a string, as JSON keys
    are), and who is not ("not_found"), so the caller can name each of its own fields. A resident
    outside the caller's scope is "not_found" too, as `account_holder` answers them as missing: the
    answer must not tell which ids exist beyond the caller's reach.
    """
    try:
        ids = sorted({int(i) for i in resident_ids})
    except (TypeError, ValueError):
        raise ValidationFailed("bad resident ids", {"resident_ids": ["must be whole numbers"]})
    if len(ids) > MAX_HOLDERS:
        raise ValidationFailed("too many residents at once", {"resident_ids": [f"at most {MAX_HOLDERS}"]})
    rows = {r["resident_id"]: r for r in store.account_holders(tx, ids)} if ids else {}
    reached = [r for r in rows.values() if is_in_scope(r["community_code"], caller["scope"])
               or is_in_scope(r["grid_code"], caller["scope"])]
    if reached and not caller["actor"].startswith("service:"):
        store.audit(tx, caller["actor"], "read", "resident", [(r["resident_id"], r["community_code"]) for r in reached],
                    tx.correlation_id)
    holders = {str(r["resident_id"]): _person(vault, r) for r in reached}
    return {"holders": holders, "not_found": [i for i in ids if str(i) not in holders]}


def residents_by_handover_keys(tx, keys):
    """{handover key (hex): resident id} for the keys that name someone on the active register."""
    try:
        raw = [bytes.fromhex(k) for k in keys]
    except (TypeError, ValueError):
        raise ValidationFailed("bad handover key", {"keys": ["must be hex strings"]})
    return {bytes(r["handover_hash"]).hex(): r["id"] for r in store.residents_by_handover(tx, raw)}


MAX_TEXT = 4000


def names_in(tx, text, under):
    """{"found": true} if the text names anyone on the register under `under` (a street, say), in any
    status: the consultation service's check of a reason that is to leave the street. The answer says
    only whether, never who, so nothing personal comes back for asking."""
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise ValidationFailed("bad text", {"text": [f"a string of at most {MAX_TEXT} characters"]})
    if not (isinstance(under, str) and under.isascii() and under.isdigit() and len(under) >= 6):
        raise ValidationFailed("bad node code", {"under": ["a node code of 6 digits or more"]})
    return {"found": bool(store.names_in(tx, folded(text), under))}


def folded(text):
    """The text as names are compared with it (store.NAMES_IN folds the names alike): compatibility
    forms folded, lower case, no spaces, invisible characters or the dots inside names such as 阿依古丽·买买提."""
    s = unicodedata.normalize("NFKC", text).lower()
    return "".join(c for c in s if not (c.isspace() or unicodedata.category(c) in ("Cf", "Cc") or c in "·•・."))


MAX_CONTACTS = 1000


def contacts(tx, vault, resident_ids):
    """Phones of active residents for the notification service's SMS, audited as reads by "notification".

    The phone stays in the street instance: the notification service seals it again before keeping it.
    """
    ids = sorted({int(i) for i in resident_ids})
    if len(ids) > MAX_CONTACTS:
        raise ValidationFailed("too many residents at once", {"resident_ids": [f"at most {MAX_CONTACTS}"]})
    rows = store.phones(tx, ids)
    store.audit(tx, "service:notification", "contact", "resident", [(r["id"], r["community_code"]) for r in rows],
                tx.correlation_id)
    return {str(r["id"]): vault.open(r["phone_cipher"], PHONE) for r in rows}
