"""Idempotent consumption: the processed-events row shares the effect's transaction.

If the effect rolls back, so does the record, and the redelivered message is
processed again; if it commits, a redelivery finds the record and is ignored.
"""
import functools
import logging

from shared import envelope, metrics

log = logging.getLogger(__name__)

RECORD = ("INSERT INTO processed_events (consumer, event_id) VALUES (%s, %s) "
          "ON CONFLICT DO NOTHING")


def record(tx, event_id, consumer):
    return tx.execute(RECORD, (consumer, str(event_id))).rowcount == 1


def idempotent(method):
    """Decorate an event handler taking an envelope; duplicates are acked and skipped.

    The service must have a `db` (shared.db.Database). The envelope is validated
    first: a malformed one raises, is redelivered, and ends in the dead-letter
    queue after the bounded number of deliveries.
    """
    @functools.wraps(method)
    def handler(self, body):
        env = envelope.load(body)
        consumer = f"{type(self).name}.{method.__name__}"
        if not self.db.first_delivery(env["event_id"], consumer):
            metrics.DUPLICATES.labels(consumer).inc()
            log.info("duplicate event ignored", extra={"event_id": str(env["event_id"]), "event_type": env["type"]})
            return None
        return method(self, env)

    return handler
