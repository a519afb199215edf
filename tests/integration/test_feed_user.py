"""A department's read-only AMQP user, created by `linli feed-user add`, on the real broker.

Real: RabbitMQ (this test's vhost) and its management API. The user may bind its own queue to
`facts` and read it; it may not publish, nor reach any other exchange.
"""
import json
import uuid

import pytest
import requests
from amqp.exceptions import AccessRefused
from click.testing import CliRunner
from kombu import Connection, Exchange, Producer, Queue

from linli.cli import main as cli
from shared.messaging import DIRECTIVES, FACTS, apply_topology


def test_a_feed_user_reads_facts_and_nothing_else(config):
    apply_topology(config, [])
    name = "mz" + uuid.uuid4().hex[:6]
    env = {"LINLI_CONFIG": "", **{k: str(config[k]) for k in (
        "LEVEL", "NODE_CODE", "INSTANCE", "AMQP_URI", "RABBIT_MANAGEMENT_URL", "DATABASE_URL", "PSEUDONYM_SECRET",
        "DATA_ENCRYPTION_KEY", "SIGNING_KEY", "HANDOVER_SECRET")}}
    result = CliRunner().invoke(cli, ["feed-user", "add", name], env=env)
    assert result.exit_code == 0, result.output
    user, password = result.output.split()[1], result.output.split()[3]
    vhost = config["AMQP_URI"].rsplit("/", 1)[1]
    uri = f"amqp://{user}:{password}@127.0.0.1:5672/{vhost}"
    try:
        with Connection(uri) as conn:
            queue = Queue(f"{user}.figures", durable=True)    # declared bare, then bound: the user
            queue(conn.default_channel).declare()              # may not (re)declare `facts` itself
            conn.default_channel.queue_bind(queue.name, FACTS.name, "#")
            with Connection(config["AMQP_URI"]) as admin:
                Producer(admin.default_channel, exchange=FACTS).publish({"batch_id": "b1", "facts": []},
                                                                        routing_key="registry.resident_registered",
                                                                        serializer="json")
            message = conn.default_channel.basic_get(queue.name, no_ack=True)
            assert message is not None and json.loads(message.body)["batch_id"] == "b1"
        with Connection(uri) as conn, pytest.raises(AccessRefused):
            channel = conn.channel()
            Queue(f"{user}.orders", durable=True)(channel).declare()
            channel.queue_bind(f"{user}.orders", DIRECTIVES.name, "#")
        with Connection(uri) as conn, pytest.raises(AccessRefused):
            Queue("someone-elses", durable=True)(conn.channel()).declare()
        with Connection(uri, transport_options={"confirm_publish": True}) as conn, pytest.raises(AccessRefused):
            Producer(conn.channel(), exchange=Exchange(FACTS.name, type="topic")).publish(
                {"forged": True}, routing_key="registry.x", serializer="json")
    finally:
        requests.delete(f"http://127.0.0.1:15672/api/users/{user}", auth=("guest", "guest"), timeout=10)
