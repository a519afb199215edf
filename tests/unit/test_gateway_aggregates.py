"""The gateway's aggregator routes: who may read roll-ups and the feed, scope, the CSV download, rebuild, and the
routes with a fake aggregator service."""
import csv
import io
import json
from unittest import mock

import pytest
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.gateway import auth, openapi
from services.aggregator import api as aggregator_api, figures
from services.aggregator.api import REBUILD_TIMEOUT
from services.gateway.service import GatewayService
from shared.errors import Forbidden, Unauthorized, ValidationFailed
from tests.unit.gateway_fakes import FakeTokens

ALL_AGGREGATES = ("aggregates:read", "aggregates:feed", "aggregates:admin")
ALLOWED = {
    "street_admin": set(ALL_AGGREGATES),
    "operator": set(ALL_AGGREGATES),
    "district_analyst": {"aggregates:read"},
    "department_feed": {"aggregates:read", "aggregates:feed"},
    "community_worker": set(),
    "organization_leader": set(),
    "resident": set(),
}
IDS = {"organization_leader": (7, None), "resident": (None, 42)}


@pytest.mark.parametrize("role", auth.ROLES)
def test_aggregates_permissions_per_role(role):
    principal = auth.Principal("t1", "x", role, "310110", *IDS.get(role, (None, None)))
    for permission in ALL_AGGREGATES:
        if permission in ALLOWED[role]:
            auth.authorize(principal, permission, "310110012003")
        else:
            with pytest.raises(Forbidden, match="may not"):
                auth.authorize(principal, permission, "310110012003")


# -- routes, with worker_factory: a fake token store and a fake aggregator service --------------------------

PRINCIPALS = {
    "street_admin": auth.Principal("a1b2c3d4", "街道管理员", "street_admin", "310110012"),
    "operator": auth.Principal("f1b2c3d4", "运维", "operator", "310110"),
    "district_analyst": auth.Principal("d1b2c3d4", "区分析员", "district_analyst", "310110"),
    "department_feed": auth.Principal("e1b2c3d4", "民政局", "department_feed", "310110012"),
    "community_worker": auth.Principal("b1b2c3d4", "社工", "community_worker", "310110012003"),
    "organization_leader": auth.Principal("c1b2c3d4", "志愿者队长", "organization_leader", "310110012003", 7),
    "resident": auth.Principal("01b2c3d4", "王秀英", "resident", "310110012003", None, 42),
}
TOKENS = {role: auth.new_token()[1] for role in PRINCIPALS}
ANALYST_CALLER = {"actor": "token:d1b2c3d4:区分析员", "scope": "310110", "role": "district_analyst",
                  "organization_id": None}
FEED_CALLER = {"actor": "token:e1b2c3d4:民政局", "scope": "310110012", "role": "department_feed",
               "organization_id": None}
ROLLUP = {"metric": "residents", "node": "310110012", "period": "month", "start": "2025-01-01",
          "end": "2025-02-28", "group": "child", "stock": True,
          "series": [{"key": "310110012003", "points": [
                         {"period_start": "2025-01-01", "n": 412, "suppressed": False, "total": 0.0},
                         {"period_start": "2025-02-01", "n": None, "suppressed": True, "total": None}]},
                     {"key": "=HYPERLINK(1)", "points": [
                         {"period_start": "2025-01-01", "n": 7, "suppressed": False, "total": 3.5}]}]}


def request(method, path, role="district_analyst", query=None):
    headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
    builder = EnvironBuilder(method=method, path=path, query_string=query, headers=headers,
                             data="{}" if method == "POST" else None, content_type="application/json")
    return Request(builder.get_environ())


@pytest.fixture
def gateway():
    return worker_factory(GatewayService, db=FakeTokens(TOKENS, PRINCIPALS))


ROUTES = sorted((op.handler_name, op.method, op.path) for op in aggregator_api.OPERATIONS)
READ_ROUTES = [r for r in ROUTES if r[0] in ("aggregate_rollups", "aggregate_rollups_csv", "aggregate_feed",
                                             "aggregate_headlines", "aggregate_dashboard", "aggregate_nodes",
                                             "aggregate_boundaries", "aggregate_freshness")]
ADMIN_ROUTES = [r for r in ROUTES if r not in READ_ROUTES]


def test_the_aggregate_routes_are_all_there():
    assert [(m, u) for _, m, u in ROUTES] == [("GET", "/api/v1/rollups/boundaries"), ("GET", "/api/v1/children"),
                                              ("GET", "/api/v1/rollups/dashboard"), ("GET", "/api/v1/feed"),
                                              ("GET", "/api/v1/rollups/freshness"),
                                              ("GET", "/api/v1/rollups/headlines"),
                                              ("GET", "/api/v1/rollups/nodes"),
                                              ("GET", "/api/v1/rollups"), ("GET", "/api/v1/rollups.csv"),
                                              ("POST", "/api/v1/rollups/rebuild")]


@pytest.mark.parametrize("name, method, url", ROUTES)
@pytest.mark.parametrize("role", ["resident", "organization_leader", "community_worker"])
def test_registers_keepers_leaders_and_residents_get_nothing_here(gateway, role, name, method, url):
    with pytest.raises(Forbidden, match="may not"):
        getattr(gateway, name)(request(method, url, role))
    assert not gateway.aggregator.mock_calls


@pytest.mark.parametrize("name, method, url", ROUTES)
def test_no_token_no_figures(gateway, name, method, url):
    with pytest.raises(Unauthorized):
        getattr(gateway, name)(request(method, url, None))
    assert not gateway.aggregator.mock_calls


@pytest.mark.parametrize("name, method, url", ADMIN_ROUTES)
@pytest.mark.parametrize("role", ["district_analyst", "department_feed"])
def test_children_and_rebuild_are_for_admins_only(gateway, role, name, method, url):
    with pytest.raises(Forbidden, match="aggregates:admin"):
        getattr(gateway, name)(request(method, url, role))
    assert not gateway.aggregator.mock_calls


def test_rollups_pass_the_query_and_a_caller_with_the_role(gateway):
    a = gateway.aggregator
    a.rollups.return_value = ROLLUP
    query = {"metric": "residents", "node": "310110012", "period": "month", "group": "child"}
    resp = gateway.aggregate_rollups(request("GET", "/api/v1/rollups", query=query))
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert json.loads(resp.get_data()) == ROLLUP
    a.rollups.assert_called_once_with(query, ANALYST_CALLER)
    # No node: the service takes the token's scope; the gateway has nothing to check.
    gateway.aggregate_rollups(request("GET", "/api/v1/rollups", "department_feed", query={"metric": "residents"}))
    a.rollups.assert_called_with({"metric": "residents"}, FEED_CALLER)
    assert a.rollups.call_args.args[1]["role"] == "department_feed"


def test_the_feed_passes_the_cursor_and_a_caller_with_the_role(gateway):
    a = gateway.aggregator
    a.feed.return_value = {"items": [], "next": 40}
    query = {"after": "40", "limit": "100", "metric": "residents", "prefix": "310110012003"}
    resp = gateway.aggregate_feed(request("GET", "/api/v1/feed", "department_feed", query=query))
    assert json.loads(resp.get_data()) == {"items": [], "next": 40}
    a.feed.assert_called_once_with(query, FEED_CALLER)


@pytest.mark.parametrize("name, path, field, code", [
    ("aggregate_rollups", "/api/v1/rollups", "node", "310110013"),
    ("aggregate_rollups_csv", "/api/v1/rollups.csv", "node", "3101"),
    ("aggregate_feed", "/api/v1/feed", "prefix", "310110013003"),
    ("aggregate_feed", "/api/v1/feed", "prefix", "31011"),  # above the scope is outside it too
])
def test_a_node_outside_the_tokens_scope_is_refused_before_the_service_is_asked(gateway, name, path, field, code):
    with pytest.raises(Forbidden, match="outside") as err:
        getattr(gateway, name)(request("GET", path, "department_feed", query={"metric": "residents", field: code}))
    assert set(err.value.fields) == {field}
    assert not gateway.aggregator.mock_calls


def test_a_node_inside_the_scope_goes_through(gateway):
    gateway.aggregator.rollups.return_value = ROLLUP
    gateway.aggregate_rollups(request("GET", "/api/v1/rollups", "department_feed",
                                      query={"metric": "residents", "node": "310110012003"}))
    assert gateway.aggregator.rollups.call_count == 1


def test_the_services_refusals_pass_through(gateway):
    gateway.aggregator.rollups_csv.side_effect = ValidationFailed("bad", {"metric": ["Missing data for required field."]})
    with pytest.raises(ValidationFailed):
        gateway.aggregate_rollups_csv(request("GET", "/api/v1/rollups.csv"))


def test_the_csv_is_utf8_with_a_bom_a_header_and_a_row_per_key_and_period():
    raw = figures.csv_text(ROLLUP).encode("utf-8")
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["指标 metric", "节点 node", "分组 key", "周期 period_start", "数量 n", "合计 total"]
    assert rows[1:] == [["residents", "310110012", "310110012003", "2025-01-01", "412", "0.0"],
                        ["residents", "310110012", "310110012003", "2025-02-01", "suppressed", ""],
                        # A value from the facts never becomes a formula in Excel.
                        ["residents", "310110012", "'=HYPERLINK(1)", "2025-01-01", "7", "3.5"]]


def test_the_csv_is_served_as_a_download(gateway):
    a = gateway.aggregator
    a.rollups_csv.return_value = {"metric": "residents", "node": "310110012", "csv": figures.csv_text(ROLLUP)}
    query = {"metric": "residents", "node": "310110012", "group": "child"}
    resp = gateway.aggregate_rollups_csv(request("GET", "/api/v1/rollups.csv", query=query))
    a.rollups_csv.assert_called_once_with(query, ANALYST_CALLER)
    assert resp.status_code == 200 and resp.get_data().startswith(b"\xef\xbb\xbf")
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="rollups-residents-310110012.csv"'


def test_the_csv_filename_needs_no_quoting(gateway):
    gateway.aggregator.rollups_csv.return_value = {"metric": 'a"b; c', "node": "3101\r\n", "csv": ""}
    resp = gateway.aggregate_rollups_csv(request("GET", "/api/v1/rollups.csv"))
    assert resp.headers["Content-Disposition"] == 'attachment; filename="rollups-a_b__c-3101__.csv"'


def test_rebuild_is_for_street_admins_and_operators(gateway):
    a = gateway.aggregator
    a.rebuild.return_value = {"facts": 1234}
    for role in ("street_admin", "operator"):
        resp = gateway.rebuild_rollups(request("POST", "/api/v1/rollups/rebuild", role))
        assert resp.status_code == 200 and json.loads(resp.get_data()) == {"facts": 1234}
    assert a.rebuild.call_count == 2 and a.rebuild.call_args.args == ()
    # Replaying the log takes longer than an ordinary call: the deadline is the rebuild's own.
    with mock.patch("services.gateway.service.eventlet.Timeout") as timeout:
        gateway.rebuild_rollups(request("POST", "/api/v1/rollups/rebuild", "operator"))
    timeout.assert_called_once_with(REBUILD_TIMEOUT)


def test_children_are_listed_with_passwords_masked(gateway):
    gateway.aggregator.children.return_value = [
        {"code": "310110012", "public_key": "k1", "amqp_uri": "amqps://fed:s3cret@street12.example:5671/linli",
         "added_at": "2025-01-01T00:00:00+00:00", "last_fact_at": None},
        {"code": "310110013", "public_key": "k2", "amqp_uri": None, "added_at": "2025-01-02T00:00:00+00:00",
         "last_fact_at": "2025-03-01T08:00:00+00:00"},
        {"code": "310110014", "public_key": "k3", "amqp_uri": "amqp://street14/linli",
         "added_at": "2025-01-03T00:00:00+00:00", "last_fact_at": None}]
    facts = {"service": "registry", "stream": "facts", "contiguous": 9, "highest": 9, "missing": 0,
             "oldest_gap_seconds": 0.0, "resends_requested": 0, "resends_answered": 0}
    cases = {"service": "consultation", "stream": "cases", "contiguous": 3, "highest": 5, "missing": 1,
             "oldest_gap_seconds": 42.0, "resends_requested": 1, "resends_answered": 0}
    for child in gateway.aggregator.children.return_value:
        child["streams"] = [facts] if child["code"] == "310110012" else []
    gateway.consultation.stream_positions.return_value = [{"source": "310110012", **cases}]
    resp = gateway.aggregate_children(request("GET", "/api/v1/children", "operator"))
    children = json.loads(resp.get_data())
    assert [c["amqp_uri"] for c in children] == ["amqps://fed:***@street12.example:5671/linli", None,
                                                 "amqp://street14/linli"]
    assert "s3cret" not in resp.get_data(as_text=True)
    gateway.aggregator.children.assert_called_once_with()
    # The cases a child escalates are counted by consultation, and listed beside its facts.
    assert [c["streams"] for c in children] == [[facts, cases], [], []]


def test_every_aggregate_route_is_documented_under_its_tag():
    spec = openapi.build("test")
    for _, method, url in ROUTES:
        op = spec["paths"][url][method.lower()]
        assert op["tags"] == ["aggregates"] and op["security"] == [{"bearer": []}, {"session": []}]
    rollups = spec["paths"]["/api/v1/rollups"]["get"]
    assert {p["name"] for p in rollups["parameters"]} == {"metric", "node", "period", "start", "end", "group"}
    feed = spec["paths"]["/api/v1/feed"]["get"]
    assert {p["name"] for p in feed["parameters"]} == {"after", "limit", "metric", "prefix"}
    download = spec["paths"]["/api/v1/rollups.csv"]["get"]
    assert list(download["responses"]["200"]["content"]) == ["text/csv"]
    assert download["parameters"] == rollups["parameters"]
    assert "aggregates" in {t["name"] for t in spec["tags"]}


def test_headlines_pass_the_query_and_refuse_a_node_outside_the_scope(gateway):
    gateway.aggregator.headline_figures.return_value = {"node": "310110", "residents": None}
    resp = gateway.aggregate_headlines(request("GET", "/api/v1/rollups/headlines", query={"year": "2026"}))
    assert resp.status_code == 200 and json.loads(resp.get_data())["residents"] is None
    query, caller = gateway.aggregator.headline_figures.call_args.args
    assert query == {"year": "2026"} and caller["role"] == "district_analyst"
    with pytest.raises(Forbidden):
        gateway.aggregate_headlines(request("GET", "/api/v1/rollups/headlines", query={"node": "310115"}))


def test_an_analyst_reads_aggregates_but_not_the_facts_one_by_one(gateway):
    with pytest.raises(Forbidden, match="aggregates:feed"):
        gateway.aggregate_feed(request("GET", "/api/v1/feed", "district_analyst"))
    assert not gateway.aggregator.mock_calls
