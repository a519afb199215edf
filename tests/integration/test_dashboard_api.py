"""The dashboard's API: its cards and drill-down rows are the roll-ups' figures under the same rule, nodes
are named and split from their facts, boundaries are imported and served, each child's freshness is told.

Real: the aggregator and the HTTP gateway of a street instance (this test's vhost and database),
PostgreSQL, RabbitMQ and its management API. Roll-ups are written straight into the table, as in
test_aggregate_views_api (counting is tested elsewhere); node facts go through the real ingest, in
batches signed with the instance's own key.
"""
import json
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st
from services.aggregator import ingest, store
from services.aggregator.service import AggregatorService
from services.gateway.service import GatewayService
from services.registry.service import RegistryService
from shared import clock, envelope, facts
from shared.db import transaction
from shared.messaging import apply_topology
from tests.integration.conftest import assert_problem
from tests.integration.test_cli import cli  # noqa: F401  (the `linli` command against this test's instance)
from tests.integration.test_aggregate_views_api import C1, C2, C3, ENTRIES, STREET, YEAR, year_figure
from tests.integration.test_suppression import day_cells, rollup_rows

ANALYST = "district_analyst"


def node_row(code, name, version=1, valid_to=None, successors=(), predecessor=None, valid_from=date(2020, 1, 1)):
    level = {9: "street", 12: "community", 15: "grid"}[len(code)]
    return {"code": code, "name": name, "level": level, "valid_from": valid_from, "valid_to": valid_to,
            "successor_codes": list(successors), "predecessor_code": predecessor, "version": version}


def describe(config, rows, extra=()):
    """Node facts for `rows` (plus raw `extra` facts), taken by the aggregator as its own registry's batch."""
    signer = facts.Signer.from_config(config)
    source = {"service": "registry", "level": "street", "node_code": STREET, "instance": STREET}
    batch = signer.sign(facts.batch(source, [facts.node_fact(r) for r in rows] + list(extra)))
    with transaction(config["DATABASE_URL"], "aggregator") as tx:
        return ingest.accept_many(tx, [batch], STREET, signer.public_key, "street", "dlq")


@pytest.fixture
def tree(config, container_factory, web_session, make_token):
    with transaction(config["DATABASE_URL"], "aggregator") as tx:
        with tx.conn.cursor().copy("COPY rollups (node, period, period_start, metric, dim, value, n, total) "
                                   "FROM STDIN") as copy:
            for key, n in rollup_rows(day_cells(ENTRIES)).items():
                if key[0].startswith(STREET):
                    copy.write_row((*key, n, 0))
    describe(config, [node_row(STREET, "长海路街道"), node_row(C1, "长海一村居委会"), node_row(C2, "长海二村居委会"),
                      node_row(C3, "民星一村居委会")])
    # The registry too: at a street it is the authority on which nodes exist (a 404 for one it lacks).
    apply_topology(config, [AggregatorService, GatewayService, RegistryService])
    for cls in (AggregatorService, GatewayService, RegistryService):
        container_factory(cls, config).start()

    def client(role=ANALYST, prefix=STREET):
        auth = {"Authorization": f"Bearer {make_token(role, prefix=prefix, name='区民政局 分析员')}"}

        def get(path, expect=200, **params):
            resp = web_session.get(path, headers=auth, params=params)
            assert resp.status_code == expect, resp.text
            return resp
        return get
    return client


def test_the_cards_and_every_drill_down_row_are_the_roll_ups_figures(tree):
    get = tree()
    d = get("/api/v1/rollups/dashboard", node=STREET, period="year", start="2026-06-30").json()
    assert (d["start"], d["end"], d["previous_start"], d["name"]) == ("2026-01-01", "2026-12-31", "2025-01-01",
                                                                       "长海路街道")
    rows = {c["code"]: c for c in d["children"]}
    assert set(rows) == {C1, C2, C3} and rows[C1]["name"] == "长海一村居委会"
    for metric in ("residents", "matters_raised", "matters_settled"):
        assert d["figures"][metric] == year_figure(get, metric, STREET).get("", 0), metric
        per_child = year_figure(get, metric, STREET, "child")
        for code, row in rows.items():
            assert row["figures"][metric] == per_child.get(code, 0), (code, metric)
            assert row["previous"][metric] == 0
    # Three residents at C2 are hidden, never shown as 0, and so is what would give them back.
    assert rows[C2]["figures"]["residents"] is None
    assert rows[C1]["figures"]["settlement_rate"] is None   # raised 9, settled 7: the 2 would show
    raised, settled = year_figure(get, "matters_raised", STREET, "child"), year_figure(get, "matters_settled", STREET,
                                                                                       "child")
    for code, row in rows.items():   # a rate is shown only where both its counts are
        r, st = raised.get(code, 0), settled.get(code, 0)
        expected = None if r is None or st is None or not r else round(st / r, 4)
        assert row["figures"]["settlement_rate"] == expected, code
    by_type = year_figure(get, "residents", C1, "dim:residence_type")
    assert rows[C1]["figures"]["residents_by_residence_type"] == by_type
    # A month: June's flows, and May's before them, as the monthly roll-up lists them.
    m = get("/api/v1/rollups/dashboard", node=STREET, period="month", start="2026-06-15").json()
    assert (m["start"], m["previous_start"], m["previous_end"]) == ("2026-06-01", "2026-05-01", "2026-05-31")
    monthly = get("/api/v1/rollups", metric="matters_raised", node=STREET, period="month", group="child",
                  start="2026-05-01", end="2026-06-30").json()
    june = {s["key"]: p["n"] for s in monthly["series"] for p in s["points"] if p["period_start"] == "2026-06-01"}
    for row in m["children"]:
        assert row["figures"]["matters_raised"] == june.get(row["code"], 0), row["code"]


def test_a_street_admin_sees_every_count(tree):
    d = tree("street_admin")("/api/v1/rollups/dashboard", node=STREET, start="2026-06-30").json()
    rows = {c["code"]: c["figures"] for c in d["children"]}
    assert rows[C2]["residents"] == 3 and rows[C1]["settlement_rate"] == round(7 / 9, 4)


def test_bad_queries_are_field_problems(tree):
    get = tree()
    tomorrow = (clock.today() + timedelta(days=1)).isoformat()
    assert_problem(get("/api/v1/rollups/dashboard", 422, start=tomorrow), 422, "start")
    assert_problem(get("/api/v1/rollups/dashboard", 422, period="week"), 422, "period")
    assert_problem(get("/api/v1/rollups/dashboard", 422, start="2026-02-30"), 422, "start")
    assert_problem(get("/api/v1/rollups/dashboard", 403, node="310110013"), 403, "node")
    assert_problem(get("/api/v1/rollups/dashboard", 404, node=f"{STREET}099"), 404, "node")
    assert_problem(get("/api/v1/rollups/nodes", 403, node="310110013"), 403, "node")
    assert_problem(get("/api/v1/rollups/nodes", 404, node=f"{STREET}099"), 404, "node")
    assert_problem(get("/api/v1/rollups/boundaries", 404, node=f"{STREET}099"), 404, "node")
    assert_problem(get("/api/v1/rollups/dashboard", 422, start="1999-12-31"), 422, "start")
    assert_problem(get("/api/v1/rollups/dashboard", 422, period="month", start="0001-01-01"), 422, "start")
    assert_problem(get("/api/v1/rollups/boundaries", 422, node="310110012x"), 422, "node")
    # Scoped to one community, the analyst sees it and nothing beside it.
    one = tree(prefix=C3)
    assert [n["code"] for n in one("/api/v1/rollups/nodes").json()] == [C3]
    assert one("/api/v1/rollups/dashboard").json()["node"] == C3


def test_splits_and_merges_are_told_by_node_facts_and_survive_a_rebuild(tree, config):
    get = tree()
    a, b, c = f"{STREET}007", f"{STREET}008", f"{STREET}009"
    split_on = date(2026, 9, 1)
    results = describe(config, [
        node_row(a, "新建居委会", version=2, valid_to=split_on, successors=[b, c]),
        node_row(b, "新建一居委会", valid_from=split_on, predecessor=a),
        node_row(c, "新建二居委会", valid_from=split_on, predecessor=a),
        node_row(C3, "民星居委会", version=2),
        node_row(C3, "民星一村居委会（旧名）", version=1)],     # an older description, later: changes nothing
        # A description that does not read as one is logged and ignored; the batch is still taken.
        extra=[facts.fact(facts.NODE_FACT, f"{STREET}010", "2026-01-01", delta=0, name=["x"], level="moon")])
    assert "rejected" not in results[0]
    nodes = {n["code"]: n for n in get("/api/v1/rollups/nodes", node=STREET).json()}
    assert nodes[a]["valid_to"] == "2026-09-01" and nodes[a]["successors"] == [b, c]
    assert nodes[b]["predecessor"] == a and nodes[b]["predecessors"] == [a]
    assert nodes[C3]["name"] == "民星居委会"
    assert f"{STREET}010" not in nodes
    with transaction(config["DATABASE_URL"], "aggregator") as tx:
        ingest.rebuild(tx, STREET)
    assert {n["code"]: n for n in get("/api/v1/rollups/nodes", node=STREET).json()} == nodes


GEO = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {"code": code, "name": f"区域{i}"},
     "geometry": {"type": "Polygon", "coordinates": [[[121.5 + i / 100, 31.3], [121.51 + i / 100, 31.3],
                                                      [121.51 + i / 100, 31.31], [121.5 + i / 100, 31.3]]]}}
    for i, code in enumerate([C1, C2, C3, "310110013001"])]}


def test_boundaries_are_imported_once_for_the_map(tree, cli, tmp_path):
    get = tree()
    path = tmp_path / "yangpu.geojson"
    broken = json.loads(json.dumps(GEO))
    broken["features"][1]["geometry"]["coordinates"][0][2] = [500, 31.3]
    path.write_text(json.dumps(broken), encoding="utf-8")
    out = cli("nodes", "boundaries", "import", str(path))
    assert out.exit_code != 0 and "feature 2" in out.output and "longitude" in out.output, out.output
    assert get("/api/v1/rollups/boundaries", node=STREET).json()["features"] == []
    path.write_text(json.dumps(GEO, ensure_ascii=False), encoding="utf-8")
    out = cli("nodes", "boundaries", "import", str(path))
    assert out.exit_code == 0, out.output
    assert "3 boundary(ies) imported, 1 outside 310110012 skipped" in out.output
    fc = get("/api/v1/rollups/boundaries", node=STREET).json()
    assert [f["properties"]["code"] for f in fc["features"]] == [C1, C2, C3]
    # The name the street's facts give wins over the file's.
    assert fc["features"][0]["properties"]["name"] == "长海一村居委会"
    assert fc["features"][0]["geometry"]["type"] == "Polygon"


def test_freshness_tells_a_quiet_child_from_a_cut_one(tree, config):
    other = "310110013"
    with transaction(config["DATABASE_URL"], "aggregator") as tx:
        tx.execute(store.ADD_CHILD, (other, facts.Signer.from_config(config).public_key, None))
    # A batch in the child's name that its key does not sign is refused, and counted against it.
    forged = facts.Signer(facts._b64(b"\x07" * 32)).sign(facts.batch(
        {"service": "registry", "level": "street", "node_code": other, "instance": other},
        [facts.fact("resident_registered", f"{other}001", "2026-06-01")]))
    with transaction(config["DATABASE_URL"], "aggregator", envelope.source_from_config("aggregator", config)) as tx:
        (result,) = ingest.accept_many(tx, [forged], STREET, facts.Signer.from_config(config).public_key, "street",
                                       "dlq")
    assert "rejected" in result
    (child,) = tree("operator", prefix="310110")("/api/v1/rollups/freshness").json()
    # Registered, but no federation link was ever made for it and nothing it sent was taken.
    assert (child["code"], child["link"], child["last_fact_at"], child["refused_batches"], child["missing"]) == \
        (other, "absent", None, 1, 0)
    assert child["last_refused_at"] is not None
    # Out of a token's scope, a child is not listed.
    assert tree("street_admin")("/api/v1/rollups/freshness").json() == []


# Days to settle as the consultation service sends them (str of a float rounded to two places), often bunched
# on a few whole days so that the two middle matters fall on different days, or on one day's last value and
# the next one's first.
DAYS_TO_SETTLE = st.one_of(
    st.builds(lambda day, hundredths: str(round(day + hundredths / 100, 2)), st.integers(0, 6),
              st.sampled_from([0, 1, 5, 50, 99])),
    st.builds(lambda day, hundredths: str(round(day + hundredths / 100, 2)), st.integers(0, 400),
              st.integers(0, 99)))
SPREADS = st.dictionaries(st.sampled_from([C1, C2, C3]),
                          st.dictionaries(DAYS_TO_SETTLE, st.integers(-1, 4), min_size=1, max_size=8),
                          min_size=1, max_size=3)


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spreads=SPREADS)
@example(spreads={C1: {"9.99": 1, "10": 1}})          # 9.995: 10.0 as floats (the consultation service's), not 9.99
def test_the_median_by_whole_days_first_is_the_rules_median_of_any_spread(config, spreads):
    """Whatever the spread (one matter or many, counts taken back to 0 or below, the middle two on one day
    or two), the median the database works out by whole days first (store.SETTLED_MEDIANS) is the one
    rules.median_from gives of the same counts, for each community and for the street they add up to."""
    from services.aggregator import figures, rules
    whole = {}
    with transaction(config["DATABASE_URL"], "aggregator") as tx:
        tx.execute("DELETE FROM rollups WHERE dim = 'days_to_settle'")
        for code, spread in spreads.items():
            for value, n in spread.items():
                whole[value] = whole.get(value, 0) + n
                tx.execute("INSERT INTO rollups (node, period, period_start, metric, dim, value, n, total) "
                           "VALUES (%s, 'year', '2026-01-01', 'matters_settled', 'days_to_settle', %s, %s, 0)",
                           (code, value, n))
        for value, n in whole.items():
            tx.execute("INSERT INTO rollups (node, period, period_start, metric, dim, value, n, total) "
                       "VALUES (%s, 'year', '2026-01-01', 'matters_settled', 'days_to_settle', %s, %s, 0)",
                       (STREET, value, n))
        got = figures.settled_medians(tx, STREET, "year", [date(2026, 1, 1)], True)
    want = {(code, "year", date(2026, 1, 1)): rules.median_from(spread) for code, spread in [*spreads.items(), (STREET, whole)]}
    assert got == {k: v for k, v in want.items() if v is not None}


def test_days_to_settle_that_got_in_before_batches_were_checked_fail_no_median(config):
    """Values a sender could get into the roll-ups before rules.refusal checked them (Decimal took "NaN",
    "Infinity" and 3000000000) leave the database's median answering, not failing the dashboard."""
    from services.aggregator import figures
    with transaction(config["DATABASE_URL"], "aggregator") as tx:
        tx.execute("DELETE FROM rollups WHERE dim = 'days_to_settle'")
        for value, n in {"2.5": 3, "NaN": 1, "Infinity": 1, "3000000000": 1, "-0.5": 1, "4.125": 1}.items():
            tx.execute("INSERT INTO rollups (node, period, period_start, metric, dim, value, n, total) "
                       "VALUES (%s, 'year', '2026-01-01', 'matters_settled', 'days_to_settle', %s, %s, 0)",
                       (C1, value, n))
        got = figures.settled_medians(tx, STREET, "year", [date(2026, 1, 1)], True)
    assert set(got) == {(C1, "year", date(2026, 1, 1))}


def test_the_median_worked_out_in_the_database_is_the_rules_median(tree, config):
    """Odd and even counts, repeated values: the SQL median (store.SETTLED_MEDIANS) is rules.median_from's."""
    from services.aggregator import rules
    spreads = {C1: {"0.5": 2, "3.25": 1, "10": 4}, C3: {"1.75": 3, "2": 3}}
    with transaction(config["DATABASE_URL"], "aggregator") as tx:
        for code, spread in spreads.items():
            for value, n in spread.items():
                for node in (code, STREET):
                    tx.execute("INSERT INTO rollups AS r (node, period, period_start, metric, dim, value, n, total) "
                               "VALUES (%s, 'year', '2026-01-01', 'matters_settled', 'days_to_settle', %s, %s, 0) "
                               "ON CONFLICT (node, metric, period, period_start, dim, value) "
                               "DO UPDATE SET n = r.n + excluded.n", (node, value, n))
    d = tree("street_admin")("/api/v1/rollups/dashboard", node=STREET, start="2026-06-30").json()
    rows = {c["code"]: c["figures"]["median_days_to_settle"] for c in d["children"]}
    assert rows[C1] == rules.median_from(spreads[C1]) == 10.0
    assert rows[C3] == rules.median_from(spreads[C3]) == 1.88   # 1.875 as floats, as the consultation service has it
    whole = {**spreads[C1], "1.75": 3, "2": 3}
    assert d["figures"]["median_days_to_settle"] == rules.median_from(whole)
