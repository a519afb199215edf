"""Prometheus metrics: per-entrypoint calls, errors and latency, plus the outbox gauges.

`Telemetry` is a nameko dependency every service declares. It times each
worker, sets the correlation id for logs and onward RPC calls, and, for a
service without its own HTTP entrypoints, serves /metrics, /healthz and
/readyz on `METRICS_PORT`.
"""
import time
import uuid

from nameko.extensions import DependencyProvider
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from shared import logs

CALLS = Counter("linli_entrypoint_calls_total", "Entrypoint calls", ["service", "entrypoint"])
ERRORS = Counter("linli_entrypoint_errors_total", "Entrypoint calls that raised", ["service", "entrypoint", "error"])
LATENCY = Histogram("linli_entrypoint_duration_seconds", "Entrypoint latency", ["service", "entrypoint"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

OUTBOX_BACKLOG = Gauge("linli_outbox_backlog", "Outbox events not yet confirmed by the broker", ["service"])
OUTBOX_AGE = Gauge("linli_outbox_oldest_age_seconds", "Age of the oldest unsent outbox event", ["service"])
OUTBOX_PUBLISHED = Counter("linli_outbox_published_total", "Outbox events confirmed by the broker", ["service"])
OUTBOX_UNROUTED = Gauge("linli_outbox_unrouted", "Events no queue took, kept in the bounded "
                        "<service>.events.unrouted queue (oldest dropped beyond its bound)", ["service"])
OUTBOX_FAILED = Counter("linli_outbox_publish_failures_total", "Outbox publish attempts that failed",
                        ["service", "reason"])

DUPLICATES = Counter("linli_events_duplicate_total", "Redelivered events ignored by an idempotent consumer",
                     ["consumer"])


def exposition():
    return generate_latest(), CONTENT_TYPE_LATEST


class Telemetry(DependencyProvider):
    """Times workers and puts the worker's correlation id (from context data, or new) on its logs."""

    def __init__(self):
        self.started = {}
        self.server = None

    def setup(self):
        self.service = self.container.service_name

    def start(self):
        port = self.container.config.get("METRICS_PORT")
        if port:
            from shared import health
            self.server = health.serve(self.container, int(port))

    def stop(self):
        if self.server is not None:
            self.server.kill()

    def get_dependency(self, worker_ctx):
        return None  # all its work is in the worker hooks

    def worker_setup(self, worker_ctx):
        cid = worker_ctx.data.get("correlation_id") or uuid.uuid4().hex
        worker_ctx.data["correlation_id"] = cid
        logs.correlation_id.set(cid)
        self.started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        name = worker_ctx.entrypoint.method_name
        CALLS.labels(self.service, name).inc()
        LATENCY.labels(self.service, name).observe(time.perf_counter() - self.started.pop(worker_ctx, time.perf_counter()))
        if exc_info is not None:
            ERRORS.labels(self.service, name, exc_info[0].__name__).inc()

    def worker_teardown(self, worker_ctx):
        self.started.pop(worker_ctx, None)
