"""The gateway's routes for cases escalated from the streets (at a district): who may list and answer them, the
scope of a listing, a malformed case id refused before any RPC, and what the consultation service is asked."""
import json

import pytest
from nameko.testing.services import worker_factory
from werkzeug.exceptions import NotFound as NoRoute
from werkzeug.routing import Map, Rule

from services.gateway import auth, openapi
from services.gateway.http import ApiHandler
from services.gateway.service import GatewayService
from shared.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from tests.unit.gateway_fakes import FakeTokens, http_request

ROLES = ("street_admin", "community_worker", "district_analyst", "resident", "organization_leader",
         "department_feed", "operator")
TOKENS = {role: auth.new_token()[1] for role in ROLES}
PRINCIPALS = {
    # A district instance: its own staff are scoped to the district, or to one street below it.
    "street_admin": auth.Principal("a1b2c3d4", "区管理员", "street_admin", "310110"),
    "community_worker": auth.Principal("b1b2c3d4", "街道社工", "community_worker", "310110012"),
    "district_analyst": auth.Principal("d1b2c3d4", "区分析员", "district_analyst", "310110"),
    "resident": auth.Principal("e1b2c3d4", "居民", "resident", "310110012003", resident_id=5),
    "organization_leader": auth.Principal("f1b2c3d4", "队长", "organization_leader", "310110012", 7),
    "department_feed": auth.Principal("c1b2c3d4", "民政局", "department_feed", "310110"),
    "operator": auth.Principal("91b2c3d4", "运维", "operator", "310110"),
}
ADMIN_CALLER = {"actor": "token:a1b2c3d4:区管理员", "scope": "310110", "role": "street_admin",
                "organization_id": None}
WORKER_CALLER = {"actor": "token:b1b2c3d4:街道社工", "scope": "310110012", "role": "community_worker",
                 "organization_id": None}
ANSWER = {"outcome": "referred", "answer": "已转区建管委协调。", "referred_to": "区建管委"}
CASE = {"case_id": "310110012:42", "from_code": "310110012", "community_code": "310110012003",
        "category": "parking", "urgency": "normal", "channel": "visit", "reason": "涉及区属道路",
        "raised_on": "2024-05-02", "status": "answered", "outcome": "referred", "answer": "已转区建管委协调。",
        "answered_by": "token:a1b2c3d4:区管理员", "answered_at": "2024-05-06T09:00:00+08:00",
        "received_at": "2024-05-03T10:00:00+08:00"}


def request(*args, **kwargs):
    return http_request(TOKENS, *args, **kwargs)
@pytest.fixture
def tokens():
    return FakeTokens(TOKENS, PRINCIPALS)


@pytest.fixture
def gateway(tokens):
    return worker_factory(GatewayService, db=tokens)


def _list(gateway, role, query=None):
    return gateway.list_cases(request("GET", "/api/v1/cases", role=role, query=query))


def _answer(gateway, role, case_id="310110012:42", body=ANSWER):
    return gateway.answer_case(request("POST", f"/api/v1/cases/{case_id}/answer", body, role), case_id)


# -- who may --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["resident", "organization_leader", "department_feed", "district_analyst",
                                  "operator"])
def test_only_the_registers_keepers_list_cases(gateway, role):
    with pytest.raises(Forbidden) as err:
        _list(gateway, role)
    assert set(err.value.fields) == {"role"} and "consultation:read" in err.value.message
    assert not gateway.consultation.mock_calls


@pytest.mark.parametrize("role", ["resident", "organization_leader", "department_feed", "district_analyst",
                                  "operator"])
def test_only_the_registers_keepers_answer_cases(gateway, role):
    with pytest.raises(Forbidden) as err:
        _answer(gateway, role)
    assert set(err.value.fields) == {"role"} and "consultation:write" in err.value.message
    assert not gateway.consultation.mock_calls


def test_no_token_is_401_before_any_rpc(gateway):
    with pytest.raises(Unauthorized):
        _list(gateway, None)
    with pytest.raises(Unauthorized):
        _answer(gateway, None)
    assert not gateway.consultation.mock_calls


# -- listing ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("under", ["310110013", "310110", "310115012", "abc"])
def test_a_listing_under_a_code_outside_the_scope_is_403(gateway, under):
    with pytest.raises(Forbidden) as err:
        _list(gateway, "community_worker", {"under": under})
    assert set(err.value.fields) == {"under"} and err.value.status == 403
    assert not gateway.consultation.mock_calls


def test_a_listing_passes_the_query_and_the_caller(gateway):
    gateway.consultation.list_cases.return_value = {"items": [CASE]}
    resp = _list(gateway, "street_admin", {"under": "310110012", "status": "open", "limit": "20"})
    assert resp.status_code == 200 and json.loads(resp.get_data()) == {"items": [CASE]}
    gateway.consultation.list_cases.assert_called_once_with({"under": "310110012", "status": "open", "limit": "20"},
                                                            ADMIN_CALLER)


def test_a_listing_without_under_is_left_to_the_token_scope(gateway):
    gateway.consultation.list_cases.return_value = {"items": []}
    assert _list(gateway, "community_worker").status_code == 200
    gateway.consultation.list_cases.assert_called_once_with({}, WORKER_CALLER)


# -- answering -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case_id", ["42", "310110012", "310110012:", ":42", "31011001:42", "3101100120:42",
                                     "310110012:4a", "310110012:-4", "310110012: 42", "310110012:42:1",
                                     "310110012;42", "٣١٠١١٠٠١٢:42", "310110012:" + "9" * 20, "310110012:42\n"])
def test_a_malformed_case_id_is_422_before_any_rpc(gateway, case_id):
    # Checked once the token is: a resident or an analyst gets their 403 whatever the id.
    with pytest.raises(ValidationFailed) as err:
        _answer(gateway, "street_admin", case_id)
    assert err.value.status == 422 and set(err.value.fields) == {"case_id"}
    assert not gateway.consultation.mock_calls


def test_an_answer_passes_the_case_the_body_and_the_caller(gateway):
    gateway.consultation.answer_case.return_value = CASE
    resp = _answer(gateway, "street_admin")
    assert resp.status_code == 200 and json.loads(resp.get_data()) == CASE
    gateway.consultation.answer_case.assert_called_once_with("310110012:42", ANSWER, ADMIN_CALLER)


def test_a_worker_answers_with_their_own_caller_and_the_service_scopes_the_case(gateway):
    # The gateway does not read the street out of the id: the service answers 404 for a case outside the scope.
    gateway.consultation.answer_case.side_effect = NotFound("no case 310110013:7", {"case_id": ["no case"]})
    with pytest.raises(NotFound):
        _answer(gateway, "community_worker", "310110013:7", {"outcome": "answered", "answer": "好"})
    gateway.consultation.answer_case.assert_called_once_with("310110013:7", {"outcome": "answered", "answer": "好"},
                                                             WORKER_CALLER)


def test_an_answer_needs_a_json_object(gateway):
    with pytest.raises(ValidationFailed) as err:
        _answer(gateway, "street_admin", body=["answered"])
    assert set(err.value.fields) == {"_body"}
    assert not gateway.consultation.mock_calls


# -- routes and the document -----------------------------------------------------------------------------

def _url_map():
    rules = []
    for name in dir(GatewayService):
        for ext in getattr(getattr(GatewayService, name), "nameko_entrypoints", ()):
            if isinstance(ext, ApiHandler):
                rules.append(Rule(ext.url, methods=ext.method.split(","), endpoint=name))
    return Map(rules).bind("localhost")


@pytest.mark.parametrize("method, path, endpoint, args", [
    ("GET", "/api/v1/cases", "list_cases", {}),
    ("POST", "/api/v1/cases/310110012:42/answer", "answer_case", {"case_id": "310110012:42"}),
])
def test_the_case_routes_map(method, path, endpoint, args):
    assert _url_map().match(path, method=method) == (endpoint, args)


def test_a_case_is_not_read_one_by_one():
    # Only answered: GET /cases/<id> is no route (a 404 problem, services/gateway/http.py).
    with pytest.raises(NoRoute):
        _url_map().match("/api/v1/cases/310110012:42", method="GET")


def test_the_cases_are_documented():
    spec = openapi.build("test")
    listing = spec["paths"]["/api/v1/cases"]["get"]
    assert listing["tags"] == ["consultation"]
    assert {p["name"] for p in listing["parameters"]} == {"under", "status", "limit"}
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CaseList"}
    answer = spec["paths"]["/api/v1/cases/{case_id}/answer"]["post"]
    assert answer["tags"] == ["consultation"]
    assert answer["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CaseAnswer"}
    assert answer["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Case"}
    assert {p["name"] for p in answer["parameters"]} == {"case_id"}
    schemas = spec["components"]["schemas"]
    assert set(schemas["Case"]["properties"]) == {
        "case_id", "from_code", "community_code", "category", "urgency", "channel", "reason", "raised_on", "status",
        "outcome", "answer", "referred_to", "answered_by", "answered_at", "received_at"}
    assert answer["parameters"][0]["schema"]["pattern"] == "^[0-9]{9}:[0-9]{1,19}$"
    assert set(schemas["CaseAnswer"]["required"]) == {"outcome", "answer"}
    assert schemas["CaseAnswer"]["properties"]["outcome"]["enum"] == ["answered", "referred"]
    assert "consultation" in {t["name"] for t in spec["tags"]}
