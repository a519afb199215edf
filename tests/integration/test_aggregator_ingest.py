"""The aggregator taking fact batches on real PostgreSQL: trust, once-only, exact sums, rebuild, reading.

Real: PostgreSQL (the migrated aggregator schema), Ed25519 signatures. Faked: nothing but the
broker: batches are handed to the use case as the consumer would, and what it publishes (relays,
dead letters) is read from its outbox.
"""
from datetime import date

import pytest

from services.aggregator import feed, figures, ingest, store
from shared import facts

DISTRICT, STREET_A, STREET_B = "310110", "310110012", "310110013"
A1, A2, B1 = "310110012001", "310110012002", "310110013001"
KEYS = {code: facts.Signer(facts._b64(bytes([n]) * 32)) for n, code in enumerate((DISTRICT, STREET_A, STREET_B), 1)}
DLQ = "msg-facts-#--aggregator.on_facts"
ANALYST = {"actor": "token:d:区民政局", "scope": DISTRICT, "role": "district_analyst"}
ADMIN = {"actor": "token:d:区管理员", "scope": DISTRICT, "role": "street_admin"}


@pytest.fixture
def tx(in_tx):
    return in_tx("aggregator")


@pytest.fixture
def q(schema_sql):
    return schema_sql("aggregator")


def resident_fact(node, delta=1, day="2026-11-20", **dims):
    return facts.fact("resident_registered", node, day, delta=delta,
                      **{"cohort": 1961, "sex": "F", "residence_type": "registered", "tags": ["elderly_alone"],
                         **dims})


def points_fact(node, points, hours, day="2026-11-20"):
    return facts.fact("points_posted", node, day, category="security_patrol", points=points,
                      hours=hours, member_category="party_member")


def batch(source, fs, batch_id=None):
    src = {"service": "registry", "level": "street", "node_code": source, "instance": f"street-{source}"}
    return KEYS[source].sign(facts.batch(src, fs, batch_id=batch_id))


def take(tx, body, own=DISTRICT, level="district"):
    return tx(ingest.accept, body, own, KEYS[own].public_key, level, DLQ, KEYS[own])


@pytest.fixture
def district(tx):
    for code in (STREET_A, STREET_B):
        tx(lambda t, c=code: t.execute(store.ADD_CHILD, (c, KEYS[c].public_key, None)))


def test_a_districts_figure_is_exactly_the_sum_of_its_streets(tx, q, district):
    a = batch(STREET_A, [resident_fact(A1), resident_fact(A1), resident_fact(A2, sex="M"),
                         points_fact(A1, 30, 2.25), points_fact(A2, 10, 0.75)])
    b = batch(STREET_B, [resident_fact(B1), points_fact(B1, 20, 1.15)])
    assert take(tx, a) == {"batch_id": a["batch_id"], "facts": 5, "fresh": 5}
    assert take(tx, b)["fresh"] == 2

    def n(node, metric, period="month", dim="", value=""):
        rows = q("SELECT n, total FROM rollups WHERE node = %s AND metric = %s AND period = %s "
                 "AND period_start = %s AND dim = %s AND value = %s",
                 (node, metric, period, date(2026, 11, 1) if period == "month" else date(2026, 1, 1), dim, value))
        return rows[0] if rows else (0, 0)
    assert n(DISTRICT, "residents")[0] == n(STREET_A, "residents")[0] + n(STREET_B, "residents")[0] == 4
    assert n(STREET_A, "residents")[0] == n(A1, "residents")[0] + n(A2, "residents")[0] == 3
    assert n(DISTRICT, "residents", dim="sex", value="F")[0] == 3
    assert n(DISTRICT, "residents", "year", "tags", "elderly_alone")[0] == 4
    hours = [n(code, "service_hours", "year")[1] for code in (DISTRICT, STREET_A, STREET_B)]
    assert hours[0] == hours[1] + hours[2] and str(hours[0]) == "4.15"     # exact: no float drift
    assert n(DISTRICT, "points_posted", "year")[1] == 60


def test_a_batch_delivered_twice_or_relayed_back_counts_once(tx, q, district):
    a = batch(STREET_A, [resident_fact(A1), resident_fact(A2)])
    take(tx, a)
    assert take(tx, a) == {"batch_id": a["batch_id"], "duplicate": True}
    # The same facts in another batch (as a relay brings them back) add nothing.
    again = batch(STREET_A, a["facts"])
    assert take(tx, again)["fresh"] == 0
    assert q("SELECT n FROM rollups WHERE node = %s AND metric = 'residents' AND period = 'year' AND dim = ''",
             (DISTRICT,)) == [(2,)]


def test_bad_signatures_and_foreign_nodes_are_refused_counted_and_dead_lettered_once(tx, q, district):
    forged = batch(STREET_A, [resident_fact(A1)])
    forged["facts"][0]["delta"] = 100
    trespass = batch(STREET_A, [resident_fact(B1)])                 # street A speaking for street B
    stranger = KEYS[DISTRICT].sign(facts.batch({"service": "registry", "level": "street", "node_code": "310110099",
                                                "instance": "x"}, [resident_fact("310110099001")]))
    for body in (forged, forged, trespass, stranger, {"not": "a batch"}):
        assert "rejected" in take(tx, body)
    assert q("SELECT count(*) FROM rollups") == [(0,)] and q("SELECT count(*) FROM facts_log") == [(0,)]
    reasons = dict(q("SELECT key, reason FROM rejected_batches"))
    assert "signature" in reasons[forged["batch_id"]] and "subtree" in reasons[trespass["batch_id"]]
    assert "registered children" in reasons[stranger["batch_id"]] and len(reasons) == 4
    assert q("SELECT count(*) FROM outbox WHERE exchange = 'linli.dlx' AND routing_key = %s", (DLQ,)) == [(4,)]


def test_a_district_passes_its_streets_facts_up_re_signed(tx, q, district):
    a = batch(STREET_A, [resident_fact(A1), resident_fact(A2)])
    take(tx, a)
    (body,), = q("SELECT body FROM outbox WHERE exchange = 'facts'")
    assert facts.verify(body, KEYS[DISTRICT].public_key) and not facts.verify(body, KEYS[STREET_A].public_key)
    assert sorted(f["fact_id"] for f in body["facts"]) == sorted(f["fact_id"] for f in a["facts"])
    take(tx, a)                                                     # redelivered: not relayed again
    assert q("SELECT count(*) FROM outbox WHERE exchange = 'facts'") == [(1,)]


def test_a_rebuild_from_the_log_gives_the_same_roll_ups(tx, q, district):
    take(tx, batch(STREET_A, [resident_fact(A1), resident_fact(A2, delta=-1), points_fact(A1, 30, 2.5)]))
    take(tx, batch(STREET_B, [resident_fact(B1, day="2025-03-02"), points_fact(B1, 5, 0.25)]))
    before = q("SELECT * FROM rollups ORDER BY 1, 2, 3, 4, 5, 6")
    last = q("SELECT max(seq) FROM rollup_changes")[0][0]
    assert tx(ingest.rebuild, DISTRICT, 2) == 5
    assert q("SELECT * FROM rollups ORDER BY 1, 2, 3, 4, 5, 6") == before
    # Every figure is marked changed again, so a figure a rebuild corrects reaches the feed.
    assert q("SELECT count(*) FROM rollup_changes WHERE seq > %s", (last,)) == \
        q("SELECT count(DISTINCT (node, metric, period, period_start)) FROM rollups")


def test_reading_roll_ups_stocks_children_and_small_cells(tx, district):
    take(tx, batch(STREET_A, [resident_fact(A1, day="2026-10-05") for _ in range(6)] +
                   [resident_fact(A1, day="2026-11-03", delta=-1)]))
    take(tx, batch(STREET_B, [resident_fact(B1, day="2026-11-04") for _ in range(3)]))
    got = tx(figures.rollups, {"metric": "residents", "group": "child", "start": "2026-10-01", "end": "2026-11-30"},
             ADMIN)
    assert got["stock"] is True
    levels = {s["key"]: [p["n"] for p in s["points"]] for s in got["series"]}
    assert levels == {STREET_A: [6, 5], STREET_B: [0, 3]}          # the level at each month's end
    shown = tx(figures.rollups, {"metric": "residents", "group": "child", "start": "2026-10-01",
                                 "end": "2026-11-30"}, ANALYST)
    cells = {s["key"]: [(p["n"], p["suppressed"]) for p in s["points"]] for s in shown["series"]}
    # November: B's 3 is hidden, and so is A's 5, or the district's 8 minus 5 would give the 3 back.
    assert cells == {STREET_A: [(6, False), (None, True)], STREET_B: [(0, False), (None, True)]}
    # A level with no change in the range is still there, carried forward.
    later = tx(figures.rollups, {"metric": "residents", "group": "child", "start": "2027-01-01",
                                 "end": "2027-03-31"}, ADMIN)
    assert {s["key"]: [p["n"] for p in s["points"]] for s in later["series"]} == {STREET_A: [5, 5, 5],
                                                                                  STREET_B: [3, 3, 3]}


@pytest.fixture
def at_district(cfg):
    """Use cases run as the district's aggregator runs them (its node is the top the rule judges in)."""
    from shared.db import transaction
    source = {"service": "aggregator", "level": "district", "node_code": DISTRICT, "instance": f"district-{DISTRICT}"}

    def run(fn, *args, **kwargs):
        with transaction(cfg["DATABASE_URL"], "aggregator", source, KEYS[DISTRICT]) as t:
            return fn(t, *args, **kwargs)
    return run


def test_the_feed_gives_changed_figures_under_the_rule_never_facts(tx, at_district, q, district):
    take(tx, batch(STREET_A, [resident_fact(A1, day="2026-10-05") for _ in range(6)] +
                   [resident_fact(A1, day="2026-11-03", delta=-1)]))
    take(tx, batch(STREET_B, [resident_fact(B1, day="2026-11-04") for _ in range(3)]))
    everything = at_district(feed.read, {"limit": 1000}, ADMIN)["items"]
    assert {k for i in everything for k in i} == {"seq", "node", "metric", "period", "period_start", "stock", "n",
                                                  "total", "changed_at"}          # no fact, no dimension
    at = {(i["node"], i["period"], i["period_start"]): i for i in everything}
    # Days: A1 and A on two, B1 and B on one, the district on three; months: A1, A and the district two
    # (October, November), B1 and B one; the year of each of the five nodes.
    assert len(at) == len(everything) == (2 + 2 + 1 + 1 + 3) + (2 + 2 + 2 + 1 + 1) + 5
    assert (at[(STREET_A, "month", "2026-10-01")]["n"], at[(STREET_A, "month", "2026-11-01")]["n"]) == (6, 5)
    # The analyst sees what /rollups shows (test above): a stock's level at the period's end. B's 3 is
    # hidden, and A's 5 too, which the district's 8 would give back; a hidden figure is not even said
    # to have changed.
    shown = at_district(feed.read, {"limit": 1000}, ANALYST)
    seen = {(i["node"], i["period"], i["period_start"]): i["n"] for i in shown["items"]}
    assert (seen[(STREET_A, "month", "2026-10-01")], seen[(DISTRICT, "month", "2026-11-01")]) == (6, 8)
    hidden = {k for k in at if k not in seen}
    assert {(STREET_A, "month", "2026-11-01"), (STREET_B, "month", "2026-11-01"), (B1, "day", "2026-11-04")} <= hidden
    assert all(at[k]["n"] == seen[k] for k in seen) and shown["next"] == everything[-1]["seq"]
    page = at_district(feed.read, {"limit": 4}, ADMIN)
    assert page["next"] == page["items"][-1]["seq"]
    assert page["items"] + at_district(feed.read, {"after": page["next"], "limit": 1000}, ADMIN)["items"] == everything
    # A figure changed again comes once more, at the end, at its latest value; the others do not.
    take(tx, batch(STREET_B, [resident_fact(B1, day="2026-11-04")]))
    again = at_district(feed.read, {"after": everything[-1]["seq"]}, ADMIN)["items"]
    assert sorted((i["node"], i["period"], i["n"]) for i in again) == sorted(
        (node, period, n) for node, n in ((B1, 4), (STREET_B, 4), (DISTRICT, 9)) for period in ("day", "month", "year"))
    assert at_district(feed.read, {"metric": "points_posted"}, ANALYST)["items"] == []
    assert {i["node"] for i in at_district(feed.read, {"prefix": STREET_A}, ADMIN)["items"]} == {A1, STREET_A}
    # The departments' AMQP feed: what the department_feed role may see, each figure once.
    published = at_district(feed.publish)
    sent = [b for (b,) in q("SELECT body FROM outbox WHERE exchange = 'feed' ORDER BY id")]
    assert published == len(sent) and 0 < len(sent) < len(at) + 3
    assert all(set(b) == set(everything[0]) for b in sent)
    assert [b["n"] for b in sent if (b["node"], b["period"]) == (STREET_A, "month")] == [6]
    assert at_district(feed.publish) == 0


def test_headline_gauges_per_child_show_what_an_analyst_sees(tx, district):
    take(tx, batch(STREET_A, [resident_fact(A1) for _ in range(5)] + [resident_fact(A2), resident_fact(A2)] +
                   [points_fact(A1, 30, 2.5, day="2026-03-01") for _ in range(5)]))
    take(tx, batch(STREET_B, [resident_fact(B1) for _ in range(6)] + [resident_fact(B1, delta=-1),
                                                                     points_fact(B1, 10, 1.0, day="2026-03-01")]))
    got = {(node, metric): (n, total) for node, metric, n, total in tx(figures.headlines, DISTRICT, date(2026, 11, 23))}
    assert got[(STREET_A, "residents")] == (7, 0) and got[(STREET_B, "residents")] == (5, 0)
    # B posted once: hidden, and A's five postings with it, or the district's six minus five would tell.
    assert got[(STREET_A, "points_posted")] == got[(STREET_B, "points_posted")] == (None, None)
    assert got[(STREET_A, "service_hours")] == (None, None)
    assert not [m for (_, m) in {(n, m) for n, m, *_ in tx(figures.headlines, DISTRICT, date(2027, 1, 2))}
                if m == "points_posted"]


def party_members(node, registered, reported):
    """As the registry sends them: registered unreported, then each report as -1 old, +1 new dimensions."""
    out = [facts.fact("party_member_registered", node, "2026-02-01", category="on_the_job",
                      report_status="unreported") for i in range(registered)]
    for i in range(reported):
        out += [facts.fact("party_member_reported", node, "2026-03-01", delta=-1,
                           category="on_the_job", report_status="unreported"),
                facts.fact("party_member_reported", node, "2026-03-01", delta=+1,
                           category="on_the_job", report_status="reported")]
    return out


def test_headline_figures_with_rates_medians_and_small_cells(tx, district):
    settled = [facts.fact("matter_settled", A1, "2026-06-0%d" % (i + 1), category="parking", channel="hotline",
                          urgency="normal", days_to_settle=days, on_time=days <= 30) for i, days in
               enumerate((3, 10, 45, 12))]
    rated = [facts.fact("matter_rated", A1, "2026-06-09", category="parking", channel="hotline", urgency="normal",
                        score=s) for s in (5, 4, 2)]
    raised = [facts.fact("matter_raised", A1, "2026-05-01", category="parking", channel="hotline", urgency="normal")
              for _ in range(5)]
    members = party_members(A1, 8, 6)
    take(tx, batch(STREET_A, settled + rated + raised + members + [resident_fact(A1) for _ in range(3)]))
    got = tx(figures.headline_figures, {"node": STREET_A, "year": 2026}, ADMIN, today=date(2026, 11, 23))
    assert (got["matters_raised"], got["matters_settled"], got["settlement_rate"]) == (5, 4, 0.8)
    assert got["on_time_rate"] == 0.75 and got["satisfaction_rate"] == 0.6667
    assert got["median_days_to_settle"] == 11.0                  # 3, 10, 12, 45: between the middle two
    assert (got["party_members"], got["party_members_reported"], got["report_rate"]) == (8, 6, 0.75)
    assert got["residents"] == 3 and got["residents_by_age_band"] == {"60-79": 3}
    shown = tx(figures.headline_figures, {"node": STREET_A, "year": 2026}, ANALYST, today=date(2026, 11, 23))
    assert shown["residents"] is None and shown["party_members"] == 8          # 3 < 5 is suppressed
    # 8 members, 6 reported: the 2 unreported would be 8 - 6, so neither the split nor the rate is shown.
    assert shown["residents_by_age_band"] == {"60-79": None} and shown["report_rate"] is None
    assert shown["party_members_reported"] is None
    take(tx, batch(STREET_A, party_members(A2, 3, 2)))
    few = tx(figures.headline_figures, {"node": A2, "year": 2026}, ANALYST, today=date(2026, 11, 23))
    assert few["party_members"] is None and few["report_rate"] is None     # no rate that gives a hidden count
    assert tx(figures.headline_figures, {"node": A2}, ADMIN, today=date(2026, 11, 23))["report_rate"] == 0.6667


def test_headline_gauges_hold_this_passs_figures_only_after_new_year(cfg, tx, district, monkeypatch):
    """As seen: gauges were set or taken out only for the keys of this year's cells, so after New Year
    last year's flows, and a street with nothing this year, kept their old values."""
    from nameko.testing.services import worker_factory

    from services.aggregator import service
    from shared import clock
    from shared.db import transaction
    take(tx, batch(STREET_A, [resident_fact(A1) for _ in range(7)] +
                   [points_fact(A1, 30, 2.5, day="2026-12-30") for _ in range(5)]))
    take(tx, batch(STREET_B, [points_fact(B1, 10, 1.0, day="2026-03-01") for _ in range(6)]))

    def export(today):
        monkeypatch.setattr(clock, "today", lambda: today)
        with transaction(cfg["DATABASE_URL"], "aggregator", {"node_code": DISTRICT, "level": "district"},
                         KEYS[DISTRICT]) as db:
            service_ = worker_factory(service.AggregatorService, db=db)
            service_.export_headlines()
        return {(s.labels["node"], s.labels["metric"], s.labels["measure"]): s.value
                for family in service.HEADLINE.collect() for s in family.samples}

    service.HEADLINE.labels("310110099", "residents", "count").set(12)   # a street retired since
    assert export(date(2026, 12, 31)) == {
        (STREET_A, "residents", "count"): 7,
        (STREET_A, "points_posted", "count"): 5, (STREET_A, "points_posted", "total"): 150,
        (STREET_A, "service_hours", "count"): 5, (STREET_A, "service_hours", "total"): 12.5,
        (STREET_B, "points_posted", "count"): 6, (STREET_B, "points_posted", "total"): 60,
        (STREET_B, "service_hours", "count"): 6, (STREET_B, "service_hours", "total"): 6}
    # New Year: this year has no flows yet; the stock goes on. Street B reports nothing this year.
    assert export(date(2027, 1, 1)) == {(STREET_A, "residents", "count"): 7}


def v1(fact, subject):
    """A fact as a street not yet upgraded sends it: format version 1, with a keyed pseudonym."""
    return {**fact, "v": 1, "subject": subject}


def batch_v1(source, fs):
    """A batch of such facts, signed as that street signs it (today's writer refuses to make one)."""
    src = {"service": "registry", "level": "street", "node_code": source, "instance": f"street-{source}"}
    return KEYS[source].sign({**facts.batch(src, []), "v": 1, "facts": fs})


def test_a_version_1_pseudonym_is_neither_kept_nor_passed_up_nor_kept_when_refused(tx, q, district):
    nym = "p" * 32
    a = batch_v1(STREET_A, [v1(resident_fact(A1), nym), v1(points_fact(A2, 10, 0.5), nym),
                            {**resident_fact(A2), "name": "王秀英"}])
    assert take(tx, a)["fresh"] == 3                  # counted as before: roll-ups never read the pseudonym
    assert q("SELECT count(*) FROM rollups WHERE node = %s AND metric = 'residents' AND period = 'year' "
             "AND dim = ''", (STREET_A,)) == [(1,)]
    columns = {r[0] for r in q("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                               "'aggregator' AND table_name = 'facts_log'")}
    assert "subject" not in columns
    assert nym not in str(q("SELECT * FROM facts_log")) and "王秀英" not in str(q("SELECT * FROM facts_log"))
    (up,), = q("SELECT body FROM outbox WHERE exchange = 'facts'")
    assert facts.verify(up, KEYS[DISTRICT].public_key)
    assert all(set(f) <= facts.FACT_KEYS for f in up["facts"]) and nym not in str(up) and "王秀英" not in str(up)
    # Refused (a bad signature), it is kept as evidence and dead-lettered, without the pseudonym.
    forged = batch_v1(STREET_A, [v1(resident_fact(A1), nym)])
    forged["facts"][0]["delta"] = 5
    assert "rejected" in take(tx, forged)
    assert nym not in str(q("SELECT body FROM rejected_batches")) and nym not in str(q("SELECT body FROM outbox"))


def test_feed_numbers_become_visible_in_the_order_they_were_taken(cfg, at_district, district):
    """Two batches taken at once: while the first is not committed, the second waits before it numbers
    its figures, so no reader ever passes a number that a transaction still open will commit later."""
    import threading
    import time
    from shared.db import transaction
    source = {"service": "aggregator", "level": "district", "node_code": DISTRICT, "instance": f"district-{DISTRICT}"}
    first_taken, release, done = threading.Event(), threading.Event(), {}

    def take_here(run, body):   # with no level above (no signer): nothing else makes two takers queue
        return run(ingest.accept, body, DISTRICT, KEYS[DISTRICT].public_key, "city", DLQ)

    def first():
        with transaction(cfg["DATABASE_URL"], "aggregator", source, KEYS[DISTRICT]) as t:
            take_here(lambda fn, *a: fn(t, *a), batch(STREET_A, [resident_fact(A1)]))
            first_taken.set()
            release.wait(10)

    def second():
        first_taken.wait(10)
        # Other cells than the first's (another metric, another day): no roll-up row makes it wait.
        take_here(at_district, batch(STREET_B, [points_fact(B1, 10, 1.0, day="2026-11-21")]))
        done["at"] = time.monotonic()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    first_taken.wait(10)
    time.sleep(0.5)
    # The second batch waits on the first; a reader now sees neither's figures.
    assert "at" not in done and at_district(feed.read, {}, ADMIN)["items"] == []
    release.set()
    for t in threads:
        t.join(10)
    items = at_district(feed.read, {"limit": 1000}, ADMIN)["items"]
    a_last = max(i["seq"] for i in items if i["node"] in (A1, STREET_A))
    b_first = min(i["seq"] for i in items if i["node"] in (B1, STREET_B))
    assert "at" in done and a_last < b_first
