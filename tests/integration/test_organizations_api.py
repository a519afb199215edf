"""Social organisations and volunteer teams over the real HTTP API, real PostgreSQL and RabbitMQ.

What must hold: one registration is one event and one signed fact that names no
one; names are unique among a community's living organisations; the status
machine refuses illegal moves with a field-level 422 and changes nothing;
members join and leave with history, and a dissolution ends every membership;
a token of another community is refused and nothing is audited; every read of
a member list is audited.
"""
import json
from datetime import timedelta

import pytest
from kombu import Connection, Queue

from services.registry.identity import check_character
from shared import facts
from shared.messaging import FACTS, events_exchange
from shared import clock
from tests.integration.conftest import assert_problem, wait_for

COMMUNITY, OTHER_COMMUNITY = "310110012001", "310110012002"
TODAY = clock.today().isoformat()
EVENTS = ("organization_registered", "organization_updated", "organization_status_changed",
          "organization_member_joined", "organization_member_left", "organization_project_contracted")
FACT_TYPES = EVENTS


def id_number(seq, birth="19560314"):
    first17 = "310110" + birth + f"{seq:03d}"
    return first17 + check_character(first17)


@pytest.fixture
def people(api):
    """Register residents on demand: people(n, community) -> [resident ids]."""
    counter = iter(range(100, 999, 2))

    def make(n=1, community=COMMUNITY, names=("王秀英", "李建国", "张桂兰", "刘伟", "陈静", "杨帆")):
        ids = []
        for i in range(n):
            seq = next(counter)
            resp = api.post("/api/v1/residents", json={
                "name": names[i % len(names)], "id_number": id_number(seq), "phone": f"139{seq:08d}",
                "community_code": community, "residence_type": "registered"})
            assert resp.status_code == 201, resp.text
            ids.append(resp.json()["id"])
        return ids
    return make


def organization(leader, **over):
    body = {"name": "长海一村平安巡逻队", "category": "volunteer_team", "subcategory": "security_patrol",
            "community_code": COMMUNITY, "leader_resident_id": leader, "activities": ["public_safety", "civility"],
            "founded_on": "2019-05-04", "filing_no": "CHL-2019-017"}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def unsent(sql):
    return sql("SELECT count(*) AS n FROM registry.outbox WHERE sent_at IS NULL "
               "AND routing_key LIKE '%%organization%%'")[0]["n"]


@pytest.fixture
def snapshot(sql):
    def take():
        return (sql("SELECT id, name, status, status_on, leader_resident_id, version FROM registry.organizations "
                    "ORDER BY id"),
                sql("SELECT organization_id, resident_id, role, left_on FROM registry.organization_members "
                    "ORDER BY id"),
                sql("SELECT count(*) AS n FROM registry.organization_projects")[0]["n"],
                sql("SELECT count(*) AS n FROM registry.organization_history")[0]["n"],
                sql("SELECT count(*) AS n FROM registry.outbox")[0]["n"])
    return take


@pytest.fixture
def taps(config):
    names = {"events": "test.organization-events", "facts": "test.organization-facts"}
    with Connection(config["AMQP_URI"]) as conn:
        ch = conn.default_channel
        for event in EVENTS:
            Queue(names["events"], exchange=events_exchange("registry"), routing_key=event, durable=True)(ch).declare()
        for fact_type in FACT_TYPES:
            Queue(names["facts"], exchange=FACTS, routing_key=f"registry.{fact_type}", durable=True)(ch).declare()
    return names


def drained(sql, broker, taps):
    wait_for(lambda: unsent(sql) == 0, message="the outbox to drain")
    return broker.get_all(taps["events"]), broker.get_all(taps["facts"])


def test_registration_emits_one_event_and_one_signed_fact_naming_no_one(api, people, taps, broker, sql, config):
    leader = people()[0]
    body = organization(leader)
    resp = api.post("/api/v1/organizations", json=body)
    assert resp.status_code == 201, resp.text
    org = resp.json()
    assert resp.headers["Location"] == f"/api/v1/organizations/{org['id']}"
    assert org["status"] == "filed" and org["member_count"] == 1 and org["leader_resident_id"] == leader

    events = wait_for(lambda: broker.get_all(taps["events"]), message="the organization_registered event")
    batches = wait_for(lambda: broker.get_all(taps["facts"]), message="the fact batch")
    more_events, more_batches = drained(sql, broker, taps)
    events, batches = events + more_events, batches + more_batches
    assert [e["type"] for e in events] == ["organization_registered"]
    assert events[0]["payload"]["id"] == org["id"] and events[0]["payload"]["name"] == body["name"]
    # The organisation, and the founding leader's membership: its +1 meets the -1 of its end.
    assert [[f["type"] for f in b["facts"]] for b in batches] == [["organization_registered"],
                                                                  ["organization_member_joined"]]
    fact, member = batches[0]["facts"][0], batches[1]["facts"][0]
    assert (fact["type"], fact["node"], fact["delta"], fact["v"]) == ("organization_registered", COMMUNITY, 1, 2)
    assert "subject" not in fact
    assert fact["dims"] == {"category": "volunteer_team", "subcategory": "security_patrol", "status": "filed",
                            "activities": ["civility", "public_safety"]}
    assert (member["node"], member["delta"], member["dims"]) == (COMMUNITY, 1, {
        "category": "volunteer_team", "subcategory": "security_patrol", "role": "leader"})
    text = json.dumps(batches[0], ensure_ascii=False)
    for secret in (body["name"], "王秀英", body["filing_no"], id_number(100), "leader"):
        assert secret not in text
    text = json.dumps(batches[1], ensure_ascii=False)
    for secret in (body["name"], "王秀英", body["filing_no"], id_number(100)):
        assert secret not in text
    assert all(facts.verify(b, facts.Signer.from_config(config).public_key) for b in batches)

    detail = api.get(f"/api/v1/organizations/{org['id']}").json()
    assert detail["leader_name"] == "王秀英"
    assert [(m["resident_id"], m["role"], m["joined_on"]) for m in detail["members"]] == [
        (leader, "leader", "2019-05-04")]
    assert [h["change"] for h in detail["history"]] == ["registered"]


def test_names_are_unique_among_living_organisations_of_a_community(api, people, snapshot):
    leader, other = people(2)
    first = api.post("/api/v1/organizations", json=organization(leader)).json()
    before = snapshot()
    problem = assert_problem(api.post("/api/v1/organizations", json=organization(other, filing_no=None)), 409, "name")
    assert f"organisation {first['id']}" in problem["errors"]["name"][0]
    assert_problem(api.post("/api/v1/organizations", json=organization(other, name="另一支队伍")), 409, "filing_no")
    assert snapshot() == before
    # The same name in another community is another organisation.
    twin = api.post("/api/v1/organizations", json=organization(people(1, OTHER_COMMUNITY)[0], filing_no=None,
                                                                 community_code=OTHER_COMMUNITY))
    assert twin.status_code == 201, twin.text
    # Once dissolved, the name is free again.
    assert api.post(f"/api/v1/organizations/{first['id']}/status", json={"status": "dissolved"}).status_code == 200
    again = api.post("/api/v1/organizations", json=organization(other, filing_no=None))
    assert again.status_code == 201, again.text


@pytest.mark.parametrize("path, target", [
    ([], "suspended"),                       # filed -> suspended skips activation
    ([], "filed"),                           # already filed
    (["active"], "filed"),                   # no way back to filed
    (["dissolved"], "active"),               # dissolution is final
    (["active", "suspended"], "suspended"),
])
def test_illegal_transitions_are_422_and_change_nothing(api, people, snapshot, path, target):
    org = api.post("/api/v1/organizations", json=organization(people()[0])).json()
    for status in path:
        assert api.post(f"/api/v1/organizations/{org['id']}/status", json={"status": status}).status_code == 200
    before = snapshot()
    assert_problem(api.post(f"/api/v1/organizations/{org['id']}/status", json={"status": target}), 422, "status")
    assert snapshot() == before


def test_status_dates_are_checked(api, people, snapshot):
    org = api.post("/api/v1/organizations", json=organization(people()[0])).json()
    before = snapshot()
    tomorrow = (clock.today() + timedelta(days=1)).isoformat()
    for body in ({"status": "active", "effective": tomorrow}, {"status": "active", "effective": "2019-05-03"},
                 {"status": "active", "effective": "soon"}, {"status": "flourishing"}, {}):
        problem = assert_problem(api.post(f"/api/v1/organizations/{org['id']}/status", json=body), 422,
                                 "status" if "status" not in body or body["status"] == "flourishing" else "effective")
        assert problem["errors"]
    assert snapshot() == before


def test_a_life_of_members_projects_and_dissolution(api, people, taps, broker, sql):
    leader, a, b, c = people(4)
    org = api.post("/api/v1/organizations", json=organization(leader, status="active")).json()
    oid = org["id"]
    joined = api.post(f"/api/v1/organizations/{oid}/members", json={"resident_id": a, "role": "deputy"})
    assert joined.status_code == 201, joined.text
    assert joined.json() == {"organization_id": oid, "resident_id": a, "name": "李建国", "community_code": COMMUNITY,
                             "role": "deputy", "joined_on": TODAY, "left_on": None}
    assert api.post(f"/api/v1/organizations/{oid}/members", json={"resident_id": b}).status_code == 201
    assert_problem(api.post(f"/api/v1/organizations/{oid}/members", json={"resident_id": b}), 409, "resident_id")
    assert_problem(api.post(f"/api/v1/organizations/{oid}/members/{leader}/leave", json={}), 422, "resident_id")
    left = api.post(f"/api/v1/organizations/{oid}/members/{b}/leave", json={"reason": "工作调动"})
    assert left.status_code == 200 and left.json()["left_on"] == TODAY
    assert_problem(api.post(f"/api/v1/organizations/{oid}/members/{b}/leave", json={}), 404, "resident_id")
    # A new leader who was not a member joins as leader; the old leader stays on as a member.
    patched = api.patch(f"/api/v1/organizations/{oid}", json={"leader_resident_id": c, "activities": ["public_safety"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["leader_resident_id"] == c and patched.json()["member_count"] == 3
    project = api.post(f"/api/v1/organizations/{oid}/projects", json={
        "name": "夜间平安巡逻", "funder": "长海路街道办事处", "budget": "86000.50",
        "starts_on": "2025-01-01", "ends_on": "2025-12-31"})
    assert project.status_code == 201, project.text
    assert project.json()["budget"] == "86000.50"
    assert api.post(f"/api/v1/organizations/{oid}/status", json={"status": "suspended"}).status_code == 200
    assert_problem(api.post(f"/api/v1/organizations/{oid}/members", json={"resident_id": b}), 422, "status")
    dissolved = api.post(f"/api/v1/organizations/{oid}/status", json={"status": "dissolved", "reason": "队伍合并"})
    assert dissolved.status_code == 200 and dissolved.json()["member_count"] == 0

    detail = api.get(f"/api/v1/organizations/{oid}").json()
    assert detail["members"] == [] and [p["name"] for p in detail["projects"]] == ["夜间平安巡逻"]
    assert [h["change"] for h in detail["history"]] == [
        "registered", "member_joined", "member_joined", "member_left", "updated", "project_contracted",
        "status_changed", "status_changed"]
    assert detail["history"][4]["detail"]["leader_resident_id"] == {"from": leader, "to": c}
    assert sql("SELECT count(*) AS n FROM registry.organization_members WHERE left_on IS NULL")[0]["n"] == 0
    assert_problem(api.patch(f"/api/v1/organizations/{oid}", json={"name": "新名字"}), 422, "status")

    events, batches = drained(sql, broker, taps)
    assert [e["type"] for e in events] == [
        "organization_registered", "organization_member_joined", "organization_member_joined",
        "organization_member_left", "organization_updated", "organization_member_joined",
        "organization_project_contracted", "organization_status_changed", "organization_status_changed"]
    assert sorted(events[-1]["payload"]["members_left"]) == sorted([leader, a, c])
    all_facts = [f for batch in batches for f in batch["facts"]]
    # Organisations by status add up to one dissolved organisation.
    by_status = {}
    for f in all_facts:
        if f["type"] in ("organization_registered", "organization_status_changed", "organization_updated"):
            by_status[f["dims"]["status"]] = by_status.get(f["dims"]["status"], 0) + f["delta"]
    assert {k: v for k, v in by_status.items() if v} == {"dissolved": 1}
    # Memberships add up to none: the leader counted at registration, joins, leaves and the dissolution.
    members = sum(f["dims"].get("members", 0) for f in all_facts if f["type"] == "organization_registered")
    members += sum(f["delta"] for f in all_facts if f["type"].startswith("organization_member_"))
    assert members == 0
    contracted = [f for f in all_facts if f["type"] == "organization_project_contracted"]
    assert [(f["dims"]["budget_cents"], f["dims"]["starts_on"]) for f in contracted] == [(8600050, "2025-01-01")]
    # Facts name nobody, not even by a pseudonym a level above could follow a person by.
    assert all(set(f) == facts.FACT_KEYS for f in all_facts)
    text = json.dumps(batches, ensure_ascii=False)
    for secret in ("王秀英", "李建国", "平安巡逻", "长海路街道办事处", "工作调动", "队伍合并"):
        assert secret not in text


@pytest.mark.parametrize("over, field", [
    ({"category": "sports_club"}, "category"),
    ({"subcategory": "Security Patrol"}, "subcategory"),
    ({"subcategory": "patrol\n"}, "subcategory"),
    ({"community_code": "310110012099"}, "community_code"),            # no such community
    ({"community_code": "310110012"}, "community_code"),               # a street
    ({"leader_resident_id": 999999}, "leader_resident_id"),
    ({"leader_resident_id": "abc"}, "leader_resident_id"),
    ({"founded_on": "2999-01-01"}, "founded_on"),
    ({"activities": ["gossip"]}, "activities.0"),
    ({"name": "队" * 101}, "name"),
    ({"name": "   "}, "name"),
    ({"name": None}, "name"),
    ({"status": "suspended"}, "status"),                               # new organisations are filed or active
    ({"filing_no": ""}, "filing_no"),
    ({"motto": "守望相助"}, "motto"),
])
def test_bad_registrations_are_field_level_422s_changing_nothing(api, people, snapshot, over, field):
    leader = people()[0]
    before = snapshot()
    assert_problem(api.post("/api/v1/organizations", json=organization(leader, **over)), 422, field)
    assert snapshot() == before


@pytest.mark.parametrize("body, field", [
    ({"budget": "-1"}, "budget"),
    ({"budget": "100.005"}, "budget"),
    ({"budget": "NaN"}, "budget"),
    ({"budget": "lots"}, "budget"),
    ({"ends_on": "2024-12-31"}, "ends_on"),
    ({"starts_on": "2018-01-01", "ends_on": "2018-12-31"}, "starts_on"),   # before the founding
    ({"funder": ""}, "funder"),
])
def test_bad_projects_are_refused_and_change_nothing(api, people, snapshot, body, field):
    org = api.post("/api/v1/organizations", json=organization(people()[0])).json()
    before = snapshot()
    project = {"name": "长者助餐", "funder": "长海路街道办事处", "budget": 120000, "starts_on": "2025-01-01",
               "ends_on": "2025-12-31", **body}
    assert_problem(api.post(f"/api/v1/organizations/{org['id']}/projects", json=project), 422, field)
    assert snapshot() == before


def test_the_same_project_is_recorded_once(api, people):
    org = api.post("/api/v1/organizations", json=organization(people()[0])).json()
    project = {"name": "长者助餐", "funder": "长海路街道办事处", "budget": 120000.5, "starts_on": "2025-01-01",
               "ends_on": "2025-12-31"}
    created = api.post(f"/api/v1/organizations/{org['id']}/projects", json=project)
    assert created.status_code == 201 and created.json()["budget"] == "120000.50"
    assert_problem(api.post(f"/api/v1/organizations/{org['id']}/projects", json=project), 409, "name")


def test_out_of_scope_tokens_are_refused_and_audit_nothing(api, people, make_token, sql, snapshot):
    leader, member = people(2)
    outsider = people(1, OTHER_COMMUNITY)[0]
    org = api.post("/api/v1/organizations", json=organization(leader)).json()
    before = snapshot()
    other = api.as_(make_token("community_worker", prefix=OTHER_COMMUNITY))
    # An organisation of another community reads as no organisation at all; a code named there is 403.
    assert_problem(other.get(f"/api/v1/organizations/{org['id']}"), 404, "id")
    assert_problem(other.get("/api/v1/organizations", params={"community_code": COMMUNITY}), 403, "community_code")
    assert other.get("/api/v1/organizations").json()["items"] == []
    assert_problem(other.post("/api/v1/organizations", json=organization(outsider)), 403, "community_code")
    assert_problem(other.post(f"/api/v1/organizations/{org['id']}/members", json={"resident_id": member}), 404, "id")
    assert_problem(other.post(f"/api/v1/organizations/{org['id']}/status", json={"status": "dissolved"}), 404, "id")
    assert_problem(other.patch(f"/api/v1/organizations/{org['id']}", json={"name": "x"}), 404, "id")
    # A worker of the host community cannot enrol or appoint a resident of another community: to them,
    # as to the register, that resident is not there.
    own = api.as_(make_token("community_worker", prefix=COMMUNITY))
    assert_problem(own.post(f"/api/v1/organizations/{org['id']}/members", json={"resident_id": outsider}), 422,
                   "resident_id")
    assert_problem(own.post("/api/v1/organizations", json=organization(outsider, name="另一支队伍", filing_no=None)),
                   422, "leader_resident_id")
    analyst = api.as_(make_token("district_analyst", prefix="310110"))
    assert_problem(analyst.get(f"/api/v1/organizations/{org['id']}"), 403, "role")
    assert_problem(analyst.get("/api/v1/organizations"), 403, "role")
    assert sql("SELECT count(*) AS n FROM registry.audit_log")[0]["n"] == 0
    assert snapshot() == before


def test_member_list_reads_are_audited_and_lists_name_no_one(api, people, make_token):
    leader, member = people(2)
    org = api.post("/api/v1/organizations", json=organization(leader)).json()
    api.post(f"/api/v1/organizations/{org['id']}/members", json={"resident_id": member})
    worker = api.as_(make_token("community_worker", prefix=COMMUNITY, name="赵社工"))
    listed = worker.get("/api/v1/organizations").json()["items"]
    assert [o["id"] for o in listed] == [org["id"]] and "王秀英" not in json.dumps(listed, ensure_ascii=False)
    operator = api.as_(make_token("operator", name="运维"))
    assert operator.get("/api/v1/audit").json()["items"] == []
    assert worker.get(f"/api/v1/organizations/{org['id']}").status_code == 200
    log = operator.get("/api/v1/audit").json()["items"]
    assert sorted((e["action"], e["record_type"], e["record_id"]) for e in log) == sorted([
        ("organization_members", "resident", leader), ("organization_members", "resident", member)])
    assert all(e["actor"].endswith(":赵社工") and e["community_code"] == COMMUNITY for e in log)


def test_listing_filters_and_pages(api, people):
    leaders = people(4)
    ids = [api.post("/api/v1/organizations", json=organization(
        leader, name=name, category=category, subcategory=sub, filing_no=None)).json()["id"]
        for leader, (name, category, sub) in zip(leaders, [
            ("长海合唱团", "interest_culture", None), ("平安巡逻队", "volunteer_team", "security_patrol"),
            ("文明劝导队", "volunteer_team", "civility_patrol"), ("邻里微信群", "online_community", None)])]
    api.post(f"/api/v1/organizations/{ids[2]}/status", json={"status": "active"})
    teams = api.get("/api/v1/organizations", params={"category": "volunteer_team"}).json()
    assert [o["id"] for o in teams["items"]] == ids[1:3] and teams["next"] is None
    page = api.get("/api/v1/organizations", params={"limit": 2}).json()
    assert [o["id"] for o in page["items"]] == ids[:2] and page["next"] == ids[1]
    page2 = api.get("/api/v1/organizations", params={"limit": 2, "after": page["next"]}).json()
    assert [o["id"] for o in page2["items"]] == ids[2:]
    active = api.get("/api/v1/organizations", params={"status": "active", "community_code": COMMUNITY}).json()
    assert [o["id"] for o in active["items"]] == [ids[2]]
    patrols = api.get("/api/v1/organizations", params={"subcategory": "security_patrol"}).json()
    assert [o["id"] for o in patrols["items"]] == [ids[1]]
    assert_problem(api.get("/api/v1/organizations", params={"status": "sleeping"}), 422, "status")
    assert_problem(api.get("/api/v1/organizations", params={"limit": "0"}), 422, "limit")


def test_the_openapi_document_describes_organizations(api):
    spec = api.get("/api/v1/openapi.json").json()
    assert {"/api/v1/organizations", "/api/v1/organizations/{organization_id}/status",
            "/api/v1/organizations/{organization_id}/members/{resident_id}/leave"} <= set(spec["paths"])
    create = spec["components"]["schemas"]["OrganizationCreate"]
    assert set(create["required"]) == {"name", "category", "community_code", "leader_resident_id", "founded_on"}
    assert create["properties"]["category"]["enum"][-1] == "volunteer_team"


def test_corrections_are_history_and_refusals_change_nothing(api, people, snapshot, taps, broker, sql):
    leader, other_leader = people(2)
    org = api.post("/api/v1/organizations", json=organization(leader)).json()
    api.post("/api/v1/organizations", json=organization(other_leader, name="长海合唱团", category="interest_culture",
                                                        subcategory=None, filing_no=None))
    before = snapshot()
    assert_problem(api.patch(f"/api/v1/organizations/{org['id']}", json={"name": "长海合唱团"}), 409, "name")
    assert_problem(api.patch(f"/api/v1/organizations/{org['id']}", json={"subcategory": "security_patrol"}), 422,
                   "_schema")  # nothing changes
    assert_problem(api.patch(f"/api/v1/organizations/{org['id']}", json={}), 422, "_schema")
    assert_problem(api.patch(f"/api/v1/organizations/{org['id']}", json={"category": "online_community"}), 422,
                   "category")  # the category is what the organisation is; register anew instead
    assert snapshot() == before
    drained(sql, broker, taps)
    patched = api.patch(f"/api/v1/organizations/{org['id']}", json={"subcategory": "civility_patrol",
                                                                    "name": "长海一村文明劝导队"})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["name"], patched.json()["version"]) == ("长海一村文明劝导队", 2)
    events, batches = drained(sql, broker, taps)
    assert [e["type"] for e in events] == ["organization_updated"]
    assert events[0]["payload"]["changed"] == ["name", "subcategory"]
    assert [(f["delta"], f["dims"]["subcategory"]) for b in batches for f in b["facts"]] == [
        (-1, "security_patrol"), (1, "civility_patrol")]
    history = api.get(f"/api/v1/organizations/{org['id']}").json()["history"]
    assert history[-1]["detail"]["subcategory"] == {"from": "security_patrol", "to": "civility_patrol"}


def test_a_suspended_organisation_may_only_promote_a_member_to_leader(api, people, snapshot):
    leader, member, outsider = people(3)
    org = api.post("/api/v1/organizations", json=organization(leader, status="active")).json()
    api.post(f"/api/v1/organizations/{org['id']}/members", json={"resident_id": member})
    api.post(f"/api/v1/organizations/{org['id']}/status", json={"status": "suspended"})
    before = snapshot()
    assert_problem(api.patch(f"/api/v1/organizations/{org['id']}", json={"leader_resident_id": outsider}), 422,
                   "status")
    assert snapshot() == before
    promoted = api.patch(f"/api/v1/organizations/{org['id']}", json={"leader_resident_id": member})
    assert promoted.status_code == 200, promoted.text
    roles = {m["resident_id"]: m["role"] for m in api.get(f"/api/v1/organizations/{org['id']}").json()["members"]}
    assert roles == {leader: "member", member: "leader"}


def test_leaving_the_street_or_dying_ends_memberships_and_a_leader_leaves_no_leader(api, people, taps, broker, sql):
    leader, member, successor = people(3)
    org = api.post("/api/v1/organizations", json=organization(leader, status="active")).json()
    oid = org["id"]
    choir = api.post("/api/v1/organizations", json=organization(successor, name="长海合唱团", filing_no=None,
                                                                category="interest_culture", subcategory=None)).json()
    for o in (oid, choir["id"]):
        assert api.post(f"/api/v1/organizations/{o}/members", json={"resident_id": member}).status_code == 201
    drained(sql, broker, taps)

    moved = api.post(f"/api/v1/residents/{member}/departure", json={"effective": TODAY, "destination": "迁往浦东新区"})
    assert moved.status_code == 200, moved.text
    for o in (oid, choir["id"]):
        detail = api.get(f"/api/v1/organizations/{o}").json()
        assert member not in [m["resident_id"] for m in detail["members"]]
        assert detail["history"][-1]["change"] == "member_left"
        assert detail["history"][-1]["detail"] == {"resident_id": member, "role": "member",
                                                   "reason": "moved out of the street"}

    died = api.post(f"/api/v1/residents/{leader}/death", json={"date_of_death": TODAY})
    assert died.status_code == 200, died.text
    detail = api.get(f"/api/v1/organizations/{oid}").json()
    # The organisation goes on, without a leader, until one is named; its history says so.
    assert (detail["status"], detail["leader_resident_id"], detail["leader_name"]) == ("active", None, None)
    assert detail["members"] == [] and detail["member_count"] == 0
    assert detail["history"][-1]["change"] == "member_left"
    assert detail["history"][-1]["detail"] == {"resident_id": leader, "role": "leader", "reason": "died",
                                               "leader_resident_id": {"from": leader, "to": None}}
    listed = api.get("/api/v1/organizations", params={"status": "active"}).json()["items"]
    assert [(o["id"], o["leader_resident_id"]) for o in listed] == [(oid, None)]

    events, batches = drained(sql, broker, taps)
    assert [(e["type"], e["payload"].get("resident_id", e["payload"].get("leader_resident_id"))) for e in events] == [
        ("organization_member_left", member), ("organization_member_left", member),
        ("organization_member_left", leader), ("organization_updated", None)]
    assert events[-1]["payload"]["changed"] == ["leader_resident_id"]
    assert [e["payload"]["reason"] for e in events[:3]] == ["moved out of the street"] * 2 + ["died"]
    left = [f for b in batches for f in b["facts"]]
    assert [(f["type"], f["delta"], f["dims"]["role"]) for f in left] == [
        ("organization_member_left", -1, "member"), ("organization_member_left", -1, "member"),
        ("organization_member_left", -1, "leader")]
    assert "died" not in json.dumps(batches) and "浦东" not in json.dumps(batches, ensure_ascii=False)

    # A new leader is named as usual and joins.
    named = api.patch(f"/api/v1/organizations/{oid}", json={"leader_resident_id": successor})
    assert named.status_code == 200, named.text
    assert (named.json()["leader_resident_id"], named.json()["member_count"]) == (successor, 1)
    assert api.get(f"/api/v1/organizations/{oid}").json()["leader_name"] == "张桂兰"


def test_a_departure_before_joining_is_refused_and_changes_nothing(api, people, snapshot, sql):
    leader, member = people(2)
    org = api.post("/api/v1/organizations", json=organization(leader)).json()
    api.post(f"/api/v1/organizations/{org['id']}/members", json={"resident_id": member})
    before = snapshot()
    yesterday = (clock.today() - timedelta(days=1)).isoformat()
    problem = assert_problem(api.post(f"/api/v1/residents/{member}/departure", json={"effective": yesterday}),
                             422, "effective")
    assert f"joining organisation {org['id']}" in problem["errors"]["effective"][0]
    assert_problem(api.post(f"/api/v1/residents/{member}/death", json={"date_of_death": yesterday}),
                   422, "date_of_death")
    assert snapshot() == before
    assert sql("SELECT status FROM registry.residents WHERE id = %s", (member,))[0]["status"] == "active"


def test_members_living_outside_the_callers_scope_are_listed_without_names(api, people, make_token):
    leader, = people(1)
    outsider, = people(1, community="310110012002", names=("李建国",))
    org = api.post("/api/v1/organizations", json=organization(leader)).json()
    assert api.post(f"/api/v1/organizations/{org['id']}/members", json={"resident_id": outsider}).status_code == 201
    worker = api.as_(make_token("community_worker", prefix=COMMUNITY, name="赵社工"))
    shown = worker.get(f"/api/v1/organizations/{org['id']}").json()
    assert {m["resident_id"]: m["name"] for m in shown["members"]} == {leader: "王秀英", outsider: None}
    operator = api.as_(make_token("operator", name="运维"))
    assert [e["record_id"] for e in operator.get("/api/v1/audit").json()["items"]] == [leader]
