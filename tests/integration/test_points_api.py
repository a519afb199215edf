"""Service points over the real HTTP API, with the registry, points and gateway services running on
real PostgreSQL and RabbitMQ.

What must hold: a party member's report opens their account through the registry's event; a logged
record verified by a community worker posts once, shows on the statement with its running balance,
and goes out as a `points_posted` event and a signed fact with no name in it; bad input is a
field-level 422 that changes nothing; another community's token is refused; an organisation's
leader verifies only what the category allows; a resident leaving the street freezes the account and
sends the balance after them, signed; a handover published twice to the broker credits once. After
every test the ledger balances.
"""
import json
import threading
from datetime import timedelta

import psycopg
import pytest
from kombu import Connection, Exchange, Queue
from psycopg.rows import dict_row

from services.points.store import TRIAL_BALANCE
from services.registry.identity import check_character
from shared.protect import Vault
from shared import facts
from shared.messaging import FACTS, HANDOVERS, events_exchange
from shared import clock
from tests.conftest import publish_confirmed
from tests.integration.conftest import assert_problem, wait_for

COMMUNITY, OTHER = "310110012001", "310110012002"
PEER_STREET = "310110013"
PEER = facts.Signer("cGVlci1zdHJlZXQtMzEwMTEwMDEzLXNpZ25rZXkhISE=")
P = "/api/v1/points"


@pytest.fixture
def config(config):
    """The instance trusts one neighbouring street's handovers."""
    return {**config, "PEER_KEYS": {PEER_STREET: PEER.public_key}}


@pytest.fixture
def taps(config):
    """Queues on the points service's events, the facts and the handovers, declared before anything is sent."""
    with Connection(config["AMQP_URI"]) as conn:
        ch = conn.default_channel
        for event in ("points_posted", "points_account_opened", "points_account_frozen", "points_balance_received"):
            Queue("test.points-events", exchange=events_exchange("points"), routing_key=event,
                  durable=True)(ch).declare()
        Queue("test.points-facts", exchange=FACTS, routing_key="points.#", durable=True)(ch).declare()
        Queue("test.handovers", exchange=HANDOVERS, routing_key="#", durable=True)(ch).declare()


@pytest.fixture(autouse=True)
def ledger_balances(config):
    yield
    with psycopg.connect(config["DATABASE_URL"], row_factory=dict_row) as conn:
        conn.execute("SET search_path TO points")
        tb = conn.execute(TRIAL_BALANCE).fetchone()
    assert tb == {"entries_sum": 0, "balances_sum": 0, "unbalanced_transfers": 0, "drifted_accounts": 0}, tb


def id_number(seq, birth="19680521"):
    first17 = "310110" + birth + seq
    return first17 + check_character(first17)


def resident(api, seq, community=COMMUNITY, name="陈志强"):
    body = {"name": name, "id_number": id_number(f"{seq:03d}"), "community_code": community,
            "residence_type": "registered", "building": "8号", "unit": "2单元", "room": f"{300 + seq}",
            "relation": "self"}
    resp = api.post("/api/v1/residents", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


@pytest.fixture
def categories(api):
    for body in ({"code": "security_patrol", "name": "平安巡逻", "unit": "hour", "points_per_unit": 10,
                  "daily_cap": 40, "verifier_roles": ["community_worker"]},
                 {"code": "elderly_visit", "name": "探访独居老人", "unit": "occasion", "points_per_unit": 5,
                  "verifier_roles": ["community_worker", "organization_leader"]}):
        resp = api.post(f"{P}/categories", json=body)
        assert resp.status_code == 201, resp.text


def served(days_ago=0, hour=9):
    now = clock.now()
    at = now.replace(hour=hour, minute=0, second=0, microsecond=0) - timedelta(days=days_ago)
    # Never in the future, never on another day (just after midnight, a minute ago was yesterday).
    return max(min(at, now - timedelta(minutes=1)),
               now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days_ago)).isoformat()


def log(api, resident_id, category="security_patrol", hours="2", **extra):
    body = {"resident_id": resident_id, "category_code": category, "served_at": served(), "hours": hours,
            "description": "晚间小区巡逻，劝导电动车不进楼道", **extra}
    return api.post(f"{P}/records", json=body)


def test_a_report_opens_an_account_and_a_verified_record_posts_once(api, config, sql, taps, categories, make_token,
                                                                   broker):
    rid = resident(api, 11)
    assert api.post("/api/v1/party-members", json={"resident_id": rid, "category": "on_the_job",
                                                   "membership_org": "上海电气集团党委",
                                                   "joined_party": "1995-07-01"}).status_code == 201
    assert api.post(f"/api/v1/party-members/{rid}/report",
                    json={"reported_on": clock.now().date().isoformat(),
                          "posts": ["security_patrol"]}).status_code == 200
    account = wait_for(lambda: sql("SELECT id, member_category FROM points.accounts WHERE resident_id = %s",
                                   (rid,)), message="the report to open an account")[0]
    assert account["member_category"] == "party_member"

    record = log(api, rid, hours="2.5")
    assert record.status_code == 201, record.text
    record_id = record.json()["id"]
    worker = api.as_(make_token("community_worker", COMMUNITY, "张晓燕"))
    first = worker.post(f"{P}/records/{record_id}/verify", json={})
    again = worker.post(f"{P}/records/{record_id}/verify", json={})
    assert first.status_code == 200 and first.json()["points"] == 25, first.text
    assert again.status_code == 200 and again.json()["replayed"] is True
    statement = api.get(f"{P}/accounts/{account['id']}/statement").json()
    assert [(x["kind"], x["change"], x["balance_after"], x["service_record_id"]) for x in statement["lines"]] == [
        ("posting", 25, 25, record_id)]
    assert statement["account"]["verified_hours"] == "2.50"
    listed = api.get(f"{P}/accounts?under={COMMUNITY}").json()["items"]
    assert [(a["id"], a["balance"], a["verified_hours"], a["held"]) for a in listed] == [(account["id"], 25, "2.50", 0)]

    events = wait_for(lambda: [e for e in broker.get_all("test.points-events") if e["type"] == "points_posted"],
                      message="points_posted")
    assert len(events) == 1 and events[0]["payload"]["points"] == 25
    batch = wait_for(lambda: broker.get_all("test.points-facts"), message="the facts batch")[0]
    assert facts.verify(batch, facts.Signer.from_config(config).public_key)
    assert batch["facts"][0]["dims"] == {"category": "security_patrol", "points": 25, "hours": 2.5,
                                         "member_category": "party_member"}
    assert "陈志强" not in json.dumps(batch, ensure_ascii=False)


def test_bad_input_is_refused_by_field_and_changes_nothing(api, sql, categories, make_token):
    rid = resident(api, 12)
    assert_problem(log(api, rid, hours="30"), 422, "hours")
    assert_problem(log(api, rid, category="flying"), 422, "category_code")
    assert_problem(log(api, 999999), 404, "resident_id")
    assert_problem(api.post(f"{P}/records", json={"category_code": "security_patrol"}), 422, "served_at")
    assert_problem(api.post(f"{P}/records/verify", json={"record_ids": ["x"]}), 422, "record_ids")
    assert_problem(api.post(f"{P}/categories", json={"code": "security_patrol", "name": "重复", "unit": "hour",
                                                     "points_per_unit": 1, "verifier_roles": ["community_worker"]}),
                   409, "code")
    assert_problem(api.post(f"{P}/rewards", json={"name": "纪念品", "kind": "cash", "points_cost": 0}), 422, "kind")
    assert sql("SELECT count(*) AS n FROM points.service_records")[0]["n"] == 0
    other = api.as_(make_token("community_worker", OTHER))
    record_id = log(api, rid).json()["id"]
    assert_problem(other.post(f"{P}/records/{record_id}/verify", json={}), 404, "id")  # as a missing record: no oracle
    assert_problem(other.post(f"{P}/categories", json={}), 403, "role")
    assert sql("SELECT status FROM points.service_records")[0]["status"] == "pending"


def test_an_organisation_leader_verifies_only_what_the_category_allows(api, make_token, categories, sql):
    leader_id, member_id = resident(api, 13, name="李桂英"), resident(api, 14, name="刘秀兰")
    org = api.post("/api/v1/organizations", json={"name": "长海一村平安志愿服务队", "category": "volunteer_team",
                                                  "community_code": COMMUNITY, "leader_resident_id": leader_id,
                                                  "founded_on": "2020-03-05", "status": "active"})
    assert org.status_code == 201, org.text
    org_id = org.json()["id"]
    leader = api.as_(make_token("organization_leader", COMMUNITY, "李桂英", organization_id=org_id))
    visit = {"resident_id": member_id, "category_code": "elderly_visit", "organization_id": org_id,
             "served_at": served(), "hours": "1", "description": "探访8号楼独居老人张阿婆"}
    assert_problem(leader.post(f"{P}/records", json=visit), 422, "resident_id")      # not a member yet
    assert api.post(f"/api/v1/organizations/{org_id}/members", json={"resident_id": member_id}).status_code == 201
    own = leader.post(f"{P}/records", json=visit)
    assert own.status_code == 201, own.text
    assert_problem(leader.post(f"{P}/records/{own.json()['id']}/verify", json={}), 403, "id")  # not their own
    logged = api.post(f"{P}/records", json=visit).json()["id"]                                 # a worker logged it
    assert leader.post(f"{P}/records/{logged}/verify", json={}).json()["points"] == 5
    patrol = log(api, member_id, organization_id=org_id).json()["id"]
    assert_problem(leader.post(f"{P}/records/{patrol}/verify", json={}), 403, "id")
    assert_problem(leader.get(f"{P}/accounts"), 403, "role")
    assert_problem(leader.post(f"{P}/records", json={"resident_id": member_id, "category_code": "elderly_visit",
                                                     "organization_id": org_id + 1, "served_at": served(),
                                                     "hours": "1", "description": "x"}), 422, "organization_id")


def test_leaving_the_street_freezes_the_account_and_sends_the_balance_signed(api, config, sql, taps, categories,
                                                                            broker):
    rid = resident(api, 15)
    record_id = log(api, rid, hours="3").json()["id"]
    assert api.post(f"{P}/records/{record_id}/verify", json={}).json()["points"] == 30
    left = api.post(f"/api/v1/residents/{rid}/departure", json={"effective": clock.now().date().isoformat(),
                                                               "destination": "杨浦区殷行街道"})
    assert left.status_code == 200, left.text
    message = wait_for(lambda: broker.get_all("test.handovers"), message="the handover message")[0]
    assert message["amount"] == 30 and message["from_street"] == config["NODE_CODE"]
    assert message["person_key"] == Vault.from_config(config).handover(id_number("015")).hex()
    assert facts.verify(message, facts.Signer.from_config(config).public_key)
    account = sql("SELECT status, balance FROM points.accounts WHERE resident_id = %s", (rid,))[0]
    assert account == {"status": "frozen", "balance": 0}
    assert_problem(log(api, rid), 409, "resident_id")   # the account is frozen


def test_a_handover_published_twice_credits_once(api, config, sql, taps, broker):
    rid = resident(api, 16, name="赵国庆")
    key = Vault.from_config(config).handover(id_number("016")).hex()
    message = PEER.sign({"v": 1, "transfer_id": f"{PEER_STREET}:emigration:42", "person_key": key,
                         "from_street": PEER_STREET, "amount": 80, "hours": "310.00"})
    forged = {**message, "amount": 8000}
    publish_confirmed(config["AMQP_URI"], Exchange(HANDOVERS.name, type="topic"), "points.balance_handed_over",
                      message, message, forged, serializer="json")
    account = wait_for(lambda: sql("SELECT id, balance, carried_hours FROM points.accounts WHERE resident_id = %s",
                                   (rid,)), message="the handover to be credited")[0]
    # the forged copy is dead-lettered after its bounded redeliveries, never applied
    dlq = "msg-handovers-points.balance_handed_over--points.on_handover.dlq"
    wait_for(lambda: broker.depth(dlq) == 1, timeout=30, message="the forged handover in the DLQ")
    account = sql("SELECT id, balance, carried_hours FROM points.accounts WHERE resident_id = %s", (rid,))[0]
    assert account["balance"] == 80 and str(account["carried_hours"]) == "310.00"
    assert sql("SELECT count(*) AS n FROM points.transfers WHERE kind = 'immigration'")[0]["n"] == 1
    assert sql("SELECT count(*) AS n FROM points.handovers_in")[0]["n"] == 1
    view = api.get(f"{P}/accounts/{account['id']}").json()
    assert view["stars"] == 2 and view["balance"] == 80



def test_a_move_within_the_street_keeps_the_account_and_a_death_freezes_it(api, sql, categories):
    rid = resident(api, 17, name="孙美华")
    record_id = log(api, rid, hours="1").json()["id"]
    assert api.post(f"{P}/records/{record_id}/verify", json={}).json()["points"] == 10
    today = clock.now().date().isoformat()
    moved = api.post(f"/api/v1/residents/{rid}/move", json={"community_code": OTHER, "building": "3号",
                                                            "unit": "1单元", "room": "101", "relation": "self",
                                                            "effective": today})
    assert moved.status_code == 200, moved.text
    wait_for(lambda: sql("SELECT 1 FROM points.accounts WHERE resident_id = %s AND community_code = %s",
                         (rid, OTHER)), message="the account to follow the move")
    account = sql("SELECT id, balance, status FROM points.accounts WHERE resident_id = %s", (rid,))[0]
    assert (account["balance"], account["status"]) == (10, "active")
    assert api.post(f"/api/v1/residents/{rid}/death", json={"date_of_death": today}).status_code == 200
    wait_for(lambda: sql("SELECT 1 FROM points.accounts WHERE id = %s AND status = 'frozen'", (account["id"],)),
             message="the account to be frozen")
    assert sql("SELECT balance FROM points.accounts WHERE id = %s", (account["id"],))[0]["balance"] == 10


def test_every_points_route_answers_as_the_document_says(api, categories):
    """Each of the points routes once, its answer held to the OpenAPI document by `web_session`:
    hours as exact strings, retries answered 200 with `replayed`, a batch answered per record."""
    categories_ = api.get(f"{P}/categories?include_inactive=true").json()["items"]
    assert [c["code"] for c in categories_] == ["elderly_visit", "security_patrol"]
    assert api.get(f"{P}/categories/security_patrol").json()["rule"]["points_per_unit"] == 10
    assert api.patch(f"{P}/categories/elderly_visit", json={"name": "探访老人"}).json()["name"] == "探访老人"
    ruled = api.post(f"{P}/categories/security_patrol/rules", json={"unit": "hour", "points_per_unit": 12,
                                                                   "verifier_roles": ["community_worker"]})
    assert ruled.status_code == 201 and len(ruled.json()["versions"]) == 2, ruled.text
    reward = api.post(f"{P}/rewards", json={"name": "环保购物袋", "kind": "material", "points_cost": 10, "stock": 5})
    assert reward.status_code == 201 and reward.headers["Location"] == f"{P}/rewards/{reward.json()['id']}"
    reward_id = reward.json()["id"]
    assert api.patch(f"{P}/rewards/{reward_id}", json={"stock": 4}).json()["stock"] == 4
    assert [r["id"] for r in api.get(f"{P}/rewards").json()["items"]] == [reward_id]

    rid = resident(api, 18)
    opened = api.post(f"{P}/accounts", json={"resident_id": rid})
    assert opened.status_code == 201 and "replayed" not in opened.json(), opened.text
    again = api.post(f"{P}/accounts", json={"resident_id": rid})
    assert again.status_code == 200 and again.json()["replayed"] is True and again.json()["id"] == opened.json()["id"]
    account_id = opened.json()["id"]
    assert api.get(f"{P}/accounts/{account_id}").json()["hours_to_next_star"] == "100.00"  # exact, a string

    patrol = log(api, rid, hours="3").json()["id"]
    served_at = served()
    claim = log(api, rid, hours="1", request_id="kiosk-7-0001", served_at=served_at)
    retried = log(api, rid, hours="1", request_id="kiosk-7-0001", served_at=served_at)
    assert claim.status_code == 201 and retried.status_code == 200 and retried.json()["replayed"] is True
    assert retried.json()["hours"] == "1.00"
    mistaken = log(api, rid, hours="1").json()["id"]
    assert api.get(f"{P}/records/{patrol}").json()["status"] == "pending"
    assert len(api.get(f"{P}/records?under={COMMUNITY}&status=pending").json()["items"]) == 3

    batch = api.post(f"{P}/records/verify", json={"record_ids": [patrol]})
    assert batch.status_code == 200, batch.text
    assert batch.json()["records"] == [{"id": patrol, "status": "posted", "points": 30, "capped_from": None,
                                        "transfer": batch.json()["records"][0]["transfer"]}]
    assert api.post(f"{P}/records/verify", json={"record_ids": [patrol]}).json()["replayed"] == [patrol]
    assert api.post(f"{P}/records/{mistaken}/void", json={"reason": "重复登记"}).json()["status"] == "voided"
    refused = api.post(f"{P}/records/verify", json={"record_ids": [patrol, mistaken]})
    assert_problem(refused, 409, f"record_ids.{mistaken}")   # each refused record, by id
    assert list(refused.json()["errors"]) == [f"record_ids.{mistaken}"]
    assert api.post(f"{P}/records/{claim.json()['id']}/verify", json={}).json()["points"] == 10
    reversed_ = api.post(f"{P}/records/{claim.json()['id']}/reverse", json={"reason": "登记有误"})
    assert reversed_.json()["status"] == "reversed" and "replayed" not in reversed_.json(), reversed_.text
    assert api.post(f"{P}/records/{claim.json()['id']}/reverse", json={"reason": "登记有误"}).json()["replayed"]

    body = {"request_id": "counter-1", "account_id": account_id, "reward_id": reward_id}
    held = api.post(f"{P}/redemptions", json=body)
    assert held.status_code == 201 and held.headers["Location"] == f"{P}/redemptions/{held.json()['id']}"
    assert api.post(f"{P}/redemptions", json=body).json()["replayed"] is True
    assert api.get(f"{P}/redemptions/{held.json()['id']}").json()["status"] == "pending"
    assert api.post(f"{P}/redemptions/{held.json()['id']}/fulfil", json={}).json()["status"] == "fulfilled"
    other = api.post(f"{P}/redemptions", json={"account_id": account_id, "reward_id": reward_id}).json()["id"]
    assert api.post(f"{P}/redemptions/{other}/cancel", json={"reason": "不要了"}).json()["status"] == "cancelled"
    assert len(api.get(f"{P}/redemptions?under={COMMUNITY}").json()["items"]) == 2

    statement = api.get(f"{P}/accounts/{account_id}/statement?limit=2").json()
    assert statement["account"]["balance"] == 20 and len(statement["lines"]) == 2 and statement["next"]
    assert api.get(f"{P}/accounts?under={COMMUNITY}").json()["items"][0]["verified_hours"] == "3.00"

    year = clock.now().year
    standings = api.get(f"{P}/evaluation?year={year}").json()
    assert standings["snapshot"] is False and standings["rows"][0]["hours"] == "3.00"
    csv = api.get(f"{P}/evaluation?year={year}&format=csv")
    assert csv.headers["Content-Type"] == "text/csv; charset=utf-8" and "3.00" in csv.text
    taken = api.post(f"{P}/evaluation", json={"year": year - 1})
    assert taken.status_code == 201 and taken.json()["snapshot"] is True, taken.text


def account_with(api, seq, hours):
    """A resident's account holding hours × 10 points, verified."""
    rid = resident(api, seq)
    account_id = api.post(f"{P}/accounts", json={"resident_id": rid}).json()["id"]
    record = log(api, rid, hours=hours).json()["id"]
    assert api.post(f"{P}/records/{record}/verify", json={}).json()["points"] == int(hours) * 10
    return account_id


def stock(api, reward_id):
    return next(r["stock"] for r in api.get(f"{P}/rewards").json()["items"] if r["id"] == reward_id)


def test_a_redemption_over_the_balance_is_a_409_that_changes_nothing(api, categories):
    # InsufficientPoints is raised in the points service; it once crossed RPC as a RemoteError, a 500.
    account_id = account_with(api, 21, "3")                                             # 30 points
    reward_id = api.post(f"{P}/rewards", json={"name": "环保购物袋", "kind": "material", "points_cost": 20,
                                               "stock": 5}).json()["id"]
    refused = api.post(f"{P}/redemptions", json={"account_id": account_id, "reward_id": reward_id, "quantity": 2})
    body = assert_problem(refused, 409, "amount")
    assert body["errors"]["amount"] == ["only 30 points are available"]
    assert api.get(f"{P}/accounts/{account_id}").json()["balance"] == 30
    assert stock(api, reward_id) == 5


def test_of_two_redemptions_racing_for_the_same_points_one_wins_and_the_other_is_a_409(api, categories):
    account_id = account_with(api, 22, "3")                                             # 30 points
    reward_id = api.post(f"{P}/rewards", json={"name": "社区食堂餐券", "kind": "material", "points_cost": 20,
                                               "stock": 5}).json()["id"]
    start, answers = threading.Barrier(2), [None, None]

    def redeem(i):
        start.wait()
        answers[i] = api.post(f"{P}/redemptions", json={"account_id": account_id, "reward_id": reward_id,
                                                        "request_id": f"race-{i}"})

    threads = [threading.Thread(target=redeem, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
    lost = next(a for a in answers if a.status_code == 409)
    assert assert_problem(lost, 409, "amount")["errors"]["amount"] == ["only 10 points are available"]
    assert api.get(f"{P}/accounts/{account_id}").json()["balance"] == 10
    assert stock(api, reward_id) == 4
