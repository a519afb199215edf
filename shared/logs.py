"""Structured JSON logs carrying the correlation id of the worker that wrote them."""
import contextvars
import json
import logging
import sys
from datetime import datetime, timezone

correlation_id = contextvars.ContextVar("correlation_id", default=None)


class JsonFormatter(logging.Formatter):
    def __init__(self, static=None):
        super().__init__()
        self.static = static or {}

    def format(self, record):
        doc = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **self.static,
        }
        cid = correlation_id.get()
        if cid:
            doc["correlation_id"] = cid
        for key in ("event_id", "event_type", "entrypoint"):
            if hasattr(record, key):
                doc[key] = getattr(record, key)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


class RefusalsWithoutTraceback(logging.Filter):
    """nameko logs an expected exception (a DomainError: a 401, 403, 409, 422 answered to the caller)
    with its traceback; a refusal is an answer, not a fault, so its line keeps the message only and
    nobody chases a traceback that points at no bug."""

    def filter(self, record):
        if record.name == "nameko.containers" and str(record.msg).startswith("(expected)"):
            record.exc_info = record.exc_text = None
        return True


def configure(level="INFO", **static):
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(static))
    handler.addFilter(RefusalsWithoutTraceback())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # nameko logs every worker at DEBUG and kombu/amqp are chatty; keep ours readable.
    for noisy in ("nameko", "kombu", "amqp", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.INFO))
