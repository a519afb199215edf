"""Liveness and readiness: /healthz answers while the process runs, /readyz checks its backends.

Readiness asks PostgreSQL for `SELECT 1` and opens an AMQP connection, each with
a short timeout, so Kubernetes stops routing to a replica that lost either.
"""
import json
import logging

import eventlet
import eventlet.wsgi
import psycopg
from kombu import Connection

from shared import metrics

log = logging.getLogger(__name__)


def check_database(dsn, timeout=3):
    try:
        with psycopg.connect(dsn, connect_timeout=timeout) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:  # any failure means "not ready"; say which
        return f"{type(exc).__name__}: {exc}".strip()


def check_broker(amqp_uri, timeout=3):
    try:
        with Connection(amqp_uri, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()


def readiness(config):
    """(ok, checks) where checks maps backend -> "ok" | "unavailable".

    The reason goes to the log, not the response: /readyz is unauthenticated and an error
    text would tell anyone the database host, user names and ports.
    """
    checks = {"database": check_database(config["DATABASE_URL"]),
              "broker": check_broker(config["AMQP_URI"])}
    for backend, error in checks.items():
        if error:
            log.warning("readiness: %s unavailable: %s", backend, error)
    return all(v is None for v in checks.values()), {k: "unavailable" if v else "ok" for k, v in checks.items()}


def wsgi_app(config):
    def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            body, ctype = metrics.exposition()
            start_response("200 OK", [("Content-Type", ctype)])
            return [body]
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"status": "ok"}']
        if path == "/readyz":
            ok, checks = readiness(config)
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [json.dumps({"status": "ok" if ok else "unavailable", "checks": checks}).encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    return app


def serve(container, port):
    sock = eventlet.listen(("0.0.0.0", port))
    return container.spawn_managed_thread(
        lambda: eventlet.wsgi.server(sock, wsgi_app(container.config), log_output=False))
