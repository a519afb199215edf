"""A district and two streets running in this process, for the dashboards' browser tests.

Real, as in tests/e2e: one RabbitMQ with a vhost per instance and the federation plugin carrying each
street's signed facts to the district (`linli child add`, `linli parent set`), one PostgreSQL with a
database per instance, and `linli demo load` registering each street's residents, party members,
organisations, points and matters through the services' own use cases and outboxes. Running:

- district 310110: its gateway (serving the console), aggregator and registry;
- street 310110012 (A): its gateway, aggregator and registry (whose relay sends its facts up), and
  relays of its points and consultation outboxes (their services' work is done by `demo load`);
- street 310110013 (B): its aggregator and relays of its registry, points and consultation outboxes.

Each instance keeps its pools small (two connections a service, one for a gateway or a relay): the
test shares a stock PostgreSQL with the local tree. `Tree` gives a test what it needs of them: SQL,
a registry transaction, accounts, and an HTTP client with an instance's token.
"""
import contextlib
import os
import pathlib
import time
import uuid
from datetime import date

import eventlet
import psycopg
import requests
from click.testing import CliRunner
from nameko.containers import get_container_cls
from nameko.testing.utils import find_free_port
from psycopg.rows import dict_row

from linli import all_service_classes
from linli.cli import main as cli
from services.gateway import accounts, auth
from services.gateway import store as token_store
from shared import clock, envelope, facts, federation
from shared.db import transaction
from shared.messaging import apply_topology
from shared.migrations import migrate
from shared.outbox import Relay
from tests.conftest import ADMIN_DSN, _dsn
from tests.e2e.test_federation import DISTRICT, SEEDS, STREET_A, STREET_B, add_child, env_of, facts_links
from tests.integration.conftest import wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
PASSWORD = "Aa1-long-enough"
# What runs where (service names, linli.SERVICES); the rest of each street's work is relayed by `relays`.
RUNNING = {DISTRICT: ("gateway", "aggregator", "registry"),
           STREET_A: ("gateway", "aggregator", "registry"),
           STREET_B: ("aggregator",)}
RELAYED = {STREET_A: ("points", "consultation"), STREET_B: ("registry", "points", "consultation")}
FACT_SCHEMAS = ("registry", "points", "consultation")


class Tree:
    """The running instances: `cfg[code]`, `url[code]` (a gateway's base URL) and helpers."""

    def __init__(self, instances):
        self.cfg = instances
        self.url = {}

    # -- the databases -------------------------------------------------------------------------------
    def sql(self, code, query, params=None):
        with psycopg.connect(self.cfg[code]["DATABASE_URL"], autocommit=True, row_factory=dict_row) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else cur.rowcount

    def one(self, code, query, params=None):
        rows = self.sql(code, query, params)
        return next(iter(rows[0].values())) if rows else None

    def registry_tx(self, code):
        """A registry transaction of that instance, as its service (and `linli`) opens one."""
        cfg = self.cfg[code]
        return transaction(cfg["DATABASE_URL"], "registry", envelope.source_from_config("registry", cfg),
                           facts.Signer.from_config(cfg))

    def vault(self, code):
        from shared.protect import Vault
        return Vault.from_config(self.cfg[code])

    def unsent(self, code):
        """Facts of the instance's services not yet relayed to its `facts` exchange."""
        return sum(self.one(code, f"SELECT count(*) FROM {schema}.outbox WHERE sent_at IS NULL AND exchange = 'facts'")
                   for schema in FACT_SCHEMAS)

    def rollup(self, code, node, metric, dim="", value="", column="n"):
        """This year's figure of one roll-up cell of an instance, read from its table (no rule applied):
        a flow's count (or total) in the year, a stock's level now (its changes of every year so far)."""
        from services.aggregator.rules import STOCKS
        year = date(clock.today().year, 1, 1)
        since = date(1900, 1, 1) if metric in STOCKS else year
        return self.one(code, f"SELECT coalesce(sum({column}), 0) FROM aggregator.rollups WHERE node = %s "
                              "AND metric = %s AND period = 'year' AND dim = %s AND value = %s "
                              "AND period_start BETWEEN %s AND %s", (node, metric, dim, value, since, year))

    # -- who -----------------------------------------------------------------------------------------
    def account(self, code, username, role, prefix=None, name=None):
        """A staff account at that instance's gateway (as `linli account create` makes one); its password."""
        with psycopg.connect(self.cfg[code]["DATABASE_URL"], autocommit=True) as conn:
            conn.execute("SET search_path TO gateway")
            conn.execute(token_store.INSERT_ACCOUNT, (username, name or username, accounts.hash_password(PASSWORD),
                                                      role, prefix or code, None, False, "test"))
        return PASSWORD

    def token(self, code, role, prefix=None, name="测试"):
        token_id, token = auth.new_token()
        with psycopg.connect(self.cfg[code]["DATABASE_URL"], autocommit=True) as conn:
            conn.execute("SET search_path TO gateway")
            token_store.add(conn, token_id, token, name, role, prefix or code)
        return token

    def http(self, code, token):
        """requests against that instance's gateway with a bearer token: http.get("/api/v1/...")."""
        base, session = self.url[code], requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        send = session.request
        session.request = lambda method, path, *a, **kw: send(method, base + path, *a, timeout=30, **kw)
        return session


def _containers(cfg, names):
    by_name = {cls.name: cls for cls in all_service_classes()}
    made = []
    for name in names:
        container = get_container_cls(cfg)(by_name[name], cfg)
        container.start()
        made.append(container)
    return made


def dashboard_tree(base_config, console_dir):
    """Generator behind a module-scoped fixture: the tree, built, loaded and agreeing; torn down after."""
    made, containers, relays = [], [], []
    try:
        instances = _instances(base_config, made)
        for code, cfg in instances.items():
            if "gateway" in RUNNING[code]:
                cfg["WEB_SERVER_ADDRESS"] = f"127.0.0.1:{find_free_port()}"
                cfg["CONSOLE_DIR"] = str(console_dir)
        tree = Tree(instances)
        add_child(instances[DISTRICT], instances[STREET_A])
        add_child(instances[DISTRICT], instances[STREET_B])
        for code in (DISTRICT, STREET_A, STREET_B):
            loaded = CliRunner().invoke(cli, ["demo", "load"], env=env_of(instances[code]))
            assert loaded.exit_code == 0, loaded.output
        for code, names in RUNNING.items():
            containers += _containers(instances[code], names)
            if "gateway" in names:
                tree.url[code] = f"http://{instances[code]['WEB_SERVER_ADDRESS']}"
        for code, schemas in RELAYED.items():
            for schema in schemas:
                relay = Relay(instances[code]["DATABASE_URL"], instances[code]["AMQP_URI"], schema, poll=0.2)
                relays.append((relay, eventlet.spawn(relay.run)))
        links = federation.Management(base_config["RABBIT_MANAGEMENT_URL"], instances[DISTRICT]["AMQP_URI"])
        wait_for(lambda: facts_links(links) == 2, timeout=60, interval=0.5, message="both streets' facts links up")
        wait_for(lambda: tree.unsent(STREET_A) == 0 and tree.unsent(STREET_B) == 0, timeout=120, interval=0.5,
                 message="the streets' facts sent")
        wait_for(lambda: agrees(tree), timeout=120, interval=0.5, message="the district to hold its streets' figures")
        for code, url in tree.url.items():
            wait_for(lambda u=url: _ready(u), timeout=30, interval=0.2, message=f"the gateway of {code}")
        yield tree
    finally:
        for relay, thread in relays:
            thread.kill()
            with contextlib.suppress(Exception):
                relay.stop()
        for container in reversed(containers):
            with contextlib.suppress(Exception):
                container.kill()
        _remove(made)


def _instances(base_config, made):
    """The district and its two streets, each its own vhost, database and key (as tests/e2e's `_tree`,
    noting in `made` each (vhost, database) before making it, so a failure half-way is undone too)."""
    run = uuid.uuid4().hex[:8]
    instances = {}
    for code, level in ((DISTRICT, "district"), (STREET_A, "street"), (STREET_B, "street")):
        parent = None if code == DISTRICT else DISTRICT
        vhost, db = f"dash-{run}-{code}", f"linli_dash_{run}_{code}"
        made.append((vhost, db))
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db}"')
        cfg = {**base_config, "LEVEL": level, "NODE_CODE": code, "INSTANCE": f"{level}-{code}",
               "DATABASE_URL": _dsn(db), "AMQP_URI": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
               "SIGNING_KEY": facts._b64(SEEDS[code]),
               "PARENT_KEY": facts.Signer(facts._b64(SEEDS[parent])).public_key if parent else None,
               # Small pools: the test shares a stock PostgreSQL with the local tree.
               "DB_POOL_MAX": 2, "DB_POOL_SIZES": {"gateway": 1}, "OUTBOX_POLL_SECONDS": 0.2}
        assert _management("PUT", f"vhosts/{vhost}") is not None, f"vhost {vhost} not made"
        assert _management("PUT", f"permissions/{vhost}/guest",
                           json={"configure": ".*", "write": ".*", "read": ".*"}) is not None
        migrate(cfg["DATABASE_URL"], None)
        apply_topology(cfg, all_service_classes())
        instances[code] = cfg
    return instances


def _management(method, path, **kwargs):
    """A call to RabbitMQ's management API, tried again while it is slow or answers 5xx (a loaded
    machine); the response, or None if it never answered well."""
    for attempt in range(6):
        try:
            resp = requests.request(method, f"http://127.0.0.1:15672/api/{path}", auth=("guest", "guest"),
                                    timeout=60, **kwargs)
            if resp.status_code < 500:
                return resp
        except requests.RequestException:
            pass
        time.sleep(1 + attempt)
    return None


def _remove(made):
    """Undo `_instances`: first every federation link (policies, upstreams, upstream sets), and only once
    the broker has stopped them the vhosts, the links' users and the databases. A vhost deleted under a
    running link can leave RabbitMQ's federation supervisor holding a dead child, after which every
    `child add` of the same upstream name on the machine answers 500."""
    vhosts = [v for v, _ in made]
    for vhost in vhosts:
        for kind in ("policies", "parameters/federation-upstream", "parameters/federation-upstream-set"):
            listed = _management("GET", f"{kind}/{vhost}")
            for item in (listed.json() if listed is not None and listed.status_code == 200 else []) or []:
                _management("DELETE", f"{kind}/{vhost}/{item['name']}")

    def links_gone():
        listed = _management("GET", "federation-links")
        return listed is not None and listed.status_code == 200 and \
            not [x for x in listed.json() if x.get("vhost") in vhosts]
    with contextlib.suppress(AssertionError):
        wait_for(links_gone, timeout=30, interval=0.5, message="the test's federation links to stop")
    users = _management("GET", "users")
    names = [u["name"] for u in users.json()] if users is not None and users.status_code == 200 else []
    for vhost, db in made:
        _management("DELETE", f"vhosts/{vhost}")
        for user in names:                          # the links' users (`link-<code>-<vhost>`)
            if user.startswith("link-") and user.endswith(f"-{vhost}"):
                _management("DELETE", f"users/{user}")
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _ready(url):
    try:
        return requests.get(f"{url}/readyz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def active_residents(tree, code):
    return tree.one(code, "SELECT count(*) FROM registry.residents WHERE status = 'active'")


def agrees(tree):
    """The district counts every active resident of both streets, and holds each street's own figures
    for the street exactly as the street does (where the street runs an aggregator)."""
    want = active_residents(tree, STREET_A) + active_residents(tree, STREET_B)
    if not want or tree.rollup(DISTRICT, DISTRICT, "residents") != want:
        return False
    for code in (STREET_A, STREET_B):
        mine = tree.sql(code, "SELECT node, period, period_start, metric, dim, value, n, total FROM aggregator.rollups "
                              "WHERE starts_with(node, %s) ORDER BY 1, 2, 3, 4, 5, 6", (code,))
        theirs = tree.sql(DISTRICT, "SELECT node, period, period_start, metric, dim, value, n, total "
                                    "FROM aggregator.rollups WHERE starts_with(node, %s) ORDER BY 1, 2, 3, 4, 5, 6",
                          (code,))
        if not mine or mine != theirs:
            return False
    return True


def console_dir():
    """The built console the gateways serve: LINLI_TEST_CONSOLE_DIR (a private build), else console/dist."""
    return pathlib.Path(os.environ.get("LINLI_TEST_CONSOLE_DIR") or ROOT / "console" / "dist")
