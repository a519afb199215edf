"""Gateway routes for social organisations and volunteer teams, their members and projects.

As for residents, the gateway checks the role and any node code the request
names; the registry checks the organisation's host community against the
token's scope (only it knows where an organisation is) and audits member reads.
"""
from services.gateway.http import api, as_json, json_body


def _code(body, key="community_code"):
    value = body.get(key)
    return value if isinstance(value, str) else None


class OrganizationRoutes:

    @api("GET", "/api/v1/organizations")
    def search_organizations(self, request):
        query = request.args.to_dict()
        principal = self._principal(request, "orgs:read", query.get("community_code"), field="community_code")
        return as_json(self._call("search_organizations", query, self._caller(principal)))

    @api("POST", "/api/v1/organizations")
    def register_organization(self, request):
        body = json_body(request)
        principal = self._principal(request, "orgs:write", _code(body), field="community_code")
        org = self._call("register_organization", body, self._caller(principal))
        return as_json(org, 201, headers={"Location": f"/api/v1/organizations/{org['id']}"})

    @api("GET", "/api/v1/organizations/<int:organization_id>")
    def get_organization(self, request, organization_id):
        principal = self._principal(request, "orgs:read")
        return as_json(self._call("get_organization", organization_id, self._caller(principal)))

    @api("PATCH", "/api/v1/organizations/<int:organization_id>")
    def update_organization(self, request, organization_id):
        body = json_body(request)
        principal = self._principal(request, "orgs:write")
        return as_json(self._call("update_organization", organization_id, body, self._caller(principal)))

    @api("POST", "/api/v1/organizations/<int:organization_id>/status")
    def change_organization_status(self, request, organization_id):
        body = json_body(request)
        principal = self._principal(request, "orgs:write")
        return as_json(self._call("change_organization_status", organization_id, body, self._caller(principal)))

    @api("POST", "/api/v1/organizations/<int:organization_id>/members")
    def join_organization(self, request, organization_id):
        body = json_body(request)
        principal = self._principal(request, "orgs:write")
        return as_json(self._call("join_organization", organization_id, body, self._caller(principal)), 201)

    @api("POST", "/api/v1/organizations/<int:organization_id>/members/<int:resident_id>/leave")
    def leave_organization(self, request, organization_id, resident_id):
        body = json_body(request)
        principal = self._principal(request, "orgs:write")
        return as_json(self._call("leave_organization", organization_id, resident_id, body,
                                  self._caller(principal)))

    @api("POST", "/api/v1/organizations/<int:organization_id>/projects")
    def contract_project(self, request, organization_id):
        body = json_body(request)
        principal = self._principal(request, "orgs:write")
        return as_json(self._call("contract_project", organization_id, body, self._caller(principal)), 201)
