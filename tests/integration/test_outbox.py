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
from tests.conftest import publish_confirmed
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
        # three copies, as if the relay crashed after the broker confirmed, before marking sent
        publish_confirmed(probe_db["AMQP_URI"], events_exchange("probe"), "item_added", *[json.dumps(env)] * 3,
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
    publish_confirmed(probe_db["AMQP_URI"], events_exchange("probe"), "item_added", json.dumps(env),
                      content_type="application/json", delivery_mode=2)
    wait_for(lambda: broker.depth(f"{queue}.dlq") == 1, timeout=30, message="the message in the DLQ")
    assert broker.depth(queue) == 0
    dead = broker.get_all(f"{queue}.dlq")
    assert [d["event_id"] for d in dead] == [env["event_id"]]


# --- events nobody consumes: the alternate exchange and its bounded unrouted queue --------------

UNROUTED = "probe.events.unrouted"


def outbox_row(sql, probe_db, label, event_type="item_added"):
    """An event committed to probe's outbox, as a worker would leave it; returns its event id."""
    env = envelope.make(event_type, {"label": label}, envelope.source_from_config("probe", probe_db))
    sql("INSERT INTO probe.outbox (event_id, exchange, routing_key, body) VALUES (%s, 'probe.events', %s, %s)",
        (env["event_id"], event_type, json.dumps(env)))
    return str(env["event_id"])


@pytest.fixture
def relay(probe_db):
    relay = Relay(probe_db["DATABASE_URL"], probe_db["AMQP_URI"], "probe")
    relay.pool.open()
    yield relay
    relay.stop()


def test_an_event_nobody_consumes_is_kept_unrouted_and_sent_on_the_first_pass(probe_db, sql, broker, relay):
    # The probe's events exchange exists as nameko declares it (no arguments), as on an existing
    # instance; topology is applied afterwards, for a service with no consumer of its events.
    with Connection(probe_db["AMQP_URI"]) as conn:
        events_exchange("probe")(conn.default_channel).declare()
    apply_topology(probe_db, [ProbeService])
    event_id = outbox_row(sql, probe_db, "无人订阅")
    assert relay.relay_once() == 1
    row = sql("SELECT attempts, last_error, sent_at FROM probe.outbox")[0]
    assert (row["attempts"], row["last_error"]) == (1, None) and row["sent_at"] is not None
    assert [b["event_id"] for b in broker.get_all(UNROUTED)] == [event_id]
    assert relay.relay_once() == 0  # nothing left to retry


def test_an_event_with_a_consumer_is_delivered_and_not_kept_unrouted(probe_db, sql, broker, relay):
    apply_topology(probe_db, [ProbeService, AuditService])
    event_id = outbox_row(sql, probe_db, "有人订阅")
    assert relay.relay_once() == 1
    assert sql("SELECT sent_at IS NOT NULL AS sent FROM probe.outbox")[0]["sent"]
    assert [b["event_id"] for b in broker.get_all(QUEUE)] == [event_id]
    assert broker.depth(UNROUTED) == 0


def test_the_unrouted_queue_keeps_only_the_newest_events_up_to_its_bound(probe_db, sql, broker, relay):
    apply_topology({**probe_db, "UNROUTED_MAX_LENGTH": 3}, [ProbeService])
    ids = [outbox_row(sql, probe_db, f"第{i}条") for i in range(5)]
    assert relay.relay_once() == 5
    assert sql("SELECT count(*) AS n FROM probe.outbox WHERE sent_at IS NULL")[0]["n"] == 0
    assert [b["event_id"] for b in broker.get_all(UNROUTED)] == ids[2:]  # the two oldest were dropped


def test_the_unrouted_count_is_a_metric(probe_db, sql, relay):
    from prometheus_client import REGISTRY
    apply_topology(probe_db, [ProbeService])
    for i in range(2):
        outbox_row(sql, probe_db, f"计数{i}")
    relay.relay_once()
    relay.update_status(force=True)
    assert REGISTRY.get_sample_value("linli_outbox_unrouted", {"service": "probe"}) == 2


def test_the_alternate_exchange_policies_leave_the_federation_policy_in_force(probe_db):
    from shared import federation
    management = federation.Management(probe_db["RABBIT_MANAGEMENT_URL"], probe_db["AMQP_URI"])
    # A parent's facts policy (shared.federation.add_child), set before and kept after topology is applied.
    management.set_policy(federation.FACTS_POLICY, "^(facts|cases)$",
                          {"federation-upstream-set": federation.CHILD_SET})
    apply_topology(probe_db, [ProbeService, AuditService])
    apply_topology(probe_db, [ProbeService, AuditService])  # again, as every `make up` and deploy does

    def policy(exchange):
        return (management._call("GET", f"exchanges/{management.vhost}/{exchange}") or {}).get("policy")

    assert policy("facts") == policy("cases") == federation.FACTS_POLICY
    assert policy("probe.events") == "linli-unrouted-probe"
    assert policy("directives") is None and policy(UNROUTED) is None


def test_outbox_status_shows_what_each_service_has_unrouted(config, sql):
    from click.testing import CliRunner
    from linli.cli import main
    from tests.conftest import cli_env

    class Registry:  # the registry's events exchange and nothing else: none of its events has a consumer
        name = "registry"

    apply_topology(config, [Registry])
    with Connection(config["AMQP_URI"], transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        for _ in range(2):
            producer.publish("{}", exchange=events_exchange("registry"), routing_key="node_renamed",
                             delivery_mode=2, mandatory=True)
    status = CliRunner().invoke(main, ["outbox", "status"], env=cli_env(config))
    assert status.exit_code == 0, status.output
    header, *rows = [line.split() for line in status.output.splitlines()
                     if line.split() and line.split()[0] in ("service", "registry", "points")]
    assert header[-1] == "unrouted"
    assert {row[0]: row[-1] for row in rows} == {"registry": "2", "points": "-"}  # points: no topology applied
