"""Gateway: the HTTP API in front of the services. Authenticates, scopes, forwards by RPC."""
import eventlet
from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy
from werkzeug.wrappers import Response

from services.gateway import auth, openapi, store
from services.gateway.http import ServiceUnavailable, api, as_json, json_body, problem
from shared import health, metrics
from shared.db import Database
from shared.errors import Unauthorized
from shared.metrics import Telemetry

RPC_TIMEOUT = 10
VERSION = "0.1.0"


class GatewayService:
    name = "gateway"

    db = Database()
    config = Config()
    telemetry = Telemetry()
    registry = RpcProxy("registry")

    # -- plumbing -------------------------------------------------------------

    def _principal(self, request, permission, *node_codes):
        """Who is calling; raises 401/403 unless they may do `permission` on every code given."""
        token = auth.bearer(request.headers.get("Authorization"))
        principal = store.principal_for(self.db, token)
        # Give the connection back before any RPC: holding it idle in a transaction for the
        # length of a call would starve the pool under load.
        self.db.finish(commit=True)
        if principal is None:
            raise Unauthorized("the API token is unknown, revoked or expired",
                               {"Authorization": ["not a valid token"]})
        for code in node_codes or (None,):
            auth.authorize(principal, permission, code)
        return principal

    def _call(self, method, *args):
        """An RPC with a deadline, so a stopped service answers 503 instead of hanging the client."""
        try:
            with eventlet.Timeout(RPC_TIMEOUT):
                return getattr(self.registry, method)(*args)
        except eventlet.Timeout:
            raise ServiceUnavailable(f"registry did not answer within {RPC_TIMEOUT}s")

    # -- operations -----------------------------------------------------------

    @api("GET", "/healthz")
    def healthz(self, request):
        return as_json({"status": "ok"})

    @api("GET", "/readyz")
    def readyz(self, request):
        ok, checks = health.readiness(self.config)
        return as_json({"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503)

    @api("GET", "/metrics")
    def metrics(self, request):
        body, ctype = metrics.exposition()
        return Response(body, content_type=ctype)

    @api("GET", "/api/v1/openapi.json")
    def openapi(self, request):
        return as_json(openapi.build(VERSION))

    # -- hierarchy ------------------------------------------------------------

    @api("GET", "/api/v1/nodes")
    def list_nodes(self, request):
        query = request.args.to_dict()
        principal = self._principal(request, "nodes:read", query.get("under"))
        return as_json(self._call("list_nodes", query, principal.node_prefix))

    @api("POST", "/api/v1/nodes")
    def create_node(self, request):
        body = json_body(request)
        code = body.get("code") if isinstance(body.get("code"), str) else None
        principal = self._principal(request, "nodes:write", code)
        node = self._call("create_node", body, principal.actor)
        return as_json(node, 201, headers={"Location": f"/api/v1/nodes/{node['code']}"})

    @api("GET", "/api/v1/nodes/<string:code>")
    def get_node(self, request, code):
        self._principal(request, "nodes:read", code)
        return as_json(self._call("get_node", code))

    @api("PATCH", "/api/v1/nodes/<string:code>")
    def rename_node(self, request, code):
        principal = self._principal(request, "nodes:write", code)
        return as_json(self._call("rename_node", code, json_body(request), principal.actor))

    @api("POST", "/api/v1/nodes/<string:code>/split")
    def split_node(self, request, code):
        body = json_body(request)
        # Every node the split creates must lie in the caller's scope too, not only the old one.
        parts = body.get("parts") if isinstance(body.get("parts"), list) else []
        new_codes = [p["code"] for p in parts if isinstance(p, dict) and isinstance(p.get("code"), str)]
        principal = self._principal(request, "nodes:write", code, *new_codes)
        return as_json(self._call("split_node", code, body, principal.actor))

    @api("POST", "/api/v1/nodes/<string:code>/retire")
    def retire_node(self, request, code):
        body = json_body(request)
        successor = body.get("successor_code") if isinstance(body.get("successor_code"), str) else None
        principal = self._principal(request, "nodes:write", code, *filter(None, [successor]))
        return as_json(self._call("retire_node", code, body, principal.actor))

    @api("GET,POST,PUT,PATCH,DELETE", "/<path:path>")
    def not_found(self, request, path):
        return problem(404, "Not found", f"no route for {request.method} /{path}")
