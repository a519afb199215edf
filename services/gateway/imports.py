"""The registry's CSV imports, served by hand: their declarations (services/registry/api.py, custom=True)
document them, but a CSV body and a 422 that carries the report are no JSON-in, JSON-out operation."""
import base64

from services.gateway.http import api, as_json, raw_body, require_type

IMPORT_MAX_BYTES = 64 * 1024 * 1024  # about half a million rows
IMPORT_TIMEOUT = 300


class ImportRoutes:

    @api("POST", "/api/v1/imports/residents")
    def import_residents(self, request):
        return self._import_csv(request, "import_residents")

    @api("POST", "/api/v1/imports/party-members")
    def import_party_members(self, request):
        return self._import_csv(request, "import_party_members")

    def _import_csv(self, request, rpc):
        """CSV body (UTF-8 or GB18030); ?mode=all_or_nothing (default) or valid_rows. The RPC payload is JSON,
        so the file travels base64-encoded. 422 with the report when rows were refused and none written."""
        principal = self._principal(request, "people:write")
        require_type(request, "text/csv")   # as declared (services/registry/api.py)
        data = base64.b64encode(raw_body(request, IMPORT_MAX_BYTES)).decode()
        mode = request.args.get("mode", "all_or_nothing")
        report = self._call(rpc, data, mode, self._caller(principal), timeout=IMPORT_TIMEOUT)
        refused = report["rejected"] and not report["written"]
        return as_json(report, 422 if refused else 200)
