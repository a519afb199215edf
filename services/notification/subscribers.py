"""Subscribers: the street's residents as the registry's events describe them, kept in step.

Every resident event carries the record's version, and a subscriber row only ever moves forward:
an event delivered twice, or overtaken by a newer one, changes nothing. Bulk imports arrive as
`residents_imported` events of up to 500 residents and are applied in one statement. Party
membership and organisation membership are links set by their own events, which travel on other
queues and may come before the resident's; a link only moves forward in event time.

The SMS address is the phone the registry holds, fetched by RPC when a resident is registered
or their phone changes, and sealed here again. A number the resident gives us themselves wins.
"""
from services.notification import egress, store
from services.notification.schemas import PreferencesSchema, SubscriberChannelSetSchema
from shared.errors import Forbidden, NotFound, ValidationFailed, load
from shared.nodes import known
from shared.scope import in_scope

ADDRESS = "notification.address"  # associated data of sealed addresses (the sender opens them)
ROLE_EVENTS = {"party_member_reported": ("party_member", True), "party_member_registered": ("party_member", True),
               "party_member_withdrawn": ("party_member", False),
               "worker_appointed": ("community_worker", True), "worker_left": ("community_worker", False)}


def _values(r):
    return {"id": r["id"], "name": r["name"], "community_code": r["community_code"],
            "grid_code": r.get("grid_code"), "household_id": r.get("household_id"), "tags": list(r.get("tags") or []),
            "status": r["status"], "version": r["version"]}


def apply_resident(tx, payload):
    """A resident event (registered, updated, moved, left, died): True if it changed the row."""
    return tx.execute(store.UPSERT_SUBSCRIBER, _values(payload)).rowcount == 1


def apply_import(tx, payload):
    """A `residents_imported` event: up to 500 residents, applied in one pipelined round."""
    rows = [_values(r) for r in payload["residents"]]
    with tx.conn.cursor() as cur:
        cur.executemany(store.UPSERT_SUBSCRIBER, rows)
    return len(rows)


def _link(tx, resident_id, kind, value, active, at):
    return tx.execute(store.SET_LINK, {"id": resident_id, "kind": kind, "value": str(value), "active": active,
                                       "at": at}).rowcount == 1


def apply_role(tx, env):
    """A party member's or community worker's event; a worker not on the register (no resident) has no role here."""
    role, on = ROLE_EVENTS[env["type"]]
    if env["payload"].get("resident_id") is None:
        return False
    return _link(tx, env["payload"]["resident_id"], "role", role, on, env["occurred_at"])


def apply_membership(tx, env):
    p = env["payload"]
    return _link(tx, p["resident_id"], "organization", p["organization_id"],
                 env["type"] == "organization_member_joined", env["occurred_at"])


def request_phones(tx, resident_ids):
    """Ask for these residents' phones later (sync_phones), in the event's own transaction."""
    if resident_ids:
        tx.execute(store.REQUEST_PHONES, (sorted(set(resident_ids)),))


PHONE_BATCH = 1000


def sync_phones(tx, vault, contacts, limit=None):
    """Fetch a batch of the phones asked for from the registry and keep them sealed, unless a resident
    gave their own. Returns how many were asked.

    The transaction that read the requests ends before the registry is asked: a question asked
    with it open would cost the worker a whole re-run (shared/db.py), one per batch. A request
    renewed meanwhile is left for the next batch; if the registry cannot answer, they all stay.
    """
    wanted = tx.all(store.PHONE_REQUESTS, (limit or PHONE_BATCH,))
    if not wanted:
        return 0
    tx.finish(commit=True)  # nothing held while the registry answers
    phones = contacts(sorted(r["resident_id"] for r in wanted))
    done = sorted(r["resident_id"] for r in tx.all(store.PHONES_DONE, ([r["resident_id"] for r in wanted],
                                                                        [r["requested_at"] for r in wanted])))
    with tx.conn.cursor() as cur:
        cur.executemany(store.SET_REGISTRY_PHONE, [(rid, "sms", vault.seal(phones[str(rid)], ADDRESS), "registry")
                                                   for rid in done if str(rid) in phones])
    tx.execute(store.DROP_REGISTRY_PHONES, ([rid for rid in done if str(rid) not in phones],))
    return len(wanted)


def phone_changed(env):
    return env["type"] == "resident_registered" or "phone" in (env["payload"].get("changed") or ())


def reach(tx, target, nodes=None):
    """How many active subscribers a target reaches, per community (before anything is sent). The area
    must be a node the registry holds (`nodes`, its get_node): a typo is a 404, not nobody reached."""
    if not target.get("prefix") or not str(target["prefix"]).isdigit():
        raise ValidationFailed("a target needs a node-code prefix", {"prefix": ["digits of a node code"]})
    if nodes is not None:
        known(nodes, target["prefix"], "prefix")
    rows = tx.all(store.COUNT_TARGET, {"prefix": target["prefix"], "tags": list(target.get("tags") or []),
                                       "roles": list(target.get("roles") or []), "ids": None,
                                       "organization_id": target.get("organization_id")})
    return {r["community_code"]: r["n"] for r in rows}


# -- a subscriber's own settings, by the resident (their token) or a worker of their community ------

def own(caller):
    """The resident a resident's token acts for (the `/me` operations): its own, never one named in a request."""
    if caller.get("role") != "resident" or caller.get("resident_id") is None:
        # The database refuses a resident's token without one; never guess whom it is for.
        raise Forbidden("this token names no resident", {"Authorization": ["not a resident's token"]})
    return caller["resident_id"]


def subscriber(tx, resident_id, caller, lock=False):
    if caller.get("role") == "resident" and caller.get("resident_id") != resident_id:
        raise Forbidden("a resident sees only their own notices and settings",
                        {"resident_id": ["not the token's resident"]})
    row = tx.one(store.SUBSCRIBER_FOR_UPDATE if lock else store.SUBSCRIBER, (resident_id,))
    if row is None or not in_scope(row["community_code"], caller):
        raise NotFound(f"no subscriber {resident_id}", {"resident_id": [f"no subscriber {resident_id}"]})
    return row


def mask(channel, address):
    if channel == "sms":
        return address[:3] + "****" + address[-4:]
    if channel == "email":
        user, _, domain = address.partition("@")
        return user[:1] + "***@" + domain
    if channel == "wechat":
        return address[:4] + "…" + address[-4:]
    return address.split("?")[0]


def channels(tx, vault, resident_id, caller):
    subscriber(tx, resident_id, caller)
    return [{"channel": r["channel"], "address": mask(r["channel"], vault.open(r["address_cipher"], ADDRESS)),
             "source": r["source"], "updated_at": r["updated_at"].isoformat()}
            for r in tx.all(store.CHANNELS_OF, (resident_id,))]


def set_channel(tx, vault, resident_id, data, caller, allow=()):
    """Save an address; a webhook only to a public host (or one in `allow`, WEBHOOK_ALLOW_NETWORKS)."""
    d = load(SubscriberChannelSetSchema, data)
    if d["channel"] == "webhook" and caller.get("role") == "resident":
        # The service posts to it from inside the street's network: staff set webhooks, residents do not.
        raise Forbidden("a webhook is set by a community worker", {"channel": ["residents cannot set webhooks"]})
    if d["channel"] == "webhook":
        try:
            egress.check_url(d["address"], allow)
        except egress.Refused as exc:
            raise ValidationFailed("the webhook address is not one this service will call",
                                   {"address": [str(exc)]}) from None
    subscriber(tx, resident_id, caller, lock=True)
    tx.execute(store.SET_CHANNEL, (resident_id, d["channel"], vault.seal(d["address"], ADDRESS), "given"))
    tx.emit("subscriber_channel_set", {"resident_id": resident_id, "channel": d["channel"], "actor": caller["actor"]})
    return channels(tx, vault, resident_id, caller)


def remove_channel(tx, vault, resident_id, channel, caller):
    subscriber(tx, resident_id, caller, lock=True)
    if tx.execute(store.DROP_CHANNEL, (resident_id, channel)).rowcount == 0:
        raise NotFound(f"no {channel} address", {"channel": [f"no {channel} address for {resident_id}"]})
    tx.emit("subscriber_channel_removed", {"resident_id": resident_id, "channel": channel, "actor": caller["actor"]})
    return channels(tx, vault, resident_id, caller)


def _prefs_view(row):
    return {"opted_out": list(row["opted_out"]) if row else [],
            "quiet_start": row["quiet_start"].strftime("%H:%M") if row and row["quiet_start"] else None,
            "quiet_end": row["quiet_end"].strftime("%H:%M") if row and row["quiet_end"] else None,
            "locale": row["locale"] if row else "zh"}


def preferences(tx, resident_id, caller):
    subscriber(tx, resident_id, caller)
    return _prefs_view(tx.one(store.PREFERENCES, (resident_id,)))


def set_preferences(tx, resident_id, data, caller):
    d = load(PreferencesSchema, data)
    subscriber(tx, resident_id, caller, lock=True)
    tx.execute(store.SET_PREFERENCES, {**d, "resident_id": resident_id, "opted_out": sorted(set(d["opted_out"]))})
    return preferences(tx, resident_id, caller)
