"""Gateway routes for party members under dual management, the community party structure and the report rate.

Party membership is personal data, so the routes reuse people:read and
people:write. As for residents, the registry checks each member's community
against the token's scope and audits reads; the gateway checks the role and
any node code the request names.
"""
from services.gateway.http import api, as_json, json_body


def _code(value):
    return value if isinstance(value, str) else None


class PartyRoutes:

    @api("POST", "/api/v1/party-orgs")
    def create_party_org(self, request):
        body = json_body(request)
        principal = self._principal(request, "people:write", _code(body.get("community_code")),
                                    field="community_code")
        org = self._call("create_party_org", body, self._caller(principal))
        return as_json(org, 201)

    @api("GET", "/api/v1/party-orgs")
    def party_org_tree(self, request):
        query = request.args.to_dict()
        principal = self._principal(request, "people:read", query.get("community_code"), field="community_code")
        return as_json(self._call("party_org_tree", query, self._caller(principal)))

    @api("POST", "/api/v1/party-members")
    def register_party_member(self, request):
        body = json_body(request)
        principal = self._principal(request, "people:write")
        member = self._call("register_party_member", body, self._caller(principal))
        return as_json(member, 201, headers={"Location": f"/api/v1/party-members/{member['resident_id']}"})

    @api("GET", "/api/v1/party-members")
    def search_party_members(self, request):
        query = request.args.to_dict()
        principal = self._principal(request, "people:read", query.get("under"), field="under")
        return as_json(self._call("search_party_members", query, self._caller(principal)))

    @api("GET", "/api/v1/party-members/<int:resident_id>")
    def get_party_member(self, request, resident_id):
        principal = self._principal(request, "people:read")
        return as_json(self._call("get_party_member", resident_id, self._caller(principal)))

    @api("POST", "/api/v1/party-members/<int:resident_id>/report")
    def report_party_member(self, request, resident_id):
        body = json_body(request)
        principal = self._principal(request, "people:write")
        return as_json(self._call("report_party_member", resident_id, body, self._caller(principal)))

    @api("POST", "/api/v1/party-members/<int:resident_id>/withdraw")
    def withdraw_party_member(self, request, resident_id):
        body = json_body(request)
        principal = self._principal(request, "people:write")
        return as_json(self._call("withdraw_party_member", resident_id, body, self._caller(principal)))

    @api("POST", "/api/v1/party-members/<int:resident_id>/place")
    def place_party_member(self, request, resident_id):
        body = json_body(request)
        principal = self._principal(request, "people:write")
        return as_json(self._call("place_party_member", resident_id, body, self._caller(principal)))

    @api("GET", "/api/v1/party/report-rate")
    def party_report_rate(self, request):
        query = request.args.to_dict()
        principal = self._principal(request, "people:read", query.get("under"), field="under")
        return as_json(self._call("party_report_rate", query, self._caller(principal)))
