"""Reading the roll-ups and the facts log, for superior departments and Prometheus.

- `rollups`: one metric under a node, per day, month or year, in total, per child node or per
  dimension value. A stock (residents, party members, …) is shown as its level at the end of each
  period; a flow (points, matters) as what happened in it.
- `feed`: the facts log after a cursor, filtered by type and node prefix, a page at a time.
- `headline_figures` (one node's figures and rates) and `headlines` (the Prometheus gauges).
- `directive_figures`: a directive's reach and reads per street and community, for its broadcast.

Every view reads its counts as cells (`_cells`) and shows them through suppression.py, so for
district analysts, department feeds and the gauges, headlines, roll-ups, their CSV and the gauges hide
the same counts of 1 to 4 and whatever would give one back.
"""
import csv
import io
from datetime import date

from services.aggregator import rules, store, suppression
from services.aggregator.schemas import HeadlineQuerySchema, RollupQuerySchema
from shared.errors import NotFound, ValidationFailed, load
from shared.scope import forbid, in_scope
from shared import clock



# How far a roll-up may reach: an end a year ahead at most (a year's plan, never date 9999-12-31, whose
# next period would not exist), and at most so many periods, whatever start and end leave out.
MAX_AHEAD_DAYS = 366
MAX_PERIODS = {"day": 366, "month": 120, "year": 100}
# How many figures a roll-up lists at most: a dimension of thousands of values (days to settle, to two
# places) per day for a year, each listed as hidden in a small node's hidden grids, would be millions.
MAX_POINTS = 100_000
PERIOD_NAMES = {"day": "days", "month": "months", "year": "years"}


def _periods(period, first, last):
    """How many periods of `period` first..last covers (first is a period's start)."""
    if period == "day":
        return (last - first).days + 1
    if period == "month":
        return (last.year - first.year) * 12 + last.month - first.month + 1
    return last.year - first.year + 1


def rollup_range(q, today):
    """(start, end) of a loaded roll-up query with the defaults filled in, checked as the query will
    run: a range left open (a start without an end, or the reverse) costs as much as one stated.
    Raises ValidationFailed naming the field the caller sent (`start` where both were sent)."""
    end = q.get("end") or today
    latest = date.fromordinal(today.toordinal() + MAX_AHEAD_DAYS)
    if end > latest:
        raise ValidationFailed("the request has invalid fields",
                               {"end": [f"must be no later than {latest.isoformat()} (a year from today)"]})
    start = q.get("start") or date(today.year, 1, 1)
    field = "start" if q.get("start") else "end"
    if start > end:
        problem = {"start": ["must not be after end" + ("" if q.get("end") else " (default: today)")]} \
            if q.get("start") else {"end": ["must not be before start (default: 1 January this year)"]}
        raise ValidationFailed("the request has invalid fields", problem)
    period = q["period"]
    if _periods(period, _period_start(period, start), end) > MAX_PERIODS[period]:
        raise ValidationFailed("the request has invalid fields", {field: [
            f"a series per {period} covers at most {MAX_PERIODS[period]} {PERIOD_NAMES[period]}: "
            "narrow start..end or choose a longer period"]})
    return start, end


def _node(q, caller, field):
    node = q.get(field) or caller["scope"]
    if not in_scope(node, caller):
        forbid(node, caller, field)
    return node


def _known(tx, q, field, node, judge, cells=(), root=None):
    """404 naming `field` if the query names a node this instance does not know (the default, the token's
    scope, is not judged). An aggregator holds no register of nodes (a district's has no registry of its
    own to ask): what it knows is its own node and those above it, its registered children, and every
    node a fact has named. A node none of those name has no figures here either way, and an empty
    answer would read as zero where the caller made a typo. The cells a view read already show most
    nodes it knows, so the store is asked only for a node that has none.

    At a street the registry is the authority on every node of the instance, so a community no fact
    has named yet (new, or quiet) is known when the registry has it, and reads as zeros: `judge` is
    then a callable asking it (the service's `registered`); elsewhere it is True.

    The service's entrypoints judge (`judge`); in-process readers (the figures' own tests, which read
    every node of a tree they made, with facts or none) do not, and read a node without facts as zeros."""
    if not judge or not q.get(field):
        return
    own = root or (tx.source or {}).get("node_code") or ""
    if len(node) in rules.CODE_LENGTHS and own.startswith(node):
        return
    if any(key[0] == node for key in cells) or tx.one(store.KNOWN_NODE, {"node": node})["known"]:
        return
    if callable(judge) and judge(node):
        return
    raise NotFound(f"no node {node} is known here", {field: [
        f"{node} is not this instance's node, one of its registered children, or a node any fact has named"]})


def _top(tx, node, root=None):
    """The top of the tree the rule judges in: this instance's node, or the node itself if it lies outside."""
    root = root or (tx.source or {}).get("node_code") or node
    return root if node.startswith(root) else node


def _child_length(node):
    return next((n for n in rules.CODE_LENGTHS if n > len(node)), None)


def _spans(period, first, last):
    """(period, first start, last start) to read for a flow shown per `period`: with the month and the
    year each shown day or month adds up to, whole, as the rule compares them."""
    years = ("year", date(first.year, 1, 1), date(last.year, 1, 1))
    if period == "year":
        return [years]
    months = ("month", date(first.year, 1, 1), date(last.year, 12, 1))
    if period == "month":
        return [years, months]
    month_end = date(last.year + (last.month == 12), last.month % 12 + 1, 1)
    return [years, months, ("day", first.replace(day=1), date.fromordinal(month_end.toordinal() - 1))]


def _cells(tx, top, node, metrics, period, first, last, dims, children=False):
    """{(node, period, start, metric, dim, value): (n, total)} for the nodes from `top` down to `node` and
    the children of each (and of `node` with `children`): a flow's counts per period, read with the
    periods around them (_spans); a stock's level at each period of first..last, carried forward."""
    path = rules.ancestors(node, top)
    params = {"dims": sorted(set(dims)), "nodes": path, "parents": path[:-1] + ([node] if children else [])}
    cells = {}
    stocks = sorted(m for m in metrics if m in rules.STOCKS)
    flows = sorted(m for m in metrics if m not in rules.STOCKS)
    if stocks:
        # People in a stock are counted by birth cohort; their age bands are made from it below.
        args = {**params, "dims": rules.stock_dims(params["dims"]), "metrics": stocks, "period": period,
                "first": first, "last": last, "year_start": first.replace(month=1, day=1),
                "month_start": first.replace(day=1)}
        level = {(r["node"], r["metric"], r["dim"], r["value"]): (int(r["n"]), r["total"])
                 for r in tx.all(store.CELLS_BEFORE, args)}
        changes = {}
        for r in tx.all(store.CELLS, args):
            changes.setdefault((r["node"], r["metric"], r["dim"], r["value"]), {})[r["period_start"]] = \
                (int(r["n"]), r["total"])
        starts = _starts(period, first, last)
        for key in set(level) | set(changes):
            n, total = level.get(key, (0, 0))
            for ps in starts:
                dn, dt = changes.get(key, {}).get(ps, (0, 0))
                n, total = n + dn, total + dt
                cells[(key[0], period, ps, *key[1:])] = (n, total)
        cells = rules.age_band_cells(cells, keep_cohorts="cohort" in params["dims"])
    for p, a, b in _spans(period, first, last) if flows else ():
        for r in tx.all(store.CELLS, {**params, "metrics": flows, "period": p, "first": a, "last": b}):
            cells[(r["node"], p, r["period_start"], r["metric"], r["dim"], r["value"])] = (int(r["n"]), r["total"])
    return cells


def _rule(cells, top, caller):
    return suppression.protection({k: v[0] for k, v in cells.items()}, top, caller)


def rollups(tx, query, caller, today=None, root=None, judge=False):
    q = load(RollupQuerySchema, query)
    problems = rules.query_problems(q["metric"], q["group"])
    if problems:
        raise ValidationFailed("no fact feeds what the roll-up asks for", problems)
    today = today or clock.today()
    node = _node(q, caller, "node")
    start, end = rollup_range(q, today)
    period, metric = q["period"], q["metric"]
    first = _period_start(period, start)
    dim = q["group"][4:] if q["group"].startswith("dim:") else ""
    child = _child_length(node) if q["group"] == "child" else None
    top = _top(tx, node, root)
    # The metric it is compared with comes too: the rule hides a count that the difference gives back.
    metrics = [metric] + ([suppression.COMPLEMENTS[metric]] if metric in suppression.COMPLEMENTS else [])
    cells = _cells(tx, top, node, metrics, period, first, end, ["", dim], children=child is not None)
    _known(tx, q, "node", node, judge, cells, root)
    rule = _rule(cells, top, caller)

    def label(key):
        """The series a cell belongs to in this grouping, or None if it is not shown here."""
        n_node, n_period, _, n_metric, n_dim, value = key
        if n_period != period or n_metric != metric or n_dim != dim:
            return None
        if child:
            return n_node if len(n_node) == child and n_node.startswith(node) else None
        if n_node != node:
            return None
        return value if dim else (node if q["group"] == "child" else "")

    def cell(name, ps):
        if child:
            return name, period, ps, metric, "", ""
        return node, period, ps, metric, dim, name if dim else ""

    series = {}
    for key in cells:
        name = label(key)
        if name is not None:
            points = series.setdefault(name, {})
            if first <= key[2] <= end:
                points[key[2]] = key
    # A series lists only the periods with figures; where a 0 for a missing one would give a hidden count
    # back, it is listed as hidden too (absent_hidden): a flow's empty month beside hidden ones, a value
    # of a dimension that the node's family holds that year.
    index = CellIndex(cells)
    starts = _starts(period, first, end)
    if dim:
        for year in sorted({ps.year for ps in starts}):
            for value in index.dim_values(node, year, metric, dim):
                series.setdefault(value, {})
    listed = sum(len(points) for points in series.values())
    for name, points in series.items():
        for ps in starts:
            if ps not in points and absent_hidden(rule, index, cell(name, ps)):
                points[ps] = cell(name, ps)
                listed += 1
                if listed > MAX_POINTS:
                    raise ValidationFailed("the request has invalid fields", {"group": [
                        f"more than {MAX_POINTS:,} figures to list ({len(series):,} series): group by fewer "
                        "values, or narrow start..end, or choose a longer period"]})

    def point(key):
        shown = None if rule.grid_hidden(key) else rule.n(key)
        return {"period_start": key[2].isoformat(), "n": shown, "suppressed": shown is None,
                "total": None if shown is None else float(cells.get(key, (0, 0))[1])}

    series = {name: [point(points[ps]) for ps in sorted(points)] for name, points in series.items() if points}
    return {"metric": metric, "node": node, "period": period, "start": start.isoformat(),
            "end": end.isoformat(), "group": q["group"], "stock": metric in rules.STOCKS,
            "series": [{"key": k, "points": v} for k, v in sorted(series.items())]}


def _starts(period, first, last):
    out, day = [], first
    while day <= last:
        out.append(day)
        if period == "day":
            day = date.fromordinal(day.toordinal() + 1)
        elif period == "month":
            day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
        else:
            day = date(day.year + 1, 1, 1)
    return out


def _period_start(period, day):
    return {"day": day, "month": day.replace(day=1), "year": day.replace(month=1, day=1)}[period]


# A cell starting so is a formula to Excel; text from facts (dimension values) must never become one.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def rollups_csv(tx, query, caller, judge=False):
    """The roll-up as a CSV download: {"metric", "node", "csv"}."""
    result = rollups(tx, query, caller, judge=judge)
    return {"metric": result["metric"], "node": result["node"], "csv": csv_text(result)}


def csv_text(result):
    """A roll-up as CSV text, with a BOM so Excel on a Chinese Windows opens it as UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in csv_rows(result):
        writer.writerow([_cell(v) for v in row])
    return "\ufeff" + out.getvalue()


def csv_rows(result):
    """The roll-up as CSV rows (a header with Chinese labels, then one row per key and period)."""
    yield ["指标 metric", "节点 node", "分组 key", "周期 period_start", "数量 n", "合计 total"]
    for s in result["series"]:
        for p in s["points"]:
            yield [result["metric"], result["node"], s["key"], p["period_start"],
                   "suppressed" if p["suppressed"] else p["n"], "" if p["total"] is None else p["total"]]


HEADLINE_STOCKS = ["residents", "party_members", "organizations", "workers"]
HEADLINE_FLOWS = ["points_posted", "service_hours", "points_redeemed", "matters_raised", "matters_settled",
                  "matters_rated"]
# Broadcasts' reach is in the headlines and dashboards; the gauges (and Grafana's panel) keep to the rest.
FIGURE_FLOWS = HEADLINE_FLOWS + ["broadcast_targeted", "broadcast_reached", "broadcast_read"]
FIGURE_STOCKS = HEADLINE_STOCKS + ["organization_members"]
GAUGED = frozenset(HEADLINE_STOCKS + HEADLINE_FLOWS)
# The gauges are read by whoever reads the dashboards, not by a token's role: they show what an
# aggregates-only role sees.
GAUGE_READER = {"role": "district_analyst"}


def _headline_cells(tx, top, node, today, year, dims, children=False):
    """Stocks at `today` (as ("day", today) cells) and the flows of `year` (as ("year", 1 January))."""
    cells = _cells(tx, top, node, FIGURE_STOCKS, "day", today, today, dims, children)
    cells.update(_cells(tx, top, node, FIGURE_FLOWS, "year", date(year, 1, 1), date(year, 1, 1), dims, children))
    return cells


def _slice(metric, today, year):
    return ("day", today) if metric in rules.STOCKS else ("year", date(year, 1, 1))


def headlines(tx, root, today):
    """[(child node, metric, count, total)] for the Prometheus gauges: one level below this instance,
    stocks now and flows this year; count and total are None where the rule hides the count."""
    length = _child_length(root)
    if length is None:
        return []
    cells = _headline_cells(tx, root, root, today, today.year, [""], children=True)
    rule = _rule(cells, root, GAUGE_READER)
    out = []
    for key in sorted(cells):
        node, period, ps, metric, dim, _ = key
        if len(node) != length or dim or (period, ps) != _slice(metric, today, today.year) \
                or metric not in GAUGED:
            continue
        n = rule.shown(key)
        out.append((node, metric, n, None if n is None else float(cells[key][1])))
    return out


def headline_figures(tx, query, caller, today=None, root=None, judge=False):
    """A node's headline figures: stocks now (residents by residence type and age band, party members
    and their report rate, organisations by category, workers) and the year's flows (points, service
    hours, matters raised and settled, settlement, on-time and satisfaction rates, median days to
    settle, broadcasts' reach and reads), under the same small-cell rule as the roll-ups (suppression.py)."""
    q = load(HeadlineQuerySchema, query)
    today = today or clock.today()
    node = _node(q, caller, "node")
    year = q.get("year") or today.year
    top = _top(tx, node, root)
    cells = _headline_cells(tx, top, node, today, year, [""] + sorted(rules.DIMENSIONS))
    _known(tx, q, "node", node, judge, cells, root)
    rule = _rule(cells, top, caller)
    return {"node": node, "year": year, "as_of": today.isoformat(),
            **figure_set(rule, cells, node, ("day", today), ("year", date(year, 1, 1)))}


def settled_medians(tx, node, period, starts, children):
    """{(node, period, start): median days to settle} of the node (and its children) at these periods: worked
    out in the database, where the distribution lies (most of a month's cells); the rule judges a median
    by the count of matters settled, so no other period of it is read."""
    rows = tx.all(store.SETTLED_MEDIANS, {"period": period, "starts": list(starts), "node": node,
                                           "parent": node if children else None})
    return {(r["node"], period, r["period_start"]): rules.middle_mean(r["low"], r["high"]) for r in rows}


class CellIndex:
    """The cells a view read, indexed once for reading many nodes' figures from them (figure_set): by
    (node, period, start, metric, dim), which (node, period, year, metric, dim, value) series have a row,
    and which nodes hold which values of a (metric, dim) in a year."""

    def __init__(self, cells):
        self.cells = cells
        self.by_slice, self.rows_in_year, self.values, self._family = {}, set(), {}, {}
        for c in cells:
            self.by_slice.setdefault(c[:5], []).append(c)
            self.rows_in_year.add((c[0], c[1], c[2].year, *c[3:]))
            self.values.setdefault((c[3], c[4], c[2].year), set()).add((c[0], c[5]))

    def dim_values(self, node, year, metric, dim):
        """The values of a dimension that the node, its siblings or its parent hold in any period of the
        year read (its grids and the wholes above them): a value the node lacks among them is 0 to a
        reader, unless its grid is hidden. Values held in the same month alone were not enough: a
        community's late matters listed as 0 in every month, where only its street had late ones (in
        another month), gave back its on-time ones by the year's total (tests/integration/test_suppression.py)."""
        key = (node, year, metric, dim)
        if key not in self._family:
            up = suppression.parent(node, node[:rules.CODE_LENGTHS[0]]) if len(node) > rules.CODE_LENGTHS[0] else None

            def family(n):
                return n == node or n == up or (up is not None and len(n) == len(node) and n.startswith(up))

            self._family[key] = {v for n, v in self.values.get((metric, dim, year), ()) if family(n)}
        return self._family[key]


def absent_hidden(rule, index, k):
    """Whether a cell with no row is shown as hidden: a flow's day or month in a hidden grid, of a series
    with rows elsewhere in its year (a 0 beside hidden months would say which month holds the hidden
    count), or a value of a dimension in a hidden grid that the node's family holds that year
    (CellIndex.dim_values: a 0 there, with the total shown, would give back the hidden values: a resident
    always has a residence type, a settled matter is on time or not)."""
    if k[1] != "year" and k[3] not in rules.STOCKS and (k[0], k[1], k[2].year, *k[3:]) in index.rows_in_year:
        return rule.grid_hidden(k)
    # A node without a total has none of any value either: that 0 gives nothing away.
    return bool(k[4]) and k[4] not in suppression.LIST_DIMS and (*k[:4], "", "") in index.cells \
        and k[5] in index.dim_values(k[0], k[2].year, k[3], k[4]) and rule.grid_hidden(k)


def figure_set(rule, cells, node, stocks_at, flows_in, index=None, medians=None, age_bands=True):
    """The headline figures of one node from cells read for it: stocks at the cell `stocks_at`
    ((period, start): the level at that period's end) and flows in `flows_in` ((period, start)). A cell
    without a row is hidden where /rollups lists it as hidden (absent_hidden). `index`: CellIndex(cells),
    made once when many nodes are read from the same cells. `medians`: {(node, period, start): median days
    to settle} where `cells` does not hold the distribution (settled_medians). `age_bands`: False where
    the cells were read without birth cohorts (the dashboard's), and the set has no age bands."""
    index = index or CellIndex(cells)

    def key(metric, dim="", value=""):
        return (node, *(stocks_at if metric in rules.STOCKS else flows_in), metric, dim, value)

    def hidden(k):
        return rule.hidden(k) if k in cells else absent_hidden(rule, index, k)

    def count(metric, dim="", value=""):
        k = key(metric, dim, value)
        return None if hidden(k) else rule.n(k)

    def split(metric, dim):
        k = key(metric, dim)
        held = {c[5]: rule.shown(c) for c in index.by_slice.get(k[:5], ())}
        for value in index.dim_values(node, k[2].year, metric, dim) - set(held):
            if hidden(k[:5] + (value,)):
                held[value] = None
        return dict(sorted(held.items()))

    def total(metric):
        return None if hidden(key(metric)) else float(cells.get(key(metric), (0, 0))[1])

    def rate(parts, whole):
        if hidden(whole) or any(hidden(p) for p in parts):
            return None
        return suppression.plain_rate(sum(rule.n(p) for p in parts), rule.n(whole))

    settled = key("matters_settled", "days_to_settle")
    median = medians.get(settled[:3]) if medians is not None else \
        rules.median_from({c[5]: cells[c][0] for c in index.by_slice.get(settled[:5], ())})
    return {
        "residents": count("residents"),
        "residents_by_residence_type": split("residents", "residence_type"),
        **({"residents_by_age_band": split("residents", "age_band")} if age_bands else {}),
        "party_members": count("party_members"),
        "party_members_reported": count("party_members", "report_status", "reported"),
        "report_rate": rate([key("party_members", "report_status", "reported")], key("party_members")),
        "organizations": count("organizations"),
        "organizations_by_category": split("organizations", "category"),
        "workers": count("workers"),
        "points_posted": total("points_posted"),
        "points_redeemed": total("points_redeemed"),
        "service_hours": total("service_hours"),
        "matters_raised": count("matters_raised"),
        "matters_settled": count("matters_settled"),
        "matters_rated": count("matters_rated"),
        "settlement_rate": rate([key("matters_settled")], key("matters_raised")),
        "on_time_rate": rate([key("matters_settled", "on_time", "true")], key("matters_settled")),
        "satisfaction_rate": rate([key("matters_rated", "score", "4"), key("matters_rated", "score", "5")],
                                  key("matters_rated")),
        # A median of fewer than five matters would be one matter's own figure.
        "median_days_to_settle": None if hidden(key("matters_settled")) else median,
        "broadcast_targeted": count("broadcast_targeted"),
        "broadcast_reached": count("broadcast_reached"),
        "broadcast_read": count("broadcast_read"),
        "reach_rate": rate([key("broadcast_reached")], key("broadcast_targeted")),
        "read_rate": rate([key("broadcast_read")], key("broadcast_reached")),
    }


BROADCAST_MEASURES = (("targeted", "broadcast_targeted"), ("reached", "broadcast_reached"), ("read", "broadcast_read"))


def directive_figures(tx, directive_id, caller, root=None):
    """A directive's acknowledgements as the streets below reported them (broadcast_targeted, _reached,
    _read facts under dim `directive`): per street, per community and in total under this instance,
    every year it was reported in summed, under the same small-cell rule as every other view."""
    if not isinstance(directive_id, str) or not directive_id:
        raise ValidationFailed("not a directive id", {"directive_id": ["a directive id is text"]})
    root = root or (tx.source or {}).get("node_code") or caller["scope"]
    rows = tx.all(store.DIRECTIVE_FIGURES, {"directive": directive_id, "root": root,
                                             "metrics": [m for _, m in BROADCAST_MEASURES]})
    # One figure set of its own: the directive's counts summed over time ("all"), per node.
    cells = {(r["node"], "all", date.min, r["metric"], "", ""): int(r["n"]) for r in rows}
    rule = suppression.protection(cells, root, caller)
    nodes = sorted({r["node"] for r in rows if in_scope(r["node"], caller)})

    def figures_of(node):
        return {name: rule.shown((node, "all", date.min, metric, "", "")) for name, metric in BROADCAST_MEASURES}

    # The total of what the token reaches: the whole subtree, or its own part of it.
    whole = caller["scope"] if caller["scope"].startswith(root) else root
    return {"directive_id": directive_id, "node": whole,
            "total": figures_of(whole),
            "streets": [{"street_code": n, **figures_of(n)} for n in nodes if len(n) == 9],
            "communities": [{"community_code": n, **figures_of(n)} for n in nodes if len(n) == 12]}
