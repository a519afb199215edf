"""Two streets and their district, federated for real: exact sums, refusals, a cut link, redelivery.

Real: one RabbitMQ with a vhost per instance and the federation plugin doing the transport, one
PostgreSQL with a database per instance, each instance's aggregator service running with its own
configuration and key, and `linli child add` setting the links up through the management API.
The streets' facts are published the way every service publishes them: signed, through the
instance's outbox, to its `facts` exchange. Nothing is faked.
"""
import uuid
from datetime import datetime, timezone
from urllib.parse import quote

import psycopg
import pytest
import requests
from click.testing import CliRunner

from linli.cli import main as cli
from services.aggregator.service import AggregatorService
from services.consultation import cases, matters
from services.consultation.service import ConsultationService
from services.notification import broadcasts, subscribers
from services.notification.service import DIRECTIVE_ROUTING_KEY, NotificationService
from shared import envelope, facts, federation
from shared.db import transaction
from shared.messaging import FACTS, apply_topology, ensure_vhost
from shared.migrations import migrate
from tests.conftest import ADMIN_DSN, _dsn, publish_confirmed
from tests.conftest import cli_env as env_of
from tests.integration.conftest import wait_for
from tests.integration.proxy import CuttableProxy

CITY, DISTRICT, STREET_A, STREET_B = "3101", "310110", "310110012", "310110013"
A1, A2, B1 = "310110012001", "310110012002", "310110013001"
SEEDS = {CITY: b"\x30" * 32, DISTRICT: b"\x31" * 32, STREET_A: b"\x32" * 32, STREET_B: b"\x33" * 32}


@pytest.fixture
def tree(base_config):
    """Three instances: a district and two streets, each its own vhost, database, key and aggregator."""
    yield from _tree(base_config, ["aggregator"], [AggregatorService])


@pytest.fixture
def tree_with_consultation(base_config):
    """The same three instances running the aggregator and consultation services (with the registry's
    schema, which a street asks whether a reason for the district names a resident)."""
    yield from _tree(base_config, ["aggregator", "consultation", "registry"], [AggregatorService, ConsultationService])


@pytest.fixture
def tree_with_notification(base_config):
    """The same three instances, also running the notification service; the streets obey the district."""
    yield from _tree(base_config, ["aggregator", "notification"], [AggregatorService, NotificationService])


@pytest.fixture
def city_tree(base_config):
    """A city above the district: four instances, the district obeying (and reporting to) the city."""
    yield from _tree(base_config, ["aggregator"], [AggregatorService], with_city=True)


def _tree(base_config, schemas, classes, with_city=False):
    run = uuid.uuid4().hex[:8]
    mgmt = base_config["RABBIT_MANAGEMENT_URL"]
    instances = {}
    levels = ((CITY, "city"),) if with_city else ()
    for code, level in levels + ((DISTRICT, "district"), (STREET_A, "street"), (STREET_B, "street")):
        parent = {CITY: None, DISTRICT: CITY if with_city else None, STREET_A: DISTRICT, STREET_B: DISTRICT}[code]
        vhost, db = f"e2e-{run}-{code}", f"linli_e2e_{run}_{code}"
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db}"')
        cfg = {**base_config, "LEVEL": level, "NODE_CODE": code, "INSTANCE": f"{level}-{code}",
               "DATABASE_URL": _dsn(db), "AMQP_URI": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
               "SIGNING_KEY": facts._b64(SEEDS[code]), "OUTBOX_POLL_SECONDS": 0.1,
               "PARENT_KEY": facts.Signer(facts._b64(SEEDS[parent])).public_key if parent else None}
        ensure_vhost(mgmt, cfg["AMQP_URI"])
        migrate(cfg["DATABASE_URL"], schemas)
        apply_topology(cfg, classes)
        instances[code] = cfg
    yield instances
    users = [u["name"] for u in requests.get("http://127.0.0.1:15672/api/users", auth=("guest", "guest"),
                                               timeout=10).json()]
    # Links stopped first (their policies and upstreams gone), so none is left retrying against a
    # vhost or a user that is being deleted.
    for cfg in instances.values():
        vhost = cfg['AMQP_URI'].rsplit('/', 1)[1]
        for kind in ("policies", "parameters/federation-upstream", "parameters/federation-upstream-set"):
            for item in requests.get(f"http://127.0.0.1:15672/api/{kind}/{vhost}", auth=("guest", "guest"),
                                     timeout=10).json() or []:
                requests.delete(f"http://127.0.0.1:15672/api/{kind}/{vhost}/{item['name']}", auth=("guest", "guest"),
                                timeout=10)
    for code, cfg in instances.items():
        vhost = cfg['AMQP_URI'].rsplit('/', 1)[1]
        requests.delete(f"http://127.0.0.1:15672/api/vhosts/{vhost}", auth=("guest", "guest"), timeout=10)
        for user in users:                          # the links' users (`link-<code>-<vhost>`)
            if user.startswith("link-") and user.endswith(f"-{vhost}"):
                requests.delete(f"http://127.0.0.1:15672/api/users/{user}", auth=("guest", "guest"), timeout=10)
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{cfg["DATABASE_URL"].rsplit("/", 1)[1]}" WITH (FORCE)')


def link_uri(cfg, reader):
    """The URI of the user `linli link-user add` makes at `cfg` for `reader`'s federation link."""
    result = CliRunner().invoke(cli, ["link-user", "add", "--for", reader["NODE_CODE"],
                                      "--vhost", reader["AMQP_URI"].rsplit("/", 1)[1]], env=env_of(cfg))
    assert result.exit_code == 0, result.output
    return next(line[4:] for line in result.output.splitlines() if line.startswith("uri "))


def add_child(district, street, via=None):
    """Link them as operators of two brokers do: each side makes a user for the other's link (so no
    link runs with anyone's full credentials), the district adds the street, and the street sets
    the district as its parent on its own broker. `via`: the street's broker as the district
    reaches it (host:port), when not directly."""
    child_uri = link_uri(street, district)
    if via:
        child_uri = child_uri.replace("@127.0.0.1:5672/", f"@{via}/")
    result = CliRunner().invoke(cli, ["child", "add", "--code", street["NODE_CODE"],
                                      "--public-key", facts.Signer.from_config(street).public_key,
                                      "--amqp-uri", child_uri], env=env_of(district))
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["parent", "set", "--amqp-uri", link_uri(district, street)], env=env_of(street))
    assert result.exit_code == 0, result.output


def publish(cfg, fs):
    """Facts the way a service publishes them: signed, through the outbox, in a transaction."""
    source = envelope.source_from_config("registry", cfg)
    with transaction(cfg["DATABASE_URL"], "aggregator", source, facts.Signer.from_config(cfg)) as tx:
        return tx.publish_facts("resident_registered", fs)


def resident(node, sex="F"):
    return facts.fact("resident_registered", node, "2026-11-20", age_band="30-39",
                      sex=sex, residence_type="registered", tags=[])


def rollups(cfg, under):
    with psycopg.connect(cfg["DATABASE_URL"]) as conn:
        return {r[:6]: (r[6], r[7]) for r in conn.execute(
            "SELECT node, period, period_start, metric, dim, value, n, total FROM aggregator.rollups "
            "WHERE starts_with(node, %s)", (under,))}


def one(cfg, sql, params=()):
    with psycopg.connect(cfg["DATABASE_URL"]) as conn:
        return conn.execute(sql, params).fetchone()[0]


def running(management, exchange=None):
    """The federation links of a vhost that are running (carrying `exchange`, if named). The
    management API answers 500 now and then while a link restarts (its upstream or upstream set
    changed), which counts as none running yet."""
    try:
        links = management.links()
    except federation.FederationError:
        return []
    return [x for x in links if x["status"] == "running" and exchange in (None, x["exchange"])]


def facts_links(management):
    """How many federation links carrying `facts` are running (each child also has one for `cases`)."""
    return len(running(management, "facts"))


def start(container_factory, tree, classes=(AggregatorService,)):
    for cfg in tree.values():
        for cls in classes:
            container_factory(cls, cfg).start()


def agrees(tree, residents):
    """The district holds each street's figures exactly, its own node is their sum, and it counts
    `residents` (else a street whose own aggregator is behind would agree at fewer)."""
    d = tree[DISTRICT]
    if one(d, "SELECT coalesce(sum(n), 0) FROM aggregator.rollups WHERE node = %s AND metric = 'residents' "
              "AND period = 'year' AND dim = ''", (DISTRICT,)) != residents:
        return False
    for code in (STREET_A, STREET_B):
        if rollups(d, code) != rollups(tree[code], code):
            return False
    own = rollups(d, DISTRICT)
    totals = {}
    for code in (STREET_A, STREET_B):
        for k, (n, total) in rollups(tree[code], code).items():
            if k[0] == code:
                key = (DISTRICT,) + k[1:]
                totals[key] = (totals.get(key, (0, 0))[0] + n, totals.get(key, (0, 0))[1] + total)
    return {k: v for k, v in own.items() if k[0] == DISTRICT} == totals and bool(totals)


def test_streets_roll_up_into_their_district_exactly_and_refusals_are_counted(tree, container_factory):
    d, a, b = tree[DISTRICT], tree[STREET_A], tree[STREET_B]
    add_child(d, a)
    add_child(d, b)
    start(container_factory, tree)
    mgmt = federation.Management(d["RABBIT_MANAGEMENT_URL"], d["AMQP_URI"])
    wait_for(lambda: facts_links(mgmt) == 2, timeout=30,
             message="both federation links up")
    publish(a, [resident(A1), resident(A1, "M"), resident(A2)])
    publish(b, [resident(B1)])
    wait_for(lambda: agrees(tree, 4), timeout=30, message="the district to agree with its streets")
    assert one(d, "SELECT n FROM aggregator.rollups WHERE node = %s AND metric = 'residents' AND period = 'year' "
                  "AND dim = ''", (DISTRICT,)) == 4

    # A forged batch, and street A speaking for street B's community, on A's own exchange.
    forged = facts.Signer.from_config(a).sign(facts.batch(envelope.source_from_config("registry", a), [resident(A1)]))
    forged["facts"][0]["delta"] = 50
    trespass = facts.Signer.from_config(a).sign(facts.batch(envelope.source_from_config("registry", a),
                                                            [resident(B1)]))
    publish_confirmed(a["AMQP_URI"], FACTS, "registry.resident_registered",
                      forged, trespass, trespass, serializer="json")    # the second copy: counted once
    wait_for(lambda: one(d, "SELECT count(*) FROM aggregator.rejected_batches") == 2, timeout=30,
             message="the district to refuse both")
    reasons = " ".join(r for r, in psycopg.connect(d["DATABASE_URL"]).execute(
        "SELECT reason FROM aggregator.rejected_batches").fetchall())
    assert "signature" in reasons and "subtree" in reasons
    assert agrees(tree, 4) and one(d, "SELECT count(*) FROM aggregator.facts_log") == 4

    listing = CliRunner().invoke(cli, ["child", "list"], env=env_of(d))
    assert listing.exit_code == 0 and STREET_A in listing.output and "running" in listing.output
    rebuilt = CliRunner().invoke(cli, ["rollups", "rebuild"], env=env_of(d))
    assert rebuilt.exit_code == 0 and "4 facts" in rebuilt.output and agrees(tree, 4)

    # Bad input changes nothing: a code outside the district, a key that is not a key.
    bad_code = CliRunner().invoke(cli, ["child", "add", "--code", "310115001", "--public-key",
                                        facts.Signer.from_config(a).public_key, "--amqp-uri", a["AMQP_URI"]],
                                  env=env_of(d))
    assert bad_code.exit_code != 0 and "--code" in bad_code.output
    bad_key = CliRunner().invoke(cli, ["child", "add", "--code", "310110014", "--public-key", "not-a-key",
                                       "--amqp-uri", a["AMQP_URI"]], env=env_of(d))
    assert bad_key.exit_code != 0 and "--public-key" in bad_key.output
    assert one(d, "SELECT count(*) FROM aggregator.children") == 2
    # Removing street B: its link and its key go, its figures so far stay.
    removed = CliRunner().invoke(cli, ["child", "remove", "--code", STREET_B], env=env_of(d))
    assert removed.exit_code == 0, removed.output
    assert mgmt.upstream_set(federation.CHILD_SET) == [federation.child_upstream(STREET_A)]
    assert one(d, "SELECT count(*) FROM aggregator.children WHERE code = %s", (STREET_B,)) == 0
    assert one(d, "SELECT n FROM aggregator.rollups WHERE node = %s AND metric = 'residents' AND period = 'year' "
                  "AND dim = ''", (STREET_B,)) == 1
    again = CliRunner().invoke(cli, ["child", "remove", "--code", STREET_B], env=env_of(d))
    assert again.exit_code != 0 and "no child" in again.output


def subscribe(cfg, people):
    """Residents (id, community) known to the street's notification service, as the registry's events make them."""
    with transaction(cfg["DATABASE_URL"], "notification") as tx:
        for rid, community in people:
            subscribers.apply_resident(tx, {"id": rid, "name": "居民", "community_code": community,
                                            "grid_code": None, "household_id": rid, "tags": [],
                                            "status": "active", "version": 1})


@pytest.fixture
def proxy():
    p = CuttableProxy("127.0.0.1", 5672)
    yield p
    p.close()


def test_a_street_linked_late_sends_what_it_made_before(tree, container_factory):
    d, a = tree[DISTRICT], tree[STREET_A]
    start(container_factory, tree)
    publish(a, [resident(A1), resident(A2), resident(A2, "M")])      # before the district knows street A
    wait_for(lambda: one(a, "SELECT count(*) FROM aggregator.facts_log") == 3, message="street A's own log")
    add_child(d, a)
    add_child(d, tree[STREET_B])
    links = federation.Management(d["RABBIT_MANAGEMENT_URL"], d["AMQP_URI"])
    wait_for(lambda: facts_links(links) == 2, timeout=30,
             message="the links")
    publish(a, [resident(A1)])
    wait_for(lambda: one(a, "SELECT count(*) FROM aggregator.facts_log") == 4, message="street A's fourth fact")
    resent = CliRunner().invoke(cli, ["facts", "resend"], env=env_of(a))
    assert resent.exit_code == 0 and "4 facts" in resent.output, resent.output
    wait_for(lambda: one(d, "SELECT count(*) FROM aggregator.facts_log") == 4 and agrees(tree, 4), timeout=30,
             message="the district to catch up")
    again = CliRunner().invoke(cli, ["facts", "resend"], env=env_of(a))       # twice changes nothing
    assert again.exit_code == 0
    wait_for(lambda: one(a, "SELECT count(*) FROM aggregator.outbox WHERE sent_at IS NULL") == 0, message="sent")
    assert one(d, "SELECT count(*) FROM aggregator.facts_log") == 4 and agrees(tree, 4)


def test_a_cut_link_loses_nothing_and_counts_nothing_twice(tree, proxy, container_factory):
    d, a, b = tree[DISTRICT], tree[STREET_A], tree[STREET_B]
    # The district reaches street B through the proxy, which the test cuts and restores.
    add_child(d, a)
    add_child(d, b, via=f"127.0.0.1:{proxy.port}")
    start(container_factory, tree)
    mgmt = federation.Management(d["RABBIT_MANAGEMENT_URL"], d["AMQP_URI"])
    wait_for(lambda: facts_links(mgmt) == 2, timeout=30,
             message="both federation links up")
    publish(b, [resident(B1)])
    wait_for(lambda: agrees(tree, 1), timeout=30, message="the first fact")
    proxy.cut()
    for _ in range(5):                                            # street B keeps working while cut off
        publish(b, [resident(B1), resident(B1, "M")])
    publish(a, [resident(A1)])
    wait_for(lambda: one(b, "SELECT count(*) FROM aggregator.facts_log") == 11, message="street B's own figures")
    assert one(d, "SELECT count(*) FROM aggregator.facts_log WHERE source_code = %s", (STREET_B,)) == 1
    proxy.restore()
    wait_for(lambda: agrees(tree, 12), timeout=60, message="the district to catch up after the cut")
    assert one(d, "SELECT count(*) FROM aggregator.facts_log WHERE source_code = %s", (STREET_B,)) == 11
    # A batch redelivered after the link came back (as a broker may) is taken once.
    again = publish(b, [resident(B1)])
    publish_confirmed(b["AMQP_URI"], FACTS, "registry.resident_registered", again, serializer="json")
    wait_for(lambda: one(d, "SELECT count(*) FROM aggregator.batches WHERE batch_id = %s",
                         (again["batch_id"],)) == 1 and agrees(tree, 13), timeout=30, message="the last batch")
    assert one(d, "SELECT count(*) FROM aggregator.facts_log WHERE source_code = %s", (STREET_B,)) == 12


def test_a_district_broadcast_reaches_both_streets_once_and_the_counts_come_back(tree_with_notification,
                                                                                 container_factory):
    tree = tree_with_notification
    d, a, b = tree[DISTRICT], tree[STREET_A], tree[STREET_B]
    add_child(d, a)
    add_child(d, b)
    for cfg, people in ((a, [(1, A1), (2, A1), (3, A2)]), (b, [(7, B1), (8, B1)])):
        subscribe(cfg, people)
    start(container_factory, tree, (AggregatorService, NotificationService))
    mgmt = federation.Management(d["RABBIT_MANAGEMENT_URL"], d["AMQP_URI"])
    wait_for(lambda: facts_links(mgmt) == 2, timeout=30,
             message="both facts links up")
    for street in (a, b):   # each street's directives link to the district
        below = federation.Management(street["RABBIT_MANAGEMENT_URL"], street["AMQP_URI"])
        wait_for(lambda: running(below), timeout=30,
                 message="the directives link")
    area = {DISTRICT: {"name": "杨浦区"}}
    officer = {"actor": "token:d:区应急局 赵刚", "scope": DISTRICT, "role": "street_admin"}
    leader = {"actor": "token:d:区应急局 钱伟", "scope": DISTRICT, "role": "street_admin"}
    source = envelope.source_from_config("notification", d)
    with transaction(d["DATABASE_URL"], "notification", source, facts.Signer.from_config(d)) as tx:
        made = broadcasts.create(tx, area.get, {"prefix": DISTRICT, "title": "防汛Ⅳ级应急响应", "channels": ["inbox"],
                                                "message": "今夜有暴雨，请低洼地区居民做好防范。"}, officer)
        broadcasts.submit(tx, made["id"], officer)
        broadcasts.approve(tx, area.get, made["id"], leader, datetime.now(timezone.utc), 19)
    for street, n in ((a, 3), (b, 2)):
        wait_for(lambda s=street, k=n: one(s, "SELECT count(*) FROM notification.deliveries "
                                              "WHERE status = 'delivered'") == k, timeout=30,
                 message=f"the directive delivered in {street['NODE_CODE']}")
        assert one(street, "SELECT count(*) FROM notification.broadcasts") == 1
    directive = f"{DISTRICT}:broadcast:{made['id']}"

    def reached():
        with psycopg.connect(d["DATABASE_URL"]) as conn:
            return dict(conn.execute(
                "SELECT node, n FROM aggregator.rollups WHERE metric = 'broadcast_reached' AND period = 'year' "
                "AND dim = 'directive' AND value = %s", (directive,)).fetchall())
    wait_for(lambda: reached().get(DISTRICT) == 5, timeout=60, message="the acknowledgements at the district")
    assert reached() == {DISTRICT: 5, STREET_A: 3, STREET_B: 2, A1: 2, A2: 1, B1: 2}
    # Nobody refused it: not the district taking its own directive back, not a street.
    dlq = quote(f"msg-directives-{DIRECTIVE_ROUTING_KEY}--notification.on_directive.dlq", safe="")
    for cfg in tree.values():
        vhost = cfg["AMQP_URI"].rsplit("/", 1)[1]
        depth = requests.get(f"http://127.0.0.1:15672/api/queues/{vhost}/{dlq}", auth=("guest", "guest"),
                             timeout=10).json().get("messages", 0)
        assert depth == 0, cfg["NODE_CODE"]


def registry_names(cfg):
    """The registry's answer whether a text names a resident of the street (its `names_in` RPC), in-process."""
    from services.registry import holders

    def names_in(text, street):
        with transaction(cfg["DATABASE_URL"], "registry", envelope.source_from_config("registry", cfg)) as rtx:
            return holders.names_in(rtx, text, street)["found"]
    return names_in


def test_an_escalated_matter_goes_up_de_identified_and_its_answer_comes_back_down(tree_with_consultation,
                                                                                 container_factory):
    tree = tree_with_consultation
    d, a = tree[DISTRICT], tree[STREET_A]
    add_child(d, a)
    add_child(d, tree[STREET_B])
    start(container_factory, tree, (AggregatorService, ConsultationService))
    for cfg in (a, d):
        links = federation.Management(cfg["RABBIT_MANAGEMENT_URL"], cfg["AMQP_URI"])
        wait_for(lambda lk=links: running(lk), timeout=30,
                 message="the federation links")
    worker = {"actor": "token:a:长海一村 张丽", "scope": A1, "role": "community_worker"}
    street = {"actor": "token:a:长海路街道 王建国", "scope": STREET_A, "role": "street_admin"}
    now = datetime.now(timezone.utc)
    with transaction(a["DATABASE_URL"], "consultation", envelope.source_from_config("consultation", a),
                     facts.Signer.from_config(a)) as tx:
        m = matters.raise_matter(tx, None, {"community_code": A1, "category": "parking", "channel": "hotline",
                                            "title": "长海路夜间停车占道", "urgency": "urgent",
                                            "description": "居民陈志强反映：长海路晚上车辆占道，消防通道被堵。"}, worker, now)
        matters.screen(tx, m["id"], {"outcome": "escalate", "note": "涉及市政道路，社区无权处置"}, worker, now)
        up = matters.screen(tx, m["id"], {"outcome": "escalate", "note": "需区建管委协调道路停车管理"}, street, now,
                            registry_names(a))
    assert up["status"] == "escalated"
    case_id = f"{STREET_A}:{m['id']}"
    wait_for(lambda: one(d, "SELECT count(*) FROM consultation.cases WHERE case_id = %s", (case_id,)) == 1,
             timeout=30, message="the case at the district")
    with psycopg.connect(d["DATABASE_URL"]) as conn:
        case = conn.execute("SELECT community_code, category, urgency, reason FROM consultation.cases").fetchone()
    assert case == (A1, "parking", "urgent", "需区建管委协调道路停车管理")       # no raiser, no resident's words
    district = {"actor": "token:d:杨浦区 区建管委 刘强", "scope": DISTRICT, "role": "street_admin"}
    with transaction(d["DATABASE_URL"], "consultation", envelope.source_from_config("consultation", d),
                     facts.Signer.from_config(d)) as tx:
        cases.answer(tx, case_id, {"outcome": "answered",
                                   "answer": "区建管委已同意下周起在长海路实施夜间临时停车管理。"}, district)
    wait_for(lambda: one(a, "SELECT status FROM consultation.matters WHERE id = %s", (m["id"],)) == "answered",
             timeout=30, message="the answer back at the street")
    assert one(a, "SELECT level_code FROM consultation.matters WHERE id = %s", (m["id"],)) == STREET_A
    with transaction(a["DATABASE_URL"], "consultation", envelope.source_from_config("consultation", a),
                     facts.Signer.from_config(a)) as tx:
        settled = matters.settle(tx, m["id"], {"note": "已按区答复落实"}, street, datetime.now(timezone.utc))
    assert settled["status"] == "settled"
    # The settlement counts where the matter was raised: the street's community, summed at the district.
    wait_for(lambda: one(d, "SELECT coalesce(sum(n), 0) FROM aggregator.rollups WHERE node = %s AND "
                            "metric = 'matters_settled' AND period = 'year' AND dim = ''", (A1,)) == 1,
             timeout=30, message="the settlement counted at the district")


def test_a_city_sums_its_districts_which_sum_their_streets(city_tree, container_factory):
    tree = city_tree
    c, d, a, b = tree[CITY], tree[DISTRICT], tree[STREET_A], tree[STREET_B]
    add_child(c, d)
    add_child(d, a)
    add_child(d, b)
    start(container_factory, tree)
    for cfg, n in ((c, 1), (d, 2)):
        links = federation.Management(cfg["RABBIT_MANAGEMENT_URL"], cfg["AMQP_URI"])
        wait_for(lambda lk=links, k=n: facts_links(lk) == k, timeout=30, message="the facts links")
    publish(a, [resident(A1), resident(A1, "M"), resident(A2)])
    publish(b, [resident(B1), resident(B1)])
    wait_for(lambda: agrees(tree, 5), timeout=30, message="the district")

    def city_holds_the_tree():
        for code in (STREET_A, STREET_B):
            if rollups(c, code) != rollups(tree[code], code):
                return False
        return rollups(c, DISTRICT) == rollups(d, DISTRICT)
    wait_for(city_holds_the_tree, timeout=30, message="the city to hold the whole tree")
    assert one(c, "SELECT n FROM aggregator.rollups WHERE node = %s AND metric = 'residents' AND period = 'year' "
                  "AND dim = ''", (CITY,)) == 5
    # The city took the district's re-signed relays, never the streets' own batches (one hop only:
    # a street's batch reaching the city would be refused there as from an unknown sender).
    assert one(c, "SELECT count(DISTINCT source_code) FROM aggregator.facts_log") == 1
    assert one(c, "SELECT min(source_code) FROM aggregator.facts_log") == DISTRICT
    assert one(c, "SELECT count(*) FROM aggregator.rejected_batches") == 0


# -- completeness of what goes up and down besides facts (shared/streams.py) --------------------------

def quick_resends(tree):
    """Ask for a gap after 1 s instead of 30, so a lost message comes back within the test's patience."""
    for cfg in tree.values():
        cfg["RESEND_AFTER_SECONDS"] = 1


def lose_last(tx, stream):
    """What a broker that confirmed a message and then dropped it between the levels leaves behind:
    the sender's outbox row marked sent, in the very transaction that wrote it, so the relay never
    publishes it. Only the receiver's count of the stream can notice."""
    tx.execute("UPDATE outbox SET sent_at = now() WHERE stream = %s AND seq = (SELECT max(seq) FROM outbox "
               "WHERE stream = %s)", (stream, stream))


def position(cfg, schema, source, stream):
    with psycopg.connect(cfg["DATABASE_URL"]) as conn:
        row = conn.execute(f"SELECT contiguous, highest, requested, answered FROM {schema}.stream_positions "
                           "WHERE source = %s AND stream = %s", (source, stream)).fetchone()
    return row and dict(zip(("contiguous", "highest", "requested", "answered"), row))


def test_a_lost_case_and_a_lost_answer_are_asked_for_again_and_taken_once(tree_with_consultation, container_factory):
    tree = tree_with_consultation
    d, a = tree[DISTRICT], tree[STREET_A]
    quick_resends(tree)
    add_child(d, a)
    add_child(d, tree[STREET_B])
    start(container_factory, tree, (AggregatorService, ConsultationService))
    for cfg in (a, d):
        links = federation.Management(cfg["RABBIT_MANAGEMENT_URL"], cfg["AMQP_URI"])
        wait_for(lambda lk=links: len(running(lk)) >= (4 if cfg is d else 1), timeout=30,
                 message="the federation links")
    worker = {"actor": "token:a:长海一村 张丽", "scope": A1, "role": "community_worker"}
    street = {"actor": "token:a:长海路街道 王建国", "scope": STREET_A, "role": "street_admin"}
    ids = []
    # The first message seen from a sender sets where counting starts, so the lost one is the second.
    for n, (title, category) in enumerate((("长海路夜间停车占道", "parking"), ("国和路路灯损坏", "facilities_renewal"),
                                           ("楼道堆物堵塞", "corridor_clutter"))):
        with transaction(a["DATABASE_URL"], "consultation", envelope.source_from_config("consultation", a),
                         facts.Signer.from_config(a)) as tx:
            now = datetime.now(timezone.utc)
            m = matters.raise_matter(tx, None, {"community_code": A1, "category": category, "channel": "hotline",
                                                "title": title, "urgency": "urgent",
                                                "description": "居民反映情况，社区无权处置。"}, worker, now)
            matters.screen(tx, m["id"], {"outcome": "escalate", "note": "涉及市政道路"}, worker, now)
            matters.screen(tx, m["id"], {"outcome": "escalate", "note": "需区里协调"}, street, now,
                           registry_names(a))
            if n == 1:
                lose_last(tx, "cases")          # the second case never reaches the district
        ids.append(m["id"])
        if n == 0:
            wait_for(lambda: one(d, "SELECT count(*) FROM consultation.cases") == 1, timeout=30,
                     message="the first case")
    wait_for(lambda: one(d, "SELECT count(*) FROM consultation.cases") == 3, timeout=60,
             message="the lost case asked for and sent again")
    assert position(d, "consultation", STREET_A, "cases") == {"contiguous": 3, "highest": 3, "requested": 1,
                                                              "answered": 1}
    # GET /api/v1/children's source: the district's consultation counts each child's cases.
    listing = CliRunner().invoke(cli, ["child", "list"], env=env_of(d))
    assert listing.exit_code == 0 and "consultation  cases" in listing.output, listing.output

    district = {"actor": "token:d:杨浦区 区建管委 刘强", "scope": DISTRICT, "role": "street_admin"}
    for n, matter_id in enumerate(ids):
        with transaction(d["DATABASE_URL"], "consultation", envelope.source_from_config("consultation", d),
                         facts.Signer.from_config(d)) as tx:
            cases.answer(tx, f"{STREET_A}:{matter_id}", {"outcome": "answered", "answer": "区里已协调处理。"}, district)
            if n == 1:
                lose_last(tx, f"answers.{STREET_A}")   # the second answer never reaches the street
        if n == 0:
            wait_for(lambda: one(a, "SELECT count(*) FROM consultation.matters WHERE status = 'answered'") == 1,
                     timeout=30, message="the first answer")
    # The street asks its district (up, on `cases`); the district's aggregator checks the street's key
    # and passes the request to its consultation service, which sends the answer again.
    wait_for(lambda: one(a, "SELECT count(*) FROM consultation.matters WHERE status = 'answered'") == 3,
             timeout=60, message="the lost answer asked for and sent again")
    assert position(a, "consultation", DISTRICT, f"answers.{STREET_A}") == {
        "contiguous": 3, "highest": 3, "requested": 1, "answered": 1}
    # Street B follows only its own answers: another street's are not a gap of its own.
    assert position(tree[STREET_B], "consultation", DISTRICT, f"answers.{STREET_A}") is None
    assert one(a, "SELECT count(*) FROM consultation.matter_history WHERE status = 'answered'") == 3


def test_a_lost_broadcast_directive_is_asked_for_by_every_street_and_delivered_once(tree_with_notification,
                                                                                    container_factory):
    tree = tree_with_notification
    d, a, b = tree[DISTRICT], tree[STREET_A], tree[STREET_B]
    quick_resends(tree)
    add_child(d, a)
    add_child(d, b)
    for cfg, people in ((a, [(1, A1), (2, A2)]), (b, [(7, B1)])):
        subscribe(cfg, people)
    start(container_factory, tree, (AggregatorService, NotificationService))
    mgmt = federation.Management(d["RABBIT_MANAGEMENT_URL"], d["AMQP_URI"])
    wait_for(lambda: len(running(mgmt)) == 4, timeout=30, message="both streets' facts and cases links up")
    for street in (a, b):
        below = federation.Management(street["RABBIT_MANAGEMENT_URL"], street["AMQP_URI"])
        wait_for(lambda m=below: running(m), timeout=30, message="the directives link")
    officer = {"actor": "token:d:区应急局 赵刚", "scope": DISTRICT, "role": "street_admin"}
    leader = {"actor": "token:d:区应急局 钱伟", "scope": DISTRICT, "role": "street_admin"}
    source = envelope.source_from_config("notification", d)
    for n, title in enumerate(("防汛Ⅳ级应急响应", "高温橙色预警", "寒潮蓝色预警")):
        with transaction(d["DATABASE_URL"], "notification", source, facts.Signer.from_config(d)) as tx:
            made = broadcasts.create(tx, {DISTRICT: {"name": "杨浦区"}}.get,
                                     {"prefix": DISTRICT, "title": title, "channels": ["inbox"],
                                      "message": "请居民做好防范。"}, officer)
            broadcasts.submit(tx, made["id"], officer)
            broadcasts.approve(tx, {DISTRICT: {"name": "杨浦区"}}.get, made["id"], leader,
                               datetime.now(timezone.utc), 19)
            if n == 1:
                lose_last(tx, "broadcasts")     # the second directive reaches no street
        if n == 0:
            for street in (a, b):
                wait_for(lambda s=street: one(s, "SELECT count(*) FROM notification.broadcasts") == 1, timeout=30,
                         message="the first directive")
    for street, people in ((a, 2), (b, 1)):
        wait_for(lambda s=street, k=people: one(s, "SELECT count(*) FROM notification.deliveries "
                                                   "WHERE status = 'delivered'") == 3 * k, timeout=60,
                 message=f"all three directives delivered in {street['NODE_CODE']}")
        assert one(street, "SELECT count(*) FROM notification.broadcasts") == 3
    seen = [position(street, "notification", DISTRICT, "broadcasts") for street in (a, b)]
    assert [(p["contiguous"], p["highest"]) for p in seen] == [(3, 3), (3, 3)]
    # Whichever street asked first had it sent again to both: the other may never have had to ask.
    assert sum(p["requested"] for p in seen) >= 1
