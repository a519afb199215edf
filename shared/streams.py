"""Sequenced messages between levels: completeness proven by the two ends, not by the broker.

A confirm proves the broker took a message, not that the level above counted it: federation, a
broker stopping, a queue unbound for a moment can each drop a confirmed message. So every message
that crosses a level carries a number, gapless per sender (instance, service) and stream:

- up: fact batches (`facts`, every service) and escalated cases (`cases`, consultation);
- down: broadcast directives (`broadcasts`, notification, to every child) and answers to cases
  (`answers.<street>`, consultation, one stream per street, so each street's is gapless for it).


- **Sender.** The number is taken in the transaction that writes the message to the outbox
  (`allocate`, one counter row per stream), so a rolled-back transaction gives its number back and
  none is ever skipped. The cost: writers of one stream in one service queue on that row from the
  moment they take a number until they commit; `facts.publish` takes it as the batch is signed,
  which most use cases do last. The outbox row keeps `stream` and `seq` and stays for the outbox's
  retention (7 days), sent or not.
- **Receiver.** Per sender it keeps the highest contiguous number it has counted and the numbers
  seen above it (`record`, in the transaction that counts the message). A number above the first
  one seen is a gap until it arrives. The first message seen from a sender sets where counting
  starts: what a sender made before its parent was linked is brought by `linli facts resend`.
- **Heads.** A dropped last message leaves no gap behind it, so each relay announces, every
  `HEAD_SECONDS`, the highest number it has sent per stream (`head_message`); a head above the
  contiguous number opens a gap like any later message would.
- **Resend.** A gap older than `RESEND_AFTER_SECONDS` (default 30) makes the receiver write a signed
  resend request to its outbox with the routing key `resend.<sender code>.<service>`: to a child on
  the `directives` exchange (federated downward); to the parent on the `cases` exchange (federated
  upward, and read by no department's feed), where the parent's aggregator, which holds its
  children's keys, checks the child's signature and passes the request on to its own services
  under its own key (`forward_request`). The sender's relay checks the signature (its parent's key,
  or its own) and marks those outbox rows unsent, so they go out again
  exactly as they were: same batch id, same signature. The receiver's de-duplication by batch and
  fact id keeps the effect exactly once. A gap still open is asked again with back-off (30 s
  doubling to 10 min); a number the sender no longer has is logged there, and the gap stays open
  for the operator (the alert fires after 5 minutes).
"""
import json
import logging
import uuid
from datetime import datetime, timezone

from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)

FACTS_STREAM = "facts"
CASES_STREAM = "cases"
BROADCASTS_STREAM = "broadcasts"
# Streams a child sends up: a gap in one is asked for downward, on `directives`; a gap in any other
# stream (sent down by the parent) is asked for upward, on `cases`.
UPWARD_STREAMS = (FACTS_STREAM, CASES_STREAM)
# The services that receive numbered messages, and so keep positions.
RECEIVERS = ("aggregator", "consultation", "notification")
RESEND_AFTER_SECONDS = 30
HEAD_SECONDS = 15
MAX_SEQS_PER_REQUEST = 1000
RESEND_PREFIX = "resend"

# -- SQL (the tables are in shared/migrations/0003_streams.sql, in every service schema) --
ALLOCATE = ("INSERT INTO stream_heads (stream, seq) VALUES (%s, %s) ON CONFLICT (stream) "
            "DO UPDATE SET seq = stream_heads.seq + excluded.seq RETURNING seq")
# Only numbers above the contiguous one are kept: one at or below it was counted already.
SEE = ("INSERT INTO stream_seen (source, service, stream, seq) SELECT u.source, u.service, u.stream, u.seq "
       "FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[]) AS u(source, service, stream, seq) "
       "JOIN stream_positions p USING (source, service, stream) WHERE u.seq > p.contiguous ON CONFLICT DO NOTHING")
# First sight of a sender: counting starts just below the lowest number in this group.
START = ("INSERT INTO stream_positions (source, service, stream, contiguous, highest) "
         "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::bigint[]) "
         "ON CONFLICT DO NOTHING")
SEEN_OF = ("ARRAY(SELECT s.seq FROM stream_seen s WHERE s.source = p.source AND s.service = p.service "
           "AND s.stream = p.stream ORDER BY s.seq) AS seen")
POSITIONS_FOR = ("SELECT p.source, p.service, p.stream, p.contiguous, p.highest, p.gap_since, p.requested, "
                 f"p.answered, p.next_request_at, {SEEN_OF} FROM stream_positions p "
                 "WHERE (p.source, p.service, p.stream) IN (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[])) "
                 "ORDER BY 1, 2, 3 FOR UPDATE")
SET_POSITION = ("UPDATE stream_positions SET contiguous = %s, highest = %s, gap_since = %s, next_request_at = %s, "
                "answered = %s, updated_at = now() WHERE source = %s AND service = %s AND stream = %s")
CLOSE_GAP = ("UPDATE stream_positions SET contiguous = highest, gap_since = NULL, next_request_at = NULL, "
             "updated_at = now() WHERE source = %s AND service = %s AND stream = %s")
FORGET_SEEN = "DELETE FROM stream_seen WHERE source = %s AND service = %s AND stream = %s AND seq <= %s"
DUE = (f"SELECT p.source, p.service, p.stream, p.contiguous, p.highest, {SEEN_OF} FROM stream_positions p "
       "WHERE p.gap_since IS NOT NULL AND p.gap_since <= now() - make_interval(secs => %s) "
       "AND (p.next_request_at IS NULL OR p.next_request_at <= now()) FOR UPDATE SKIP LOCKED")
REQUESTED = ("UPDATE stream_positions SET requested = requested + 1, "
             "next_request_at = now() + make_interval(secs => least(600, 30 * power(2, requested))) "
             "WHERE source = %s AND service = %s AND stream = %s")
POSITIONS = ("SELECT p.source, p.service, p.stream, p.contiguous, p.highest, p.requested, p.answered, "
             "extract(epoch FROM now() - p.gap_since) AS gap_age, "
             "p.highest - p.contiguous - (SELECT count(*) FROM stream_seen s WHERE s.source = p.source "
             "AND s.service = p.service AND s.stream = p.stream) AS missing "
             "FROM stream_positions p ORDER BY 1, 2, 3")
RESEND = ("UPDATE outbox SET sent_at = NULL, next_attempt_at = now(), attempts = 0, last_error = %s "
          "WHERE stream = %s AND seq = ANY(%s) RETURNING seq")
# The highest number sent per stream, with where its last message went (a head follows the same
# route): one index probe per stream, never a scan of the retained rows.
HEADS = ("SELECT h.stream, o.seq, o.exchange, o.routing_key FROM stream_heads h CROSS JOIN LATERAL "
         "(SELECT seq, exchange, routing_key FROM outbox WHERE stream = h.stream AND sent_at IS NOT NULL "
         "ORDER BY seq DESC LIMIT 1) o")

GAP_AGE = Gauge("linli_stream_gap_age_seconds", "Age of the oldest open gap in a sender's sequence (0: none)",
                ["source", "service", "stream"])
MISSING = Gauge("linli_stream_missing", "Numbers missing in a sender's sequence", ["source", "service", "stream"])
CONTIGUOUS = Gauge("linli_stream_contiguous", "Highest number below which nothing is missing, per sender",
                   ["source", "service", "stream"])
REQUESTED_TOTAL = Gauge("linli_stream_resends_requested", "Resend requests sent to a sender",
                        ["source", "service", "stream"])
ANSWERED_TOTAL = Gauge("linli_stream_resends_answered", "Gaps closed after a resend request",
                       ["source", "service", "stream"])
RESENT = Counter("linli_stream_resent_total", "Messages marked for sending again on a resend request",
                 ["service", "stream"])
RESEND_GONE = Counter("linli_stream_resend_gone_total", "Requested numbers this sender no longer has",
                      ["service", "stream"])


# -- sender --

def allocate(tx, stream, n=1):
    """Take `n` numbers of `stream` in this transaction; returns the first."""
    return tx.one(ALLOCATE, (stream, n))["seq"] - n + 1


def receiver(stream):
    """The service whose schema counts `stream`."""
    if stream == FACTS_STREAM:
        return "aggregator"
    return "notification" if stream == BROADCASTS_STREAM else "consultation"


def answers_stream(street):
    """The stream of a district's answers to one street's cases."""
    return f"answers.{street}"


def numbered(tx, stream, body):
    """`body` with its number in `stream`, taken in this transaction; sign what this returns and
    pass `stream` and its `seq` to the outbox row."""
    return {**body, "stream": stream, "seq": allocate(tx, stream)}


def is_head(body):
    return isinstance(body, dict) and body.get("kind") == "stream_head"


def head_sender(body):
    """The instance code a head names as its sender (None if it names none)."""
    source = body.get("source")
    return source.get("node_code") if isinstance(source, dict) else None


def count(tx, sender, service, stream, body):
    """At a receiver, in the transaction that takes `body` from `sender` (its signature checked by
    the caller): count its number if it is a message or head of `stream`, the one stream of that
    sender this instance follows. Unnumbered messages (sent before numbering) and other streams
    (another street's answers) are not counted; returns whether it was."""
    seq = body.get("seq")
    if body.get("stream") != stream or not isinstance(seq, int) or isinstance(seq, bool) or seq < 1 \
            or not isinstance(sender, str):
        return False
    if is_head(body):
        record_heads(tx, [(sender, service, stream, seq)])
    else:
        record(tx, [(sender, service, stream, seq)])
    return True


def head_message(signer, source, stream, seq):
    """A signed announcement: this sender has sent `stream` up to `seq`."""
    return signer.sign({"kind": "stream_head", "v": 1, "source": _source(source), "stream": stream, "seq": seq,
                        "issued_at": datetime.now(timezone.utc).isoformat()})


def resend_request(signer, own, to_code, to_service, stream, seqs, for_child=None):
    body = {"kind": "resend_request", "v": 1, "request_id": str(uuid.uuid4()), "from": _source(own),
            "to": {"node_code": to_code, "service": to_service}, "stream": stream,
            "seqs": sorted(seqs)[:MAX_SEQS_PER_REQUEST], "issued_at": datetime.now(timezone.utc).isoformat()}
    if for_child:
        body["for_child"] = for_child
    return signer.sign(body)


def request_routing_key(code, service):
    return f"{RESEND_PREFIX}.{code}.{service}"


def request_exchange(stream):
    """Where a request for `stream` goes: down to a child, or up to the parent (see the module doc)."""
    from shared.messaging import CASES, DIRECTIVES
    return DIRECTIVES if stream in UPWARD_STREAMS else CASES


def forward_request(tx, signer, own_source, body, key_of):
    """At a parent's aggregator: a child's request for something the parent sent down. Checked with
    the child's key (`key_of(code)`: a registered child's, or None), then written to the outbox under
    this instance's key for the service asked, on `directives` where that service's listener takes
    it. Returns why it was refused, or None; a request addressed elsewhere (this instance's own,
    going up to its parent) is None too and nothing is written."""
    from shared import outbox
    from shared.messaging import DIRECTIVES
    own = own_source["node_code"]
    if not isinstance(body, dict) or (body.get("to") or {}).get("node_code") != own:
        return None
    child = (body.get("from") or {}).get("node_code")
    service = (body.get("to") or {}).get("service")
    if not isinstance(service, str) or not service.isidentifier():
        return "no service named"
    key = key_of(child) if isinstance(child, str) and child.startswith(own) and child != own else None
    why = request_refusal(body, own, service, [key]) if key else f"{child} is not a registered child"
    if why:
        return why
    if body["stream"] in UPWARD_STREAMS:
        return f"{body['stream']} is sent up, not down"
    if body["stream"].startswith("answers.") and body["stream"] != answers_stream(child):
        return "another street's answers"
    mine = resend_request(signer, own_source, own, service, body["stream"], body["seqs"], for_child=child)
    outbox.add_message(tx, DIRECTIVES.name, request_routing_key(own, service), mine["request_id"], mine,
                       tx.correlation_id)
    return None


def request_refusal(body, own_code, service, keys):
    """Why a resend request must not be acted on (None: act on it). `keys`: public keys trusted to
    ask, the parent's and this instance's own."""
    from shared import facts
    if not isinstance(body, dict) or body.get("kind") != "resend_request":
        return "not a resend request"
    to = body.get("to") or {}
    if to.get("node_code") != own_code or to.get("service") != service:
        return f"addressed to {to.get('node_code')}/{to.get('service')}"
    seqs = body.get("seqs")
    if not isinstance(body.get("stream"), str) or not isinstance(seqs, list) or not seqs or \
            not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in seqs) or \
            len(seqs) > MAX_SEQS_PER_REQUEST:
        return "malformed"
    if not any(k and facts.verify(body, k) for k in keys):
        return "the signature does not verify with the parent's key or this instance's own"
    return None


def answer(tx, body):
    """Mark the requested messages unsent, so the relay sends them again as they were. Returns
    (numbers marked, numbers this sender no longer has)."""
    asked = set(body["seqs"])
    by = (body.get("from") or {}).get("node_code")
    found = {r["seq"] for r in tx.all(RESEND, (f"resend requested by {by}", body["stream"], sorted(asked)))}
    tx.execute(f"NOTIFY linli_outbox_{tx.source['service']}")
    return sorted(found), sorted(asked - found)


# -- receiver --

def advance(contiguous, seen):
    """(new contiguous, numbers still above it): pure, for the rule's own tests."""
    above = sorted(s for s in set(seen) if s > contiguous)
    while above and above[0] == contiguous + 1:
        contiguous = above.pop(0)
    return contiguous, above


def record(tx, numbered):
    """Count messages seen in this transaction: `numbered` is [(source code, service, stream, seq)]
    of messages taken (new or not: a resent one closes its gap either way). A sender first seen
    starts counting just below its lowest number here."""
    if numbered:
        keys = _start(tx, numbered, min, -1)
        tx.execute(SEE, tuple(map(list, zip(*numbered))))
        _settle(tx, keys, {})


def record_heads(tx, heads):
    """Heads: [(source code, service, stream, seq)]. A head first seen sets where counting starts."""
    if heads:
        top = {}
        for source, service, stream, seq in heads:
            top[(source, service, stream)] = max(top.get((source, service, stream), seq), seq)
        _settle(tx, _start(tx, heads, max, 0), top)


def _start(tx, numbered, pick, offset):
    """Positions for senders not seen before, at `pick` (min or max) of their numbers + `offset`;
    returns the senders' keys, sorted (rows are locked in one order)."""
    first = {}
    for source, service, stream, seq in numbered:
        key = (source, service, stream)
        first[key] = pick(first.get(key, seq), seq)
    keys = sorted(first)
    tx.execute(START, ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
                       [first[k] + offset for k in keys], [first[k] + offset for k in keys]))
    return keys


def _settle(tx, keys, heads):
    now = datetime.now(timezone.utc)
    for p in tx.all(POSITIONS_FOR, ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys])):
        key = (p["source"], p["service"], p["stream"])
        contiguous, above = advance(p["contiguous"], p["seen"])
        highest = max([p["highest"], contiguous, heads.get(key, 0)] + above)
        gap_since, next_request_at, answered = p["gap_since"], p["next_request_at"], p["answered"]
        if highest > contiguous:
            gap_since = gap_since or now
        else:
            if gap_since is not None and p["requested"] and next_request_at is not None:
                answered += 1   # a gap that was asked for has closed
            gap_since = next_request_at = None
        tx.execute(SET_POSITION, (contiguous, highest, gap_since, next_request_at, answered) + key)
        if contiguous > p["contiguous"]:
            tx.execute(FORGET_SEEN, key + (contiguous,))


def request_missing(tx, signer, own_source, after_seconds=RESEND_AFTER_SECONDS):
    """Write a resend request for every gap older than `after_seconds` that is due to be asked
    (again); returns [(source, service, stream, numbers asked)]."""
    from shared import outbox
    asked = []
    for p in tx.all(DUE, (after_seconds,)):
        seen = set(p["seen"])
        missing = [s for s in range(p["contiguous"] + 1, p["highest"] + 1) if s not in seen][:MAX_SEQS_PER_REQUEST]
        if not missing:
            continue
        body = resend_request(signer, own_source, p["source"], p["service"], p["stream"], missing)
        outbox.add_message(tx, request_exchange(p["stream"]).name, request_routing_key(p["source"], p["service"]), body["request_id"],
                           body, tx.correlation_id)
        tx.execute(REQUESTED, (p["source"], p["service"], p["stream"]))
        log.warning("stream gap: asking %s/%s to send %s %s again", p["source"], p["service"], p["stream"],
                    ranges(missing))
        asked.append((p["source"], p["service"], p["stream"], missing))
    return asked


def keep(tx, config):
    """A receiving service's timer: ask senders again for what is missing longer than
    RESEND_AFTER_SECONDS, and export every sender's position for the alert rules."""
    request_missing(tx, tx.signer, tx.source, float(config.get("RESEND_AFTER_SECONDS", RESEND_AFTER_SECONDS)))
    export(positions(tx))


def close_gap(tx, source, service, stream):
    """An operator giving up on numbers a sender no longer has (what they held came another way):
    counting goes on from the highest number seen. Returns the numbers given up, or None if this
    sender's stream was never counted here."""
    found = tx.all(POSITIONS_FOR, ([source], [service], [stream]))
    if not found:
        return None
    p = found[0]
    seen = set(p["seen"])
    missing = [s for s in range(p["contiguous"] + 1, p["highest"] + 1) if s not in seen]
    tx.execute(CLOSE_GAP, (source, service, stream))
    tx.execute(FORGET_SEEN, (source, service, stream, p["highest"]))
    if missing:
        log.warning("stream gap closed by hand: %s/%s %s gave up on %s", source, service, stream, ranges(missing))
    return missing


def positions(tx):
    """Every sender's position, for `linli child list`, GET /children and the gauges."""
    out = []
    for r in tx.all(POSITIONS):
        age = float(r["gap_age"]) if r["gap_age"] is not None else 0.0
        out.append({"source": r["source"], "service": r["service"], "stream": r["stream"],
                    "contiguous": r["contiguous"], "highest": r["highest"], "missing": int(r["missing"]),
                    "oldest_gap_seconds": round(age, 1), "resends_requested": r["requested"],
                    "resends_answered": r["answered"]})
    return out


def export(rows):
    for r in rows:
        labels = (r["source"], r["service"], r["stream"])
        GAP_AGE.labels(*labels).set(r["oldest_gap_seconds"])
        MISSING.labels(*labels).set(r["missing"])
        CONTIGUOUS.labels(*labels).set(r["contiguous"])
        REQUESTED_TOTAL.labels(*labels).set(r["resends_requested"])
        ANSWERED_TOTAL.labels(*labels).set(r["resends_answered"])


def _source(source):
    return {k: source.get(k) for k in ("service", "level", "node_code", "instance")}


def ranges(seqs):
    """[3, 4, 5, 9] -> '3-5, 9': readable in a log line."""
    out, start, prev = [], None, None
    for s in seqs:
        if start is None:
            start = prev = s
        elif s == prev + 1:
            prev = s
        else:
            out.append(f"{start}-{prev}" if start != prev else str(start))
            start = prev = s
    if start is not None:
        out.append(f"{start}-{prev}" if start != prev else str(start))
    return ", ".join(out)


class Announcer:
    """The sender's heads: every HEAD_SECONDS, each stream's highest sent number, written to the
    outbox on the route of the stream's last message when it changed (or, unchanged, every
    REPEAT_SECONDS, for a receiver that has restarted from a backup). Called by the relay."""

    REPEAT_SECONDS = 300

    def __init__(self, signer, source):
        self.signer, self.source = signer, source
        self.last = {}   # stream -> (seq, monotonic time announced)
        self.due = 0.0

    def is_due(self, now):
        return now >= self.due

    def announce(self, tx, now):
        from shared import outbox
        self.due = now + HEAD_SECONDS
        n = 0
        for row in tx.all(HEADS):
            seq, when = self.last.get(row["stream"], (None, 0.0))
            if seq == row["seq"] and now - when < self.REPEAT_SECONDS:
                continue
            body = head_message(self.signer, self.source, row["stream"], row["seq"])
            outbox.add_message(tx, row["exchange"], row["routing_key"], str(uuid.uuid4()), body)
            self.last[row["stream"]] = (row["seq"], now)
            n += 1
        return n


class ResendListener:
    """The sender's side of a resend request: consumes `resend.<own code>.<service>` from the
    `directives` exchange (where a parent's requests arrive by federation, and its own aggregator's
    directly), and marks the requested outbox rows unsent. Reconnects with back-off."""

    def __init__(self, config, service, pool):
        from shared import facts
        from kombu import Queue
        from shared.messaging import DIRECTIVES, DLX
        self.amqp_uri, self.service, self.pool = config["AMQP_URI"], service, pool
        self.own_code = config["NODE_CODE"]
        self.keys = [facts.Signer.from_config(config).public_key, config.get("PARENT_KEY")]
        self.source = {"service": service, "level": config.get("LEVEL"), "node_code": self.own_code,
                       "instance": config.get("INSTANCE")}
        # A classic durable queue, not a quorum one: a request lost with a broker is asked again
        # (with back-off) until its gap closes, and every service of every instance has one, so
        # the broker is spared a Raft group per service for messages that are rare and repeatable.
        self.queue = Queue(f"{service}.resends", exchange=DIRECTIVES,
                           routing_key=request_routing_key(self.own_code, service), durable=True, auto_delete=False,
                           queue_arguments={"x-dead-letter-exchange": DLX.name,
                                            "x-dead-letter-routing-key": f"{service}.resends"})
        self.running = True

    def run(self):
        from shared.messaging import consume_until_stopped
        consume_until_stopped(self._consume, lambda: self.running, f"resend listener ({self.service})")

    def _consume(self):
        import socket
        from kombu import Connection, Consumer
        from shared.messaging import DIRECTIVES, declare_queue
        with Connection(self.amqp_uri, connect_timeout=5) as conn:
            DIRECTIVES(conn.default_channel).declare()
            declare_queue(conn, self.queue)
            with Consumer(conn.channel(), queues=[self.queue], on_message=self.handle):
                while self.running:
                    try:
                        conn.drain_events(timeout=1)
                    except socket.timeout:
                        pass

    def handle(self, message):
        from shared.db import on_pool
        try:
            body = json.loads(message.body)
        except ValueError:
            body = None
        why = request_refusal(body, self.own_code, self.service, self.keys)
        if why:
            log.warning("resend request refused (%s): %s", self.service, why)
            message.reject(requeue=False)
            return
        with on_pool(self.pool, self.source) as tx:
            found, gone = answer(tx, body)
        message.ack()
        RESENT.labels(self.service, body["stream"]).inc(len(found))
        log.warning("resend: %s asked for %s %s again: %d marked unsent%s",
                    body.get("for_child") or body["from"].get("node_code"),
                    body["stream"], ranges(body["seqs"]), len(found),
                    f"; no longer kept here: {ranges(gone)} (use `linli facts resend`)" if gone else "")
        if gone:
            RESEND_GONE.labels(self.service, body["stream"]).inc(len(gone))
