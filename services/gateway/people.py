"""Gateway routes for personal records: residents, households, bulk imports and the audit log of their reads.

The registry checks each record's community against the token's scope (only it
knows where a resident lives) and writes the audit trail; the gateway checks
the role and any node code the request names before asking.
"""
import base64

from services.gateway.http import api, as_json, json_body, raw_body

IMPORT_MAX_BYTES = 64 * 1024 * 1024  # about half a million rows
IMPORT_TIMEOUT = 300


class PeopleRoutes:

    @api("GET", "/api/v1/residents")
    def search_residents(self, request):
        query = request.args.to_dict()
        principal = self._principal(request, "people:read", query.get("under"), field="under")
        return as_json(self._call("search_residents", query, self._caller(principal)))

    @api("POST", "/api/v1/residents")
    def register_resident(self, request):
        body = json_body(request)
        principal = self._principal(request, "people:write")
        resident = self._call("register_resident", body, self._caller(principal))
        return as_json(resident, 201, headers={"Location": f"/api/v1/residents/{resident['id']}"})

    @api("GET", "/api/v1/residents/<int:resident_id>")
    def get_resident(self, request, resident_id):
        principal = self._principal(request, "people:read")
        return as_json(self._call("get_resident", resident_id, self._caller(principal)))

    @api("PATCH", "/api/v1/residents/<int:resident_id>")
    def update_resident(self, request, resident_id):
        body = json_body(request)
        principal = self._principal(request, "people:write")
        return as_json(self._call("update_resident", resident_id, body, self._caller(principal)))

    @api("POST", "/api/v1/residents/<int:resident_id>/move")
    def move_resident(self, request, resident_id):
        body = json_body(request)
        principal = self._principal(request, "people:write")
        return as_json(self._call("move_resident", resident_id, body, self._caller(principal)))

    @api("POST", "/api/v1/residents/<int:resident_id>/departure")
    def record_departure(self, request, resident_id):
        body = json_body(request)
        principal = self._principal(request, "people:write")
        return as_json(self._call("record_departure", resident_id, body, self._caller(principal)))

    @api("POST", "/api/v1/residents/<int:resident_id>/death")
    def record_death(self, request, resident_id):
        body = json_body(request)
        principal = self._principal(request, "people:write")
        return as_json(self._call("record_death", resident_id, body, self._caller(principal)))

    @api("GET", "/api/v1/households/<int:household_id>")
    def get_household(self, request, household_id):
        principal = self._principal(request, "people:read")
        return as_json(self._call("get_household", household_id, self._caller(principal)))

    @api("POST", "/api/v1/imports/residents")
    def import_residents(self, request):
        """CSV body (UTF-8 or GB18030); ?mode=all_or_nothing (default) or valid_rows."""
        principal = self._principal(request, "people:write")
        data = base64.b64encode(raw_body(request, IMPORT_MAX_BYTES)).decode()
        mode = request.args.get("mode", "all_or_nothing")
        report = self._call("import_residents", data, mode, self._caller(principal), timeout=IMPORT_TIMEOUT)
        refused = report["rejected"] and not report["written"]
        return as_json(report, 422 if refused else 200)

    @api("POST", "/api/v1/imports/party-members")
    def import_party_members(self, request):
        """CSV body (UTF-8 or GB18030); ?mode=all_or_nothing (default) or valid_rows. Same report as residents."""
        principal = self._principal(request, "people:write")
        data = base64.b64encode(raw_body(request, IMPORT_MAX_BYTES)).decode()
        mode = request.args.get("mode", "all_or_nothing")
        report = self._call("import_party_members", data, mode, self._caller(principal), timeout=IMPORT_TIMEOUT)
        refused = report["rejected"] and not report["written"]
        return as_json(report, 422 if refused else 200)

    @api("GET", "/api/v1/audit")
    def audit_log(self, request):
        principal = self._principal(request, "audit:read")
        return as_json(self._call("audit_log", request.args.to_dict(), self._caller(principal)))
