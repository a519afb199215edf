"""References exist: a write naming a node, resident or organisation that is not there (or no longer
is) is a field-level 422 that writes nothing, and a query under a node code nobody holds is a 404
naming the parameter, not an empty answer that reads as zero (issue 19, items 2 and 3).

Real: every service of the street instance in this test's vhost, behind the HTTP gateway, on
PostgreSQL with the demo hierarchy; the consultation, points and notification services ask the
registry by RPC, the aggregator judges from what it holds. Every answer is held to the OpenAPI
document (conftest.web_session), so each new refusal must be declared.
"""
from datetime import timedelta

import pytest

from services.registry.identity import check_character
from shared import clock
from tests.integration.conftest import assert_problem

STREET, C1 = "310110012", "310110012001"
NOWHERE = "310110012893"          # a community code the register has never held
RETIRED = "310110012009"          # made and retired below: registered, no longer live
PARKING = {"category": "parking", "channel": "reception_day", "building": "8号楼", "title": "小区夜间停车难",
           "description": "晚上8点后小区内车辆乱停，消防通道被占，希望重新规划停车位。"}


@pytest.fixture
def retired(api):
    made = api.post("/api/v1/nodes", json={"code": RETIRED, "name": "旧居委会", "valid_from": "2024-01-01"})
    assert made.status_code == 201, made.text
    gone = api.post(f"/api/v1/nodes/{RETIRED}/retire", json={"valid_to": clock.today().isoformat(),
                                                             "reason": "并入长海一村"})
    assert gone.status_code == 200, gone.text
    return RETIRED


def test_a_matter_in_a_community_that_does_not_exist_is_refused_and_nothing_is_written(api, sql, retired):
    body = assert_problem(api.post("/api/v1/matters", json={**PARKING, "community_code": NOWHERE}), 422,
                          "community_code")
    assert body["errors"]["community_code"] == [f"{NOWHERE} is not a registered node"]
    body = assert_problem(api.post("/api/v1/matters", json={**PARKING, "community_code": retired,
                                                            "request_id": "desk-9"}), 422, "community_code")
    assert "retired" in body["errors"]["community_code"][0]
    # A grid is a node, but a matter is raised in a community.
    assert_problem(api.post("/api/v1/matters", json={**PARKING, "community_code": "310110012001001"}), 422,
                   "community_code")
    assert sql("SELECT count(*) AS n FROM consultation.matters")[0]["n"] == 0
    assert sql("SELECT count(*) AS n FROM consultation.outbox")[0]["n"] == 0   # no event, no fact
    # The same matter in a live community is taken.
    assert api.post("/api/v1/matters", json={**PARKING, "community_code": C1}).status_code == 201


def test_agenda_items_meetings_broadcasts_and_notices_name_live_areas(api, sql, retired):
    assert_problem(api.post("/api/v1/agenda-items", json={"community_code": NOWHERE, "title": "停车",
                                                          "matter_ids": [1]}), 422, "community_code")
    meeting = {"community_code": NOWHERE, "title": "议事会", "place": "会议室", "quorum": 1,
               "starts_at": (clock.now() + timedelta(days=1)).isoformat(), "agenda_item_ids": [1],
               "roster": [{"role": "resident_rep", "name": "李桂英"}]}
    assert_problem(api.post("/api/v1/meetings", json=meeting), 422, "community_code")
    assert_problem(api.post("/api/v1/meetings", json={**meeting, "community_code": retired}), 422, "community_code")
    assert sql("SELECT count(*) AS n FROM consultation.meetings")[0]["n"] == 0

    draft = {"prefix": retired, "title": "停水通知", "message": "明日9时至15时停水。"}
    body = assert_problem(api.post("/api/v1/broadcasts", json=draft), 422, "prefix")
    assert "retired" in body["errors"]["prefix"][0]
    assert_problem(api.post("/api/v1/notices", json={**draft, "request_id": "n-1", "channels": ["inbox"]}), 422,
                   "prefix")
    assert sql("SELECT count(*) AS n FROM notification.broadcasts")[0]["n"] == 0
    assert sql("SELECT count(*) AS n FROM notification.notices")[0]["n"] == 0


def test_a_dissolved_organisation_is_sent_no_notice(api, sql):
    first17 = "310110" + "19580312" + "051"
    leader = api.post("/api/v1/residents", json={
        "name": "陈志强", "id_number": first17 + check_character(first17), "community_code": C1,
        "residence_type": "registered", "building": "8号", "unit": "1单元", "room": "251", "relation": "self"})
    assert leader.status_code == 201, leader.text
    org = api.post("/api/v1/organizations", json={
        "name": "长海一村平安巡逻队", "category": "volunteer_team", "community_code": C1,
        "leader_resident_id": leader.json()["id"], "founded_on": "2024-03-01"})
    assert org.status_code == 201, org.text
    oid = org.json()["id"]
    notice = {"notice": "周六上午8点在小区北门集合巡逻。", "request_id": "org-1", "channels": ["inbox"]}
    assert api.post(f"/api/v1/organizations/{oid}/status", json={"status": "dissolved"}).status_code == 200
    body = assert_problem(api.post(f"/api/v1/organizations/{oid}/notices", json=notice), 422, "organization_id")
    assert "dissolved" in body["errors"]["organization_id"][0]
    assert sql("SELECT count(*) AS n FROM notification.notices")[0]["n"] == 0


LISTINGS = [
    ("/api/v1/nodes", "under"), ("/api/v1/residents", "under"), ("/api/v1/party-members", "under"),
    ("/api/v1/party/report-rate", "under"), ("/api/v1/party-orgs", "community_code"),
    ("/api/v1/organizations", "community_code"), ("/api/v1/workers", "community_code"),
    ("/api/v1/matters", "under"), ("/api/v1/consultation/figures", "under"),
    ("/api/v1/points/accounts", "under"), ("/api/v1/points/records", "under"),
    ("/api/v1/points/redemptions", "under"), ("/api/v1/points/evaluation", "under", {"year": 2025}),
    ("/api/v1/broadcasts", "under"), ("/api/v1/notices/reach", "prefix"),
    ("/api/v1/rollups/headlines", "node"), ("/api/v1/feed", "prefix"),
]


def test_a_query_under_a_node_nobody_holds_is_a_404_naming_the_parameter(api, retired):
    wrong = []
    for path, field, *more in LISTINGS:
        more = more[0] if more else {}
        resp = api.get(path, params={field: NOWHERE, **more})
        errors = resp.json().get("errors", {}) if resp.status_code == 404 else {}
        if not (NOWHERE in (errors.get(field) or [""])[0] and resp.headers["Content-Type"].startswith(
                "application/problem+json")):
            wrong.append((path, resp.status_code, resp.text[:200]))
        # The instance's own street is known everywhere (the aggregator's own node, the registry's node).
        known = {field: STREET if field != "community_code" else C1, **more}
        if api.get(path, params=known).status_code != 200:
            wrong.append((path, "known", field))
    assert wrong == []
    assert_problem(api.get("/api/v1/matters/similar", params={"community_code": NOWHERE, "category": "parking",
                                                              "text": "停车难"}), 404, "community_code")
    assert_problem(api.get("/api/v1/public/results", params={"under": NOWHERE}, headers={"Authorization": ""}),
                   404, "under")
    # A retired community is history worth reading: it is known.
    assert api.get("/api/v1/nodes", params={"under": retired, "include_retired": "true"}).status_code == 200
    assert api.get("/api/v1/matters", params={"under": retired}).status_code == 200


def test_a_rollup_of_an_unknown_metric_grouping_or_node_is_refused(api):
    assert api.get("/api/v1/rollups", params={"metric": "residents", "node": STREET}).status_code == 200
    body = assert_problem(api.get("/api/v1/rollups", params={"metric": "nope"}), 422, "metric")
    assert "residents" in body["errors"]["metric"][0]    # says what there is
    assert_problem(api.get("/api/v1/rollups", params={"metric": "residents", "group": "dim:nope"}), 422, "group")
    assert_problem(api.get("/api/v1/rollups.csv", params={"metric": "nope"}), 422, "metric")
    assert_problem(api.get("/api/v1/rollups", params={"metric": "residents", "node": NOWHERE}), 404, "node")
    assert_problem(api.get("/api/v1/rollups.csv", params={"metric": "residents", "node": NOWHERE}), 404, "node")


def test_a_registered_community_no_fact_has_named_reads_as_zeros_at_its_street(api):
    """The street's registry knows every node of the street: a new or quiet community is not a typo."""
    made = api.post("/api/v1/nodes", json={"code": "310110012007", "name": "新建居委会",
                                           "valid_from": clock.today().isoformat()})
    assert made.status_code == 201, made.text
    got = api.get("/api/v1/rollups", params={"metric": "residents", "node": "310110012007"})
    assert got.status_code == 200 and got.json()["series"] == [], got.text
    got = api.get("/api/v1/rollups/headlines", params={"node": "310110012007"})
    assert got.status_code == 200 and got.json()["residents"] == 0, got.text
