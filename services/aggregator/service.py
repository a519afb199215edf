"""Aggregator service: the facts of this instance's subtree, logged once and rolled up; the same code at every level.

A street's aggregator rolls up its own services' facts; a district's also takes its streets'
batches (federated from each street's `facts` exchange), and passes them on re-signed to the city.
Thin entrypoints over ingest.py (taking batches) and figures.py (reading).
"""
import logging

from nameko.rpc import rpc

from services.aggregator import figures, ingest, store
from shared.db import Database
from shared.errors import DomainError
from shared.messaging import FACTS, consume
from shared.metrics import Telemetry
from shared.outbox import OutboxRelay

log = logging.getLogger(__name__)
command = rpc(expected_exceptions=DomainError)
ROUTING_KEY = "#"


class AggregatorService:
    name = "aggregator"

    db = Database()
    relay = OutboxRelay()
    telemetry = Telemetry()

    @property
    def own(self):
        return self.db.source["node_code"], self.db.signer.public_key, self.db.source["level"]

    @consume(FACTS, ROUTING_KEY)
    def on_facts(self, body):
        code, key, level = self.own
        result = ingest.accept(self.db, body, code, key, level, f"msg-{FACTS.name}-{ROUTING_KEY}--{self.name}.on_facts",
                               self.db.signer)
        if "rejected" in result:
            log.warning("fact batch rejected", extra={"why": result["rejected"]})

    @command
    def rollups(self, query, caller):
        return figures.rollups(self.db, query, caller)

    @command
    def feed(self, query, caller):
        return figures.feed(self.db, query, caller)

    @command
    def rebuild(self):
        return {"facts": ingest.rebuild(self.db, self.own[0])}

    @command
    def children(self):
        return [{**r, "added_at": r["added_at"].isoformat(),
                 "last_fact_at": r["last_fact_at"].isoformat() if r["last_fact_at"] else None}
                for r in self.db.all(store.CHILDREN)]
