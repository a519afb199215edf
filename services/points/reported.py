"""The facts the points service sends up, and how they follow an account that changes.

A posting counts where its account is: the community the person lives in and their member
category, as the annual evaluation ranks them. When an account moves to another community or
its member category changes, what it already counted is restated: each posting that stands and
each fulfilled redemption is sent again -1 as it was counted and +1 as it now is, dated as before,
so the roll-ups of every period agree with the evaluation and a later reversal (sent with the
account as it is then) meets the +1 it cancels.
"""
from services.points import store
from shared import clock, facts


def posting(fact_type, r, delta, community_code=None, member_category=None):
    """A posting (+1) or its reversal (-1), dated the day the service was given."""
    return facts.fact(fact_type, community_code or r["community_code"], r["served_on"], delta=delta,
                      category=r["category_code"], points=r["points"], hours=float(r["hours"]),
                      member_category=member_category or r["member_category"])


def redemption(r, delta, community_code=None, member_category=None):
    return facts.fact("points_redeemed", community_code or r["community_code"],
                      clock.local_date(r["closed_at"] or r["requested_at"]), delta=delta,
                      reward_kind=r["reward_kind"], points=r["points"],
                      member_category=member_category or r["member_category"])


def restate(tx, before, after):
    """After an account's community or member category changed from `before` to `after` (account
    rows): move its records with it and restate what it counted. Returns the number of facts sent."""
    moved = before["community_code"] != after["community_code"]
    if not moved and before["member_category"] == after["member_category"]:
        return 0
    out = []
    for r in tx.all(store.POSTED_OF_ACCOUNT, (before["id"],)):
        was = {**r, "member_category": before["member_category"]}
        out += [posting("points_posted", was, -1),
                posting("points_posted", was, +1, after["community_code"], after["member_category"])]
    for r in tx.all(store.FULFILLED_OF_ACCOUNT, (before["id"],)):
        was = {**r, "community_code": before["community_code"],
               "member_category": before["member_category"]}
        out += [redemption(was, -1), redemption(was, +1, after["community_code"], after["member_category"])]
    if moved:
        tx.execute(store.MOVE_RECORDS, (after["community_code"], before["id"]))
    if out:
        tx.publish_facts("points_restated", out)
    return len(out)
