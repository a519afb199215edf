"""The rules for node codes a request names (shared/nodes.py) and for what a roll-up may be asked for
(services/aggregator/rules.query_problems), without I/O: the registry's answer is a dict, as get_node
sends it over RPC (dates as ISO text)."""
from datetime import date

import pytest

from services.aggregator import rules
from shared import nodes
from shared.errors import NotFound, ValidationFailed

TODAY = date(2026, 5, 20)
REGISTER = {
    "310110012001": {"code": "310110012001", "name": "长海一村居委会", "level": "community",
                     "valid_from": "2020-01-01", "valid_to": None},
    "310110012009": {"code": "310110012009", "name": "旧居委会", "level": "community",
                     "valid_from": "2020-01-01", "valid_to": "2026-05-20"},
    "310110012008": {"code": "310110012008", "name": "昨日居委会", "level": "community",
                     "valid_from": "2020-01-01", "valid_to": "2026-05-21"},
    "310110012001001": {"code": "310110012001001", "name": "第一网格", "level": "grid",
                        "valid_from": "2020-01-01", "valid_to": None},
}


def lookup(code):
    if code not in REGISTER:
        raise NotFound(f"node {code} does not exist", {"code": [f"{code} is not registered"]})
    return REGISTER[code]


def test_a_live_community_is_answered_as_the_registry_has_it():
    assert nodes.live(lookup, "310110012001", "community_code", TODAY, level="community")["name"] == "长海一村居委会"


@pytest.mark.parametrize("code, level, message", [
    ("310110012893", "community", "310110012893 is not a registered node"),
    # valid_to is the first day the node no longer exists: retired today is retired.
    ("310110012009", "community", "310110012009 (旧居委会) was retired on 2026-05-20"),
    ("310110012001001", "community", "310110012001001 is a grid, not a community"),
])
def test_a_write_naming_a_node_that_is_not_live_is_a_422_on_the_field(code, level, message):
    with pytest.raises(ValidationFailed) as err:
        nodes.live(lookup, code, "community_code", TODAY, level=level)
    assert err.value.fields == {"community_code": [message]}


def test_a_node_is_live_up_to_the_day_before_its_end_and_from_its_start():
    assert nodes.why_not_live(REGISTER["310110012008"], TODAY) is None
    assert nodes.why_not_live(REGISTER["310110012008"], date(2026, 5, 21)) is not None
    assert nodes.why_not_live(REGISTER["310110012001"], date(2019, 12, 31)) == \
        "310110012001 (长海一村居委会) is valid only from 2020-01-01"
    assert nodes.why_not_live({**REGISTER["310110012001"], "valid_from": date(2020, 1, 1)}, TODAY) is None


def test_a_query_needs_only_a_registered_node_and_names_its_parameter():
    assert nodes.known(lookup, "310110012009", "under")["name"] == "旧居委会"   # history may be read
    with pytest.raises(NotFound) as err:
        nodes.known(lookup, "310110012893", "under")
    assert err.value.fields == {"under": ["310110012893 is not a registered node"]}
    nodes.known_in(lookup, {"under": None}, "under")            # not named: the token's scope, not judged
    with pytest.raises(NotFound) as err:
        nodes.known_in(lookup, {"prefix": "31"}, "under", "prefix")
    assert list(err.value.fields) == ["prefix"]


def test_a_rollup_asks_for_a_metric_and_a_grouping_some_fact_feeds():
    assert rules.query_problems("residents", "none") == {}
    assert rules.query_problems("matters_settled", "dim:days_to_settle") == {}
    assert rules.query_problems("broadcast_read", "child") == {}
    problems = rules.query_problems("nope", "dim:nope")
    assert set(problems) == {"metric", "group"}
    assert "residents" in problems["metric"][0] and "age_band" in problems["group"][0]
    assert set(rules.query_problems("residents", "dim:")) == {"group"}
    # Every metric a fact feeds is askable, and nothing else.
    assert rules.KNOWN_METRICS == {m for pairs in rules.METRICS.values() for m, _ in pairs}
