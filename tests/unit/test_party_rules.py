"""Dual management (双重管理) rules: the report state machine, posts, dates, placement, the report rate."""
from datetime import date

import pytest

from services.registry import party_rules as rules

TODAY = date(2024, 6, 1)
BORN = date(1970, 3, 14)


def member(**over):
    m = {"resident_id": 7, "community_code": "310110012001", "category": "on_the_job", "joined_party": date(1995, 7, 1),
         "report_status": "unreported", "reported_on": None, "posts": [], "withdrawn_on": None,
         "party_org_id": None, "org_kind": None, "resident_status": "active"}
    m.update(over)
    return m


REPORTED = {"report_status": "reported", "reported_on": date(2024, 3, 1), "posts": ["security_patrol"]}
WITHDRAWN = {"report_status": "withdrawn", "withdrawn_on": date(2024, 4, 1)}


@pytest.mark.parametrize("status, action, after", [
    ("unreported", "report", "reported"), ("reported", "withdraw", "withdrawn"), ("withdrawn", "report", "reported"),
    ("unreported", "withdraw", "withdrawn"), ("reported", "relocate", "unreported"),
    ("unreported", "relocate", "unreported"),
    ("reported", "report", None), ("withdrawn", "withdraw", None), ("withdrawn", "relocate", None),
    ("unreported", "fly", None)])
def test_the_state_machine(status, action, after):
    assert rules.next_status(status, action) == after


@pytest.mark.parametrize("category", list(rules.CATEGORIES))
def test_every_category_may_report(category):
    posts, errors = rules.check_report(member(category=category), date(2024, 5, 1), ["environment"], TODAY)
    assert errors == {} and posts == ["environment"]


def test_a_report_needs_one_to_five_known_posts_and_repeats_are_dropped():
    posts, errors = rules.check_report(member(), TODAY, ["civility", "civility", "volunteer"], TODAY)
    assert errors == {} and posts == ["civility", "volunteer"]
    assert "posts" in rules.check_report(member(), TODAY, [], TODAY)[1]
    assert "posts" in rules.check_report(member(), TODAY, list(rules.POSTS)[:6], TODAY)[1]
    _, errors = rules.check_report(member(), TODAY, ["civility", "dancing"], TODAY)
    assert "dancing" in errors["posts"][0]


@pytest.mark.parametrize("day, over, message", [
    (date(2024, 6, 2), {}, "future"),
    (date(1995, 6, 30), {}, "joining the party"),
    (date(2024, 3, 31), WITHDRAWN, "last withdrawal"),
])
def test_report_dates(day, over, message):
    _, errors = rules.check_report(member(**over), day, ["volunteer"], TODAY)
    assert message in errors["reported_on"][0]


def test_reporting_twice_is_refused_on_status_and_names_the_state():
    _, errors = rules.check_report(member(**REPORTED), TODAY, ["volunteer"], TODAY)
    assert list(errors) == ["status"]
    assert "reported since 2024-03-01" in errors["status"][0] and "unreported or withdrawn" in errors["status"][0]


def test_a_withdrawn_member_reports_again():
    posts, errors = rules.check_report(member(**WITHDRAWN), date(2024, 4, 1), ["care_visits"], TODAY)
    assert errors == {} and posts == ["care_visits"]


def test_only_a_resident_of_the_street_reports():
    _, errors = rules.check_report(member(resident_status="deceased", **WITHDRAWN), TODAY, ["volunteer"], TODAY)
    assert "deceased" in errors["status"][0]


def test_withdrawal():
    assert rules.check_withdrawal(member(**REPORTED), TODAY, TODAY) == {}
    assert rules.check_withdrawal(member(), TODAY, TODAY) == {}  # registered by mistake, or never came
    assert list(rules.check_withdrawal(member(**WITHDRAWN), TODAY, TODAY)) == ["status"]
    assert "future" in rules.check_withdrawal(member(**REPORTED), date(2024, 6, 2), TODAY)["effective"][0]
    assert "2024-03-01" in rules.check_withdrawal(member(**REPORTED), date(2024, 2, 1), TODAY)["effective"][0]
    assert "1995-07-01" in rules.check_withdrawal(member(), date(1990, 1, 1), TODAY)["effective"][0]


def test_registration_dates():
    ok = {"category": "retired", "membership_org": "上海电气集团党委", "joined_party": date(1988, 3, 14)}
    assert rules.check_registration(ok, BORN, TODAY) == {}
    assert "18th birthday" in rules.check_registration({**ok, "joined_party": date(1988, 3, 13)}, BORN, TODAY)[
        "joined_party"][0]
    assert "18th birthday" in rules.check_registration({**ok, "joined_party": date(1960, 1, 1)}, BORN, TODAY)[
        "joined_party"][0]  # before birth
    assert "future" in rules.check_registration({**ok, "joined_party": date(2024, 6, 2)}, BORN, TODAY)["joined_party"][0]


ORGS = {"committee": {"id": 1, "community_code": "310110012001", "kind": "committee", "name": "长海一村党委"},
        "branch": {"id": 2, "community_code": "310110012001", "kind": "branch", "name": "第一党支部"},
        "group": {"id": 3, "community_code": "310110012001", "kind": "group", "name": "12号楼党小组"},
        "elsewhere": {"id": 4, "community_code": "310110012002", "kind": "branch", "name": "二村党支部"}}


@pytest.mark.parametrize("org, over, field, message", [
    ("branch", {}, None, None),
    ("group", {"party_org_id": 2, "org_kind": "branch"}, None, None),
    ("committee", {}, "party_org_id", "branch or a group"),
    ("elsewhere", {}, "party_org_id", "310110012002"),
    (None, {}, "party_org_id", "no such"),
    ("branch", {"party_org_id": 2, "org_kind": "branch"}, "party_org_id", "already placed"),
    ("branch", WITHDRAWN, "status", "report again"),
])
def test_placement(org, over, field, message):
    errors = rules.check_placement(member(**over), ORGS.get(org))
    if field is None:
        assert errors == {}
    else:
        assert message in errors[field][0]


@pytest.mark.parametrize("kind, parent, building_given, building, field", [
    ("committee", None, False, None, None),
    ("committee", "committee", False, None, "parent_id"),
    ("branch", "committee", False, None, None),
    ("branch", None, False, None, "parent_id"),          # no committee yet
    ("branch", "branch", False, None, "parent_id"),
    ("group", "branch", True, {"id": 9, "name": "12号"}, None),
    ("group", "committee", False, None, "parent_id"),     # a group sits in a branch
    ("group", "elsewhere", False, None, "parent_id"),     # of the same community
    ("group", "branch", True, None, "building"),          # unknown building
    ("branch", "committee", True, {"id": 9, "name": "12号"}, "building"),
])
def test_the_shape_of_the_party_structure(kind, parent, building_given, building, field):
    errors = rules.check_org(kind, "310110012001", ORGS.get(parent), building_given, building)
    assert list(errors) == ([field] if field else [])


def test_a_branch_without_a_committee_says_so():
    assert "no party committee yet" in rules.check_org("branch", "310110012001", None, False, None)["parent_id"][0]


def test_relocation_resets_the_report_unless_withdrawn():
    assert rules.relocation(member(**REPORTED), "310110012002", "active") == "unreported"
    assert rules.relocation(member(), "310110012002", "active") == "unreported"
    assert rules.relocation(member(**REPORTED), "310110012001", "active") is None   # same community
    assert rules.relocation(member(**WITHDRAWN), "310110012002", "active") is None
    assert rules.relocation(member(**REPORTED), "310110012002", "left") is None


@pytest.mark.parametrize("reported, members, rate", [(0, 0, None), (0, 3, 0.0), (1, 3, 0.3333), (2, 3, 0.6667),
                                                     (3, 3, 1.0)])
def test_report_rate(reported, members, rate):
    assert rules.report_rate(reported, members) == rate


def test_report_rate_refuses_impossible_counts():
    with pytest.raises(ValueError):
        rules.report_rate(4, 3)


def test_withdrawn_members_are_not_expected_to_report():
    assert [s for s in rules.STATUSES if rules.counts_toward_rate(s)] == ["unreported", "reported"]


def test_fact_dimensions_are_de_identified():
    dims = rules.fact_dims(member(name="王秀英", membership_org="上海电气集团党委", posts=["volunteer", "civility"],
                                  **{k: v for k, v in REPORTED.items() if k != "posts"}), BORN)
    assert dims == {"category": "on_the_job", "report_status": "reported", "cohort": BORN.year, "org_kind": None,
                    "posts": ["civility", "volunteer"]}
