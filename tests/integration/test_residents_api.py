"""Residents and households over the real HTTP API, real PostgreSQL and RabbitMQ.

What must hold: one registration is one event and one signed, de-identified
fact; a person is on the street's register once; ID numbers and phones are
nowhere in clear in the database; every refusal is a field-level 4xx that
changes nothing; a read outside the token's scope is refused and audits nothing.
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


def id_number(birth="19560314", seq="123", region="310110"):
    first17 = region + birth + seq
    return first17 + check_character(first17)


def resident(**over):
    body = {"name": "王秀英", "id_number": id_number(seq="124"), "phone": "13916275318",
            "community_code": COMMUNITY, "grid_code": GRID, "building": "12号", "unit": "2单元", "room": "302",
            "relation": "self", "residence_type": "registered", "tags": ["elderly_alone"], "moved_in": "1998-05-01"}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def unsent(sql):
    """Resident events and facts not yet relayed (node events wait for a consumer that is not there)."""
    return sql("SELECT count(*) AS n FROM registry.outbox WHERE sent_at IS NULL AND routing_key NOT LIKE 'node_%'")[0]["n"]


@pytest.fixture
def snapshot(sql):
    def take():
        return (sql("SELECT id, name, status, community_code, household_id, version FROM registry.residents ORDER BY id"),
                sql("SELECT count(*) AS n FROM registry.resident_history")[0]["n"],
                sql("SELECT count(*) AS n FROM registry.households")[0]["n"],
                sql("SELECT count(*) AS n FROM registry.outbox")[0]["n"])
    return take


@pytest.fixture
def taps(config):
    """Queues bound to the registry's events and to its facts, declared before anything is published."""
    names = {"events": "test.registry-events", "facts": "test.registry-facts"}
    with Connection(config["AMQP_URI"]) as conn:
        ch = conn.default_channel
        for event in ("resident_registered", "resident_updated", "resident_moved", "resident_left", "resident_died"):
            Queue(names["events"], exchange=events_exchange("registry"), routing_key=event, durable=True)(ch).declare()
        Queue(names["facts"], exchange=FACTS, routing_key="registry.#", durable=True)(ch).declare()
    return names


def test_registration_emits_one_event_and_one_signed_deidentified_fact(api, taps, broker, sql, config):
    body = resident()
    resp = api.post("/api/v1/residents", json=body)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert resp.headers["Location"] == f"/api/v1/residents/{created['id']}"
    assert created["sex"] == "F" and created["birth_date"] == "1956-03-14"
    assert created["household"]["address"] == "12号2单元302室"

    events = wait_for(lambda: broker.get_all(taps["events"]), message="the resident_registered event")
    fact_batches = wait_for(lambda: broker.get_all(taps["facts"]), message="the fact batch")
    wait_for(lambda: unsent(sql) == 0, message="the outbox to drain")
    events += broker.get_all(taps["events"])
    fact_batches += broker.get_all(taps["facts"])
    assert [e["type"] for e in events] == ["resident_registered"]
    assert events[0]["payload"]["id"] == created["id"]
    assert len(fact_batches) == 1 and len(fact_batches[0]["facts"]) == 1
    batch = fact_batches[0]
    fact = batch["facts"][0]
    assert fact["type"] == "resident_registered" and fact["node"] == COMMUNITY and fact["delta"] == 1
    assert fact["dims"] == {"cohort": 1956, "sex": "F", "residence_type": "registered",
                            "tags": ["elderly_alone"]}
    text = json.dumps(batch, ensure_ascii=False)
    for secret in (body["name"], body["id_number"], body["phone"], "12号"):
        assert secret not in text
    assert facts.verify(batch, facts.Signer.from_config(config).public_key)
    tampered = {**batch, "facts": [{**fact, "delta": 5}]}
    assert not facts.verify(tampered, facts.Signer.from_config(config).public_key)


def test_id_numbers_and_phones_are_nowhere_in_clear(api, sql):
    body = resident()
    assert api.post("/api/v1/residents", json=body).status_code == 201
    rid = sql("SELECT id FROM registry.residents")[0]["id"]
    assert api.patch(f"/api/v1/residents/{rid}", json={"phone": "021-65012345"}).status_code == 200
    row = sql("SELECT id_cipher, phone_cipher, id_hash FROM registry.residents")[0]
    for column in row.values():
        assert body["id_number"].encode() not in bytes(column)
        assert b"65012345" not in bytes(column)
    # Nor in any other table of the registry: history, outbox, audit.
    # (The outbox is read column by column: an unclaimed row's next_attempt_at is -infinity, which
    # Python's datetime cannot hold.)
    for table, columns in (("resident_history", "*"), ("outbox", "exchange, routing_key, body, last_error"),
                           ("audit_log", "*"), ("households", "*")):
        dump = json.dumps(sql(f"SELECT {columns} FROM registry.{table}"), default=str, ensure_ascii=False)
        for secret in (body["id_number"], body["phone"], "65012345"):
            assert secret not in dump, table
    # Yet a reader with the right token sees them.
    shown = api.get(f"/api/v1/residents/{rid}").json()
    assert shown["id_number"] == body["id_number"] and shown["phone"] == "021-65012345"


def test_the_same_person_cannot_be_registered_twice(api, snapshot):
    assert api.post("/api/v1/residents", json=resident()).status_code == 201
    before = snapshot()
    # Same number, typed as a 15-digit legacy number of the same person would not match, but lower-case x would.
    body = assert_problem(api.post("/api/v1/residents", json=resident(name="王秀英", community_code=OTHER_COMMUNITY,
                                                                     grid_code=None, room="101")), 409, "id_number")
    assert "already registered" in body["errors"]["id_number"][0]
    assert snapshot() == before


def test_legacy_15_digit_numbers_are_converted(api):
    resp = api.post("/api/v1/residents", json=resident(id_number="310110560314124", phone=None))
    assert resp.status_code == 201, resp.text
    assert resp.json()["id_number"] == id_number(birth="19560314", seq="124")


future = (clock.today() + timedelta(days=400)).strftime("%Y%m%d")


@pytest.mark.parametrize("over, field", [
    ({"id_number": id_number()[:-1] + ("0" if id_number()[-1] != "0" else "1")}, "id_number"),  # check character
    ({"id_number": "31011019560314124"}, "id_number"),                                          # 17 characters
    ({"id_number": id_number(birth=future)}, "id_number"),                                      # born in the future
    ({"id_number": id_number(birth="19560230")}, "id_number"),                                  # no such day
    ({"sex": "M"}, "sex"),                                                                      # disagrees (even 17th)
    ({"birth_date": "1956-03-15"}, "birth_date"),
    ({"phone": "1391627531"}, "phone"),
    ({"phone": "65012345"}, "phone"),                                                           # no area code
    ({"community_code": "310110012099", "grid_code": None}, "community_code"),                                     # unknown community
    ({"community_code": "310110012", "grid_code": None}, "community_code"),                                       # a street, not a community
    ({"grid_code": "310110012003001"}, "grid_code"),                                            # another community's grid
    ({"name": None}, "name"),
    ({"name": "王" * 65}, "name"),
    ({"name": "  "}, "name"),
    ({"tags": ["vip"]}, "tags.0"),
    ({"residence_type": "tourist"}, "residence_type"),
    ({"household_no": None, "room": None, "building": None, "unit": None}, "relation"),        # relation, no home
    ({"relation": None}, "relation"),                                                           # home, no relation
    ({"moved_in": "1950-01-01"}, "moved_in"),                                                   # before birth
    ({"surname": "王"}, "surname"),                                                             # unknown field
])
def test_bad_residents_are_refused_and_change_nothing(api, snapshot, over, field):
    before = snapshot()
    assert_problem(api.post("/api/v1/residents", json=resident(**over)), 422, field)
    assert snapshot() == before


def test_a_household_has_one_head_and_shares_its_room(api, sql):
    head = api.post("/api/v1/residents", json=resident()).json()
    spouse = api.post("/api/v1/residents", json=resident(name="李建国", id_number=id_number("19540802", "131"),
                                                         phone="13801234567", relation="spouse", tags=[])).json()
    assert spouse["household"]["id"] == head["household"]["id"]
    household = api.get(f"/api/v1/households/{head['household']['id']}").json()
    assert household["head_resident_id"] == head["id"]
    assert sorted(m["name"] for m in household["members"]) == ["李建国", "王秀英"]
    assert all("*" in m["id_number"] for m in household["members"])  # masked when many are listed
    second_head = resident(name="张三", id_number=id_number("19800101", "111"), phone=None, tags=[])
    assert_problem(api.post("/api/v1/residents", json=second_head), 409, "relation")


def test_move_leave_and_death_are_history_not_overwrites(api, sql, taps, broker):
    r = api.post("/api/v1/residents", json=resident()).json()
    moved = api.post(f"/api/v1/residents/{r['id']}/move",
                     json={"community_code": OTHER_COMMUNITY, "building": "3号", "unit": "1单元", "room": "101",
                           "relation": "self", "effective": clock.today().isoformat(), "reason": "子女家附近"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["community_code"] == OTHER_COMMUNITY and moved.json()["grid_code"] is None
    left = api.post(f"/api/v1/residents/{r['id']}/departure",
                    json={"effective": clock.today().isoformat(), "destination": "迁往浦东新区花木街道"})
    assert left.status_code == 200 and left.json()["status"] == "left"
    detail = api.get(f"/api/v1/residents/{r['id']}").json()
    assert [h["change"] for h in detail["history"]] == ["registered", "moved", "left"]
    assert detail["history"][1]["detail"]["from"]["community_code"] == COMMUNITY
    # A departed resident cannot move; a person who left may come back as a new registration.
    assert_problem(api.post(f"/api/v1/residents/{r['id']}/move", json={
        "community_code": COMMUNITY, "effective": clock.today().isoformat()}), 422, "status")
    back = api.post("/api/v1/residents", json=resident(room="501"))
    assert back.status_code == 201, back.text
    died = api.post(f"/api/v1/residents/{back.json()['id']}/death", json={"date_of_death": clock.today().isoformat()})
    assert died.status_code == 200 and died.json()["status"] == "deceased"
    assert_problem(api.post("/api/v1/residents", json=resident(room="502")), 409, "id_number")

    wait_for(lambda: unsent(sql) == 0, message="the outbox to drain")
    assert [e["type"] for e in broker.get_all(taps["events"])] == [
        "resident_registered", "resident_moved", "resident_left", "resident_registered", "resident_died"]
    deltas = [(f["type"], f["node"], f["delta"]) for b in broker.get_all(taps["facts"]) for f in b["facts"]]
    assert sorted(deltas) == sorted([
        ("resident_registered", COMMUNITY, 1), ("resident_moved", COMMUNITY, -1),
        ("resident_moved", OTHER_COMMUNITY, 1), ("resident_left", OTHER_COMMUNITY, -1),
        ("resident_registered", COMMUNITY, 1), ("resident_died", COMMUNITY, -1)])
    assert sum(d for _, _, d in deltas) == 0


@pytest.mark.parametrize("path, body, field", [
    ("move", {"community_code": "310110013001", "effective": "2024-01-01"}, "community_code"),  # another street
    ("move", {"community_code": OTHER_COMMUNITY}, "effective"),
    ("move", {"community_code": OTHER_COMMUNITY, "effective": "2999-01-01"}, "effective"),
    ("move", {"community_code": OTHER_COMMUNITY, "effective": "1990-01-01"}, "effective"),      # before move-in
    ("departure", {"effective": "not a date"}, "effective"),
    ("death", {}, "date_of_death"),
])
def test_bad_changes_are_refused_and_change_nothing(api, snapshot, path, body, field):
    r = api.post("/api/v1/residents", json=resident()).json()
    before = snapshot()
    assert_problem(api.post(f"/api/v1/residents/{r['id']}/{path}", json=body), 422, field)
    assert snapshot() == before


def test_out_of_scope_reads_are_refused_and_audit_nothing(api, make_token, sql):
    r = api.post("/api/v1/residents", json=resident()).json()
    other = api.as_(make_token("community_worker", prefix=OTHER_COMMUNITY))
    # A record of another community reads as one that does not exist; the code named in `under` is 403.
    assert_problem(other.get(f"/api/v1/residents/{r['id']}"), 404, "id")
    assert_problem(other.get("/api/v1/residents", params={"under": COMMUNITY}), 403, "under")
    assert_problem(other.get(f"/api/v1/households/{r['household']['id']}"), 404, "id")
    assert other.get("/api/v1/residents").json()["items"] == []  # its own community is empty
    analyst = api.as_(make_token("district_analyst", prefix="310110"))
    assert_problem(analyst.get(f"/api/v1/residents/{r['id']}"), 403, "role")
    assert_problem(other.post(f"/api/v1/residents/{r['id']}/death", json={"date_of_death": "2024-01-01"}), 404, "id")
    assert sql("SELECT count(*) AS n FROM registry.audit_log")[0]["n"] == 0
    assert sql("SELECT status FROM registry.residents")[0]["status"] == "active"


def test_reads_are_audited_and_the_operator_can_query_the_log(api, make_token):
    r = api.post("/api/v1/residents", json=resident()).json()
    worker = api.as_(make_token("community_worker", prefix=COMMUNITY, name="赵社工"))
    assert worker.get(f"/api/v1/residents/{r['id']}").status_code == 200
    assert worker.get("/api/v1/residents", params={"tag": "elderly_alone"}).json()["items"][0]["id"] == r["id"]
    operator = api.as_(make_token("operator", name="运维"))
    log = operator.get("/api/v1/audit", params={"record_id": r["id"]}).json()["items"]
    assert [(e["action"], e["record_type"], e["community_code"]) for e in log] == [
        ("read", "resident", COMMUNITY), ("list", "resident", COMMUNITY)]
    assert all(e["actor"].endswith(":赵社工") for e in log)
    assert_problem(worker.get("/api/v1/audit"), 403, "role")
    assert operator.get(f"/api/v1/residents/{r['id']}").status_code == 403  # operators run it, they don't read it


def test_search_filters_and_pages(api):
    ids = []
    for i, (name, tags) in enumerate([("王秀英", ["elderly_alone"]), ("王建国", ["veteran"]), ("李娜", [])]):
        body = resident(name=name, id_number=id_number(seq=f"{200 + 2 * i}"), tags=tags, phone=f"1391627530{i}",
                        room=f"{101 + i}", relation="self")
        ids.append(api.post("/api/v1/residents", json=body).json()["id"])
    page = api.get("/api/v1/residents", params={"name": "王", "limit": 1}).json()
    assert [i["id"] for i in page["items"]] == [ids[0]] and page["next"] == ids[0]
    page2 = api.get("/api/v1/residents", params={"name": "王", "limit": 1, "after": page["next"]}).json()
    assert [i["id"] for i in page2["items"]] == [ids[1]]
    by_id = api.get("/api/v1/residents", params={"id_number": id_number(seq="204")}).json()["items"]
    assert [i["name"] for i in by_id] == ["李娜"] and by_id[0]["id_number"].startswith("310110********")
    by_phone = api.get("/api/v1/residents", params={"phone": "139 1627 5301"}).json()["items"]
    assert [i["name"] for i in by_phone] == ["王建国"] and by_phone[0]["phone"] == "139****5301"
    other = resident(name="赵敏", id_number=id_number(seq="210"), phone=None, building="7号", room="501")
    assert api.post("/api/v1/residents", json=other).status_code == 201
    by_building = api.get("/api/v1/residents", params={"building": "12号"}).json()["items"]
    assert [i["id"] for i in by_building] == ids
    assert [i["name"] for i in api.get("/api/v1/residents", params={"building": "7号"}).json()["items"]] == ["赵敏"]
    assert api.get("/api/v1/residents", params={"building": "9号"}).json()["items"] == []
    assert_problem(api.get("/api/v1/residents", params={"id_number": "12345"}), 422, "id_number")
    assert_problem(api.get("/api/v1/residents", params={"limit": "0"}), 422, "limit")


def test_refusals_do_not_reveal_people_outside_the_callers_scope(api, make_token):
    api.post("/api/v1/residents", json=resident())
    other = api.as_(make_token("community_worker", prefix=OTHER_COMMUNITY))
    body = assert_problem(other.post("/api/v1/residents", json=resident(community_code=OTHER_COMMUNITY,
                                                                        grid_code=None)), 409, "id_number")
    assert body["errors"]["id_number"] == ["already on this street's register (outside your scope)"]
    # Its audit trail shows only its own community's reads.
    street = api.as_(make_token("street_admin"))
    rid = street.get("/api/v1/residents").json()["items"][0]["id"]
    street.get(f"/api/v1/residents/{rid}")
    admin_of_other = api.as_(make_token("street_admin", prefix=OTHER_COMMUNITY))
    assert admin_of_other.get("/api/v1/audit").json()["items"] == []
    assert len(street.get("/api/v1/audit").json()["items"]) == 2


JSON = {"Content-Type": "application/json"}   # a JSON body's hostility, not its type (that is a 415)


@pytest.mark.parametrize("method, path, kwargs, field", [
    ("get", "/api/v1/residents", {"params": {"household_id": str(2 ** 63)}}, "household_id"),
    ("get", "/api/v1/residents", {"params": {"name": "王\x00"}}, "name"),
    ("get", "/api/v1/audit", {"params": {"actor": "a\x00b"}}, "actor"),
    ("post", "/api/v1/residents", {"data": '{"name": "\\ud800"}', "headers": JSON}, "_body"),
    ("post", "/api/v1/residents", {"data": "[" * 100000 + "]" * 100000, "headers": JSON}, "_body"),
])
def test_hostile_input_is_a_field_error_not_a_500(api, snapshot, method, path, kwargs, field):
    before = snapshot()
    assert_problem(getattr(api, method)(path, **kwargs), 422, field)
    assert snapshot() == before


def test_a_community_people_live_in_cannot_be_retired_or_split(api, snapshot):
    api.post("/api/v1/residents", json=resident())
    before = snapshot()
    body = assert_problem(api.post(f"/api/v1/nodes/{COMMUNITY}/retire", json={
        "valid_to": clock.today().isoformat(), "reason": "撤并", "successor_code": OTHER_COMMUNITY}), 422, "code")
    assert "1 active residents" in body["errors"]["code"][0]
    assert_problem(api.post(f"/api/v1/nodes/{GRID}/retire", json={
        "valid_to": clock.today().isoformat(), "reason": "撤并"}), 422, "code")
    assert snapshot() == before
