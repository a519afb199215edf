"""The AMQP users an instance gives others, on the real broker: a department's feed user
(`linli feed-user add`) and the level above's federation link user (`linli link-user add`).

Real: RabbitMQ (this test's vhost) and its management API. A feed user may read its own queue,
bound to `facts` for it; a link user may do what the federation plugin does on our side and read
`facts` and `cases` that way. Neither may publish, nor reach any other exchange or queue.
(tests/e2e runs every federation link of the tree through link users.)
"""
import json
import uuid

import pytest
import requests
from amqp.exceptions import AccessRefused
from click.testing import CliRunner
from kombu import Connection, Exchange, Producer, Queue

from linli.cli import main as cli
from shared.messaging import DIRECTIVES, FACTS, FEED, apply_topology
from tests.conftest import cli_env as env_of, publish_confirmed


def assert_no_queue_of_its_own_nor_publishing(uri):
    with Connection(uri) as conn, pytest.raises(AccessRefused):
        Queue("someone-elses", durable=True)(conn.channel()).declare()
    with Connection(uri, transport_options={"confirm_publish": True}) as conn, pytest.raises(AccessRefused):
        Producer(conn.channel(), exchange=Exchange(FACTS.name, type="topic")).publish(
            {"forged": True}, routing_key="registry.x", serializer="json")


def test_a_feed_user_reads_its_queue_and_nothing_else(config):
    apply_topology(config, [])
    name = "mz" + uuid.uuid4().hex[:6]
    result = CliRunner().invoke(cli, ["feed-user", "add", name], env=env_of(config))
    assert result.exit_code == 0, result.output
    user, password = result.output.split()[1], result.output.split()[3]
    vhost = config["AMQP_URI"].rsplit("/", 1)[1]
    uri = f"amqp://{user}:{password}@127.0.0.1:5672/{vhost}"
    try:
        with Connection(config["AMQP_URI"]) as admin:
            # A queue made before the feed was aggregated was bound to `facts`: the upgrade's topology
            # apply moves it over, and so does adding the user again.
            admin.default_channel.queue_bind(user, FACTS.name, "#")
            admin.default_channel.queue_unbind(user, FEED.name, "#")
        assert f"queue {user} moved from facts to feed" in apply_topology(config, [])
        with Connection(config["AMQP_URI"]) as admin:
            admin.default_channel.queue_bind(user, FACTS.name, "#")
        again = CliRunner().invoke(cli, ["feed-user", "add", name], env=env_of(config))
        assert again.exit_code == 0, again.output
        user, password = again.output.split()[1], again.output.split()[3]
        uri = f"amqp://{user}:{password}@127.0.0.1:5672/{vhost}"
        with Connection(config["AMQP_URI"]) as admin:
            # an exchange of the user's own name pattern, there already: still not the user's to publish to
            admin.default_channel.exchange_declare(f"{user}.x", "topic", durable=False, auto_delete=True)
        # Facts never reach a department's queue; changed roll-ups do.
        publish_confirmed(config["AMQP_URI"], FACTS, "registry.resident_registered", {"batch_id": "b1", "facts": []},
                          serializer="json")
        publish_confirmed(config["AMQP_URI"], FEED, "310110.residents.month", {"seq": 7, "metric": "residents"},
                          serializer="json")
        with Connection(uri) as conn:
            channel = conn.default_channel
            channel.queue_declare(user, passive=True)                      # there, made by `feed-user add`
            message = channel.basic_get(user, no_ack=True)
            assert message is not None and json.loads(message.body) == {"seq": 7, "metric": "residents"}
            assert channel.basic_get(user, no_ack=True) is None
        refused = [
            lambda ch: ch.exchange_declare(f"{user}.x", "topic", passive=False, durable=False, auto_delete=True),
            lambda ch: ch.exchange_declare(f"{user}.y", "fanout", durable=True),
            lambda ch: ch.queue_declare(f"{user}.figures", durable=True),
            lambda ch: ch.queue_bind(user, DIRECTIVES.name, "#"),
            lambda ch: ch.queue_bind(user, FACTS.name, "registry.#"),
            lambda ch: ch.queue_bind(user, FEED.name, "#"),
            lambda ch: ch.queue_delete(user),
        ]
        for attempt in refused:
            with Connection(uri) as conn, pytest.raises(AccessRefused):
                attempt(conn.channel())
        for exchange in (f"{user}.x", FACTS.name, ""):
            with Connection(uri, transport_options={"confirm_publish": True}) as conn, pytest.raises(AccessRefused):
                Producer(conn.channel(), exchange=Exchange(exchange, type="topic" if exchange else "direct")
                         ).publish({"forged": True}, routing_key=user if not exchange else "registry.x",
                                   serializer="json")
        assert_no_queue_of_its_own_nor_publishing(uri)
    finally:
        requests.delete(f"http://127.0.0.1:15672/api/users/{user}", auth=("guest", "guest"), timeout=10)
        requests.delete(f"http://127.0.0.1:15672/api/queues/{vhost}/{user}", auth=("guest", "guest"), timeout=10)


def link_user(config, reader, reader_vhost):
    result = CliRunner().invoke(cli, ["link-user", "add", "--for", reader, "--vhost", reader_vhost],
                                env=env_of(config))
    assert result.exit_code == 0, result.output
    return result.output.split()[1], next(line[4:] for line in result.output.splitlines() if line.startswith("uri "))


def plugin_side(uri, exchanges, node_vhost):
    """What the federation plugin does on the upstream side of a link, with the names it gives:
    its own exchange and queue (`federation: facts -> <node>:<downstream vhost>:facts`), bound."""
    with Connection(uri) as conn:
        channel = conn.default_channel
        for exchange in exchanges:
            name = f"federation: {exchange} -> rabbit@test:{node_vhost}:{exchange}"
            channel.exchange_declare(name, "fanout", durable=True)   # the plugin's own type needs its arguments
            channel.queue_declare(name, durable=True)
            channel.queue_bind(name, name, "")
            channel.exchange_bind(name, exchange, "#")


def test_a_link_user_federates_facts_and_cases_and_nothing_else(config):
    apply_topology(config, [])
    user, uri = link_user(config, "310110", "district-310110")
    vhost = config["AMQP_URI"].rsplit("/", 1)[1]
    assert user == f"link-310110-{vhost}" and uri.startswith(f"amqp://{user}:")
    assert uri.endswith("@" + config["AMQP_URI"].split("@", 1)[1])   # this broker and vhost, our user
    try:
        plugin_side(uri, (FACTS.name, "cases"), "district-310110")
        publish_confirmed(config["AMQP_URI"], FACTS, "registry.resident_registered", {"batch_id": "b2", "facts": []},
                          serializer="json")
        with Connection(uri) as conn:
            message = conn.default_channel.basic_get("federation: facts -> rabbit@test:district-310110:facts",
                                                     no_ack=True)
            assert message is not None and json.loads(message.body)["batch_id"] == "b2"
        with Connection(uri) as conn, pytest.raises(AccessRefused):
            plugin_side(uri, (DIRECTIVES.name,), "district-310110")
        assert_no_queue_of_its_own_nor_publishing(uri)
    finally:
        requests.delete(f"http://127.0.0.1:15672/api/users/{user}", auth=("guest", "guest"), timeout=10)


def test_one_link_user_cannot_touch_a_siblings_link(config):
    """Two streets' links read a district's directives: neither may take or delete the other's queue."""
    district = {**config, "LEVEL": "district", "NODE_CODE": "310110"}
    apply_topology(district, [])
    mine, my_uri = link_user(district, "310110012", "street-310110012")
    theirs, their_uri = link_user(district, "310110013", "street-310110013")
    sibling_queue = "federation: directives -> rabbit@test:street-310110013:directives"
    try:
        plugin_side(their_uri, (DIRECTIVES.name,), "street-310110013")
        plugin_side(my_uri, (DIRECTIVES.name,), "street-310110012")
        with Connection(my_uri) as conn, pytest.raises(AccessRefused):
            conn.channel().basic_get(sibling_queue)
        with Connection(my_uri) as conn, pytest.raises(AccessRefused):
            conn.channel().queue_delete(sibling_queue)
        with Connection(my_uri) as conn, pytest.raises(AccessRefused):
            plugin_side(my_uri, (DIRECTIVES.name,), "street-310110013")     # posing as the sibling
    finally:
        for user in (mine, theirs):
            requests.delete(f"http://127.0.0.1:15672/api/users/{user}", auth=("guest", "guest"), timeout=10)


@pytest.mark.parametrize("reader", ["3101", "310111", "310110012001", "31011x", ""])
def test_a_link_user_only_for_the_parent_or_a_child(config, reader):
    """A street links only with its district: not the city, not another district, not below itself."""
    result = CliRunner().invoke(cli, ["link-user", "add", "--for", reader, "--vhost", "x"], env=env_of(config))
    assert result.exit_code == 1
    assert "--for: neither the parent nor a child of street 310110012" in result.output
