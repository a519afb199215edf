"""Points rules without I/O: point arithmetic, caps, star levels, the record and redemption state
machines, who may verify, and the ledger's arithmetic."""
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services.points import rules
from services.points.rules import InsufficientPoints, Rule
from shared import clock

HOURLY = Rule("security_patrol", 1, "hour", 10, daily_cap=40, yearly_cap=100, verifier_roles=("community_worker",))
PER_VISIT = Rule("elderly_visit", 2, "occasion", 5, daily_cap=10, verifier_roles=("community_worker",
                                                                                   "organization_leader"))


@pytest.mark.parametrize("hours, points", [(Decimal("1"), 10), (Decimal("2.5"), 25), (Decimal("0.25"), 2),
                                           (Decimal("0.99"), 9), (Decimal("24"), 240)])
def test_hourly_rules_award_whole_points_rounded_down(hours, points):
    assert rules.points_for(HOURLY, hours) == points


def test_an_occasion_rule_awards_its_points_whatever_the_hours():
    assert rules.points_for(PER_VISIT, Decimal("3")) == 5 == rules.points_for(PER_VISIT, Decimal("0.5"))


@pytest.mark.parametrize("points, day, year, expected", [
    (30, 0, 0, (30, None)),        # under both caps
    (30, 20, 0, (20, 30)),         # the daily cap leaves 20
    (30, 40, 0, (0, 30)),          # the daily cap is reached: nothing, the record still posts
    (30, 0, 90, (10, 30)),         # the yearly cap leaves 10
    (30, 35, 95, (5, 30)),         # both: the tighter wins
])
def test_caps_cut_what_would_pass_them(points, day, year, expected):
    assert rules.apply_caps(points, HOURLY, day, year) == expected


def test_no_caps_means_no_cut():
    rule = Rule("party_education", 1, "occasion", 3)
    assert rules.apply_caps(3, rule, 10 ** 6, 10 ** 9) == (3, None)


def test_a_batch_sees_the_records_before_it_under_the_caps():
    day = date(2026, 11, 20)
    records = [{"account_id": 1, "category_code": "security_patrol", "served_on": day, "hours": Decimal(3),
                "rule_version": 1} for _ in range(3)]
    records.append({"account_id": 2, "category_code": "security_patrol", "served_on": day, "hours": Decimal(3),
                    "rule_version": 1})
    day_totals, year_totals = {}, {(1, "security_patrol", 2026): 65}
    out = rules.award_batch(records, {("security_patrol", 1): HOURLY}, day_totals, year_totals)
    # account 1: 30 fits the day (40) and the year (35 left); then 5 is left of the year; then nothing
    assert out == [(30, None), (5, 30), (0, 30), (30, None)]
    assert day_totals[(1, "security_patrol", day)] == 35 and year_totals[(1, "security_patrol", 2026)] == 100


@pytest.mark.parametrize("hours, stars", [(0, 0), (99.99, 0), (100, 1), (299, 1), (300, 2), (600, 3),
                                          (999.75, 3), (1000, 4), (1500, 5), (9000, 5)])
def test_star_levels_follow_the_national_volunteer_standard(hours, stars):
    assert rules.stars(Decimal(str(hours))) == stars


def test_hours_to_the_next_star():
    assert rules.next_star(Decimal("250")) == Decimal("50")
    assert rules.next_star(Decimal("1500")) is None


@pytest.mark.parametrize("status, to, ok", [
    ("pending", "posted", True), ("pending", "voided", True), ("pending", "expired", True),
    ("posted", "reversed", True), ("posted", "voided", False), ("voided", "posted", False),
    ("expired", "posted", False), ("reversed", "posted", False), ("posted", "posted", False),
    ("pending", "reversed", False),
])
def test_record_state_machine(status, to, ok):
    assert (rules.record_move(status, to) is None) == ok


def test_refusals_say_why():
    assert rules.record_move("posted", "posted") == "the record is already posted"
    assert rules.record_move("voided", "posted") == "a voided record cannot become posted"


@pytest.mark.parametrize("status, to, ok", [
    ("pending", "fulfilled", True), ("pending", "cancelled", True), ("fulfilled", "cancelled", False),
    ("cancelled", "fulfilled", False), ("fulfilled", "fulfilled", False),
])
def test_redemption_state_machine(status, to, ok):
    assert (rules.redemption_move(status, to) is None) == ok


def test_who_may_verify():
    assert rules.may_verify(HOURLY, "community_worker", None, None) is None
    assert rules.may_verify(HOURLY, "street_admin", None, 7) is None          # acts as a community worker
    assert "not by organization_leader" in rules.may_verify(HOURLY, "organization_leader", 7, 7)
    assert rules.may_verify(PER_VISIT, "organization_leader", 7, 7) is None
    assert "organisation 7, not 8" in rules.may_verify(PER_VISIT, "organization_leader", 7, 8)
    assert "only records of that organisation" in rules.may_verify(PER_VISIT, "organization_leader", 7, None)


def test_rule_cross_checks():
    assert rules.check_rule({"unit": "hour", "points_per_unit": 10, "daily_cap": 50, "yearly_cap": 40,
                             "verifier_roles": ["community_worker"]}) == {
        "daily_cap": ["must not exceed the yearly cap (40)"]}
    assert "daily_cap" in rules.check_rule({"unit": "occasion", "points_per_unit": 10, "daily_cap": 5,
                                            "verifier_roles": ["community_worker"]})
    assert "verifier_roles" in rules.check_rule({"unit": "hour", "points_per_unit": 1, "verifier_roles": ["mayor"]})


def test_the_service_day_is_the_day_in_china():
    late_utc = datetime(2026, 11, 20, 17, 30, tzinfo=timezone.utc)   # 01:30 on the 21st in Shanghai
    assert rules.service_day(late_utc) == date(2026, 11, 21)
    assert rules.service_day(datetime(2026, 11, 20, 23, 0)) == date(2026, 11, 20)  # naive: taken as China time


ACCOUNTS = {1: {"kind": "issuance", "balance": 0}, 2: {"kind": "person", "balance": 0},
            3: {"kind": "held", "balance": 0}}


def test_ledger_arithmetic_gives_entries_with_running_balances():
    transfers = [{"pk": 10, "debit_account": 1, "credit_account": 2, "amount": 30},
                 {"pk": 11, "debit_account": 2, "credit_account": 3, "amount": 20}]
    entries, balances = rules.entries_for(transfers, ACCOUNTS)
    assert entries == [(1, 10, -30, -30), (2, 10, 30, 30), (2, 11, -20, 10), (3, 11, 20, 20)]
    assert balances == {1: -30, 2: 10, 3: 20}
    assert sum(e[2] for e in entries) == 0


def test_a_person_cannot_go_below_zero_but_issuance_can():
    with pytest.raises(InsufficientPoints) as err:
        rules.entries_for([{"pk": 1, "debit_account": 2, "credit_account": 3, "amount": 1}], ACCOUNTS)
    assert err.value.fields == {"amount": ["only 0 points are available"]}
    rules.entries_for([{"pk": 1, "debit_account": 1, "credit_account": 2, "amount": 5}], ACCOUNTS)


def test_competition_ranks_share_ties_and_skip():
    rows = [{"id": i, "p": p} for i, p in enumerate([50, 80, 50, 10])]
    ranks = {row["id"]: rank for row, rank in rules.competition_ranks(rows, key=lambda r: r["p"])}
    assert ranks == {1: 1, 0: 2, 2: 2, 3: 4}


def test_rule_versions_from_rows():
    row = {"category_code": "x", "version": 3, "unit": "hour", "points_per_unit": 4, "daily_cap": None,
           "yearly_cap": 9, "verifier_roles": ["community_worker"], "valid_from": clock.today() - timedelta(1)}
    assert Rule.from_row(row) == Rule("x", 3, "hour", 4, None, 9, ("community_worker",))
