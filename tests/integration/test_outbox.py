"""The reliable event path: outbox, relay, topology, idempotent consumer, dead letters.

A `probe` service writes an item and emits `item_added` in one transaction; a
`probe_audit` service consumes it idempotently and records what it saw. Both run
in real nameko containers against the real database and this test's vhost.
"""
import json
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from kombu import Connection
from nameko.testing.services import dummy, entrypoint_hook, entrypoint_waiter

from shared import envelope
from shared.db import Database
from shared.inbox import idempotent
from shared.messaging import apply_topology, events_exchange, handle_event
from shared.migrations import migrate
from shared.outbox import OutboxRelay, Relay
from tests.integration.conftest import wait_for
from tests.integration.proxy import CuttableProxy


class ProbeService:
    name = "probe"
    db = Database()
    relay = OutboxRelay()

    @dummy
    def add_item(self, label, fail_after_emit=False):
        self.db.execute("INSERT INTO items (label) VALUES (%s)", (label,))
        self.db.emit("item_added", {"label": label})
        if fail_after_emit:
            raise RuntimeError("the business rule refused it after the event was written")


class AuditService:
    name = "probe_audit"
    db = Database(schema="probe")

    @handle_event("probe", "item_added")
    @idempotent
    def on_item_added(self, env):
        self.db.execute("INSERT INTO seen (event_id, label) VALUES (%s, %s)",
                        (str(env["event_id"]), env["payload"]["label"]))


class FailingAuditService:
    name = "probe_failing"
    db = Database(schema="probe")

    @handle_event("probe", "item_added")
    def on_item_added(self, body):
        raise ValueError("this handler always fails")


QUEUE = "evt-probe-item_added--probe_audit.on_item_added"


@pytest.fixture
def probe_db(config):
    migrate(config["DATABASE_URL"], ["probe"])  # the shared outbox/inbox tables in schema "probe"
    with psycopg.connect(config["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS probe.items (id serial PRIMARY KEY, label text NOT NULL)")
        conn.execute("CREATE TABLE IF NOT EXISTS probe.seen (event_id uuid NOT NULL, label text NOT NULL)")
        conn.execute("TRUNCATE probe.items, probe.seen, probe.outbox, probe.processed_events")
    return config


def counts(sql):
    return {
        "items": sql("SELECT count(*) AS n FROM probe.items")[0]["n"],
        "unsent": sql("SELECT count(*) AS n FROM probe.outbox WHERE sent_at IS NULL")[0]["n"],
        "sent": sql("SELECT count(*) AS n FROM probe.outbox WHERE sent_at IS NOT NULL")[0]["n"],
        "seen": sql("SELECT count(*) AS n FROM probe.seen")[0]["n"],
        "distinct_seen": sql("SELECT count(DISTINCT event_id) AS n FROM probe.seen")[0]["n"],
    }


def test_event_commits_with_the_write_and_reaches_the_consumer(container_factory, probe_db, sql):
    apply_topology(probe_db, [ProbeService, AuditService])
    container_factory(AuditService, probe_db).start()
    producer = container_factory(ProbeService, probe_db)
    producer.start()
    with entrypoint_hook(producer, "add_item") as add_item:
        add_item("楼道堆物清理")
    wait_for(lambda: counts(sql)["seen"] == 1, message="the consumer to see the event")
    assert counts(sql) == {"items": 1, "unsent": 0, "sent": 1, "seen": 1, "distinct_seen": 1}
    seen = sql("SELECT label FROM probe.seen")[0]["label"]
    assert seen == "楼道堆物清理"


def test_rolled_back_write_publishes_nothing(container_factory, probe_db, sql, broker):
    apply_topology(probe_db, [ProbeService, AuditService])
    producer = container_factory(ProbeService, probe_db)
    producer.start()
    with entrypoint_hook(producer, "add_item") as add_item:
        with pytest.raises(RuntimeError):
            add_item("不该发出", fail_after_emit=True)
        add_item("应该发出")
    wait_for(lambda: broker.depth(QUEUE) == 1, message="the committed event on the queue")
    assert [b["payload"]["label"] for b in broker.get_all(QUEUE)] == ["应该发出"]
    assert counts(sql)["items"] == 1
    assert sql("SELECT count(*) AS n FROM probe.outbox")[0]["n"] == 1


def test_writes_succeed_while_the_broker_is_away_and_every_event_arrives_once(
        container_factory, probe_db, sql):
    apply_topology(probe_db, [ProbeService, AuditService])
    container_factory(AuditService, probe_db).start()
    uri = urlsplit(probe_db["AMQP_URI"])
    proxy = CuttableProxy(uri.hostname, uri.port or 5672)
    via_proxy = urlunsplit(uri._replace(netloc=f"{uri.username}:{uri.password}@127.0.0.1:{proxy.port}"))
    producer = container_factory(ProbeService, {**probe_db, "AMQP_URI": via_proxy})
    producer.start()
    try:
        proxy.cut()
        with entrypoint_hook(producer, "add_item") as add_item:
            for i in range(20):
                add_item(f"停电期间的事项 {i}")
        assert counts(sql)["items"] == 20  # every write was acknowledged with the broker away
        assert counts(sql)["seen"] == 0
        proxy.restore()
        wait_for(lambda: counts(sql)["seen"] == 20, timeout=30, message="all 20 events after the broker returned")
    finally:
        proxy.close()
    c = counts(sql)
    assert c == {"items": 20, "unsent": 0, "sent": 20, "seen": 20, "distinct_seen": 20}


def test_a_redelivered_event_is_ignored_by_the_idempotent_consumer(container_factory, probe_db, sql):
    apply_topology(probe_db, [AuditService])
    container = container_factory(AuditService, probe_db)
    container.start()
    env = envelope.make("item_added", {"label": "重复投递"}, envelope.source_from_config("probe", probe_db))
    handled = []

    def three_handled(worker_ctx, result, exc_info):
        handled.append(exc_info)
        return len(handled) == 3

    with entrypoint_waiter(container, "on_item_added", callback=three_handled, timeout=15):
        with Connection(probe_db["AMQP_URI"]) as conn:
            producer = conn.Producer()
            for _ in range(3):  # as if the relay crashed after the broker confirmed, before marking sent
                producer.publish(json.dumps(env), exchange=events_exchange("probe"), routing_key="item_added",
                                 content_type="application/json", delivery_mode=2)
    assert handled == [None, None, None]  # all three deliveries were handled without error…
    assert counts(sql)["seen"] == 1  # …and the effect happened once
    assert sql("SELECT count(*) AS n FROM probe.processed_events")[0]["n"] == 1


def test_unroutable_events_are_kept_and_retried_until_a_queue_is_bound(probe_db, sql, broker):
    # No topology applied: probe.events has no queue bound, so the broker returns the message.
    with Connection(probe_db["AMQP_URI"]) as conn:
        events_exchange("probe")(conn.default_channel).declare()
    event_id = str(uuid.uuid4())
    env = envelope.make("item_added", {"label": "无人订阅"}, envelope.source_from_config("probe", probe_db),
                        event_id=event_id)
    sql("INSERT INTO probe.outbox (event_id, exchange, routing_key, body) VALUES (%s, 'probe.events', "
        "'item_added', %s)", (event_id, json.dumps(env)))
    relay = Relay(probe_db["DATABASE_URL"], probe_db["AMQP_URI"], "probe")
    relay.pool.open()
    try:
        assert relay.relay_once() == 1
        row = sql("SELECT attempts, last_error, sent_at FROM probe.outbox")[0]
        assert (row["attempts"], row["last_error"], row["sent_at"]) == (1, "unroutable", None)
        apply_topology(probe_db, [AuditService])  # now a queue is bound
        sql("UPDATE probe.outbox SET next_attempt_at = now()")  # skip the back-off wait
        assert relay.relay_once() == 1
    finally:
        relay.stop()
    assert sql("SELECT sent_at IS NOT NULL AS sent FROM probe.outbox")[0]["sent"]
    assert [b["event_id"] for b in broker.get_all(QUEUE)] == [event_id]


def test_a_message_that_keeps_failing_ends_in_the_dead_letter_queue(container_factory, probe_db, sql, broker):
    apply_topology(probe_db, [FailingAuditService])
    container_factory(FailingAuditService, probe_db).start()
    queue = "evt-probe-item_added--probe_failing.on_item_added"
    env = envelope.make("item_added", {"label": "毒消息"}, envelope.source_from_config("probe", probe_db))
    with Connection(probe_db["AMQP_URI"]) as conn:
        conn.Producer().publish(json.dumps(env), exchange=events_exchange("probe"), routing_key="item_added",
                                content_type="application/json", delivery_mode=2)
    wait_for(lambda: broker.depth(f"{queue}.dlq") == 1, timeout=30, message="the message in the DLQ")
    assert broker.depth(queue) == 0
    dead = broker.get_all(f"{queue}.dlq")
    assert [d["event_id"] for d in dead] == [env["event_id"]]
