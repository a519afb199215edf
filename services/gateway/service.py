"""Gateway: the HTTP API in front of the services. Authenticates, scopes, forwards by RPC.

Every operation is declared once by the service that owns it (services/*/api.py); routes.py turns
each declaration into a route of this class, and openapi.py into the document. Hand-written here
are the plumbing the routes share, the operational endpoints, and the few routes that are not one
JSON call (imports.py, points.py, notification.py, aggregates.py: CSV, signed receipts, two answers).
"""
import eventlet
from nameko.dependency_providers import Config
from werkzeug.wrappers import Response

from services.gateway import accounts, auth, openapi, routes, store
from services.gateway.declared import OPERATIONS
from services.gateway.imports import ImportRoutes
from services.gateway.points import PointsRoutes
from services.gateway.notification import NotificationRoutes
from services.gateway.aggregates import AggregateRoutes
from services.gateway.console import ConsoleRoutes
from services.gateway.operations import OperatorRoutes
from services.gateway.sessions import SessionRoutes
from services.gateway.http import api, as_json
from shared import health, metrics
from shared.db import Database
from shared.errors import RETRY_SAME, Unauthorized
from shared.metrics import Telemetry
from shared import rpc
from shared.rpc import RpcProxy

VERSION = "0.1.0"


class GatewayService(ImportRoutes, PointsRoutes, NotificationRoutes, AggregateRoutes, SessionRoutes,
                     OperatorRoutes, ConsoleRoutes):
    name = "gateway"

    db = Database()
    config = Config()
    telemetry = Telemetry()
    # Each with the RPC_TIMEOUT_SECONDS deadline. defer=False: an HTTP worker cannot run twice (its
    # request body is read once), so an RPC with the token lookup's transaction still open is
    # refused (RpcInTransaction) rather than deferred; _principal gives the connection back first.
    registry = RpcProxy("registry", defer=False)
    points = RpcProxy("points", defer=False)
    consultation = RpcProxy("consultation", defer=False)
    notification = RpcProxy("notification", defer=False)
    aggregator = RpcProxy("aggregator", defer=False)

    # -- plumbing -------------------------------------------------------------

    def _principal(self, request, permission, *node_codes, field="code"):
        """Who is calling; raises 401/403 unless they may do `permission` on every code given. A machine
        sends its bearer token; a person signed in to the console, the session cookie (sessions.py)."""
        if request.headers.get("Authorization") or not request.cookies.get(accounts.COOKIE):
            token = auth.bearer(request.headers.get("Authorization"))
            principal = store.principal_for(self.db, token)
        else:
            principal = self._session_principal(request)
        # Give the connection back before any RPC: holding it idle in a transaction for the
        # length of a call would starve the pool under load.
        self.db.finish(commit=True)
        if principal is None:
            raise Unauthorized("the API token is unknown, revoked or expired",
                               {"Authorization": ["not a valid token"]})
        for code in node_codes or (None,):
            auth.authorize(principal, permission, code, field)
        return principal

    @staticmethod
    def _caller(principal):
        """What a service needs to scope and audit a request; the points service also checks role and organisation,
        the notification service a resident's token's `resident_id` (sent for residents' tokens only), the aggregator
        the role (it suppresses small counts for analysts' and feeds' tokens)."""
        caller = {"actor": principal.actor, "scope": principal.node_prefix, "role": principal.role,
                  "organization_id": principal.organization_id}
        if principal.resident_id is not None:
            caller["resident_id"] = principal.resident_id
        return caller

    def _call(self, method, *args, service="registry", timeout=None):
        """An RPC with a deadline, RPC_TIMEOUT_SECONDS unless `timeout` is given (imports, rebuilds), so a
        stopped service answers 504 (shared.rpc.ServiceTimeout: asked, no answer, outcome unknown) and an
        unreachable broker 503 (shared.errors.BrokerUnavailable: not asked) instead of hanging the client."""
        proxy = getattr(self, service)
        if isinstance(proxy, rpc.ServiceProxy):
            # Its own deadline knows whether the request was sent (503) or not answered (504); a
            # second timer here would fire first and hide which.
            return getattr(proxy if timeout is None else proxy.with_deadline(timeout), method)(*args)
        try:
            with eventlet.Timeout(timeout):  # None: no timer of ours, but the proxy's own may fire
                return getattr(proxy, method)(*args)
        except eventlet.Timeout:
            # A proxy without a deadline of its own: it was asked, so what it did is unknown.
            raise rpc.ServiceTimeout(f"{service} did not answer in time; {RETRY_SAME}")

    # -- operations -----------------------------------------------------------

    @api("GET", "/healthz", probe=True)
    def healthz(self, request):
        return as_json({"status": "ok"})

    @api("GET", "/readyz", probe=True)
    def readyz(self, request):
        ok, checks = health.readiness(self.config, getattr(self.db, "pool", None))
        return as_json(health.body(ok, checks), 200 if ok else 503)

    @api("GET", "/metrics", probe=True)
    def metrics(self, request):
        body, ctype = metrics.exposition()
        return Response(body, content_type=ctype)

    @api("GET", "/api/v1/openapi.json", cacheable=True)
    def openapi(self, request):
        return as_json(openapi.build(VERSION))

    # No catch-all route: a path no route has answers 404, and a known path asked with a method it does
    # not take 405 with Allow, both as problems (http.ApiWsgiApp).


# Every declared operation (services/*/api.py) becomes a route of its own.
routes.install(GatewayService, OPERATIONS)
