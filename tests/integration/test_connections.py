"""Connections on real PostgreSQL and RabbitMQ: no RPC with a transaction open, deadlines, pools that let go.

- While a service waits for another's answer it holds no connection in a transaction: the callee
  looks at pg_stat_activity while the caller waits. The same check sees the caller's open
  transaction when the call is made through nameko's bare proxy, so it is not a check that cannot
  fail. Points' own path (create_record -> accounts.ensure -> the registry's account_holder) is
  checked the same way, against a slow stand-in registry.
- A call that outlives RPC_TIMEOUT_SECONDS is a ServiceTimeout (504, outcome unknown), not a hang.
- A worker pool opens connections on demand, never more than its size, and closes idle ones; a
  worker that finds none free in DB_POOL_TIMEOUT_SECONDS gets a 503.
- /readyz tells a pool whose connections are all busy from a server that refuses more (a role's
  connection limit stands in for max_connections: the test server is shared) and from a server
  that cannot be reached, and turns ready again by itself once there is room.
"""
import uuid

import eventlet
import psycopg
import pytest
from nameko.dependency_providers import Config
from nameko.exceptions import RemoteError
from nameko.rpc import RpcProxy as BareRpcProxy
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy

from psycopg_pool import PoolTimeout

from services.points.service import PointsService
from shared import health
from shared.db import Database, DatabaseUnavailable, make_pool
from shared.rpc import RpcProxy, ServiceTimeout
from tests.integration.conftest import wait_for

CALLER_POOL = "linli:conn_caller-workers"


@pytest.fixture
def probe_table(config):
    with psycopg.connect(config["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS conn_probe")
        conn.execute("DROP TABLE IF EXISTS conn_probe.items")
        conn.execute("CREATE TABLE conn_probe.items (id serial PRIMARY KEY, label text NOT NULL)")
    yield
    with psycopg.connect(config["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("DROP SCHEMA conn_probe CASCADE")


def states(dsn, application_name):
    """The states of the connections one pool holds, as the server sees them."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return sorted(r[0] for r in conn.execute(
            "SELECT state FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()",
            (application_name,)))


class CalleeService:
    """Answers slowly, and says what the caller's pool held meanwhile."""
    name = "conn_callee"
    config = Config()

    @rpc
    def slow(self, label, seconds, watch=CALLER_POOL):
        eventlet.sleep(seconds / 2)
        held = states(self.config["DATABASE_URL"], watch)
        eventlet.sleep(seconds / 2)
        return {"label": label.upper(), "held": held}


def caller(proxy_class, **options):
    class CallerService:
        """Writes, asks the callee, writes what it answered: one unit of work around one RPC."""
        name = "conn_caller"
        db = Database(schema="conn_probe")
        callee = proxy_class("conn_callee", **options)

        @rpc
        def write_then_ask(self, label, seconds):
            self.db.execute("INSERT INTO items (label) VALUES (%s)", (label,))
            answer = self.callee.slow(label, seconds)
            self.db.execute("INSERT INTO items (label) VALUES (%s)", (answer["label"],))
            return answer["held"]

    return CallerService


def labels(dsn):
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT label FROM conn_probe.items ORDER BY id")]


def test_no_connection_is_held_in_a_transaction_while_the_callee_works(container_factory, config, probe_table):
    container_factory(CalleeService, config).start()
    container_factory(caller(RpcProxy), config).start()
    with ClusterRpcProxy(config) as cluster:
        held = cluster.conn_caller.write_then_ask("a", 0.6)
    assert "idle in transaction" not in held and "active" not in held, held
    # The pass that asked was rolled back and the whole method ran again with the answer: one unit
    # of work, committed once.
    assert labels(config["DATABASE_URL"]) == ["a", "A"]


def test_the_check_sees_a_transaction_held_across_a_bare_nameko_call(container_factory, config, probe_table):
    """The control: through nameko's own proxy the caller's transaction stays open while the callee works."""
    container_factory(CalleeService, config).start()
    container_factory(caller(BareRpcProxy), config).start()
    with ClusterRpcProxy(config) as cluster:
        held = cluster.conn_caller.write_then_ask("b", 0.6)
    assert held == ["idle in transaction"]


def test_a_worker_that_cannot_run_again_refuses_to_call_with_a_transaction_open(container_factory, config,
                                                                                 probe_table):
    container_factory(CalleeService, config).start()
    container_factory(caller(RpcProxy, defer=False), config).start()
    with ClusterRpcProxy(config) as cluster, pytest.raises(RemoteError) as err:
        cluster.conn_caller.write_then_ask("c", 0.1)
    assert err.value.exc_type == "RpcInTransaction"
    assert labels(config["DATABASE_URL"]) == []  # rolled back


def test_a_call_past_its_deadline_is_a_504_and_holds_nothing(container_factory, config, probe_table):
    container_factory(CalleeService, config).start()
    container_factory(caller(RpcProxy), {**config, "RPC_TIMEOUT_SECONDS": 0.3}).start()
    with ClusterRpcProxy(config) as cluster, pytest.raises(ServiceTimeout) as err:
        cluster.conn_caller.write_then_ask("d", 3)
    assert err.value.status == 504 and "conn_callee did not answer within 0.3s" in str(err.value)
    assert labels(config["DATABASE_URL"]) == []
    assert "idle in transaction" not in states(config["DATABASE_URL"], CALLER_POOL)


# -- points, the example: records.create -> accounts.ensure -> holders ----------------------------

STREET = "310110012"
CALLER = {"actor": "token:test", "scope": STREET, "role": "street_admin", "organization_id": None}


class SlowRegistry:
    """A stand-in registry: a resident on the register, given slowly; notes what points held meanwhile."""
    name = "registry"
    config = Config()
    seen = []

    @rpc
    def account_holder(self, kind, ref_id, caller):
        eventlet.sleep(0.3)
        SlowRegistry.seen.append(states(self.config["DATABASE_URL"], "linli:points-workers"))
        eventlet.sleep(0.3)
        return {"resident_id": ref_id, "name": "王秀英", "community_code": f"{STREET}003", "grid_code": None,
                "status": "active", "pseudonym": "p-" + str(ref_id), "member_category": "resident",
                "party_org_id": None, "party_org_name": None, "organization_ids": [],
                "handover_key": uuid.uuid4().hex * 2}


def test_points_asks_the_registry_with_no_transaction_open(container_factory, config):
    SlowRegistry.seen = []
    container_factory(SlowRegistry, config).start()
    container_factory(PointsService, config).start()
    with ClusterRpcProxy(config) as cluster:
        cluster.points.create_category({"code": "security_patrol", "name": "平安巡逻", "unit": "hour",
                                        "points_per_unit": 10, "verifier_roles": ["community_worker"]}, CALLER)
        from shared import clock
        record = cluster.points.create_record({"resident_id": 41, "category_code": "security_patrol",
                                               "served_at": clock.now().replace(microsecond=0).isoformat(),
                                               "hours": "2", "description": "晚间巡逻"}, CALLER)
    assert record["status"] == "pending"
    assert SlowRegistry.seen and all("idle in transaction" not in s for s in SlowRegistry.seen), SlowRegistry.seen
    with psycopg.connect(config["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT count(*) FROM points.accounts WHERE resident_id = 41").fetchone()[0] == 1


# -- pools ----------------------------------------------------------------------------------------------------

class NapService:
    name = "conn_nap"
    db = Database(schema="registry")

    @rpc
    def nap(self, seconds):
        self.db.one("SELECT pg_sleep(%s)", (seconds,))
        return True


def test_a_pool_grows_to_its_size_under_load_and_closes_idle_connections(container_factory, config):
    cfg = {**config, "DB_POOL_MAX": 2, "DB_POOL_MIN": 0, "DB_POOL_IDLE_SECONDS": 1}
    container_factory(NapService, cfg).start()
    dsn, pool = config["DATABASE_URL"], "linli:conn_nap-workers"
    assert states(dsn, pool) == []  # nothing opened before it is needed
    peak = []
    with ClusterRpcProxy(config) as cluster:
        calls = [cluster.conn_nap.nap.call_async(0.4) for _ in range(5)]
        watcher = eventlet.spawn(lambda: [peak.append(len(states(dsn, pool))) or eventlet.sleep(0.05)
                                          for _ in range(30)])
        assert all(call.result() for call in calls)  # five workers shared two connections
        watcher.wait()
    assert max(peak) == 2, peak
    # psycopg_pool closes one idle connection per idle period: both are gone within a few periods.
    wait_for(lambda: states(dsn, pool) == [], timeout=10, message="the idle connections closed")


def test_a_worker_that_waits_too_long_for_a_connection_gets_a_503(container_factory, config):
    container_factory(NapService, {**config, "DB_POOL_MAX": 1, "DB_POOL_TIMEOUT_SECONDS": 0.3}).start()
    with ClusterRpcProxy(config) as cluster:
        first = cluster.conn_nap.nap.call_async(1.5)
        eventlet.sleep(0.2)
        with pytest.raises(DatabaseUnavailable) as err:
            cluster.conn_nap.nap(0)
        assert err.value.status == 503 and "no connection was free within 0.3s" in str(err.value)
        assert first.result() is True
        assert cluster.conn_nap.nap(0) is True  # and the next one is served again


# -- /readyz: pool exhausted, server full, unavailable, and back by itself ----------------------------------

LIMITED_ROLE = "linli_conn_test_limited"


def readyz(config, pool):
    """/readyz as the metrics port serves it: (HTTP status, body)."""
    import json
    seen = {}
    body = b"".join(health.wsgi_app(config, pool)({"PATH_INFO": "/readyz"},
                                                  lambda status, headers: seen.setdefault("status", status)))
    return int(seen["status"].split()[0]), json.loads(body)


@pytest.fixture
def open_pool():
    pools = []

    def make(dsn, **kwargs):
        pool = make_pool(dsn, "registry", name="readyz-test", **kwargs)
        pool.open()
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def test_readyz_is_ok_and_tells_an_exhausted_pool_from_the_database(config, open_pool):
    pool = open_pool(config["DATABASE_URL"], max_size=1)
    assert readyz(config, pool) == (200, {"status": "ok", "detail": "ok", "checks": {"database": "ok", "broker": "ok"}})
    held = pool.getconn()  # every connection this process may hold is busy
    try:
        # Still ready (its workers wait for a connection and are served), but says it is busy:
        # failing readiness on load would pull every replica out at once.
        status, body = readyz(config, pool)
        assert (status, body["status"], body["checks"]["database"]) == (200, "busy", health.POOL_EXHAUSTED)
    finally:
        pool.putconn(held)
    assert readyz(config, pool)[0] == 200


@pytest.fixture
def limited_dsn(config):
    """The test database as a role allowed one connection: a server that is full, for this role only."""
    admin = config["DATABASE_URL"]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {LIMITED_ROLE}")
        conn.execute(f"CREATE ROLE {LIMITED_ROLE} LOGIN CONNECTION LIMIT 1")
        conn.execute(f"GRANT USAGE ON SCHEMA registry TO {LIMITED_ROLE}")
    parts = admin.split("@", 1)
    yield f"postgresql://{LIMITED_ROLE}@{parts[1]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (LIMITED_ROLE,))
        conn.execute(f"REVOKE USAGE ON SCHEMA registry FROM {LIMITED_ROLE}")
        conn.execute(f"DROP ROLE {LIMITED_ROLE}")


def test_readyz_says_server_full_and_the_pool_recovers_by_itself(config, limited_dsn, open_pool):
    cfg = {**config, "DATABASE_URL": limited_dsn}
    pool = open_pool(limited_dsn, max_size=2, timeout=1)
    squatter = psycopg.connect(limited_dsn)  # takes the role's only connection: no room for the pool
    try:
        status, body = readyz(cfg, pool)
        assert (status, body["checks"]["database"]) == (503, health.SERVER_FULL)
        with pytest.raises(PoolTimeout):
            with pool.connection(timeout=0.5):
                pass
    finally:
        squatter.close()
    # No restart, no reopening: the pool finds the room by itself.
    wait_for(lambda: readyz(cfg, pool)[0] == 200, timeout=15, interval=0.2, message="ready again")
    with pool.connection(timeout=5) as conn:
        assert conn.execute("SELECT 1 AS one").fetchone()["one"] == 1


def test_readyz_says_unavailable_when_the_database_cannot_be_reached(config, open_pool):
    dsn = config["DATABASE_URL"].replace(":5432/", ":1/")  # nothing listens on port 1
    status, body = readyz({**config, "DATABASE_URL": dsn}, open_pool(dsn, max_size=1, timeout=0.5))
    assert (status, body["checks"]["database"]) == (503, health.UNAVAILABLE)


# -- linli check-config -----------------------------------------------------------------------------------------

def check_config(config, *args, **env):
    from click.testing import CliRunner

    from linli.cli import main
    from tests.conftest import cli_env
    return CliRunner().invoke(main, ["check-config", *args], env={**cli_env(config), **env}, catch_exceptions=False)


def test_check_config_reports_the_budget_against_the_servers_max_connections(config):
    with psycopg.connect(config["DATABASE_URL"]) as conn:
        max_connections = int(conn.execute("SHOW max_connections").fetchone()[0])
    result = check_config(config, DB_POOL_MAX="3")
    assert result.exit_code == 0, result.output
    # registry, points, consultation: 3 + relay + LISTEN; notification also its sender's two; the
    # aggregator its consumer; the gateway its pool alone.
    assert ("# connection budget of street-310110012 (one process per service): 31 at most: registry 5, points 5, "
            "consultation 5, notification 7, aggregator 6, gateway 3") in result.output
    assert f"# server: max_connections {max_connections}; the budget may use {int(max_connections * 0.7)}" \
        in result.output
    assert "# fits: 31 of" in result.output and "warning" not in result.output


def test_check_config_warns_when_the_tree_does_not_fit(config):
    result = check_config(config, "--tree", "Procfile", DB_POOL_MAX="50")
    assert result.exit_code == 0  # the configuration is valid; the budget is a warning
    assert "# connection budget of the tree in Procfile (17 processes)" in result.output
    assert "warning: the tree in Procfile (17 processes) may hold" in result.output
    assert "lower DB_POOL_MAX" in result.output


def test_check_config_says_when_it_cannot_ask_the_server(config):
    result = check_config(config, DATABASE_URL=config["DATABASE_URL"].replace(":5432/", ":1/"))
    assert result.exit_code == 0
    assert "# server: not asked (OperationalError" in result.output
    assert "warning: could not read max_connections" in result.output


# -- the HTTP caller's view ---------------------------------------------------------------------------------------

class SilentRegistry:
    """A registry that takes longer than any deadline to list nodes."""
    name = "registry"

    @rpc
    def list_nodes(self, query, prefix):
        eventlet.sleep(5)
        return {"items": []}


def test_a_service_past_its_deadline_is_a_504_problem_at_the_gateway(container_factory, config, web_session,
                                                                      make_token):
    from services.gateway.service import GatewayService
    container_factory(SilentRegistry, config).start()
    container_factory(GatewayService, {**config, "RPC_TIMEOUT_SECONDS": 0.5}).start()
    resp = web_session.get("/api/v1/nodes", headers={"Authorization": f"Bearer {make_token()}"})
    # Asked and not answered: it may have been done, so not a 503 (which promises nothing was done).
    assert resp.status_code == 504 and resp.headers["Content-Type"].startswith("application/problem+json")
    problem = resp.json()
    assert problem["title"] == "Outcome unknown"
    assert problem["detail"].startswith("registry did not answer within 0.5s; it may have taken effect")
    assert problem["correlation_id"] == resp.headers["X-Correlation-ID"]


def test_a_whole_instance_under_load_holds_no_more_than_its_budget(container_factory, config, demo_tree,
                                                                   web_session, make_token):
    """The census is an upper bound of what the running services really open, not a guess."""
    from linli import SERVICES, all_service_classes
    from shared import budget
    from shared.messaging import apply_topology
    # 40 requests at once, 30 of them waiting for a gateway worker: none may be turned away as busy here.
    cfg = {**config, "DB_POOL_MAX": 2, "DB_POOL_SIZES": {"gateway": 1}, "DB_POOL_IDLE_SECONDS": 1,
           "WORKER_WAIT_SECONDS": 60}
    services = all_service_classes()
    apply_topology(cfg, services)
    for cls in services:
        container_factory(cls, cfg).start()
    allowed = sum(budget.process_connections(name, cfg) for name in SERVICES)
    token = make_token()
    dsn, peak = config["DATABASE_URL"], []

    def held():
        with psycopg.connect(dsn, autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                "AND pid <> pg_backend_pid()").fetchone()[0]

    def get(path):
        return web_session.get(path, headers={"Authorization": f"Bearer {token}"}).status_code

    watcher = eventlet.spawn(lambda: [peak.append(held()) or eventlet.sleep(0.05) for _ in range(60)])
    pool = eventlet.GreenPool(40)
    statuses = list(pool.imap(get, ["/api/v1/nodes", "/api/v1/points/accounts", "/api/v1/matters",
                                    "/api/v1/residents"] * 10))
    watcher.wait()
    assert set(statuses) == {200}, statuses
    assert 0 < max(peak) <= allowed, (max(peak), allowed)


def test_a_running_service_answers_503_while_the_server_is_full_and_recovers_by_itself(container_factory, config,
                                                                                       limited_dsn):
    cfg = {**config, "DATABASE_URL": limited_dsn, "DB_POOL_MAX": 2, "DB_POOL_TIMEOUT_SECONDS": 0.5}
    squatter = psycopg.connect(limited_dsn)  # the server (for this role) is full before the service starts
    try:
        container_factory(NapService, cfg).start()  # it starts anyway: its pool opens connections on demand
        with ClusterRpcProxy(config) as cluster:
            with pytest.raises(DatabaseUnavailable):
                cluster.conn_nap.nap(0)
    finally:
        squatter.close()

    def answers():
        with ClusterRpcProxy(config) as cluster:
            try:
                return cluster.conn_nap.nap(0)
            except DatabaseUnavailable:
                return False
    # No restart: the same container serves again once the server has room.
    wait_for(answers, timeout=20, interval=0.5, message="the service answering again")
