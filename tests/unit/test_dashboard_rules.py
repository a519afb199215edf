"""The dashboard's pure rules: periods, node descriptions from facts, boundary files, link states, key
fingerprints. No I/O."""
import json
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.aggregator import dashboard, rules
from shared import federation, instance
from shared.facts import Signer

JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                    max_size=3), max_leaves=8)


@given(st.dates(date(2000, 1, 1), date(2100, 12, 31)), st.sampled_from(["month", "year"]))
def test_a_period_and_the_one_before_it_meet_and_hold_the_day(day, period):
    start, end, prev, prev_end = dashboard.period_of(period, day)
    assert start <= day <= end and prev <= prev_end
    assert prev_end + timedelta(days=1) == start
    assert (end + timedelta(days=1)).day == 1 and start.day == 1
    if period == "year":
        assert (start, end, prev) == (date(day.year, 1, 1), date(day.year, 12, 31), date(day.year - 1, 1, 1))
    else:
        assert prev.day == 1 and (prev.month, prev.year) == ((day.month - 2) % 12 + 1,
                                                            day.year - (day.month == 1))


@given(st.dictionaries(st.sampled_from(["name", "level", "valid_from", "valid_to", "successors", "predecessor",
                                        "version", "other"]), JSONISH), JSONISH)
def test_any_node_description_is_read_or_refused_never_raises(dims, node):
    row = rules.node_description({"type": "node_changed", "node": node, "dims": dims})
    if row is not None:
        assert isinstance(row["name"], str) and row["level"] in rules.LEVEL_NAMES
        assert all(len(c) == len(node) and c != node for c in row["successors"])
        json.dumps(row)


def test_a_split_is_read_with_its_successors_and_nothing_else():
    fact = {"type": "node_changed", "node": "310110012007",
            "dims": {"name": "新建居委会", "level": "community", "valid_from": "2020-01-01", "valid_to": "2026-09-01",
                     "successors": ["310110012008", "310110012009", "310110012", "x", "310110012007"],
                     "predecessor": None, "version": 2}}
    row = rules.node_description(fact)
    assert row["successors"] == ["310110012008", "310110012009"] and row["valid_to"] == "2026-09-01"
    assert rules.node_description({**fact, "dims": {**fact["dims"], "valid_to": "not a day"}}) is None
    assert rules.node_description({**fact, "dims": {**fact["dims"], "version": True}}) is None


def polygon(code, x=121.5, name="甲"):
    return {"type": "Feature", "properties": {"code": code, "name": name},
            "geometry": {"type": "Polygon", "coordinates": [[[x, 31.3], [x + .01, 31.3], [x + .01, 31.31], [x, 31.3]]]}}


def collection(*features):
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


def test_boundaries_inside_are_taken_and_outside_skipped():
    parsed, skipped = dashboard.parse_boundaries(collection(polygon("310110012001"), polygon("310110013001")),
                                                 "310110012")
    assert [code for code, _, _ in parsed] == ["310110012001"] and skipped == 1
    assert parsed[0][2]["type"] == "Polygon" and parsed[0][1] == "甲"


@pytest.mark.parametrize("change, said", [
    (lambda f: f["properties"].update(code="3101100x"), "properties.code"),
    (lambda f: f.update(geometry={"type": "Point", "coordinates": [121.5, 31.3]}), "Polygon or MultiPolygon"),
    (lambda f: f["geometry"]["coordinates"][0].pop(), "at least 4"),
    (lambda f: f["geometry"]["coordinates"][0].__setitem__(3, [121.6, 31.3]), "end where it starts"),
    (lambda f: f["geometry"]["coordinates"][0].__setitem__(1, [181, 31.3]), "longitude"),
    (lambda f: f["geometry"]["coordinates"][0].__setitem__(1, ["121", 31.3]), "longitude"),
])
def test_a_wrong_feature_is_named_and_nothing_is_taken(change, said):
    good, bad = polygon("310110012001"), polygon("310110012002")
    change(bad)
    with pytest.raises(ValueError, match=said) as refused:
        dashboard.parse_boundaries(collection(good, bad), "310110012")
    assert "feature 2" in str(refused.value)


@pytest.mark.parametrize("text, said", [("{", "not JSON"), ("[]", "FeatureCollection"),
                                        (collection(), "no feature"),
                                        (collection(polygon("310110012001"), polygon("310110012001")), "twice")])
def test_a_file_that_is_not_boundaries_says_why(text, said):
    with pytest.raises(ValueError, match=said):
        dashboard.parse_boundaries(text, "310110012")


def test_a_child_is_running_only_while_every_link_of_it_runs():
    links = [{"upstream": "linli-child-310110012", "exchange": "facts", "status": "running"},
             {"upstream": "linli-child-310110012", "exchange": "cases", "status": "running"},
             {"upstream": "linli-child-310110013", "exchange": "facts", "status": "running"},
             {"upstream": "linli-child-310110013", "exchange": "cases", "status": "error"},
             {"upstream": "linli-child-310110014", "exchange": "facts", "status": "starting"},
             {"upstream": "linli-parent", "exchange": "directives", "status": "running"}]
    assert federation.child_link_states(links) == {"310110012": "running", "310110013": "down",
                                                   "310110014": "starting"}


def test_a_fingerprint_is_the_same_key_read_aloud():
    key = Signer("A" * 43).public_key
    print_ = instance.fingerprint(key)
    assert print_ == instance.fingerprint(key) and len(print_.split()) == 8
    assert print_ != instance.fingerprint(Signer("B" * 43).public_key)
    assert instance.fingerprint("not a key") is None and instance.fingerprint(None) is None


def test_the_demo_boundaries_are_what_their_maker_makes_and_serve_every_instance():
    from linli.demo import make_boundaries
    text = make_boundaries.OUT.read_text(encoding="utf-8")
    assert make_boundaries.render(make_boundaries.collection()) == text
    taken = {own: dashboard.parse_boundaries(text, own) for own in ("310110", "310110012", "310110013")}
    assert {code for code, _, _ in taken["310110"][0]} >= {"310110", "310110012", "310110013"}
    for street in ("310110012", "310110013"):
        codes = {code for code, _, _ in taken[street][0]}
        assert street in codes and all(c.startswith(street) for c in codes) and len(codes) > 3
        assert len(codes) + taken[street][1] == len(taken["310110"][0])


@pytest.mark.parametrize("text, said", [
    ("[" * 100_000 + "]" * 100_000, "not JSON"),
    (collection(polygon("310110012001")).replace("121.5,", "1" + "0" * 400 + ","), "longitude"),
])
def test_hostile_files_get_a_plain_refusal(text, said):
    with pytest.raises(ValueError, match=said):
        dashboard.parse_boundaries(text, "310110012")


def test_names_keep_printable_text_only():
    f = polygon("310110012001", name="长海\x00一村\ud800居委会\n")
    (parsed, _) = dashboard.parse_boundaries(collection(f), "310110012")
    assert parsed[0][1] == "长海一村居委会"


def test_a_split_never_crosses_a_parent_nor_lists_a_crowd():
    fact = {"type": "node_changed", "node": "310110012007",
            "dims": {"name": "甲", "level": "community", "valid_from": "2020-01-01", "valid_to": "2026-09-01",
                     "successors": ["310110013008", "310110012008"], "version": 2}}
    assert rules.node_description(fact)["successors"] == ["310110012008"]
    crowd = {**fact, "dims": {**fact["dims"], "successors": [f"310110012{n:03d}" for n in range(60)]}}
    assert rules.node_description(crowd) is None
