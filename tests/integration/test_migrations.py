"""The migrations runner: ordered, recorded, guarded by an advisory lock, refusing edited history."""
import eventlet
import psycopg
import pytest
from click.testing import CliRunner

from linli.cli import main as cli
from shared import migrations


@pytest.fixture
def scratch_db(database):
    # Named after the session's test database, so runs with different LINLI_TEST_DB never collide.
    name = database.rsplit("/", 1)[1] + "_migrations"
    with psycopg.connect(database.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return database.rsplit("/", 1)[0] + "/" + name


def test_two_runners_at_once_apply_each_file_once(scratch_db):
    results = [eventlet.spawn(migrations.migrate, scratch_db) for _ in range(2)]
    applied = [r.wait() for r in results]
    # One runner did all the work while holding the lock; the other found nothing left.
    assert sorted(len(a) for a in applied)[0] == 0
    all_applied = [v for a in applied for v in a]
    assert len(all_applied) == len(set(all_applied))
    with psycopg.connect(scratch_db) as conn:
        count = conn.execute("SELECT count(*) FROM public.schema_migrations").fetchone()[0]
        tables = {r[0] for r in conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables")}
    assert count == len(all_applied)
    assert {"registry.nodes", "registry.outbox", "gateway.api_tokens"} <= tables
    assert migrations.migrate(scratch_db) == []


@pytest.fixture
def edited_db(scratch_db):
    """A migrated database whose record says 0001_nodes.sql was applied with other contents."""
    migrations.migrate(scratch_db)
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("UPDATE public.schema_migrations SET checksum = 'edited' WHERE version = '0001_nodes.sql'")
    return scratch_db


def test_an_edited_migration_is_refused(edited_db):
    scratch_db = edited_db
    with pytest.raises(migrations.MigrationError, match="changed after it was applied"):
        migrations.migrate(scratch_db)


def _wait_cli(dsn, timeout):
    env = {"LINLI_CONFIG": "", "LEVEL": "street", "NODE_CODE": "310110012", "AMQP_URI": "amqp://guest:guest@127.0.0.1/x",
           "DATABASE_URL": dsn, "PSEUDONYM_SECRET": "p" * 32, "HANDOVER_SECRET": "h" * 32,
           "DATA_ENCRYPTION_KEY": "A" * 43, "SIGNING_KEY": "B" * 43}
    return CliRunner().invoke(cli, ["migrate", "--wait", "--timeout", str(timeout)], env=env)


def test_a_pod_waits_for_the_release_migrations_and_applies_none_itself(scratch_db):
    """`linli migrate --wait` (each Deployment's init step) returns once the migrate job has run, not before."""
    assert migrations.pending(scratch_db), "a fresh database has everything pending"
    waiting = eventlet.spawn(_wait_cli, scratch_db, 60)
    eventlet.sleep(1.0)
    assert not waiting.dead, "it must not return while migrations are pending"
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT to_regclass('public.schema_migrations')").fetchone()[0] is None, \
            "the waiter applied something itself"
    migrations.migrate(scratch_db)
    result = waiting.wait()
    assert result.exit_code == 0, result.output
    assert "every migration this release ships is applied" in result.output
    assert migrations.pending(scratch_db) == []


def test_waiting_gives_up_with_the_missing_migrations_named(scratch_db):
    migrations.migrate(scratch_db)
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("DELETE FROM public.schema_migrations WHERE service = 'points' AND version = '0001_points.sql'")
    assert migrations.pending(scratch_db) == [("points", "0001_points.sql")]
    result = _wait_cli(scratch_db, 1)
    assert result.exit_code == 1
    assert "still waiting after 1s for 1 migration(s): points 0001_points.sql" in result.output


def test_waiting_stops_at_once_on_an_edited_migration(edited_db):
    """The release's migrate job refuses an edited file; a waiting pod says so instead of starting on it."""
    scratch_db = edited_db
    with pytest.raises(migrations.MigrationError, match="changed after it was applied"):
        migrations.pending(scratch_db)
    result = _wait_cli(scratch_db, 60)
    assert result.exit_code == 1
    assert "registry 0001_nodes.sql was changed after it was applied" in result.output


def test_the_districts_facts_log_loses_its_pseudonyms_and_rebuilds_the_same(scratch_db, monkeypatch):
    """Aggregator migration 0003 on a log written by version 1 facts: the pseudonyms go, from the rows
    on disk too (the table is rewritten), from kept refused batches as well, and a rebuild of the
    roll-ups from the log gives what the log gave before."""
    from services.aggregator import ingest
    from shared.db import make_pool, on_pool

    every = migrations.files_for
    monkeypatch.setattr(migrations, "files_for", lambda s: [f for f in every(s) if not f[0].startswith("0003")])
    migrations.migrate(scratch_db, ["aggregator"])
    nym = "n" * 32
    with psycopg.connect(scratch_db) as conn:
        conn.execute("SET search_path TO aggregator, public")
        conn.execute("INSERT INTO batches (batch_id, source_code, service, facts, fresh) VALUES ('b1', '310110012', "
                     "'registry', 2, 2)")
        for i, (node, cohort) in enumerate((("310110012001", 1950), ("310110012002", 1990))):
            conn.execute("INSERT INTO facts_log (fact_id, batch_id, source_code, type, v, node, occurred_on, subject, "
                         "delta, dims) VALUES (%s, 'b1', '310110012', 'resident_registered', 1, %s, '2026-11-20', "
                         "%s, 1, %s)", (f"f{i}", node, nym, psycopg.types.json.Jsonb({"cohort": cohort, "sex": "F"})))
        conn.execute("INSERT INTO rejected_batches (key, source_code, reason, body) VALUES ('r1', '310110012', "
                     "'signature', %s)", (psycopg.types.json.Jsonb({"facts": [{"fact_id": "x", "subject": nym}, 7]}),))
        before = conn.execute("SELECT pg_relation_filenode('aggregator.facts_log')").fetchone()[0]
    pool = make_pool(scratch_db, "aggregator", max_size=1)
    pool.open(wait=True, timeout=30)
    try:
        with on_pool(pool, None) as tx:
            ingest.rebuild(tx, "310110")
            rolled = tx.all("SELECT * FROM rollups ORDER BY 1, 2, 3, 4, 5, 6")
        monkeypatch.setattr(migrations, "files_for", every)
        assert migrations.migrate(scratch_db, ["aggregator"]) == [("aggregator", "0003_facts_name_nobody.sql")]
        with psycopg.connect(scratch_db) as conn:
            conn.execute("SET search_path TO aggregator, public")
            after = conn.execute("SELECT pg_relation_filenode('aggregator.facts_log')").fetchone()[0]
            log = conn.execute("SELECT * FROM facts_log").fetchall()
            kept = conn.execute("SELECT body FROM rejected_batches").fetchone()[0]
        assert after != before                       # rewritten: no row on disk holds the dropped values
        assert len(log) == 2 and nym not in str(log)
        assert kept == {"facts": [{"fact_id": "x"}, 7]}
        with on_pool(pool, None) as tx:
            assert ingest.rebuild(tx, "310110") == 2
            assert tx.all("SELECT * FROM rollups ORDER BY 1, 2, 3, 4, 5, 6") == rolled
    finally:
        pool.close()
