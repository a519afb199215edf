"""Party members under dual management over the real HTTP API, real PostgreSQL and RabbitMQ.

What must hold: a registration is one event and one signed, de-identified fact;
reports move the report rate; a resident is a member once; an illegal move of the
report status or bad input is a field-level 422 that changes nothing; a token of
another community is refused and audits nothing; leaving the street or dying
withdraws the membership in the same transaction, and a move within the street
makes the member report to the new community.
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

COMMUNITY, OTHER_COMMUNITY, GRID = "310110012001", "310110012002", "310110012001001"
TODAY = clock.today().isoformat()
EVENTS = ("party_org_created", "party_member_registered", "party_member_reported", "party_member_placed",
          "party_member_withdrawn", "party_member_relocated", "resident_registered", "resident_left",
          "resident_died", "resident_moved")


def id_number(seq, birth="19700314"):
    first17 = "310110" + birth + seq
    return first17 + check_character(first17)


@pytest.fixture
def taps(config):
    """Queues on the registry's events and facts, declared before anything is published."""
    names = {"events": "test.party-events", "facts": "test.party-facts"}
    with Connection(config["AMQP_URI"]) as conn:
        ch = conn.default_channel
        for event in EVENTS:
            Queue(names["events"], exchange=events_exchange("registry"), routing_key=event, durable=True)(ch).declare()
        Queue(names["facts"], exchange=FACTS, routing_key="registry.#", durable=True)(ch).declare()
    return names


@pytest.fixture
def people(api):
    """Register residents over the API; returns their ids."""
    def make(n=1, community=COMMUNITY, grid=None, seq=300):
        ids = []
        for i in range(n):
            body = {"name": f"党员{seq + i}", "id_number": id_number(f"{seq + 2 * i:03d}"), "community_code": community,
                    "residence_type": "registered", "building": "12号", "unit": "1单元", "room": f"{101 + i}",
                    "relation": "self"}
            if grid:
                body["grid_code"] = grid
            resp = api.post("/api/v1/residents", json=body)
            assert resp.status_code == 201, resp.text
            ids.append(resp.json()["id"])
        return ids
    return make


def member(resident_id, **over):
    body = {"resident_id": resident_id, "category": "on_the_job", "membership_org": "上海电气集团党委",
            "joined_party": "1996-07-01"}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def report(api, rid, posts=("security_patrol",), on=TODAY):
    return api.post(f"/api/v1/party-members/{rid}/report", json={"reported_on": on, "posts": list(posts)})


@pytest.fixture
def structure(api, taps):
    """A committee and a branch in COMMUNITY (the taps come first, so their events are routable)."""
    committee = api.post("/api/v1/party-orgs", json={"community_code": COMMUNITY, "kind": "committee",
                                                      "name": "长海一村社区党委"})
    assert committee.status_code == 201, committee.text
    branch = api.post("/api/v1/party-orgs", json={"community_code": COMMUNITY, "kind": "branch", "name": "第一党支部"})
    assert branch.status_code == 201, branch.text
    return {"committee": committee.json(), "branch": branch.json()}


@pytest.fixture
def snapshot(sql):
    def take():
        return (sql("SELECT * FROM registry.party_members ORDER BY resident_id"),
                sql("SELECT count(*) AS n FROM registry.party_member_history")[0]["n"],
                sql("SELECT count(*) AS n FROM registry.party_orgs")[0]["n"],
                sql("SELECT count(*) AS n FROM registry.outbox")[0]["n"],
                sql("SELECT count(*) AS n FROM registry.audit_log")[0]["n"])
    return take


def drained(sql, broker, taps):
    wait_for(lambda: sql("SELECT count(*) AS n FROM registry.outbox WHERE sent_at IS NULL "
                         "AND routing_key NOT LIKE 'node_%'")[0]["n"] == 0, message="the outbox to drain")
    events = broker.get_all(taps["events"])
    batches = broker.get_all(taps["facts"])
    return events, batches


def party_facts(batches):
    return [f for b in batches for f in b["facts"] if f["type"].startswith("party_member")]


def test_registration_emits_one_event_and_one_signed_deidentified_fact(api, people, taps, broker, sql, config):
    rid, = people()
    drained(sql, broker, taps)  # the resident's own event and fact
    resp = api.post("/api/v1/party-members", json=member(rid))
    assert resp.status_code == 201, resp.text
    assert resp.headers["Location"] == f"/api/v1/party-members/{rid}"
    created = resp.json()
    assert created["report_status"] == "unreported" and created["community_code"] == COMMUNITY
    assert created["membership_org"] == "上海电气集团党委" and created["party_org"] is None

    events, batches = drained(sql, broker, taps)
    assert [e["type"] for e in events] == ["party_member_registered"]
    assert events[0]["payload"]["resident_id"] == rid
    assert len(batches) == 1 and len(batches[0]["facts"]) == 1
    fact = batches[0]["facts"][0]
    pseudonym = sql("SELECT pseudonym FROM registry.residents WHERE id = %s", (rid,))[0]["pseudonym"]
    assert (fact["type"], fact["node"], fact["delta"]) == ("party_member_registered", COMMUNITY, 1)
    # No per-person key crosses a level: not the pseudonym, anywhere in the batch.
    assert "subject" not in fact and pseudonym not in json.dumps(batches)
    assert fact["dims"] == {"category": "on_the_job", "report_status": "unreported", "cohort": 1970,
                            "org_kind": None, "posts": []}
    text = json.dumps(batches[0], ensure_ascii=False)
    for secret in ("党员300", id_number("300"), "上海电气", "resident_id", "1996-07-01"):
        assert secret not in text
    assert facts.verify(batches[0], facts.Signer.from_config(config).public_key)


def test_reports_move_the_rate_per_community_and_for_the_street(api, people, taps, broker, sql):
    ours = people(3)
    theirs = people(1, community=OTHER_COMMUNITY, seq=400)
    for rid in ours + theirs:
        assert api.post("/api/v1/party-members", json=member(rid)).status_code == 201
    rate = api.get("/api/v1/party/report-rate", params={"under": "310110012"}).json()
    rows = {c["community_code"]: c for c in rate["communities"]}
    assert rows[COMMUNITY] | {} == {"community_code": COMMUNITY, "name": "长海一村居委会", "members": 3, "reported": 0,
                                    "rate": 0.0}
    assert rows["310110012004"]["members"] == 0 and rows["310110012004"]["rate"] is None  # nobody to report
    assert rate["total"] == {"members": 4, "reported": 0, "rate": 0.0}
    drained(sql, broker, taps)

    resp = report(api, ours[0], posts=["security_patrol", "environment", "security_patrol"])
    assert resp.status_code == 200, resp.text
    assert resp.json()["report_status"] == "reported" and resp.json()["posts"] == ["security_patrol", "environment"]
    assert report(api, theirs[0]).status_code == 200
    rate = api.get("/api/v1/party/report-rate", params={"under": "310110012"}).json()
    rows = {c["community_code"]: c for c in rate["communities"]}
    assert (rows[COMMUNITY]["reported"], rows[COMMUNITY]["rate"]) == (1, 0.3333)
    assert (rows[OTHER_COMMUNITY]["reported"], rows[OTHER_COMMUNITY]["rate"]) == (1, 1.0)
    assert rate["total"] == {"members": 4, "reported": 2, "rate": 0.5}
    one = api.get("/api/v1/party/report-rate", params={"under": COMMUNITY}).json()
    assert [c["community_code"] for c in one["communities"]] == [COMMUNITY] and one["total"]["rate"] == 0.3333

    # A report is one change of dimensions: -1 unreported, +1 reported, at the member's community.
    events, batches = drained(sql, broker, taps)
    assert [e["type"] for e in events] == ["party_member_reported"] * 2
    deltas = sorted((f["node"], f["delta"], f["dims"]["report_status"]) for f in party_facts(batches))
    assert deltas == [(COMMUNITY, -1, "unreported"), (COMMUNITY, 1, "reported"),
                      (OTHER_COMMUNITY, -1, "unreported"), (OTHER_COMMUNITY, 1, "reported")]

    # Withdrawn members leave the denominator; a re-report brings them back.
    assert api.post(f"/api/v1/party-members/{ours[1]}/withdraw",
                    json={"effective": TODAY, "reason": "组织关系转出"}).status_code == 200
    assert api.get("/api/v1/party/report-rate", params={"under": COMMUNITY}).json()["total"] == {
        "members": 2, "reported": 1, "rate": 0.5}
    again = report(api, ours[1], posts=["care_visits"])
    assert again.status_code == 200, again.text
    assert api.get("/api/v1/party/report-rate", params={"under": COMMUNITY}).json()["total"] == {
        "members": 3, "reported": 2, "rate": 0.6667}
    history = api.get(f"/api/v1/party-members/{ours[1]}").json()["history"]
    assert [h["change"] for h in history] == ["registered", "withdrawn", "reported"]
    assert history[2]["detail"]["again"] is True
    _, batches = drained(sql, broker, taps)
    assert sum(f["delta"] for f in party_facts(batches)) == 0  # -1 withdrawn, +1 reported again


def test_a_resident_is_a_party_member_once(api, people, snapshot):
    rid, = people()
    assert api.post("/api/v1/party-members", json=member(rid)).status_code == 201
    before = snapshot()
    body = assert_problem(api.post("/api/v1/party-members", json=member(rid, category="retired")), 409, "resident_id")
    assert "already" in body["detail"]
    assert snapshot() == before
    # Withdrawn is still registered: the answer points to a re-report.
    assert api.post(f"/api/v1/party-members/{rid}/withdraw", json={"effective": TODAY, "reason": "迁出"}).status_code == 200
    body = assert_problem(api.post("/api/v1/party-members", json=member(rid)), 409, "resident_id")
    assert "report again" in body["errors"]["resident_id"][0]


@pytest.mark.parametrize("setup, path, body", [
    ("reported", "report", {"reported_on": TODAY, "posts": ["volunteer"]}),        # reported → reported
    ("withdrawn", "withdraw", {"effective": TODAY, "reason": "再次退出"}),            # withdrawn → withdrawn
    ("withdrawn", "place", {"party_org_id": "branch"}),                            # a withdrawn member sits nowhere
    ("dead", "report", {"reported_on": TODAY, "posts": ["volunteer"]}),            # died: no re-report
])
def test_illegal_transitions_are_refused_and_change_nothing(api, people, structure, snapshot, setup, path, body):
    rid, = people()
    assert api.post("/api/v1/party-members", json=member(rid)).status_code == 201
    if setup == "reported":
        assert report(api, rid).status_code == 200
    elif setup == "withdrawn":
        assert api.post(f"/api/v1/party-members/{rid}/withdraw", json={"effective": TODAY, "reason": "迁出"}).status_code == 200
    else:
        assert api.post(f"/api/v1/residents/{rid}/death", json={"date_of_death": TODAY}).status_code == 200
    if body.get("party_org_id") == "branch":
        body = {"party_org_id": structure["branch"]["id"]}
    before = snapshot()
    problem = assert_problem(api.post(f"/api/v1/party-members/{rid}/{path}", json=body), 422, "status")
    assert list(problem["errors"]) == ["status"]
    assert snapshot() == before


future = (clock.today() + timedelta(days=3)).isoformat()


@pytest.mark.parametrize("over, field", [
    ({"category": "honorary"}, "category"),
    ({"membership_org": "  "}, "membership_org"),
    ({"membership_org": "党" * 101}, "membership_org"),
    ({"membership_org": None}, "membership_org"),
    ({"joined_party": future}, "joined_party"),
    ({"joined_party": "1980-01-01"}, "joined_party"),          # aged nine
    ({"joined_party": "July 1996"}, "joined_party"),
    ({"resident_id": "12"}, "resident_id"),                    # a string is not an id
    ({"resident_id": 999999}, "resident_id"),                  # nobody
    ({"party_org_id": "committee"}, "party_org_id"),           # members sit in branches and groups
    ({"party_org_id": 999999}, "party_org_id"),
    ({"rank": "书记"}, "rank"),                                 # unknown field
])
def test_bad_registrations_are_refused_field_by_field_and_change_nothing(api, people, structure, snapshot, over, field):
    rid, = people()
    if over.get("party_org_id") == "committee":
        over = {"party_org_id": structure["committee"]["id"]}
    before = snapshot()
    body = {k: v for k, v in {**member(rid), **over}.items() if v is not None}
    assert_problem(api.post("/api/v1/party-members", json=body), 422, field)
    assert snapshot() == before


@pytest.mark.parametrize("body, field", [
    ({"reported_on": TODAY, "posts": []}, "posts"),
    ({"reported_on": TODAY, "posts": ["dancing"]}, "posts.0"),
    ({"reported_on": TODAY, "posts": ["volunteer", "civility", "consultation", "environment", "care_visits",
                                      "security_patrol"]}, "posts"),
    ({"reported_on": future, "posts": ["volunteer"]}, "reported_on"),
    ({"reported_on": "1996-06-30", "posts": ["volunteer"]}, "reported_on"),   # before joining the party
    ({"posts": ["volunteer"]}, "reported_on"),
])
def test_bad_reports_are_refused_and_change_nothing(api, people, snapshot, body, field):
    rid, = people()
    assert api.post("/api/v1/party-members", json=member(rid)).status_code == 201
    before = snapshot()
    assert_problem(api.post(f"/api/v1/party-members/{rid}/report", json=body), 422, field)
    assert snapshot() == before


def test_a_token_of_another_community_is_refused_and_audits_nothing(api, people, make_token, structure, sql, snapshot):
    rid, = people()
    assert api.post("/api/v1/party-members", json=member(rid)).status_code == 201
    other = api.as_(make_token("community_worker", prefix=OTHER_COMMUNITY))
    before = snapshot()
    # A member of another community reads as no member, and the resident as no resident; codes named are 403.
    assert_problem(other.get(f"/api/v1/party-members/{rid}"), 404, "resident_id")
    assert_problem(other.get("/api/v1/party-members", params={"under": COMMUNITY}), 403, "under")
    assert_problem(other.post(f"/api/v1/party-members/{rid}/report",
                              json={"reported_on": TODAY, "posts": ["volunteer"]}), 404, "resident_id")
    assert_problem(other.post(f"/api/v1/party-members/{rid}/withdraw",
                              json={"effective": TODAY, "reason": "越权"}), 404, "resident_id")
    assert_problem(other.post("/api/v1/party-members", json=member(rid)), 422, "resident_id")
    assert_problem(other.post("/api/v1/party-orgs", json={"community_code": COMMUNITY, "kind": "branch",
                                                          "name": "越权支部"}), 403, "community_code")
    assert_problem(other.get("/api/v1/party-orgs", params={"community_code": COMMUNITY}), 403, "community_code")
    assert_problem(other.get("/api/v1/party/report-rate", params={"under": "310110012"}), 403, "under")
    assert other.get("/api/v1/party-members").json()["items"] == []   # its own community has none
    analyst = api.as_(make_token("district_analyst", prefix="310110"))
    assert_problem(analyst.get(f"/api/v1/party-members/{rid}"), 403, "role")
    assert snapshot() == before
    assert sql("SELECT count(*) AS n FROM registry.audit_log WHERE record_type = 'party_member'")[0]["n"] == 0


def test_reads_are_audited_lists_filter_and_page(api, people, make_token, structure):
    ids = people(3, grid=GRID)
    for rid, category in zip(ids, ["on_the_job", "retired", "student"]):
        assert api.post("/api/v1/party-members", json=member(rid, category=category)).status_code == 201
    assert report(api, ids[1]).status_code == 200
    worker = api.as_(make_token("community_worker", prefix=COMMUNITY, name="赵社工"))
    assert [m["resident_id"] for m in worker.get("/api/v1/party-members",
                                                 params={"report_status": "unreported"}).json()["items"]] == [ids[0], ids[2]]
    assert [m["category"] for m in worker.get("/api/v1/party-members",
                                              params={"category": "retired"}).json()["items"]] == ["retired"]
    page = worker.get("/api/v1/party-members", params={"limit": 2}).json()
    assert [m["resident_id"] for m in page["items"]] == ids[:2] and page["next"] == ids[1]
    rest = worker.get("/api/v1/party-members", params={"limit": 2, "after": page["next"]}).json()
    assert [m["resident_id"] for m in rest["items"]] == ids[2:] and rest["next"] is None
    grid_worker = api.as_(make_token("community_worker", prefix=GRID, name="网格员"))
    assert grid_worker.get(f"/api/v1/party-members/{ids[0]}").status_code == 200
    detail = worker.get(f"/api/v1/party-members/{ids[1]}").json()
    assert detail["name"] == "党员301" and "id_number" not in detail and "phone" not in detail
    assert [h["change"] for h in detail["history"]] == ["registered", "reported"]
    assert_problem(worker.get("/api/v1/party-members", params={"report_status": "lost"}), 422, "report_status")
    assert_problem(worker.get("/api/v1/party-members/999999"), 404, "resident_id")

    operator = api.as_(make_token("operator", name="运维"))
    log = operator.get("/api/v1/audit", params={"record_type": "party_member", "record_id": ids[1]}).json()["items"]
    assert [(e["action"], e["community_code"]) for e in log] == [("list", COMMUNITY), ("list", COMMUNITY),
                                                                  ("read", COMMUNITY)]
    assert {e["actor"].rsplit(":", 1)[1] for e in log} == {"赵社工"}


def test_the_party_structure_is_a_tree(api, people, structure, taps, broker, sql):
    rid, = people()  # puts building 12号 in the community
    group = api.post("/api/v1/party-orgs", json={"community_code": COMMUNITY, "kind": "group", "name": "12号楼党小组",
                                                 "parent_id": structure["branch"]["id"], "building": "12号"})
    assert group.status_code == 201, group.text
    assert group.json()["building"] == "12号" and structure["branch"]["parent_id"] == structure["committee"]["id"]
    assert api.post("/api/v1/party-members", json=member(rid, party_org_id=group.json()["id"])).status_code == 201

    tree = api.get("/api/v1/party-orgs", params={"community_code": COMMUNITY}).json()
    assert tree["name"] == "长海一村居委会"
    committee = tree["committee"]
    assert committee["kind"] == "committee" and [b["name"] for b in committee["children"]] == ["第一党支部"]
    assert [(g["name"], g["members"]) for g in committee["children"][0]["children"]] == [("12号楼党小组", 1)]
    assert api.get("/api/v1/party-orgs", params={"community_code": OTHER_COMMUNITY}).json()["committee"] is None

    assert_problem(api.post("/api/v1/party-orgs", json={"community_code": COMMUNITY, "kind": "committee",
                                                        "name": "第二党委"}), 409, "kind")
    assert_problem(api.post("/api/v1/party-orgs", json={"community_code": COMMUNITY, "kind": "branch",
                                                        "name": "第一党支部"}), 409, "name")
    assert_problem(api.post("/api/v1/party-orgs", json={"community_code": COMMUNITY, "kind": "group", "name": "小组",
                                                        "parent_id": structure["committee"]["id"]}), 422, "parent_id")
    assert_problem(api.post("/api/v1/party-orgs", json={"community_code": OTHER_COMMUNITY, "kind": "branch",
                                                        "name": "无党委支部"}), 422, "parent_id")
    assert_problem(api.post("/api/v1/party-orgs", json={"community_code": COMMUNITY, "kind": "group", "name": "99号",
                                                        "parent_id": structure["branch"]["id"],
                                                        "building": "99号"}), 422, "building")
    assert_problem(api.post("/api/v1/party-orgs", json={"community_code": "310110012", "kind": "committee",
                                                        "name": "街道"}), 422, "community_code")

    # Placement moves the member from the group to the branch: -1 group, +1 branch.
    drained(sql, broker, taps)
    placed = api.post(f"/api/v1/party-members/{rid}/place", json={"party_org_id": structure["branch"]["id"]})
    assert placed.status_code == 200, placed.text
    assert placed.json()["party_org"] == {"id": structure["branch"]["id"], "kind": "branch", "name": "第一党支部"}
    events, batches = drained(sql, broker, taps)
    assert [e["type"] for e in events] == ["party_member_placed"]
    assert sorted((f["delta"], f["dims"]["org_kind"]) for f in party_facts(batches)) == [(-1, "group"), (1, "branch")]
    assert_problem(api.post(f"/api/v1/party-members/{rid}/place",
                            json={"party_org_id": structure["branch"]["id"]}), 422, "party_org_id")


@pytest.mark.parametrize("path, body, reason", [
    ("departure", {"effective": TODAY, "destination": "迁往浦东新区花木街道"}, "moved out of the street"),
    ("death", {"date_of_death": TODAY}, "died"),
])
def test_leaving_the_street_or_dying_withdraws_the_membership(api, people, structure, taps, broker, sql,
                                                              path, body, reason):
    rid, = people()
    assert api.post("/api/v1/party-members", json=member(rid, party_org_id=structure["branch"]["id"])).status_code == 201
    assert report(api, rid).status_code == 200
    drained(sql, broker, taps)
    assert api.post(f"/api/v1/residents/{rid}/{path}", json=body).status_code == 200
    row = sql("SELECT report_status, withdrawn_on, party_org_id FROM registry.party_members")[0]
    assert row == {"report_status": "withdrawn", "withdrawn_on": clock.today(), "party_org_id": None}
    history = sql("SELECT change, detail, actor FROM registry.party_member_history ORDER BY version")
    assert history[-1]["change"] == "withdrawn" and history[-1]["detail"]["reason"] == reason
    events, batches = drained(sql, broker, taps)
    assert [e["type"] for e in events] == [f"resident_{'left' if path == 'departure' else 'died'}",
                                           "party_member_withdrawn"]
    assert [(f["delta"], f["dims"]["report_status"]) for f in party_facts(batches)] == [(-1, "reported")]
    assert api.get("/api/v1/party/report-rate", params={"under": COMMUNITY}).json()["total"]["members"] == 0


def test_a_refused_departure_withdraws_nothing(api, people, snapshot):
    rid, = people()
    assert api.post("/api/v1/party-members", json=member(rid)).status_code == 201
    before = snapshot()
    assert_problem(api.post(f"/api/v1/residents/{rid}/departure", json={"effective": future}), 422, "effective")
    assert snapshot() == before


def test_a_move_within_the_street_makes_the_member_report_to_the_new_community(api, people, structure, taps,
                                                                               broker, sql):
    rid, = people()
    assert api.post("/api/v1/party-members", json=member(rid, party_org_id=structure["branch"]["id"])).status_code == 201
    assert report(api, rid).status_code == 200
    drained(sql, broker, taps)
    moved = api.post(f"/api/v1/residents/{rid}/move", json={"community_code": OTHER_COMMUNITY, "effective": TODAY,
                                                            "building": "3号", "unit": "1单元", "room": "101",
                                                            "relation": "self"})
    assert moved.status_code == 200, moved.text
    wait_for(lambda: sql("SELECT community_code FROM registry.party_members")[0]["community_code"] == OTHER_COMMUNITY,
             message="the member to follow the resident")
    shown = api.get(f"/api/v1/party-members/{rid}").json()
    assert (shown["community_code"], shown["report_status"], shown["party_org"]) == (OTHER_COMMUNITY, "unreported", None)
    assert shown["history"][-1]["change"] == "relocated"
    rate = {c["community_code"]: c for c in api.get("/api/v1/party/report-rate").json()["communities"]}
    assert (rate[COMMUNITY]["members"], rate[OTHER_COMMUNITY]["members"], rate[OTHER_COMMUNITY]["reported"]) == (0, 1, 0)
    events, batches = drained(sql, broker, taps)
    assert [e["type"] for e in events] == ["resident_moved", "party_member_relocated"]
    assert sorted((f["node"], f["delta"], f["dims"]["report_status"]) for f in party_facts(batches)) == [
        (COMMUNITY, -1, "reported"), (OTHER_COMMUNITY, 1, "unreported")]


def test_a_departure_dated_before_the_report_is_refused_and_changes_nothing(api, people, snapshot):
    rid, = people()
    assert api.post("/api/v1/party-members", json=member(rid)).status_code == 201
    assert report(api, rid).status_code == 200
    before = snapshot()
    body = assert_problem(api.post(f"/api/v1/residents/{rid}/departure",
                                   json={"effective": (clock.today() - timedelta(days=1)).isoformat()}), 422, "effective")
    assert f"party member {rid}" in body["errors"]["effective"][0]
    assert snapshot() == before
