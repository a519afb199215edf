"""A tested restore: a street's database dumped and restored the way deploy/README.md says, and
the services started on the copy answer with the same figures, the same tokens, and count nothing twice.

Real: PostgreSQL's own pg_dump and pg_restore, this test's vhost on RabbitMQ, every service of the
instance (registry, points, consultation, notification, aggregator and the HTTP gateway) on the
original and then on the restored database, and `linli demo load` doing real work through the
use cases and outbox relays. The worst case of a backup is played out on purpose: the restored
outboxes say none of their fact batches were sent (a dump taken between publishing and recording),
so every batch goes to the broker a second time and the aggregator must take none of it again.
"""
import subprocess

import psycopg
import pytest
import requests
from click.testing import CliRunner
from nameko.testing.utils import find_free_port

from linli import all_service_classes
from linli.cli import main as cli
from shared.messaging import apply_topology
from tests.conftest import ADMIN_DSN
from tests.conftest import cli_env as env_of
from tests.integration.conftest import wait_for

SCHEMAS = ("registry", "points", "consultation", "notification", "aggregator")


def one(dsn, query, params=()):
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchone()[0]


def unsent_facts(dsn):
    return sum(one(dsn, f"SELECT count(*) FROM {s}.outbox WHERE sent_at IS NULL AND exchange = 'facts'")
               for s in SCHEMAS)


def fact_batches(dsn):
    """Fact batches made here (numbered rows: a relay's stream heads go the same way but are not
    batches), and those the aggregator has taken (each once, by batch id)."""
    made = sum(one(dsn, f"SELECT count(*) FROM {s}.outbox WHERE exchange = 'facts' AND stream IS NOT NULL")
               for s in SCHEMAS)
    return made, one(dsn, "SELECT count(*) FROM aggregator.batches")


@pytest.fixture
def restored_db(database):
    name = database.rsplit("/", 1)[1] + "_restored"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    yield name, database.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_all(container_factory, cfg):
    containers = [container_factory(cls, cfg) for cls in all_service_classes()]
    for c in containers:
        c.start()
    return containers


def test_a_restored_dump_serves_the_same_figures_and_counts_nothing_twice(config, container_factory, web_session,
                                                                          restored_db, tmp_path):
    apply_topology(config, all_service_classes())
    loaded = CliRunner().invoke(cli, ["demo", "load"], env=env_of(config))
    assert loaded.exit_code == 0, loaded.output
    running = start_all(container_factory, config)
    dsn = config["DATABASE_URL"]
    wait_for(lambda: unsent_facts(dsn) == 0, timeout=120, message="the facts relayed")
    wait_for(lambda: (lambda made, taken: made == taken)(*fact_batches(dsn)), timeout=120,
             message="every fact batch taken by the aggregator")
    made = CliRunner().invoke(cli, ["token", "create", "--name", "长海路街道 值班", "--role", "street_admin"],
                              env=env_of(config))
    assert made.exit_code == 0, made.output
    auth = {"Authorization": f"Bearer {made.output.strip()}"}
    before = web_session.get("/api/v1/rollups/headlines", headers=auth)
    assert before.status_code == 200, before.text
    before = before.json()
    assert before["residents"] == 600 and before["party_members"] > 0 and before["matters_raised"] > 0
    # The dump is taken live, as a nightly backup would be; then the instance is lost.

    dump = tmp_path / "linli.dump"
    name, copy = restored_db
    # The commands deploy/README.md gives, as an operator would type them.
    subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", dsn], check=True)
    for container in running:
        container.kill()
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
    subprocess.run(["pg_restore", f"--dbname={copy}", "--no-owner", str(dump)], check=True)
    # A new address: the lost instance's listening socket may linger in this process.
    port = find_free_port()
    restored = {**config, "DATABASE_URL": copy, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"}
    gateway = f"http://127.0.0.1:{port}"
    migrated = CliRunner().invoke(cli, ["migrate"], env=env_of(restored))
    assert migrated.exit_code == 0 and "0 migration(s) applied" in migrated.output, migrated.output
    with psycopg.connect(copy, autocommit=True) as conn:
        for s in SCHEMAS:
            conn.execute(f"UPDATE {s}.outbox SET sent_at = NULL, next_attempt_at = '-infinity' WHERE exchange = 'facts'")
    replayed = unsent_facts(copy)
    assert replayed > 0

    start_all(container_factory, restored)
    wait_for(lambda: unsent_facts(copy) == 0, timeout=120, message=f"{replayed} fact batches sent again")
    # New work on the restored instance, after the replay: once its fact counts, everything
    # queued before it has been taken (one consumer, in order).
    added = requests.post(f"{gateway}/api/v1/residents", headers=auth, timeout=30, json={
        "name": "王秀英", "id_number": "11010519491231002X", "phone": "13916275318",
        "community_code": "310110012001", "building": "99号", "unit": "1单元", "room": "101",
        "relation": "self", "residence_type": "registered", "tags": []})
    assert added.status_code == 201, added.text

    def figures():
        resp = requests.get(f"{gateway}/api/v1/rollups/headlines", headers=auth, timeout=30)
        assert resp.status_code == 200, resp.text
        return resp.json() if resp.json()["residents"] != before["residents"] else None
    after = wait_for(figures, timeout=60, interval=0.2, message="the new resident counted on the restored copy")
    expected = {**before, "residents": before["residents"] + 1,
                "residents_by_residence_type": {**before["residents_by_residence_type"],
                                                "registered": before["residents_by_residence_type"]["registered"] + 1},
                "residents_by_age_band": {**before["residents_by_age_band"],
                                          "60-79": before["residents_by_age_band"]["60-79"] + 1}}
    assert after == expected
    assert one(copy, "SELECT count(*) FROM aggregator.rejected_batches") == 0
