"""Three up, three down over the real HTTP API, with the registry, consultation and gateway services on
real PostgreSQL and RabbitMQ.

What must hold: a matter taken from raising through deliberation, decision, implementation and
publication to settlement emits each expected event and fact exactly once; a reworded matter is
offered as a duplicate in its community and not in another; bad input is a field-level 4xx that
changes nothing; the public view needs no token and shows nothing personal.
"""
import json
import time
from datetime import datetime, timedelta

import pytest
from kombu import Connection, Queue

from services.registry.identity import check_character
from shared import facts
from shared.messaging import FACTS, events_exchange
from shared import clock
from tests.integration.conftest import assert_problem, wait_for

C1, C2 = "310110012001", "310110012002"
EVENTS = ("matter_raised", "matter_backed", "matter_screened", "agenda_item_created", "meeting_scheduled",
          "meeting_opened", "meeting_closed", "decision_made", "implementation_started", "task_progressed",
          "result_published", "matter_rated", "matter_settled")


@pytest.fixture
def taps(config):
    with Connection(config["AMQP_URI"]) as conn:
        ch = conn.default_channel
        for event in EVENTS:
            Queue("test.consultation-events", exchange=events_exchange("consultation"), routing_key=event,
                  durable=True)(ch).declare()
        Queue("test.consultation-facts", exchange=FACTS, routing_key="consultation.#", durable=True)(ch).declare()


def resident(api, seq, name, community=C1):
    first17 = "310110" + "19580312" + f"{seq:03d}"
    body = {"name": name, "id_number": first17 + check_character(first17), "community_code": community,
            "residence_type": "registered", "building": "8号", "unit": "1单元", "room": f"{200 + seq}",
            "relation": "self"}
    resp = api.post("/api/v1/residents", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def soon(minutes=30):
    return (clock.now() + timedelta(minutes=minutes)).isoformat()


PARKING = {"community_code": C1, "category": "parking", "channel": "reception_day", "building": "8号楼",
           "title": "小区夜间停车难", "description": "晚上8点后小区内车辆乱停，消防通道被占，希望重新规划停车位。"}


def test_a_matter_from_raising_to_settlement_emits_each_event_and_fact_once(api, config, taps, broker):
    raiser, backer, rep, captain = (resident(api, i, n) for i, n in
                                    [(31, "陈志强"), (32, "刘秀兰"), (33, "李桂英"), (34, "赵国庆")])
    matter = api.post("/api/v1/matters", json={**PARKING, "raiser_resident_id": raiser, "request_id": "desk-0001"})
    assert matter.status_code == 201, matter.text
    mid = matter.json()["id"]
    again = api.post("/api/v1/matters", json={**PARKING, "raiser_resident_id": raiser, "request_id": "desk-0001"})
    assert again.status_code == 200 and again.json()["id"] == mid
    reworded = {**PARKING, "title": "停车位太少", "description": "小区晚上车辆乱停，停车位不足，消防通道常被占用。",
                "raiser_resident_id": backer}
    body = assert_problem(api.post("/api/v1/matters", json=reworded), 409, "similar")
    assert body["errors"]["similar"] == [str(mid)]
    assert api.post(f"/api/v1/matters/{mid}/back", json={"resident_id": backer}).json()["backers"] == 1
    assert api.post(f"/api/v1/matters/{mid}/screen", json={"outcome": "deliberate"}).status_code == 200
    item = api.post("/api/v1/agenda-items", json={"community_code": C1, "title": "停车位重新规划",
                                                  "matter_ids": [mid]})
    assert item.status_code == 201, item.text
    item_id = item.json()["id"]
    assert api.post(f"/api/v1/agenda-items/{item_id}/options",
                    json={"title": "绿化带改建30个停车位", "budget": "180000"}).status_code == 201
    option = api.get(f"/api/v1/agenda-items/{item_id}").json()["options"][0]["id"]
    meeting = api.post("/api/v1/meetings", json={
        "community_code": C1, "title": "停车问题协商议事会", "starts_at": soon(), "place": "居委会二楼会议室",
        "quorum": 3, "agenda_item_ids": [item_id],
        "roster": [{"role": "resident_rep", "resident_id": rep, "name": "李桂英"},
                   {"role": "building_captain", "resident_id": captain, "name": "赵国庆"},
                   {"role": "community_police", "name": "马警官", "affiliation": "长海路派出所"},
                   {"role": "property_company", "name": "周经理", "affiliation": "上海长城物业"}]})
    assert meeting.status_code == 201, meeting.text
    meeting_id = meeting.json()["id"]
    ps = [p["id"] for p in meeting.json()["roster"]]
    assert api.post(f"/api/v1/meetings/{meeting_id}/open", json={"participant_ids": ps}).status_code == 200
    for pid in ps[:3]:
        vote = api.post(f"/api/v1/meetings/{meeting_id}/votes",
                        json={"participant_id": pid, "agenda_item_id": item_id, "option_id": option,
                              "choice": "approve"})
        assert vote.status_code == 201, vote.text
    tally = api.get(f"/api/v1/meetings/{meeting_id}/tally?agenda_item_id={item_id}").json()
    assert tally["adopted_option_id"] == option and tally["quorum_met"] is True
    assert api.post(f"/api/v1/meetings/{meeting_id}/close",
                    json={"minutes": "四方代表协商，同意绿化带改建停车位方案。"}).status_code == 200
    assert_problem(api.post(f"/api/v1/meetings/{meeting_id}/votes",
                            json={"participant_id": ps[3], "agenda_item_id": item_id, "option_id": option,
                                  "choice": "oppose"}), 409, "id")
    decision = api.post("/api/v1/decisions", json={"meeting_id": meeting_id, "agenda_item_id": item_id,
                                                   "responsible": "居委会、长城物业", "budget": "180000",
                                                   "deadline": (clock.now() + timedelta(days=60)).date()
                                                   .isoformat()})
    assert decision.status_code == 201, decision.text
    did = decision.json()["id"]
    # The item says where it went, so a worker can follow a matter to its meeting and decision.
    followed = api.get(f"/api/v1/agenda-items/{item_id}").json()
    assert [(m["id"], m["status"]) for m in followed["meetings"]] == [(meeting_id, "closed")]
    assert followed["decision_id"] == did
    assert_problem(api.post(f"/api/v1/matters/{mid}/settle", json={}), 409, "id")   # not before the decision is done
    task = api.post(f"/api/v1/decisions/{did}/tasks", json={"title": "绿化带改建停车位施工", "responsible": "长城物业",
                                                          "due_on": (clock.now() + timedelta(days=30)).date()
                                                          .isoformat()}).json()["tasks"][0]["id"]
    assert api.post(f"/api/v1/tasks/{task}/progress", json={"progress": 100, "note": "30个车位全部完工"}).status_code == 200
    assert api.post(f"/api/v1/decisions/{did}/publish",
                    json={"summary": "新增停车位30个，夜间停车秩序明显好转。"}).status_code == 200
    rated = api.post(f"/api/v1/matters/{mid}/rate", json={"resident_id": raiser, "score": 5})
    assert rated.status_code == 200 and rated.json()["status"] == "settled", rated.text

    seen = {}

    def events_seen():
        for e in broker.get_all("test.consultation-events"):
            seen[e["type"]] = seen.get(e["type"], 0) + 1
        return dict(seen)

    expected = {e: 1 for e in EVENTS}
    wait_for(lambda: sum(events_seen().values()) >= len(EVENTS), message="the consultation events")
    time.sleep(0.5)  # anything published twice would be on the queue by now
    assert events_seen() == expected, seen
    batches = wait_for(lambda: broker.get_all("test.consultation-facts"), message="the facts")
    signer_key = facts.Signer.from_config(config).public_key
    assert all(facts.verify(b, signer_key) for b in batches)
    fact_types = sorted(f["type"] for b in batches for f in b["facts"])
    assert fact_types == sorted(["matter_raised", "matter_screened", "meeting_scheduled", "meeting_closed",
                                 "decision_made", "result_published", "matter_rated", "matter_settled"])
    text = json.dumps(batches, ensure_ascii=False)
    for personal in ("陈志强", "李桂英", "马警官", "停车难", "消防通道", "resident_id"):
        assert personal not in text, personal

    public = api.get("/api/v1/public/results?under=310110012", headers={"Authorization": ""})
    assert public.status_code == 200, public.text
    shown = json.dumps(public.json(), ensure_ascii=False)
    assert "绿化带改建30个停车位" in shown
    for personal in ("陈志强", "刘秀兰", "李桂英", "赵国庆", "马警官", "周经理", "长城物业", "raiser", "resident_id",
                     "晚上8点后"):
        assert personal not in shown, personal


def test_bad_input_and_scope_are_refused_by_field(api, sql, make_token):
    rid = resident(api, 41, "孙美华", community=C2)
    assert_problem(api.post("/api/v1/matters", json={**PARKING, "category": "flying"}), 422, "category")
    assert_problem(api.post("/api/v1/matters", json={**PARKING, "community_code": "3101100120"}), 422,
                   "community_code")
    assert_problem(api.post("/api/v1/matters", json={**PARKING, "title": " "}), 422, "title")
    assert_problem(api.post("/api/v1/matters", json={**PARKING, "raiser_resident_id": 99999999}), 404,
                   "raiser_resident_id")
    worker = api.as_(make_token("community_worker", C1))
    assert_problem(worker.post("/api/v1/matters", json={**PARKING, "community_code": C2}), 403, "community_code")
    # A resident of another community reads as no resident at all, a matter there as no matter.
    assert_problem(worker.post("/api/v1/matters", json={**PARKING, "raiser_resident_id": rid}), 404,
                   "raiser_resident_id")
    assert sql("SELECT count(*) AS n FROM consultation.matters")[0]["n"] == 0
    mid = api.post("/api/v1/matters", json={**PARKING, "community_code": C2, "raiser_resident_id": rid}).json()["id"]
    assert_problem(api.post(f"/api/v1/matters/{mid}/screen", json={"outcome": "reject"}), 422, "note")
    assert_problem(worker.get(f"/api/v1/matters/{mid}"), 404, "id")
    assert_problem(api.get("/api/v1/meetings/1/tally"), 422, "agenda_item_id")
    meeting = {"community_code": C1, "title": "议事会", "starts_at": "2020-01-01T09:00:00+08:00", "place": "会议室",
               "quorum": 1, "agenda_item_ids": [1], "roster": [{"role": "mayor", "name": "x"}]}
    assert_problem(api.post("/api/v1/meetings", json=meeting), 422, "roster.0.role")
    assert sql("SELECT status, version FROM consultation.matters")[0] == {"status": "raised", "version": 1}


def test_deadlines_are_set_per_category_by_the_street(api, make_token):
    worker = api.as_(make_token("community_worker", C1))
    body = {"category": "noise", "urgency": "urgent", "screening_hours": 12, "settle_days": 10}
    assert_problem(worker.put("/api/v1/consultation/deadlines", json=body), 403, "role")
    assert_problem(api.put("/api/v1/consultation/deadlines", json={**body, "screening_hours": 0}), 422,
                   "screening_hours")
    assert api.put("/api/v1/consultation/deadlines", json=body).status_code == 200
    noise = api.post("/api/v1/matters", json={**PARKING, "category": "noise", "urgency": "urgent",
                                              "title": "广场舞音响扰民", "description": "每晚广场舞音响声音过大。"})
    assert noise.status_code == 201, noise.text
    m = noise.json()
    hours = (datetime.fromisoformat(m["screening_due_at"]) - datetime.fromisoformat(m["raised_at"])).total_seconds()
    assert hours == 12 * 3600


def test_a_reason_for_the_district_naming_a_resident_is_refused_by_asking_the_registry(api, sql):
    resident(api, 41, "周桂兰")
    mid = api.post("/api/v1/matters", json={**PARKING, "confirm_new": True}).json()["id"]
    assert api.post(f"/api/v1/matters/{mid}/screen", json={"outcome": "escalate", "note": "需街道协调"}).status_code == 200
    body = assert_problem(api.post(f"/api/v1/matters/{mid}/screen",
                                   json={"outcome": "escalate", "note": "居民周桂兰多次反映，需区里协调"}), 422, "note")
    assert body["errors"]["note"] == ["contains the name of a resident of this street"] and "周桂兰" not in str(body)
    assert sql("SELECT count(*) AS n FROM consultation.outbox WHERE exchange = 'cases'")[0]["n"] == 0
    up = api.post(f"/api/v1/matters/{mid}/screen", json={"outcome": "escalate", "note": "需区建管委协调道路停车管理"})
    assert up.status_code == 200 and up.json()["level_code"] == C1[:6], up.text
    assert sql("SELECT count(*) AS n FROM consultation.outbox WHERE exchange = 'cases'")[0]["n"] == 1
