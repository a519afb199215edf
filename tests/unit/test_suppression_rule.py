"""The small-cell rule on its own (services/aggregator/suppression.py): pure, many generated cases.

tests/integration/test_suppression.py holds every view to the rule on PostgreSQL; here the rule's
own promise is checked on thousands of figure sets in seconds, list dimensions (tags) included: in
every relation a reader knows (a parent and its children, a total and a dimension's values, a
total and a tag, a year and its months, raised and settled), either every part is shown or the
parts not shown add up to nothing of 1 to 4 - and no part is shown while its whole is hidden.
"""
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from services.aggregator.suppression import Open, Protection, enclosing, parent, protection, small

TOP = "310110"
YEAR = ("year", date(2026, 1, 1))
MONTHS = [("month", date(2026, m, 1)) for m in (1, 2, 3)]


def test_what_counts_as_small_and_where_cells_sit():
    assert [n for n in range(-6, 7) if small(n)] == [-4, -3, -2, -1, 1, 2, 3, 4]
    assert parent("310110012003", TOP) == "310110012" and parent("310110012", TOP) == TOP
    assert parent(TOP, TOP) is None and parent("310111001", TOP) is None
    assert enclosing("day", date(2026, 3, 9)) == ("month", date(2026, 3, 1))
    assert enclosing("month", date(2026, 3, 1)) == YEAR and enclosing("year", date(2026, 1, 1)) is None
    assert isinstance(protection({}, TOP, {"role": "street_admin"}), Open)
    assert isinstance(protection({}, TOP, {"role": "district_analyst"}), Protection)


def test_a_tag_held_by_all_but_two_is_hidden_and_so_is_its_rate():
    key = (TOP, *YEAR, "residents", "", "")
    cells = {key: 10, (TOP, *YEAR, "residents", "tags", "elderly_alone"): 8,
             (TOP, *YEAR, "residents", "tags", "disabled"): 5}
    rule = Protection(cells, TOP)
    assert rule.shown(key) == 10 and rule.shown((TOP, *YEAR, "residents", "tags", "disabled")) == 5
    assert rule.shown((TOP, *YEAR, "residents", "tags", "elderly_alone")) is None     # 10 - 8 = 2
    assert rule.rate([(TOP, *YEAR, "residents", "tags", "elderly_alone")], key) is None
    assert Open(cells).rate([(TOP, *YEAR, "residents", "tags", "elderly_alone")], key) == 0.8


def test_a_cell_with_no_row_is_zero_but_a_gap_in_a_hidden_grid_is_hidden():
    c1, c2 = "310110012", "310110013"
    cells = {(TOP, *MONTHS[0], "matters_raised", "", ""): 9, (c1, *MONTHS[0], "matters_raised", "", ""): 6,
             (c2, *MONTHS[0], "matters_raised", "", ""): 3, (TOP, *YEAR, "matters_raised", "", ""): 9,
             (c1, *YEAR, "matters_raised", "", ""): 6, (c2, *YEAR, "matters_raised", "", ""): 3}
    rule = Protection(cells, TOP)
    gap = (c1, *MONTHS[1], "matters_raised", "", "")
    assert rule.shown(gap) == 0 and rule.grid_hidden(gap)
    assert rule.shown((c1, *MONTHS[0], "matters_raised", "", "")) is None          # beside c2's 3
    assert rule.shown((TOP, *MONTHS[0], "matters_raised", "", "")) == 9


# -- generated figure sets ----------------------------------------------------------------------------------

NODES = [TOP, "310110012", "310110013", "310110012001", "310110012002", "310110013001"]
LEAVES = NODES[1:]
DIMS = {"sex": ["F", "M"], "tags": ["elderly_alone", "disabled"]}


@st.composite
def figure_sets(draw):
    """Flows by month for a small tree: counted where they happen, summed to ancestors, totals and years."""
    cells = {}
    for _ in range(draw(st.integers(1, 12))):
        node, month = draw(st.sampled_from(LEAVES)), draw(st.sampled_from(MONTHS))
        metric = draw(st.sampled_from(["matters_raised", "matters_settled"]))
        n = draw(st.one_of(st.integers(1, 4), st.integers(5, 30)))
        sex = draw(st.sampled_from(["F", "M", None]))
        tags = draw(st.lists(st.sampled_from(DIMS["tags"]), unique=True))
        pairs = [("", "")] + ([("sex", sex)] if sex else []) + [("tags", t) for t in tags]
        for anc in [a for a in NODES if node.startswith(a)]:
            for span in (month, YEAR):
                for dim, value in pairs:
                    key = (anc, *span, metric, dim, value)
                    cells[key] = cells.get(key, 0) + n
    return cells


def relations():
    """(whole, parts, tree): whole = parts + a rest the reader cannot see (0 for a year's months).
    In the tree (nodes, dimensions, periods) a hidden whole hides its parts; raised and settled are
    only compared (a complement), neither is the other's whole."""
    out = []
    for metric in ("matters_raised", "matters_settled"):
        for span in MONTHS + [YEAR]:
            for node in NODES:
                kids = [k for k in NODES if parent(k, TOP) == node]
                total = (node, *span, metric, "", "")
                for dim, value in [("", "")] + [(d, v) for d, vs in DIMS.items() for v in vs]:
                    whole = (node, *span, metric, dim, value)
                    if kids:
                        out.append((whole, [(k, *span, metric, dim, value) for k in kids], True))
                    if span == YEAR:
                        out.append((whole, [(node, *m, metric, dim, value) for m in MONTHS], True))
                    if dim == "tags":
                        out.append((total, [whole], True))
                    if metric == "matters_settled" and dim != "tags":
                        out.append(((node, *span, "matters_raised", dim, value), [whole], False))
                out.append((total, [(node, *span, metric, "sex", v) for v in DIMS["sex"]], True))
    return out


RELATIONS = relations()


@settings(max_examples=300, deadline=None)
@given(figure_sets())
def test_no_relation_gives_back_a_count_of_one_to_four(cells):
    rule = Protection(cells, TOP)
    assert not [k for k in cells if rule.shown(k) is not None and small(cells[k])]
    for whole, parts, tree in RELATIONS:
        present = [p for p in parts if p in cells]
        if rule.hidden(whole):
            if tree:
                assert all(rule.hidden(p) for p in present), (whole, parts)
            continue
        # What the reader pins down: the whole less the parts shown, i.e. the hidden parts and the rest.
        unseen = cells.get(whole, 0) - sum(cells[p] for p in present if not rule.hidden(p))
        assert not small(unseen), (whole, [(p, cells[p], rule.hidden(p)) for p in present], unseen)
        # A relation's parts lie in one grid: shown or hidden together.
        assert len({rule.hidden(p) for p in present}) <= 1, (whole, parts)


def test_a_hidden_gauge_is_taken_out_not_left_at_its_last_value(monkeypatch):
    from nameko.testing.services import worker_factory
    from prometheus_client import REGISTRY

    from services.aggregator import figures, service
    aggregator = worker_factory(service.AggregatorService)
    labels = {"node": "310110012", "metric": "residents"}

    def gauge(measure):
        return REGISTRY.get_sample_value("linli_rollup_headline", {**labels, "measure": measure})
    monkeypatch.setattr(figures, "headlines", lambda tx, root, today: [("310110012", "residents", 40, 12.5)])
    aggregator.export_headlines()
    assert (gauge("count"), gauge("total")) == (40, 12.5)
    monkeypatch.setattr(figures, "headlines", lambda tx, root, today: [("310110012", "residents", None, None)])
    aggregator.export_headlines()
    assert (gauge("count"), gauge("total")) == (None, None)
