"""Liveness and readiness: /healthz answers while the process runs, /readyz checks its backends.

Readiness runs `SELECT 1` on a connection from the service's own pool (so it
answers as the service's workers would fare, and costs no connection of its own
while the pool works) and opens an AMQP connection, each with a short timeout. When
the pool gives no connection it connects once itself to learn why, and tells the
states apart, because each asks for a different remedy:

- "pool exhausted": the server lets us in, but every connection this process may
  hold is busy (it is overloaded, or something holds connections too long). The
  process is still ready: its workers wait for a connection (DB_POOL_TIMEOUT_SECONDS)
  and are served. Failing readiness here would take every replica out of the
  Service in the same busy minute, turning load into an outage; the state is
  shown in the body (`"status": "busy"`) and logged;
- "server full": PostgreSQL refuses new connections (max_connections reached by the
  tree, the CLI, psql ..., or the role's or database's connection limit);
- "unavailable": the database cannot be reached or is shutting down.

The pool opens connections again by itself once the server has room (shared/db.py).

The broker is "unavailable" when no AMQP connection can be opened within a few seconds; the
answer's `detail` then reads "broker unavailable". The services' own connections come back by
themselves when it returns (nameko's consumers and the outbox relay reconnect with back-off).
"""
import json
import logging
import socket

import eventlet
import eventlet.wsgi
import psycopg
from kombu import Connection
from psycopg_pool import PoolTimeout

from shared import metrics

log = logging.getLogger(__name__)

POOL_EXHAUSTED, SERVER_FULL, UNAVAILABLE = "pool exhausted", "server full", "unavailable"
TOO_MANY_CONNECTIONS = "53300"  # SQLSTATE too_many_connections


def _probe(dsn, timeout):
    """Connect once, outside any pool: what does the server say?"""
    try:
        with psycopg.connect(dsn, connect_timeout=max(1, int(timeout))) as conn:
            conn.execute("SELECT 1")
        return None, None
    except psycopg.OperationalError as exc:
        text = str(exc)
        if getattr(exc, "sqlstate", None) == TOO_MANY_CONNECTIONS or "too many clients" in text \
                or "too many connections" in text:
            return SERVER_FULL, f"{type(exc).__name__}: {text}".strip()
        return UNAVAILABLE, f"{type(exc).__name__}: {text}".strip()
    except Exception as exc:  # any other failure means "not ready"; say which
        return UNAVAILABLE, f"{type(exc).__name__}: {exc}".strip()


def check_database(dsn, pool=None, timeout=1):
    """(state, reason): (None, None) when ready, else one of the states above and why (for the log)."""
    if pool is None:
        return _probe(dsn, timeout)
    try:
        with pool.connection(timeout=timeout) as conn:
            conn.execute("SELECT 1")
        return None, None
    except psycopg.Error as exc:  # PoolTimeout, or a connection that broke (the pool drops it)
        failure = exc
    # The pool gave no working connection: ask the server directly. If it lets us in, the
    # database is fine and the pool's own connections were all busy.
    state, reason = _probe(dsn, timeout)
    if state is None and isinstance(failure, PoolTimeout):
        stats = pool.get_stats()
        return POOL_EXHAUSTED, (f"no connection of pool {pool.name} (at most {pool.max_size}) free within "
                                f"{timeout}s; {stats.get('requests_waiting', 0)} request(s) waiting")
    return state, reason


def status(ok, checks):
    """The word /readyz answers with: ok, busy (ready, but the pool is exhausted) or unavailable."""
    if not ok:
        return "unavailable"
    return "busy" if POOL_EXHAUSTED in checks.values() else "ok"


def body(ok, checks):
    """/readyz's answer: the status, each backend's state, and a line naming what is wrong
    ("broker unavailable", "database server full") for whoever reads it first."""
    detail = "; ".join(f"{backend} {state}" for backend, state in checks.items() if state != "ok") or "ok"
    return {"status": status(ok, checks), "detail": detail, "checks": checks}


def check_broker(amqp_uri, timeout=3):
    """None if an AMQP connection can be opened now, else why not (for the log). A fresh connection,
    not the service's own: those reconnect by themselves, and this says whether they can."""
    try:
        with Connection(amqp_uri, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()


def readiness(config, pool=None):
    """(ok, checks) where checks maps backend -> "ok" | "unavailable" (database: or one of the states above).

    The reason goes to the log, not the response: /readyz is unauthenticated and an error
    text would tell anyone the database host, user names and ports.
    """
    db_state, db_reason = check_database(config["DATABASE_URL"], pool)
    broker = check_broker(config["AMQP_URI"])
    if db_state:
        log.warning("readiness: database %s: %s", db_state, db_reason)
    if broker:
        log.warning("readiness: broker unavailable: %s", broker)
    checks = {"database": db_state or "ok", "broker": UNAVAILABLE if broker else "ok"}
    return all(v in ("ok", POOL_EXHAUSTED) for v in checks.values()), checks


def service_pool(container):
    """The pool of the container's Database dependency (its workers' pool), if it has one."""
    from shared.db import Database
    return next((d.pool for d in container.dependencies if isinstance(d, Database)), None)


def wsgi_app(config, pool=None):
    def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            text, ctype = metrics.exposition()
            start_response("200 OK", [("Content-Type", ctype)])
            return [text]
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"status": "ok"}']
        if path == "/readyz":
            ok, checks = readiness(config, pool)
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [json.dumps(body(ok, checks)).encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    return app


def serve(container, port):
    sock = eventlet.listen(("0.0.0.0", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # as the gateway's (services/gateway/http.py)
    return container.spawn_managed_thread(
        lambda: eventlet.wsgi.server(sock, wsgi_app(container.config, service_pool(container)), log_output=False))
