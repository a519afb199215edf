"""The gateway's points routes: who may do what, leaders' tokens, and the routes with a fake points service."""
import json
from unittest import mock

import pytest
from nameko.testing.services import worker_factory

from services.gateway import auth, store
from services.gateway.service import GatewayService
from shared.errors import Forbidden, ValidationFailed
from tests.unit.gateway_fakes import FakeTokens, http_request

ALL_POINTS = ("points:read", "points:write", "points:verify", "points:correct", "points:admin")
ALLOWED = {
    "resident": set(),
    "street_admin": set(ALL_POINTS),
    "community_worker": {"points:read", "points:write", "points:verify", "points:correct"},
    "organization_leader": {"points:read", "points:write", "points:verify"},
    "district_analyst": set(),
    "department_feed": set(),
    "operator": set(),
}


@pytest.mark.parametrize("role", auth.ROLES)
def test_points_permissions_per_role(role):
    principal = auth.Principal("t1", "x", role, "310110012", 7 if role == "organization_leader" else None)
    for permission in ALL_POINTS:
        if permission in ALLOWED[role]:
            auth.authorize(principal, permission, "310110012003")
        else:
            with pytest.raises(Forbidden, match="may not"):
                auth.authorize(principal, permission, "310110012003")


def test_an_organisation_leader_reads_nodes_and_nothing_personal():
    leader = auth.Principal("t1", "志愿者队长", "organization_leader", "310110012003", 7)
    auth.authorize(leader, "nodes:read", "310110012003")
    allowed = {p for p, roles in auth.PERMISSIONS.items() if "organization_leader" in roles}
    assert allowed == {"nodes:read", "points:read", "points:write", "points:verify", "notification:organization"}
    with pytest.raises(Forbidden, match="outside"):
        auth.authorize(leader, "points:read", "310110012004")


def test_a_leaders_token_names_exactly_one_organisation():
    auth.validate_grant("志愿者队长", "organization_leader", "310110012003", "310110012", 7)
    with pytest.raises(ValidationFailed) as err:
        auth.validate_grant("志愿者队长", "organization_leader", "310110012003", "310110012")
    assert set(err.value.fields) == {"organization_id"}
    with pytest.raises(ValidationFailed) as err:
        auth.validate_grant("社工", "community_worker", "310110012003", "310110012", 7)
    assert set(err.value.fields) == {"organization_id"}
    for bad in (0, -3, True, "7"):
        with pytest.raises(ValidationFailed) as err:
            auth.validate_grant("志愿者队长", "organization_leader", "310110012003", "310110012", bad)
        assert set(err.value.fields) == {"organization_id"}
    auth.validate_grant("社工", "community_worker", "310110012003", "310110012")


def test_the_store_carries_the_organisation_both_ways():
    conn = mock.Mock()
    store.add(conn, "a1b2c3d4", "lnl_secret", "队长", "organization_leader", "310110012003", None, 7)
    assert conn.execute.call_args.args[1][-1] == 7
    store.add(conn, "a1b2c3d4", "lnl_secret", "社工", "community_worker", "310110012003")
    assert conn.execute.call_args.args[1][-1] is None
    conn.execute.return_value.fetchone.return_value = {
        "token_id": "a1b2c3d4", "name": "队长", "role": "organization_leader", "node_prefix": "310110012003",
        "organization_id": 7}
    assert store.principal_for(conn, "lnl_secret").organization_id == 7


# -- routes, with worker_factory: a fake token store and a fake points service ------------------

TOKENS = {role: auth.new_token()[1] for role in ("street_admin", "community_worker", "organization_leader",
                                                  "district_analyst")}
PRINCIPALS = {
    "street_admin": auth.Principal("a1b2c3d4", "街道管理员", "street_admin", "310110012"),
    "community_worker": auth.Principal("b1b2c3d4", "社工", "community_worker", "310110012003"),
    "organization_leader": auth.Principal("c1b2c3d4", "志愿者队长", "organization_leader", "310110012003", 7),
    "district_analyst": auth.Principal("d1b2c3d4", "区分析员", "district_analyst", "310110"),
}


def request(*args, **kwargs):
    return http_request(TOKENS, *args, **kwargs)
@pytest.fixture
def gateway():
    return worker_factory(GatewayService, db=FakeTokens(TOKENS, PRINCIPALS))


RECORD = {"resident_id": 3, "category_code": "security_patrol", "served_at": "2026-11-21T09:00:00+08:00",
          "hours": "2.5", "description": "晚间小区巡逻"}


def test_a_record_goes_to_the_points_service_with_the_leaders_organisation(gateway):
    gateway.points.create_record.return_value = {"id": 41, "status": "pending"}
    body = {**RECORD, "organization_id": 7}
    resp = gateway.create_service_record(request("POST", "/api/v1/points/records", body, "organization_leader"))
    assert resp.status_code == 201 and resp.headers["Location"] == "/api/v1/points/records/41"
    gateway.points.create_record.assert_called_once_with(body, {
        "actor": "token:c1b2c3d4:志愿者队长", "scope": "310110012003", "role": "organization_leader",
        "organization_id": 7})
    gateway.registry.create_record.assert_not_called()


def test_a_replayed_record_is_200(gateway):
    gateway.points.create_record.return_value = {"id": 41, "status": "pending", "hours": "2.50", "replayed": True}
    resp = gateway.create_service_record(request("POST", "/api/v1/points/records", {**RECORD, "request_id": "r1"},
                                                 "community_worker"))
    assert resp.status_code == 200 and json.loads(resp.get_data()) == {"id": 41, "status": "pending",
                                                                     "hours": "2.50", "replayed": True}


def test_a_record_the_schema_refuses_never_reaches_the_points_service(gateway):
    with pytest.raises(ValidationFailed) as err:
        gateway.create_service_record(request("POST", "/api/v1/points/records", {**RECORD, "hours": 30},
                                              "community_worker"))
    assert set(err.value.fields) == {"hours"}
    assert not gateway.points.mock_calls


def test_an_account_open_already_is_200_and_a_new_one_201(gateway):
    account = {"id": 9, "kind": "person", "resident_id": 3, "community_code": "310110012003", "balance": 25,
               "held": 0, "verified_hours": "2.50", "stars": 0, "hours_to_next_star": "47.50"}
    gateway.points.open_account.return_value = account
    resp = gateway.open_point_account(request("POST", "/api/v1/points/accounts", {"resident_id": 3},
                                              "community_worker"))
    assert resp.status_code == 201 and resp.headers["Location"] == "/api/v1/points/accounts/9"
    assert json.loads(resp.get_data()) == account   # hours stay exact strings
    gateway.points.open_account.return_value = {**account, "replayed": True}
    resp = gateway.open_point_account(request("POST", "/api/v1/points/accounts", {"resident_id": 3},
                                              "community_worker"))
    assert resp.status_code == 200 and json.loads(resp.get_data())["replayed"] is True


def test_role_and_scope_are_checked_before_the_points_service_is_asked(gateway):
    with pytest.raises(Forbidden):  # reversing is for the register's keepers
        gateway.reverse_service_record(request("POST", "/api/v1/points/records/1/reverse", {"reason": "x"},
                                               "organization_leader"), 1)
    with pytest.raises(Forbidden):  # the catalogue is the street's
        gateway.create_point_reward(request("POST", "/api/v1/points/rewards", {}, "community_worker"))
    with pytest.raises(Forbidden):  # analysts see aggregates only
        gateway.search_point_accounts(request("GET", "/api/v1/points/accounts", role="district_analyst"))
    with pytest.raises(Forbidden) as err:
        gateway.search_service_records(request("GET", "/api/v1/points/records", role="community_worker",
                                               query={"under": "310110012004"}))
    assert set(err.value.fields) == {"under"}
    assert not gateway.points.mock_calls


def test_batch_verification_gets_the_longer_deadline(gateway):
    gateway.points.verify_records.return_value = {"posted": 2, "points": 10, "capped": 0, "records": []}
    with mock.patch("eventlet.Timeout") as timeout:
        resp = gateway.verify_service_records(request("POST", "/api/v1/points/records/verify",
                                                      {"record_ids": [1, 2]}, "community_worker"))
    assert resp.status_code == 200
    timeout.assert_called_once_with(60)


def test_the_evaluation_comes_as_csv_when_asked(gateway):
    gateway.points.evaluation.return_value = {"filename": "points-evaluation-2025-310110012.csv",
                                              "csv": "\ufeff社区排名,姓名\r\n1,王秀英\r\n"}
    resp = gateway.point_evaluation(request("GET", "/api/v1/points/evaluation",
                                            query={"year": "2025", "format": "csv"}))
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="points-evaluation-2025-310110012.csv"'
    assert resp.get_data().decode("utf-8") == "\ufeff社区排名,姓名\r\n1,王秀英\r\n"
    gateway.points.evaluation.assert_called_once_with({"year": "2025", "format": "csv"}, mock.ANY)

    gateway.points.evaluation.return_value = {"year": 2025, "snapshot": False, "rows": []}
    resp = gateway.point_evaluation(request("GET", "/api/v1/points/evaluation", query={"year": "2025"}))
    assert resp.mimetype == "application/json" and json.loads(resp.get_data())["year"] == 2025
