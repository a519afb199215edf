"""PostgreSQL access: a pool per service and one transaction per nameko worker.

The transaction is committed *before* nameko replies to an RPC or acks a
message: nameko runs `worker_result` only after the entrypoint has handled the
result, so committing there could ack a message whose effect then fails to
commit. `worker_setup` therefore wraps the worker's method so the commit (or
rollback) happens inside the call.

No remote call is made while the worker's transaction holds a connection: a slow
service would otherwise hold connections (and row locks) in every caller. An RPC
asked for inside the transaction (shared/rpc.py) raises `Deferred`; the worker
rolls back, gives the connection back, makes the call, keeps its answer (or its
error) and runs the method again, which now finds the answer where it asked.
Nothing half-done is ever committed, and every pass is one whole transaction.

Pools are sized by the connection budget (shared/budget.py): at most the
concurrency a process has, and idle connections are closed again.
"""
import contextlib
import copy
import functools
import logging

import psycopg
from nameko.extensions import DependencyProvider
from psycopg.rows import dict_row
from prometheus_client import Counter
from psycopg_pool import ConnectionPool, PoolTimeout

from shared import envelope
from shared.errors import DomainError

log = logging.getLogger(__name__)

# A worker asking for more distinct remote answers than this is looping on keys that never
# settle (say, ids that change on every pass), or asks once per item where it should ask once for
# all of them; it fails (TooManyRemoteCalls) instead of running for ever. A safety net only: each
# deferral costs a whole re-run, so code that can meet many items asks for them in one call.
MAX_DEFERRALS = 100
RERUNS = Counter("linli_worker_reruns_total", "Worker passes run again because a remote answer was asked for "
                 "with the transaction open (each one a whole rolled-back pass)", ["service", "entrypoint"])


def make_pool(dsn, schema=None, max_size=10, min_size=0, name=None, max_idle=60.0, timeout=10.0):
    """A pool that opens connections as they are needed and closes them again after `max_idle` seconds.

    `min_size` 0 means a process at rest holds no idle connections, and `open(wait=True)` does not
    fail while the database is away (the service starts, and /readyz says why it is not ready). A
    connection the server refuses is tried again with back-off for `timeout` seconds; the next
    request that needs one starts again, so a pool recovers by itself once the server has room.
    """
    name = name or schema or "linli"

    def configure(conn):
        if schema:
            conn.execute(f'SET search_path TO "{schema}", public')
            conn.commit()

    return ConnectionPool(dsn, min_size=min_size, max_size=max_size, open=False, configure=configure, name=name,
                          timeout=timeout, max_idle=max_idle, reconnect_timeout=max(timeout, 1.0),
                          kwargs={"autocommit": False, "row_factory": dict_row,
                                  # Shown in pg_stat_activity: who holds which connection.
                                  "application_name": f"linli:{name}"[:63]})


def pool_config(cfg, service):
    """make_pool's sizing arguments for a service's workers, from the configuration (shared/budget.py)."""
    from shared import budget
    size = budget.worker_pool_size(cfg, service)
    return {"max_size": size, "min_size": min(cfg.get("DB_POOL_MIN", 0), size),
            "max_idle": float(cfg.get("DB_POOL_IDLE_SECONDS", 60.0)),
            "timeout": float(cfg.get("DB_POOL_TIMEOUT_SECONDS", 10.0))}


class DatabaseUnavailable(DomainError):
    """503: no connection could be had (the pool stayed busy, or the server is full or away)."""
    status = 503
    title = "Service unavailable"


def unavailable(exc):
    """True if `exc` means the database cannot be used now (rather than that a statement failed)."""
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, psycopg.OperationalError):
        # 08: connection exception, 53: insufficient resources (too many connections),
        # 57P: shutdown or not accepting connections yet. Not 57014 (a statement cancelled or timed
        # out): that statement failed, the database is there. None: the client lost the connection.
        state = getattr(exc, "sqlstate", None)
        return state is None or state[:2] in ("08", "53") or state[:3] == "57P"
    return False


class Deferred(BaseException):
    """A remote answer a worker needs while its transaction is open (see the module's docstring).

    A BaseException, so that code catching `Exception` (to keep going when the registry is away)
    does not swallow it: it must reach the worker, which rolls back and asks outside the transaction.
    """

    def __init__(self, key, call):
        super().__init__(key)
        self.key, self.call = key, call


class RpcInTransaction(RuntimeError):
    """A remote call was about to be made while a transaction holds a connection."""


class TooManyRemoteCalls(DomainError):
    """503: a worker asked for more than MAX_DEFERRALS remote answers with its transaction open.

    Nothing was committed. It is a bug in the worker (it should ask once for many), said plainly and
    logged, rather than a RuntimeError that reaches an HTTP caller as a bare 500.
    """
    status = 503
    title = "Service unavailable"


class Tx:
    """The worker's unit of work: a connection checked out on first use."""

    def __init__(self, pool, source=None, context=None, signer=None):
        self._pool = pool
        self._conn = None
        self.source = source
        self.signer = signer  # shared.facts.Signer, for facts published from this transaction
        self.context = {} if context is None else context  # the worker's nameko context data
        self.answers = {}  # remote answers (or errors) this worker asked for, by call: kept across passes

    @property
    def pool(self):
        return self._pool

    @property
    def open(self):
        """True while a connection is checked out, i.e. a transaction may be open on it."""
        return self._conn is not None

    def outside(self, key, call):
        """The result of `call()` (a remote call), never made while this transaction holds a connection.

        Asked with no connection held, the call is made at once. Asked inside the transaction, it
        raises `Deferred`: the worker (Database) rolls back, makes the call, and runs again, and this
        time the answer kept under `key` is returned (or its error raised) right here.
        """
        if key in self.answers:
            ok, value = self.answers[key]
            if ok:
                return copy.deepcopy(value)  # a pass that changed what it got must not change the next one's
            raise value
        if self.open:
            raise Deferred(key, call)
        return self.settle(key, call)

    def settle(self, key, call):
        """Make a deferred call now and keep its answer or its error for the next pass."""
        if self.open:
            raise RpcInTransaction(f"remote call {key[:2] if isinstance(key, tuple) else key} with a transaction open")
        try:
            value = call()
        except Exception as exc:
            self.answers[key] = (False, exc)
            raise
        self.answers[key] = (True, value)
        return copy.deepcopy(value)

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
                try:
                    conn.rollback()
                except psycopg.OperationalError:
                    pass  # the connection broke (that is usually why we roll back); the pool drops it
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
        self.pool = make_pool(cfg["DATABASE_URL"], self.schema, name=f"{self.container.service_name}-workers",
                              **pool_config(cfg, self.container.service_name))

    def start(self):
        self.pool.open()  # min_size 0: nothing to wait for; connections open on first use

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
            for _ in range(MAX_DEFERRALS + 1):
                try:
                    result = method(*args, **kwargs)
                except Deferred as need:
                    tx.finish(commit=False)  # give the connection back before the remote call
                    RERUNS.labels(self.source["service"], name).inc()
                    try:
                        tx.settle(need.key, need.call)
                    except Exception:  # kept with the answers: raised where the method asks, on the next pass
                        pass
                    continue
                except BaseException as exc:
                    tx.finish(commit=False)
                    _raise_unavailable(exc, tx.pool)
                    raise
                try:
                    tx.finish(commit=True)
                except Exception as exc:  # the connection went at commit: say so, not 500
                    _raise_unavailable(exc, tx.pool)
                    raise
                return result
            asked = sorted({tuple(k[:2]) if isinstance(k, tuple) else (str(k),) for k in tx.answers})
            log.error("worker gave up: more than %d remote answers asked for with its transaction open",
                      MAX_DEFERRALS, extra={"entrypoint": name, "calls": [".".join(a) for a in asked]})
            raise TooManyRemoteCalls(f"{self.source['service']}.{name} asked for more than {MAX_DEFERRALS} "
                                     "remote answers with its transaction open; nothing was changed")

        setattr(service, name, in_transaction)

    def worker_teardown(self, worker_ctx):
        tx = self.txs.pop(worker_ctx, None)
        if tx is not None:
            tx.finish(commit=False)  # only reached with a connection left if the wrapper never ran


def _raise_unavailable(exc, pool):
    """Raise DatabaseUnavailable (a 503) in place of `exc` if it means the database cannot be used now."""
    if not unavailable(exc):
        return
    if isinstance(exc, PoolTimeout):
        raise DatabaseUnavailable(f"the database is busy: no connection was free within {pool.timeout:g}s; "
                                  "try again") from exc
    raise DatabaseUnavailable("the database is unavailable; try again") from exc


def connect(dsn, **kwargs):
    """A plain connection for CLI tools and tests (dict rows, autocommit off)."""
    return psycopg.connect(dsn, row_factory=dict_row, **kwargs)


@contextlib.contextmanager
def on_pool(pool, source=None, signer=None):
    """A `Tx` on an open pool, outside nameko: commits on success, rolls back on error."""
    tx = Tx(pool, source, signer=signer)
    try:
        yield tx
    except BaseException:
        tx.finish(commit=False)
        raise
    tx.finish(commit=True)


@contextlib.contextmanager
def transaction(dsn, schema, source=None, signer=None):
    """A one-off `Tx` outside nameko (CLI, tests) on a pool of its own."""
    pool = make_pool(dsn, schema, max_size=1)
    pool.open(wait=True, timeout=30)
    try:
        with on_pool(pool, source, signer) as tx:
            yield tx
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

