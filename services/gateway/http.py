"""HTTP plumbing for the gateway: JSON in and out, errors as RFC 9457 problem+json.

`ApiHandler.response_from_exception` is the one place an exception becomes a status. A failure of
the message broker is never a 500, whichever path it took to get here: a 503 (with Retry-After)
means nothing was done, a 504 ("Outcome unknown") that the request reached the broker and may have
taken effect (shared/errors.py says which is which, shared/rpc.py raises them).
"""
import json
import logging
import re
import uuid
from functools import partial

from eventlet.event import Event

from nameko.exceptions import RemoteError, UnknownService
from nameko.web.handlers import HttpRequestHandler
from werkzeug.wrappers import Response

from shared import logs
from shared.errors import RETRY_SAME, DomainError, ValidationFailed, broker_failure, flatten

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
PROBLEM = "application/problem+json"
RETRY_AFTER = 5  # seconds, on every 503 whose error does not say otherwise

# What a service's worker raised, by class name, when the broker failed it there. The worker's
# transaction was rolled back (shared/db.py), so nothing was done: a 503 like our own.
REMOTE_BROKER_ERRORS = {"ConnectionRefusedError", "ConnectionResetError", "BrokenPipeError", "ConnectionError",
                        "RecoverableConnectionError", "ConnectionForced", "OperationalError", "BrokerUnavailable"}


class ServiceUnavailable(Exception):
    pass


class PayloadTooLarge(DomainError):
    """413: raised here only (never crosses RPC), for routes that answer an oversized body so."""
    status = 413
    title = "Payload too large"


def problem(status, title, detail, errors=None):
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        # The document's Problem.errors is field -> messages: a service's nested ones are named by path.
        body["errors"] = flatten(errors)
    cid = logs.correlation_id.get()
    if cid:
        body["correlation_id"] = cid
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM)


def as_json(payload, status=200, headers=None):
    return Response(json.dumps(payload, ensure_ascii=False, default=str), status=status,
                    mimetype="application/json", headers=headers)


UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


def csv_download(text, filename):
    """A CSV answered as a file to save; the name goes into a header, so it keeps to characters that
    need no quoting in any browser."""
    filename = UNSAFE_FILENAME.sub("_", filename)
    return Response(text, content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def raw_body(request, limit=MAX_BODY, too_large=ValidationFailed):
    if request.content_length and request.content_length > limit:
        raise too_large("the request body is too large", {"_body": [f"at most {limit} bytes"]})
    raw = request.get_data(cache=False)
    if len(raw) > limit:
        raise too_large("the request body is too large", {"_body": [f"at most {limit} bytes"]})
    return raw


def json_body(request):
    raw = raw_body(request)
    try:
        body = json.loads(raw or b"null")
        # A lone surrogate (\ud800) is valid JSON but not text PostgreSQL can store.
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError) as exc:
        raise ValidationFailed("the request body is not valid JSON", {"_body": [str(exc)[:200]]})
    except RecursionError:
        raise ValidationFailed("the request body is nested too deeply", {"_body": ["too deeply nested"]})
    if not isinstance(body, dict):
        raise ValidationFailed("the request body must be a JSON object", {"_body": ["expected an object"]})
    return body


class ApiHandler(HttpRequestHandler):
    """nameko's http entrypoint with our error mapping and a correlation id on every answer.

    The id (the caller's `X-Correlation-ID`, or a new one) is set here, in the server's
    greenthread, so error responses carry it too, and passed to the worker as context
    data, so logs, RPC calls and emitted events carry the same id.
    """

    def __init__(self, method, url, **kwargs):
        # A refusal (409, 422, 403...) is an answer, not a fault: nameko logs it as a warning, not
        # with ERROR and a traceback that an operator would chase.
        kwargs.setdefault("expected_exceptions", DomainError)
        super().__init__(method, url, **kwargs)

    def handle_request(self, request):
        cid = request.headers.get("X-Correlation-ID", "")
        if not (0 < len(cid) <= 100 and cid.isprintable()):
            cid = uuid.uuid4().hex
        token = logs.correlation_id.set(cid)
        try:
            request.shallow = False
            try:
                args, kwargs = self.get_entrypoint_parameters(request)
                self.check_signature(args, kwargs)
                event = Event()
                self.container.spawn_worker(self, args, kwargs, context_data={"correlation_id": cid},
                                            handle_result=partial(self.handle_result, event))
                response = self.response_from_result(event.wait())
            except Exception as exc:
                response = self.response_from_exception(exc)
            response.headers["X-Correlation-ID"] = cid
            return response
        finally:
            logs.correlation_id.reset(token)

    def response_from_exception(self, exc):
        response = self._problem_for(exc)
        if response.status_code == 503:
            response.headers["Retry-After"] = str(getattr(exc, "retry_after", None) or RETRY_AFTER)
        return response

    def _problem_for(self, exc):
        if isinstance(exc, DomainError):
            return problem(exc.status, exc.title, exc.message, exc.fields)
        if isinstance(exc, (ServiceUnavailable, UnknownService)):
            return problem(503, "Service unavailable", str(exc))
        failure = broker_failure(exc)
        if failure == "unreachable":
            log.warning("broker unreachable: %r", exc)
            return problem(503, "Service unavailable", "the message broker is unavailable; nothing was done, "
                                                       "try again")
        if failure == "lost":
            log.warning("broker connection lost during the request: %r", exc)
            return problem(504, "Outcome unknown", f"the connection to the message broker failed during the "
                                                   f"request; {RETRY_SAME}")
        if isinstance(exc, RemoteError) and exc.exc_type in REMOTE_BROKER_ERRORS:
            log.warning("a service failed at the broker: %s", exc)
            return problem(503, "Service unavailable", "the message broker is unavailable; nothing was done, "
                                                       "try again")
        if isinstance(exc, RemoteError):
            log.error("remote error: %s", exc)
        else:
            log.error("unhandled error: %r", exc)
        return problem(500, "Internal error", "the request failed; quote the correlation id when reporting it")


api = ApiHandler.decorator
