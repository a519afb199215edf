"""De-identified facts for the levels above, in signed batches (DESIGN §3, §5).

A fact says what changed in numbers a district may see: the node it concerns,
its type and version, dimensions (birth cohort, sex, residence type, category, …)
and a delta. It names nobody: no name, number or phone, and since version 2 no
pseudonym either (PIPL counts a stable pseudonym as personal information, and it
let a level above follow one person through their facts). A level above that
needs a number of distinct people gets it as a count the street keeps. Facts travel in
batches with an id, signed with the instance's Ed25519 key over a canonical JSON
form, so a parent can check both who sent a batch and that nobody changed it.
Batches go through the outbox to the `facts` exchange with routing key
`<service>.<fact_type>`.
"""
import base64
import functools
import json
import os
import uuid
from datetime import datetime, timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared import outbox, streams
from shared.messaging import FACTS

# 2: facts carry no `subject`. A parent still takes version 1 facts from a street not yet upgraded,
# and drops their pseudonym before it keeps or forwards anything (aggregator/ingest.py).
VERSION = 2
# Keys a fact may carry. Anything else is refused at the writer, so a careless
# payload cannot smuggle personal data upwards.
FACT_KEYS = {"fact_id", "type", "v", "node", "occurred_on", "dims", "delta"}


def _b64(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text):
    return base64.urlsafe_b64decode(text.encode() + b"=" * (-len(text) % 4))


def canonical(batch):
    """The bytes that are signed: the batch without its signature, keys sorted, no spaces."""
    unsigned = {k: v for k, v in batch.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Signer:
    def __init__(self, seed_b64):
        self._key = Ed25519PrivateKey.from_private_bytes(_unb64(seed_b64))
        self.public_key = _b64(self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    @classmethod
    def from_config(cls, config):
        return cls(config["SIGNING_KEY"])

    def sign(self, batch):
        return {**batch, "signature": _b64(self._key.sign(canonical(batch)))}

    def sign_to_json(self, batch):
        """The signed batch as JSON text, serialised once (the signed bytes plus the signature)."""
        raw = canonical(batch)
        return raw[:-1].decode() + ',"signature":"' + _b64(self._key.sign(raw)) + '"}'


def verify(batch, public_key_b64):
    """True if the batch's signature is valid for that public key."""
    try:
        Ed25519PublicKey.from_public_bytes(_unb64(public_key_b64)).verify(_unb64(batch["signature"]),
                                                                          canonical(batch))
        return True
    except (InvalidSignature, KeyError, ValueError, TypeError):
        return False


# Age bands of the statistics every level shows: (upper bound exclusive, label); the last has none.
AGE_BANDS = ((18, "0-17"), (35, "18-34"), (60, "35-59"), (80, "60-79"), (None, "80+"))


@functools.lru_cache(maxsize=8192)
def age_band_of(cohort, on):
    """The age band of the birth cohort `cohort` (a birth year) on the day `on`.

    The statistical rule of every level: a person's age in the figures is the age they reach in
    the year of the reporting day (`on.year - cohort`). Facts carry the cohort, never a band worked
    out on the day of the fact, so a stock by age band is the same count of people whenever it is
    read and nobody's -1 lands in a band their +1 never reached. Whoever counts people by band,
    the register's own counts included, uses this rule.

    A cohort read before its birth year (a stock's earlier periods, where it can only be 0) falls
    in the youngest band.
    """
    age = max(on.year - int(cohort), 0)
    return next(label for bound, label in AGE_BANDS if bound is None or age < bound)


def fact(fact_type, node, occurred_on, delta=1, **dims):
    """One fact. `delta` is +1/-1 for a count that grows or shrinks; dims are plain JSON values only
    (anything else fails when the batch is serialised, before it reaches the outbox)."""
    # 128 random bits as hex: as unique as a UUID4, at a third of the cost in a 100,000-row import.
    return {"fact_id": os.urandom(16).hex(), "type": fact_type, "v": VERSION, "node": node,
            "occurred_on": occurred_on if isinstance(occurred_on, str) else occurred_on.isoformat(),
            "delta": delta, "dims": dims}


# What a node now is, for the levels above: its name, and the splits and merges its figures continue
# through. Official names of administrative divisions, no one's personal data; counted by no roll-up.
NODE_FACT = "node_changed"


def node_fact(row):
    """A node's `node_changed` fact from its register row, dated the day it started or ended."""
    day = row["valid_to"] or row["valid_from"]
    return fact(NODE_FACT, row["code"], day, delta=0, name=row["name"], level=row["level"],
                valid_from=row["valid_from"].isoformat(),
                valid_to=row["valid_to"].isoformat() if row["valid_to"] else None,
                successors=list(row["successor_codes"] or []), predecessor=row["predecessor_code"],
                version=row["version"])


def batch(source, facts, batch_id=None, seq=None):
    """A batch to sign. `seq`: its number in the sender's facts stream (shared/streams.py); a batch
    sent by hand (`linli facts resend`) has none."""
    for f in facts:
        extra = set(f) - FACT_KEYS
        if extra:
            raise ValueError(f"a fact may not carry {sorted(extra)}")
    out = {"batch_id": str(batch_id or uuid.uuid4()), "v": VERSION,
           "source": {k: source[k] for k in ("service", "level", "node_code", "instance")},
           "issued_at": datetime.now(timezone.utc).isoformat(), "facts": facts}
    if seq is not None:
        out["seq"] = seq
    return out


def publish(tx, signer, fact_type, facts, routing_key=None, batch_id=None):
    """Sign the facts as one numbered batch and add it to the outbox in the caller's transaction."""
    if not facts:
        return None
    seq = streams.allocate(tx, streams.FACTS_STREAM)
    signed = signer.sign(batch(tx.source, facts, batch_id=batch_id, seq=seq))
    outbox.add_message(tx, FACTS.name, routing_key or f"{tx.source['service']}.{fact_type}", signed["batch_id"],
                       signed, tx.correlation_id, stream=streams.FACTS_STREAM, seq=seq)
    return signed
