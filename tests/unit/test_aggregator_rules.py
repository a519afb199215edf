"""Aggregator rules without I/O: ancestors, what a fact adds where, whom to trust, medians, small cells."""
from datetime import date
from decimal import Decimal

from hypothesis import given, settings, strategies as st

from services.aggregator import rules
from shared import facts

KEY = facts.Signer(facts._b64(b"\x07" * 32))
OTHER = facts.Signer(facts._b64(b"\x08" * 32))


def test_ancestors_stop_at_the_instances_root():
    assert rules.ancestors("310110012003", "310110") == ["310110", "310110012", "310110012003"]
    assert rules.ancestors("310110012003", "310110012") == ["310110012", "310110012003"]
    assert rules.ancestors("310110012003001", "3101") == ["3101", "310110", "310110012", "310110012003",
                                                          "310110012003001"]


def test_a_fact_adds_its_delta_and_measure_per_node_period_and_dimension():
    f = facts.fact("points_posted", "310110012003", "2026-11-20", points=30, hours=2.25,
                   category="security_patrol", member_category="party_member")
    cells = rules.contributions(f, "310110012", {})
    total = cells[("310110012", "year", date(2026, 1, 1), "points_posted", "", "")]
    assert total == [1, Decimal("30")]
    assert cells[("310110012003", "day", date(2026, 11, 20), "service_hours", "category", "security_patrol")] == \
        [1, Decimal("2.25")]
    # 2 nodes x 3 periods x (total + category + member_category) x 2 metrics
    assert len(cells) == 2 * 3 * 3 * 2


def test_lists_count_per_element_and_unknown_types_add_nothing():
    f = facts.fact("resident_registered", "310110012003", "2026-11-20", tags=["elderly_alone", "disabled"],
                   sex="F", free_text_would_not_be_here="x")
    cells = rules.contributions(f, "310110012003", {})
    assert cells[("310110012003", "month", date(2026, 11, 1), "residents", "tags", "disabled")] == [1, 0]
    assert not any(k[4] == "free_text_would_not_be_here" for k in cells)
    assert rules.contributions(facts.fact("something_new", "310110012003", "2026-11-20"), "310110012", {}) == {}


def test_trust_takes_the_senders_key_and_subtree():
    src = {"service": "registry", "level": "street", "node_code": "310110012", "instance": "s"}
    good = KEY.sign(facts.batch(src, [facts.fact("resident_registered", "310110012003", "2026-11-20")]))
    keys = {"310110": OTHER.public_key, "310110012": KEY.public_key}
    assert rules.refusal(good, "310110", keys) is None
    assert "signature" in rules.refusal(good, "310110", {**keys, "310110012": OTHER.public_key})
    assert "registered children" in rules.refusal(good, "310110", {"310110": OTHER.public_key})
    outside = KEY.sign(facts.batch(src, [facts.fact("resident_registered", "310110013003", "2026-11-20")]))
    assert "subtree" in rules.refusal(outside, "310110", keys)
    assert rules.refusal({"facts": "no"}, "310110", keys) == "not a fact batch"


def test_medians_come_from_distributions():
    assert rules.median_from({"3": 2, "10": 1, "30": 1}) == 6.5       # 3, 3, 10, 30: between the middle two
    assert rules.median_from({"3": 1, "10": 1, "30": 1}) == 10.0
    assert rules.median_from({}) is None


def test_a_cohorts_band_is_the_age_it_reaches_in_the_year_read():
    assert facts.age_band_of(2008, date(2025, 12, 31)) == "0-17"
    assert facts.age_band_of(2008, date(2026, 1, 1)) == "18-34"      # turns 18 in 2026, whatever the day
    assert facts.age_band_of("1946", date(2026, 6, 1)) == "80+"      # cohorts come back from the roll-ups as text
    assert facts.age_band_of(1967, date(2026, 6, 1)) == "35-59"
    assert facts.age_band_of(2027, date(2026, 6, 1)) == "0-17"       # before its birth year: only zeros there


def test_stock_cells_by_band_are_made_from_cohorts_at_each_period():
    day1, day2 = date(2025, 12, 31), date(2026, 1, 1)
    cells = {("310110012", "day", day1, "residents", "cohort", "2008"): (3, Decimal(0)),
             ("310110012", "day", day2, "residents", "cohort", "2008"): (3, Decimal(0)),
             ("310110012", "day", day2, "residents", "cohort", "1995"): (2, Decimal(0)),
             # A band a fact carried itself is stale as soon as its people age: not shown.
             ("310110012", "day", day2, "residents", "age_band", "0-17"): (7, Decimal(0)),
             ("310110012", "day", day2, "residents", "", ""): (5, Decimal(0))}
    banded = rules.age_band_cells(cells)
    assert banded == {("310110012", "day", day1, "residents", "age_band", "0-17"): (3, Decimal(0)),
                      ("310110012", "day", day2, "residents", "age_band", "18-34"): (5, Decimal(0)),
                      ("310110012", "day", day2, "residents", "", ""): (5, Decimal(0))}
    kept = rules.age_band_cells(cells, keep_cohorts=True)
    assert kept[("310110012", "day", day2, "residents", "cohort", "1995")] == (2, Decimal(0))
    assert rules.stock_dims(["", "age_band"]) == ["", "age_band", "cohort"] and rules.stock_dims(["sex"]) == ["sex"]


SRC = {"service": "consultation", "level": "street", "node_code": "310110012", "instance": "s"}
KEYS = {"310110": OTHER.public_key, "310110012": KEY.public_key}


def signed(*fs):
    return KEY.sign(facts.batch(SRC, list(fs)))


def test_a_fact_the_roll_ups_could_not_take_refuses_its_batch_naming_the_fact():
    ok = facts.fact("matter_settled", "310110012003", "2026-11-20", days_to_settle=4.5, on_time=True)
    assert rules.refusal(signed(ok), "310110", KEYS) is None
    cases = [({**ok, "dims": ["days_to_settle"]}, "dims that are not an object"),
             ({**ok, "delta": "two"}, "delta"), ({**ok, "delta": True}, "delta"), ({**ok, "delta": 10 ** 12}, "delta"),
             ({**ok, "dims": {"days_to_settle": "NaN"}}, "finite"),
             ({**ok, "dims": {"days_to_settle": 3000000000}}, "sane size"),
             ({**ok, "dims": {"days_to_settle": "abc"}}, "not a number"),
             ({**ok, "dims": {"days_to_settle": 4.125}}, "two places"),
             ({**ok, "dims": {"days_to_settle": [4]}}, "not a number"),
             (facts.fact("points_posted", "310110012003", "2026-11-20", points="1e400"), "finite")]
    for bad, why in cases:
        refused = rules.refusal(signed(ok, bad), "310110", KEYS)
        assert refused and bad["fact_id"] in refused and why in refused, (bad, refused)


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                       max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(sorted(rules.METRICS)), delta=JSONISH,
       dims=st.one_of(JSONISH, st.dictionaries(st.sampled_from(sorted(rules.DIMENSIONS | {"points", "hours"})),
                                               JSONISH, max_size=4)))
def test_whatever_a_fact_holds_a_batch_is_either_refused_or_rolled_up(kind, delta, dims):
    """No fact in a batch refusal lets through fails the roll-ups (rules.reduce and expand), and every days
    to settle it leaves in them is one the median can order."""
    f = {**facts.fact(kind, "310110012003", "2026-11-20"), "delta": delta, "dims": dims}
    if rules.refusal(signed(f), "310110", KEYS) is None:
        cells = rules.expand(rules.reduce([f]), "310110")
        assert all(rules.median_from({k[5]: 1}) is not None for k in cells
                   if k[3] == "matters_settled" and k[4] == "days_to_settle")
