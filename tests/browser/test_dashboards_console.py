"""The dashboards of the console (issue 21) in a real browser, against a district and two streets
federated for real and loaded with the demo's work (tests/browser/tree.py): the district's figures
equal its roll-ups, a resident registered at a street reaches the district's card without a reload,
the map draws the demo boundaries, an analyst sees small cells marked as suppressed, a split
community's series continues on its parts, and axe-core finds nothing serious at a desk's width or a
phone's.

One tree serves every test of the module, in order: each test's changes (a resident, a community)
are made so that the tests after it still hold. What a page shows is read from the data-test and
data-figure attributes the dashboard's components carry (their texts are documented in
console/src/views/dashboard/figures.ts).
"""
import base64
import csv
import io
import json
import math
from datetime import date, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from selenium.webdriver.common.by import By

from linli.cli import main as cli
from services.registry import nodes, residents
from shared import clock
from tests.browser.conftest import SHOTS, Console
from tests.browser.tree import DISTRICT, PASSWORD, ROOT, STREET_A, STREET_B, console_dir, dashboard_tree, env_of
from tests.integration.conftest import wait_for
from tests.integration.test_residents_api import id_number

BOUNDARIES = ROOT / "linli" / "demo" / "boundaries.geojson"
# The dashboard's figures and the roll-up metric each is (/rollups): counts are a point's n, amounts its
# total; a split count is one value of a dimension; grouped figures ("<group>.<value>", figures.ts) a
# metric per value of a dimension. Rates and the median are compared with the dashboard's own reply.
COUNTS = {"residents": "residents", "party_members": "party_members", "organizations": "organizations",
          "workers": "workers", "matters_raised": "matters_raised", "matters_settled": "matters_settled",
          "broadcast_targeted": "broadcast_targeted", "broadcast_reached": "broadcast_reached",
          "broadcast_read": "broadcast_read"}
AMOUNTS = {"points_posted": "points_posted", "points_redeemed": "points_redeemed", "service_hours": "service_hours"}
GROUPS = {"residents_by_residence_type": ("residents", "residence_type"),
          "organizations_by_category": ("organizations", "category")}
SPLITS = {"party_members_reported": ("party_members", "report_status", "reported")}
# Figures made of others (the dashboard's own): hidden when a count they are made of is hidden.
PARTS = {"report_rate": ["party_members_reported", "party_members"],
         "settlement_rate": ["matters_settled", "matters_raised"], "on_time_rate": ["matters_settled"],
         "satisfaction_rate": ["matters_settled"], "median_days_to_settle": ["matters_settled"],
         "reach_rate": ["broadcast_reached", "broadcast_targeted"],
         "read_rate": ["broadcast_read", "broadcast_reached"]}
CARDS = ("residents", "party_members", "organizations", "points", "matters", "broadcasts")
SHANGHAI = ZoneInfo("Asia/Shanghai")
HIDDEN = "hidden"          # what a suppressed figure is expected as
NOTHING = "nothing"        # a rate or median with no whole: "—"


# -- the tree and who uses it ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tree(base_config):
    yield from dashboard_tree(base_config, console_dir())


@pytest.fixture(scope="module")
def people(tree):
    """Staff accounts: the district's analyst (counts under the small-cell rule) and street A's admin."""
    tree.account(DISTRICT, "analyst", "district_analyst", name="杨浦区分析员")
    tree.account(STREET_A, "admin1", "street_admin", name="长海路街道管理员")
    return {"analyst": (DISTRICT, "analyst"), "admin": (STREET_A, "admin1")}


@pytest.fixture
def console(tree, people, chromium):
    """A browser with nobody signed in, at a desk's width; `.as_(who)` signs in at that person's instance."""
    assert (console_dir() / "index.html").is_file(), \
        "the console is not built: `make console`, or LINLI_TEST_CONSOLE_DIR=<a private build>"
    c = Board(chromium, tree.url[DISTRICT], tree, people)
    desk(c)
    yield c
    c.sign_out()
    desk(c)


class Board(Console):
    def __init__(self, driver, base, tree, people):
        super().__init__(driver, base)
        self.tree, self.people = tree, people

    def as_(self, who):
        """Sign in as `who` at their instance's gateway (one browser: cookies of 127.0.0.1 go to every port)."""
        code, username = self.people[who]
        self.base = self.tree.url[code]
        self.open("signin")
        self.sign_out()
        self.sign_in(username, PASSWORD)
        return self

    def dashboard(self, **query):
        """Open the dashboard (period: this year unless given) and wait for its figures."""
        self.open("figures/dashboard?" + urlencode({"period": "year", **query}))
        self.wait(lambda d: parse(card_value(self, "residents")) is not None, 30, "the residents card's figure")
        return self

    def picture(self, name):
        """A screenshot of the whole page, below the fold too (a dashboard is taller than a screen)."""
        self.wait(lambda d: d.execute_script("return document.getAnimations().every(a => a.playState !== 'running')"),
                  10, "animations to finish")
        size = self.d.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        shot = self.d.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
        SHOTS.mkdir(parents=True, exist_ok=True)
        (SHOTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))

    def get(self, path, **query):
        """An API answer fetched by the page itself, with its session (as the analyst sees it)."""
        resp = self.fetch("GET", path + ("?" + urlencode(query) if query else ""))
        assert resp["status"] == 200, resp
        return json.loads(resp["body"])


def desk(c):
    c.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                        {"width": 1366, "height": 900, "deviceScaleFactor": 1, "mobile": False})


def phone(c):
    c.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                        {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})


# -- reading the page --------------------------------------------------------------------------------

READ_FIGURES = """
return [...arguments[0].querySelectorAll('[data-figure]')].map(e => ({
  field: e.getAttribute('data-figure'), text: e.textContent.trim(),
  suppressed: !!(e.matches('[data-test=suppressed]') || e.querySelector('[data-test=suppressed]'))}))"""


def figures_in(console, css):
    """[{field, text, suppressed}] of every figure inside the element `css`."""
    el = console.find(css)
    return console.d.execute_script(READ_FIGURES, el)


def card_value(console, key, field=None):
    """The text of a card's figure (its main one unless `field`), or None while it is not there."""
    css = f'[data-test="card-{key}"] ' + (f'[data-figure="{field}"]' if field else '[data-test="value"] [data-figure]')
    found = console.finds(css)
    return found[0].text.strip() if found else None


def parse(text):
    """A figure's number as displayed (figures.ts): "1,080" -> 1080, "70.3%" -> 0.703, "19.5"; None otherwise."""
    if text is None:
        return None
    t = text.replace(",", "").strip()
    try:
        return float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        return None


def agree(shown, expected, where):
    """A figure as displayed against what the API says it is."""
    field, text = shown["field"], shown["text"]
    if expected == HIDDEN:
        assert shown["suppressed"], f"{where} {field}: hidden by the rule, shown as {text!r}"
        assert parse(text) is None, f"{where} {field}: hidden, yet shows a number: {text!r}"
        return
    assert not shown["suppressed"], f"{where} {field}: {expected!r}, shown as suppressed"
    if expected == NOTHING:
        assert text == "—", f"{where} {field}: nothing to show, shown as {text!r}"
        return
    value = parse(text)
    assert value is not None, f"{where} {field}: {expected!r}, shown as {text!r}"
    base = field.split(".")[0]
    if base.endswith("_rate"):
        assert math.isclose(value, expected, abs_tol=0.0005 + 1e-9), f"{where} {field}: {text} for {expected}"
    elif base in AMOUNTS or base == "median_days_to_settle":
        assert math.isclose(value, expected, abs_tol=0.05 + 1e-9), f"{where} {field}: {text} for {expected}"
    else:
        assert value == expected, f"{where} {field}: {text} for {expected}"


# -- what the API says ---------------------------------------------------------------------------------

class Rollups:
    """/rollups as the page's own session reads it (this year, per node or per child), cached per query."""

    def __init__(self, console, year):
        self.console, self.year, self.cache = console, year, {}

    def series(self, metric, node, group):
        key = (metric, node, group)
        if key not in self.cache:
            body = self.console.get("/api/v1/rollups", metric=metric, node=node, period="year", group=group)
            points = {}
            for s in body["series"]:
                for p in s["points"]:
                    if p["period_start"] == f"{self.year}-01-01":
                        points[s["key"]] = p
            self.cache[key] = points
        return self.cache[key]

    def value(self, metric, node, group="none", key="", amount=False):
        p = self.series(metric, node, group).get(key)
        if p is None:
            return 0                      # no row: none (a hidden grid lists even its empty cells as hidden)
        if p["suppressed"]:
            return HIDDEN
        return float(p["total"]) if amount else p["n"]

    def expected(self, field, node, parent=None, figures=None):
        """What `field` of `node` must show: from /rollups (per child of `parent` when given), or for a
        rate or median from the dashboard's own `figures` (hidden if a count it is made of is)."""
        def count(metric, **kw):
            if parent is not None and "group" not in kw:
                return self.value(metric, parent, "child", node, **kw)
            return self.value(metric, node, **kw)
        if field in COUNTS:
            return count(COUNTS[field])
        if field in AMOUNTS:
            return count(AMOUNTS[field], amount=True)
        if field in SPLITS:
            metric, dim, value = SPLITS[field]
            return count(metric, group=f"dim:{dim}", key=value)
        group, _, value = field.partition(".")
        if group in GROUPS and value:
            metric, dim = GROUPS[group]
            return count(metric, group=f"dim:{dim}", key=value)
        assert figures is not None and field in figures, f"{field}: a figure the test does not know"
        if figures[field] is not None:
            return figures[field]
        if any(self.expected(p, node, parent, figures) == HIDDEN for p in PARTS.get(field, [])):
            return HIDDEN
        return NOTHING


def check_cards(console, rollups, node, board):
    seen = 0
    for key in CARDS:
        shown = figures_in(console, f'[data-test="card-{key}"]')
        assert shown, f"card {key}: no figures"
        for s in shown:
            agree(s, rollups.expected(s["field"], node, figures=board["figures"]), f"card {key}")
            seen += 1
    return seen


def check_rows(console, rollups, node, board):
    rows = {c["code"]: c for c in board["children"]}
    for code, child in rows.items():
        shown = figures_in(console, f'[data-test="row-{code}"]')
        assert len({s["field"] for s in shown}) >= 5, f"row {code}: {shown}"
        for s in shown:
            agree(s, rollups.expected(s["field"], code, parent=node, figures=child["figures"]), f"row {code}")
    return rows


# -- 1. the figures are the roll-ups ----------------------------------------------------------------------

def test_the_district_dashboard_api_is_the_sum_of_its_streets(tree):
    """The fixture's proof, at the API: the district's dashboard adds up its streets' own roll-ups."""
    api = tree.http(DISTRICT, tree.token(DISTRICT, "district_analyst"))
    resp = api.get("/api/v1/rollups/dashboard", params={"period": "year"})
    assert resp.status_code == 200, resp.text
    board = resp.json()
    rows = {r["code"]: r for r in board["children"]}
    assert sorted(rows) == [STREET_A, STREET_B]
    plain = {**{f: (m, "", "") for f, m in COUNTS.items()}, **SPLITS}
    for field, (metric, dim, value) in plain.items():
        streets = {code: tree.rollup(code, code, metric, dim, value) for code in (STREET_A, STREET_B)}
        assert board["figures"][field] == sum(streets.values()), field
        for code, n in streets.items():
            assert rows[code]["figures"][field] == n, (code, field)
    for field, metric in AMOUNTS.items():
        streets = [float(tree.rollup(code, code, metric, column="total")) for code in (STREET_A, STREET_B)]
        assert board["figures"][field] == pytest.approx(sum(streets)), field
    assert board["figures"]["residents"] > 0 and board["figures"]["matters_settled"] > 0


def test_every_card_and_row_of_the_districts_dashboard_is_its_rollup(console):
    console.as_("analyst").dashboard()
    year = clock.today().year
    rollups = Rollups(console, year)
    board = console.get("/api/v1/rollups/dashboard", period="year")
    assert check_cards(console, rollups, DISTRICT, board) >= 15
    rows = check_rows(console, rollups, DISTRICT, board)
    assert sorted(rows) == [STREET_A, STREET_B]
    # The rates are the counts' own: settled / raised and reported / members, from /rollups.
    f = board["figures"]
    assert f["settlement_rate"] == pytest.approx(
        rollups.value("matters_settled", DISTRICT) / rollups.value("matters_raised", DISTRICT), abs=1e-4)
    assert f["report_rate"] == pytest.approx(
        rollups.value("party_members", DISTRICT, "dim:report_status", "reported")
        / rollups.value("party_members", DISTRICT), abs=1e-4)
    assert f["residents"] == sum(rollups.value("residents", DISTRICT, "child", code) for code in rows)
    assert console.finds('[data-test="updated-at"]') and console.finds('[data-test="csv"]')
    assert console.finds('[data-test="period"]')


# -- 2. live -------------------------------------------------------------------------------------------

def test_a_resident_registered_at_a_street_reaches_the_districts_card_without_a_reload(console, tree):
    console.as_("analyst").dashboard()
    before = parse(card_value(console, "residents"))
    console.d.execute_script("window.__notReloaded = 1")
    street = tree.http(STREET_A, tree.token(STREET_A, "street_admin"))
    resp = street.post("/api/v1/residents", json={
        "name": "邵文静", "id_number": id_number(birth="19910517", seq="862"), "community_code": "310110012003",
        "residence_type": "floating", "building": "21号", "unit": "1单元", "room": "503", "relation": "self"})
    assert resp.status_code == 201, resp.text
    console.wait(lambda d: parse(card_value(console, "residents")) == before + 1, 30,
                 f"the district's residents card to go from {before} to {before + 1}")
    assert console.get("/api/v1/rollups/dashboard", period="year")["figures"]["residents"] == before + 1
    # The freshness panel too: street A's last fact is the one just sent, its link up.
    last = {r["code"]: r for r in console.get("/api/v1/rollups/freshness")}[STREET_A]["last_fact_at"]
    at = datetime.fromisoformat(last).astimezone(SHANGHAI).strftime("%H:%M:%S")
    fresh = console.find(f'[data-test="fresh-{STREET_A}"]')
    console.wait(lambda d: at in fresh.text, 20, f"street A's last fact at {at} in the freshness panel")
    assert fresh.get_attribute("data-link") == "running"
    assert console.d.execute_script("return window.__notReloaded") == 1, "the page was reloaded"


# -- 3. the map ----------------------------------------------------------------------------------------

def test_the_map_draws_the_demo_boundaries_once_imported(console, tree):
    console.as_("analyst").dashboard()
    map_ = console.find('[data-test="map"]')
    console.wait(lambda d: map_.get_attribute("data-regions") in (None, "0") and "boundaries import" in map_.text,
                 20, "the map to say no boundary is imported")
    for code in (DISTRICT, STREET_A):       # as `make up` does: one district-wide file at each instance
        done = CliRunner().invoke(cli, ["nodes", "boundaries", "import", str(BOUNDARIES)], env=env_of(tree.cfg[code]))
        assert done.exit_code == 0, done.output
    console.dashboard()
    console.wait(lambda d: d.find_element(By.CSS_SELECTOR, '[data-test="map"]').get_attribute("data-regions") == "2",
                 20, "the map to draw both streets")
    features = console.get("/api/v1/rollups/boundaries", node=DISTRICT)["features"]
    assert sorted(f["properties"]["code"] for f in features) == [STREET_A, STREET_B]


# -- 4. small cells ------------------------------------------------------------------------------------

def test_an_analyst_sees_a_small_community_marked_suppressed_never_as_zero(console, tree, tmp_path):
    # A new community of street B with three residents, through the registry's use cases; street B's
    # registry relay sends the facts up.
    small = STREET_B + "091"
    actor = {"actor": "test:新江湾城街道 管理员", "scope": STREET_B, "role": "street_admin"}
    with tree.registry_tx(STREET_B) as tx:
        nodes.create(tx, {"code": small, "name": "江湾新苑居委会"}, STREET_B, actor["actor"])
    vault = tree.vault(STREET_B)
    with tree.registry_tx(STREET_B) as tx:
        for i, name in enumerate(("顾丽娟", "蒋志平", "韩晓燕")):
            residents.register(tx, vault, {"name": name, "id_number": id_number(birth="19780911", seq=f"7{i}3"),
                                           "community_code": small, "residence_type": "registered",
                                           "building": "2号", "unit": "1单元", "room": f"10{i + 1}",
                                           "relation": "self"}, actor)
    wait_for(lambda: tree.rollup(DISTRICT, small, "residents") == 3, timeout=60, message="the district to count them")

    console.as_("analyst").dashboard(node=STREET_B)
    row = f'[data-test="row-{small}"]'
    console.wait(lambda d: d.find_elements(By.CSS_SELECTOR, f'{row} [data-figure="residents"]'), 30, "its row")
    shown = {s["field"]: s for s in figures_in(console, row)}
    assert shown["residents"]["suppressed"] and shown["residents"]["text"] != "0", shown["residents"]
    for s in shown.values():
        assert s["text"] != "0" or not s["suppressed"], s
    # Exactly as the API: every figure of every row is what /rollups and the dashboard say.
    board = console.get("/api/v1/rollups/dashboard", node=STREET_B, period="year")
    assert {r["code"]: r["figures"]["residents"] for r in board["children"]}[small] is None
    rows = check_rows(console, Rollups(console, clock.today().year), STREET_B, board)
    assert small in rows
    console.assert_accessible("street B's dashboard with a suppressed cell")

    # The table's CSV says so too: UTF-8 with a BOM, Chinese headers, 已隐藏 and never 0.
    console.d.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    console.find('[data-test="csv"]').click()
    name = f"dashboard-{STREET_B}-year-{board['start']}.csv"
    wait_for(lambda: (tmp_path / name).is_file() and (tmp_path / name).stat().st_size > 0, timeout=15,
             message=f"the download {name}")
    console.d.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "default"})
    raw = (tmp_path / name).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), raw[:20]
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    head, body = table[0], {r[0]: r for r in table[1:]}
    assert head[0] == "节点代码", head
    residents_at = next(i for i, h in enumerate(head) if h.startswith("居民"))
    assert body[small][residents_at] == "已隐藏", body[small]
    assert sorted(body) == sorted(rows)
    for code in rows:                     # as many hidden in each line as the table shows hidden
        on_page = sum(s["suppressed"] for s in figures_in(console, f'[data-test="row-{code}"]'))
        assert body[code].count("已隐藏") == on_page, (code, body[code])


# -- 5. a split community --------------------------------------------------------------------------------

def test_a_split_communitys_trend_continues_on_its_parts(console, tree):
    """A community of street A, lived in from the start of the trend's twelve months and split in two
    seven weeks later: its residents move into the parts on the day, and its line goes on through theirs."""
    today = clock.today()
    old, parts = STREET_A + "091", [STREET_A + "092", STREET_A + "093"]
    # Within the trend's twelve months: from the first of the month eleven months ago.
    window = date(today.year - (today.month < 12), (today.month % 12) + 1, 1)
    began, lived, split_on = window + timedelta(days=5), window + timedelta(days=20), window + timedelta(days=70)
    actor = {"actor": "test:长海路街道 管理员", "scope": STREET_A, "role": "street_admin"}
    vault = tree.vault(STREET_A)
    with tree.registry_tx(STREET_A) as tx:
        nodes.create(tx, {"code": old, "name": "长海三村居委会", "valid_from": began.isoformat()}, STREET_A,
                     actor["actor"], today=today)
        ids = [residents.register(tx, vault, {
            "name": name, "id_number": id_number(birth="19650203", seq=f"5{i}1"), "community_code": old,
            "residence_type": "registered", "building": "9号", "unit": "2单元", "room": f"20{i}",
            "relation": "self"}, actor, today=lived)["id"]
            for i, name in enumerate(("史国庆", "陶美华", "范建军", "汪淑珍", "贺永明", "龚秀英", "邹德胜",
                                      "熊丽萍", "孟庆华", "秦玉兰"))]
        # Out of the old community on the day (into a neighbour: it cannot be split while lived in)...
        for rid in ids:
            residents.move(tx, vault, rid, {"community_code": STREET_A + "005", "effective": split_on.isoformat()},
                           actor, today=split_on)
        nodes.split(tx, old, {"parts": [{"code": parts[0], "name": "长海三村东居委会"},
                                        {"code": parts[1], "name": "长海三村西居委会"}],
                              "effective": split_on.isoformat(), "reason": "规模过大，按街坊拆分"}, STREET_A,
                    actor["actor"], today=today)
        # ...and into its parts the same day.
        for n, rid in enumerate(ids):
            residents.move(tx, vault, rid, {"community_code": parts[n % 2], "effective": split_on.isoformat()},
                           actor, today=split_on)
    wait_for(lambda: [tree.rollup(STREET_A, code, "residents") for code in [old] + parts] == [0, 5, 5], timeout=60,
             message="street A's own figures of the parts")

    console.as_("admin").dashboard()
    console.find('[data-test="trend"]', timeout=30)
    note = console.find(f'[data-test="lineage-{old}"]', timeout=30)
    assert "长海三村东居委会" in note.get_attribute("textContent") and "长海三村西居委会" in note.get_attribute("textContent")
    table = trend_table(console, old)
    lived_m, split_m = lived.strftime("%Y-%m"), split_on.strftime("%Y-%m")
    assert split_m in table and today.strftime("%Y-%m") in table, table
    for month, cell in table.items():
        if month >= split_m:              # its line goes on through its parts, marked as carried on
            assert cell["value"] == 10 and cell["continued"] and not cell["suppressed"], (month, table)
        elif month >= lived_m:
            assert cell["value"] == 10 and not cell["continued"], (month, table)
    for part in parts:                    # the parts' own lines, from the split
        own = trend_table(console, part)
        assert own[split_m]["value"] == 5 and own[today.strftime("%Y-%m")]["value"] == 5, (part, own)
    console.assert_accessible("street A's dashboard with a split")


READ_TREND = """
const row = arguments[0].querySelector('[data-test="trend-table"] [data-series="' + arguments[1] + '"]');
return row && [...row.querySelectorAll('td[data-period]')].map(td => ({
  period: td.getAttribute('data-period'), text: td.textContent.trim(),
  suppressed: td.getAttribute('data-suppressed') === 'true',
  continued: td.getAttribute('data-continued') === 'true'}));"""


def trend_table(console, code):
    """{YYYY-MM: {value, suppressed, continued}} of a series in the trend's data table, by month."""
    cells = console.wait(lambda d: d.execute_script(READ_TREND, d.find_element(By.CSS_SELECTOR, '[data-test="trend"]'),
                                                    code), 20, f"the trend table's row {code}")
    return {c["period"][:7]: {**c, "value": parse(c["text"])} for c in cells}


# -- 6. accessibility and the pictures ---------------------------------------------------------------------

def test_the_dashboards_are_accessible_at_a_desk_and_on_a_phone(console):
    console.as_("analyst").dashboard()
    console.assert_accessible("the district's dashboard at 1366")
    console.settle(1.0)                      # the charts' first animation
    console.picture("dashboard-district")
    phone(console)
    console.dashboard()
    console.assert_accessible("the district's dashboard at 390")
    width = console.d.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px phone"
    console.settle(1.0)
    console.screenshot("dashboard-phone")     # the first screen, as a phone shows it
    desk(console)
    console.as_("admin").dashboard()
    console.assert_accessible("street A's dashboard at 1366")
    console.settle(1.0)
    console.picture("dashboard-street")

