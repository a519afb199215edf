"""Aggregator service: the facts of this instance's subtree, logged once and rolled up; the same code at every level.

A street's aggregator rolls up its own services' facts; a district's also takes its streets'
batches (federated from each street's `facts` exchange), and passes them on re-signed to the city.
Thin entrypoints over ingest.py (taking batches) and figures.py (reading).
"""
import logging
import time

from nameko.dependency_providers import Config
from nameko.rpc import rpc
from nameko.timer import timer
from prometheus_client import Gauge

from services.aggregator import dashboard, feed, figures, ingest, store
from services.aggregator.consumer import BatchingConsumer, facts_queue
from shared import federation, streams
from shared.db import Database
from shared.errors import DomainError, NotFound, ValidationFailed
from shared.messaging import CASES, consume
from shared.metrics import Telemetry
from shared.outbox import OutboxRelay
from shared.rpc import RpcProxy  # a deadline, and never called inside a transaction
from shared import clock

log = logging.getLogger(__name__)
command = rpc(expected_exceptions=DomainError)
LINK_UP = Gauge("linli_federation_link_up", "A federation link of this vhost is running (1) or not (0)",
                ["upstream", "exchange"])
DEAD_LETTERS = Gauge("linli_dead_letter_messages", "Messages waiting in a dead-letter queue of this vhost", ["queue"])
HEADLINE = Gauge("linli_rollup_headline", "Headline figures per child node: stocks now, flows this year "
                 "(count, and the measure's total where there is one)", ["node", "metric", "measure"])


def show_headlines(gauge, rows):
    """Make `gauge` hold exactly this pass's figures, rows of figures.headlines. A series the pass does
    not set is taken out, not left at its last value: a count the rule hides now, last year's flows
    after New Year (the pass reads this year's), a node no longer reported. A measure's total of 0 is a
    metric without one (residents): no series."""
    now = {}
    for node, metric, n, total in rows:
        for measure, value in (("count", n), ("total", total)):
            if value is not None and not (measure == "total" and not value):
                now[(node, metric, measure)] = value
    shown = {(s.labels["node"], s.labels["metric"], s.labels["measure"]) for family in gauge.collect()
             for s in family.samples}
    for labels in shown - set(now):
        gauge.remove(*labels)
    for labels, value in now.items():
        gauge.labels(*labels).set(value)


def take(tx, bodies, config):
    """A group of fact batches from the queue, in the consumer's transaction. Children's facts are
    passed up re-signed only where there is a level above (PARENT_KEY names its key)."""
    queue = facts_queue(AggregatorService.name, 0).name
    up = tx.signer if config.get("PARENT_KEY") else None
    for result in ingest.accept_many(tx, bodies, tx.source["node_code"], tx.signer.public_key, tx.source["level"],
                                     queue, up):
        if "rejected" in result:
            log.warning("fact batch rejected", extra={"why": result["rejected"]})


LINKS_TTL = 5.0
# Per vhost: two instances' aggregators in one process (tests, benches) must not read each other's links.
_links_seen = {}


def child_links(cfg, now=None):
    """{child code: running | starting | down} of the federation links from this instance's children,
    read from the broker's management API at most every LINKS_TTL seconds; None if it did not answer."""
    now = now or time.monotonic()
    seen = _links_seen.get(cfg["AMQP_URI"])
    if seen and now - seen["at"] < LINKS_TTL:
        return seen["links"]
    try:
        links = federation.Management(cfg["RABBIT_MANAGEMENT_URL"], cfg["AMQP_URI"]).links()
        found = federation.child_link_states(links)
    except (federation.FederationError, OSError) as exc:
        log.warning("freshness: management API unavailable: %s", exc)
        found = None
    _links_seen[cfg["AMQP_URI"]] = {"at": now, "links": found}
    return found


class AggregatorService:
    name = "aggregator"

    db = Database()
    relay = OutboxRelay()
    telemetry = Telemetry()
    facts = BatchingConsumer(take)
    config = Config()
    registry = RpcProxy("registry")

    @staticmethod
    def topology_queues(config):
        return [facts_queue(AggregatorService.name, config.get("MAX_DELIVERIES", 5), config["LEVEL"])]

    @property
    def judge(self):
        """How a view judges a node it holds no figures of (figures._known): at a street, the street's
        registry knows every node of the instance; a district or city knows only what facts named."""
        if self.db.source["level"] != "street":
            return True

        def registered(code):
            try:
                self.registry.get_node(code)
            except NotFound:
                return False
            return True
        return registered

    @property
    def own(self):
        return self.db.source["node_code"], self.db.signer.public_key, self.db.source["level"]

    @timer(interval=30)
    def export_broker_health(self):
        """Federation links and dead-letter queues, as the management API sees them, for the alert rules."""
        cfg = self.config
        management = federation.Management(cfg["RABBIT_MANAGEMENT_URL"], cfg["AMQP_URI"])
        try:
            links, letters = management.links(), federation.dead_letters(management)
        except (federation.FederationError, OSError) as exc:
            log.warning("broker health: management API unavailable: %s", exc)
            return
        for link in links:
            LINK_UP.labels(link["upstream"] or "", link["exchange"] or "").set(1 if link["status"] == "running" else 0)
        for queue, n in letters.items():
            DEAD_LETTERS.labels(queue).set(n)

    @consume(CASES, f"{streams.RESEND_PREFIX}.*.*")
    def on_resend_request(self, body):
        """A child asking again for something this instance sent down (shared/streams.py): checked
        with the child's key, which only this service holds, and passed on to the service asked."""
        why = streams.forward_request(self.db, self.db.signer, self.db.source, body, self.trusted_key)
        if why:
            log.warning("resend request from below refused: %s", why)
            raise ValidationFailed(why, {"signature": [why]})   # dead-lettered after MAX_DELIVERIES

    @timer(interval=5)
    def keep_streams(self):
        """Completeness (shared/streams.py): ask senders again for what is missing longer than
        RESEND_AFTER_SECONDS, and export every sender's position for the alert rules."""
        streams.keep(self.db, self.config)

    @timer(interval=30)
    def export_headlines(self):
        """The headline gauges, under the small-cell rule: stocks today, flows this year, and nothing else
        (show_headlines)."""
        show_headlines(HEADLINE, figures.headlines(self.db, self.own[0], clock.today()))

    @command
    def rollups(self, query, caller):
        return figures.rollups(self.db, query, caller, judge=self.judge)

    @command
    def rollups_csv(self, query, caller):
        return figures.rollups_csv(self.db, query, caller, judge=self.judge)

    @command
    def headline_figures(self, query, caller):
        return figures.headline_figures(self.db, query, caller, judge=self.judge)

    @command
    def dashboard(self, query, caller):
        return dashboard.dashboard(self.db, query, caller, judge=self.judge)

    @command
    def nodes(self, query, caller):
        return dashboard.nodes(self.db, query, caller, judge=self.judge)

    @command
    def boundaries(self, query, caller):
        return dashboard.boundaries(self.db, query, caller, judge=self.judge)

    @command
    def freshness(self, caller):
        return dashboard.freshness(self.db, caller, child_links(self.config))

    @command
    def directive_figures(self, directive_id, caller):
        return figures.directive_figures(self.db, directive_id, caller)

    @timer(interval=5)
    def publish_feed(self):
        """The departments' AMQP feed: what changed since the last pass, under their role's rule."""
        feed.publish(self.db)

    @command
    def feed(self, query, caller):
        return feed.read(self.db, query, caller, judge=self.judge)

    @command
    def rebuild(self):
        return {"facts": ingest.rebuild(self.db, self.own[0])}

    @command
    def identity(self):
        """This instance's node, level and public signing key (the operator view shows its fingerprint)."""
        code, key, level = self.own
        return {"code": code, "level": level, "public_key": key}

    @command
    def trusted_key(self, code):
        """The public key of a registered child, for services that take messages from below (or None)."""
        row = self.db.one(store.CHILD_KEY, (code,))
        return row["public_key"] if row else None

    @command
    def children(self):
        """Registered children, each with the completeness of what it sends: per service's facts
        stream, the contiguous number, what is missing above it, the oldest gap's age, and resends
        requested and answered."""
        by_source = {}
        for p in streams.positions(self.db):
            by_source.setdefault(p["source"], []).append({k: v for k, v in p.items() if k != "source"})
        return [{**r, "added_at": r["added_at"].isoformat(),
                 "last_fact_at": r["last_fact_at"].isoformat() if r["last_fact_at"] else None,
                 "streams": by_source.get(r["code"], [])}
                for r in self.db.all(store.CHILDREN)]
