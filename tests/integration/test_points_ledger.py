"""The points ledger and its use cases on real PostgreSQL, without the services around them.

Real: PostgreSQL (the migrated test database), the use cases, the SQL, the
constraints and triggers. Faked: the registry, a dict behind the one RPC the
points service asks it (`account_holder`); the API tests cover the real one.
After every test the ledger must balance: each transfer's two entries cancel
out, the balances sum to zero, and every balance equals the sum of its entries.
"""
import threading
import time
from datetime import date, timedelta

import psycopg
import pytest

from services.points import accounts, catalogue, evaluation, handover, ledger, records, redemptions
from services.points.rules import InsufficientPoints
from shared import envelope, facts
from shared.db import transaction
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.scope import missing
from shared import clock

STREET, COMMUNITY, OTHER = "310110012", "310110012001", "310110012002"
WORKER = {"actor": "token:w1:张晓燕", "scope": COMMUNITY, "role": "community_worker", "organization_id": None}
ADMIN = {"actor": "token:a1:王建国", "scope": STREET, "role": "street_admin", "organization_id": None}
LEADER = {"actor": "token:l1:李桂英", "scope": COMMUNITY, "role": "organization_leader", "organization_id": 7}
PEOPLE = {
    101: {"resident_id": 101, "name": "陈志强", "community_code": COMMUNITY, "grid_code": None, "status": "active",
          "pseudonym": "p" * 32, "member_category": "party_member", "party_org_id": 3, "party_org_name": "第一党支部",
          "handover_key": "ab" * 32},
    102: {"resident_id": 102, "name": "刘秀兰", "community_code": COMMUNITY, "grid_code": None, "status": "active",
          "pseudonym": "q" * 32, "member_category": "volunteer", "party_org_id": None, "party_org_name": None,
          "handover_key": "cd" * 32},
    201: {"resident_id": 201, "name": "赵国庆", "community_code": OTHER, "grid_code": None, "status": "active",
          "pseudonym": "r" * 32, "member_category": "resident", "party_org_id": None, "party_org_name": None,
          "handover_key": "ef" * 32},
}
ORGS = {7: {"organization_id": 7, "name": "长海一村平安志愿服务队", "community_code": COMMUNITY, "status": "active",
            "category": "volunteer_team"}}


def china_today():
    """Days are China's in the service: the tests count them the same way, whatever the machine's zone."""
    return clock.now().date()


def holders(kind, ref_id, caller):
    """The registry's answer, scope check included: one outside the scope is not found, as one not there."""
    holder = (PEOPLE if kind == "person" else ORGS).get(ref_id)
    if holder is None or not holder["community_code"].startswith(caller["scope"]):
        raise (missing("resident", ref_id, "resident_id") if kind == "person"
               else missing("organisation", ref_id, "organization_id"))
    return holder


def holders_of(resident_ids, caller):
    """The registry's batched answer (`account_holders`) from the same dict, scope included."""
    answer = {"holders": {}, "not_found": []}
    for i in sorted(set(resident_ids)):
        if i not in PEOPLE or not PEOPLE[i]["community_code"].startswith(caller["scope"]):
            answer["not_found"].append(i)
        else:
            answer["holders"][str(i)] = PEOPLE[i]
    return answer


@pytest.fixture
def tx(in_tx):
    return in_tx("points")


@pytest.fixture
def q(schema_sql):
    return schema_sql("points")


@pytest.fixture(autouse=True)
def ledger_balances(tx):
    yield
    tb = tx(ledger.trial_balance)
    assert tb == {"entries_sum": 0, "balances_sum": 0, "unbalanced_transfers": 0, "drifted_accounts": 0}, tb


@pytest.fixture
def catalogue_(tx):
    today = china_today()
    start = today - timedelta(days=400)
    tx(catalogue.create_category, {"code": "security_patrol", "name": "平安巡逻", "unit": "hour", "points_per_unit": 10,
                                   "daily_cap": 40, "yearly_cap": 500, "verifier_roles": ["community_worker"],
                                   "valid_from": start.isoformat()}, ADMIN, today=start)
    tx(catalogue.create_category, {"code": "elderly_visit", "name": "探访独居老人", "unit": "occasion",
                                   "points_per_unit": 5, "verifier_roles": ["community_worker", "organization_leader"],
                                   "valid_from": start.isoformat()}, ADMIN, today=start)


def served(days_ago=1, hour=9):
    """`hour` o'clock `days_ago` days ago, instance time; today's is never later than a minute ago, so
    the test holds at 00:30 as well as at 23:30."""
    now = clock.now()
    at = (now - timedelta(days=days_ago)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return max(min(at, now - timedelta(minutes=1)), now.replace(hour=0, minute=0, second=0, microsecond=0)
               - timedelta(days=days_ago)).isoformat()


def log(tx, resident_id=101, category="security_patrol", hours="3", days_ago=1, caller=WORKER, **extra):
    body = {"resident_id": resident_id, "category_code": category, "served_at": served(days_ago), "hours": hours,
            "description": "夜间楼道巡逻，检查消防通道", **extra}
    return tx(records.create, holders, body, caller, 30)


def posted_account(tx, points_hours="3", resident_id=101):
    r = log(tx, resident_id=resident_id, hours=points_hours)
    tx(records.verify, r["id"], {}, WORKER)
    return tx(lambda t: t.one("SELECT * FROM accounts WHERE resident_id = %s", (resident_id,)))


# -- idempotent transfers ------------------------------------------------------------------

def test_the_same_transfer_id_twice_posts_once(tx, q, catalogue_):
    account = posted_account(tx)
    issuance = tx(ledger.system_account, "issuance", COMMUNITY, "x")
    item = {"transfer_id": "grant-2026-001", "kind": "posting", "debit_account": issuance,
            "credit_account": account["id"], "amount": 7}
    first = tx(ledger.transfer, [item], "test")["grant-2026-001"]
    again = tx(ledger.transfer, [item], "test")["grant-2026-001"]
    assert first["replayed"] is False and again["replayed"] is True and again["id"] == first["id"]
    assert q("SELECT balance FROM accounts WHERE id = %s", (account["id"],))[0][0] == 30 + 7
    assert q("SELECT count(*) FROM transfers WHERE transfer_id = 'grant-2026-001'")[0][0] == 1
    with pytest.raises(Conflict) as err:
        tx(ledger.transfer, [{**item, "amount": 8}], "test")
    assert "already used" in err.value.fields["transfer_id"][0]
    assert q("SELECT balance FROM accounts WHERE id = %s", (account["id"],))[0][0] == 37


def test_verifying_twice_posts_once(tx, q, catalogue_):
    r = log(tx)
    first = tx(records.verify, r["id"], {}, WORKER)
    again = tx(records.verify, r["id"], {}, WORKER)
    assert first["status"] == "posted" and first["points"] == 30 and again.get("replayed") is True
    assert q("SELECT count(*) FROM transfers")[0][0] == 1
    assert q("SELECT balance FROM accounts WHERE resident_id = 101")[0][0] == 30


def test_a_claim_retried_with_its_request_id_is_one_record(tx, q, catalogue_):
    first = log(tx, request_id="kiosk-7-0001")
    again = log(tx, request_id="kiosk-7-0001")
    assert again["id"] == first["id"] and again["replayed"] is True
    with pytest.raises(Conflict):
        log(tx, request_id="kiosk-7-0001", hours="5")
    assert q("SELECT count(*) FROM service_records")[0][0] == 1


def test_transfers_and_entries_cannot_be_edited(tx, cfg, catalogue_):
    posted_account(tx)
    with psycopg.connect(cfg["DATABASE_URL"]) as conn:
        with pytest.raises(psycopg.errors.RestrictViolation, match="immutable"):
            conn.execute("UPDATE points.transfers SET amount = amount + 1")
        conn.rollback()
        with pytest.raises(psycopg.errors.RestrictViolation):
            conn.execute("DELETE FROM points.entries")


def test_the_database_refuses_a_negative_person_balance_even_if_code_skips_the_check(tx, cfg, catalogue_):
    account = posted_account(tx)
    with psycopg.connect(cfg["DATABASE_URL"]) as conn:
        with pytest.raises(psycopg.errors.CheckViolation, match="balance_never_negative"):
            conn.execute("UPDATE points.accounts SET balance = -1 WHERE id = %s", (account["id"],))


# -- caps, rules, expiry ----------------------------------------------------------------------

def test_caps_apply_at_posting_and_the_uncapped_figure_is_kept(tx, q, catalogue_):
    a, b = log(tx, hours="3"), log(tx, hours="2")     # the same day: 30 + 20 against a daily cap of 40
    tx(records.verify, a["id"], {}, WORKER)
    second = tx(records.verify, b["id"], {}, WORKER)
    assert (second["points"], second["capped_from"]) == (10, 20)
    assert q("SELECT balance FROM accounts WHERE resident_id = 101")[0][0] == 40


def test_a_new_rule_version_never_rewrites_posted_points(tx, q, catalogue_):
    r = log(tx, hours="2")
    tx(records.verify, r["id"], {}, WORKER)
    with pytest.raises(ValidationFailed, match="invalid fields") as err:          # not from today: tomorrow on
        tx(catalogue.add_rule, "security_patrol", {"unit": "hour", "points_per_unit": 20, "verifier_roles":
                                                   ["community_worker"], "valid_from": china_today().isoformat()},
           ADMIN)
    assert "valid_from" in err.value.fields
    # added yesterday, so in force from today
    tx(catalogue.add_rule, "security_patrol", {"unit": "hour", "points_per_unit": 20,
                                               "verifier_roles": ["community_worker"]}, ADMIN,
       today=china_today() - timedelta(days=1))
    assert q("SELECT points, rule_version FROM service_records WHERE id = %s", (r["id"],))[0] == (20, 1)
    today = log(tx, hours="2", days_ago=0)
    assert tx(records.verify, today["id"], {}, WORKER)["points"] == 40          # today's service: version 2
    with pytest.raises(ValidationFailed) as err:
        tx(catalogue.add_rule, "security_patrol", {"unit": "hour", "points_per_unit": 5,
                                                   "verifier_roles": ["community_worker"],
                                                   "valid_from": (china_today() - timedelta(1)).isoformat()}, ADMIN)
    assert "valid_from" in err.value.fields


def test_an_expired_record_cannot_be_posted_and_the_sweep_marks_it(tx, q, catalogue_):
    r = log(tx)
    q("UPDATE service_records SET expires_at = now() - interval '1 minute' WHERE id = %s", (r["id"],))
    with pytest.raises(Conflict, match="expired on"):
        tx(records.verify, r["id"], {}, WORKER)
    assert tx(records.expire_due) == 1
    assert q("SELECT status FROM service_records WHERE id = %s", (r["id"],))[0][0] == "expired"
    assert q("SELECT count(*) FROM outbox WHERE routing_key = 'service_record_expired'")[0][0] == 1


def test_only_the_roles_a_category_names_may_verify(tx, catalogue_):
    patrol = log(tx, organization_id=7)
    with pytest.raises(Forbidden, match="verified by community_worker"):
        tx(records.verify, patrol["id"], {}, LEADER)
    visit = log(tx, category="elderly_visit", organization_id=7)
    assert tx(records.verify, visit["id"], {}, LEADER)["points"] == 5
    not_theirs = log(tx, category="elderly_visit")
    with pytest.raises(Forbidden, match="not of organisation 7"):
        tx(records.verify, not_theirs["id"], {}, LEADER)
    with pytest.raises(Forbidden, match="organisation's leader may not"):
        tx(accounts.get, visit["account_id"], LEADER)


def test_bad_records_are_refused_field_by_field_and_change_nothing(tx, q, catalogue_):
    cases = [({"hours": "25"}, "hours"), ({"hours": "-1"}, "hours"), ({"category_code": "unknown_thing"},
                                                                       "category_code"),
             ({"served_at": (clock.now() + timedelta(days=2)).isoformat()}, "served_at"),
             ({"served_at": "2019-01-01T09:00:00+08:00"}, "served_at"), ({"description": "  "}, "description"),
             ({"description": "x" * 1001}, "description"), ({"links": ["javascript:alert(1)"]}, "links.0"),
             ({"resident_id": None}, "resident_id")]
    for change, field in cases:
        body = {"resident_id": 101, "category_code": "security_patrol", "served_at": served(), "hours": "2",
                "description": "巡逻", **change}
        with pytest.raises(ValidationFailed) as err:
            tx(records.create, holders, {k: v for k, v in body.items() if v is not None}, WORKER, 30)
        assert field in err.value.fields, (change, err.value.fields)
    assert q("SELECT count(*) FROM service_records")[0][0] == 0


def test_scope_is_checked_on_the_person_who_reads_as_not_there(tx, catalogue_):
    with pytest.raises(NotFound) as asked:
        log(tx, resident_id=201)   # lives in the other community, with no account yet: the registry answers
    log(tx, resident_id=201, caller=ADMIN)   # the street opens their account
    with pytest.raises(NotFound) as opened:
        log(tx, resident_id=201)   # an account outside the scope answers as the registry does
    assert (opened.value.message, opened.value.fields) == (asked.value.message, asked.value.fields)
    with pytest.raises(NotFound) as unknown:
        log(tx, resident_id=209)
    assert (unknown.value.message.replace("209", "201"),
            {k: [m.replace("209", "201") for m in v] for k, v in unknown.value.fields.items()}) \
        == (asked.value.message, asked.value.fields)


# -- redemptions ---------------------------------------------------------------------------

@pytest.fixture
def reward(tx):
    return tx(catalogue.create_reward, {"name": "环保购物袋", "kind": "material", "points_cost": 20, "stock": 5,
                                        "per_person_limit": 3}, ADMIN)


def test_two_redemptions_racing_for_the_last_points_one_wins(tx, q, cfg, catalogue_, reward):
    account = posted_account(tx)                     # 30 points; each redemption wants 20
    barrier, results, spans = threading.Barrier(2), [None, None], [None, None]

    def redeem(i):
        source = envelope.source_from_config("points", cfg)
        try:  # the refusal propagates out of the transaction, which rolls back, as in a worker
            with transaction(cfg["DATABASE_URL"], "points", source, facts.Signer.from_config(cfg)) as t:
                start = t.one("SELECT clock_timestamp() AS t")["t"]
                barrier.wait()
                spans[i] = (start, None)
                results[i] = redemptions.request(t, {"account_id": account["id"], "reward_id": reward["id"]},
                                                 WORKER, STREET)
                time.sleep(0.2)  # hold the lock a while: the other must wait for it, not slip past
                spans[i] = (start, t.one("SELECT clock_timestamp() AS t")["t"])
        except InsufficientPoints as exc:
            results[i] = exc
            spans[i] = (start, clock.now())

    threads = [threading.Thread(target=redeem, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Both transactions were open at once: each began before the other ended.
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1]
    won = [r for r in results if isinstance(r, dict)]
    lost = [r for r in results if isinstance(r, InsufficientPoints)]
    assert len(won) == 1 and len(lost) == 1, results
    assert lost[0].fields == {"amount": ["only 10 points are available"]}
    assert q("SELECT balance FROM accounts WHERE id = %s", (account["id"],))[0][0] == 10
    assert q("SELECT stock FROM rewards WHERE id = %s", (reward["id"],))[0][0] == 4


def test_a_redemption_holds_then_fulfils_or_cancels(tx, q, catalogue_, reward):
    account = posted_account(tx, "4")                                   # 40 points
    a = tx(redemptions.request, {"account_id": account["id"], "reward_id": reward["id"], "request_id": "r-1"},
           WORKER, STREET)
    assert tx(accounts.get, account["id"], WORKER)["held"] == 20
    again = tx(redemptions.request, {"account_id": account["id"], "reward_id": reward["id"], "request_id": "r-1"},
               WORKER, STREET)
    assert again["id"] == a["id"] and again["replayed"] is True
    b = tx(redemptions.request, {"account_id": account["id"], "reward_id": reward["id"]}, WORKER, STREET)
    assert tx(redemptions.fulfil, a["id"], {}, WORKER, STREET)["status"] == "fulfilled"
    assert tx(redemptions.cancel, b["id"], {"reason": "居民改选其他奖励"}, WORKER, STREET)["status"] == "cancelled"
    with pytest.raises(Conflict, match="a cancelled redemption cannot become fulfilled"):
        tx(redemptions.fulfil, b["id"], {}, WORKER, STREET)
    view = tx(accounts.get, account["id"], WORKER)
    assert (view["balance"], view["held"]) == (20, 0)
    assert q("SELECT stock FROM rewards WHERE id = %s", (reward["id"],))[0][0] == 4   # b's returned
    kinds = [line["kind"] for line in tx(accounts.statement, account["id"], {}, WORKER)["lines"]]
    assert kinds == ["posting", "hold", "hold", "release"]
    first = tx(accounts.statement, account["id"], {"limit": 2}, WORKER)      # paged by cursor
    rest = tx(accounts.statement, account["id"], {"limit": 2, "after": first["next"]}, WORKER)
    assert [x["kind"] for x in first["lines"] + rest["lines"]] == kinds and rest["next"] is None
    assert [x["balance_after"] for x in first["lines"] + rest["lines"]] == [40, 20, 0, 20]


def test_the_per_person_limit_and_stock_are_enforced(tx, catalogue_, reward):
    account = posted_account(tx, "4")
    tx(lambda t: t.execute("UPDATE rewards SET points_cost = 1"))
    tx(redemptions.request, {"account_id": account["id"], "reward_id": reward["id"], "quantity": 3}, WORKER, STREET)
    with pytest.raises(Conflict, match="per-person limit"):
        tx(redemptions.request, {"account_id": account["id"], "reward_id": reward["id"]}, WORKER, STREET)


# -- corrections ---------------------------------------------------------------------------

def test_a_reversal_restores_the_balance_and_keeps_history(tx, q, catalogue_):
    r = log(tx, hours="2")
    tx(records.verify, r["id"], {}, WORKER)
    reversed_ = tx(records.reverse, r["id"], {"reason": "重复登记"}, WORKER)
    assert reversed_["status"] == "reversed"
    account_id = reversed_["account_id"]
    lines = tx(accounts.statement, account_id, {}, WORKER)["lines"]
    assert [(line["kind"], line["change"], line["balance_after"]) for line in lines] == [
        ("posting", 20, 20), ("reversal", -20, 0)]
    assert lines[1]["reverses"] == lines[0]["transfer"] and lines[0]["service_record_id"] == r["id"]
    assert tx(records.reverse, r["id"], {"reason": "重复登记"}, WORKER)["replayed"] is True   # a retry
    with pytest.raises(Conflict, match="the record is already reversed"):
        tx(records.reverse, r["id"], {"reason": "again", "transfer_id": "fix-2"}, WORKER)
    assert q("SELECT count(*) FROM transfers WHERE kind = 'reversal'")[0][0] == 1
    assert tx(accounts.get, account_id, WORKER)["verified_hours"] == "0.00"


def test_spent_points_cannot_be_reversed_away(tx, catalogue_, reward):
    account = posted_account(tx, "2")                                   # 20 points
    tx(redemptions.request, {"account_id": account["id"], "reward_id": reward["id"]}, WORKER, STREET)
    record_id = tx(lambda t: t.one("SELECT id FROM service_records")["id"])
    with pytest.raises(InsufficientPoints):
        tx(records.reverse, record_id, {"reason": "登记有误"}, WORKER)


# -- batch posting and evaluation --------------------------------------------------------------

def test_a_batch_posts_many_records_under_the_caps_in_one_go(tx, q, cfg, catalogue_):
    ids = [log(tx, resident_id=rid, hours="3", days_ago=d)["id"] for rid in (101, 102) for d in (1, 1, 2)]
    out = tx(records.verify_batch, {"record_ids": ids}, WORKER)
    assert out["posted"] == 6 and out["capped"] == 2 and out["points"] == 2 * (30 + 10 + 30)
    again = tx(records.verify_batch, {"record_ids": ids}, WORKER)
    assert again["posted"] == 0
    assert q("SELECT count(*) FROM outbox WHERE routing_key = 'points_posted'")[0][0] == 6
    batches = q("SELECT body FROM outbox WHERE exchange = 'facts'")
    assert len(batches) == 1 and len(batches[0][0]["facts"]) == 6
    assert facts.verify(batches[0][0], facts.Signer.from_config(cfg).public_key)
    assert {f["dims"]["member_category"] for f in batches[0][0]["facts"]} == {"party_member", "volunteer"}


def test_year_end_evaluation_ranks_stars_and_freezes(tx, q, catalogue_):
    last_year = china_today().year - 1
    for rid, hours in ((101, "3"), (102, "4")):
        r = log(tx, resident_id=rid, hours=hours, days_ago=(china_today() - date(last_year, 12, 20)).days)
        tx(records.verify, r["id"], {}, WORKER)
    q("UPDATE accounts SET carried_hours = 300 WHERE resident_id = 102")
    live = tx(evaluation.report, {"year": last_year}, ADMIN)
    assert live["snapshot"] is False
    assert [(r["name"], r["points"], r["community_rank"], r["stars"]) for r in live["rows"]] == [
        ("刘秀兰", 40, 1, 2), ("陈志强", 30, 2, 0)]
    taken = tx(evaluation.snapshot, {"year": last_year}, ADMIN, STREET)
    assert taken["snapshot"] is True and taken["rows"] == live["rows"]
    with pytest.raises(Conflict, match="taken already"):
        tx(evaluation.snapshot, {"year": last_year}, ADMIN, STREET)
    record_id = q("SELECT id FROM service_records WHERE account_id = (SELECT id FROM accounts "
                  "WHERE resident_id = 102)")[0][0]
    tx(records.reverse, record_id, {"reason": "核查后撤销"}, ADMIN)
    assert tx(evaluation.report, {"year": last_year}, ADMIN)["rows"] == live["rows"]   # the snapshot stands
    csv_out = tx(evaluation.report, {"year": last_year, "format": "csv"}, ADMIN)
    assert csv_out["csv"].startswith("\ufeff社区排名,社区代码,姓名") and "1,310110012001,刘秀兰,志愿者" in csv_out["csv"]
    with pytest.raises(ValidationFailed, match="not over"):
        tx(evaluation.snapshot, {"year": china_today().year}, ADMIN, STREET)


# -- handovers between streets -------------------------------------------------------------

OTHER_STREET = "310110013"


def test_leaving_the_street_freezes_and_sends_the_balance_signed(tx, q, cfg, catalogue_):
    account = posted_account(tx)
    message = tx(handover.hand_over, holders, 101, STREET, facts.Signer.from_config(cfg), "迁出")
    assert message["amount"] == 30 and message["hours"] == "3.00" and message["person_key"] == "ab" * 32
    assert facts.verify(message, facts.Signer.from_config(cfg).public_key)
    assert "陈志强" not in str(message)
    row = q("SELECT status, balance FROM accounts WHERE id = %s", (account["id"],))[0]
    assert row == ("frozen", 0)
    assert q("SELECT count(*) FROM outbox WHERE exchange = 'handovers'")[0][0] == 1
    with pytest.raises(Conflict, match="frozen"):
        log(tx)


def test_a_handover_delivered_twice_credits_once(tx, q, cfg, catalogue_):
    sender = facts.Signer("c2VuZGVyLXN0cmVldC1zaWduaW5nLWtleS0wMDAwMDA=")
    message = sender.sign({"v": 1, "transfer_id": f"{OTHER_STREET}:emigration:9", "person_key": "cd" * 32,
                           "from_street": OTHER_STREET, "amount": 75, "hours": "120.50"})
    peers = {OTHER_STREET: sender.public_key}
    finder = lambda keys: {"cd" * 32: 102} if "cd" * 32 in keys else {}  # noqa: E731
    assert tx(handover.receive, finder, holders_of, message, peers, STREET) is True
    assert tx(handover.receive, finder, holders_of, message, peers, STREET) is False
    view = tx(accounts.get, q("SELECT id FROM accounts WHERE resident_id = 102")[0][0], WORKER)
    assert view["balance"] == 75 and view["verified_hours"] == "120.50" and view["stars"] == 1
    forged = {**message, "amount": 7500}
    with pytest.raises(handover.Rejected):
        tx(handover.receive, finder, holders_of, forged, peers, STREET)
    with pytest.raises(handover.Rejected):
        tx(handover.receive, finder, holders_of, {**message, "transfer_id": "x"}, {}, STREET)


def test_a_handover_for_someone_not_yet_registered_waits_then_is_credited(tx, q, catalogue_):
    sender = facts.Signer("c2VuZGVyLXN0cmVldC1zaWduaW5nLWtleS0wMDAwMDA=")
    message = sender.sign({"v": 1, "transfer_id": f"{OTHER_STREET}:emigration:10", "person_key": "ab" * 32,
                           "from_street": OTHER_STREET, "amount": 12, "hours": "1"})
    nobody = lambda keys: {}  # noqa: E731
    tx(handover.receive, nobody, holders_of, message, {OTHER_STREET: sender.public_key}, STREET)
    assert q("SELECT status FROM handovers_in")[0][0] == "waiting"
    assert tx(handover.match, lambda keys: {"ab" * 32: 101}, holders_of, STREET) == 1
    assert tx(handover.match, lambda keys: {"ab" * 32: 101}, holders_of, STREET) == 0
    assert q("SELECT balance FROM accounts WHERE resident_id = 101")[0][0] == 12


def test_a_transfer_id_reused_for_another_record_is_refused_not_replayed(tx, q, catalogue_):
    a, b = log(tx, category="elderly_visit"), log(tx, category="elderly_visit", days_ago=2)
    # a client id that looks like one of the service's own stays the client's
    c = log(tx, category="elderly_visit", days_ago=3)
    tx(records.verify, c["id"], {"transfer_id": f"posting:{b['id']}"}, WORKER)
    tx(records.verify, a["id"], {"transfer_id": "batch-7"}, WORKER)
    with pytest.raises(Conflict, match="already used"):
        tx(records.verify, b["id"], {"transfer_id": "batch-7"}, WORKER)
    assert q("SELECT status FROM service_records WHERE id = %s", (b["id"],))[0][0] == "pending"
    assert tx(records.verify, a["id"], {"transfer_id": "batch-7"}, WORKER)["replayed"] is True
    assert tx(records.verify, b["id"], {}, WORKER)["points"] == 5
    assert q("SELECT balance FROM accounts WHERE resident_id = 101")[0][0] == 15


def test_two_verifications_racing_for_one_persons_daily_cap_stay_under_it(tx, q, cfg, catalogue_):
    posted_account(tx)                                     # the day before: 30 points, and the issuance account
    a, b = log(tx, hours="3", days_ago=2), log(tx, hours="3", days_ago=2)   # 30 + 30 against a daily cap of 40
    barrier, errors = threading.Barrier(2), []

    def verify(record_id):
        source = envelope.source_from_config("points", cfg)
        try:
            with transaction(cfg["DATABASE_URL"], "points", source, facts.Signer.from_config(cfg)) as t:
                t.one("SELECT 1 AS x")
                barrier.wait()
                records.verify(t, record_id, {}, WORKER)
                time.sleep(0.1)
        except Exception as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=verify, args=(r["id"],)) for r in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(r[0] for r in q("SELECT points FROM service_records WHERE id IN (%s, %s)", (a["id"], b["id"]))) \
        == [10, 30]
    assert q("SELECT balance FROM accounts WHERE resident_id = 101")[0][0] == 30 + 40


def test_a_resident_who_comes_back_gets_their_handed_over_balance_back(tx, q, cfg, catalogue_):
    signer = facts.Signer.from_config(cfg)
    posted_account(tx)                                                     # 30 points for resident 101
    message = tx(handover.hand_over, holders, 101, STREET, signer, "迁出")
    nobody = lambda keys: {}  # noqa: E731
    # our own handover comes back from the exchange and waits (the resident is gone)
    assert tx(handover.receive, nobody, holders_of, message, {}, STREET, signer.public_key) is True
    assert tx(handover.receive, nobody, holders_of, message, {}, STREET, signer.public_key) is False
    # registered again later under a new resident id (the registry's record of a returning resident)
    PEOPLE[103] = {**PEOPLE[101], "resident_id": 103}
    try:
        assert tx(handover.match, lambda keys: {"ab" * 32: 103}, holders_of, STREET) == 1
    finally:
        del PEOPLE[103]
    assert q("SELECT balance FROM accounts WHERE resident_id = 103")[0][0] == 30
    assert q("SELECT balance FROM accounts WHERE kind = 'emigrated'")[0][0] == 0
    second = tx(handover.resend, message["transfer_id"])
    assert second == [message["transfer_id"]]
    assert q("SELECT count(*) FROM outbox WHERE exchange = 'handovers'")[0][0] == 2


def test_a_handover_survives_a_registry_that_cannot_answer(tx, q, catalogue_):
    sender = facts.Signer("c2VuZGVyLXN0cmVldC1zaWduaW5nLWtleS0wMDAwMDA=")
    message = sender.sign({"v": 1, "transfer_id": f"{OTHER_STREET}:emigration:11:1", "person_key": "cd" * 32,
                           "from_street": OTHER_STREET, "amount": 9, "hours": "2"})

    def down(keys):
        raise ConnectionError("registry restarting")
    assert tx(handover.receive, down, holders_of, message, {OTHER_STREET: sender.public_key}, STREET) is True
    assert q("SELECT status FROM handovers_in")[0][0] == "waiting"
    assert tx(handover.match, lambda keys: {"cd" * 32: 102}, holders_of, STREET) == 1
    with pytest.raises(handover.Rejected, match="names its own transfers"):
        tx(handover.receive, down, holders_of,
           sender.sign({k: v for k, v in message.items() if k != "signature"} | {"transfer_id": "310110099:x:1"}),
           {OTHER_STREET: sender.public_key}, STREET)


@pytest.mark.parametrize("status", ["suspended", "dissolved"])
def test_an_organisation_that_no_longer_works_takes_no_new_record(tx, q, catalogue_, monkeypatch, status):
    """Its account, opened while it was active, stays; new service in its name is refused on the field."""
    def its_own():   # a record of the organisation itself, no resident
        return tx(records.create, holders, {"organization_id": 7, "category_code": "security_patrol",
                                            "served_at": served(1), "hours": "2", "description": "小区夜间巡逻"},
                  WORKER, 30)
    its_own()
    log(tx, organization_id=7)                                         # a member's service in its name
    monkeypatch.setitem(ORGS, 7, {**ORGS[7], "status": status})
    before = q("SELECT count(*) FROM service_records")
    for attempt in (its_own, lambda: log(tx, organization_id=7)):
        with pytest.raises(ValidationFailed) as err:
            attempt()
        assert err.value.fields == {"organization_id": [f"organisation 7 is {status}"]}
    assert q("SELECT count(*) FROM service_records") == before
