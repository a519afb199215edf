"""No existence oracle: a record outside the token's scope answers exactly as an id that never existed.

A worker of one community asks, by id, for every kind of record another community holds (residents,
households, party members, organisations, workers, matters, agenda items, meetings, decisions, tasks,
points accounts, service records, redemptions, broadcasts, notices, subscribers), and names residents
and accounts of that community inside request bodies. Each answer must be the answer for an id that
was never used: same status, same title, same detail and field messages once the id itself is blanked
out. Were they different (a 403 "lies outside this token's scope" against a 404), the worker would
learn which ids exist across the street. A request id first used outside the scope answers a 409
that names no record.

Real: every service of the instance in this test's vhost behind the HTTP gateway (the `api` fixture),
on the test database; the records are made over the API by a street admin, as a street would.
"""
import json
import re
from datetime import timedelta

import pytest

from services.registry.identity import check_character
from shared import clock
from tests.integration.conftest import assert_problem, wait_for

C1, C2 = "310110012001", "310110012002"
NEVER = 987654321   # an id no sequence of the test database reaches
P = "/api/v1/points"
TODAY = clock.today().isoformat()


def _id_number(seq):
    first17 = "310110" + "19660418" + f"{seq:03d}"
    return first17 + check_character(first17)


def _ok(resp, status=(200, 201)):
    assert resp.status_code in ((status,) if isinstance(status, int) else status), resp.text
    return resp.json()


def _resident(api, seq, community):
    return _ok(api.post("/api/v1/residents", json={
        "name": "王秀英" if community == C2 else "李建国", "id_number": _id_number(seq), "phone": f"139{seq:08d}",
        "community_code": community, "residence_type": "registered", "building": "3号", "unit": "1单元",
        "room": f"{100 + seq}", "relation": "self"}))


def _served():
    now = clock.now()
    return max(now - timedelta(hours=2), now.replace(hour=0, minute=0, second=0, microsecond=0)).isoformat()


@pytest.fixture
def street(api, make_token, sql):
    """One record of every kind in community C2, made by the street; the few C1 ones the probes name."""
    there = _resident(api, 11, C2)
    here = _resident(api, 12, C1)
    ids = {"resident": there["id"], "household": there["household"]["id"], "here": here["id"]}
    _ok(api.post("/api/v1/party-members", json={"resident_id": there["id"], "category": "on_the_job",
                                                "membership_org": "上海电气集团党委", "joined_party": "1996-07-01"}))
    ids["organization"] = _ok(api.post("/api/v1/organizations", json={
        "name": "长海二村平安巡逻队", "category": "volunteer_team", "subcategory": "security_patrol",
        "community_code": C2, "leader_resident_id": there["id"], "activities": ["public_safety"],
        "founded_on": "2019-05-04"}))["id"]
    ids["own_organization"] = _ok(api.post("/api/v1/organizations", json={
        "name": "长海一村平安巡逻队", "category": "volunteer_team", "subcategory": "security_patrol",
        "community_code": C1, "leader_resident_id": here["id"], "activities": ["public_safety"],
        "founded_on": "2019-05-04"}))["id"]
    ids["worker"] = _ok(api.post("/api/v1/workers", json={
        "name": "陈志明", "id_number": _id_number(31), "phone": "13916275318", "role": "member",
        "community_code": C2, "origin": "recruited", "started_on": "2022-03-01"}))["id"]

    # -- consultation: a matter taken to a decision with a task, all in C2 --
    matter = _ok(api.post("/api/v1/matters", json={
        "community_code": C2, "category": "parking", "channel": "reception_day", "building": "8号楼",
        "title": "小区夜间停车难", "description": "晚上8点后车辆乱停，消防通道被占。", "request_id": "c2-matter-1"}))
    ids["matter"] = matter["id"]
    _ok(api.post(f"/api/v1/matters/{matter['id']}/screen", json={"outcome": "deliberate"}))
    item = _ok(api.post("/api/v1/agenda-items", json={"community_code": C2, "title": "停车位重新规划",
                                                      "matter_ids": [matter["id"]]}))
    ids["agenda_item"] = item["id"]
    option = _ok(api.post(f"/api/v1/agenda-items/{item['id']}/options", json={"title": "改建停车位"}))["options"][0]
    meeting = _ok(api.post("/api/v1/meetings", json={
        "community_code": C2, "title": "停车问题议事会", "starts_at": (clock.now() + timedelta(hours=1)).isoformat(),
        "place": "居委会会议室", "quorum": 1, "agenda_item_ids": [item["id"]], "request_id": "c2-meeting-1",
        "roster": [{"role": "community_police", "name": "马警官", "affiliation": "长海路派出所"}]}))
    ids["meeting"] = meeting["id"]
    participant = meeting["roster"][0]["id"]
    _ok(api.post(f"/api/v1/meetings/{meeting['id']}/open", json={"participant_ids": [participant]}))
    _ok(api.post(f"/api/v1/meetings/{meeting['id']}/votes", json={
        "participant_id": participant, "agenda_item_id": item["id"], "option_id": option["id"], "choice": "approve"}))
    _ok(api.post(f"/api/v1/meetings/{meeting['id']}/close", json={"minutes": "同意改建。"}))
    decision = _ok(api.post("/api/v1/decisions", json={
        "meeting_id": meeting["id"], "agenda_item_id": item["id"], "responsible": "居委会",
        "deadline": (clock.now() + timedelta(days=60)).date().isoformat()}))
    ids["decision"] = decision["id"]
    ids["task"] = _ok(api.post(f"/api/v1/decisions/{decision['id']}/tasks", json={
        "title": "施工", "responsible": "物业", "due_on": (clock.now() + timedelta(days=30)).date().isoformat()}))[
        "tasks"][0]["id"]

    # -- points: an account, a verified record, a reward and a pending redemption in C2 --
    _ok(api.post(f"{P}/categories", json={"code": "security_patrol", "name": "平安巡逻", "unit": "hour",
                                          "points_per_unit": 10, "verifier_roles": ["community_worker"]}))
    ids["account"] = _ok(api.post(f"{P}/accounts", json={"resident_id": there["id"]}))["id"]
    record = _ok(api.post(f"{P}/records", json={
        "resident_id": there["id"], "category_code": "security_patrol", "served_at": _served(), "hours": "2",
        "description": "晚间巡逻", "request_id": "c2-record-1"}))
    ids["record"] = record["id"]
    _ok(api.as_(make_token("community_worker", C2)).post(f"{P}/records/{record['id']}/verify", json={}))
    ids["reward"] = _ok(api.post(f"{P}/rewards", json={"name": "环保购物袋", "kind": "material", "points_cost": 5,
                                                       "stock": 5}))["id"]
    ids["redemption"] = _ok(api.post(f"{P}/redemptions", json={
        "account_id": ids["account"], "reward_id": ids["reward"], "request_id": "c2-redemption-1"}))["id"]

    # -- notification: a broadcast and a notice for C2; the resident is a subscriber once the event is in --
    ids["broadcast"] = _ok(api.post("/api/v1/broadcasts", json={
        "prefix": C2, "title": "停水通知", "message": "明日9点至12点停水。", "channels": ["inbox"]}))["id"]
    ids["notice"] = _ok(api.post("/api/v1/notices", json={
        "prefix": C2, "title": "社区义诊", "message": "周六上午义诊。", "channels": ["inbox"],
        "request_id": "c2-notice-1"}))["id"]
    wait_for(lambda: sql("SELECT 1 FROM notification.subscribers WHERE resident_id = %s", (there["id"],)),
             message="the resident to become a subscriber")
    return ids


# (kind of the id, method, path, body): `{id}` is the id probed, in the path or in the body.
PROBES = [
    ("resident", "GET", "/api/v1/residents/{id}", None),
    ("resident", "PATCH", "/api/v1/residents/{id}", {"name": "王秀英"}),
    ("resident", "POST", "/api/v1/residents/{id}/death", {"date_of_death": "2024-01-01"}),
    ("resident", "POST", "/api/v1/residents/{id}/departure", {"effective": "2024-01-01"}),
    ("household", "GET", "/api/v1/households/{id}", None),
    ("resident", "GET", "/api/v1/party-members/{id}", None),
    ("resident", "POST", "/api/v1/party-members/{id}/report", {"reported_on": TODAY, "posts": ["volunteer"]}),
    ("resident", "POST", "/api/v1/party-members/{id}/withdraw", {"effective": TODAY, "reason": "迁出"}),
    ("organization", "GET", "/api/v1/organizations/{id}", None),
    ("organization", "PATCH", "/api/v1/organizations/{id}", {"name": "改名"}),
    ("organization", "POST", "/api/v1/organizations/{id}/status", {"status": "dissolved"}),
    ("organization", "POST", "/api/v1/organizations/{id}/projects",
     {"name": "长者助餐", "funder": "街道", "budget": 100, "starts_on": "2025-01-01", "ends_on": "2025-12-31"}),
    ("worker", "GET", "/api/v1/workers/{id}", None),
    ("worker", "POST", "/api/v1/workers/{id}/leave", {"left_on": TODAY, "reason": "resigned"}),
    ("matter", "GET", "/api/v1/matters/{id}", None),
    ("matter", "POST", "/api/v1/matters/{id}/screen", {"outcome": "reject", "note": "不属实"}),
    ("matter", "POST", "/api/v1/matters/{id}/settle", {}),
    ("agenda_item", "GET", "/api/v1/agenda-items/{id}", None),
    ("agenda_item", "POST", "/api/v1/agenda-items/{id}/options", {"title": "另一方案"}),
    ("meeting", "GET", "/api/v1/meetings/{id}", None),
    ("meeting", "POST", "/api/v1/meetings/{id}/cancel", {"reason": "台风"}),
    ("meeting", "POST", "/api/v1/meetings/{id}/close", {"minutes": "纪要"}),
    ("decision", "GET", "/api/v1/decisions/{id}", None),
    ("decision", "POST", "/api/v1/decisions/{id}/publish", {"summary": "已完成"}),
    ("task", "POST", "/api/v1/tasks/{id}/progress", {"progress": 50, "note": "进行中"}),
    ("account", "GET", P + "/accounts/{id}", None),
    ("account", "GET", P + "/accounts/{id}/statement", None),
    ("record", "GET", P + "/records/{id}", None),
    ("record", "POST", P + "/records/{id}/verify", {}),
    ("record", "POST", P + "/records/{id}/void", {"reason": "重复"}),
    ("record", "POST", P + "/records/{id}/reverse", {"reason": "有误"}),
    ("redemption", "GET", P + "/redemptions/{id}", None),
    ("redemption", "POST", P + "/redemptions/{id}/fulfil", {}),
    ("redemption", "POST", P + "/redemptions/{id}/cancel", {"reason": "不要了"}),
    ("broadcast", "GET", "/api/v1/broadcasts/{id}", None),
    ("broadcast", "POST", "/api/v1/broadcasts/{id}/submit", None),
    ("broadcast", "GET", "/api/v1/broadcasts/{id}/deliveries", None),
    ("notice", "GET", "/api/v1/notices/{id}", None),
    ("resident", "GET", "/api/v1/subscribers/{id}", None),
    ("resident", "GET", "/api/v1/subscribers/{id}/inbox", None),
    # Ids named in a body: a resident or an account of another community is not there either.
    ("record", "POST", P + "/records/verify", {"record_ids": ["{id}"]}),
    ("resident", "POST", "/api/v1/organizations/{own_organization}/members", {"resident_id": "{id}"}),
    ("resident", "POST", "/api/v1/party-members", {"resident_id": "{id}", "category": "on_the_job",
                                                   "membership_org": "上海电气集团党委", "joined_party": "1996-07-01"}),
    ("resident", "POST", P + "/accounts", {"resident_id": "{id}"}),
    ("resident", "POST", P + "/records", {"resident_id": "{id}", "category_code": "security_patrol",
                                          "served_at": "{served}", "hours": "1", "description": "巡逻"}),
    ("resident", "POST", "/api/v1/matters", {"community_code": C1, "category": "parking", "channel": "reception_day",
                                             "title": "停车难", "description": "车辆乱停。", "raiser_resident_id": "{id}"}),
    ("account", "POST", P + "/redemptions", {"account_id": "{id}", "reward_id": "{reward}"}),
]


def _fill(value, ids, probed):
    """The probe's path or body with `{id}` the id probed and `{name}` the street's record of that name."""
    if isinstance(value, dict):
        return {k: _fill(v, ids, probed) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids, probed) for v in value]
    if value == "{id}":
        return probed
    if value == "{served}":
        return _served()
    if isinstance(value, str) and re.fullmatch(r"\{\w+\}", value):
        return ids[value[1:-1]]
    if isinstance(value, str):
        return value.format(id=probed, **ids)
    return value


def _answer(resp, probed):
    """Status and problem body, the probed id blanked out and the request's own correlation id left out."""
    body = {k: v for k, v in resp.json().items() if k != "correlation_id"}
    return resp.status_code, re.sub(rf"(?<!\d){probed}(?!\d)", "<id>", json.dumps(body, ensure_ascii=False))


def test_a_record_outside_the_scope_answers_as_one_that_never_existed(api, make_token, street):
    worker = api.as_(make_token("street_admin", C1, name="一村的人"))   # every right, over C1 only
    differ, not_refused = [], []
    for kind, method, path, body in PROBES:
        answers = []
        for probed in (street[kind], NEVER):
            kwargs = {} if body is None else {"json": _fill(body, street, probed)}
            answers.append(_answer(getattr(worker, method.lower())(_fill(path, street, probed), **kwargs), probed))
        outside, never = answers
        if outside != never:
            differ.append(f"{method} {path}: {outside} != {never}")
        elif outside[0] not in (404, 422):
            not_refused.append(f"{method} {path}: {outside}")
    assert differ == [], "\n".join(differ)
    assert not_refused == [], "\n".join(not_refused)


def test_a_request_id_first_used_outside_the_scope_is_a_conflict_naming_no_record(api, make_token, street):
    worker = api.as_(make_token("street_admin", C1, name="一村的人"))
    replays = [
        ("/api/v1/matters", {"community_code": C1, "category": "parking", "channel": "reception_day",
                             "title": "小区夜间停车难", "description": "车辆乱停。", "request_id": "c2-matter-1"}),
        ("/api/v1/meetings", {"community_code": C1, "title": "议事会", "place": "会议室", "quorum": 1,
                              "starts_at": (clock.now() + timedelta(hours=1)).isoformat(), "agenda_item_ids": [1],
                              "roster": [{"role": "community_police", "name": "马警官"}],
                              "request_id": "c2-meeting-1"}),
        (P + "/records", {"resident_id": street["here"], "category_code": "security_patrol", "served_at": _served(),
                          "hours": "2", "description": "晚间巡逻", "request_id": "c2-record-1"}),
    ]
    for path, body in replays:
        problem = assert_problem(worker.post(path, json=body), 409, "request_id")
        assert problem["errors"] == {"request_id": ["already used"]}, (path, problem)
    own_account = _ok(worker.post(f"{P}/accounts", json={"resident_id": street["here"]}))["id"]
    problem = assert_problem(worker.post(f"{P}/redemptions", json={
        "account_id": own_account, "reward_id": street["reward"], "request_id": "c2-redemption-1"}), 409, "request_id")
    assert problem["errors"] == {"request_id": ["already used"]}
