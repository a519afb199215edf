"""Emergency broadcasts (应急通知): written, approved by a second person, sent to a whole area, counted.

- A broadcast is drafted for an area (a node-code prefix inside the author's scope and known to
  the registry), edited as often as needed (every edit is a new version, and sends it back to
  draft), submitted, then approved or rejected (with a reason) by someone other than the author
  of the current version (rules.may_approve, the two-person rule).
- Approval fans it out at once as a critical notice: it bypasses opt-outs and quiet hours. The
  sender marks it sent when nothing of it is left queued.
- It can be cancelled until it is sent: queued deliveries are cancelled with it, and a batch
  already in the sender's hands finishes first (its rows are locked), so nothing is half-cancelled.
- A directive from a superior level (district, city) starts an already-approved broadcast, once
  per directive id, however often the directive arrives.
- The roll-up counts, per community, the people targeted, reached on any channel, and who read it.
  At a district or city, which has no subscribers of its own, `GET /broadcasts/{id}` shows instead
  the counts the streets reported up under its directive (`sent_down_as`), per street and per
  community, from the aggregator's roll-ups.
- At a district or city, an approved broadcast also goes down as a directive, signed with this
  instance's key, on the `directives` exchange (federated to every street below); each street
  reports its acknowledgement counts back up as facts.
"""
import uuid

from services.notification import fanout, rules, store
from services.notification.schemas import (BroadcastDraftSchema, BroadcastEditSchema, BroadcastListQuerySchema,
                                           BroadcastReasonSchema, DeliveryQuerySchema, DeliverySchema, DirectiveSchema)
from shared import clock, facts, outbox, streams
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed, load
from shared.messaging import DIRECTIVES
from shared.nodes import known_in, why_not_live
from shared.scope import forbid, in_scope, under

DIRECTIVE_ROUTING_KEY = "broadcast.emergency"
DIRECTIVE_IDS = uuid.UUID("0d3c8c62-2a4e-4f43-9b6f-0a1f1a5e7c21")


# What a broadcast's reply says of it (the gateway's BroadcastSchema): named, so a column added to
# the table is not sent to callers by accident.
FIELDS = ("id", "request_id", "directive_id", "prefix", "title", "message", "channels", "status", "version",
          "created_by", "edited_by", "approved_by", "reason", "notice_id")
MEASURES = ("targeted", "reached", "read")


def sent_down_as(tx, row):
    """The directive id this broadcast went down under, at a district or city once approved (the
    streets below report their acknowledgements under it); None at a street or before approval."""
    if not tx.source or tx.source.get("level") == "street" or row["notice_id"] is None:
        return None
    return row["directive_id"] or f"{tx.source['node_code']}:broadcast:{row['id']}"


def _view(tx, row, full=True):
    view = {k: row[k] for k in FIELDS}
    view.update(channels=list(row["channels"]), created_at=row["created_at"].isoformat(),
                updated_at=row["updated_at"].isoformat(), sent_down_as=sent_down_as(tx, row))
    if not full:
        return view
    view["versions"] = [{"version": v["version"], "prefix": v["prefix"], "title": v["title"],
                         "message": v["message"], "channels": list(v["channels"]), "actor": v["actor"],
                         "created_at": v["created_at"].isoformat()}
                        for v in tx.all(store.BROADCAST_VERSIONS, (row["id"],))]
    view["log"] = [{"at": e["at"].isoformat(), "status": e["status"], "version": e["version"], "actor": e["actor"],
                    "reason": e["reason"]} for e in tx.all(store.BROADCAST_LOG, (row["id"],))]
    view["rollup"] = rollup(tx, row["notice_id"]) if row["notice_id"] else None
    return view


def rollup(tx, notice_id):
    """This instance's own deliveries of the notice, per community. A district or city has no
    subscribers of its own: its figures come from the roll-ups (the gateway adds them, `streets`
    and `communities` from the aggregator, `source` "rollups")."""
    communities = [{"community_code": c["community_code"], **{k: c[k] for k in MEASURES}}
                   for c in tx.all(store.ROLLUP, (notice_id,))]
    total = {k: sum(c[k] for c in communities) for k in MEASURES}
    by_channel = {}
    for r in tx.all(store.DELIVERY_COUNTS, (notice_id,)):
        by_channel.setdefault(r["channel"], {})[r["status"]] = r["n"]
    return {"source": "deliveries", "streets": [], "communities": communities, "total": total,
            "channels": by_channel}


def area(nodes, prefix, caller, field="prefix"):
    """The area's name, if the registry knows a node with this code, it is not retired, and the token reaches it."""
    if not in_scope(prefix, caller):
        forbid(prefix, caller, field)
    try:
        node = nodes(prefix)
    except NotFound:
        raise ValidationFailed("unknown area", {field: [f"no node {prefix} in the registry"]})
    # Nobody lives in a retired community any more: a notice there would reach no one, and say nothing.
    why = why_not_live({"code": prefix, **node}, clock.today())
    if why:
        raise ValidationFailed("the area is retired", {field: [why]})
    return node["name"]


def _in_scope(tx, broadcast_id, caller, lock=True):
    row = tx.one(store.BROADCAST_FOR_UPDATE if lock else store.BROADCAST, (broadcast_id,))
    if row is None or not in_scope(row["prefix"], caller):
        # Outside the token's reach reads as absent: a neighbour's broadcasts are not its business.
        raise NotFound(f"no broadcast {broadcast_id}", {"broadcast_id": [f"no broadcast {broadcast_id}"]})
    return row


def _move(tx, row, to, actor, reason=None, **extra):
    why = rules.broadcast_move(row["status"], to)
    if why:
        raise Conflict(why, {"status": [why]})
    tx.execute(store.MOVE_BROADCAST, {"id": row["id"], "status": to, "reason": reason,
                                      "approved_by": extra.get("approved_by"), "notice_id": extra.get("notice_id")})
    tx.execute(store.LOG_BROADCAST, (actor, reason, row["id"]))
    tx.emit(f"broadcast_{to}", {"id": row["id"], "prefix": row["prefix"], "version": row["version"],
                                "actor": actor, "reason": reason, "directive_id": row["directive_id"]})


def create(tx, nodes, data, caller):
    d = load(BroadcastDraftSchema, data)
    if d.get("request_id"):
        first = tx.one(store.BROADCAST_BY_REQUEST, (d["request_id"],))
        if first is not None:
            return _replay(tx, first, caller)
    area(nodes, d["prefix"], caller)
    row = tx.one(store.ADD_BROADCAST, {**d, "request_id": d.get("request_id"), "directive_id": None,
                                       "status": "draft", "actor": caller["actor"], "approved_by": None})
    if row is None:  # the same request committed meanwhile
        return _replay(tx, tx.one(store.BROADCAST_BY_REQUEST, (d["request_id"],)), caller)
    tx.execute(store.ADD_BROADCAST_VERSION, (row["id"],))
    tx.execute(store.LOG_BROADCAST, (caller["actor"], None, row["id"]))
    view = _view(tx, tx.one(store.BROADCAST, (row["id"],)))
    tx.emit("broadcast_draft", {"id": view["id"], "prefix": view["prefix"], "version": 1, "actor": caller["actor"]})
    return view


def _replay(tx, first, caller):
    """The first broadcast made with this request id, to its author's retry; anyone else's is a conflict."""
    if first["created_by"] != caller["actor"]:
        raise Conflict("this request_id was used for another broadcast",
                       {"request_id": ["already used by another author: choose a new one"]})
    return {**_view(tx, _in_scope(tx, first["id"], caller, lock=False)), "replayed": True}


def edit(tx, nodes, broadcast_id, data, caller):
    d = load(BroadcastEditSchema, data)
    row = _in_scope(tx, broadcast_id, caller)
    if row["status"] not in ("draft", "pending_approval", "rejected"):
        raise Conflict(f"a broadcast that is {row['status']} cannot be edited",
                       {"status": ["only a draft, a submitted or a rejected broadcast is edited"]})
    if "prefix" in d:
        area(nodes, d["prefix"], caller)
    merged = {**row, **d, "actor": caller["actor"], "id": broadcast_id}
    tx.one(store.EDIT_BROADCAST, merged)
    tx.execute(store.ADD_BROADCAST_VERSION, (broadcast_id,))
    tx.execute(store.LOG_BROADCAST, (caller["actor"], "edited", broadcast_id))
    view = _view(tx, tx.one(store.BROADCAST, (broadcast_id,)))
    tx.emit("broadcast_edited", {"id": broadcast_id, "prefix": view["prefix"], "version": view["version"],
                                 "actor": caller["actor"]})
    return view


def submit(tx, broadcast_id, caller):
    row = _in_scope(tx, broadcast_id, caller)
    _move(tx, row, "pending_approval", caller["actor"])
    return _view(tx, tx.one(store.BROADCAST, (broadcast_id,)))


def _second_person(row, caller):
    why = rules.may_approve(row, caller["actor"])
    if why:
        raise Forbidden(why, {"actor": [why]})


def approve(tx, nodes, broadcast_id, caller, now, digest_hour):
    row = _in_scope(tx, broadcast_id, caller)
    _second_person(row, caller)
    _move(tx, row, "approved", caller["actor"], approved_by=caller["actor"])
    return _send(tx, nodes, {**row, "status": "approved"}, caller["actor"], now, digest_hour)


def _send(tx, nodes, row, actor, now, digest_hour):
    try:
        area = nodes(row["prefix"])["name"]
    except Exception:  # the area's name only labels the message; the registry being away must not stop it
        area = row["title"]
    if tx.source and tx.source.get("level") != "street":
        _direct(tx, row, actor)
    notice = {"trigger_key": f"broadcast:{row['id']}", "kind": "broadcast", "category": "emergency",
              "priority": "critical", "template_code": "emergency", "scope_code": row["prefix"],
              "context": {"area": area, "title": row["title"], "message": row["message"]},
              "target": {"prefix": row["prefix"]}, "created_by": actor}
    notice_id, added, _ = fanout.record(tx, notice, {"prefix": row["prefix"]}, row["channels"], now, digest_hour)
    _move(tx, row, "sending", actor, notice_id=notice_id)
    view = _view(tx, tx.one(store.BROADCAST, (row["id"],)))
    view["deliveries_queued"] = added
    return view


def _direct(tx, row, approved_by):
    """At a district or city: the approved broadcast goes down to every street below as a signed directive."""
    code = tx.source["node_code"]
    # A directive from above keeps its id on the way down, so every street's counts add up under it.
    directive = {"v": 1, "issuer": code, "directive": {
        "id": row["directive_id"] or f"{code}:broadcast:{row['id']}", "prefix": row["prefix"],
        "title": row["title"],
        "message": row["message"], "channels": list(row["channels"]), "issued_by": f"{code}:{row['created_by']}",
        "approved_by": f"{code}:{approved_by}"}}
    # Numbered in this instance's broadcasts stream (shared/streams.py): a street that misses one asks again.
    signed = tx.signer.sign(streams.numbered(tx, streams.BROADCASTS_STREAM, directive))
    event_id = str(uuid.uuid5(DIRECTIVE_IDS, directive["directive"]["id"]))
    outbox.add_message(tx, DIRECTIVES.name, DIRECTIVE_ROUTING_KEY, event_id, signed, tx.correlation_id,
                       stream=signed["stream"], seq=signed["seq"])
    tx.emit("directive_issued", {"broadcast_id": row["id"], "directive_id": directive["directive"]["id"],
                                 "prefix": row["prefix"]})


def report_acknowledgements(tx, today):
    """Facts for the level above: per community, the change in people targeted, reached and who read
    each directive's broadcast since the last report (deltas, so the district can sum streets)."""
    published = 0
    for b in tx.all(store.DIRECTIVE_BROADCASTS):
        tx.one(store.BROADCAST_FOR_UPDATE, (b["id"],))  # one reporter at a time, even on the first report
        tx.execute(store.ACKNOWLEDGED_THROUGH, (b["id"],))
        reported = {r["community_code"]: r for r in tx.all(store.REPORTED, (b["id"],))}
        out = []
        for c in rollup(tx, b["notice_id"])["communities"]:
            before = reported.get(c["community_code"]) or {"targeted": 0, "reached": 0, "read": 0}
            for measure in ("targeted", "reached", "read"):
                change = c[measure] - before[measure]
                if change:
                    out.append(facts.fact(f"broadcast_{measure}", c["community_code"], today, delta=change,
                                          directive=b["directive_id"]))
            if any(c[m] != before[m] for m in ("targeted", "reached", "read")):
                tx.execute(store.SET_REPORTED, (b["id"], c["community_code"], c["targeted"], c["reached"], c["read"]))
        if out:
            tx.publish_facts("broadcast_acknowledged", out)
            published += len(out)
    return published


def reject(tx, broadcast_id, data, caller):
    d = load(BroadcastReasonSchema, data)
    row = _in_scope(tx, broadcast_id, caller)
    _second_person(row, caller)
    _move(tx, row, "rejected", caller["actor"], reason=d["reason"])
    return _view(tx, tx.one(store.BROADCAST, (broadcast_id,)))


def cancel(tx, broadcast_id, data, caller):
    d = load(BroadcastReasonSchema, data)
    row = _in_scope(tx, broadcast_id, caller)
    _move(tx, row, "cancelled", caller["actor"], reason=d["reason"])
    stopped = tx.execute(store.CANCEL_DELIVERIES, (row["notice_id"],)).rowcount if row["notice_id"] else 0
    view = _view(tx, tx.one(store.BROADCAST, (broadcast_id,)))
    view["deliveries_cancelled"] = stopped
    return view


def get(tx, broadcast_id, caller):
    return _view(tx, _in_scope(tx, broadcast_id, caller, lock=False))


def list_broadcasts(tx, query, caller, nodes=None):
    q = load(BroadcastListQuerySchema, query)
    prefix = under(q, caller)
    if nodes is not None:
        known_in(nodes, q, "under")
    rows = tx.all(store.BROADCASTS, {"under": prefix, "status": q.get("status"),
                                     "after": q["after"] or None, "limit": q["limit"]})
    items = [_view(tx, r, full=False) for r in rows]
    return {"items": items, "next": items[-1]["id"] if len(items) == q["limit"] else None}


def deliveries(tx, broadcast_id, query, caller):
    q = load(DeliveryQuerySchema, query)
    row = _in_scope(tx, broadcast_id, caller, lock=False)
    if row["notice_id"] is None:
        return {"items": [], "next": None}
    rows = tx.all(store.DELIVERIES_OF, {"notice_id": row["notice_id"], "status": q.get("status"),
                                        "after": q["after"] or None, "limit": q["limit"]})
    items = DeliverySchema(many=True).dump(rows)  # the documented fields, whatever else the row has
    return {"items": items, "next": items[-1]["id"] if len(items) == q["limit"] else None}


def start_from_directive(tx, nodes, directive, instance_code, now, digest_hour):
    """A superior level's broadcast, approved there: sent here once per directive id."""
    d = load(DirectiveSchema, directive)
    first = tx.one(store.BROADCAST_BY_DIRECTIVE, (d["id"],))
    if first is not None:
        return {**_view(tx, first), "replayed": True}
    # A district's directive names its own area; here it reaches this street's part of it.
    if instance_code.startswith(d["prefix"]):
        prefix = instance_code
    elif d["prefix"].startswith(instance_code):
        prefix = d["prefix"]
    else:
        raise ValidationFailed("the directive's area is not this instance's",
                               {"prefix": [f"{d['prefix']} does not cover or lie inside {instance_code}"]})
    actor = f"directive:{d['issued_by']}"
    row = tx.one(store.ADD_BROADCAST, {"request_id": None, "directive_id": d["id"], "prefix": prefix,
                                       "title": d["title"], "message": d["message"], "channels": d["channels"],
                                       "status": "approved", "actor": actor, "approved_by": d["approved_by"]})
    if row is None:
        return {**_view(tx, tx.one(store.BROADCAST_BY_DIRECTIVE, (d["id"],))), "replayed": True}
    tx.execute(store.ADD_BROADCAST_VERSION, (row["id"],))
    tx.execute(store.LOG_BROADCAST, (actor, f"directive {d['id']} approved by {d['approved_by']}", row["id"]))
    return _send(tx, nodes, tx.one(store.BROADCAST, (row["id"],)), actor, now, digest_hour)


def close_finished(tx):
    """Mark sent every sending broadcast with nothing left queued; returns their ids."""
    done = []
    for b in tx.all(store.SENDING_BROADCASTS):
        if not tx.one(store.UNSETTLED, (b["notice_id"],))["open"]:
            row = tx.one(store.BROADCAST_FOR_UPDATE, (b["id"],))
            if row["status"] == "sending":
                _move(tx, row, "sent", "system")
                done.append(b["id"])
    return done
