"""Small-cell protection: the one rule every view of counts follows (DESIGN §5). Pure, no I/O.

For a role that sees aggregates only (district analysts, department feeds) and for the Prometheus
gauges, which anyone who reads the dashboards sees, a count of 1 to 4 is never shown, and neither is
anything that would give one back. Headlines, roll-ups, their CSV and the gauges all ask this module,
over the same figures, so they show and hide the same cells.

A cell is one count of the roll-ups: (node, period, period_start, metric, dim, value); for a stock,
its level at that period's end. Cells are parts of wholes along three axes, and a whole minus the
parts that are shown gives back the parts that are not:

- node: a node's count is part of its parent's (the parent's own facts are the rest);
- dimension: a value's count is part of the metric's total (facts without the value are the rest);
  a list dimension (tags) is a yes/no split per value: total minus value is a count too;
- period, flows only: a day is part of its month, a month of its year.

So the rule works on grids: the cells that share a parent node, a metric, a dimension (a list
dimension's value) and an enclosing period (a stock's own period end). A grid is hidden, every cell
in it whatever its value, if
  1. any cell in it is a count of 1 to 4 (as a change, -4 to -1 too);
  2. any rest along an axis (parent minus its children, total minus its values, year minus its
     months) is 1 to 4;
  3. any complement across metrics is 1 to 4: matters raised but not settled, settled but not
     rated, people a broadcast was for but did not reach, reached but who did not read it
     (COMPLEMENTS), as the views put them side by side;
  4. the whole of any of its cells is hidden (its parent's, its total, its enclosing period's
     cell): shown parts would add up to the hidden whole.
Hiding whole grids, not single cells, is what makes differences useless: in a hidden grid no
difference between shown figures isolates a hidden one. A rate or a measure's total is shown only if
every count it is made of is shown (rate x whole = part); a median only if its count is.

A count of 0 is shown: it tells of no one. A cell with no row at all is 0 in every view, the
way a listing that leaves it out says so; but a series in a hidden grid lists its empty periods as
hidden, or the gaps would show which period holds the hidden count.
"""
from datetime import date

from services.aggregator.rules import CODE_LENGTHS, STOCKS

THRESHOLD = 5
SUPPRESSING_ROLES = frozenset({"department_feed", "district_analyst"})
LIST_DIMS = frozenset({"tags"})
# part metric -> the metric it is compared with in the views; whole - part is a count of matters too.
COMPLEMENTS = {"matters_settled": "matters_raised", "matters_rated": "matters_settled",
               "broadcast_reached": "broadcast_targeted", "broadcast_read": "broadcast_reached"}


def suppressing(caller):
    """Whether this caller sees counts under the rule (aggregates-only roles)."""
    return (caller or {}).get("role") in SUPPRESSING_ROLES


def small(n):
    """A count of 1 to 4 (or such a change, -4 to -1): it could point at a person."""
    return 0 < abs(n) < THRESHOLD


def parent(code, top):
    """The node's parent in the tree under `top`, or None for `top` itself (or a node outside it)."""
    if code == top or not code.startswith(top):
        return None
    shorter = [n for n in CODE_LENGTHS if len(top) <= n < len(code)]
    return code[:shorter[-1]] if shorter else None


def enclosing(period, start):
    """The period a flow's day or month adds up to; None for a year."""
    if period == "day":
        return "month", start.replace(day=1)
    if period == "month":
        return "year", date(start.year, 1, 1)
    return None


class Protection:
    """Which cells of a figure set are hidden. `cells`: {(node, period, start, metric, dim, value): n}
    holding every cell of each grid a view shows and of each grid above them: the nodes from `top`
    down to the viewed node with their children, each dimension shown with its totals, and for flows
    every day of a month and month of a year shown, with the enclosing cells."""

    def __init__(self, cells, top):
        self.cells, self.top = cells, top
        self.grids, self._hidden = {}, {}
        for key in cells:
            self.grids.setdefault(self.grid(key), []).append(key)

    def grid(self, key):
        node, period, start, metric, dim, value = key
        part_of = (dim, value) if dim in LIST_DIMS else dim
        span = (period, start) if metric in STOCKS else (enclosing(period, start) or (period, start))
        return parent(node, self.top), metric, part_of, span

    def hidden(self, key):
        """True if this cell is not to be shown. A cell with no row is 0 and shown: a view that lists
        what has figures tells that much by leaving it out anyway."""
        return key in self.cells and self.grid_hidden(key)

    def grid_hidden(self, key):
        """True if the grid this cell (with or without a row) belongs to is hidden: a view listing a
        series lists its missing periods in such a grid as hidden too, so that no gap reads as 0."""
        return self._grid_hidden(self.grid(key))

    def shown(self, key):
        """The count, or None where it is hidden (0 for a cell with no row)."""
        return None if self.hidden(key) else self.n(key)

    def n(self, key):
        return self.cells.get(key, 0)

    def _grid_hidden(self, g):
        if g not in self._hidden:
            self._hidden[g] = False  # wholes lie strictly above, so no cycle comes back here
            self._hidden[g] = self._decide(g, self.grids.get(g, ()))
        return self._hidden[g]

    def _decide(self, g, members):
        by_parent, by_total, by_period = {}, {}, {}
        for key in members:
            node, period, start, metric, dim, value = key
            n = self.n(key)
            if small(n):
                return True
            partner = COMPLEMENTS.get(metric)
            if partner and small(self.n((node, period, start, partner, dim, value)) - n):
                return True
            up = parent(node, self.top)
            if up is not None:
                by_parent.setdefault((up, period, start, metric, dim, value), []).append(n)
            if dim:
                total = (node, period, start, metric, "", "")
                if dim in LIST_DIMS:
                    if small(self.n(total) - n):
                        return True
                by_total.setdefault(total, []).append(n)
            around = None if metric in STOCKS else enclosing(period, start)
            if around:
                by_period.setdefault((node, *around, metric, dim, value), []).append(n)
        # A list dimension's values overlap, so only its single values were checked against the total above.
        for wholes, additive in ((by_parent, True), (by_total, not isinstance(g[2], tuple)), (by_period, True)):
            for whole, parts in wholes.items():
                if additive and small(self.n(whole) - sum(parts)):
                    return True
                if self.grid_hidden(whole):
                    return True
        return False

    def rate(self, parts, whole):
        """part / whole to 4 places, or None where whole is 0 or any count in it is hidden."""
        if self.hidden(whole) or any(self.hidden(p) for p in parts):
            return None
        return plain_rate(sum(self.n(p) for p in parts), self.n(whole))


class Open:
    """The same questions for roles that see every count: nothing is hidden."""

    def __init__(self, cells):
        self.cells = cells

    def hidden(self, key):
        return False

    grid_hidden = hidden

    def n(self, key):
        return self.cells.get(key, 0)

    shown = n

    def rate(self, parts, whole):
        return plain_rate(sum(self.n(p) for p in parts), self.n(whole))


def plain_rate(part, whole):
    return None if not whole else round(part / whole, 4)


def protection(cells, top, caller):
    """The rule for this caller over these cells: Protection for aggregates-only roles, else Open."""
    return Protection(cells, top) if suppressing(caller) else Open(cells)
