"""Figures per community and category, and the public view of published results.

Figures (rules.figures) are computed over the matters raised in a period:
settlement rate, on-time rates, satisfaction rate, median days to settle, repeat
matters and what is overdue. The public view shows published decisions with the
vote, attendance by role, progress and satisfaction, and nothing personal: no
names, no raisers, no descriptions typed by residents, no one responsible by name.
"""
from datetime import date, datetime, time, timedelta

from services.consultation import rules, store
from services.consultation.schemas import FiguresQuerySchema, PublicQuerySchema, PublicResultPageSchema
from shared.errors import ValidationFailed, load
from shared.nodes import known, known_in
from shared.scope import under

_public = PublicResultPageSchema()


def figures(tx, query, caller, now, nodes=None):
    q = load(FiguresQuerySchema, query)
    prefix = under(q, caller)
    if nodes is not None:
        known_in(nodes, q, "under")
    today = now.date()
    since = q.get("since") or date(today.year, 1, 1)
    until = q.get("until") or today + timedelta(days=1)
    if until <= since:
        raise ValidationFailed("an empty period", {"until": [f"must be after {since}"]})
    params = {"under": prefix, "category": q.get("category"),
              "since": datetime.combine(since, time(), now.tzinfo),
              "until": datetime.combine(until, time(), now.tzinfo)}
    groups, scores = {}, {}
    for m in tx.all(store.FIGURE_ROWS, params):
        groups.setdefault((m["community_code"], m["category"]), []).append(m)
    for r in tx.all(store.FIGURE_RATINGS, params):
        scores.setdefault((r["community_code"], r["category"]), []).append(r["score"])
    rows = [{"community_code": code, "category": category, "category_name": rules.CATEGORIES.get(category),
             **rules.figures(ms, scores.get((code, category), []), now)}
            for (code, category), ms in sorted(groups.items())]
    every = [m for ms in groups.values() for m in ms]
    total = {"under": params["under"], "since": since.isoformat(), "until": until.isoformat(),
             **rules.figures(every, [s for ss in scores.values() for s in ss], now)}
    return {"rows": rows, "total": total}


def public_results(tx, query, nodes=None):
    q = load(PublicQuerySchema, query)
    if nodes is not None:
        known(nodes, q["under"], "under")
    rows = tx.all(store.PUBLIC_RESULTS, {"under": q["under"], "after": q["after"], "limit": q["limit"]})
    items = []
    for r in rows:
        roles = {x["role"]: x["attended"] for x in tx.all(store.ROLES_ATTENDED, (r["meeting_id"],))}
        items.append({**r, "categories": r["categories"] or [],
                      "vote": {"approve": r["approve"], "oppose": r["oppose"], "abstain": r["abstain"],
                               "attended": r["attended"]},
                      "attendance_by_role": roles, "progress": int(r["progress"])})
    return _public.dump({"items": items, "next": rows[-1]["id"] if len(rows) == q["limit"] else None})
