"""Fan-out: a notice becomes one delivery per person and channel, as the pure rules decide.

Who: a target (a node-code prefix, optionally narrowed by tags and roles) or a list of resident
ids. Which channels: those asked for that the person has an address for (the inbox needs none),
less what they opted out of, unless the notice is critical. When: now; after the person's quiet
hours for a non-critical notice; at the digest hour for a digest notice, held until then.

A notice is recorded once under its trigger key; asking again returns the first notice and adds
nothing, and the (notice, person, channel) key stands behind that. Deliveries are written by
COPY in the notice's own transaction, and a NOTIFY wakes the sender when it commits.
"""
import json
from datetime import datetime, time, timedelta

from psycopg.rows import tuple_row

from services.notification import rules, store
from shared.errors import NotFound
from shared import clock

DEFAULT_CHANNELS = ("inbox", "wechat", "sms", "email", "webhook")
FETCH = 20_000


def digest_time(now, hour):
    """The next digest hour in the instance's time, today's if it is still ahead."""
    local = now.astimezone(clock.zone())
    at = datetime.combine(local.date(), time(hour), clock.zone())
    return at if at > local else at + timedelta(days=1)


def _preferences(opted_out, quiet_start, quiet_end):
    pairs = frozenset(tuple(x.split(":", 1)) for x in opted_out or () if ":" in x)
    return rules.Preferences(pairs, quiet_start, quiet_end)


def plan(person, notice, channels, now, digest_at):
    """[(channel, status, due_at)] for one person (a dict as store.AUDIENCE gives it): pure."""
    have = set(person["channels"] or ()) | {"inbox"}
    priority = notice["priority"]
    prefs = _preferences(person["opted_out"], person["quiet_start"], person["quiet_end"])
    out = []
    for channel in channels:
        if channel not in have or not rules.wanted(prefs, notice["category"], channel, priority):
            continue
        if priority == "digest":
            out.append((channel, "held", rules.send_at(prefs, priority, digest_at)))
        else:
            out.append((channel, "queued", rules.send_at(prefs, priority, now)))
    return out


def record(tx, notice, audience, channels, now, digest_hour):
    """Record the notice and its deliveries; returns (notice id, deliveries added, replayed)."""
    template = tx.one(store.TEMPLATE, (notice["template_code"],))
    if template is None:
        raise NotFound(f"no template {notice['template_code']}", {"template_code": ["no such template"]})
    row = tx.one(store.ADD_NOTICE, {**notice, "template_version": template["version"], "channels": list(channels),
                                    "context": json.dumps(notice["context"], ensure_ascii=False, default=str),
                                    "target": json.dumps(notice.get("target")) if notice.get("target") else None})
    if row is None:
        return tx.one(store.NOTICE_BY_KEY, (notice["trigger_key"],))["id"], 0, True
    notice_id = row["id"]
    now = now.astimezone(clock.zone())  # quiet hours are the residents' clock: the instance's zone
    added = _fan_out(tx, notice_id, notice, audience, channels, now, digest_time(now, digest_hour))
    if added:
        tx.execute(store.WAKE)
    return notice_id, added, False


def _rows(batch, notice_id, notice, wanted, now, digest_at):
    """Delivery rows for a batch of people as store.AUDIENCE gives them."""
    rank = rules.RANK[notice["priority"]]
    for resident_id, community, opted_out, qs, qe, have in batch:
        if notice["priority"] == "critical":  # bypasses preferences and quiet hours: only addresses matter
            have = set(have) | {"inbox"}
            for channel in wanted:
                if channel in have:
                    yield (notice_id, resident_id, community, channel, rank, "queued", now)
            continue
        person = {"channels": have, "opted_out": opted_out, "quiet_start": qs, "quiet_end": qe}
        for channel, status, due in plan(person, notice, wanted, now, digest_at):
            yield (notice_id, resident_id, community, channel, rank, status, due)


def _params(audience):
    ids = audience.get("resident_ids")
    return {"prefix": audience.get("prefix") or "", "tags": list(audience.get("tags") or []),
            "roles": list(audience.get("roles") or []), "ids": None if ids is None else sorted({int(i) for i in ids}),
            "organization_id": audience.get("organization_id")}


def _fan_out(tx, notice_id, notice, audience, channels, now, digest_at):
    params = _params(audience)
    wanted = tuple(c for c in DEFAULT_CHANNELS if c in set(channels))
    added, found = 0, set()
    with tx.conn.cursor(name=f"audience_{notice_id}", row_factory=tuple_row) as people:
        people.execute(store.AUDIENCE, params)
        while batch := people.fetchmany(FETCH):
            if params["ids"] is not None:
                found.update(p[0] for p in batch)
            with tx.conn.cursor() as cur, cur.copy(store.COPY_DELIVERIES) as copy:
                for row in _rows(batch, notice_id, notice, wanted, now, digest_at):
                    copy.write_row(row)
                    added += 1
    missing = sorted(set(params["ids"] or ()) - found)
    if missing:
        # Named people the audience did not hold: not here yet (their events travel on other
        # queues) or no longer active. The notice waits for them; late() sorts out which.
        tx.execute(store.ADD_WAITS, (notice_id, missing))
    return added


def late(tx, now, digest_hour, limit=1000):
    """Deliver notices to named people who have arrived since; give up on them after a day.

    Returns (deliveries added, waits given up).
    """
    now = now.astimezone(clock.zone())
    digest_at = digest_time(now, digest_hour)
    arrived = tx.all(store.ARRIVED, (limit,))
    added = 0
    by_notice = {}
    for w in arrived:
        by_notice.setdefault(w["notice_id"], []).append(w["resident_id"])
    for notice_id, ids in by_notice.items():
        notice = tx.one(store.NOTICE, (notice_id,))
        with tx.conn.cursor(row_factory=tuple_row) as cur:
            batch = cur.execute(store.AUDIENCE, _params({"resident_ids": ids})).fetchall()
            rows = list(_rows(batch, notice_id, notice, tuple(notice["channels"]), now, digest_at))
            cur.executemany(store.ADD_DELIVERY_ONCE, rows)
        added += len(rows)
        tx.execute(store.DROP_WAITS, (notice_id, ids))
    expired = tx.execute(store.EXPIRE_WAITS).rowcount
    if added:
        tx.execute(store.WAKE)
    return added, expired
