"""Balances that follow a person to another street, with no loss and no double credit.

Leaving the street freezes the account, releases pending redemptions and moves
the balance to the `emigrated` account, in one transaction that also keeps the
signed handover (`handovers_out`) and writes it to the outbox (exchange
`handovers`). The message names the person only by a city-wide keyed hash of
the ID number (`person_key`), which a street's registry can match and nobody
else can reverse.

Every street records each handover it receives under the sender's transfer id
(a redelivery finds it there and changes nothing) and credits the person once
its registry knows them: at once, when they register, or on the timer's next
round. Our own handovers wait too, for a resident who comes back. Senders are
checked against `PEER_KEYS` (street code → public key). Until the multi-level
issue federates `handovers` between instances, it carries them within one vhost;
`linli handovers resend` puts kept handovers on the exchange again.
"""
import logging
import uuid
from decimal import Decimal

from psycopg.types.json import Jsonb

from services.points import accounts, ledger, redemptions, store
from shared import facts, outbox
from shared.errors import DomainError

log = logging.getLogger(__name__)
EXCHANGE = "handovers"
ROUTING_KEY = "points.balance_handed_over"
VERSION = 1


class Rejected(DomainError):
    """A handover that must never be applied (bad signature, unknown sender): dead-lettered."""


def hand_over(tx, holders, resident_id, instance_code, signer, why):
    """The resident left the street: freeze, release holds, and send the balance after them."""
    caller = accounts.system_caller(instance_code)
    row = tx.one(store.ACCOUNT_OF_RESIDENT + " FOR UPDATE", (resident_id,))
    if row is None:
        return None
    redemptions.cancel_pending_of(tx, row["id"], "居民迁出本街道，兑换取消", caller, instance_code)
    accounts.freeze(tx, resident_id, why)
    row = tx.one(store.ACCOUNT, (row["id"],))
    hours = Decimal(tx.one(store.VERIFIED_HOURS, (row["id"],))["hours"]) + row["carried_hours"]
    if row["balance"] == 0 and hours == 0:
        return None
    # One id per departure: a resident who comes back and leaves again is a second handover.
    transfer_id = f"{instance_code}:emigration:{row['id']}:{tx.one(store.HANDOVERS_OUT_OF, (row['id'],))['n'] + 1}"
    if row["balance"] > 0:
        out = ledger.system_account(tx, "emigrated", instance_code, "迁出转移")
        ledger.transfer(tx, [{"transfer_id": transfer_id, "kind": "emigration", "debit_account": row["id"],
                              "credit_account": out, "amount": row["balance"], "memo": why}], caller["actor"])
    holder = holders("person", resident_id, caller)
    message = signer.sign({"v": VERSION, "transfer_id": transfer_id, "person_key": holder["handover_key"],
                           "from_street": instance_code, "amount": row["balance"], "hours": str(hours)})
    tx.execute(store.ADD_HANDOVER_OUT, {"transfer_id": transfer_id, "account_id": row["id"], "amount": row["balance"],
                                        "hours": hours, "message": Jsonb(message)})
    outbox.add_message(tx, EXCHANGE, ROUTING_KEY, uuid.uuid5(uuid.NAMESPACE_URL, f"linli:{transfer_id}"), message,
                       tx.correlation_id)
    tx.emit("points_balance_handed_over", {"account_id": row["id"], "resident_id": resident_id,
                                           "amount": row["balance"], "hours": str(hours), "transfer_id": transfer_id})
    return message


def check(message, peer_keys, instance_code):
    """Raise Rejected unless the message is well formed and signed by a street we trust."""
    required = {"v", "transfer_id", "person_key", "from_street", "amount", "hours", "signature"}
    if not isinstance(message, dict) or not required <= set(message):
        raise Rejected("malformed handover", {"message": [f"needs {sorted(required)}"]})
    sender = message["from_street"]
    key = peer_keys.get(sender)
    if key is None or not facts.verify(message, key):
        raise Rejected("handover signature does not verify", {"signature": [f"not signed by street {sender}"]})
    if not isinstance(message["amount"], int) or message["amount"] < 0:
        raise Rejected("bad amount", {"amount": ["must be a whole number ≥ 0"]})
    if not str(message["transfer_id"]).startswith(f"{sender}:"):
        raise Rejected("a street names its own transfers", {"transfer_id": [f"must start with {sender}:"]})


def receive(tx, finder, holders_of, message, peer_keys, instance_code, own_key=None):
    """Record an arriving handover once, then try to credit it. Returns False for a redelivery.

    Our own handovers come back too (every street is bound to the exchange): they wait like any
    other, in case the resident comes back and registers here again.
    """
    check(message, {**peer_keys, instance_code: own_key} if own_key else peer_keys, instance_code)
    row = tx.one(store.ADD_HANDOVER_IN, {"transfer_id": message["transfer_id"], "person_key": message["person_key"],
                                         "from_street": message["from_street"], "amount": message["amount"],
                                         "hours": Decimal(message["hours"])})
    if row is None:
        return False
    try:
        with tx.conn.transaction():  # a savepoint: the handover stays recorded if matching fails
            match(tx, finder, holders_of, instance_code, [message["person_key"]])
    except Exception:  # the registry may be restarting; the timer tries again
        log.warning("handover recorded, matching deferred", exc_info=True,
                    extra={"transfer_id": message["transfer_id"]})
    return True


MATCH_LIMIT = 500


def match(tx, finder, holders_of, instance_code, keys=None, limit=MATCH_LIMIT):
    """Credit waiting handovers whose person the registry now knows; returns how many were credited.

    The registry is asked two questions whatever the number of handovers: who the keys name
    (`finder`), and, for those with no account here yet, who they are (`holders_of`, its
    `account_holders`). Each question asked with the transaction open costs the worker a whole
    re-run (shared/db.py), so asking per handover would make a round of many fail, and roll back,
    every time.
    """
    waiting = tx.all(store.WAITING_HANDOVERS, (keys, keys, limit))
    if not waiting:
        return 0
    tx.execute(store.TRIED_HANDOVERS, ([w["transfer_id"] for w in waiting],))
    found = finder(sorted({w["person_key"] for w in waiting}))  # {person_key: resident_id}
    caller = accounts.system_caller(instance_code)
    ids = sorted({found[w["person_key"]] for w in waiting if w["person_key"] in found})
    have = {r["resident_id"] for r in tx.all(store.RESIDENTS_WITH_ACCOUNTS, (ids,))} if ids else set()
    new = [i for i in ids if i not in have]
    known = holders_of(new, caller)["holders"] if new else {}
    credited = 0
    for w in waiting:
        resident_id = found.get(w["person_key"])
        if resident_id is None:
            continue
        holder = known.get(str(resident_id))
        if resident_id not in have and (holder is None or holder["status"] != "active"):
            continue  # off the register since the finder answered: it waits for the next round
        account, _ = accounts.ensure(tx, None, "person", resident_id, caller, "resident_id", holder)
        if account["status"] == "frozen":
            accounts.reactivate(tx, account)
        if w["amount"] > 0:
            # A resident coming back gets their balance back from where it went when they left.
            source = (ledger.system_account(tx, "emigrated", instance_code, "迁出转移")
                      if w["from_street"] == instance_code else
                      ledger.system_account(tx, "immigrated", instance_code, "迁入转移"))
            ledger.transfer(tx, [{"transfer_id": f"immigration:{w['transfer_id']}", "kind": "immigration",
                                  "debit_account": source, "credit_account": account["id"], "amount": w["amount"],
                                  "memo": f"来自街道 {w['from_street']}"}], caller["actor"])
        tx.execute(store.ADD_CARRIED_HOURS, (w["hours"], account["id"]))
        tx.execute(store.CREDIT_HANDOVER, (account["id"], w["transfer_id"]))
        tx.emit("points_balance_received", {"account_id": account["id"], "resident_id": resident_id,
                                            "amount": w["amount"], "hours": str(w["hours"]),
                                            "from_street": w["from_street"], "transfer_id": w["transfer_id"]})
        credited += 1
    return credited


def resend(tx, transfer_id=None, since=None):
    """Put kept handovers back on the exchange (a receiving street applies each transfer id once)."""
    rows = tx.all(store.HANDOVERS_OUT, {"transfer_id": transfer_id, "since": since or "-infinity"})
    for r in rows:
        outbox.add_message(tx, EXCHANGE, ROUTING_KEY, uuid.uuid4(), r["message"], tx.correlation_id)
        tx.execute(store.MARK_RESENT, (r["transfer_id"],))
    return [r["transfer_id"] for r in rows]
