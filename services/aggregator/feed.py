"""The departments' feed: which roll-ups changed, in the order they changed, each read back under
the small-cell rule. It is not a list of facts: facts one by one would give a department what
suppression in the roll-ups keeps from it (issue 19; DESIGN §5).

Taking a batch marks each (node, metric, period) figure it changed (ingest._note_changes), one row
per figure renumbered at each change (migration 0004). A page of the feed is the figures changed
after a cursor, each as `/rollups` shows it to the caller's role: the same cells, the same rule
(figures.rollups), so the feed, the roll-ups, the CSV and the gauges never disagree. A stock's item
is its level at the end of that period; a change back-dated into an earlier period moves the
levels after it too, which a reader gets from `/rollups`. A reader who fell behind reads each
changed figure once, at its latest value. A role under the rule is not told of a figure the rule
hides at all, not even that it changed: the change itself, beside the shown figures changed with it,
would give back what the cell hides.

Departments reading over AMQP get the same items: a timer publishes what changed since it last
published to the `feed` exchange, through the outbox, under the department_feed role's rule.
"""
import uuid
from datetime import date

from services.aggregator import figures, rules, store
from services.aggregator.schemas import FeedQuerySchema
from shared import clock, outbox
from shared.errors import ValidationFailed, load
from shared.messaging import FEED

FEED_IDS = uuid.UUID("5f1d2c3b-8a47-4e0b-9d61-2b7c0e4f9a13")
# What a department's AMQP feed is read as: aggregates only, under the rule.
DEPARTMENT = "department_feed"


def read(tx, query, caller, judge=False):
    """A page of changed figures after `after`, under `prefix` (default: the token's scope)."""
    q = load(FeedQuerySchema, query)
    problems = rules.query_problems(q["metric"], "none") if q.get("metric") else {}
    if problems:
        raise ValidationFailed("no fact feeds that metric", problems)
    prefix = figures._node(q, caller, "prefix")
    figures._known(tx, q, "prefix", prefix, judge)
    rows = tx.all(store.CHANGES, {"after": q["after"], "prefix": prefix, "metric": q.get("metric"),
                                  "limit": q["limit"]})
    # The cursor passes hidden figures too, so a page of them is not read again.
    return {"items": items_of(tx, rows, caller), "next": rows[-1]["seq"] if rows else q["after"]}


def items_of(tx, rows, caller):
    """Each changed figure as the caller may see it now. Figures of one node, metric, period and
    year are read with one roll-up query."""
    groups = {}
    for r in rows:
        groups.setdefault((r["node"], r["metric"], r["period"], r["period_start"].year), []).append(r["period_start"])
    shown = {}
    for (node, metric, period, _), starts in groups.items():
        first, last = min(starts), max(starts)
        result = figures.rollups(tx, {"metric": metric, "node": node, "period": period, "start": first.isoformat(),
                                      "end": last.isoformat(), "group": "none"},
                                 caller, today=max(clock.today(), last))
        for series in result["series"]:
            for p in series["points"]:
                shown[(node, metric, period, date.fromisoformat(p["period_start"]))] = p
    out = []
    for r in rows:
        point = shown.get((r["node"], r["metric"], r["period"], r["period_start"]),
                          {"n": 0, "total": 0.0, "suppressed": False})
        if point["suppressed"]:
            continue
        out.append({"seq": r["seq"], "node": r["node"], "metric": r["metric"], "period": r["period"],
                    "period_start": r["period_start"].isoformat(), "stock": r["metric"] in rules.STOCKS, "n": point["n"],
                    "total": point["total"],
                    "changed_at": r["changed_at"].isoformat()})
    return out


def publish(tx, limit=500):
    """Put what changed since the last pass on the `feed` exchange, as the department_feed role
    sees it (one outbox message per figure it may see); returns how many were put."""
    seen = tx.one(store.FEED_SEEN)
    if not tx.one(store.ANY_CHANGE_AFTER, (seen["seq"] if seen else 0,))["any"]:
        return 0      # idle: no row version written every pass
    done = tx.one(store.FEED_PUBLISHED)["seq"]
    rows = tx.all(store.CHANGES, {"after": done, "prefix": tx.source["node_code"], "metric": None, "limit": limit})
    if not rows:
        return 0
    caller = {"actor": "feed", "scope": tx.source["node_code"], "role": DEPARTMENT}
    items = items_of(tx, rows, caller)
    for item in items:
        outbox.add_message(tx, FEED.name, f"{item['node']}.{item['metric']}.{item['period']}",
                           str(uuid.uuid5(FEED_IDS, f"{tx.source['node_code']}:{item['seq']}")), item,
                           tx.correlation_id)
    tx.execute(store.SET_FEED_PUBLISHED, (rows[-1]["seq"],))
    return len(items)
