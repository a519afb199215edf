"""The whole tree from real work: two streets' registers, points and consultations summed exactly above.

Real: one RabbitMQ (a vhost per instance, federation set up by `linli child add`), one PostgreSQL (a
database per instance), every instance's aggregator service, and each street's own services' code:
`linli demo load` registers residents, households, party members, organisations and workers, posts
and redeems points, and raises, screens, deliberates and settles matters through the registry,
points and consultation use cases, whose facts leave through those services' outbox relays. Then
the district's figures are the sums of its streets' own, and the city's the district's, exactly;
and neither the district's database nor the city's holds a resident's ID number, phone, name,
pseudonym or handover key (tests/pii_scan.py).
"""
import eventlet
import psycopg
import pytest
from click.testing import CliRunner

from linli import all_service_classes
from linli.cli import main as cli
from shared.outbox import Relay
from tests.e2e.test_federation import (CITY, DISTRICT, STREET_A, STREET_B, _tree, add_child, env_of, one, rollups,
                                       start)
from tests.integration.conftest import wait_for
from tests.pii_scan import NAME, PSEUDONYM, residents_of, scan


@pytest.fixture
def whole_tree(base_config):
    # Every service's exchanges and queues are declared, so the relays' events are routed (or returned
    # as unroutable one by one) and never refused as a whole batch with the facts in it.
    yield from _tree(base_config, None, all_service_classes(), with_city=True)


@pytest.fixture
def relays(whole_tree):
    """Each street's registry, points and consultation outboxes relayed, as their services would."""
    running = []
    for code in (STREET_A, STREET_B):
        cfg = whole_tree[code]
        for schema in ("registry", "points", "consultation"):
            relay = Relay(cfg["DATABASE_URL"], cfg["AMQP_URI"], schema, poll=0.2)
            running.append((relay, eventlet.spawn(relay.run)))
    yield
    for relay, thread in running:
        thread.kill()
        relay.stop()


def unsent(cfg):
    with psycopg.connect(cfg["DATABASE_URL"]) as conn:
        return sum(conn.execute(f"SELECT count(*) FROM {schema}.outbox WHERE sent_at IS NULL AND exchange = 'facts'"
                                ).fetchone()[0] for schema in ("registry", "points", "consultation"))


def test_the_district_and_the_city_sum_their_streets_real_work_exactly(whole_tree, relays, container_factory):
    tree = whole_tree
    c, d, a, b = tree[CITY], tree[DISTRICT], tree[STREET_A], tree[STREET_B]
    add_child(c, d)
    add_child(d, a)
    add_child(d, b)
    for street in (a, b):
        loaded = CliRunner().invoke(cli, ["demo", "load"], env=env_of(street))
        assert loaded.exit_code == 0, loaded.output
        assert "resident(s) registered" in loaded.output
    start(container_factory, tree)
    wait_for(lambda: unsent(a) == 0 and unsent(b) == 0, timeout=120, message="the streets' facts sent")

    def exact():
        for code in (STREET_A, STREET_B):
            own = rollups(tree[code], code)
            if not own or rollups(d, code) != own or rollups(c, code) != own:
                return False
        return rollups(c, DISTRICT) == rollups(d, DISTRICT)
    wait_for(exact, timeout=120, interval=0.5, message="the district and city to hold the streets' figures")
    for metric in ("residents", "party_members", "points_posted", "matters_raised", "matters_settled"):
        sql = ("SELECT coalesce(sum(n), 0) FROM aggregator.rollups WHERE node = %s AND metric = %s "
               "AND period = 'year' AND dim = ''")
        streets = one(a, sql, (STREET_A, metric)) + one(b, sql, (STREET_B, metric))
        assert streets > 0, metric
        assert one(d, sql, (DISTRICT, metric)) == streets == one(c, sql, (DISTRICT, metric)), metric
    assert one(d, "SELECT count(*) FROM aggregator.rejected_batches") == 0

    # Nothing personal crossed a level (issue 19): no resident's ID number, phone, name, pseudonym or
    # handover key anywhere in the district's or the city's database.
    people = residents_of(a["DATABASE_URL"]) | residents_of(b["DATABASE_URL"])
    assert people.names and people.pseudonyms and people.handover_keys
    # Looked for where they are, the same needles are found: the scan reads what it should.
    assert {(h.column, h.kind) for h in scan(a["DATABASE_URL"], people)} >= {
        ("registry.residents.name", NAME), ("registry.residents.pseudonym", PSEUDONYM)}
    for above in (d, c):
        found = scan(above["DATABASE_URL"], people)
        assert not found, f"{above['NODE_CODE']} holds personal data:\n" + "\n".join(map(str, found))
