"""Gateway routes for community workers: appointments, annual assessments, departures.

Street administrators appoint, assess and record departures; a community
worker's token may read the workers of its own community. The registry checks
each worker's community against the token's scope and audits every read.
"""
from services.gateway.http import api, as_json, json_body


class WorkerRoutes:

    @api("GET", "/api/v1/workers")
    def search_workers(self, request):
        query = request.args.to_dict()
        principal = self._principal(request, "workers:read", query.get("community_code"), field="community_code")
        return as_json(self._call("search_workers", query, self._caller(principal)))

    @api("POST", "/api/v1/workers")
    def appoint_worker(self, request):
        body = json_body(request)
        code = body.get("community_code") if isinstance(body.get("community_code"), str) else None
        principal = self._principal(request, "workers:write", code, field="community_code")
        worker = self._call("appoint_worker", body, self._caller(principal))
        return as_json(worker, 201, headers={"Location": f"/api/v1/workers/{worker['id']}"})

    @api("GET", "/api/v1/workers/<int:worker_id>")
    def get_worker(self, request, worker_id):
        principal = self._principal(request, "workers:read")
        return as_json(self._call("get_worker", worker_id, self._caller(principal)))

    @api("POST", "/api/v1/workers/<int:worker_id>/assessments")
    def assess_worker(self, request, worker_id):
        body = json_body(request)
        principal = self._principal(request, "workers:write")
        return as_json(self._call("assess_worker", worker_id, body, self._caller(principal)), 201)

    @api("POST", "/api/v1/workers/<int:worker_id>/leave")
    def record_worker_departure(self, request, worker_id):
        body = json_body(request)
        principal = self._principal(request, "workers:write")
        return as_json(self._call("record_worker_departure", worker_id, body, self._caller(principal)))
