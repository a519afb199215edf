"""Reading the roll-ups and the facts log, for superior departments and Prometheus.

- `rollups`: one metric under a node, per day, month or year, in total, per child node or per
  dimension value. A stock (residents, party members, …) is shown as its level at the end of each
  period; a flow (points, matters) as what happened in it.
- `feed`: the facts log after a cursor, filtered by type and node prefix, a page at a time.
- For department tokens, a count of people below the threshold (default 5) is shown as
  suppressed, never as the number (small-cell protection); analysts see it too.
"""
from datetime import date

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.aggregator import rules, store
from shared.errors import load
from shared.fields import CODE, one_of
from shared.scope import forbid, in_scope

SUPPRESSING_ROLES = {"department_feed", "district_analyst"}


class RollupQuerySchema(Schema):
    metric = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,59}\Z"),
                           metadata={"example": "residents"})
    node = fields.String(validate=CODE, metadata={"description": "default: the token's scope"})
    period = fields.String(load_default="month", validate=one_of(rules.PERIODS))
    start = fields.Date(metadata={"description": "default: 1 January this year"})
    end = fields.Date(metadata={"description": "default: today"})
    group = fields.String(load_default="none", validate=validate.Regexp(r"^(none|child|dim:[a-z_]{1,40})\Z"),
                          metadata={"description": "none, child (per child node) or dim:<name>, e.g. dim:age_band"})

    @validates_schema
    def _range(self, data, **_):
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise ValidationError("must not be after end", "start")
        if data.get("period") == "day" and data.get("start") and data.get("end") \
                and (data["end"] - data["start"]).days > 366:
            raise ValidationError("a daily series covers at most a year", "start")


class HeadlineQuerySchema(Schema):
    node = fields.String(validate=CODE, metadata={"description": "default: the token's scope"})
    year = fields.Integer(validate=validate.Range(2000, 2100), metadata={"description": "default: this year"})


class FeedQuerySchema(Schema):
    after = fields.Integer(load_default=0, validate=validate.Range(0, 2 ** 63 - 1),
                           metadata={"description": "cursor: `next` of the previous page"})
    limit = fields.Integer(load_default=500, validate=validate.Range(1, 5000))
    type = fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,59}\Z"))
    prefix = fields.String(validate=CODE)


def _node(q, caller, field):
    node = q.get(field) or caller["scope"]
    if not in_scope(node, caller):
        forbid(node, caller, field)
    return node


def _group(q, node):
    """(SQL for the key, SQL for the rows' filter, the dimension) of a grouping."""
    if q["group"] == "child":
        child = next((n for n in rules.CODE_LENGTHS if n > len(node)), None)
        if child is None:
            return "node", "node = %(node)s", ""
        return "node", f"length(node) = {child} AND starts_with(node, %(node)s)", ""
    if q["group"].startswith("dim:"):
        return "value", "node = %(node)s", q["group"][4:]
    return "''", "node = %(node)s", ""


def rollups(tx, query, caller, threshold=5, today=None):
    q = load(RollupQuerySchema, query)
    today = today or date.today()
    node = _node(q, caller, "node")
    start = q.get("start") or date(today.year, 1, 1)
    end = q.get("end") or today
    key_sql, where, dim = _group(q, node)
    params = {"metric": q["metric"], "period": q["period"], "dim": dim, "node": node,
              "start": _period_start(q["period"], start), "end": end}
    rows = tx.all(store.ROLLUP.format(group=key_sql, where=where), params)
    stock = q["metric"] in rules.STOCKS
    level = {}
    if stock:
        level = {r["key"]: int(r["n"]) for r in tx.all(store.STOCK_BEFORE.format(group=key_sql, where=where), params)}
    suppress = caller.get("role") in SUPPRESSING_ROLES
    changes = {}
    for r in rows:
        changes.setdefault(r["key"], {})[r["period_start"]] = (int(r["n"]), r["total"])
    series = {}
    for key in sorted(set(changes) | set(level)):
        points, running = [], level.get(key, 0)
        # A stock is shown at every period of the range, carried forward where nothing changed;
        # a flow only where something happened.
        starts = _starts(q["period"], params["start"], end) if stock else sorted(changes.get(key, {}))
        for ps in starts:
            n, total = changes.get(key, {}).get(ps, (0, 0))
            if stock:
                running += n
                n = running
            shown = rules.suppress(n, threshold) if suppress else n
            points.append({"period_start": ps.isoformat(), "n": shown, "suppressed": shown is None,
                           "total": None if shown is None else float(total)})
        series[key] = points
    return {"metric": q["metric"], "node": node, "period": q["period"], "start": start.isoformat(),
            "end": end.isoformat(), "group": q["group"], "stock": stock,
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


def feed(tx, query, caller):
    q = load(FeedQuerySchema, query)
    prefix = _node(q, caller, "prefix")
    rows = tx.all(store.FEED, {"after": q["after"], "prefix": prefix, "type": q.get("type"), "limit": q["limit"]})
    # Departments get the facts without the pseudonym: it would let them follow one person through them.
    hide = caller.get("role") in SUPPRESSING_ROLES
    items = [{**r, "subject": None if hide else r["subject"], "occurred_on": r["occurred_on"].isoformat(),
              "received_at": r["received_at"].isoformat()} for r in rows]
    return {"items": items, "next": items[-1]["seq"] if items else q["after"]}


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


def headlines(tx, root, today):
    """[(child node, metric, count, total)] for the Prometheus gauges: one level below this instance."""
    length = next((n for n in rules.CODE_LENGTHS if n > len(root)), None)
    if length is None:
        return []
    rows = tx.all(store.HEADLINES, {"length": length, "root": root, "stocks": HEADLINE_STOCKS,
                                    "flows": HEADLINE_FLOWS, "year": date(today.year, 1, 1)})
    return [(r["node"], r["metric"], int(r["n"]), float(r["total"])) for r in rows]


def _rate(part, whole):
    return None if not whole else round(part / whole, 4)


def headline_figures(tx, query, caller, threshold=5, today=None):
    """A node's headline figures: stocks now (residents by residence type and age band, party members
    and their report rate, organisations by category, workers) and the year's flows (points, service
    hours, matters raised and settled, settlement, on-time and satisfaction rates, median days to
    settle). Counts of people below the threshold are suppressed for department tokens."""
    q = load(HeadlineQuerySchema, query)
    today = today or date.today()
    node = _node(q, caller, "node")
    year = q.get("year") or today.year
    rows = tx.all(store.FIGURES, {"node": node, "today": today, "year": date(year, 1, 1),
                                  "stocks": HEADLINE_STOCKS + ["organization_members"],
                                  "flows": HEADLINE_FLOWS})
    cell = {(r["metric"], r["dim"], r["value"]): (int(r["n"]), r["total"]) for r in rows}

    def n(metric, dim="", value=""):
        return cell.get((metric, dim, value), (0, 0))[0]

    def by(metric, dim):
        return {v: c[0] for (m, d, v), c in sorted(cell.items()) if m == metric and d == dim}

    hide = caller.get("role") in SUPPRESSING_ROLES

    def people(count):
        return rules.suppress(count, threshold) if hide else count

    def rate(part, whole):
        # A rate of a suppressed count would give the count away.
        if hide and (people(part) is None or people(whole) is None):
            return None
        return _rate(part, whole)

    def split(metric, dim):
        """Counts per value; if any is suppressed, so is every other, or the total would give it away."""
        values = by(metric, dim)
        if hide and any(people(v) is None for v in values.values()):
            return {k: None for k in values}
        return {k: people(v) for k, v in values.items()}

    settled, rated = n("matters_settled"), n("matters_rated")
    days = {v: c for v, c in by("matters_settled", "days_to_settle").items()}
    return {
        "node": node, "year": year, "as_of": today.isoformat(),
        "residents": people(n("residents")),
        "residents_by_residence_type": split("residents", "residence_type"),
        "residents_by_age_band": split("residents", "age_band"),
        "party_members": people(n("party_members")),
        "party_members_reported": people(n("party_members", "report_status", "reported")),
        "report_rate": rate(n("party_members", "report_status", "reported"), n("party_members")),
        "organizations": n("organizations"),
        "organizations_by_category": by("organizations", "category"),
        "workers": people(n("workers")),
        "points_posted": float(cell.get(("points_posted", "", ""), (0, 0))[1]),
        "points_redeemed": float(cell.get(("points_redeemed", "", ""), (0, 0))[1]),
        "service_hours": float(cell.get(("service_hours", "", ""), (0, 0))[1]),
        "matters_raised": n("matters_raised"),
        "matters_settled": settled,
        "settlement_rate": rate(settled, n("matters_raised")),
        "on_time_rate": rate(n("matters_settled", "on_time", "true"), settled),
        "satisfaction_rate": rate(n("matters_rated", "score", "4") + n("matters_rated", "score", "5"), rated),
        "median_days_to_settle": rules.median_from(days),
    }
