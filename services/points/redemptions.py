"""Redemptions: points held while a reward is prepared, then fulfilled or cancelled.

A request locks the person's account first, so two redemptions racing for the
same points run one after the other: the second sees the balance the first
left and is refused (409) if it no longer covers it. The hold is a transfer to
the instance's `held` account; fulfilment moves it on to `redeemed`, and
cancellation back to the person, with the reward's stock returned.
"""
from datetime import datetime

from services.points import accounts, ledger, reported, rules, store
from services.points.schemas import (RedemptionCloseSchema, RedemptionCreateSchema, RedemptionListQuerySchema,
                                     RedemptionSchema)
from shared import clock
from shared.errors import Conflict, ValidationFailed, load
from shared.nodes import known_in
from shared.scope import first_of, missing, visible

_redemption = RedemptionSchema()


def _event(r, **extra):
    return {"id": r["id"], "account_id": r["account_id"], "resident_id": r["resident_id"],
            "community_code": r["community_code"], "reward_id": r["reward_id"], "reward_name": r["reward_name"],
            "quantity": r["quantity"], "points": r["points"], "status": r["status"], **extra}


def _account(tx, code, name):
    return ledger.system_account(tx, name, code, {"held": "兑换冻结", "redeemed": "已兑换"}[name])


def request(tx, data, caller, instance_code):
    d = load(RedemptionCreateSchema, data)
    # The account is locked before the request id is looked up: a concurrent retry of the same request
    # waits here, then finds the first one committed and answers with it.
    account = accounts.account_in_scope(tx, d["account_id"], caller, for_update=True)
    if d.get("request_id"):
        first = tx.one(store.REDEMPTION_BY_REQUEST, (d["request_id"],))
        if first is not None:
            first_of(first, d["request_id"], caller)
            if (first["account_id"], first["reward_id"], first["quantity"]) != (d["account_id"], d["reward_id"],
                                                                                d["quantity"]):
                raise Conflict(f"request id {d['request_id']} was already used for a different redemption",
                               {"request_id": [f"already used by redemption {first['id']}"]})
            return {**_redemption.dump(first), "replayed": True}
    accounts.require_active(account)
    reward = tx.one(store.REWARD, (d["reward_id"],))
    if reward is None or not reward["active"]:
        raise ValidationFailed("unknown reward", {"reward_id": [f"no active reward {d['reward_id']}"]})
    limit = reward["per_person_limit"]
    if limit is not None:
        year_start = datetime(clock.today().year, 1, 1, tzinfo=clock.zone())
        taken = tx.one(store.QUANTITY_THIS_YEAR, (account["id"], reward["id"], year_start))["quantity"]
        if taken + d["quantity"] > limit:
            raise Conflict("the per-person limit is reached",
                           {"quantity": [f"{reward['name']}: at most {limit} per person a year, {taken} taken"]})
    if tx.one(store.TAKE_STOCK, {"id": reward["id"], "quantity": d["quantity"]}) is None:
        raise Conflict("not enough stock", {"quantity": [f"{reward['name']}: only {reward['stock']} left"]})
    points = reward["points_cost"] * d["quantity"]
    redemption_id = tx.one(store.NEXT_REDEMPTION_ID)["id"]
    hold = ledger.transfer(tx, [{"transfer_id": f"hold:{redemption_id}", "kind": "hold",
                                 "debit_account": account["id"], "credit_account": _account(tx, instance_code, "held"),
                                 "amount": points, "redemption_id": redemption_id, "memo": reward["name"]}],
                           caller["actor"])
    tx.execute(store.ADD_REDEMPTION,
               {"id": redemption_id, "request_id": d.get("request_id"), "account_id": account["id"],
                "reward_id": reward["id"], "quantity": d["quantity"], "points": points,
                "hold_transfer_pk": next(iter(hold.values()))["id"], "requested_by": caller["actor"]})
    row = tx.one(store.REDEMPTION, (redemption_id,))
    tx.emit("points_redemption_requested", _event(row))
    return _redemption.dump(row)


def _in_scope(tx, redemption_id, caller, for_update=True):
    accounts.not_for_leaders(caller, "handle redemptions")
    return visible(tx.one(store.REDEMPTION_FOR_UPDATE if for_update else store.REDEMPTION, (redemption_id,)), caller,
                   missing("redemption", redemption_id))


def _close(tx, redemption_id, to, data, caller, instance_code):
    d = load(RedemptionCloseSchema, data)
    # Locks in the order a request takes them (person, reward, ledger accounts), so a cancellation
    # and a request, or a departure cancelling holds, never wait on each other in a circle.
    r = _in_scope(tx, redemption_id, caller, for_update=False)
    tx.one(store.ACCOUNT + " FOR UPDATE", (r["account_id"],))
    r = _in_scope(tx, redemption_id, caller)
    why = rules.redemption_move(r["status"], to)
    if why:
        raise Conflict(why, {"id": [why]})
    if to == "cancelled":
        tx.execute(store.RETURN_STOCK, (r["quantity"], r["reward_id"]))
    held = _account(tx, instance_code, "held")
    credit = _account(tx, instance_code, "redeemed") if to == "fulfilled" else r["account_id"]
    kind = "fulfilment" if to == "fulfilled" else "release"
    done = ledger.transfer(tx, [{"transfer_id": f"{kind}:{redemption_id}", "kind": kind, "debit_account": held,
                                 "credit_account": credit, "amount": r["points"], "redemption_id": redemption_id,
                                 "memo": d.get("reason") or r["reward_name"]}], caller["actor"])
    tx.execute(store.CLOSE_REDEMPTION, {"status": to, "transfer_pk": next(iter(done.values()))["id"],
                                        "actor": caller["actor"], "reason": d.get("reason"), "id": redemption_id})
    return tx.one(store.REDEMPTION, (redemption_id,))


def fulfil(tx, redemption_id, data, caller, instance_code):
    row = _close(tx, redemption_id, "fulfilled", data, caller, instance_code)
    tx.emit("points_redeemed", _event(row))
    tx.publish_facts("points_redeemed", [reported.redemption(row, +1)])
    return _redemption.dump(row)


def cancel(tx, redemption_id, data, caller, instance_code):
    row = _close(tx, redemption_id, "cancelled", data, caller, instance_code)
    tx.emit("points_redemption_cancelled", _event(row, reason=row["reason"]))
    return _redemption.dump(row)


def cancel_pending_of(tx, account_id, reason, caller, instance_code):
    """Release every pending redemption of an account (its holder left the street)."""
    rows = tx.all(store.LIST_REDEMPTIONS, {"under": "", "status": "pending", "account_id": account_id, "after": 0,
                                           "limit": 1000})
    for r in rows:
        cancel(tx, r["id"], {"reason": reason}, caller, instance_code)
    return len(rows)


def get(tx, redemption_id, caller):
    return _redemption.dump(_in_scope(tx, redemption_id, caller, for_update=False))


def search(tx, query, caller, nodes=None):
    accounts.not_for_leaders(caller, "list redemptions")
    q = load(RedemptionListQuerySchema, query)
    under = accounts.under(q, caller)
    if nodes is not None:
        known_in(nodes, q, "under")
    rows = tx.all(store.LIST_REDEMPTIONS, {"under": under, "status": q.get("status"), "account_id": q.get("account_id"),
                                           "after": q["after"], "limit": q["limit"]})
    return {"items": [_redemption.dump(r) for r in rows], "next": rows[-1]["id"] if len(rows) == q["limit"] else None}
