"""The aggregator's consumer: fact batches taken in groups, one transaction per group.

Roll-ups are upserts of a few hundred cells that most batches share (the same communities, day
and dimensions), so taking messages one transaction each would spend the database on the same
rows again and again. This consumer takes up to `max_facts` facts or waits `linger` seconds,
whichever comes first, handles the group in one transaction, and acknowledges its messages after
the commit. If a group fails, its messages are handled one by one, so one poison message is
requeued alone (and dead-lettered by the broker's delivery limit) while the others go through.
"""
import json
import logging
import socket
import time

import eventlet
import psycopg
from kombu import Connection, Consumer, binding
from psycopg_pool import PoolTimeout
from nameko.extensions import DependencyProvider

from shared import envelope
from shared.db import Tx, make_pool
from shared.facts import Signer
from shared.messaging import FACTS, consume_until_stopped, declare_queue, durable_queue

log = logging.getLogger(__name__)


RELAYED = "relay.up.*"


def facts_queue(service, max_deliveries, level="street"):
    """The aggregator's queue on `facts`: this instance's services' batches and its children's
    (`<service>.<fact_type>`), and at a city also its districts' relays (`relay.up.<code>`). A district
    does not bind its own relays: it would only take back facts it has already counted. Federation
    carries to a parent just the routing keys its queue binds."""
    name = f"msg-{FACTS.name}-#--{service}.on_facts"
    queue = durable_queue(name, FACTS, "*.*", max_deliveries)
    if level == "city":
        # Both: given bindings replace the queue's default one.
        queue.bindings = {binding(FACTS, routing_key="*.*"), binding(FACTS, routing_key=RELAYED)}
    return queue


class BatchingConsumer(DependencyProvider):
    """Runs `handle(tx, bodies, config)` (given at construction) over groups of messages from the facts queue."""

    def __init__(self, handle, max_facts=20000, linger=0.05, prefetch=500):
        self.handle, self.max_facts, self.linger, self.prefetch = handle, max_facts, linger, prefetch
        self.running = False

    def setup(self):
        cfg = self.config = self.container.config
        self.amqp_uri = cfg["AMQP_URI"]
        self.queue = facts_queue(self.container.service_name, cfg.get("MAX_DELIVERIES", 5), cfg["LEVEL"])
        self.source = envelope.source_from_config(self.container.service_name, cfg)
        self.signer = Signer.from_config(cfg)
        # One connection: groups are handled one at a time (shared/budget.py counts it).
        self.pool = make_pool(cfg["DATABASE_URL"], self.container.service_name, 1, name="aggregator-consumer")

    def start(self):
        self.pool.open(wait=True, timeout=30)
        self.running = True
        self.gt = self.container.spawn_managed_thread(self.run)

    def stop(self):
        self.running = False
        self.gt.kill()
        self.pool.close()

    kill = stop

    def get_dependency(self, worker_ctx):
        return self

    def run(self):
        consume_until_stopped(self._consume, lambda: self.running, "facts consumer")

    def _consume(self):
        buffer = []
        with Connection(self.amqp_uri) as conn:
            declare_queue(conn, self.queue)
            channel = conn.channel()
            channel.basic_qos(0, self.prefetch, False)
            with Consumer(channel, queues=[self.queue], on_message=lambda m: self._take(m, buffer)):
                first = None
                while self.running:
                    try:
                        conn.drain_events(timeout=self.linger)
                    except socket.timeout:
                        pass
                    if buffer and first is None:
                        first = time.monotonic()
                    full = sum(len(body.get("facts") or ()) if isinstance(body, dict) else 1
                               for _, body in buffer) >= self.max_facts
                    if buffer and (full or time.monotonic() - first >= self.linger or len(buffer) >= self.prefetch):
                        self._flush(buffer)
                        buffer.clear()
                        first = None

    @staticmethod
    def _take(message, buffer):
        """Decoded here with the standard library: kombu's decoder calls a Python hook for every
        object, and a batch has one per fact (a sixth of the consumer's time in `make bench`). A
        message that is not JSON is dead-lettered alone (the queue's DLX), never taking the group it
        would have joined with it."""
        try:
            if message.content_type != "application/json":
                raise ValueError(f"content type {message.content_type!r}")
            buffer.append((message, json.loads(message.body)))
        except ValueError as exc:
            log.warning("facts consumer: a message that is not JSON is dead-lettered: %s", exc)
            message.reject(requeue=False)

    def _transaction(self, bodies):
        tx = Tx(self.pool, self.source, signer=self.signer)
        try:
            self.handle(tx, bodies, self.config)
        except BaseException:
            tx.finish(commit=False)
            raise
        tx.finish(commit=True)

    def _flush(self, messages):
        outage = 0.5
        while self.running:
            try:
                self._transaction([body for _, body in messages])
            except (psycopg.OperationalError, PoolTimeout) as exc:
                # The database is away: hold the messages and wait, rather than spend their deliveries.
                log.warning("facts consumer: database unavailable (%s); retrying in %.1fs", exc, outage)
                eventlet.sleep(outage)
                outage = min(outage * 2, 10)
            except Exception as exc:
                self._one_by_one(messages, exc)
                return
            else:
                for m, _ in messages:
                    m.ack()
                return

    def _one_by_one(self, messages, exc):
        log.warning("facts consumer: a group of %d failed (%s); taking them one by one", len(messages), exc)
        for m, body in messages:
            try:
                self._transaction([body])
            except Exception as one:
                log.error("facts consumer: a message failed and is requeued: %s", one)
                m.requeue()
            else:
                m.ack()
