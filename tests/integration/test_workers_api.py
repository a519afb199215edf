"""Community workers over the real HTTP API, real PostgreSQL and RabbitMQ.

What must hold: an appointment is one event and one fact that names no one; ID
numbers and phones are nowhere in clear; a community has one secretary and one
director; an assessment is once a year, and letting a worker go ends the
appointment in the same transaction; a community worker reads its own
community's workers only, every read is audited, and refusals audit nothing.
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
THIS_YEAR = clock.today().year
EVENTS = ("worker_appointed", "worker_assessed", "worker_left")


def id_number(seq=123, birth="19850612"):
    first17 = "310110" + birth + f"{seq:03d}"
    return first17 + check_character(first17)


def worker(**over):
    body = {"name": "陈志明", "id_number": id_number(), "phone": "13916275318", "role": "grid_worker",
            "community_code": COMMUNITY, "grid_code": GRID, "origin": "recruited", "started_on": "2022-03-01"}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def unsent(sql):
    return sql("SELECT count(*) AS n FROM registry.outbox "
               "WHERE sent_at IS NULL AND routing_key LIKE '%%worker%%'")[0]["n"]


@pytest.fixture
def snapshot(sql):
    def take():
        return (sql("SELECT id, role, status, left_on, version FROM registry.workers ORDER BY id"),
                sql("SELECT worker_id, year, outcome FROM registry.worker_assessments ORDER BY worker_id, year"),
                sql("SELECT count(*) AS n FROM registry.worker_history")[0]["n"],
                sql("SELECT count(*) AS n FROM registry.outbox")[0]["n"])
    return take


@pytest.fixture
def taps(config):
    names = {"events": "test.worker-events", "facts": "test.worker-facts"}
    with Connection(config["AMQP_URI"]) as conn:
        ch = conn.default_channel
        for event in EVENTS:
            Queue(names["events"], exchange=events_exchange("registry"), routing_key=event, durable=True)(ch).declare()
            Queue(names["facts"], exchange=FACTS, routing_key=f"registry.{event}", durable=True)(ch).declare()
    return names


def appoint(api, **over):
    resp = api.post("/api/v1/workers", json=worker(**over))
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_an_appointment_emits_one_event_and_one_fact_naming_no_one(api, taps, broker, sql, config):
    body = worker()
    resp = api.post("/api/v1/workers", json=body)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert resp.headers["Location"] == f"/api/v1/workers/{created['id']}"
    assert (created["id_number"], created["phone"], created["status"]) == (body["id_number"], body["phone"], "active")

    events = wait_for(lambda: broker.get_all(taps["events"]), message="the worker_appointed event")
    batches = wait_for(lambda: broker.get_all(taps["facts"]), message="the fact batch")
    wait_for(lambda: unsent(sql) == 0, message="the outbox to drain")
    events += broker.get_all(taps["events"])
    batches += broker.get_all(taps["facts"])
    assert [e["type"] for e in events] == ["worker_appointed"]
    assert events[0]["payload"]["id"] == created["id"]
    assert "id_number" not in events[0]["payload"] and "phone" not in events[0]["payload"]
    assert len(batches) == 1 and len(batches[0]["facts"]) == 1
    fact = batches[0]["facts"][0]
    assert (fact["type"], fact["node"], fact["delta"]) == ("worker_appointed", COMMUNITY, 1)
    assert "subject" not in fact
    assert fact["dims"] == {"role": "grid_worker", "origin": "recruited"}
    text = json.dumps(batches[0], ensure_ascii=False)
    for secret in (body["name"], body["id_number"], body["phone"]):
        assert secret not in text
    assert facts.verify(batches[0], facts.Signer.from_config(config).public_key)


def test_id_numbers_and_phones_are_nowhere_in_clear(api, sql):
    body = worker()
    created = appoint(api)
    api.post(f"/api/v1/workers/{created['id']}/assessments", json={"year": THIS_YEAR, "score": 91, "outcome": "kept"})
    api.get(f"/api/v1/workers/{created['id']}")
    row = sql("SELECT id_cipher, id_hash, phone_cipher, phone_hash FROM registry.workers")[0]
    for column in row.values():
        assert body["id_number"].encode() not in bytes(column) and body["phone"].encode() not in bytes(column)
    # The outbox's body only: its next_attempt_at may still be '-infinity', which Python cannot hold.
    for table, columns in (("workers", "*"), ("worker_history", "*"), ("worker_assessments", "*"),
                           ("outbox", "routing_key, body"), ("audit_log", "*")):
        dump = json.dumps(sql(f"SELECT {columns} FROM registry.{table}"), default=str, ensure_ascii=False)
        for secret in (body["id_number"], body["phone"]):
            assert secret not in dump, table
    shown = api.get(f"/api/v1/workers/{created['id']}").json()
    assert shown["id_number"] == body["id_number"] and shown["phone"] == body["phone"]


def test_one_secretary_and_one_director_per_community(api, snapshot):
    secretary = appoint(api, role="secretary", grid_code=None, origin="kept_on")
    before = snapshot()
    problem = assert_problem(api.post("/api/v1/workers", json=worker(
        role="secretary", grid_code=None, id_number=id_number(125))), 409, "role")
    assert f"worker {secretary['id']}" in problem["errors"]["role"][0]
    # The same person twice in one role is refused too, wherever it is.
    assert_problem(api.post("/api/v1/workers", json=worker(role="secretary", grid_code=None,
                                                           community_code=OTHER_COMMUNITY)), 409, "id_number")
    assert snapshot() == before
    # Secretary and director may be one person (书记、主任"一肩挑"); another community has its own seats.
    appoint(api, role="director", grid_code=None, origin="kept_on")
    appoint(api, role="secretary", grid_code=None, community_code=OTHER_COMMUNITY, id_number=id_number(127))
    # Once the secretary has left, the seat can be filled.
    assert api.post(f"/api/v1/workers/{secretary['id']}/leave",
                    json={"left_on": clock.today().isoformat(), "reason": "retired"}).status_code == 200
    appoint(api, role="secretary", grid_code=None, id_number=id_number(125))


def test_rolling_management_assessments(api, snapshot, taps, broker, sql):
    w = appoint(api, origin="seconded")
    first = api.post(f"/api/v1/workers/{w['id']}/assessments",
                     json={"year": THIS_YEAR - 1, "score": "72.5", "outcome": "improved", "note": "服务台账不全"})
    assert first.status_code == 201, first.text
    [assessment] = first.json()["assessments"]
    assert assessment == {"year": THIS_YEAR - 1, "score": "72.50", "outcome": "improved",
                          "assessed_on": clock.today().isoformat(), "note": "服务台账不全",
                          "actor": assessment["actor"]} and assessment["actor"].endswith(":测试用户")
    before = snapshot()
    assert_problem(api.post(f"/api/v1/workers/{w['id']}/assessments",
                            json={"year": THIS_YEAR - 1, "score": 90, "outcome": "kept"}), 409, "year")
    assert snapshot() == before
    let_go = api.post(f"/api/v1/workers/{w['id']}/assessments",
                      json={"year": THIS_YEAR, "score": 48, "outcome": "let_go"})
    assert let_go.status_code == 201, let_go.text
    after = let_go.json()
    assert (after["status"], after["left_on"], after["left_reason"]) == ("left", clock.today().isoformat(), "assessment")
    assert [h["change"] for h in after["history"]] == ["appointed", "assessed", "assessed", "left"]
    before = snapshot()
    assert_problem(api.post(f"/api/v1/workers/{w['id']}/assessments",
                            json={"year": THIS_YEAR, "score": 90, "outcome": "kept"}), 422, "status")
    assert_problem(api.post(f"/api/v1/workers/{w['id']}/leave",
                            json={"left_on": clock.today().isoformat(), "reason": "resigned"}), 422, "status")
    assert snapshot() == before

    wait_for(lambda: unsent(sql) == 0, message="the outbox to drain")
    assert [e["type"] for e in broker.get_all(taps["events"])] == [
        "worker_appointed", "worker_assessed", "worker_assessed", "worker_left"]
    all_facts = [f for b in broker.get_all(taps["facts"]) for f in b["facts"]]
    assert [(f["type"], f["delta"]) for f in all_facts] == [
        ("worker_appointed", 1), ("worker_assessed", 1), ("worker_assessed", 1), ("worker_left", -1)]
    assert [f["dims"].get("outcome") for f in all_facts] == [None, "improved", "let_go", None]
    assert [f["dims"].get("score_band") for f in all_facts] == [None, "70-79", "0-59", None]
    assert all_facts[-1]["dims"] == {"role": "grid_worker", "origin": "seconded", "reason": "assessment"}
    assert "服务台账" not in json.dumps(all_facts, ensure_ascii=False)


@pytest.mark.parametrize("body, field", [
    ({"year": THIS_YEAR + 1, "score": 80, "outcome": "kept"}, "year"),            # the future
    ({"year": 2021, "score": 80, "outcome": "kept"}, "year"),                     # before the worker started
    ({"year": THIS_YEAR, "score": 100.5, "outcome": "kept"}, "score"),
    ({"year": THIS_YEAR, "score": "80.125", "outcome": "kept"}, "score"),
    ({"year": THIS_YEAR, "score": "NaN", "outcome": "kept"}, "score"),
    ({"year": THIS_YEAR, "score": 80, "outcome": "promoted"}, "outcome"),
    ({"year": "2024", "score": 80, "outcome": "kept"}, "year"),                   # a string is not a year
    ({"year": THIS_YEAR, "score": 80}, "outcome"),
    ({"year": THIS_YEAR, "score": 80, "outcome": "kept",
      "assessed_on": (clock.today() + timedelta(days=1)).isoformat()}, "assessed_on"),
])
def test_bad_assessments_are_refused_and_change_nothing(api, snapshot, body, field):
    w = appoint(api)
    before = snapshot()
    assert_problem(api.post(f"/api/v1/workers/{w['id']}/assessments", json=body), 422, field)
    assert snapshot() == before


@pytest.mark.parametrize("over, field", [
    ({"id_number": id_number()[:-1] + ("0" if id_number()[-1] != "0" else "1")}, "id_number"),
    ({"phone": "65012345"}, "phone"),
    ({"grid_code": None}, "grid_code"),                                  # a grid worker needs a grid
    ({"grid_code": "310110012003001"}, "grid_code"),                     # another community's grid
    ({"community_code": "310110012099", "grid_code": None, "role": "member"}, "community_code"),
    ({"role": "mayor"}, "role"),
    ({"origin": "elected"}, "origin"),
    ({"started_on": (clock.today() + timedelta(days=1)).isoformat()}, "started_on"),
    ({"id_number": id_number(birth="20100101"), "started_on": clock.today().isoformat()}, "started_on"),  # a child
    ({"name": "  "}, "name"),
    ({"resident_id": 999999}, "resident_id"),
    ({"salary": 5000}, "salary"),
])
def test_bad_appointments_are_refused_and_change_nothing(api, snapshot, over, field):
    before = snapshot()
    assert_problem(api.post("/api/v1/workers", json=worker(**over)), 422, field)
    assert snapshot() == before


def test_a_worker_living_in_the_street_is_linked_to_the_same_person_only(api, sql):
    resident = api.post("/api/v1/residents", json={
        "name": "陈志明", "id_number": id_number(), "community_code": COMMUNITY, "residence_type": "registered"})
    assert resident.status_code == 201, resident.text
    rid = resident.json()["id"]
    assert_problem(api.post("/api/v1/workers", json=worker(resident_id=rid, id_number=id_number(125))), 422,
                   "resident_id")
    linked = appoint(api, resident_id=rid)
    assert linked["resident_id"] == rid
    # The worker's look-up hash is not the resident's: the two registers cannot be joined by hash.
    hashes = sql("SELECT (SELECT id_hash FROM registry.residents) = (SELECT id_hash FROM registry.workers) AS same")
    assert hashes[0]["same"] is False


def test_scope_roles_and_audit(api, make_token, sql, snapshot):
    w = appoint(api)
    other = appoint(api, community_code=OTHER_COMMUNITY, grid_code=None, role="member", id_number=id_number(125))
    before = snapshot()
    outsider = api.as_(make_token("community_worker", prefix=OTHER_COMMUNITY))
    assert_problem(outsider.get(f"/api/v1/workers/{w['id']}"), 404, "id")   # as a worker that does not exist
    assert_problem(outsider.get("/api/v1/workers", params={"community_code": COMMUNITY}), 403, "community_code")
    analyst = api.as_(make_token("district_analyst", prefix="310110"))
    assert_problem(analyst.get(f"/api/v1/workers/{w['id']}"), 403, "role")
    assert_problem(analyst.get("/api/v1/workers"), 403, "role")
    local = api.as_(make_token("community_worker", prefix=COMMUNITY, name="赵社工"))
    assert_problem(local.post("/api/v1/workers", json=worker(id_number=id_number(127))), 403, "role")
    assert_problem(local.post(f"/api/v1/workers/{w['id']}/assessments",
                              json={"year": THIS_YEAR, "score": 80, "outcome": "kept"}), 403, "role")
    assert_problem(local.post(f"/api/v1/workers/{w['id']}/leave",
                              json={"left_on": clock.today().isoformat(), "reason": "resigned"}), 403, "role")
    assert sql("SELECT count(*) AS n FROM registry.audit_log")[0]["n"] == 0
    assert snapshot() == before

    # A community worker reads its own community's workers; each read is audited.
    assert local.get(f"/api/v1/workers/{w['id']}").json()["id_number"] == id_number()
    listed = local.get("/api/v1/workers").json()["items"]
    assert [i["id"] for i in listed] == [w["id"]]
    assert listed[0]["id_number"].startswith("310110********") and listed[0]["phone"] == "139****5318"
    log = sql("SELECT actor, action, record_type, record_id, community_code FROM registry.audit_log ORDER BY id")
    assert [(e["action"], e["record_type"], e["record_id"], e["community_code"]) for e in log] == [
        ("read", "worker", w["id"], COMMUNITY), ("list", "worker", w["id"], COMMUNITY)]
    assert all(e["actor"].endswith(":赵社工") for e in log)
    assert other["id"] not in [e["record_id"] for e in log]


def test_listing_filters_and_pages(api):
    posts = [("secretary", None, "kept_on"), ("director", None, "seconded"), ("grid_worker", GRID, "recruited"),
             ("member", None, "recruited")]
    ids = [appoint(api, id_number=id_number(200 + 2 * i), role=role, grid_code=grid, origin=origin)["id"]
           for i, (role, grid, origin) in enumerate(posts)]
    api.post(f"/api/v1/workers/{ids[3]}/leave", json={"left_on": clock.today().isoformat(), "reason": "transferred"})
    active = api.get("/api/v1/workers").json()
    assert [w["id"] for w in active["items"]] == ids[:3] and active["next"] is None
    everyone = api.get("/api/v1/workers", params={"status": "all", "limit": 2}).json()
    assert [w["id"] for w in everyone["items"]] == ids[:2] and everyone["next"] == ids[1]
    rest = api.get("/api/v1/workers", params={"status": "all", "limit": 2, "after": everyone["next"]}).json()
    assert [w["id"] for w in rest["items"]] == ids[2:]
    recruited = api.get("/api/v1/workers", params={"origin": "recruited", "status": "all"}).json()["items"]
    assert [w["id"] for w in recruited] == ids[2:]
    grid = api.get("/api/v1/workers", params={"role": "grid_worker", "community_code": COMMUNITY}).json()["items"]
    assert [w["id"] for w in grid] == [ids[2]]
    left = api.get("/api/v1/workers", params={"status": "left"}).json()["items"]
    assert [(w["id"], w["left_reason"]) for w in left] == [(ids[3], "transferred")]
    assert_problem(api.get("/api/v1/workers", params={"role": "mayor"}), 422, "role")


@pytest.mark.parametrize("body, field", [
    ({"left_on": "2022-02-28", "reason": "resigned"}, "left_on"),            # before the first day
    ({"left_on": (clock.today() + timedelta(days=1)).isoformat(), "reason": "resigned"}, "left_on"),
    ({"left_on": "2024-01-01", "reason": "assessment"}, "reason"),          # only an assessment lets go that way
    ({"reason": "resigned"}, "left_on"),
])
def test_bad_departures_are_refused_and_change_nothing(api, snapshot, body, field):
    w = appoint(api)
    before = snapshot()
    assert_problem(api.post(f"/api/v1/workers/{w['id']}/leave", json=body), 422, field)
    assert snapshot() == before


def test_unknown_workers_are_404(api):
    assert_problem(api.get("/api/v1/workers/424242"), 404, "id")
    assert_problem(api.post("/api/v1/workers/424242/leave", json={"left_on": "2024-01-01", "reason": "other"}),
                   404, "id")


def test_a_linked_worker_leaves_when_the_resident_dies_not_when_they_move_away(api, taps, broker, sql):
    today = clock.today().isoformat()
    ids = {}
    for seq, name in ((123, "陈志明"), (125, "林晓燕")):
        resp = api.post("/api/v1/residents", json={"name": name, "id_number": id_number(seq),
                                                   "community_code": COMMUNITY, "residence_type": "registered"})
        assert resp.status_code == 201, resp.text
        ids[seq] = resp.json()["id"]
    grid_worker = appoint(api, resident_id=ids[123])
    secretary = appoint(api, resident_id=ids[123], role="secretary", grid_code=None)  # two posts, one person
    director = appoint(api, name="林晓燕", id_number=id_number(125), resident_id=ids[125], role="director",
                       grid_code=None, origin="kept_on")
    unlinked = appoint(api, name="黄伟", id_number=id_number(127), role="member", grid_code=None)
    wait_for(lambda: unsent(sql) == 0, message="the outbox to drain")
    broker.get_all(taps["events"]), broker.get_all(taps["facts"])

    assert api.post(f"/api/v1/residents/{ids[123]}/departure", json={"effective": today}).status_code == 200
    assert api.post(f"/api/v1/residents/{ids[125]}/death", json={"date_of_death": today}).status_code == 200
    shown = {w: api.get(f"/api/v1/workers/{w}").json() for w in
             (grid_worker["id"], secretary["id"], director["id"], unlinked["id"])}
    # Workers often live outside the street they serve: moving away ends no appointment; death does.
    assert [(w["status"], w["left_on"], w["left_reason"]) for w in shown.values()] == [
        ("active", None, None), ("active", None, None), ("left", today, "died"), ("active", None, None)]
    assert shown[director["id"]]["history"][-1]["detail"] == {"reason": "died", "resident_id": ids[125]}
    # The seat is free again.
    appoint(api, name="宋佳", id_number=id_number(129), role="director", grid_code=None)

    wait_for(lambda: unsent(sql) == 0, message="the outbox to drain")
    events = [e for e in broker.get_all(taps["events"]) if e["type"] == "worker_left"]
    assert [e["payload"]["id"] for e in events] == [director["id"]]
    left = [f for b in broker.get_all(taps["facts"]) for f in b["facts"] if f["type"] == "worker_left"]
    assert [(f["dims"]["role"], f["dims"]["reason"], f["delta"]) for f in left] == [("director", "died", -1)]


def test_a_death_before_the_first_day_is_refused_and_changes_nothing(api, snapshot, sql):
    resp = api.post("/api/v1/residents", json={"name": "陈志明", "id_number": id_number(),
                                               "community_code": COMMUNITY, "residence_type": "registered"})
    rid = resp.json()["id"]
    w = appoint(api, resident_id=rid)
    before = snapshot()
    problem = assert_problem(api.post(f"/api/v1/residents/{rid}/death", json={"date_of_death": "2022-02-28"}),
                             422, "date_of_death")
    assert f"worker {w['id']}" in problem["errors"]["date_of_death"][0]
    assert snapshot() == before
    assert sql("SELECT status FROM registry.residents WHERE id = %s", (rid,))[0]["status"] == "active"
