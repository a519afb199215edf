"""Gateway routes for the hierarchy: list, read, create, rename, split and retire nodes."""
from services.gateway.http import api, as_json, json_body


class HierarchyRoutes:
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
