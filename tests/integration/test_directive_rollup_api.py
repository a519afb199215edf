"""A district's own broadcast, as its staff read it: reach and reads per street and per community.

Real: a district instance (LEVEL district) in this test's vhost and database, its notification,
aggregator and HTTP gateway running, PostgreSQL, RabbitMQ. The broadcast is drafted, submitted and
approved through the notification use cases, so it goes down as a directive; the two streets'
acknowledgements come up as the streets report them (broadcast_targeted/_reached/_read facts under
the directive's id), signed by each street and taken by the district's aggregator. What is not run
here is the streets themselves and federation: tests/e2e show those bring the same facts.
"""
from datetime import datetime, timezone

import pytest

from services.aggregator import ingest, store as aggregator_store
from services.aggregator.service import AggregatorService
from services.gateway.service import GatewayService
from services.notification import broadcasts
from services.notification.service import NotificationService
from shared import envelope, facts
from shared.db import transaction
from shared.messaging import apply_topology

DISTRICT, STREET_A, STREET_B = "310110", "310110012", "310110013"
A1, A2, B1 = "310110012001", "310110012002", "310110013001"
STREETS = {code: facts.Signer(facts._b64(bytes([n]) * 32)) for n, code in ((7, STREET_A), (8, STREET_B))}
DLQ = "msg-facts-#--aggregator.on_facts"
SERVICES = (NotificationService, AggregatorService, GatewayService)


@pytest.fixture
def district(config):
    return {**config, "LEVEL": "district", "NODE_CODE": DISTRICT, "INSTANCE": f"district-{DISTRICT}"}


def acknowledgements(street, directive, counts, day="2026-11-20"):
    """A street's report, as broadcasts.report_acknowledgements makes it: per community, the change in
    people targeted, reached and who read it, under the directive's id."""
    out = [facts.fact(f"broadcast_{measure}", community, day, delta=n, directive=directive)
           for community, measures in counts.items() for measure, n in measures.items() if n]
    source = {"service": "notification", "level": "street", "node_code": street, "instance": f"street-{street}"}
    return STREETS[street].sign(facts.batch(source, out))


def test_a_district_broadcast_shows_reach_and_reads_per_street_and_community(district, container_factory,
                                                                             web_session, make_token):
    dsn = district["DATABASE_URL"]
    signer = facts.Signer.from_config(district)
    with transaction(dsn, "aggregator") as tx:
        for code, key in STREETS.items():
            tx.execute(aggregator_store.ADD_CHILD, (code, key.public_key, None))
    apply_topology(district, SERVICES)
    for cls in SERVICES:
        container_factory(cls, district).start()

    officer = {"actor": "token:d:区应急局 赵刚", "scope": DISTRICT, "role": "street_admin"}
    leader = {"actor": "token:d:区应急局 钱伟", "scope": DISTRICT, "role": "street_admin"}
    area = {DISTRICT: {"name": "杨浦区"}}
    with transaction(dsn, "notification", envelope.source_from_config("notification", district), signer) as tx:
        made = broadcasts.create(tx, area.get, {"prefix": DISTRICT, "title": "防汛Ⅳ级应急响应", "channels": ["inbox"],
                                                "message": "今夜有暴雨，请低洼地区居民做好防范。"}, officer)
        broadcasts.submit(tx, made["id"], officer)
        sent = broadcasts.approve(tx, area.get, made["id"], leader, datetime.now(timezone.utc), 19)
    directive = f"{DISTRICT}:broadcast:{made['id']}"
    assert sent["sent_down_as"] == directive

    token = make_token("street_admin", prefix=DISTRICT, name="区应急局 钱伟")
    auth = {"Authorization": f"Bearer {token}"}
    before = web_session.get(f"/api/v1/broadcasts/{made['id']}", headers=auth)
    assert before.status_code == 200, before.text
    # Sent down, nothing acknowledged yet: the district itself has no one to deliver to.
    assert before.json()["rollup"] == {"source": "rollups", "streets": [], "communities": [], "channels": {},
                                       "total": {"targeted": 0, "reached": 0, "read": 0}}

    # Street A reports twice (the second time only what changed), street B once.
    reports = [acknowledgements(STREET_A, directive, {A1: {"targeted": 6, "reached": 5, "read": 2},
                                                      A2: {"targeted": 3, "reached": 3}}),
               acknowledgements(STREET_A, directive, {A1: {"reached": 1, "read": 3}, A2: {"read": 2}},
                                day="2026-11-21"),
               acknowledgements(STREET_B, directive, {B1: {"targeted": 8, "reached": 7, "read": 1}})]
    with transaction(dsn, "aggregator") as tx:
        for body in reports:
            assert "fresh" in ingest.accept(tx, body, DISTRICT, signer.public_key, "district", DLQ), body

    resp = web_session.get(f"/api/v1/broadcasts/{made['id']}", headers=auth)
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert view["sent_down_as"] == directive and view["status"] in ("sending", "sent")
    assert view["rollup"]["source"] == "rollups"
    assert view["rollup"]["streets"] == [
        {"street_code": STREET_A, "targeted": 9, "reached": 9, "read": 7},
        {"street_code": STREET_B, "targeted": 8, "reached": 7, "read": 1}]
    assert view["rollup"]["communities"] == [
        {"community_code": A1, "targeted": 6, "reached": 6, "read": 5},
        {"community_code": A2, "targeted": 3, "reached": 3, "read": 2},
        {"community_code": B1, "targeted": 8, "reached": 7, "read": 1}]
    assert view["rollup"]["total"] == {"targeted": 17, "reached": 16, "read": 8}

    # The same counts as /rollups gives under dim:directive, where they were before.
    rollups = web_session.get("/api/v1/rollups", headers=auth, params={
        "metric": "broadcast_read", "group": "dim:directive", "period": "year", "start": "2026-01-01",
        "end": "2026-12-31"})
    assert rollups.status_code == 200, rollups.text
    (series,) = [s for s in rollups.json()["series"] if s["key"] == directive]
    assert [p["n"] for p in series["points"]] == [8]
