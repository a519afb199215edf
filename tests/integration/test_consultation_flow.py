"""Consultation use cases on real PostgreSQL (trigram similarity included), without the services around them.

Real: PostgreSQL, the use cases, the SQL and constraints. Faked: the registry, a dict behind
the RPCs the consultation service asks it (`account_holder`, `account_holders`, scope included); the API
tests cover the real one and the broker.
"""
from datetime import timedelta

import pytest

from services.consultation import decisions, deliberation, figures, matters
from services.consultation.rules import CLOSED
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared import clock

STREET, C1, C2 = "310110012", "310110012001", "310110012002"
WORKER = {"actor": "token:w1:张晓燕", "scope": C1, "role": "community_worker"}
OTHER_WORKER = {"actor": "token:w2:周丽", "scope": C2, "role": "community_worker"}
STREET_ADMIN = {"actor": "token:a1:王建国", "scope": STREET, "role": "street_admin"}
PEOPLE = {i: {"resident_id": i, "name": n, "community_code": C1 if i < 200 else C2, "status": "active"}
          for i, n in [(101, "陈志强"), (102, "刘秀兰"), (103, "李桂英"), (104, "赵国庆"), (105, "孙美华"),
                       (201, "吴建华")]}


def people(resident_id, caller):
    """The registry's answer: one outside the caller's scope is not found, as one not on the register."""
    p = PEOPLE.get(resident_id)
    if p is None or not p["community_code"].startswith(caller["scope"]):
        raise NotFound(f"no resident {resident_id}", {"resident_id": ["no such resident"]})
    return p


def people_of(resident_ids, caller):
    """The registry's batched answer (`account_holders`) from the same dict, scope included."""
    answer = {"holders": {}, "not_found": []}
    for i in sorted(set(resident_ids)):
        p = PEOPLE.get(i)
        if p is None or not p["community_code"].startswith(caller["scope"]):
            answer["not_found"].append(i)
        else:
            answer["holders"][str(i)] = p
    return answer


@pytest.fixture
def tx(in_tx):
    return in_tx("consultation")


@pytest.fixture
def q(schema_sql):
    return schema_sql("consultation")


def now():
    return clock.now()


PARKING = {"community_code": C1, "category": "parking", "channel": "reception_day", "building": "8号楼",
           "title": "小区夜间停车难", "description": "晚上8点后小区内车辆乱停，消防通道被占，希望重新规划停车位。",
           "raiser_resident_id": 101}


def raise_(tx, caller=WORKER, **over):
    return tx(matters.raise_matter, people, {**PARKING, **over}, caller, now())


def test_a_reworded_matter_is_offered_as_a_duplicate_in_its_community_only(tx, q):
    first = raise_(tx)
    with pytest.raises(Conflict) as err:
        raise_(tx, title="停车位太少", description="小区晚上车辆乱停，停车位不足，消防通道常被占用。",
               raiser_resident_id=102)
    assert err.value.fields["similar"] == [str(first["id"])]
    # the same words in another community, or another category, are another matter
    raise_(tx, caller=OTHER_WORKER, community_code=C2, raiser_resident_id=201)
    raise_(tx, category="noise", title="夜间噪音", description="晚上8点后广场舞音响声音太大，影响休息。")
    # a resident backs the open matter instead; the same resident counts once
    tx(matters.back, people, first["id"], {"resident_id": 102}, WORKER, now())
    assert tx(matters.back, people, first["id"], {"resident_id": 102}, WORKER, now())["backers"] == 1
    assert tx(matters.similar, {"community_code": C1, "category": "parking", "text": "停车难，车辆乱停"},
              WORKER)["items"][0]["id"] == first["id"]
    # confirm_new raises it anyway
    assert raise_(tx, raiser_resident_id=103, confirm_new=True)["status"] == "raised"


def test_the_state_machine_refuses_illegal_moves_and_changes_nothing(tx, q):
    m = raise_(tx)
    with pytest.raises(Conflict, match="a raised matter cannot become settled"):
        tx(matters.settle, m["id"], {}, WORKER, now())
    tx(matters.screen, m["id"], {"outcome": "deliberate"}, WORKER, now())
    with pytest.raises(Conflict, match="cannot be settled before its decision"):
        tx(matters.settle, m["id"], {}, WORKER, now())
    with pytest.raises(Conflict, match="a deliberating matter cannot become answered"):
        tx(matters.screen, m["id"], {"outcome": "answer", "note": "已答复"}, WORKER, now())
    with pytest.raises(ValidationFailed) as err:
        tx(matters.screen, m["id"], {"outcome": "reject"}, WORKER, now())
    assert "note" in err.value.fields
    assert q("SELECT status, version FROM matters WHERE id = %s", (m["id"],))[0] == ("deliberating", 2)


def test_escalation_hands_the_matter_to_the_street(tx, q):
    m = raise_(tx, category="facilities_renewal", title="加装电梯资金缺口",
               description="8号楼加装电梯资金缺口较大，超出居委会协调能力。")
    up = tx(matters.screen, m["id"], {"outcome": "escalate", "note": "需街道协调专项资金"}, WORKER, now())
    assert up["status"] == "escalated" and up["level_code"] == STREET
    with pytest.raises(Forbidden):   # the community no longer handles it
        tx(matters.screen, m["id"], {"outcome": "deliberate"}, WORKER, now())
    assert tx(matters.screen, m["id"], {"outcome": "deliberate"}, STREET_ADMIN, now())["status"] == "deliberating"
    kinds = [r[0] for r in q("SELECT routing_key FROM outbox WHERE exchange = 'consultation.events' ORDER BY id")]
    assert kinds == ["matter_raised", "matter_screened", "matter_escalated", "matter_screened"]


def _to_deliberation(tx, n=2):
    ids = []
    for i in range(n):
        m = raise_(tx, raiser_resident_id=101 + i, confirm_new=True)
        tx(matters.screen, m["id"], {"outcome": "deliberate"}, WORKER, now())
        ids.append(m["id"])
    return ids


def _roster():
    return [{"role": "resident_rep", "resident_id": 101, "name": "陈志强"},
            {"role": "party_member", "resident_id": 103, "name": "李桂英"},
            {"role": "building_captain", "resident_id": 104, "name": "赵国庆"},
            {"role": "community_police", "name": "马警官", "affiliation": "长海路派出所"},
            {"role": "property_company", "name": "周经理", "affiliation": "上海长城物业"}]


def _meeting(tx, item_id, quorum=3):
    return tx(deliberation.schedule, people_of, {"community_code": C1, "title": "停车问题协商议事会",
                                              "starts_at": (now() + timedelta(days=2)).isoformat(),
                                              "place": "居委会二楼会议室", "quorum": quorum,
                                              "agenda_item_ids": [item_id], "roster": _roster()}, WORKER, now())


def test_a_meeting_votes_under_its_quorum_and_a_closed_meeting_takes_no_votes(tx, q):
    item = tx(deliberation.create_item, {"community_code": C1, "title": "停车位重新规划",
                                         "matter_ids": _to_deliberation(tx)}, WORKER, now())
    tx(deliberation.add_option, item["id"], {"title": "绿化带改建30个停车位", "budget": "180000"}, WORKER, now())
    options = tx(deliberation.add_option, item["id"], {"title": "错时共享周边单位车位"}, WORKER, now())["options"]
    option_a, option_b = options[0]["id"], options[1]["id"]
    meeting = _meeting(tx, item["id"])
    ps = {p["name"]: p["id"] for p in meeting["roster"]}
    with pytest.raises(Conflict, match="scheduled meeting takes no votes"):
        tx(deliberation.vote, meeting["id"], {"participant_id": ps["陈志强"], "agenda_item_id": item["id"],
                                              "score": 5}, WORKER)
    tx(deliberation.open_meeting, meeting["id"], {"participant_ids": [ps["陈志强"], ps["李桂英"], ps["马警官"],
                                                                      ps["周经理"]]}, WORKER)
    with pytest.raises(ValidationFailed, match="only participants who attended"):
        tx(deliberation.vote, meeting["id"], {"participant_id": ps["赵国庆"], "agenda_item_id": item["id"],
                                              "score": 4}, WORKER)
    for name, choice in [("陈志强", "approve"), ("李桂英", "approve"), ("马警官", "abstain"), ("周经理", "oppose")]:
        tx(deliberation.vote, meeting["id"], {"participant_id": ps[name], "agenda_item_id": item["id"],
                                              "option_id": option_a, "choice": choice}, WORKER)
    # 2 of 4 attendees is not more than half
    t = tx(deliberation.tally, meeting["id"], item["id"], WORKER)
    assert t["adopted_option_id"] is None and "more than half" in t["why_none"]
    tx(deliberation.vote, meeting["id"], {"participant_id": ps["陈志强"], "agenda_item_id": item["id"],
                                          "option_id": option_b, "choice": "approve"}, WORKER)
    with pytest.raises(Conflict, match="already voted"):
        tx(deliberation.vote, meeting["id"], {"participant_id": ps["陈志强"], "agenda_item_id": item["id"],
                                              "option_id": option_b, "choice": "oppose"}, WORKER)
    tx(deliberation.close, meeting["id"], {"minutes": "会议讨论了停车位规划方案，未形成多数意见。"}, WORKER, now())
    with pytest.raises(Conflict, match="closed meeting takes no votes"):
        tx(deliberation.vote, meeting["id"], {"participant_id": ps["李桂英"], "agenda_item_id": item["id"],
                                              "option_id": option_b, "choice": "approve"}, WORKER)
    with pytest.raises(Conflict, match="adopted no option"):
        tx(decisions.decide, {"meeting_id": meeting["id"], "agenda_item_id": item["id"], "responsible": "居委会",
                              "deadline": (clock.today() + timedelta(days=60)).isoformat()}, WORKER, now())


def test_from_raising_to_settlement_with_figures_and_a_public_view_without_personal_data(tx, q):
    ids = _to_deliberation(tx)
    item = tx(deliberation.create_item, {"community_code": C1, "title": "停车位重新规划", "matter_ids": ids},
              WORKER, now())
    option = tx(deliberation.add_option, item["id"], {"title": "绿化带改建30个停车位", "budget": "180000"},
                WORKER, now())["options"][0]["id"]
    meeting = _meeting(tx, item["id"])
    ps = {p["name"]: p["id"] for p in meeting["roster"]}
    tx(deliberation.open_meeting, meeting["id"], {"participant_ids": list(ps.values())}, WORKER)
    for name in ("陈志强", "李桂英", "赵国庆", "马警官"):
        tx(deliberation.vote, meeting["id"], {"participant_id": ps[name], "agenda_item_id": item["id"],
                                              "option_id": option, "choice": "approve"}, WORKER)
        tx(deliberation.vote, meeting["id"], {"participant_id": ps[name], "agenda_item_id": item["id"],
                                              "score": 5}, WORKER)
    tx(deliberation.close, meeting["id"], {"minutes": "五方代表一致同意绿化带改建停车位方案。"}, WORKER, now())
    decision = tx(decisions.decide, {"meeting_id": meeting["id"], "agenda_item_id": item["id"],
                                     "responsible": "居委会、长城物业", "budget": "180000",
                                     "deadline": (clock.today() + timedelta(days=60)).isoformat()}, WORKER, now())
    assert (decision["approve"], decision["attended"]) == (4, 5)
    with pytest.raises(Conflict, match="not carried out"):
        tx(decisions.publish, decision["id"], {"summary": "新增停车位30个"}, WORKER, now())
    decision = tx(decisions.add_task, decision["id"], {"title": "绿化带改建停车位施工", "responsible": "长城物业",
                                                       "due_on": (clock.today() + timedelta(days=30)).isoformat()},
                  WORKER)
    task = decision["tasks"][0]["id"]
    tx(decisions.progress, task, {"progress": 60, "note": "完成15个车位划线"}, WORKER)
    with pytest.raises(ValidationFailed, match="does not go back"):
        tx(decisions.progress, task, {"progress": 40, "note": "x"}, WORKER)
    tx(decisions.progress, task, {"progress": 100, "note": "30个车位全部完工"}, WORKER)
    tx(decisions.publish, decision["id"], {"summary": "新增停车位30个，夜间停车秩序明显好转。"}, WORKER, now())
    assert {r[0] for r in q("SELECT status FROM matters")} == {"published"}
    # the raiser's rating settles their matter; a participant's rating only counts
    assert tx(matters.rate, people, ids[0], {"resident_id": 101, "score": 5}, WORKER, now())["status"] == "settled"
    assert tx(matters.rate, people, ids[1], {"resident_id": 104, "score": 3}, WORKER, now())["status"] == "published"
    with pytest.raises(Conflict, match="already rated"):   # a participant rates the deliberation once
        tx(matters.rate, people, ids[0], {"resident_id": 104, "score": 3}, WORKER, now())
    with pytest.raises(ValidationFailed, match="only the raiser"):
        tx(matters.rate, people, ids[1], {"resident_id": 105, "score": 1}, WORKER, now())
    with pytest.raises(Conflict, match="already rated"):
        tx(matters.rate, people, ids[0], {"resident_id": 101, "score": 4}, WORKER, now())
    tx(matters.settle, ids[1], {"note": "居民反映问题已解决"}, WORKER, now())
    assert {r[0] for r in q("SELECT status FROM matters")} <= set(CLOSED)

    f = tx(figures.figures, {}, STREET_ADMIN, now())
    row = f["rows"][0]
    assert (row["community_code"], row["category"], row["matters"], row["settled"]) == (C1, "parking", 2, 2)
    assert row["settlement_rate"] == 1.0 and row["on_time_rate"] == 1.0 and row["satisfaction_rate"] == 0.5

    public = tx(figures.public_results, {"under": STREET})
    assert len(public["items"]) == 1
    text = str(public)
    for personal in ("陈志强", "李桂英", "赵国庆", "马警官", "周经理", "长城物业", "晚上8点后", "raiser"):
        assert personal not in text, personal
    assert public["items"][0]["vote"] == {"approve": 4, "oppose": 0, "abstain": 0, "attended": 5}
    assert public["items"][0]["progress"] == 100
    assert public["items"][0]["attendance_by_role"]["community_police"] == 1

    kinds = [r[0] for r in q("SELECT routing_key FROM outbox WHERE exchange = 'consultation.events'")]
    for once in ("agenda_item_created", "meeting_scheduled", "meeting_opened", "meeting_closed", "decision_made",
                 "implementation_started", "result_published"):
        assert kinds.count(once) == 1, (once, kinds)
    assert kinds.count("matter_settled") == 2 and kinds.count("matter_raised") == 2
    fact_types = [f["type"] for (b,) in q("SELECT body FROM outbox WHERE exchange = 'facts'") for f in b["facts"]]
    assert fact_types.count("matter_settled") == 2 and fact_types.count("decision_made") == 2
    bodies = str(q("SELECT body FROM outbox WHERE exchange = 'facts'"))
    assert "陈志强" not in bodies and "停车难" not in bodies


def test_a_vote_counts_only_while_its_voter_is_marked_present(tx, q):
    item = tx(deliberation.create_item, {"community_code": C1, "title": "停车位重新规划",
                                         "matter_ids": _to_deliberation(tx)}, WORKER, now())
    option = tx(deliberation.add_option, item["id"], {"title": "错时共享周边单位车位"}, WORKER, now())["options"][0]["id"]
    meeting = _meeting(tx, item["id"], quorum=2)
    ps = {p["name"]: p["id"] for p in meeting["roster"]}
    tx(deliberation.open_meeting, meeting["id"], {"participant_ids": [ps["陈志强"], ps["李桂英"], ps["赵国庆"]]},
       WORKER)
    for name in ("陈志强", "李桂英"):
        tx(deliberation.vote, meeting["id"], {"participant_id": ps[name], "agenda_item_id": item["id"],
                                              "option_id": option, "choice": "approve"}, WORKER)
    assert tx(deliberation.tally, meeting["id"], item["id"], WORKER)["adopted_option_id"] == option
    # 陈志强 was marked present by mistake: corrected, his vote no longer counts (1 of 2 is not a majority)
    tx(deliberation.open_meeting, meeting["id"], {"participant_ids": [ps["李桂英"], ps["赵国庆"]]}, WORKER)
    t = tx(deliberation.tally, meeting["id"], item["id"], WORKER)
    assert (t["attended"], t["adopted_option_id"], t["options"][0]["approve"]) == (2, None, 1)
    kinds = [r[0] for r in q("SELECT routing_key FROM outbox WHERE exchange = 'consultation.events'")]
    assert kinds.count("meeting_opened") == 1 and kinds.count("meeting_attendance_corrected") == 1


def test_merging_moves_every_backer_and_deliberation_without_a_decision_can_end(tx, q):
    a = raise_(tx)
    b = raise_(tx, raiser_resident_id=102, confirm_new=True)
    assert b["similar_to"] == a["id"]                       # raised anyway: counted as a repeat
    for rid in (103, 104):
        tx(matters.back, people, b["id"], {"resident_id": rid}, WORKER, now())
    tx(matters.back, people, a["id"], {"resident_id": 103}, WORKER, now())
    merged = tx(matters.screen, b["id"], {"outcome": "merge", "duplicate_of": a["id"]}, WORKER, now())
    assert merged["status"] == "merged"
    # 103 backed both (counted once), 104 and b's raiser 102 join: 1 + 2
    assert tx(matters.get, a["id"], WORKER, now())["backers"] == 3
    assert tx(figures.figures, {}, WORKER, now())["total"]["repeat_matters"] == 1
    # deliberation that adopts nothing ends with a reason, and the matter leaves its agenda item
    tx(matters.screen, a["id"], {"outcome": "deliberate"}, WORKER, now())
    item = tx(deliberation.create_item, {"community_code": C1, "title": "停车", "matter_ids": [a["id"]]}, WORKER, now())
    ended = tx(matters.screen, a["id"], {"outcome": "refer", "referred_to": "区交警支队"}, WORKER, now())
    assert ended["status"] == "referred" and ended["agenda_item_id"] is None
    assert tx(deliberation.item, item["id"], WORKER, now())["matters"] == []


def test_a_roster_names_every_resident_in_the_wrong_under_their_own_field(tx, q):
    item = tx(deliberation.create_item, {"community_code": C1, "title": "停车位重新规划",
                                         "matter_ids": _to_deliberation(tx, 1)}, WORKER, now())
    roster = _roster() + [{"role": "resident_rep", "resident_id": 999, "name": "查无此人"},
                          {"role": "resident_rep", "resident_id": 201, "name": "吴建华"}]
    body = {"community_code": C1, "title": "停车问题协商议事会", "starts_at": (now() + timedelta(days=2)).isoformat(),
            "place": "居委会二楼会议室", "quorum": 2, "agenda_item_ids": [item["id"]], "roster": roster}
    with pytest.raises(NotFound) as err:   # one of another community reads as one not on the register
        tx(deliberation.schedule, people_of, body, WORKER, now())
    assert err.value.fields == {"roster.5.resident_id": ["no resident 999"],
                                "roster.6.resident_id": ["no resident 201"]}
    with pytest.raises(NotFound):
        tx(deliberation.schedule, people_of, {**body, "roster": _roster() + roster[-1:]}, WORKER, now())
    PEOPLE[106] = {"resident_id": 106, "name": "钱玉兰", "community_code": C1, "status": "deceased"}
    try:
        with pytest.raises(ValidationFailed) as err:
            tx(deliberation.schedule, people_of, {**body, "roster": [{"role": "resident_rep", "resident_id": 106,
                                                                     "name": "钱玉兰"}], "quorum": 1}, WORKER, now())
    finally:
        del PEOPLE[106]
    assert err.value.fields == {"roster.0.resident_id": ["resident 106 is deceased"]}
    assert q("SELECT count(*) FROM meetings")[0][0] == 0


def test_retries_record_nothing_twice(tx, q):
    item = tx(deliberation.create_item, {"community_code": C1, "title": "停车位重新规划",
                                         "matter_ids": _to_deliberation(tx, 1)}, WORKER, now())
    body = {"request_id": "mtg-2026-11-01", "community_code": C1, "title": "停车问题协商议事会",
            "starts_at": (now() + timedelta(days=2)).isoformat(), "place": "居委会二楼会议室", "quorum": 2,
            "agenda_item_ids": [item["id"]], "roster": _roster()}
    first = tx(deliberation.schedule, people_of, body, WORKER, now())
    again = tx(deliberation.schedule, people_of, body, WORKER, now())
    assert again["id"] == first["id"] and again["replayed"] is True
    assert q("SELECT count(*) FROM meetings")[0][0] == 1 and q("SELECT count(*) FROM participants")[0][0] == 5
    with pytest.raises(ValidationFailed, match="too far ahead"):
        tx(deliberation.schedule, people_of, {**body, "request_id": "x", "starts_at": "9999-12-31T23:00:00-12:00"},
           WORKER, now())


def test_an_escalated_matter_is_the_streets_to_deliberate_not_the_communitys(tx):
    m = raise_(tx)
    tx(matters.screen, m["id"], {"outcome": "escalate", "note": "需街道协调"}, WORKER, now())
    assert tx(matters.get, m["id"], WORKER, now())["screening_overdue"] is False
    tx(matters.screen, m["id"], {"outcome": "deliberate"}, STREET_ADMIN, now())
    with pytest.raises(ValidationFailed) as err:
        tx(deliberation.create_item, {"community_code": C1, "title": "停车", "matter_ids": [m["id"]]}, WORKER, now())
    assert "handled by 310110012" in str(err.value.fields)
    assert tx(deliberation.create_item, {"community_code": C1, "title": "停车", "matter_ids": [m["id"]]},
              STREET_ADMIN, now())["matters"][0]["id"] == m["id"]
    with pytest.raises(ValidationFailed) as err:   # another community's matter reads as missing
        tx(deliberation.create_item, {"community_code": C2, "title": "x", "matter_ids": [m["id"]]}, OTHER_WORKER,
           now())
    assert err.value.fields == {"matter_ids.0": [f"no such matter {m['id']}"]}


@pytest.fixture
def registry_names(in_tx, cfg):
    """The real registry (its `names_in` use case on the test database) with one resident, 陈志强, of C1."""
    from linli.demo import load_hierarchy
    from services.registry import holders, residents
    from services.registry.identity import check_character
    from shared.protect import Vault
    rtx = in_tx("registry")
    rtx(load_hierarchy, STREET)
    first17 = "31011019580312031"
    rtx(residents.register, Vault.from_config(cfg), {
        "name": "陈志强", "id_number": first17 + check_character(first17), "community_code": C1,
        "residence_type": "registered"}, STREET_ADMIN)
    return lambda text, street: rtx(holders.names_in, text, street)["found"]


@pytest.mark.parametrize("note, found", [
    ("请区里协调，联系人身份证号31011019580312031X", "contains an ID number"),
    ("老户籍证件310110580312031仍在使用", "contains an ID number"),                        # the 15-digit form
    ("居民电话 139 1627-5318，请区里回电", "contains a phone number"),
    ("可打 +86 13916275318 联系", "contains a phone number"),
    ("联系电话０２１－６５０１２３４５", "contains a phone number"),                          # full-width landline
    ("问题出在3号楼2单元501室，需区里协调", "contains an address down to the room"),
    ("501室漏水影响楼下，需区建管委协调", "contains an address down to the room"),
    ("居民陈志强多次反映，需区里协调", "contains the name of a resident of this street"),
    ("居民陈\u200b志 强多次反映", "contains the name of a resident of this street"),        # hidden, spaced
])
def test_a_reason_for_the_district_carrying_anything_personal_is_refused_and_nothing_goes_up(tx, q, registry_names,
                                                                                          note, found):
    m = raise_(tx)
    tx(matters.screen, m["id"], {"outcome": "escalate", "note": "需街道协调"}, WORKER, now())
    with pytest.raises(ValidationFailed) as err:
        tx(matters.screen, m["id"], {"outcome": "escalate", "note": note}, STREET_ADMIN, now(), registry_names)
    assert err.value.fields == {"note": [found]}
    assert not any(part in str(err.value.fields) + err.value.message
                   for part in ("陈志强", "1391627", "31011019580312", "501"))   # what was found is not repeated
    assert q("SELECT status, level_code FROM matters WHERE id = %s", (m["id"],))[0] == ("escalated", STREET)
    assert q("SELECT count(*) FROM outbox WHERE exchange = 'cases'")[0][0] == 0


def test_a_clean_reason_goes_up_to_the_district_as_written(tx, q, registry_names):
    m = raise_(tx)
    tx(matters.screen, m["id"], {"outcome": "escalate", "note": "需街道协调"}, WORKER, now())
    note = "涉及市政道路，8号楼前停车位规划需区建管委协调，2024-05-01起已接到12户反映，预算180000元，2室1厅户型为主"
    up = tx(matters.screen, m["id"], {"outcome": "escalate", "note": note}, STREET_ADMIN, now(), registry_names)
    assert up["status"] == "escalated" and up["level_code"] == STREET[:6]
    [(body,)] = q("SELECT body FROM outbox WHERE exchange = 'cases'")
    assert body["case"]["reason"] == note
