"""Roll-up rules: pure, no I/O. Which batches to trust, and what each fact adds to which figure.

Trust. A batch is accepted only if its Ed25519 signature verifies with the key of the instance
named as its source, and that instance is this one or one of its registered children, and every
fact's node lies inside that instance's subtree. A street cannot speak for another street.

Figures. A fact adds its `delta` (+1/-1) to the count of each metric its type feeds, and, for a
metric with a measure (points, hours, days to settle, score), the measure times the delta to its
total. It does so at its node and at every ancestor down to this instance's root (community,
street, district, city codes are prefixes of each other), for its day, month and year, once in
total and once per dimension value it carries (a list such as care tags counts per element).
Counts are sums, so the district's figure is exactly the sum of its streets' figures, and a
roll-up rebuilt from the facts log is the same as the one kept live.

Stocks (residents, party members, organisations, workers) are sums of +1/-1 over time: the level
at the end of a period is the sum of every day up to it. A street dates both sides of a change by
the same rule (the day its register changed), so no stock is ever below zero on any day. People
are counted by birth cohort; a stock by age band is read from the cohorts at the day it describes
(shared.facts.age_band_of), so it does not drift as the people in it grow older. Medians come from
the distribution kept as a dimension (days to settle), never from averaging medians.
"""
import re
from datetime import date
from decimal import Decimal

from shared import facts as facts_mod

CODE_LENGTHS = (4, 6, 9, 12, 15)   # city, district, street, community, grid
PERIODS = ("day", "month", "year")
ZERO = Decimal(0)
# fact type -> [(metric, measure key or None)]
METRICS = {
    "resident_registered": [("residents", None)], "resident_updated": [("residents", None)],
    "resident_moved": [("residents", None)], "resident_left": [("residents", None)],
    "resident_died": [("residents", None)],
    "party_member_registered": [("party_members", None)], "party_member_relocated": [("party_members", None)],
    "party_member_placed": [("party_members", None)],
    # The registry sends a report as -1 with the old dimensions and +1 with the new (report_status
    # unreported -> reported): the count stays, the split by report_status moves.
    "party_member_reported": [("party_members", None)], "party_member_withdrawn": [("party_members", None)],
    "organization_registered": [("organizations", None)],
    "organization_status_changed": [("organizations", None)], "organization_updated": [("organizations", None)],
    "organization_member_joined": [("organization_members", None)],
    "organization_member_left": [("organization_members", None)],
    # A membership's role or its organisation's subcategory changed: -1 as it was, +1 as it is.
    "organization_member_changed": [("organization_members", None)],
    "worker_appointed": [("workers", None)], "worker_left": [("workers", None)],
    "points_posted": [("points_posted", "points"), ("service_hours", "hours")],
    "points_reversed": [("points_posted", "points"), ("service_hours", "hours")],
    "points_redeemed": [("points_redeemed", "points")],
    # A matter merged into the open matter it repeats is taken back (-1, dated the day it was raised):
    # "raised" counts matters of their own, as the consultation service's figures do.
    "matter_raised": [("matters_raised", None)],
    "matter_settled": [("matters_settled", "days_to_settle")],
    "matter_rated": [("matters_rated", "score")],
    "meeting_closed": [("meetings_held", None)],
    "result_published": [("results_published", None)],
    # A street's acknowledgement counts of a directive from above, as changes since its last report.
    "broadcast_targeted": [("broadcast_targeted", None)], "broadcast_reached": [("broadcast_reached", None)],
    "broadcast_read": [("broadcast_read", None)],
}
STOCKS = {"residents", "party_members", "organizations", "organization_members", "workers"}
# Dimensions worth grouping by; anything else a fact carries stays in the log, not in roll-ups.
# `cohort` is the birth year of people in a stock: bands are derived from it when read (age_band_of).
DIMENSIONS = {"age_band", "cohort", "sex", "residence_type", "tags", "category", "member_category", "channel",
              "urgency", "on_time", "days_to_settle", "score", "kind", "status", "role", "reward_kind", "outcome",
              "directive", "report_status"}
# What a roll-up may be asked for: a metric some fact feeds, grouped not at all, per child node, or by a
# dimension above. Anything else would answer an empty series, which reads as zero, not as a typo.
KNOWN_METRICS = frozenset(metric for pairs in METRICS.values() for metric, _ in pairs)
GROUPS = ("none", "child")


def query_problems(metric, group):
    """{field: [message]} of a roll-up query's metric and grouping that no fact feeds; {} if both are known."""
    problems = {}
    if metric not in KNOWN_METRICS:
        problems["metric"] = [f"unknown metric {metric}; one of: {', '.join(sorted(KNOWN_METRICS))}"]
    if group not in GROUPS and not (group.startswith("dim:") and group[4:] in DIMENSIONS):
        problems["group"] = [f"unknown grouping {group}; none, child or dim:<dimension>, a dimension one of: "
                             + ", ".join(sorted(DIMENSIONS))]
    return problems


def ancestors(node, root):
    """The node and its ancestors down to `root`, e.g. 310110012003 under 310110 -> 310110012003,
    310110012, 310110."""
    return [node[:n] for n in CODE_LENGTHS if len(root) <= n <= len(node)] + \
        ([node] if len(node) not in CODE_LENGTHS and node.startswith(root) else [])


def period_starts(day):
    return (("day", day), ("month", day.replace(day=1)), ("year", day.replace(month=1, day=1)))


def _values(value):
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if value is None:
        return []
    return [str(value)]


def contributions(fact, root, into):
    """Add what one fact contributes to `into`: {(node, period, start, metric, dim, value): [n, total]}."""
    return expand(reduce([fact]), root, into)


def reduce(facts):
    """Facts summed at their own node and day: {(node, day, metric, dim, value): [n, total]}.

    Many facts share a community, day and dimension, so summing first and spreading to ancestors and
    periods after (expand) does the per-fact work once instead of once per node and period.
    """
    out = {}
    for fact in facts:
        metrics = METRICS.get(fact["type"])
        if not metrics:
            continue
        day = fact["occurred_on"]
        day = date.fromisoformat(day) if isinstance(day, str) else day
        delta = int(fact.get("delta") or 0)
        dims = fact.get("dims") or {}
        pairs = [("", "")] + [(k, v) for k, raw in sorted(dims.items()) if k in DIMENSIONS for v in _values(raw)]
        for metric, measure in metrics:
            # Decimal from the text form: two-decimal hours summed in floats would drift, and the
            # district's total must equal its streets' to the last digit.
            amount = Decimal(str(dims.get(measure) or 0)) * delta if measure else ZERO
            for dim, value in pairs:
                cell = out.get((fact["node"], day, metric, dim, value))
                if cell is None:
                    out[(fact["node"], day, metric, dim, value)] = [delta, amount]
                else:
                    cell[0] += delta
                    cell[1] += amount
    return out


def expand(base, root, into=None):
    """Spread reduced cells to every ancestor down to `root` and to day, month and year."""
    into = {} if into is None else into
    for (node, day, metric, dim, value), (n, total) in base.items():
        for anc in ancestors(node, root):
            for period, start in period_starts(day):
                key = (anc, period, start, metric, dim, value)
                cell = into.get(key)
                if cell is None:
                    into[key] = [n, total]
                else:
                    cell[0] += n
                    cell[1] += total
    return into


def stock_dims(dims):
    """The dimensions to read of a stock for `dims`: an age band is read from the birth cohorts."""
    return sorted(set(dims) | {"cohort"}) if "age_band" in dims else sorted(set(dims))


def age_band_cells(cells, keep_cohorts=False):
    """Stock cells {(node, period, start, metric, dim, value): (n, total)} with the cells by birth cohort
    summed into cells by age band, each at its period (every period lies in one year, and the band is
    the age reached in that year: facts_mod.age_band_of). Cells by a band that a fact carried itself
    are left out: a band fixed on the day of the fact drifts as people age. The cohort cells stay
    only with `keep_cohorts`."""
    out = {}
    for key, (n, total) in cells.items():
        node, period, start, metric, dim, value = key
        if dim == "age_band":
            continue
        if dim == "cohort":
            band = (node, period, start, metric, "age_band", facts_mod.age_band_of(value, start))
            was = out.get(band, (0, ZERO))
            out[band] = (was[0] + n, was[1] + total)
            if not keep_cohorts:
                continue
        out[key] = (n, total)
    return out


# -- nodes --------------------------------------------------------------------------------------

LEVEL_NAMES = frozenset({"city", "district", "street", "community", "grid"})
# More parts than any split makes: a description listing more is not read (a view follows each).
MAX_SUCCESSORS = 50


def _day(value):
    try:
        return date.fromisoformat(value).isoformat() if isinstance(value, str) else None
    except ValueError:
        return None


def node_description(fact):
    """A node_changed fact as a row of the nodes table, or None where it does not read as one (a sender
    on an older or broken version): {code, name, level, valid_from, valid_to, successors, predecessor,
    version}. Codes named as successors or predecessor are kept only if they are codes of the same parent."""
    d, code = fact.get("dims") or {}, fact.get("node")
    if not isinstance(d, dict) or not isinstance(code, str) or not (code.isascii() and code.isdigit()):
        return None
    name, level, version = d.get("name"), d.get("level"), d.get("version")
    valid_from, valid_to = _day(d.get("valid_from")), _day(d.get("valid_to"))
    if not (isinstance(name, str) and 0 < len(name) <= 200) or level not in LEVEL_NAMES or not valid_from \
            or (d.get("valid_to") is not None and not valid_to) \
            or not isinstance(version, int) or isinstance(version, bool) or not 0 <= version < 2 ** 31:
        return None

    up = max((n for n in CODE_LENGTHS if n < len(code)), default=0)

    def sibling(c):
        """A code of the same level under the same parent: a split or merge never crosses a parent."""
        return isinstance(c, str) and c.isascii() and c.isdigit() and len(c) == len(code) and c != code \
            and c[:up] == code[:up]

    successors = d.get("successors") if isinstance(d.get("successors"), list) else []
    if len(successors) > MAX_SUCCESSORS:
        return None
    predecessor = d.get("predecessor")
    return {"code": code, "name": name, "level": level, "valid_from": valid_from, "valid_to": valid_to,
            "successors": sorted({c for c in successors if sibling(c)}),
            "predecessor": predecessor if sibling(predecessor) else None, "version": version}


# -- trust --------------------------------------------------------------------------------------

def _sender_refusal(message, own_code, keys):
    source = message["source"].get("node_code")
    if not isinstance(source, str) or source not in keys:
        return f"{source} is not this instance or one of its registered children"
    if source != own_code and not source.startswith(own_code):
        return f"{source} lies outside {own_code}"
    seq = message.get("seq")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 1
                            or not isinstance(message["source"].get("service"), str)):
        return "its seq is not a positive integer from a named service"
    if not facts_mod.verify(message, keys[source]):
        return f"the signature does not verify with {source}'s key"
    return None


def head_refusal(head, own_code, keys):
    """None if a stream head (shared/streams.py) may be taken here, else why not."""
    if not isinstance(head.get("source"), dict) or not isinstance(head.get("stream"), str) \
            or not isinstance(head.get("seq"), int):
        return "not a stream head"
    return _sender_refusal(head, own_code, keys)


def refusal(batch, own_code, keys):
    """None if the batch may be aggregated here, else why not. `keys`: {instance code: public key},
    this instance's own and its registered children's."""
    if not isinstance(batch, dict) or not isinstance(batch.get("facts"), list) \
            or not isinstance(batch.get("batch_id"), str) or not batch["batch_id"] \
            or not isinstance(batch.get("source"), dict):
        return "not a fact batch"
    why = _sender_refusal(batch, own_code, keys)
    if why:
        return why
    source = batch["source"]["node_code"]
    for f in batch["facts"]:
        if not isinstance(f, dict) or not isinstance(f.get("node"), str) or not f["node"].startswith(source):
            return f"a fact about {f.get('node') if isinstance(f, dict) else f!r} lies outside {source}'s subtree"
        if not isinstance(f.get("fact_id"), str) or not isinstance(f.get("type"), str):
            return "a fact has no fact_id or type"
        try:
            date.fromisoformat(f["occurred_on"])
        except (KeyError, TypeError, ValueError):
            return f"fact {f['fact_id']} has no valid occurred_on"
        why = _content_refusal(f)
        if why:
            return f"fact {f['fact_id']} {why}"
    return None


# A fact's delta and measures as a sender may give them: a count of people or matters changes by far
# less, and a day's points or hours are far fewer; more is a sender's fault, never a figure.
LIMIT = 10 ** 9


def _content_refusal(f):
    """Why a fact's dims, delta or measures could not be rolled up (a batch holding it is refused whole,
    as one from an unknown sender is), or None. Without this a dims list, a delta "two" or points "abc"
    failed the whole group of batches being taken, and a days to settle of "NaN" spoilt every median."""
    dims = f.get("dims")
    if dims is not None and not isinstance(dims, dict):
        return "has dims that are not an object"
    delta = f.get("delta")
    if delta is not None and (isinstance(delta, bool) or not isinstance(delta, int) or abs(delta) >= LIMIT):
        return "has a delta that is not a whole number of sane size"
    for _, measure in METRICS.get(f["type"], ()):
        raw = (dims or {}).get(measure) if measure else None
        if raw is None:
            continue
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            return f"has a {measure} that is not a number"
        try:
            value = Decimal(str(raw))
        except ArithmeticError:
            return f"has a {measure} that is not a number"
        if not value.is_finite() or abs(value) >= LIMIT:
            return f"has a {measure} that is not a finite number of sane size"
        if measure == "days_to_settle" and not _DAYS_TO_SETTLE.fullmatch(str(raw)):
            return "has a days_to_settle that is not days to at most two places"
    return None


# -- reading figures ----------------------------------------------------------------------------

# Days to settle as the consultation service sends them: days to at most two places. A batch with any
# other is refused (refusal); a value in the roll-ups from before that rule counts for no median here
# (median_from) rather than failing it.
DAYS_TO_SETTLE = r"-?[0-9]{1,6}(\.[0-9]{1,2})?"
_DAYS_TO_SETTLE = re.compile(DAYS_TO_SETTLE)



def median_from(distribution):
    """The median of {days to settle: count}, to 2 places; None if empty. For an even count, the mean of
    the two middle values: the consultation service's own median (rules.figures) of the same days to
    settle, so the figure is the same at every level."""
    items = sorted((float(v), n) for v, n in distribution.items() if n > 0 and _DAYS_TO_SETTLE.fullmatch(str(v)))
    total = sum(n for _, n in items)
    if not total:
        return None

    def nth(k):   # the k-th value (from 0) in order
        seen = 0
        for value, n in items:
            seen += n
            if seen > k:
                return value

    return middle_mean(nth((total - 1) // 2), nth(total // 2))


def middle_mean(low, high):
    """The median from its two middle values (the same one twice for an odd count), as floats and rounded
    as the consultation service rounds its own: the mean of 9.99 and 10 is 10.0 here, as there."""
    return round((float(low) + float(high)) / 2, 2)
