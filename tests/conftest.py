"""Test set-up shared by every suite.

Real: PostgreSQL (a database `linli_test` created afresh for the session and
migrated with the real runner) and RabbitMQ (nameko's `rabbit_config` gives each
integration test its own throwaway vhost). Nothing in tests/integration fakes
the broker or the database. Unit tests (tests/unit) do no I/O and use nameko's
`worker_factory` and in-memory fakes.

Nothing is skipped for a missing backend: `make test` installs and starts
PostgreSQL and RabbitMQ first, and a test that cannot reach them fails.
"""
import shared.green  # noqa: F401  (before psycopg)

import os
import pathlib

import psycopg
import pytest

from shared import config as config_mod

ROOT = pathlib.Path(__file__).resolve().parent.parent
ADMIN_DSN = os.environ.get("LINLI_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_DB = os.environ.get("LINLI_TEST_DB", "linli_test")


# What a `linli` command needs of an instance's config, as the environment CliRunner passes it.
CLI_KEYS = ("LEVEL", "NODE_CODE", "INSTANCE", "AMQP_URI", "RABBIT_MANAGEMENT_URL", "DATABASE_URL", "PSEUDONYM_SECRET",
            "DATA_ENCRYPTION_KEY", "SIGNING_KEY", "HANDOVER_SECRET")


def cli_env(cfg):
    """Environment for CliRunner: the instance's config as env vars, no config file."""
    return {"LINLI_CONFIG": "", **{k: str(cfg[k]) for k in CLI_KEYS}}


def publish_confirmed(amqp_uri, exchange, routing_key, *bodies, **options):
    """Publish each body in turn, returning once the broker has confirmed every one (within 10 s,
    or it raises rather than hang the run).

    A test's message must have been taken by the broker, not be on its way: a quorum queue (RabbitMQ
    3.10) drops an unconfirmed publish it applies after the publisher's channel has closed (1,200
    published and closed at once left 1,196 queued), and a test waiting for it then fails by chance.
    The product's own publishers (outbox relay, RPC) wait for confirms too."""
    from kombu import Connection, Producer
    options.setdefault("confirm_timeout", 10)
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.default_channel, exchange=exchange)
        for body in bodies:
            producer.publish(body, routing_key=routing_key, **options)


def _dsn(dbname):
    return ADMIN_DSN.rsplit("/", 1)[0] + "/" + dbname


@pytest.fixture(scope="session")
def base_config():
    """The local street config, pointed at the test database."""
    cfg = config_mod.load(str(ROOT / "deploy" / "config" / "local.yaml"), environ={})
    cfg["DATABASE_URL"] = _dsn(TEST_DB)
    cfg["PARENT_KEY"] = None  # the local tree's district key is make up's, not the tests'
    cfg["MAX_DELIVERIES"] = 3
    cfg["OUTBOX_POLL_SECONDS"] = 0.2
    # The local tree's budget gives each process two connections; tests run more workers at once in
    # one process (test_green_db: four overlapping queries), and have the test server to themselves.
    cfg["DB_POOL_MAX"] = 10
    return cfg


@pytest.fixture(scope="session")
def database(base_config):
    """A fresh, migrated test database for the session; returns its DSN."""
    from shared.migrations import migrate
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{TEST_DB}"')
    migrate(base_config["DATABASE_URL"])
    return base_config["DATABASE_URL"]


SERVICE_SCHEMAS = ("registry", "points", "consultation", "notification", "aggregator", "gateway")
# Tables a migration fills with rows the product ships; RESET puts them back instead of emptying them.
SHIPPED = {("consultation", "deadlines"), ("notification", "templates"), ("notification", "template_versions")}
RESET = ["DELETE FROM notification.template_versions WHERE actor <> 'system'",
         "DELETE FROM notification.templates t WHERE NOT EXISTS "
         "(SELECT 1 FROM notification.template_versions v WHERE v.code = t.code)",
         "UPDATE notification.templates SET version = 1 WHERE version <> 1",
         "DELETE FROM consultation.deadlines WHERE category <> '*'",
         "UPDATE consultation.deadlines SET (screening_hours, settle_days) = (CASE urgency WHEN 'emergency' THEN 2 "
         "WHEN 'urgent' THEN 24 ELSE 72 END, CASE urgency WHEN 'emergency' THEN 7 WHEN 'urgent' THEN 30 ELSE 60 END)"]


def app_tables(dsn):
    """{schema: [table]} of every table the services' migrations made that a test may fill, read from
    the database itself, so a table a new migration adds is emptied without anyone listing it."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY(%s) "
                            "ORDER BY 1, 2", (list(SERVICE_SCHEMAS),)).fetchall()
    tables = {}
    for schema, table in rows:
        if (schema, table) not in SHIPPED:
            tables.setdefault(schema, []).append(table)
    return tables


@pytest.fixture
def clean_db(database):
    """Empty every service table before the test (schemas stay migrated)."""
    with psycopg.connect(database, autocommit=True) as conn:
        for schema, tables in app_tables(database).items():
            conn.execute("TRUNCATE " + ", ".join(f'"{schema}"."{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
        for statement in RESET:
            conn.execute(statement)
    return database


@pytest.fixture
def config(base_config, clean_db, rabbit_config, web_config):
    """Full service config: test database, this test's own vhost, a free web port."""
    return {**base_config, "DATABASE_URL": clean_db, "AMQP_URI": rabbit_config["AMQP_URI"],
            "WEB_SERVER_ADDRESS": web_config["WEB_SERVER_ADDRESS"]}
