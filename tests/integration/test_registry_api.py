"""The hierarchy over the real HTTP API: gateway and registry containers, real database and broker.

Every refusal must be a clear 4xx with field-level errors and must leave the
nodes, their history and the outbox exactly as they were.
"""
import logging

import pytest

from tests.integration.conftest import assert_problem


@pytest.fixture
def snapshot(sql):
    def take():
        return (sql("SELECT code, name, valid_to, version FROM registry.nodes ORDER BY code"),
                sql("SELECT count(*) AS n FROM registry.node_changes")[0]["n"],
                sql("SELECT count(*) AS n FROM registry.outbox")[0]["n"])
    return take


def test_list_and_read_the_demo_tree(api):
    resp = api.get("/api/v1/nodes", params={"level": "community"})
    assert resp.status_code == 200
    names = [n["name"] for n in resp.json()["items"]]
    assert "长海一村居委会" in names and all(n["code"].startswith("310110012") for n in resp.json()["items"])
    node = api.get("/api/v1/nodes/310110012001").json()
    assert node["parent_code"] == "310110012" and node["history"][0]["change"] == "created"


def test_create_community_writes_node_history_and_event(api, sql):
    resp = api.post("/api/v1/nodes", json={"code": "310110012006", "name": "政立路居委会"})
    assert resp.status_code == 201, resp.text
    assert resp.headers["Location"] == "/api/v1/nodes/310110012006"
    assert resp.json()["level"] == "community"
    events = sql("SELECT routing_key, body FROM registry.outbox WHERE body->'payload'->>'code' = '310110012006'")
    assert [e["routing_key"] for e in events] == ["node_created"]
    assert events[0]["body"]["source"] == {"service": "registry", "level": "street",
                                           "node_code": "310110012", "instance": "street-310110012"}


@pytest.mark.parametrize("body, status, field", [
    ({"code": "3101100120061", "name": "十三位"}, 422, "code"),                          # wrong length
    ({"code": "310110012006", "name": "错级别", "level": "grid"}, 422, "code"),           # length vs level
    ({"code": "310110012006", "name": "错父级", "parent_code": "310110013"}, 422, "parent_code"),
    ({"code": "310110012099001", "name": "无父网格"}, 422, "parent_code"),               # parent missing
    ({"code": "310110012001", "name": "重复"}, 409, "code"),                              # duplicate
    ({"code": "31011001200A", "name": "字母"}, 422, "code"),
    ({"code": "310110012006"}, 422, "name"),                                                # missing field
    ({"code": "310110012006", "name": "长" * 65}, 422, "name"),                            # oversize
    ({"code": "310110012006", "name": "过早", "valid_from": "1999-01-01"}, 422, "valid_from"),
    ({"code": "310110012", "name": "街道本身"}, 422, "level"),
    ({"code": "310110012٠٠٦", "name": "阿拉伯数字"}, 422, "code"),                        # non-ASCII digits
    ({"code": "310110012006\n", "name": "换行"}, 422, "code"),
    ({"code": "310110012006", "name": "   "}, 422, "name"),                                # blank once stripped
    ({"code": "310110012006", "name": "空\x00字符"}, 422, "name"),
    ({"code": "310110012006", "name": "未来", "valid_from": "2999-01-01"}, 422, "valid_from"),
])
def test_bad_nodes_are_refused_and_change_nothing(api, snapshot, caplog, body, status, field):
    before = snapshot()
    assert_problem(api.post("/api/v1/nodes", json=body), status, field)
    assert snapshot() == before
    # A refusal is an answer, not a fault: nothing at ERROR for an operator to chase.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_node_outside_this_instance_is_refused(api, make_token, snapshot):
    district_operator = api.as_(make_token("operator", prefix="310110"))
    before = snapshot()
    body = assert_problem(district_operator.post("/api/v1/nodes", json={"code": "310110013009", "name": "别处"}),
                          422, "code")
    assert "outside this instance" in body["errors"]["code"][0]
    assert snapshot() == before


def test_a_retired_parent_takes_no_children(api, snapshot):
    retire = api.post("/api/v1/nodes/310110012005/retire",
                      json={"valid_to": "2021-06-30", "reason": "并入翔殷路以西社区"})
    assert retire.status_code == 200, retire.text
    before = snapshot()
    assert_problem(api.post("/api/v1/nodes", json={"code": "310110012005001", "name": "第一网格"}),
                   422, "parent_code")
    assert snapshot() == before


def test_malformed_json_and_wrong_types_are_field_errors(api, snapshot):
    before = snapshot()
    assert_problem(api.post("/api/v1/nodes", data="{not json", headers={"Content-Type": "application/json"}),
                   422, "_body")
    assert_problem(api.post("/api/v1/nodes", json=["a", "list"]), 422, "_body")
    assert_problem(api.post("/api/v1/nodes", json={"code": 310110012006, "name": "数字"}), 422, "code")
    assert snapshot() == before


def test_rename_keeps_history_and_emits(api, sql):
    resp = api.patch("/api/v1/nodes/310110012002", json={"name": "长海二村第一居委会"})
    assert resp.status_code == 200, resp.text
    node = api.get("/api/v1/nodes/310110012002").json()
    assert node["name"] == "长海二村第一居委会" and node["version"] == 2
    assert [(h["change"], h["name"]) for h in node["history"]] == [
        ("created", "长海二村居委会"), ("renamed", "长海二村第一居委会")]
    assert node["history"][1]["detail"] == {"old_name": "长海二村居委会"}
    assert sql("SELECT count(*) AS n FROM registry.outbox WHERE routing_key = 'node_renamed'")[0]["n"] == 1


def test_split_retires_the_old_node_and_links_the_new(api, sql):
    resp = api.post("/api/v1/nodes/310110012004/split", json={
        "effective": "2024-01-01", "reason": "人口增长，一分为二",
        "parts": [{"code": "310110012007", "name": "国和一村东居委会"},
                  {"code": "310110012008", "name": "国和一村西居委会"}]})
    assert resp.status_code == 200, resp.text
    old = api.get("/api/v1/nodes/310110012004").json()
    assert old["valid_to"] == "2024-01-01" and old["successor_codes"] == ["310110012007", "310110012008"]
    new = api.get("/api/v1/nodes/310110012007").json()
    assert new["predecessor_code"] == "310110012004" and new["valid_from"] == "2024-01-01"
    assert sql("SELECT count(*) AS n FROM registry.outbox WHERE routing_key = 'node_split'")[0]["n"] == 1
    # history is kept: the retired node is still listed when asked for
    codes = [n["code"] for n in api.get("/api/v1/nodes", params={"include_retired": "true",
                                                                   "level": "community"}).json()["items"]]
    assert "310110012004" in codes


def test_bad_splits_and_retirements_change_nothing(api, snapshot):
    before = snapshot()
    assert_problem(api.post("/api/v1/nodes/310110012001/split", json={
        "effective": "2024-01-01", "reason": "r", "parts": [{"code": "310110012002", "name": "已存在"},
                                                           {"code": "310110012009", "name": "新"}]}), 422, "parts.0.code")
    # a community with active grids cannot be retired before its grids
    assert_problem(api.post("/api/v1/nodes/310110012001/retire", json={"valid_to": "2024-01-01", "reason": "r"}),
                   422, "code")
    assert_problem(api.post("/api/v1/nodes/310110012002/retire", json={"valid_to": "2024-01-01", "reason": "r",
                                                                       "successor_code": "310110012999"}),
                   422, "successor_code")
    assert_problem(api.post("/api/v1/nodes/310110012999/retire", json={"valid_to": "2024-01-01", "reason": "r"}),
                   404, "code")
    assert snapshot() == before


@pytest.mark.parametrize("path, body, field", [
    ("/api/v1/nodes/310110012002", {"name": " \t "}, "name"),
    ("/api/v1/nodes/310110012002", {"name": "新名", "effective": "2999-01-01"}, "effective"),
    ("/api/v1/nodes/310110012002", {"name": "新名", "effective": "2019-01-01"}, "effective"),
    ("/api/v1/nodes/310110012002/retire", {"valid_to": "2999-01-01", "reason": "计划撤销"}, "valid_to"),
    ("/api/v1/nodes/310110012002/retire", {"valid_to": "2024-01-01", "reason": "\x00"}, "reason"),
    ("/api/v1/nodes/310110012002/split", {"effective": "2024-01-01", "reason": "r",
                                          "parts": [{"code": "310110012007", "name": " "},
                                                    {"code": "310110012008", "name": "西"}]}, "parts.0.name"),
])
def test_bad_changes_are_refused_and_change_nothing(api, snapshot, path, body, field):
    before = snapshot()
    method = api.patch if path.endswith("2002") else api.post
    assert_problem(method(path, json=body), 422, field)
    assert snapshot() == before


def test_split_and_merge_stay_inside_the_callers_scope(api, make_token, snapshot):
    community_admin = api.as_(make_token("street_admin", prefix="310110012005"))
    before = snapshot()
    split = {"effective": "2024-01-01", "reason": "r", "parts": [{"code": "310110012017", "name": "甲"},
                                                               {"code": "310110012018", "name": "乙"}]}
    assert_problem(community_admin.post("/api/v1/nodes/310110012005/split", json=split), 403, "code")
    merge = {"valid_to": "2024-01-01", "reason": "r", "successor_code": "310110012002"}
    assert_problem(community_admin.post("/api/v1/nodes/310110012005/retire", json=merge), 403, "code")
    assert snapshot() == before


def test_every_answer_carries_the_correlation_id(api):
    refused = api.post("/api/v1/nodes", json={"code": "1"}, headers={"X-Correlation-ID": "req-7"})
    assert refused.headers["X-Correlation-ID"] == "req-7"
    assert refused.json()["correlation_id"] == "req-7"
    fresh = api.get("/api/v1/nodes")
    assert len(fresh.headers["X-Correlation-ID"]) == 32


def test_retire_twice_is_a_conflict(api, snapshot):
    body = {"valid_to": "2024-01-01", "reason": "撤销", "successor_code": "310110012002"}
    assert api.post("/api/v1/nodes/310110012005/retire", json=body).status_code == 200
    before = snapshot()
    assert_problem(api.post("/api/v1/nodes/310110012005/retire", json=body), 409, "code")
    assert snapshot() == before


def test_auth_refusals(api, make_token, snapshot):
    before = snapshot()
    no_token = api.as_(None)
    no_token.headers = {}
    assert_problem(no_token.get("/api/v1/nodes"), 401, "Authorization")
    assert_problem(api.as_("lnl_00000000_" + "x" * 43).get("/api/v1/nodes"), 401, "Authorization")
    assert_problem(api.as_("not-a-token").get("/api/v1/nodes"), 401, "Authorization")
    other_street = api.as_(make_token("street_admin", prefix="310110013"))
    assert_problem(other_street.get("/api/v1/nodes/310110012001"), 403, "code")
    assert_problem(other_street.post("/api/v1/nodes", json={"code": "310110012006", "name": "越权"}), 403, "code")
    worker = api.as_(make_token("community_worker", prefix="310110012001"))
    assert worker.get("/api/v1/nodes/310110012001").status_code == 200
    assert_problem(worker.get("/api/v1/nodes/310110012002"), 403, "code")
    assert_problem(worker.patch("/api/v1/nodes/310110012001", json={"name": "改名"}), 403, "role")
    analyst = api.as_(make_token("district_analyst", prefix="310110"))
    assert_problem(analyst.post("/api/v1/nodes", json={"code": "310110012006", "name": "分析员"}), 403, "role")
    assert snapshot() == before


def test_operations_endpoints(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz").json()
    assert ready == {"status": "ok", "detail": "ok", "checks": {"database": "ok", "broker": "ok"}}
    api.get("/api/v1/nodes")
    metrics = api.get("/metrics").text
    assert 'linli_entrypoint_calls_total{entrypoint="list_nodes",service="gateway"}' in metrics
    assert "linli_entrypoint_duration_seconds_bucket" in metrics
    spec = api.get("/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert {"/api/v1/nodes", "/api/v1/nodes/{code}", "/api/v1/nodes/{code}/split"} <= set(spec["paths"])
    assert spec["components"]["schemas"]["NodeCreate"]["required"] == ["code", "name"]
    unknown = api.get("/api/v1/nope")
    assert unknown.status_code == 404 and unknown.headers["Content-Type"].startswith("application/problem+json")


def test_correlation_id_travels_from_the_request_to_the_event(api, sql):
    api.post("/api/v1/nodes", json={"code": "310110012006", "name": "政立路居委会"},
             headers={"X-Correlation-ID": "req-20261123-0001"})
    row = sql("SELECT correlation_id, body FROM registry.outbox WHERE routing_key = 'node_created' "
              "AND body->'payload'->>'code' = '310110012006'")[0]
    assert row["correlation_id"] == "req-20261123-0001"
    assert row["body"]["correlation_id"] == "req-20261123-0001"


def test_node_names_for_dashboards_follow_renames_and_splits(api, config):
    """linli_node_info names the aggregator's node codes in Grafana: a rename replaces the old
    series, a split drops the retired node and adds its parts."""
    from prometheus_client import CollectorRegistry, Gauge

    from services.registry import nodes
    from services.registry.service import show_names
    from shared.db import transaction

    gauge = Gauge("linli_node_info", "test copy", ["node", "name", "level"], registry=CollectorRegistry())

    def export():
        with transaction(config["DATABASE_URL"], "registry") as tx:
            show_names(gauge, nodes.names(tx))
        return {s.labels["node"]: (s.labels["name"], s.labels["level"], s.value)
                for family in gauge.collect() for s in family.samples}

    before = export()
    assert before["310110012"] == ("长海路街道", "street", 1)
    assert before["310110012002"] == ("长海二村居委会", "community", 1)
    assert api.patch("/api/v1/nodes/310110012002", json={"name": "长海二村第一居委会"}).status_code == 200
    assert api.post("/api/v1/nodes/310110012004/split", json={
        "effective": "2024-01-01", "reason": "人口增长，一分为二",
        "parts": [{"code": "310110012007", "name": "国和一村东居委会"},
                  {"code": "310110012008", "name": "国和一村西居委会"}]}).status_code == 200
    after = export()
    assert after["310110012002"] == ("长海二村第一居委会", "community", 1)
    assert "310110012004" not in after and after["310110012008"] == ("国和一村西居委会", "community", 1)
    assert set(after) == set(before) - {"310110012004"} | {"310110012007", "310110012008"}
    # One series per node: the old name's series is gone, not left beside the new one.
    assert len(list(gauge.collect())[0].samples) == len(after)
