"""Gateway routes for service points: the catalogue, accounts, service records, redemptions and evaluation.

The gateway checks the role and any node code the request names; the points
service checks each record's community against the token's scope and, for an
organisation's leader, the organisation of each record, since only it knows
them. Creating a record or a redemption with a `request_id` seen before answers
200 with the first one (marked `replayed`) instead of 201.
"""
import re

from werkzeug.wrappers import Response

from services.gateway.http import api, as_json, json_body

PREFIX = "/api/v1/points"
# Posting a batch locks and posts up to 5000 records in one transaction.
BATCH_VERIFY_TIMEOUT = 60
UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


def _created(result, location):
    """201 with a Location, or 200 when the service answered a retry with what the first request made."""
    return as_json(result, 200 if result.get("replayed") else 201, headers={"Location": location})


class PointsRoutes:

    def _points(self, method, *args, **kwargs):
        return self._call(method, *args, service="points", **kwargs)

    # -- catalogue: categories with versioned rules, and rewards ------------------------------

    @api("GET", f"{PREFIX}/categories")
    def list_point_categories(self, request):
        self._principal(request, "points:read")
        return as_json(self._points("list_categories", request.args.to_dict()))

    @api("GET", f"{PREFIX}/categories/<string:code>")
    def get_point_category(self, request, code):
        self._principal(request, "points:read")
        return as_json(self._points("get_category", code))

    @api("POST", f"{PREFIX}/categories")
    def create_point_category(self, request):
        body = json_body(request)
        principal = self._principal(request, "points:admin")
        category = self._points("create_category", body, self._caller(principal))
        return as_json(category, 201, headers={"Location": f"{PREFIX}/categories/{category['code']}"})

    @api("POST", f"{PREFIX}/categories/<string:code>/rules")
    def add_point_rule(self, request, code):
        body = json_body(request)
        principal = self._principal(request, "points:admin")
        return as_json(self._points("add_rule", code, body, self._caller(principal)), 201)

    @api("PATCH", f"{PREFIX}/categories/<string:code>")
    def set_point_category(self, request, code):
        body = json_body(request)
        principal = self._principal(request, "points:admin")
        return as_json(self._points("set_category", code, body, self._caller(principal)))

    @api("GET", f"{PREFIX}/rewards")
    def list_point_rewards(self, request):
        self._principal(request, "points:read")
        return as_json(self._points("list_rewards", request.args.to_dict()))

    @api("POST", f"{PREFIX}/rewards")
    def create_point_reward(self, request):
        body = json_body(request)
        principal = self._principal(request, "points:admin")
        reward = self._points("create_reward", body, self._caller(principal))
        return as_json(reward, 201, headers={"Location": f"{PREFIX}/rewards/{reward['id']}"})

    @api("PATCH", f"{PREFIX}/rewards/<int:reward_id>")
    def update_point_reward(self, request, reward_id):
        body = json_body(request)
        principal = self._principal(request, "points:admin")
        return as_json(self._points("update_reward", reward_id, body, self._caller(principal)))

    # -- accounts -----------------------------------------------------------------------------

    @api("POST", f"{PREFIX}/accounts")
    def open_point_account(self, request):
        body = json_body(request)
        principal = self._principal(request, "points:write")
        account = self._points("open_account", body, self._caller(principal))
        return as_json(account, 201 if account.get("opened") else 200,
                       headers={"Location": f"{PREFIX}/accounts/{account['id']}"})

    @api("GET", f"{PREFIX}/accounts")
    def search_point_accounts(self, request):
        query = request.args.to_dict()
        principal = self._principal(request, "points:read", query.get("under"), field="under")
        return as_json(self._points("search_accounts", query, self._caller(principal)))

    @api("GET", f"{PREFIX}/accounts/<int:account_id>")
    def get_point_account(self, request, account_id):
        principal = self._principal(request, "points:read")
        return as_json(self._points("get_account", account_id, self._caller(principal)))

    @api("GET", f"{PREFIX}/accounts/<int:account_id>/statement")
    def point_statement(self, request, account_id):
        principal = self._principal(request, "points:read")
        return as_json(self._points("statement", account_id, request.args.to_dict(), self._caller(principal)))

    # -- service records ----------------------------------------------------------------------

    @api("POST", f"{PREFIX}/records")
    def create_service_record(self, request):
        body = json_body(request)
        principal = self._principal(request, "points:write")
        record = self._points("create_record", body, self._caller(principal))
        return _created(record, f"{PREFIX}/records/{record['id']}")

    @api("GET", f"{PREFIX}/records")
    def search_service_records(self, request):
        query = request.args.to_dict()
        principal = self._principal(request, "points:read", query.get("under"), field="under")
        return as_json(self._points("search_records", query, self._caller(principal)))

    @api("GET", f"{PREFIX}/records/<int:record_id>")
    def get_service_record(self, request, record_id):
        principal = self._principal(request, "points:read")
        return as_json(self._points("get_record", record_id, self._caller(principal)))

    # `records/verify` has no id segment and `verify` is no int, so it never meets `records/<int:record_id>/...`.
    @api("POST", f"{PREFIX}/records/verify")
    def verify_service_records(self, request):
        body = json_body(request)
        principal = self._principal(request, "points:verify")
        return as_json(self._points("verify_records", body, self._caller(principal), timeout=BATCH_VERIFY_TIMEOUT))

    @api("POST", f"{PREFIX}/records/<int:record_id>/verify")
    def verify_service_record(self, request, record_id):
        body = json_body(request)
        principal = self._principal(request, "points:verify")
        return as_json(self._points("verify_record", record_id, body, self._caller(principal)))

    @api("POST", f"{PREFIX}/records/<int:record_id>/void")
    def void_service_record(self, request, record_id):
        body = json_body(request)
        principal = self._principal(request, "points:verify")
        return as_json(self._points("void_record", record_id, body, self._caller(principal)))

    @api("POST", f"{PREFIX}/records/<int:record_id>/reverse")
    def reverse_service_record(self, request, record_id):
        body = json_body(request)
        principal = self._principal(request, "points:correct")
        return as_json(self._points("reverse_record", record_id, body, self._caller(principal)))

    # -- redemptions --------------------------------------------------------------------------

    @api("POST", f"{PREFIX}/redemptions")
    def request_redemption(self, request):
        body = json_body(request)
        principal = self._principal(request, "points:write")
        redemption = self._points("request_redemption", body, self._caller(principal))
        return _created(redemption, f"{PREFIX}/redemptions/{redemption['id']}")

    @api("GET", f"{PREFIX}/redemptions")
    def search_redemptions(self, request):
        query = request.args.to_dict()
        principal = self._principal(request, "points:read", query.get("under"), field="under")
        return as_json(self._points("search_redemptions", query, self._caller(principal)))

    @api("GET", f"{PREFIX}/redemptions/<int:redemption_id>")
    def get_redemption(self, request, redemption_id):
        principal = self._principal(request, "points:read")
        return as_json(self._points("get_redemption", redemption_id, self._caller(principal)))

    @api("POST", f"{PREFIX}/redemptions/<int:redemption_id>/fulfil")
    def fulfil_redemption(self, request, redemption_id):
        body = json_body(request)
        principal = self._principal(request, "points:write")
        return as_json(self._points("fulfil_redemption", redemption_id, body, self._caller(principal)))

    @api("POST", f"{PREFIX}/redemptions/<int:redemption_id>/cancel")
    def cancel_redemption(self, request, redemption_id):
        body = json_body(request)
        principal = self._principal(request, "points:write")
        return as_json(self._points("cancel_redemption", redemption_id, body, self._caller(principal)))

    # -- annual evaluation --------------------------------------------------------------------

    @api("GET", f"{PREFIX}/evaluation")
    def point_evaluation(self, request):
        query = request.args.to_dict()
        principal = self._principal(request, "points:read", query.get("under"), field="under")
        result = self._points("evaluation", query, self._caller(principal))
        if "csv" not in result:
            return as_json(result)
        # The name goes into a header: keep it to characters that need no quoting in any browser.
        filename = UNSAFE_FILENAME.sub("_", result.get("filename") or "points-evaluation.csv")
        return Response(result["csv"], content_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    @api("POST", f"{PREFIX}/evaluation")
    def take_point_evaluation(self, request):
        body = json_body(request)
        principal = self._principal(request, "points:admin")
        return as_json(self._points("take_evaluation", body, self._caller(principal)), 201)
