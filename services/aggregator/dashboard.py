"""What the console's dashboards read beyond the roll-ups: a period's headline figures for a node and
each of its children beside the previous period's, the nodes of the subtree (names, splits and
merges), their boundaries for the map, and how fresh each child instance's figures are.

Every count goes through the one small-cell rule (suppression.py) over the same cells /rollups
reads, so a card or a row of the drill-down equals the roll-up of its metric, node and period.
"""
import json
import math
from datetime import date, datetime, timezone

from services.aggregator import figures, rules, store
from services.aggregator.schemas import DashboardQuerySchema, NodesQuerySchema
from shared import clock
from shared.errors import ValidationFailed, load
from shared.scope import in_scope

# The dimensions the figures are made of (figure_set): of stocks, and of flows (whose months are read for
# whole years, as the rule compares them). The rule decides each grid from its own cells and the wholes
# above them, so reading only these decides them as /rollups and /headlines do. The median days to
# settle is worked out in the database for the two periods alone (figures.settled_medians). Age bands
# are left to the composition chart's /rollups: made from birth cohorts, they were most of the cells
# read for every child (bench/bench_dashboard.py: 55,000 of a street's month) and shown for none.
STOCK_DIMS = ["", "category", "report_status", "residence_type"]
FLOW_DIMS = ["", "on_time", "score"]


def period_of(period, day):
    """(start, end, previous start, previous end) of the month or year holding `day`."""
    if period == "month":
        start = day.replace(day=1)
        end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
        prev = date(start.year - (start.month == 1), (start.month - 2) % 12 + 1, 1)
        return start, date.fromordinal(end.toordinal() - 1), prev, date.fromordinal(start.toordinal() - 1)
    start = date(day.year, 1, 1)
    return start, date(day.year, 12, 31), date(day.year - 1, 1, 1), date(day.year - 1, 12, 31)


def dashboard(tx, query, caller, today=None, root=None, judge=False):
    """A node's figures in a month or year and in the one before, and the same for each child node
    (the drill-down): stocks at the period's end (today, for the period under way), flows in it."""
    q = load(DashboardQuerySchema, query)
    today = today or clock.today()
    day = q.get("start") or today
    if day > today:
        raise ValidationFailed("the request has invalid fields",
                               {"start": [f"must not be after today ({today.isoformat()}): no figures yet"]})
    node = figures._node(q, caller, "node")
    period = q["period"]
    start, end, prev, prev_end = period_of(period, day)
    top = figures._top(tx, node, root)
    child_length = figures._child_length(node)
    children = child_length is not None
    # Its reads are many small index scans: compiling them (PostgreSQL's JIT) cost more than it saved
    # on the bench's district (bench/bench_dashboard.py: the stock levels' read 131 -> 88 ms). A pooled
    # connection prepares a statement run five times, and the generic plan PostgreSQL may then keep for
    # any node was the slower one (the district's year 79 -> 64 ms): each call is planned for its own.
    tx.execute(store.READ_PLANNED)
    cells = figures._cells(tx, top, node, figures.FIGURE_STOCKS, period, prev, start, STOCK_DIMS, children)
    cells.update(figures._cells(tx, top, node, figures.FIGURE_FLOWS, period, prev, start, FLOW_DIMS, children))
    medians = figures.settled_medians(tx, node, period, [prev, start], children)
    figures._known(tx, q, "node", node, judge, cells, root)
    rule = figures._rule(cells, top, caller)
    described = {r["code"]: r for r in tx.all(store.NODES_UNDER, (node,))}

    index = figures.CellIndex(cells)

    def both(code):
        return (figures.figure_set(rule, cells, code, (period, start), (period, start), index, medians, False),
                figures.figure_set(rule, cells, code, (period, prev), (period, prev), index, medians, False))

    codes = set()
    if children:
        # The children with a figure in the years read, and those that existed in the two periods (a new or
        # quiet community reads as zeros); not one that ended before, or began after, with nothing to show.
        codes = {k[0] for k, v in cells.items() if len(k[0]) == child_length and k[0].startswith(node) and v[0]}
        codes |= {c for c, r in described.items() if len(c) == child_length
                  and r["valid_from"] <= end and (r["valid_to"] is None or r["valid_to"] > prev)}
    rows = []
    for code in sorted(c for c in codes if in_scope(c, caller)):
        now, before = both(code)
        r = described.get(code)
        rows.append({"code": code, **_naming(r), "figures": now, "previous": before})
    now, before = both(node)
    return {"node": node, **_naming(described.get(node)), "period": period, "start": start.isoformat(),
            "end": end.isoformat(), "previous_start": prev.isoformat(), "previous_end": prev_end.isoformat(),
            "as_of": min(end, today).isoformat(), "current": start <= today <= end,
            "figures": now, "previous": before, "children": rows}


def _naming(row):
    if row is None:
        return {"name": None, "level": None, "valid_from": None, "valid_to": None, "successors": [],
                "predecessor": None}
    return {"name": row["name"], "level": row["level"], "valid_from": row["valid_from"].isoformat(),
            "valid_to": row["valid_to"].isoformat() if row["valid_to"] else None,
            "successors": list(row["successors"] or []), "predecessor": row["predecessor"]}


def nodes(tx, query, caller, judge=False):
    """The nodes of a subtree as this instance knows them: code, name, level, dates, and the nodes a
    retired one's figures continue on (successors) or came from (predecessor, or those merged in).
    A node this instance does not know is a 404, as in every view (figures._known)."""
    q = load(NodesQuerySchema, query)
    node = figures._node(q, caller, "node")
    rows = tx.all(store.NODES_UNDER, (node,))
    if not any(r["code"] == node for r in rows):
        figures._known(tx, q, "node", node, judge)
    merged_into = {}
    for r in rows:
        for s in r["successors"] or []:
            merged_into.setdefault(s, []).append(r["code"])
    return [{"code": r["code"], **_naming(r), "predecessors": sorted(set(merged_into.get(r["code"], []))
                                                                     | ({r["predecessor"]} - {None}))}
            for r in rows if in_scope(r["code"], caller)]


# -- boundaries ---------------------------------------------------------------------------------

MAX_FEATURES = 5000
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_POINTS = 200_000
GEOMETRY_TYPES = ("Polygon", "MultiPolygon")


def boundaries(tx, query, caller, judge=False):
    """A GeoJSON FeatureCollection of the boundaries of a node's children (or the node's own, for a
    node without children), as imported (`linli nodes boundaries import`); 404 for an unknown node."""
    q = load(NodesQuerySchema, query)
    node = figures._node(q, caller, "node")
    figures._known(tx, q, "node", node, judge)
    length = figures._child_length(node)
    described = [r["code"] for r in tx.all(store.NODES_UNDER, (node,))]
    wanted = [c for c in described if len(c) == length] if length else [node]
    wanted = sorted(set(wanted) | set(_imported_children(tx, node, length)))
    rows = tx.all(store.BOUNDARIES_OF, (wanted,))
    return {"type": "FeatureCollection", "node": node,
            "features": [{"type": "Feature", "properties": {"code": r["code"], "name": r["name"]},
                          "geometry": r["geometry"]} for r in rows if in_scope(r["code"], caller)]}


def _imported_children(tx, node, length):
    if not length:
        return []
    return [r["code"] for r in tx.all(store.BOUNDARY_CODES_UNDER, (node, length))]


def parse_boundaries(text, own_code):
    """([(code, name, geometry)], skipped) of a GeoJSON FeatureCollection of polygons in WGS 84
    longitude/latitude, each feature naming its node in properties `code` (or `id`); raises ValueError
    saying what is wrong with which feature. Features of nodes outside this instance are checked and
    skipped (counted), so one district-wide file serves every instance of the district."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not JSON (or nested too deep): {str(exc)[:200]}") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise ValueError("not a GeoJSON FeatureCollection")
    if len(doc["features"]) > MAX_FEATURES:
        raise ValueError(f"more than {MAX_FEATURES} features")
    out, seen, points, skipped = [], set(), 0, 0
    for i, f in enumerate(doc["features"]):
        where = f"feature {i + 1}"
        props = f.get("properties") if isinstance(f, dict) else None
        props = props if isinstance(props, dict) else {}
        code = str(props.get("code") or f.get("id") or "") if isinstance(f, dict) else ""
        if not (code.isascii() and code.isdigit() and len(code) in rules.CODE_LENGTHS):
            raise ValueError(f"{where}: properties.code must be a node code of 4, 6, 9, 12 or 15 digits")
        where = f"{where} ({code})"
        if code in seen:
            raise ValueError(f"{where}: given twice")
        seen.add(code)
        geometry = f.get("geometry")
        if not isinstance(geometry, dict) or geometry.get("type") not in GEOMETRY_TYPES:
            raise ValueError(f"{where}: the geometry must be a Polygon or MultiPolygon")
        polygons = geometry.get("coordinates")
        polygons = [polygons] if geometry["type"] == "Polygon" else polygons
        if not isinstance(polygons, list) or not polygons:
            raise ValueError(f"{where}: no coordinates")
        for polygon in polygons:
            if not isinstance(polygon, list) or not polygon:
                raise ValueError(f"{where}: a polygon has no rings")
            for ring in polygon:
                if not isinstance(ring, list) or len(ring) < 4:
                    raise ValueError(f"{where}: a ring needs at least 4 positions")
                for p in ring:
                    if not (isinstance(p, list) and len(p) >= 2 and all(_finite(v) for v in p[:2])
                            and -180 <= p[0] <= 180 and -90 <= p[1] <= 90):
                        raise ValueError(f"{where}: positions are [longitude, latitude] in degrees")
                if ring[0][:2] != ring[-1][:2]:
                    raise ValueError(f"{where}: a ring must end where it starts")
                points += len(ring)
        if points > MAX_POINTS:
            raise ValueError(f"more than {MAX_POINTS} positions in all: simplify the boundaries first")
        if not code.startswith(own_code):
            skipped += 1
            continue
        name = props.get("name")
        # Printable text only: no control character or lone surrogate reaches the database or a page.
        name = "".join(ch for ch in name if ch.isprintable())[:200] if isinstance(name, str) else None
        clean = {"type": geometry["type"], "coordinates": [
            [[[float(p[0]), float(p[1])] for p in ring] for ring in polygon] for polygon in polygons]}
        if geometry["type"] == "Polygon":
            clean["coordinates"] = clean["coordinates"][0]
        out.append((code, name or None, clean))
    if not out:
        raise ValueError(f"no feature of a node inside this instance ({own_code})")
    return out, skipped


def _finite(v):
    """A number a position may hold: a finite float, or an int of sane size (math.isfinite overflows on a
    400-digit one)."""
    if isinstance(v, bool):
        return False
    return (isinstance(v, int) and -10 ** 6 < v < 10 ** 6) or (isinstance(v, float) and math.isfinite(v))


def import_boundaries(tx, parsed):
    for code, name, geometry in parsed:
        tx.execute(store.IMPORT_BOUNDARY, (code, name, json.dumps(geometry)))
    return len(parsed)


# -- freshness ----------------------------------------------------------------------------------

def freshness(tx, caller, links, now=None):
    """Per registered child in the caller's scope: when its last fact arrived, its federation link's
    state (`links`: {child code: state} from the broker's management API, None where it could not be
    asked), batches refused from it, and the gaps in what it sent (shared/streams.py)."""
    now = now or datetime.now(timezone.utc)
    from shared import streams
    gaps = {}
    for p in streams.positions(tx):
        g = gaps.setdefault(p["source"], {"missing": 0, "oldest_gap_seconds": 0.0})
        g["missing"] += p["missing"]
        g["oldest_gap_seconds"] = max(g["oldest_gap_seconds"], p["oldest_gap_seconds"])
    refused = {r["source_code"]: r for r in tx.all(store.REJECTED_BY_SOURCE)}
    rows = [r for r in tx.all(store.CHILDREN) if in_scope(r["code"], caller)]
    names = {r["code"]: r["name"] for r in tx.all(store.NODE_NAMES, ([r["code"] for r in rows],))}
    out = []
    for r in rows:
        last = r["last_fact_at"]
        rej = refused.get(r["code"])
        out.append({"code": r["code"], "name": names.get(r["code"]),
                    "last_fact_at": last.isoformat() if last else None,
                    "seconds_since_last_fact": (now - last).total_seconds() if last else None,
                    "link": "unknown" if links is None else links.get(r["code"], "absent"),
                    "refused_batches": int(rej["n"]) if rej else 0,
                    "last_refused_at": rej["last_at"].isoformat() if rej else None,
                    **gaps.get(r["code"], {"missing": 0, "oldest_gap_seconds": 0.0})})
    return out
