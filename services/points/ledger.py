"""The double-entry ledger: transfers between accounts, idempotent by the client's transfer id.

A batch of transfers is applied in four statements whatever its size: insert
the transfers (a transfer id seen before inserts nothing), lock the accounts
they touch in id order (so two batches never deadlock), compute entries and
balances (rules.entries_for), then write the entries and the balances. A
person's balance cannot go below zero: the check runs on locked rows, and the
accounts table's CHECK constraint refuses it again should any path skip it.
"""
from shared.db import unique_races
from shared.errors import Conflict, NotFound
from services.points import rules, store

RACES = {"transfers_reversed_once": ("transfer_id", "that transfer was reversed meanwhile")}
# A transfer id seen before is a replay only if everything it moved and links to is the same.
SAME = ("kind", "debit_account", "credit_account", "amount", "service_record_id", "redemption_id", "reverses")


def system_account(tx, kind, code, name):
    """The id of a ledger account (issuance of a community, held, redeemed, …), opened on first use."""
    row = tx.one(store.SYSTEM_ACCOUNT, (kind, code))
    if row is None:
        row = tx.one(store.OPEN_SYSTEM_ACCOUNT, (kind, code, name)) or tx.one(store.SYSTEM_ACCOUNT, (kind, code))
    return row["id"]


def transfer(tx, items, actor):
    """Apply transfers; returns {transfer_id: row} with `replayed` True for ids seen before.

    items: dicts with transfer_id, kind, debit_account, credit_account, amount and optionally
    service_record_id, redemption_id, reverses, memo. A transfer id reused for a different transfer
    is a 409 and nothing is applied.
    """
    if not items:
        return {}
    cols = ("transfer_id", "kind", "debit_account", "credit_account", "amount", "service_record_id",
            "redemption_id", "reverses", "memo")
    arrays = [[item.get(c) for item in items] for c in cols] + [[actor] * len(items)]
    with unique_races(RACES):
        inserted = {r["transfer_id"]: r["id"] for r in tx.all(store.ADD_TRANSFERS, arrays)}
    result = {}
    seen = [item for item in items if item["transfer_id"] not in inserted]
    if seen:
        earlier = {r["transfer_id"]: r for r in tx.all(store.TRANSFERS_BY_ID, ([i["transfer_id"] for i in seen],))}
        for item in seen:
            first = earlier[item["transfer_id"]]
            if any(first[k] != item.get(k) for k in SAME):
                raise Conflict(f"transfer id {item['transfer_id']} was already used for a different transfer",
                               {"transfer_id": [f"already used: {first['kind']} of {first['amount']} points "
                                                f"from account {first['debit_account']} "
                                                f"to account {first['credit_account']}"]})
            result[item["transfer_id"]] = {**first, "replayed": True}
    fresh = [{**item, "pk": inserted[item["transfer_id"]]} for item in items if item["transfer_id"] in inserted]
    if fresh:
        account_ids = sorted({t["debit_account"] for t in fresh} | {t["credit_account"] for t in fresh})
        accounts = {r["id"]: r for r in tx.all(store.LOCK_ACCOUNTS, (account_ids,))}
        missing = set(account_ids) - set(accounts)
        if missing:
            raise NotFound(f"no account {sorted(missing)}", {"account_id": [f"no account {sorted(missing)}"]})
        entries, balances = rules.entries_for(fresh, accounts)
        store.copy_rows(tx, store.ENTRIES_COPY, entries)
        changed = [(aid, bal) for aid, bal in balances.items() if bal != accounts[aid]["balance"]]
        tx.execute(store.SET_BALANCES, ([a for a, _ in changed], [b for _, b in changed]))
        after = {}
        for account_id, pk, _, balance in entries:
            after[(pk, account_id)] = balance
        for t in fresh:
            result[t["transfer_id"]] = {**t, "id": t["pk"], "replayed": False,
                                        "debit_balance_after": after[(t["pk"], t["debit_account"])],
                                        "credit_balance_after": after[(t["pk"], t["credit_account"])]}
    return result


def reverse(tx, transfer_pk, transfer_id, memo, actor):
    """A reversing transfer: the same amount back the other way, linked to the one it corrects."""
    original = tx.one(store.TRANSFER, (transfer_pk,))
    if original is None:
        raise NotFound(f"no transfer {transfer_pk}", {"transfer": [f"no transfer {transfer_pk}"]})
    if original["kind"] == "reversal":
        raise Conflict("a reversal is not itself reversed; post a new transfer instead",
                       {"transfer": ["is a reversal"]})
    done = tx.one(store.REVERSAL_OF, (transfer_pk,))
    if done is not None and done["transfer_id"] != transfer_id:
        raise Conflict(f"transfer {transfer_pk} was already reversed by {done['transfer_id']}",
                       {"transfer": [f"already reversed on {done['created_at']:%Y-%m-%d}"]})
    item = {"transfer_id": transfer_id, "kind": "reversal", "debit_account": original["credit_account"],
            "credit_account": original["debit_account"], "amount": original["amount"],
            "service_record_id": original["service_record_id"], "redemption_id": original["redemption_id"],
            "reverses": transfer_pk, "memo": memo}
    return transfer(tx, [item], actor)[transfer_id]


def statement(tx, account_id, after, limit):
    rows = tx.all(store.STATEMENT, {"account_id": account_id, "after": after, "limit": limit + 1})
    return rows[:limit], (rows[limit - 1]["id"] if len(rows) > limit else None)


def trial_balance(tx):
    return tx.one(store.TRIAL_BALANCE)
