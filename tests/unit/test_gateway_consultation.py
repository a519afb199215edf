"""The gateway's consultation routes: who may do what, the public view without a token, and the routes with a
fake consultation service."""
import json

import pytest
from nameko.testing.services import worker_factory
from werkzeug.routing import Map, Rule

from services.gateway import auth, openapi
from services.gateway.http import ApiHandler
from services.gateway.service import GatewayService
from shared.errors import Forbidden, Unauthorized, ValidationFailed
from tests.unit.gateway_fakes import FakeTokens, http_request

ALL_CONSULTATION = ("consultation:read", "consultation:write", "consultation:admin", "consultation:figures")
ALLOWED = {
    "resident": set(),
    "street_admin": set(ALL_CONSULTATION),
    "community_worker": {"consultation:read", "consultation:write", "consultation:figures"},
    "district_analyst": set(),  # reads the roll-ups, under the small-cell rule
    "organization_leader": set(),
    "department_feed": set(),
    "operator": set(),
}


@pytest.mark.parametrize("role", auth.ROLES)
def test_consultation_permissions_per_role(role):
    principal = auth.Principal("t1", "x", role, "310110012", 7 if role == "organization_leader" else None)
    for permission in ALL_CONSULTATION:
        if permission in ALLOWED[role]:
            auth.authorize(principal, permission, "310110012003")
        else:
            with pytest.raises(Forbidden, match="may not"):
                auth.authorize(principal, permission, "310110012003")


# -- routes, with worker_factory: a fake token store and a fake consultation service ---------------

TOKENS = {role: auth.new_token()[1] for role in ("street_admin", "community_worker", "district_analyst")}
PRINCIPALS = {
    "street_admin": auth.Principal("a1b2c3d4", "街道管理员", "street_admin", "310110012"),
    "community_worker": auth.Principal("b1b2c3d4", "社工", "community_worker", "310110012003"),
    "district_analyst": auth.Principal("d1b2c3d4", "区分析员", "district_analyst", "310110"),
}
WORKER_CALLER = {"actor": "token:b1b2c3d4:社工", "scope": "310110012003", "role": "community_worker",
                 "organization_id": None}


def request(*args, **kwargs):
    return http_request(TOKENS, *args, **kwargs)
@pytest.fixture
def tokens():
    return FakeTokens(TOKENS, PRINCIPALS)


@pytest.fixture
def gateway(tokens):
    return worker_factory(GatewayService, db=tokens)


def test_a_matter_is_201_with_its_location_and_200_when_replayed(gateway):
    body = {"request_id": "r1", "community_code": "310110012003", "category": "parking", "channel": "hotline",
            "title": "小区夜间停车难", "description": "消防通道被占"}
    gateway.consultation.raise_matter.return_value = {"id": 41, "status": "raised"}
    resp = gateway.raise_matter(request("POST", "/api/v1/matters", body, "community_worker"))
    assert resp.status_code == 201 and resp.headers["Location"] == "/api/v1/matters/41"
    gateway.consultation.raise_matter.assert_called_once_with(body, WORKER_CALLER)

    gateway.consultation.raise_matter.return_value = {"id": 41, "status": "raised", "replayed": True}
    resp = gateway.raise_matter(request("POST", "/api/v1/matters", body, "community_worker"))
    assert resp.status_code == 200 and json.loads(resp.get_data())["replayed"] is True
    assert resp.headers["Location"] == "/api/v1/matters/41"
    gateway.registry.raise_matter.assert_not_called()
    gateway.points.raise_matter.assert_not_called()


def test_the_public_results_need_no_token(gateway, tokens):
    gateway.consultation.public_results.return_value = {"items": [], "next": None}
    resp = gateway.public_results(request("GET", "/api/v1/public/results", role=None,
                                          query={"under": "310110012"}))
    assert resp.status_code == 200 and json.loads(resp.get_data()) == {"items": [], "next": None}
    gateway.consultation.public_results.assert_called_once_with({"under": "310110012"})
    assert tokens.lookups == 0
    # A token sent anyway changes nothing: it is not even looked at.
    gateway.public_results(request("GET", "/api/v1/public/results", role="district_analyst",
                                   query={"under": "310110012"}))
    assert tokens.lookups == 0


def test_the_public_results_are_documented_without_security():
    op = openapi.build("test")["paths"]["/api/v1/public/results"]["get"]
    assert op["security"] == []
    assert "401" not in op["responses"] and "403" not in op["responses"]
    assert {p["name"] for p in op["parameters"]} >= {"under"}


@pytest.mark.parametrize("query", [None, {"agenda_item_id": ""}, {"agenda_item_id": "abc"},
                                   {"agenda_item_id": "0"}, {"agenda_item_id": "-3"}, {"agenda_item_id": "1.5"},
                                   {"agenda_item_id": " 7"}, {"agenda_item_id": "1_0"},
                                   {"agenda_item_id": str(2 ** 63)}])
def test_a_tally_needs_a_positive_integer_agenda_item_before_any_rpc(gateway, query):
    with pytest.raises(ValidationFailed) as err:
        gateway.meeting_tally(request("GET", "/api/v1/meetings/5/tally", role="community_worker", query=query), 5)
    assert err.value.status == 422 and set(err.value.fields) == {"agenda_item_id"}
    assert not gateway.consultation.mock_calls


def test_a_tally_goes_to_the_service_with_the_item_as_an_integer(gateway):
    gateway.consultation.tally.return_value = {"meeting_id": 5, "agenda_item_id": 9, "quorum_met": True}
    resp = gateway.meeting_tally(request("GET", "/api/v1/meetings/5/tally", role="community_worker",
                                         query={"agenda_item_id": "9"}), 5)
    assert resp.status_code == 200
    gateway.consultation.tally.assert_called_once_with(5, {"agenda_item_id": "9"}, WORKER_CALLER)


def test_role_and_scope_are_checked_before_the_consultation_service_is_asked(gateway):
    with pytest.raises(Forbidden) as err:  # a matter of another community
        gateway.raise_matter(request("POST", "/api/v1/matters", {"community_code": "310110012004"},
                                     "community_worker"))
    assert set(err.value.fields) == {"community_code"}
    with pytest.raises(Forbidden) as err:
        gateway.similar_matters(request("GET", "/api/v1/matters/similar", role="community_worker",
                                        query={"community_code": "310110012004", "category": "parking",
                                               "text": "停车"}))
    assert set(err.value.fields) == {"community_code"}
    for route, path in [(gateway.create_agenda_item, "/api/v1/agenda-items"),
                        (gateway.schedule_meeting, "/api/v1/meetings")]:
        with pytest.raises(Forbidden) as err:
            route(request("POST", path, {"community_code": "310110012004"}, "community_worker"))
        assert set(err.value.fields) == {"community_code"}
    for route, path in [(gateway.search_matters, "/api/v1/matters"),
                        (gateway.consultation_figures, "/api/v1/consultation/figures")]:
        with pytest.raises(Forbidden) as err:
            route(request("GET", path, role="community_worker", query={"under": "310110012004"}))
        assert set(err.value.fields) == {"under"}
    with pytest.raises(Forbidden):  # deadlines are the street's
        gateway.set_consultation_deadline(request("PUT", "/api/v1/consultation/deadlines", {}, "community_worker"))
    with pytest.raises(Forbidden):  # analysts see roll-ups, not matters naming residents
        gateway.get_matter(request("GET", "/api/v1/matters/1", role="district_analyst"), 1)
    with pytest.raises(Unauthorized):
        gateway.get_meeting(request("GET", "/api/v1/meetings/1", role=None), 1)
    assert not gateway.consultation.mock_calls


def test_analysts_get_no_unsuppressed_figures(gateway):
    # Per-community counts of 1-4 are what the small-cell rule hides from analysts; they read the
    # same figures from the roll-ups' headlines, under that rule.
    with pytest.raises(Forbidden, match="may not"):
        gateway.consultation_figures(request("GET", "/api/v1/consultation/figures", role="district_analyst",
                                             query={"under": "310110012"}))
    assert not gateway.consultation.mock_calls


def test_a_code_that_is_not_a_string_is_left_to_the_service_schema(gateway):
    gateway.consultation.create_agenda_item.side_effect = ValidationFailed("bad", {"community_code": ["string"]})
    with pytest.raises(ValidationFailed):
        gateway.create_agenda_item(request("POST", "/api/v1/agenda-items", {"community_code": 310110012003},
                                           "community_worker"))


MEETING = {"community_code": "310110012003", "title": "停车议事会", "starts_at": "2030-05-01T19:00:00+08:00",
           "place": "居委会", "quorum": 1, "agenda_item_ids": [9],
           "roster": [{"role": "resident_rep", "name": "王阿姨"}]}
VOTE = {"participant_id": 1, "agenda_item_id": 9, "score": 4}


def test_creations_answer_201(gateway):
    # A dict missing `items` would be dumped with dict.items (marshmallow falls back to the attribute).
    gateway.consultation.schedule_meeting.return_value = {"id": 3, "items": [], "roster": []}
    resp = gateway.schedule_meeting(request("POST", "/api/v1/meetings", MEETING, "community_worker"))
    assert resp.status_code == 201 and resp.headers["Location"] == "/api/v1/meetings/3"
    gateway.consultation.schedule_meeting.return_value = {"id": 3, "items": [], "roster": [], "replayed": True}
    resp = gateway.schedule_meeting(request("POST", "/api/v1/meetings", MEETING, "community_worker"))
    assert resp.status_code == 200 and json.loads(resp.get_data())["replayed"] is True
    gateway.consultation.cast_vote.return_value = {"meeting_id": 3, "agenda_item_id": 9}
    resp = gateway.cast_vote(request("POST", "/api/v1/meetings/3/votes", VOTE, "community_worker"), 3)
    assert resp.status_code == 201 and "Location" not in resp.headers
    gateway.consultation.cast_vote.assert_called_once_with(3, VOTE, WORKER_CALLER)


def test_an_invalid_body_is_422_before_any_rpc(gateway):
    with pytest.raises(ValidationFailed) as err:
        gateway.add_agenda_option(request("POST", "/api/v1/agenda-items/4/options",
                                          {"title": "改建", "budget": "-1"}, "community_worker"), 4)
    assert set(err.value.fields) == {"budget"}
    with pytest.raises(ValidationFailed) as err:
        gateway.schedule_meeting(request("POST", "/api/v1/meetings", {**MEETING, "roster": [{"role": "x"}]},
                                         "community_worker"))
    assert set(err.value.fields) == {"roster.0.role", "roster.0.name"}
    assert not gateway.consultation.mock_calls


def test_budgets_are_documented_as_sent():
    schemas = openapi.build("test")["components"]["schemas"]
    for name in ("AgendaOptionCreate", "DecisionCreate"):
        budget = schemas[name]["properties"]["budget"]
        assert (budget["type"], budget["minimum"], budget["maximum"]) == ("number", 0, 10 ** 9)
    for name in ("AgendaOption", "Decision", "PublicResult"):
        assert schemas[name]["properties"]["budget"]["type"] == "string"


def test_a_reply_is_what_its_schema_declares(gateway):
    # Budgets go out as the strings the service sends; fields the document does not name are not sent.
    gateway.consultation.get_decision.return_value = {"id": 2, "budget": "180000.00", "decided_by": "token:x",
                                                      "tasks": [{"id": 1, "due_on": "2030-06-01", "updates": []}]}
    body = json.loads(gateway.get_decision(request("GET", "/api/v1/decisions/2", role="community_worker"), 2)
                      .get_data())
    assert body == {"id": 2, "budget": "180000.00", "tasks": [{"id": 1, "due_on": "2030-06-01", "updates": []}]}


def _url_map():
    """The gateway's routes as nameko's web server maps them."""
    rules = []
    for name in dir(GatewayService):
        for ext in getattr(getattr(GatewayService, name), "nameko_entrypoints", ()):
            if isinstance(ext, ApiHandler):
                rules.append(Rule(ext.url, methods=ext.method.split(","), endpoint=name))
    return Map(rules).bind("localhost")


@pytest.mark.parametrize("method, path, endpoint, args", [
    ("GET", "/api/v1/matters/similar", "similar_matters", {}),
    ("GET", "/api/v1/matters/12", "get_matter", {"matter_id": 12}),
    ("GET", "/api/v1/matters", "search_matters", {}),
    ("GET", "/api/v1/meetings/5/tally", "meeting_tally", {"meeting_id": 5}),
    ("GET", "/api/v1/public/results", "public_results", {}),
    ("PUT", "/api/v1/consultation/deadlines", "set_consultation_deadline", {}),
])
def test_the_routes_do_not_collide(method, path, endpoint, args):
    assert _url_map().match(path, method=method) == (endpoint, args)
