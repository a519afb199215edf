"""The points service's HTTP operations (shared/api.py): the gateway serves and documents exactly these.

The gateway checks the role and any node code the request names (a listing's `under`); the points
service checks each account's and record's community against the token's scope and, for an
organisation's leader, the organisation of each record, since only it knows them. Creating a record
or a redemption with a `request_id` seen before, or opening an account that is open already, answers
200 with the first result (marked `replayed`) instead of 201.
"""
from services.points import schemas as s
from shared.api import Operation

TAG = "points"
TAGS = {TAG: "Service points: the catalogue of categories and rewards, accounts, service records and their "
             "verification, redemptions, and the annual evaluation"}
P = "/api/v1/points"
# Posting a batch locks and posts up to 5000 records in one transaction.
BATCH_VERIFY_TIMEOUT = 60
CHANGE = (404, 409, 422)
UNDER = (404, 422)  # a listing under a node code the registry does not hold: 404, not an empty page


def _op(method, path, rpc, permission, summary, **kwargs):
    return Operation(method, P + path, "points", rpc, permission, summary, TAG, **kwargs)


EVALUATION = _op(
    "GET", "/evaluation", "evaluation", "points:read",
    "The year's standings, ranked per community and party branch (live until the snapshot)",
    query=s.EvaluationQuerySchema, reply=s.EvaluationSchema, scope="query:under", custom=True,
    name="point_evaluation", problems=UNDER,
    extra={"responses": {"200": {
        "description": "JSON, or with format=csv a UTF-8 CSV (with BOM) download",
        "content": {"application/json": {"schema": s.EvaluationSchema},
                    "text/csv": {"schema": {"type": "string", "format": "binary"}}}}}})

OPERATIONS = [
    # -- catalogue: categories with versioned rules, and rewards --------------------------------
    _op("GET", "/categories", "list_categories", "points:read",
        "Service categories with the rule in force today and every version", query=s.CatalogueQuerySchema,
        reply=s.CategoryListSchema, caller=False, name="list_point_categories"),
    _op("POST", "/categories", "create_category", "points:admin",
        "Create a category with its first rule version (street admins)", body=s.CategoryCreateSchema,
        reply=s.CategorySchema, status=201, location=P + "/categories/{code}", problems=(409, 422),
        name="create_point_category"),
    _op("GET", "/categories/<string:code>", "get_category", "points:read", "A category and its rule versions",
        reply=s.CategorySchema, caller=False, problems=(404,), name="get_point_category"),
    _op("PATCH", "/categories/<string:code>", "set_category", "points:admin",
        "Rename a category, or (de)activate it (street admins)", body=s.CategoryUpdateSchema,
        reply=s.CategorySchema, problems=(404, 422), name="set_point_category"),
    _op("POST", "/categories/<string:code>/rules", "add_rule", "points:admin",
        "Add a rule version valid from a day on; versions are never edited (street admins)", body=s.RuleSchema,
        reply=s.CategorySchema, status=201, problems=CHANGE, name="add_point_rule"),
    _op("GET", "/rewards", "list_rewards", "points:read", "Rewards points can buy", query=s.CatalogueQuerySchema,
        reply=s.RewardListSchema, caller=False, name="list_point_rewards"),
    _op("POST", "/rewards", "create_reward", "points:admin", "Add a reward (street admins)",
        body=s.RewardCreateSchema, reply=s.RewardSchema, status=201, location=P + "/rewards/{id}",
        problems=(409, 422), name="create_point_reward"),
    _op("PATCH", "/rewards/<int:reward_id>", "update_reward", "points:admin",
        "Change a reward's stock, cost, per-person limit or active flag (street admins)",
        body=s.RewardUpdateSchema, reply=s.RewardSchema, problems=CHANGE, name="update_point_reward"),

    # -- accounts ---------------------------------------------------------------------------------
    _op("GET", "/accounts", "search_accounts", "points:read",
        "Points accounts in scope, with balance, held points, verified hours and stars",
        query=s.AccountListQuerySchema, reply=s.PointsAccountPageSchema, scope="query:under",
        name="search_point_accounts", problems=UNDER),
    _op("POST", "/accounts", "open_account", "points:write",
        "Open the account of a resident or an organisation (or answer the one that exists)",
        body=s.PointsAccountOpenSchema, reply=s.PointsAccountResultSchema, status=201,
        location=P + "/accounts/{id}", replayed_ok=True, problems=(404, 422), name="open_point_account",
        extra={"responses": {"200": {"description": "the account was open already: it, with `replayed: true`",
                                     "content": {"application/json": {"schema": s.PointsAccountResultSchema}}}}}),
    _op("GET", "/accounts/<int:account_id>", "get_account", "points:read", "A points account",
        reply=s.PointsAccountSchema, problems=(404,), name="get_point_account"),
    _op("GET", "/accounts/<int:account_id>/statement", "statement", "points:read",
        "An account's ledger lines, newest first", query=s.StatementQuerySchema, reply=s.StatementSchema,
        problems=(404, 422), name="point_statement"),

    # -- service records --------------------------------------------------------------------------
    _op("GET", "/records", "search_records", "points:read",
        "Service records in scope (an organisation's leader sees its organisation's only)",
        query=s.RecordListQuerySchema, reply=s.ServiceRecordPageSchema, scope="query:under",
        name="search_service_records", problems=UNDER),
    _op("POST", "/records", "create_record", "points:write",
        "Claim or log a service record; it waits for verification", body=s.ServiceRecordCreateSchema,
        reply=s.ServiceRecordResultSchema, status=201, location=P + "/records/{id}", replayed_ok=True,
        problems=CHANGE, name="create_service_record"),
    _op("GET", "/records/<int:record_id>", "get_record", "points:read", "A service record",
        reply=s.ServiceRecordSchema, problems=(404,), name="get_service_record"),
    # `records/verify` has no id segment and `verify` is no int, so it never meets `records/<int:record_id>/...`.
    _op("POST", "/records/verify", "verify_records", "points:verify",
        "Verify many pending records at once: all are posted, or none (a 409 or 403 names each refused record "
        "in `errors` as `record_ids.<id>`)", body=s.RecordBatchVerifySchema, reply=s.RecordBatchResultSchema,
        timeout=BATCH_VERIFY_TIMEOUT, problems=CHANGE, name="verify_service_records"),
    _op("POST", "/records/<int:record_id>/verify", "verify_record", "points:verify",
        "Verify a pending record: its points are posted under the rule in force on its service day",
        body=s.RecordVerifySchema, reply=s.ServiceRecordResultSchema, problems=CHANGE,
        name="verify_service_record"),
    _op("POST", "/records/<int:record_id>/void", "void_record", "points:verify",
        "Void a pending record (by whoever may verify it)", body=s.RecordVoidSchema, reply=s.ServiceRecordSchema,
        problems=CHANGE, name="void_service_record"),
    _op("POST", "/records/<int:record_id>/reverse", "reverse_record", "points:correct",
        "Reverse a posted record: a new transfer takes the points back (community workers, street admins)",
        body=s.RecordReverseSchema, reply=s.ServiceRecordResultSchema, problems=CHANGE,
        name="reverse_service_record"),

    # -- redemptions ------------------------------------------------------------------------------
    _op("GET", "/redemptions", "search_redemptions", "points:read", "Redemptions in scope",
        query=s.RedemptionListQuerySchema, reply=s.RedemptionPageSchema, scope="query:under", problems=UNDER),
    _op("POST", "/redemptions", "request_redemption", "points:write",
        "Redeem points for a reward: the points are held until fulfilment or cancellation",
        body=s.RedemptionCreateSchema, reply=s.RedemptionResultSchema, status=201,
        location=P + "/redemptions/{id}", replayed_ok=True, problems=CHANGE),
    _op("GET", "/redemptions/<int:redemption_id>", "get_redemption", "points:read", "A redemption",
        reply=s.RedemptionSchema, problems=(404,)),
    _op("POST", "/redemptions/<int:redemption_id>/fulfil", "fulfil_redemption", "points:write",
        "Hand the reward over: the held points are spent", body=s.RedemptionCloseSchema, reply=s.RedemptionSchema,
        problems=CHANGE),
    _op("POST", "/redemptions/<int:redemption_id>/cancel", "cancel_redemption", "points:write",
        "Cancel: the held points go back and the stock is returned", body=s.RedemptionCloseSchema,
        reply=s.RedemptionSchema, problems=CHANGE),

    # -- annual evaluation ------------------------------------------------------------------------
    EVALUATION,
    _op("POST", "/evaluation", "take_evaluation", "points:admin",
        "Take the year-end snapshot of the whole instance; it is immutable (street admins)",
        body=s.EvaluationSnapshotSchema, reply=s.EvaluationSchema, status=201, problems=(409, 422),
        name="take_point_evaluation"),
]
