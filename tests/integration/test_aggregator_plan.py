"""The roll-ups' reads find their rows by index, never by scanning the table.

Every view (roll-ups, headlines, the gauges every 30 s) reads a path of nodes and their children:
`node = ANY(path) OR parent = ANY(path)`. With the parent computed per row the children half could
use no index, and at a district with years of roll-ups each read was a Seq Scan removing 98% of the
table. The parent is stored and indexed (migration 0002), so both halves are index scans.

Real: PostgreSQL with the migrated aggregator schema, a district's years of roll-ups (written
straight in: counting is tested elsewhere), statistics gathered with ANALYZE (autovacuum may be off,
as it is on the development machine), the planner's own choice (no enable_seqscan=off), and the
queries and parameters the views really send, recorded as they run.
"""
import re
from datetime import date

import pytest

from services.aggregator import figures, rules
from shared.db import transaction

DISTRICT = "310110"
STREET = f"{DISTRICT}003"
COMMUNITY = f"{STREET}004"
TODAY = date(2026, 11, 23)
ANALYST = {"actor": "token:t:区分析员", "scope": DISTRICT, "role": "district_analyst"}
# A district of 8 streets of 8 communities, four metrics, roll-ups every third day from 2024 on, in
# total and by sex, per day, month and year: 344,268 rows (the review's district had 160,000).
NODES = """
SELECT %(district)s AS node
UNION ALL SELECT %(district)s || lpad(s::text, 3, '0') FROM generate_series(1, 8) s
UNION ALL SELECT %(district)s || lpad(s::text, 3, '0') || lpad(c::text, 3, '0')
          FROM generate_series(1, 8) s, generate_series(1, 8) c
"""
FILL = f"""
INSERT INTO rollups (node, period, period_start, metric, dim, value, n, total)
SELECT nd.node, %(period)s, g.start::date, m.metric, d.dim, d.value, 7, 0
FROM ({NODES}) nd
CROSS JOIN unnest(%(metrics)s::text[]) m(metric)
CROSS JOIN generate_series(date '2024-01-01', date '2026-11-30', %(step)s::interval) g(start)
CROSS JOIN (VALUES ('', ''), ('sex', 'F'), ('sex', 'M')) d(dim, value)
"""
METRICS = ["residents", "matters_raised", "matters_settled", "points_posted"]


@pytest.fixture
def district(cfg):
    with transaction(cfg["DATABASE_URL"], "aggregator") as tx:
        for period, step in (("day", "3 days"), ("month", "1 month"), ("year", "1 year")):
            tx.execute(FILL, {"district": DISTRICT, "period": period, "step": step, "metrics": METRICS})
    with transaction(cfg["DATABASE_URL"], "aggregator") as tx:
        tx.execute("ANALYZE rollups")
        assert tx.one("SELECT count(*) AS n FROM rollups")["n"] == 344_268
    return cfg


class Recording:
    """The views' transaction, with every read it is asked for kept (SQL and parameters)."""

    def __init__(self, tx):
        self.tx, self.reads = tx, []
        self.source = tx.source

    def all(self, sql, params=None):
        self.reads.append((sql, params))
        return self.tx.all(sql, params)

    def one(self, sql, params=None):
        self.reads.append((sql, params))
        return self.tx.one(sql, params)


def scans(plan, key="Relation Name"):
    """Every plan node that has `key` (that reads a relation, or an index), depth first."""
    if key in plan:
        yield plan
    for sub in plan.get("Plans", ()):
        yield from scans(sub, key)


def read_everything(tx):
    rec = Recording(tx)
    for node in (DISTRICT, STREET, COMMUNITY):
        for metric in ("residents", "matters_raised", "matters_settled"):
            for period in ("day", "month", "year"):
                for group in ("none", "child", "dim:sex"):
                    query = {"metric": metric, "node": node, "period": period, "group": group}
                    if period == "day":
                        query.update(start="2026-09-01", end="2026-11-23")
                    figures.rollups(rec, query, ANALYST, today=TODAY, root=DISTRICT)
        figures.headline_figures(rec, {"node": node, "year": 2026}, ANALYST, today=TODAY, root=DISTRICT)
    figures.headlines(rec, DISTRICT, TODAY)
    return rec.reads


def test_every_read_of_the_views_uses_an_index_at_a_district_with_years_of_rollups(district):
    with transaction(district["DATABASE_URL"], "aggregator") as tx:
        reads = read_everything(tx)
        assert len({sql for sql, _ in reads}) == 2      # CELLS and CELLS_BEFORE, with every view's parameters
        by_parent = 0
        for sql, params in reads:
            (row,) = tx.all("EXPLAIN (FORMAT JSON) " + sql, params)
            plan = row["QUERY PLAN"][0]["Plan"]
            on_rollups = [s for s in scans(plan) if s["Relation Name"] == "rollups"]
            assert on_rollups, plan
            for scan in on_rollups:
                assert scan["Node Type"] != "Seq Scan", (params, plan)
            # Each half of the OR is an index scan led by its own column: a scan of a whole index
            # (no condition on node or parent) would be the Seq Scan again by another name.
            index_scans = list(scans(plan, "Index Name"))
            assert index_scans, plan
            for scan in index_scans:
                assert re.match(r"\(+(node|parent) = ANY", scan.get("Index Cond", "")), (params, scan)
            # Children are read by the parent's index wherever the read asks for children.
            if params["parents"]:
                assert any(s["Index Name"] == "rollups_parent" for s in index_scans), (params, plan)
                by_parent += 1
        assert by_parent > len(reads) // 2


def test_the_stored_parent_is_the_parent_by_the_code_lengths_of_the_rules(cfg):
    codes = ["3101", "310110", "310110012", "310110012003", "310110012003001"]
    assert [len(c) for c in codes] == list(rules.CODE_LENGTHS)
    with transaction(cfg["DATABASE_URL"], "aggregator") as tx:
        for code in codes:
            tx.execute("INSERT INTO rollups (node, period, period_start, metric, dim, value, n, total) "
                       "VALUES (%s, 'day', '2026-11-23', 'residents', '', '', 5, 0)", (code,))
        stored = {r["node"]: r["parent"] for r in tx.all("SELECT node, parent FROM rollups")}
    # The parent is the node's nearest ancestor by the rules (a city has none in this tree).
    assert stored == {c: (rules.ancestors(c, "3101")[-2] if len(c) > 4 else None) for c in codes}
