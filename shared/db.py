"""PostgreSQL access: a pool per service and one transaction per nameko worker.

The transaction is committed *before* nameko replies to an RPC or acks a
message: nameko runs `worker_result` only after the entrypoint has handled the
result, so committing there could ack a message whose effect then fails to
commit. `worker_setup` therefore wraps the worker's method so the commit (or
rollback) happens inside the call.
"""
import contextlib
import functools
import logging

import psycopg
from nameko.extensions import DependencyProvider
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from shared import envelope

log = logging.getLogger(__name__)


def make_pool(dsn, schema=None, max_size=10, min_size=1, name=None):
    def configure(conn):
        if schema:
            conn.execute(f'SET search_path TO "{schema}", public')
            conn.commit()

    return ConnectionPool(dsn, min_size=min_size, max_size=max_size, open=False,
                          configure=configure, name=name or schema,
                          kwargs={"autocommit": False, "row_factory": dict_row})


class Tx:
    """The worker's unit of work: a connection checked out on first use."""

    def __init__(self, pool, source=None, context=None, signer=None):
        self._pool = pool
        self._conn = None
        self.source = source
        self.signer = signer  # shared.facts.Signer, for facts published from this transaction
        self.context = {} if context is None else context  # the worker's nameko context data

    @property
    def correlation_id(self):
        return self.context.get("correlation_id")

    @property
    def conn(self):
        if self._conn is None:
            self._conn = self._pool.getconn()
        return self._conn

    def execute(self, sql, params=None):
        return self.conn.execute(sql, params)

    def one(self, sql, params=None):
        return self.conn.execute(sql, params).fetchone()

    def all(self, sql, params=None):
        return self.conn.execute(sql, params).fetchall()

    def emit(self, event_type, payload, version=1):
        """Write a domain event to this service's outbox, in this transaction."""
        from shared import outbox  # outbox imports db; import here to avoid a cycle
        env = envelope.make(event_type, payload, self.source, self.correlation_id, version)
        outbox.add(self, f"{self.source['service']}.events", event_type, env)
        return env

    def emit_many(self, event_type, payloads, version=1):
        """Many events of one type in one go; the first is validated, the rest share its shape."""
        from shared import outbox
        envs = [envelope.make(event_type, p, self.source, self.correlation_id, version, check=i == 0)
                for i, p in enumerate(payloads)]
        if envs:
            outbox.add_many(self, f"{self.source['service']}.events", event_type, envs)
        return envs

    def publish_facts(self, fact_type, facts):
        """Add a signed batch of de-identified facts to the outbox, in this transaction."""
        from shared import facts as facts_mod
        return facts_mod.publish(self, self.signer, fact_type, facts)

    def first_delivery(self, event_id, consumer):
        """Record an incoming event; False means it was processed before (a duplicate)."""
        from shared import inbox
        return inbox.record(self, event_id, consumer)

    def finish(self, commit):
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        try:
            if commit:
                conn.commit()
            else:
                conn.rollback()
        finally:
            self._pool.putconn(conn)


class Database(DependencyProvider):
    """nameko dependency: `self.db` is the worker's `Tx` against the service's schema."""

    def __init__(self, schema=None):
        self.schema = schema
        self.pool = None
        self.txs = {}

    def setup(self):
        cfg = self.container.config
        self.schema = self.schema or self.container.service_name
        self.source = envelope.source_from_config(self.container.service_name, cfg)
        from shared.facts import Signer
        self.signer = Signer.from_config(cfg)
        self.pool = make_pool(cfg["DATABASE_URL"], self.schema, cfg.get("DB_POOL_MAX", 10))

    def start(self):
        self.pool.open(wait=True, timeout=30)

    def stop(self):
        self.pool.close()

    def kill(self):
        self.pool.close(timeout=0)

    def get_dependency(self, worker_ctx):
        tx = Tx(self.pool, self.source, worker_ctx.data, self.signer)
        self.txs[worker_ctx] = tx
        return tx

    def worker_setup(self, worker_ctx):
        tx = self.txs[worker_ctx]
        service = worker_ctx.service
        name = worker_ctx.entrypoint.method_name
        method = getattr(service, name)

        @functools.wraps(method)
        def in_transaction(*args, **kwargs):
            try:
                result = method(*args, **kwargs)
            except BaseException:
                tx.finish(commit=False)
                raise
            tx.finish(commit=True)
            return result

        setattr(service, name, in_transaction)

    def worker_teardown(self, worker_ctx):
        tx = self.txs.pop(worker_ctx, None)
        if tx is not None:
            tx.finish(commit=False)  # only reached with a connection left if the wrapper never ran


def connect(dsn, **kwargs):
    """A plain connection for CLI tools and tests (dict rows, autocommit off)."""
    return psycopg.connect(dsn, row_factory=dict_row, **kwargs)


@contextlib.contextmanager
def transaction(dsn, schema, source=None, signer=None):
    """A one-off `Tx` outside nameko (CLI, tests): commits on success, rolls back on error."""
    pool = make_pool(dsn, schema, max_size=1)
    pool.open(wait=True, timeout=30)
    tx = Tx(pool, source, signer=signer)
    try:
        yield tx
    except BaseException:
        tx.finish(commit=False)
        raise
    else:
        tx.finish(commit=True)
    finally:
        pool.close()


@contextlib.contextmanager
def unique_races(races):
    """Answer a unique-index violation as the check it raced past would have: a field-level 409.

    Two requests can both pass a "not taken yet" check and meet at the index; `races` maps the
    index (constraint) name to (field, message). The transaction is aborted either way.
    """
    from shared.errors import Conflict
    try:
        yield
    except psycopg.errors.UniqueViolation as exc:
        field, message = races.get(exc.diag.constraint_name, ("_schema", "a conflicting change was made meanwhile"))
        raise Conflict(message, {field: [message]}) from None

