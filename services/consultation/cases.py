"""Matters between levels: escalated up from a street as de-identified cases, answered down by the district.

- A street escalates a matter it cannot settle: the matter waits at the district's level (street
  tokens no longer act on it), and a case goes up, signed with the street's key, on the `facts`
  exchange (`case.up.escalated`), which federation carries to the district. The case names no
  raiser and carries none of the resident's words: category, urgency, channel, community, the day
  it was raised and the street's own reason for escalating. Cases travel on their own `cases`
  exchange, federated up like `facts`, so no department's facts feed carries them.
- The district takes a case once per case id, only from a registered child (the aggregator knows
  their keys) and only about that child's own communities.
- The district's answer (answered, or referred with where to) goes down on `directives`
  (`case.answer.<street>`), signed with its key. The street that raised the matter applies it:
  the matter is screened with the district's answer and comes back to the street, which settles
  it; its settlement counts where it was raised.
- Both are numbered (shared/streams.py): a street's cases in its `cases` stream, the district's
  answers to a street in that street's `answers.<street>` stream; a case or answer lost between
  the levels is asked for again.
"""
import uuid
from datetime import date

from services.consultation import store
from services.consultation.schemas import CaseAnswerSchema, CaseListQuerySchema
from shared import facts, outbox, streams
from shared.errors import Conflict, NotFound, ValidationFailed, load
from shared.messaging import CASES, DIRECTIVES
from shared.scope import in_scope, under
from shared import clock

UP_KEY = "case.up.escalated"
DOWN_PREFIX = "case.answer"
IDS = uuid.UUID("3f9d6a0e-8d7b-4c1e-b1f4-5b7e2c9a6d44")


class Rejected(ValidationFailed):
    """A case or answer that is not signed by whom it must be, or is about someone else's matter."""


def case_id(street, matter_id):
    return f"{street}:{matter_id}"


def escalate_up(tx, matter, note):
    """At the street: the case for the district, signed, through the outbox with the escalation."""
    street = tx.source["node_code"]
    body = {"v": 1, "case_id": case_id(street, matter["id"]), "source": {"node_code": street},
            "case": {"community_code": matter["community_code"], "category": matter["category"],
                     "urgency": matter["urgency"], "channel": matter["channel"],
                     "raised_on": clock.local_date(matter["raised_at"]).isoformat(), "reason": note}}
    signed = tx.signer.sign(streams.numbered(tx, streams.CASES_STREAM, body))
    outbox.add_message(tx, CASES.name, UP_KEY, str(uuid.uuid5(IDS, "up:" + body["case_id"])), signed,
                       tx.correlation_id, stream=signed["stream"], seq=signed["seq"])
    return signed


def receive(tx, body, key_of):
    """At the district: a case from a street below, or the head of a street's cases stream.
    `key_of(code)` is that child's key, or None."""
    head = streams.is_head(body)
    if not isinstance(body, dict) or not (head or isinstance(body.get("case"), dict)):
        raise Rejected("not a case", {"case": ["missing"]})
    source = (body.get("source") or {}).get("node_code")
    own = tx.source["node_code"]
    key = key_of(source) if isinstance(source, str) and source.startswith(own) and source != own else None
    if key is None or not facts.verify(body, key):
        raise Rejected(f"the case is not signed by a registered child ({source})", {"signature": ["refused"]})
    streams.count(tx, source, "consultation", streams.CASES_STREAM, body)   # new or sent again: either way
    if head:
        return False
    c = body["case"]
    if not str(body.get("case_id", "")).startswith(f"{source}:") or \
            not str(c.get("community_code", "")).startswith(source):
        raise Rejected("the case is about another street's matter", {"case_id": ["outside the sender's subtree"]})
    row = tx.one(store.ADD_CASE, {"case_id": body["case_id"], "from_code": source,
                                  "community_code": c["community_code"], "category": c["category"],
                                  "urgency": c["urgency"], "channel": c["channel"], "reason": c.get("reason"),
                                  "raised_on": date.fromisoformat(c["raised_on"])})
    if row is not None:
        tx.emit("case_received", {"case_id": body["case_id"], "from_code": source, "category": c["category"],
                                  "urgency": c["urgency"]})
    return row is not None


def _view(row):
    return {**row, "raised_on": row["raised_on"].isoformat(), "received_at": row["received_at"].isoformat(),
            "answered_at": row["answered_at"].isoformat() if row["answered_at"] else None}


def list_cases(tx, query, caller):
    q = load(CaseListQuerySchema, query)
    return {"items": [_view(r) for r in tx.all(store.CASES, {"under": under(q, caller), "status": q.get("status"),
                                                             "limit": q["limit"]})]}


def answer(tx, cid, data, caller):
    """At the district: the answer, recorded and sent down to the street that raised the matter."""
    d = load(CaseAnswerSchema, data)
    row = tx.one(store.CASE_FOR_UPDATE, (cid,))
    if row is None or not in_scope(row["from_code"], caller):
        raise NotFound(f"no case {cid}", {"case_id": [f"no case {cid}"]})
    if row["status"] == "answered":
        raise Conflict("the case is answered already", {"case_id": [f"answered at {row['answered_at']:%Y-%m-%d}"]})
    if d["outcome"] == "referred" and not d.get("referred_to"):
        raise ValidationFailed("say where it is referred", {"referred_to": ["required when referred"]})
    tx.execute(store.ANSWER_CASE, {"case_id": cid, "outcome": d["outcome"], "answer": d["answer"],
                                   "referred_to": d.get("referred_to"), "actor": caller["actor"]})
    body = {"v": 1, "issuer": tx.source["node_code"], "case_id": cid, "outcome": d["outcome"],
            "answer": d["answer"], "referred_to": d.get("referred_to"), "answered_by": caller["actor"]}
    signed = tx.signer.sign(streams.numbered(tx, streams.answers_stream(row["from_code"]), body))
    outbox.add_message(tx, DIRECTIVES.name, f"{DOWN_PREFIX}.{row['from_code']}",
                       str(uuid.uuid5(IDS, "down:" + cid)), signed, tx.correlation_id,
                       stream=signed["stream"], seq=signed["seq"])
    tx.emit("case_answered", {"case_id": cid, "outcome": d["outcome"], "from_code": row["from_code"]})
    return _view(tx.one(store.CASE, (cid,)))
