"""The hierarchy's rules, without a database."""
from datetime import date

import pytest

from services.registry import domain
from services.registry.domain import Node
from shared.errors import Conflict, NotFound, ValidationFailed

STREET = Node("310110012", "长海路街道", "street", "310110", date(2020, 1, 1))
COMMUNITY = Node("310110012001", "长海一村居委会", "community", "310110012", date(2020, 1, 1))
TODAY = date(2026, 11, 23)


@pytest.mark.parametrize("code, level, parent", [
    ("3101", "city", None), ("310110", "district", "3101"), ("310110012", "street", "310110"),
    ("310110012001", "community", "310110012"), ("310110012001001", "grid", "310110012001"),
])
def test_levels_and_parents_follow_the_code(code, level, parent):
    assert domain.level_for(code) == level
    assert domain.parent_code_of(code) == parent


def new(code, level="community", name="新社区", valid_from=TODAY, parent=STREET, existing=None):
    domain.validate_new(code, level, name, valid_from, parent, existing, "310110012", TODAY)


def test_a_valid_community_passes():
    new("310110012006")


@pytest.mark.parametrize("code, level, field, fragment", [
    ("3101100120061", "community", "code", "has 12 digits, got 13"),
    ("31011001200x", "community", "code", "digits only"),
    ("310110013006", "community", "code", "outside this instance"),
    ("310110012006", "hamlet", "level", "must be one of"),
])
def test_bad_codes_name_the_field(code, level, field, fragment):
    with pytest.raises(ValidationFailed) as err:
        new(code, level)
    assert fragment in err.value.fields[field][0]


def test_missing_retired_or_younger_parent_is_refused():
    with pytest.raises(ValidationFailed) as err:
        new("310110012006", parent=None)
    assert "310110012 is not registered" in err.value.fields["parent_code"][0]
    retired = Node(**{**STREET.__dict__, "valid_to": date(2025, 1, 1)})
    with pytest.raises(ValidationFailed, match="retired"):
        new("310110012006", parent=retired)
    with pytest.raises(ValidationFailed) as err:
        new("310110012006", valid_from=date(2019, 12, 31))
    assert "valid_from" in err.value.fields


def test_duplicates_conflict_and_only_managed_levels_are_created():
    with pytest.raises(Conflict):
        new("310110012001", existing=COMMUNITY)
    with pytest.raises(ValidationFailed) as err:
        domain.validate_new("310110012", "street", "x", TODAY, Node("310110", "杨浦区", "district", "3101",
                                                                   date(2020, 1, 1)), None, "310110012", TODAY)
    assert "level" in err.value.fields


def test_parent_claim_must_be_the_prefix():
    assert domain.check_parent_claim("310110012006", "310110012") == {}
    assert "parent_code" in domain.check_parent_claim("310110012006", "310110013")


def test_changes_need_an_active_managed_node_inside():
    with pytest.raises(NotFound):
        domain.ensure_changeable(None, "310110012099", "310110012")
    with pytest.raises(ValidationFailed, match="cannot be changed"):
        domain.ensure_changeable(STREET, STREET.code, "310110012")
    gone = Node(**{**COMMUNITY.__dict__, "valid_to": date(2024, 1, 1)})
    with pytest.raises(Conflict, match="retired"):
        domain.ensure_changeable(gone, gone.code, "310110012")


def test_retirement_rules():
    grid = Node("310110012001001", "第一网格", "grid", "310110012001", date(2020, 1, 1))
    with pytest.raises(ValidationFailed) as err:
        domain.validate_retirement(COMMUNITY, date(2024, 1, 1), None, [grid])
    assert "1 active child" in err.value.fields["code"][0]
    with pytest.raises(ValidationFailed) as err:
        domain.validate_retirement(COMMUNITY, date(2019, 1, 1), COMMUNITY, [])
    assert set(err.value.fields) == {"valid_to", "successor_code"}
    other_street = Node("310110013001", "时代花园居委会", "community", "310110013", date(2020, 1, 1))
    with pytest.raises(ValidationFailed, match="cannot be retired"):
        domain.validate_retirement(COMMUNITY, date(2024, 1, 1), other_street, [])
    sibling = Node("310110012002", "长海二村居委会", "community", "310110012", date(2020, 1, 1))
    domain.validate_retirement(COMMUNITY, date(2024, 1, 1), sibling, [])


def test_split_rules():
    parts = [{"code": "310110012007", "name": "东"}, {"code": "310110012008", "name": "西"}]
    domain.validate_split(COMMUNITY, parts, date(2024, 1, 1), set(), [])
    with pytest.raises(ValidationFailed) as err:
        domain.validate_split(COMMUNITY, parts[:1], date(2024, 1, 1), set(), [])
    assert "parts" in err.value.fields
    bad = [{"code": "310110013007", "name": "外"}, {"code": "310110012008", "name": "西"}]
    with pytest.raises(ValidationFailed) as err:
        domain.validate_split(COMMUNITY, bad, date(2024, 1, 1), {"310110012008"}, [])
    assert set(err.value.fields) == {"parts.0.code", "parts.1.code"}
