"""The aggregator's batching consumer on the real broker: a message that is not JSON is dead-lettered
alone, and the good batches around it are taken once.

Real: RabbitMQ (this test's vhost), PostgreSQL, the aggregator service running; faked: nothing.
"""
import psycopg

from services.aggregator.consumer import facts_queue
from services.aggregator.service import AggregatorService
from shared import envelope, facts, federation
from shared.messaging import FACTS, apply_topology
from tests.conftest import publish_confirmed
from tests.integration.conftest import wait_for


def test_a_message_that_is_not_json_is_dead_lettered_alone(config, container_factory, broker):
    apply_topology(config, [AggregatorService])
    container_factory(AggregatorService, config).start()
    signer = facts.Signer.from_config(config)
    source = envelope.source_from_config("registry", config)

    def good(community):
        return signer.sign(facts.batch(source, [facts.fact("resident_registered", community, "2026-11-20",
                                                           sex="F", age_band="30-39")]))
    first, second = good("310110012001"), good("310110012002")
    key = "registry.resident_registered"
    publish_confirmed(config["AMQP_URI"], FACTS, key, first, serializer="json")
    publish_confirmed(config["AMQP_URI"], FACTS, key, b"\xff not json", content_type="text/plain",
                      content_encoding="binary")
    # Said to be JSON, but is not: the consumer decodes bodies itself, and must refuse this too.
    publish_confirmed(config["AMQP_URI"], FACTS, key, b'{"batch_id": ', content_type="application/json",
                      content_encoding="utf-8")
    publish_confirmed(config["AMQP_URI"], FACTS, key, second, serializer="json")
    dlq = facts_queue("aggregator", 0).name + ".dlq"
    wait_for(lambda: broker.depth(dlq) == 2, timeout=30, message="the bad messages in the DLQ")

    def logged():
        with psycopg.connect(config["DATABASE_URL"]) as conn:
            return conn.execute("SELECT count(*) FROM aggregator.facts_log").fetchone()[0]
    wait_for(lambda: logged() == 2, timeout=30, message="both good batches taken")
    assert broker.depth(dlq) == 2
    # What the aggregator exports for the dead-letter alert, from the management API.
    management = federation.Management(config["RABBIT_MANAGEMENT_URL"], config["AMQP_URI"])
    wait_for(lambda: federation.dead_letters(management).get(dlq) == 2, timeout=15, message="the DLQ's depth")
