"""Migrations runner: plain SQL files per service, applied in order under an advisory lock.

Each service owns a schema named after it. Files in `shared/migrations/` (the
outbox and processed-events tables) are applied to every service schema that
publishes or consumes events, then the service's own `migrations/NNNN_*.sql`.
Each file runs in its own transaction with the service schema first on the
search path, and is recorded with a checksum so an edited, already-applied file
is reported instead of silently ignored.
"""
import hashlib
import logging
import pathlib

from shared.db import connect

log = logging.getLogger(__name__)
ROOT = pathlib.Path(__file__).resolve().parent.parent
LOCK_KEY = 0x6C696E6C69  # "linli": one lock for the whole database, so two replicas never migrate at once

BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS public.schema_migrations (
    service    text NOT NULL,
    version    text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, version)
)"""


class MigrationError(Exception):
    pass


def files_for(service):
    shared = sorted((ROOT / "shared" / "migrations").glob("*.sql"))
    own = sorted((ROOT / "services" / service / "migrations").glob("*.sql"))
    return [(f"shared/{p.name}", p) for p in shared] + [(p.name, p) for p in own]


def services_with_migrations():
    return sorted(p.parent.parent.name for p in (ROOT / "services").glob("*/migrations/*.sql"))


def pending(dsn, services=None, connect_timeout=5):
    """[(service, version)] this code ships that the database has not applied (read-only, no lock).

    Raises MigrationError for a file applied with other contents: the release's `migrate` refuses it
    too, so waiting for it would only hide the failure.
    """
    services = services or sorted(set(services_with_migrations()))
    done = {}
    with connect(dsn, autocommit=True, connect_timeout=connect_timeout) as conn:
        if not conn.execute("SELECT to_regclass('public.schema_migrations') IS NULL AS missing").fetchone()["missing"]:
            for r in conn.execute("SELECT service, version, checksum FROM public.schema_migrations"):
                done.setdefault(r["service"], {})[r["version"]] = r["checksum"]
    return [(service, version) for service in services
            for version, _, _ in unapplied(service, done.get(service, {}))]


def unapplied(service, done):
    """(version, sql, checksum) of the service's files not in `done` ({version: checksum}), in order.

    Raises MigrationError, when reached, for a file applied with other contents.
    """
    for version, path in files_for(service):
        sql = path.read_text(encoding="utf-8")
        checksum = hashlib.sha256(sql.encode()).hexdigest()
        if version not in done:
            yield version, sql, checksum
        elif done[version] != checksum:
            raise MigrationError(f"{service} {version} was changed after it was applied; "
                                 "add a new migration instead of editing an old one")


def migrate(dsn, services=None):
    """Apply pending migrations; returns [(service, version)] applied."""
    services = services or sorted(set(services_with_migrations()))
    applied = []
    with connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(BOOTSTRAP)
            for service in services:
                done = {r["version"]: r["checksum"] for r in conn.execute(
                    "SELECT version, checksum FROM public.schema_migrations WHERE service = %s", (service,))}
                for version, sql, checksum in unapplied(service, done):
                    with conn.transaction():
                        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{service}"')
                        conn.execute(f'SET LOCAL search_path TO "{service}", public')
                        conn.execute(sql)
                        conn.execute(
                            "INSERT INTO public.schema_migrations (service, version, checksum) VALUES (%s, %s, %s)",
                            (service, version, checksum))
                    log.info("applied migration %s %s", service, version)
                    applied.append((service, version))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied
