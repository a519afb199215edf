"""Organisation status machine, membership and project rules, worker appointments and assessments: no I/O."""
from datetime import date
from decimal import Decimal

import pytest

from services.registry import civic_rules as rules
from services.registry.identity import check_character

TODAY = date(2025, 6, 30)


def org(status="active", status_on=date(2020, 1, 1), founded_on=date(2019, 5, 4), **over):
    return {"id": 7, "status": status, "status_on": status_on, "founded_on": founded_on, "category": "volunteer_team",
            "subcategory": "security_patrol", "activities": ["public_safety", "civility"], **over}


def id_number(birth="19800101", seq="123"):
    first17 = "310110" + birth + seq
    return first17 + check_character(first17)


# -- the organisation's status machine ---------------------------------------------------

@pytest.mark.parametrize("current, target", [
    ("filed", "active"), ("active", "suspended"), ("suspended", "active"),
    ("filed", "dissolved"), ("active", "dissolved"), ("suspended", "dissolved"),
])
def test_allowed_transitions(current, target):
    assert rules.check_transition(org(current), target, TODAY, TODAY) == {}


@pytest.mark.parametrize("current, target, says", [
    ("filed", "suspended", "allowed: active, dissolved"),
    ("suspended", "filed", "allowed: active, dissolved"),
    ("active", "filed", "allowed: suspended, dissolved"),
    ("dissolved", "active", "dissolved is final"),
    ("dissolved", "filed", "dissolved is final"),
    ("active", "active", "already active"),
])
def test_illegal_transitions_name_the_status_field(current, target, says):
    errors = rules.check_transition(org(current), target, TODAY, TODAY)
    assert list(errors) == ["status"] and says in errors["status"][0]


def test_every_status_can_reach_dissolution_and_none_leaves_it():
    assert all("dissolved" in rules.TRANSITIONS[s] for s in rules.ORG_STATUSES if s != "dissolved")
    assert rules.TRANSITIONS["dissolved"] == ()
    assert set(rules.TRANSITIONS) == set(rules.ORG_STATUSES)


@pytest.mark.parametrize("effective, says", [
    (date(2025, 7, 1), "future"),
    (date(2019, 12, 31), "last status change"),
])
def test_a_transition_happens_on_a_plausible_day(effective, says):
    errors = rules.check_transition(org("active"), "suspended", effective, TODAY)
    assert says in errors["effective"][0]


def test_dissolution_may_not_precede_the_last_join():
    errors = rules.check_transition(org("active"), "dissolved", date(2024, 1, 1), TODAY, last_joined=date(2024, 3, 1))
    assert "last member joined" in errors["effective"][0]
    # Suspension does not end memberships, so joins do not bound it.
    assert rules.check_transition(org("active"), "suspended", date(2024, 1, 1), TODAY, date(2024, 3, 1)) == {}


# -- members -------------------------------------------------------------------------------

def test_members_join_working_organisations_only():
    assert rules.check_join(org("filed"), TODAY, TODAY) == {}
    assert rules.check_join(org("active"), TODAY, TODAY) == {}
    for status in ("suspended", "dissolved"):
        assert "only filed or active" in rules.check_join(org(status), TODAY, TODAY)["status"][0]
    assert "future" in rules.check_join(org(), date(2025, 7, 1), TODAY)["joined_on"][0]
    assert "founding" in rules.check_join(org(), date(2019, 5, 3), TODAY)["joined_on"][0]


def test_the_leader_cannot_simply_leave():
    assert "another leader" in rules.check_leave({"role": "leader", "joined_on": date(2020, 1, 1)},
                                                 TODAY, TODAY)["resident_id"][0]
    member = {"role": "member", "joined_on": date(2024, 1, 1)}
    assert rules.check_leave(member, TODAY, TODAY) == {}
    assert "joining" in rules.check_leave(member, date(2023, 12, 31), TODAY)["left_on"][0]
    assert "future" in rules.check_leave(member, date(2025, 7, 1), TODAY)["left_on"][0]


# -- projects -------------------------------------------------------------------------------

def project(**over):
    return {"name": "长者助餐", "funder": "长海路街道办事处", "budget": Decimal("120000.00"),
            "starts_on": date(2025, 1, 1), "ends_on": date(2025, 12, 31), **over}


def test_a_good_project_passes():
    assert rules.check_project(org(), project()) == {}
    assert rules.check_project(org(), project(budget=Decimal("0"), ends_on=date(2025, 1, 1))) == {}


@pytest.mark.parametrize("over, field, says", [
    ({"budget": Decimal("-0.01")}, "budget", "negative"),
    ({"budget": Decimal("1.005")}, "budget", "2 decimal places"),
    ({"budget": Decimal("1000000000000")}, "budget", "exceed"),
    ({"budget": Decimal("NaN")}, "budget", "finite"),
    ({"budget": Decimal("Infinity")}, "budget", "finite"),
    ({"ends_on": date(2024, 12, 31)}, "ends_on", "before starts_on"),
    ({"starts_on": date(2019, 5, 3), "ends_on": date(2019, 6, 1)}, "starts_on", "founded"),
])
def test_bad_projects_name_the_field(over, field, says):
    errors = rules.check_project(org(), project(**over))
    assert says in errors[field][0]


def test_suspended_organisations_take_no_projects_and_errors_accumulate():
    errors = rules.check_project(org("suspended"), project(budget=Decimal("-1"), ends_on=date(2024, 1, 1)))
    assert set(errors) == {"status", "budget", "ends_on"}


def test_budgets_travel_up_as_exact_fen():
    assert rules.budget_cents(Decimal("120000.10")) == 12000010
    assert rules.budget_cents(Decimal("0.01")) == 1
    assert isinstance(rules.budget_cents(Decimal("5")), int)


def test_organisation_dims_carry_no_name_or_leader():
    dims = rules.org_dims({**org(), "name": "长海一村平安巡逻队", "leader_resident_id": 3})
    assert dims == {"category": "volunteer_team", "subcategory": "security_patrol", "status": "active",
                    "activities": ["civility", "public_safety"]}


# -- workers -------------------------------------------------------------------------------

def appointment(**over):
    return {"name": "陈志明", "id_number": id_number(), "phone": "139 1627 5318", "role": "grid_worker",
            "community_code": "310110012001", "grid_code": "310110012001001", "origin": "recruited",
            "started_on": date(2022, 3, 1), **over}


def test_a_good_appointment_is_normalised():
    clean, errors = rules.check_worker(appointment(id_number=id_number().lower()), TODAY)
    assert errors == {}
    assert clean["phone"] == "13916275318" and clean["id_number"] == id_number()


@pytest.mark.parametrize("over, field", [
    ({"grid_code": None}, "grid_code"),                               # a grid worker needs a grid
    ({"grid_code": "310110012002001"}, "grid_code"),                  # another community's grid
    ({"id_number": "310110198001011234"}, "id_number"),               # check character
    ({"phone": "12345"}, "phone"),
    ({"started_on": date(2025, 7, 1)}, "started_on"),                 # future
    ({"id_number": id_number("20100101"), "started_on": date(2025, 1, 1)}, "started_on"),  # 15 years old
])
def test_bad_appointments_name_the_field(over, field):
    _, errors = rules.check_worker(appointment(**over), TODAY)
    assert field in errors, errors


def test_other_roles_need_no_grid():
    _, errors = rules.check_worker(appointment(role="secretary", grid_code=None, phone=None), TODAY)
    assert errors == {}


def worker(status="active", started_on=date(2022, 3, 1), left_on=None):
    return {"id": 4, "status": status, "started_on": started_on, "left_on": left_on, "role": "member",
            "origin": "kept_on"}


def test_an_assessment_of_a_year_worked_passes():
    assert rules.check_assessment(worker(), 2024, Decimal("86.5"), date(2024, 12, 20), TODAY) == {}
    assert rules.check_assessment(worker(), 2022, Decimal("0"), date(2023, 1, 10), TODAY) == {}
    assert rules.check_assessment(worker(), 2025, Decimal("100"), TODAY, TODAY) == {}


@pytest.mark.parametrize("year, score, assessed_on, field, says", [
    (2026, "80", TODAY, "year", "future"),
    (2021, "80", TODAY, "year", "started"),
    (2024, "100.01", TODAY, "score", "between"),
    (2024, "-1", TODAY, "score", "between"),
    (2024, "80.125", TODAY, "score", "decimal"),
    (2024, "NaN", TODAY, "score", "between"),
    (2024, "80", date(2025, 7, 1), "assessed_on", "future"),
    (2024, "80", date(2023, 12, 31), "assessed_on", "2024-01-01"),
    (2022, "80", date(2022, 2, 1), "assessed_on", "2022-03-01"),      # before the worker started
])
def test_bad_assessments_name_the_field(year, score, assessed_on, field, says):
    errors = rules.check_assessment(worker(), year, Decimal(score), assessed_on, TODAY)
    assert says in errors[field][0], errors


def test_a_worker_who_left_is_not_assessed_nor_leaves_again():
    gone = worker("left", left_on=date(2024, 6, 1))
    assert "left on 2024-06-01" in rules.check_assessment(gone, 2024, Decimal(80), TODAY, TODAY)["status"][0]
    assert "status" in rules.check_worker_leave(gone, TODAY, TODAY)


def test_leaving_happens_after_starting():
    assert rules.check_worker_leave(worker(), TODAY, TODAY) == {}
    assert "first day" in rules.check_worker_leave(worker(), date(2022, 2, 28), TODAY)["left_on"][0]


@pytest.mark.parametrize("score, band", [("100", "90-100"), ("90", "90-100"), ("89.99", "80-89"),
                                         ("60", "60-69"), ("59.99", "0-59"), ("0", "0-59")])
def test_scores_travel_up_banded(score, band):
    assert rules.score_band(Decimal(score)) == band


def test_secretary_and_director_are_single_seats():
    assert set(rules.SINGLE_SEATS) == {"secretary", "director"} <= set(rules.WORKER_ROLES)


def test_a_departure_or_death_does_not_precede_a_membership_or_appointment():
    joined = date(2024, 5, 1)
    assert rules.check_residence_end("left", joined, joined, "joining") == {}
    assert rules.check_residence_end("left", date(2024, 4, 30), joined, "joining (2024-05-01)") == {
        "effective": ["must not be before joining (2024-05-01)"]}
    assert set(rules.check_residence_end("deceased", date(2024, 4, 30), joined, "x")) == {"date_of_death"}
    # The reasons the registry records itself are not offered to a clerk.
    assert set(rules.RESIDENCE_ENDED_REASONS.values()).isdisjoint(rules.LEAVE_REASONS)
