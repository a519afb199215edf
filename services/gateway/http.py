"""HTTP plumbing for the gateway: JSON in and out, errors as RFC 9457 problem+json.

`ApiHandler.response_from_exception` is the one place an exception becomes a status. A failure of
the message broker is never a 500, whichever path it took to get here: a 503 (with Retry-After)
means nothing was done, a 504 ("Outcome unknown") that the request reached the broker and may have
taken effect (shared/errors.py says which is which, shared/rpc.py raises them).

`ApiWebServer` is nameko's web server with what every answer needs, routed or not: werkzeug's own
errors (no route, a method the path does not take, OPTIONS, TRACE) as problem+json, 405 with
`Allow`, path ids in ASCII digits only, and the headers of `harden` (nosniff everywhere,
`Cache-Control: no-store` on the API's answers, `WWW-Authenticate: Bearer` on a 401). On SIGTERM
it takes no new connection and keeps none alive, and a request that has to wait for a worker is
answered 503 (nothing was done): the gateway stops within the pod's grace period. A request that
gets no worker within WORKER_WAIT_SECONDS is answered 503 too, so a service that hangs holds a
client for seconds, not for its own deadline once per group of requests queued ahead. One worker is
kept for the probes and /metrics, so a hung service never makes the kubelet restart the gateway.
"""
import collections
import json
import logging
import re
import socket
import uuid
from contextlib import contextmanager
from functools import partial

from eventlet.event import Event

from nameko.exceptions import RemoteError, UnknownService
from prometheus_client import Counter
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter, Map
from werkzeug.wrappers import Request, Response

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


STOPPING = "this gateway is stopping; nothing was done, send the request again"
BUSY = "every worker of this gateway is busy; nothing was done, send the request again"
BUSY_ANSWERS = Counter("linli_gateway_busy_total", "Requests answered 503 because they got no worker within "
                       "WORKER_WAIT_SECONDS (nothing was done)")


class PayloadTooLarge(DomainError):
    """413: raised here only (never crosses RPC), for a request body over its route's limit."""
    status = 413
    title = "Payload too large"


class UnsupportedMediaType(DomainError):
    """415: a request body of another type than its operation declares (JSON, or an import's CSV)."""
    status = 415
    title = "Unsupported media type"


def require_type(request, expected):
    """Refuse a body that says it is something else: a JSON route reading an XML or form body as JSON
    would accept what no client meant to send as JSON. A body without a Content-Type is refused too."""
    if request.mimetype != expected:
        got = request.mimetype or "none"
        raise UnsupportedMediaType(f"the request body must be {expected}, not {got}",
                                   {"Content-Type": [f"must be {expected}"]})


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


def raw_body(request, limit=MAX_BODY, too_large=PayloadTooLarge):
    if request.content_length and request.content_length > limit:
        raise too_large("the request body is too large", {"_body": [f"at most {limit} bytes"]})
    raw = request.get_data(cache=False)
    if len(raw) > limit:
        raise too_large("the request body is too large", {"_body": [f"at most {limit} bytes"]})
    return raw


def json_body(request):
    raw = raw_body(request)
    if raw:   # no body at all is refused below, as not an object
        require_type(request, "application/json")
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

    def __init__(self, method, url, cacheable=False, probe=False, **kwargs):
        # A refusal (409, 422, 403...) is an answer, not a fault: nameko logs it as a warning, not
        # with ERROR and a traceback that an operator would chase.
        kwargs.setdefault("expected_exceptions", DomainError)
        # Whether an answer under /api/v1/ may be kept by a cache: only what carries no personal data.
        self.cacheable = cacheable
        # A probe or /metrics: served by the worker kept for them (ApiWebServer.worker_slot).
        self.probe = probe
        super().__init__(method, url, **kwargs)

    def handle_request(self, request):
        cid = correlation_id(request)
        token = logs.correlation_id.set(cid)
        try:
            request.shallow = False
            try:
                args, kwargs = self.get_entrypoint_parameters(request)
                self.check_signature(args, kwargs)
                with self.server.worker_slot(self.probe):
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
        if isinstance(exc, HTTPException):   # werkzeug's own (a malformed request), raised in a route
            return http_problem(exc)
        response = self._problem_for(exc)
        if response.status_code in (429, 503):
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


def correlation_id(request):
    """The caller's `X-Correlation-ID` if it is a sane one, else a new one."""
    cid = request.headers.get("X-Correlation-ID", "")
    return cid if 0 < len(cid) <= 100 and cid.isprintable() else uuid.uuid4().hex


def http_problem(exc):
    """A werkzeug HTTPException (404 no route, 405, 400...) as problem+json, keeping its headers (Allow)."""
    status = exc.code or 500
    detail = exc.description or exc.name
    if status == 405:
        detail = f"this path takes {', '.join(exc.valid_methods or ())}, not this method"
    response = problem(status, exc.name, detail)
    for name, value in exc.get_headers():
        if name.lower() not in ("content-type", "content-length"):
            response.headers[name] = value
    return response


class AsciiIntegerConverter(IntegerConverter):
    """`<int:...>` (every one an id) in ASCII digits only: werkzeug's own takes any Unicode digit
    (`\\d`), so /residents/６９ or /residents/𝟔𝟗 would find resident 69. No leading zero and at most
    19 digits, in the pattern itself: a value refused after matching (werkzeug's min and max) would
    make the path's other methods answer 405 instead of 404."""
    regex = r"[1-9][0-9]{0,18}"


def harden(request, response, cacheable=False):
    """The headers every answer carries. Browsers must not guess a type (nosniff); an answer under
    /api/v1/ is kept by no cache unless its route says it carries no personal data (the OpenAPI
    document, the public results); a 401 says which scheme it wants (RFC 9110 requires it)."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.path.startswith("/api/v1/") and not cacheable:
        response.headers["Cache-Control"] = "no-store"
    if response.status_code == 401 and "WWW-Authenticate" not in response.headers:
        response.headers["WWW-Authenticate"] = (
            'Bearer error="invalid_token"' if request.headers.get("Authorization") else "Bearer")
    return response


class ApiWsgiApp(WsgiApp):
    """nameko's WSGI app, with routing errors as problems and `harden` on every answer."""

    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)
        provider = None
        try:
            provider, values = self.url_map.bind_to_environ(environ).match()
            request.path_values = values
            response = provider.handle_request(request)
        except HTTPException as exc:
            if (exc.code or 500) < 400:   # a redirect is no error
                response = exc.get_response(environ)
            else:
                cid = correlation_id(request)
                token = logs.correlation_id.set(cid)
                try:
                    response = http_problem(exc)
                finally:
                    logs.correlation_id.reset(token)
                response.headers["X-Correlation-ID"] = cid
        return harden(request, response, getattr(provider, "cacheable", False))(environ, start_response)


class WorkerSlots:
    """`size` slots, handed to those who wait first come, first served: each waits once, in line,
    for a slot handed straight to it, and `close()` sends everyone still in line away at once."""

    TAKEN, TIMED_OUT, CLOSED = "taken", "timed out", "closed"

    def __init__(self, size):
        self._free = size
        self._line = collections.deque()   # an Event per waiter, the first in line first

    def take_now(self):
        """A slot if one is free and nobody is in line for it (a newcomer does not jump the line)."""
        if self._free and not self._line:
            self._free -= 1
            return True
        return False

    def take(self, timeout):
        turn = Event()
        self._line.append(turn)
        try:
            turn.wait(timeout)
        except BaseException:   # the waiting greenthread killed: its place, or its slot, goes on
            if not turn.ready():
                self._line.remove(turn)
            elif turn.wait() == self.TAKEN:
                self.give_back()
            raise
        if turn.ready():    # handed a slot, or sent away (even as the time ran out)
            return turn.wait()
        self._line.remove(turn)
        return self.TIMED_OUT

    def give_back(self):
        if self._line:
            self._line.popleft().send(self.TAKEN)
        else:
            self._free += 1

    def close(self):
        while self._line:
            self._line.popleft().send(self.CLOSED)


class ApiWebServer(WebServer):
    """The web server of ApiHandler's routes (one per container, as nameko's own)."""

    def make_url_map(self):
        # A doubled slash is no route (404), not a redirect to one.
        url_map = Map(converters={"int": AsciiIntegerConverter}, merge_slashes=False)
        for provider in self._providers:
            rule = provider.get_url_rule()
            rule.endpoint = provider
            url_map.add(rule)
        return url_map

    def get_wsgi_app(self):
        return ApiWsgiApp(self)

    def start(self):
        # As many slots as the container has workers: a request waits for one here, where it can be
        # turned away when the gateway stops or after WORKER_WAIT_SECONDS, rather than inside nameko's
        # worker pool, where it can't. One is kept for the probes and /metrics: a liveness probe that
        # queued behind requests held by a hung service failed, and the kubelet restarted the gateway.
        workers = self.container.max_workers
        self._slots = WorkerSlots(max(1, workers - 1))
        self._probe_slots = WorkerSlots(1)
        self._slot_wait = float(self.container.config.get("WORKER_WAIT_SECONDS", 5.0))
        super().start()

    @contextmanager
    def worker_slot(self, probe=False):
        """Hold a worker slot for one request. One that finds a slot free is served even while the
        gateway stops (the last requests of kept-alive connections, sent before the pod left the
        Service's endpoints); one that has to wait is answered 503 (nothing done) once it stops, or
        once it has waited WORKER_WAIT_SECONDS: every worker is then held by something slow (a
        service that does not answer keeps each for its RPC deadline), and a request queued behind
        two such groups would wait out both before its own deadline began."""
        slots = self._probe_slots if probe else self._slots
        if not slots.take_now():
            if not self._is_accepting:
                raise ServiceUnavailable(STOPPING)
            got = slots.take(self._slot_wait)
            if got == WorkerSlots.TIMED_OUT and self._is_accepting:
                BUSY_ANSWERS.inc()
                log.warning("no worker within %.1fs: answered 503", self._slot_wait)
                raise ServiceUnavailable(BUSY)
            if got != WorkerSlots.TAKEN or not self._is_accepting:
                if got == WorkerSlots.TAKEN:
                    slots.give_back()
                raise ServiceUnavailable(STOPPING)
        try:
            yield
        finally:
            slots.give_back()

    def unregister_provider(self, provider):
        # nameko stops the entrypoints first, then waits for the workers in flight, and only then stops
        # this server; until then it took new connections and queued their workers behind the running
        # ones. With requests waiting on a stopped service (10 s each, 10 at a time) the queue outlived
        # the pod's grace period and the kubelet's SIGKILL cut what was in flight (tests/containers/
        # test_graceful_stop.py). So at the first entrypoint's stop: no new connection, none kept alive
        # for another request, and what still waits for a worker is answered 503 by worker_slot.
        self._refuse_new_requests()
        super().unregister_provider(provider)

    def _refuse_new_requests(self):
        if self._is_accepting and self._gt is not None:
            self._is_accepting = False
            self._gt.kill()
            self._sock.close()
            self._serv.keepalive = False
            self._slots.close()
            self._probe_slots.close()

    def get_wsgi_server(self, sock, wsgi_app, **kwargs):
        # An answer goes out whole at once: with Nagle's algorithm on, one of 17-130 KiB waited for the
        # client's delayed ACK, 40 ms and more each (bench/bench_dashboard.py: the 19 KiB trend took 60 ms
        # through the gateway for 3 ms of work). Linux gives the accepted connections the listener's option.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return super().get_wsgi_server(sock, wsgi_app, **kwargs)


# Every ApiHandler route is served by it (nameko's entrypoints find their server as a class attribute).
ApiHandler.server = ApiWebServer()
api = ApiHandler.decorator
