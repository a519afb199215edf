"""Taking a fact batch: check whom it comes from, log its facts once, roll them up, pass them up.

In one transaction: the batch id is recorded (a redelivered batch finds it and changes nothing),
facts not logged before are appended to the facts log (a fact arriving twice, in two batches or
relayed back, counts once), their contributions are added to the roll-ups, and, at a district,
a child's batch is re-signed with this instance's key for the city above (which trusts only its
own children). A batch that fails the trust rules is kept with its reason, counted and
dead-lettered, once; it never touches a figure.
"""
import hashlib
import json
import uuid
from datetime import date

from prometheus_client import Counter

from services.aggregator import rules, store
from shared import facts as facts_mod, outbox, streams
from shared.messaging import DLX

BATCHES = Counter("linli_aggregator_batches_total", "Fact batches taken", ["source"])
FACTS = Counter("linli_aggregator_facts_total", "Facts aggregated (each once)", ["source"])
DUPLICATES = Counter("linli_aggregator_duplicate_batches_total", "Redelivered batches ignored")
REJECTED = Counter("linli_aggregator_rejected_batches_total", "Fact batches refused, by reason", ["reason"])
RELAY_NAMESPACE = uuid.UUID("9a4c0f52-5b1e-4d7e-9a57-6c1f8e3b2d10")


def _reason_label(why):
    if "signature" in why:
        return "signature"
    if "subtree" in why or "outside" in why:
        return "outside_subtree"
    if "registered children" in why:
        return "unknown_sender"
    return "malformed"


def keys(tx, own_code, own_key):
    found = {r["code"]: r["public_key"] for r in tx.all(store.CHILD_KEYS)}
    found[own_code] = own_key
    return found


def accept(tx, body, own_code, own_key, level, dead_letter_key, signer=None):
    """Take one batch. Returns {"batch_id", "facts", "fresh"} or {"duplicate": True} or {"rejected": why}."""
    return accept_many(tx, [body], own_code, own_key, level, dead_letter_key, signer)[0]


def accept_many(tx, bodies, own_code, own_key, level, dead_letter_key, signer=None):
    """Take a group of batches in one transaction: each is checked on its own; the accepted ones are
    recorded, logged and rolled up together, a statement each, whatever the size of the group."""
    trusted = keys(tx, own_code, own_key)
    results, accepted, heads = {}, {}, []
    for n, body in enumerate(bodies):
        if isinstance(body, dict) and body.get("kind") == "stream_head":
            why = rules.head_refusal(body, own_code, trusted)
            if why:
                results[n] = _reject(tx, body, why, dead_letter_key)
            else:
                heads.append((body["source"]["node_code"], body["source"]["service"], body["stream"], body["seq"]))
                results[n] = {"head": body["seq"]}
            continue
        why = rules.refusal(body, own_code, trusted)
        if why:
            results[n] = _reject(tx, body, why, dead_letter_key)
        elif body["batch_id"] in accepted.values():
            results[n] = {"batch_id": body["batch_id"], "duplicate": True}
        else:
            accepted[n] = body["batch_id"]
    new = set()
    if accepted:
        ordered = [bodies[n] for n in accepted]
        new = {r["batch_id"] for r in tx.all(store.ADD_BATCHES, (
            [b["batch_id"] for b in ordered], [b["source"]["node_code"] for b in ordered],
            [b["source"].get("service") for b in ordered], [len(b["facts"]) for b in ordered]))}
    taken = [bodies[n] for n, batch_id in accepted.items() if batch_id in new]
    fresh_by_batch = _log(tx, taken)
    if taken:
        tx.execute(store.SET_FRESHES, ([b["batch_id"] for b in taken],
                                       [len(fresh_by_batch.get(b["batch_id"], ())) for b in taken]))
    for source in sorted({b["source"]["node_code"] for b in taken} - {own_code}):
        tx.execute(store.TOUCH_CHILD, (source,))
    fresh_all = []
    for n, batch_id in accepted.items():
        body = bodies[n]
        if batch_id not in new:
            DUPLICATES.inc()
            results[n] = {"batch_id": batch_id, "duplicate": True}
            continue
        fresh = fresh_by_batch.get(batch_id, [])
        fresh_all.extend(fresh)
        source = body["source"]["node_code"]
        if source != own_code and level != "city" and fresh and signer is not None:
            _relay(tx, signer, body, fresh)
        BATCHES.labels(source).inc()
        FACTS.labels(source).inc(len(fresh))
        results[n] = {"batch_id": batch_id, "facts": len(body["facts"]), "fresh": len(fresh)}
    _nodes(tx, fresh_all)
    cells = rules.expand(rules.reduce(fresh_all), own_code)
    _add(tx, cells)
    _note_changes(tx, cells)
    # Every numbered batch taken counts for its sender's sequence, new or a duplicate: a batch sent
    # again on request closes its gap either way (shared/streams.py).
    streams.record(tx, [(bodies[n]["source"]["node_code"], bodies[n]["source"]["service"], streams.FACTS_STREAM,
                         bodies[n]["seq"]) for n in accepted if bodies[n].get("seq") is not None])
    streams.record_heads(tx, heads)
    return [results[n] for n in range(len(bodies))]


def _deidentified(f):
    """A fact as it may be kept and passed on: the keys of the fact format and nothing else. A version 1
    fact's pseudonym (`subject`) is dropped here, before anything is logged, rolled up or relayed
    (shared/facts.py, version 2), and so is any key a sender had no business adding."""
    return f if f.keys() <= facts_mod.FACT_KEYS else {k: v for k, v in f.items() if k in facts_mod.FACT_KEYS}


def _log(tx, taken):
    """Log the facts of these batches once each; {batch_id: [facts not logged before]}."""
    rows = [(_deidentified(f), b["batch_id"], b["source"]["node_code"]) for b in taken for f in b["facts"]]
    if not rows:
        return {}
    logged = {r["fact_id"] for r in tx.all(store.LOG_FACTS, (
        [f["fact_id"] for f, _, _ in rows], [b for _, b, _ in rows], [s for _, _, s in rows],
        [f["type"] for f, _, _ in rows], [int(f.get("v") or 1) for f, _, _ in rows], [f["node"] for f, _, _ in rows],
        [date.fromisoformat(f["occurred_on"]) for f, _, _ in rows], [int(f.get("delta") or 0) for f, _, _ in rows],
        [json.dumps(f.get("dims") or {}, ensure_ascii=False) for f, _, _ in rows]))}
    out = {}
    for f, batch_id, _ in rows:
        if f["fact_id"] in logged:
            logged.discard(f["fact_id"])   # a fact twice in the group counts for its first batch only
            out.setdefault(batch_id, []).append(f)
    return out


def _nodes(tx, facts):
    """What the facts say the nodes now are (node_changed facts), the latest version of each; a
    description that does not read as one is left in the log and changes nothing here."""
    latest = {}
    for f in facts:
        if f.get("type") != facts_mod.NODE_FACT:
            continue
        row = rules.node_description(f)
        if row and (row["code"] not in latest or row["version"] >= latest[row["code"]]["version"]):
            latest[row["code"]] = row
    if latest:
        tx.execute(store.DESCRIBE_NODES, (json.dumps([latest[c] for c in sorted(latest)], ensure_ascii=False),))


def _add(tx, cells):
    if not cells:
        return
    keys_, values = zip(*sorted(cells.items()))  # sorted: concurrent upserts lock rows in one order
    cols = list(zip(*keys_))
    tx.execute(store.ADD_ROLLUPS, (list(cols[0]), list(cols[1]), list(cols[2]), list(cols[3]), list(cols[4]),
                                   list(cols[5]), [v[0] for v in values], [v[1] for v in values]))


def _note_changes(tx, cells):
    """Mark the figures these cells changed for the feed: a (node, metric, period) figure per total
    cell; every fact adds to the total as well as to its dimensions."""
    changed = sorted({(node, metric, period, start) for node, period, start, metric, dim, _ in cells if not dim})
    if changed:
        cols = list(zip(*changed))
        tx.execute(store.NOTE_CHANGES_LOCK)
        tx.execute(store.NOTE_CHANGES, (list(cols[0]), list(cols[1]), list(cols[2]), list(cols[3])))


def _relay(tx, signer, body, fresh):
    """The child's new facts, signed by this instance for the level above (same fact ids), numbered
    in this instance's own facts stream."""
    facts_mod.publish(tx, signer, None, fresh, routing_key=f"relay.up.{body['source']['node_code']}",
                      batch_id=uuid.uuid5(RELAY_NAMESPACE, body["batch_id"]))


def _reject(tx, body, why, dead_letter_key):
    batch_id = body.get("batch_id") if isinstance(body, dict) else None
    key = str(batch_id) if batch_id else hashlib.sha256(json.dumps(body, sort_keys=True, default=str)
                                                        .encode()).hexdigest()
    source = ((body.get("source") or {}).get("node_code") if isinstance(body, dict) else None)
    if isinstance(body, dict) and isinstance(body.get("facts"), list):
        # Kept and dead-lettered as evidence of what was sent, but without the pseudonyms a version 1
        # batch carries: a refused batch is no reason to keep a per-person key.
        body = {**body, "facts": [_deidentified(f) if isinstance(f, dict) else f for f in body["facts"]]}
    first = tx.one(store.ADD_REJECTED, (key, source if isinstance(source, str) else None, why[:500],
                                        json.dumps(body, ensure_ascii=False, default=str)))
    if first is not None:
        REJECTED.labels(_reason_label(why)).inc()
        # Dead-lettered by us, through the outbox, so it happens once and with the batch's own body.
        outbox.add_message(tx, DLX.name, dead_letter_key, str(uuid.uuid5(RELAY_NAMESPACE, f"rejected:{key}")), body,
                           tx.correlation_id)
    return {"rejected": why}


def rebuild(tx, own_code, chunk=20_000):
    """Roll-ups recomputed from the facts log; returns how many facts were replayed. Every figure is
    then marked changed for the feed, under the takers' lock (_note_changes)."""
    tx.execute(store.CLEAR_ROLLUPS)
    tx.execute(store.CLEAR_NODES)
    after = 0
    while rows := tx.all(store.NODE_FACTS_FROM, (after, facts_mod.NODE_FACT, chunk)):
        _nodes(tx, [{"type": facts_mod.NODE_FACT, "node": r["node"], "dims": r["dims"]} for r in rows])
        after = rows[-1]["seq"]
    after, total = 0, 0
    while True:
        rows = tx.all(store.FACTS_FROM, (after, chunk))
        if not rows:
            tx.execute(store.NOTE_CHANGES_LOCK)
            tx.execute(store.ALL_CHANGED)
            return total
        _add(tx, rules.expand(rules.reduce(rows), own_code))
        after, total = rows[-1]["seq"], total + len(rows)


def resend(tx, level, size=500):
    """Everything this instance has logged, signed again for the level above: what a parent linked
    late never received. Safe to repeat: the parent takes each fact once, by its id, whichever batch
    brings it. Returns (batches, facts)."""
    own = tx.source["node_code"]
    # A district's go where its city listens for relays; a street's where its district listens.
    key = f"relay.up.{own}" if level == "district" else "aggregator.resend"
    after, batches, total = 0, 0, 0
    while rows := tx.all(store.LOG_PAGE, (after, size)):
        fs = [{"fact_id": r["fact_id"], "type": r["type"], "v": r["v"], "node": r["node"],
               "occurred_on": r["occurred_on"].isoformat(), "delta": r["delta"],
               "dims": r["dims"]} for r in rows]
        signed = tx.signer.sign(facts_mod.batch(tx.source, fs))
        outbox.add_message(tx, facts_mod.FACTS.name, key, signed["batch_id"], signed, tx.correlation_id)
        after, batches, total = rows[-1]["seq"], batches + 1, total + len(rows)
    return batches, total
