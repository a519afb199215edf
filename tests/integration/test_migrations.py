"""The migrations runner: ordered, recorded, guarded by an advisory lock, refusing edited history."""
import eventlet
import psycopg
import pytest

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


def test_an_edited_migration_is_refused(scratch_db):
    migrations.migrate(scratch_db)
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("UPDATE public.schema_migrations SET checksum = 'edited' WHERE version = '0001_nodes.sql'")
    with pytest.raises(migrations.MigrationError, match="changed after it was applied"):
        migrations.migrate(scratch_db)
