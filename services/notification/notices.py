"""Targeted notices, organisations' notices, the in-app inbox, and receipts from providers.

- A targeted notice goes to the residents of an area, narrowed by care tags or roles (all party
  members of a street; elderly people living alone in one community). Its request id is its
  idempotency key: sending it again returns the first notice and reaches nobody twice.
- An organisation's leader (or a worker of its community) notifies the organisation's members.
- The inbox is a channel like the others: its deliveries are delivered when the sender passes,
  listed newest first with the text rendered in the resident's language, and marked read.
- A provider reports what became of a message (delivered, failed, read) by posting receipts
  signed with its receipt secret; a receipt moves a delivery only forward (rules.DELIVERY_MOVES).
"""
import hashlib
import json

from services.notification import channels, fanout, rules, sender, store, subscribers
from services.notification.sender import clean
from services.notification.broadcasts import area, rollup
from services.notification.schemas import (InboxQuerySchema, NoticeCreateSchema, OrganizationNoticeCreateSchema,
                                           ReceiptsSchema)
from shared.errors import Forbidden, NotFound, Unauthorized, ValidationFailed, load
from shared.scope import in_scope


def _key(caller, request_id):
    """A notice's idempotency key: the request id within its author's own (one client's retries)."""
    author = hashlib.sha256(caller["actor"].encode()).hexdigest()[:16]
    return f"notice:{author}:{request_id}"


def targeted(tx, nodes, data, caller, now, digest_hour):
    d = load(NoticeCreateSchema, data)
    area(nodes, d["prefix"], caller)
    notice = {"trigger_key": _key(caller, d["request_id"]), "kind": "targeted", "category": d["category"],
              "priority": d["priority"], "template_code": "notice", "scope_code": d["prefix"],
              "context": {"title": d["title"], "message": d["message"]},
              "target": {"prefix": d["prefix"], "tags": d["tags"], "roles": d["roles"]}, "created_by": caller["actor"]}
    audience = {"prefix": d["prefix"], "tags": d["tags"], "roles": d["roles"]}
    notice_id, added, replayed = fanout.record(tx, notice, audience, d["channels"], now, digest_hour)
    return {**get(tx, notice_id, caller), "deliveries_added": added, "replayed": replayed}


def organization_notice(tx, organizations, organization_id, data, caller, now, digest_hour):
    if caller.get("role") == "organization_leader" and caller.get("organization_id") != organization_id:
        raise Forbidden("a leader notifies their own organisation's members",
                        {"organization_id": ["not the organisation this token leads"]})
    d = load(OrganizationNoticeCreateSchema, data)
    org = organizations(organization_id, caller)  # NotFound from the registry, for one outside the scope too
    if org.get("status") == "dissolved":
        # A dissolution ends every membership: the notice would reach no one, and say nothing of it.
        raise ValidationFailed("the organisation is dissolved", {"organization_id": [
            f"organisation {organization_id} was dissolved on {org.get('status_on')}"]})
    notice = {"trigger_key": _key(caller, d["request_id"]), "kind": "targeted", "category": "organizations",
              "priority": "normal", "template_code": "organization_notice", "scope_code": org["community_code"],
              "context": {"organization": org["name"], "notice": d["notice"]},
              "target": {"organization_id": organization_id}, "created_by": caller["actor"]}
    audience = {"prefix": "", "organization_id": organization_id}
    notice_id, added, replayed = fanout.record(tx, notice, audience, d["channels"], now, digest_hour)
    return {**get(tx, notice_id, caller), "deliveries_added": added, "replayed": replayed}


def get(tx, notice_id, caller):
    row = tx.one(store.NOTICE, (notice_id,))
    if row is None or not in_scope(row["scope_code"], caller):
        raise NotFound(f"no notice {notice_id}", {"notice_id": [f"no notice {notice_id}"]})
    return {**row, "created_at": row["created_at"].isoformat(), "rollup": rollup(tx, notice_id)}


# -- the inbox ---------------------------------------------------------------------------------------

def inbox(tx, resident_id, query, caller):
    q = load(InboxQuerySchema, query)
    subscribers.subscriber(tx, resident_id, caller)
    rows = tx.all(store.INBOX, {"resident_id": resident_id, "unread": q["unread"], "after": q["after"] or None,
                                "limit": q["limit"]})
    pairs = sorted({(r["template_code"], r["template_version"]) for r in rows})
    texts = {(t["code"], t["version"], t["locale"]): t
             for t in tx.all(store.TEMPLATE_TEXTS, ([p[0] for p in pairs], [p[1] for p in pairs]))}
    renderer, cache, items = sender.Renderer(), {}, []
    for r in rows:
        notice = {"id": r["id"], "template_code": r["template_code"], "template_version": r["template_version"],
                  "context": r["context"]}
        subject, body = renderer.render(notice, r["locale"], r["name"], texts, cache)
        items.append({"id": r["id"], "status": r["status"], "category": r["category"], "priority": r["priority"],
                      "subject": subject, "body": body, "at": r["created_at"].isoformat() if r["created_at"] else None,
                      "read_at": r["read_at"].isoformat() if r["read_at"] else None})
    return {"items": items, "unread": tx.one(store.UNREAD, (resident_id,))["n"],
            "next": items[-1]["id"] if len(items) == q["limit"] else None}


def mark_read(tx, resident_id, delivery_id, caller):
    subscribers.subscriber(tx, resident_id, caller)
    row = tx.one(store.INBOX_ITEM, (delivery_id, resident_id))
    if row is None or row["status"] not in ("delivered", "read"):
        raise NotFound(f"no inbox message {delivery_id}", {"delivery_id": [f"no inbox message {delivery_id}"]})
    if row["status"] == "read":  # reading twice is not an error, and counts once
        return {"id": delivery_id, "status": "read", "replayed": True}
    tx.execute(store.MARK_READ, (delivery_id,))
    tx.emit("notice_read", {"delivery_id": delivery_id, "notice_id": row["notice_id"], "resident_id": resident_id})
    return {"id": delivery_id, "status": "read"}


# -- receipts ------------------------------------------------------------------------------------------

def _receipt_secret(providers, name):
    for channel_providers in providers.values():
        for p in channel_providers:
            if p["name"] == name:
                return p.get("receipt_secret") or p["token"]
    return None


def receipts(tx, providers, name, body, signature):
    """Apply a provider's signed receipts; unknown ids and moves backwards are counted, not errors."""
    secret = _receipt_secret(providers, name)
    if secret is None:
        raise NotFound(f"no provider {name}", {"provider": [f"no provider named {name} is configured"]})
    if not channels.verify_receipt(secret, body.encode(), signature or ""):
        raise Unauthorized("the receipts are not signed with this provider's secret",
                           {"X-Linli-Signature": ["missing or wrong"]})
    try:
        data = json.loads(body)
    except ValueError:
        raise ValidationFailed("the body is not JSON", {"_schema": ["must be a JSON object"]})
    d = load(ReceiptsSchema, data)
    wanted = {r["id"]: r for r in d["receipts"]}
    applied = ignored = 0
    found = tx.all(store.BY_RECEIPT, (name, list(wanted)))
    for row in found:
        r = wanted[row["provider_ref"]]
        if rules.delivery_move(row["status"], r["status"]) is None:
            tx.execute(store.RECEIPT, {"id": row["id"], "status": r["status"], "error": clean(r.get("error"))})
            applied += 1
        else:
            ignored += 1
    # Not ours yet, as far as we know: the sender may not have committed the batch. Kept for a day.
    early = [r for ref, r in wanted.items() if ref not in {row["provider_ref"] for row in found}]
    if early:
        tx.execute(store.ADD_EARLY_RECEIPTS, (name, [r["id"] for r in early], [r["status"] for r in early],
                                              [clean(r.get("error")) for r in early]))
    tx.execute(store.EXPIRE_EARLY_RECEIPTS)
    return {"applied": applied, "ignored": ignored, "waiting": len(early)}
