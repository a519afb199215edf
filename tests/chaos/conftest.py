"""The chaos suite: a street and its district as real processes, with real faults done to them.

Real: everything. One RabbitMQ (a vhost per instance, federation set up by `linli child add`), one
PostgreSQL (a database per instance), and each instance's services run as `linli run <service>`
processes, exactly as the local tree and the image run them: the street's registry, gateway and
aggregator, and the district's aggregator. Faults are done for real: RabbitMQ stopped with
`rabbitmqctl stop_app`, a process killed with SIGKILL, federation connections closed through the
management API, PostgreSQL restarted, a district queue unbound while the street publishes.

Each test restores what it stopped, in a `finally`. These tests stop machine-wide services, so
they run last (pyproject's testpaths) and never beside another test run. What each measured (time
to recover, 503s, time from a dropped batch to exact figures) is printed at the end of the run.
"""
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import threading
import time
from datetime import date, timedelta

import psycopg
import pytest
import requests
import yaml

from linli import all_service_classes
from linli.demo import load_hierarchy
from shared.facts import Signer
from services.gateway import auth, store as token_store
from shared import envelope
from shared.db import transaction
from tests.e2e.test_federation import DISTRICT, STREET_A, _tree, add_child
from tests.integration.conftest import wait_for

# The in-process outage test (test_broker_outage.py) uses the integration suite's fixtures.
from tests.integration.conftest import demo_tree, make_token, sql  # noqa: E402,F401

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMMUNITY, GRID = "310110012001", "310110012001001"
MEASURED = []   # (test, what, value) for the summary


def pytest_terminal_summary(terminalreporter):
    if MEASURED:
        terminalreporter.section("chaos: what was measured")
        for test, what, value in MEASURED:
            terminalreporter.write_line(f"{test}: {what} = {value}")


def measured(request, what, value):
    MEASURED.append((request.node.name, what, value))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """One `linli run <service>` of one instance, its output in a log file."""

    def __init__(self, name, service, cfg, workdir):
        self.name, self.service, self.cfg = name, service, cfg
        self.config_path = workdir / f"{name}.yaml"
        self.log_path = workdir / f"{name}.log"
        self.config_path.write_text(yaml.safe_dump({k: v for k, v in cfg.items() if v is not None},
                                                   allow_unicode=True))
        self.proc = None

    def start(self):
        env = {**os.environ, "LINLI_CONFIG": str(self.config_path)}
        for key in ("LEVEL", "NODE_CODE", "INSTANCE", "AMQP_URI", "DATABASE_URL", "PARENT_KEY"):
            env.pop(key, None)   # the file says it all
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "linli"), "run", self.service], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)

    def stop(self):
        if self.alive:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def ready(self):
        port = self.cfg.get("METRICS_PORT") or self.cfg["WEB_SERVER_ADDRESS"].rsplit(":", 1)[1]
        try:
            return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).json()
        except (requests.RequestException, ValueError):
            return None

    def tail(self, lines=40):
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Tree:
    """The running street and district, and what tests read of them."""

    def __init__(self, instances, workdir, token):
        self.street, self.district = instances[STREET_A], instances[DISTRICT]
        self.token = token
        port = free_port()
        street = {**self.street, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"}
        self.url = f"http://127.0.0.1:{port}"
        self.processes = {}
        for service in ("registry", "aggregator", "gateway"):
            cfg = {**street, "METRICS_PORT": free_port() if service != "gateway" else None}
            self.processes[f"street-{service}"] = Process(f"street-{service}", service, cfg, workdir)
        self.processes["district-aggregator"] = Process(
            "district-aggregator", "aggregator", {**self.district, "METRICS_PORT": free_port()}, workdir)
        self.serial = 0

    def start(self):
        for p in self.processes.values():
            p.start()
        for p in self.processes.values():
            try:
                wait_for(lambda: (p.ready() or {}).get("status") == "ok", timeout=60, interval=0.3,
                         message=f"{p.name} ready")
            except AssertionError:
                raise AssertionError(f"{p.name} not ready: {p.ready()}, exit {p.proc.poll()}\n{p.tail()}") from None

    def stop(self):
        for p in self.processes.values():
            p.stop()

    def exited(self):
        return {name: p.proc.returncode for name, p in self.processes.items() if not p.alive}

    # -- the work --
    def register(self, serial=None, timeout=15):
        """POST one new resident (its name says its serial); returns (status, id or None, Retry-After)."""
        if serial is None:
            self.serial += 1
        n = serial or self.serial
        first17 = "310110" + (date(1930, 1, 1) + timedelta(days=n)).strftime("%Y%m%d") + "123"
        from services.registry.identity import check_character
        # No room and no household: each registration stands alone, whatever else is refused.
        body = {"name": f"测试居民{n}", "id_number": first17 + check_character(first17),
                "community_code": COMMUNITY, "residence_type": "registered"}
        try:
            resp = requests.post(f"{self.url}/api/v1/residents", json=body, timeout=timeout,
                                 headers={"Authorization": f"Bearer {self.token}"})
        except requests.RequestException as exc:
            return ("error", str(exc), None)
        rid = resp.json().get("id") if resp.status_code == 201 else None
        return (resp.status_code, rid, resp.headers.get("Retry-After"))

    # -- what each end holds --
    def _one(self, cfg, sql, params=()):
        with psycopg.connect(cfg["DATABASE_URL"], connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchone()[0]

    def registered(self):
        return self._one(self.street, "SELECT count(*) FROM registry.residents WHERE community_code = %s",
                         (COMMUNITY,))

    def residents_in(self, cfg):
        """The community's residents in this instance's roll-ups (the year's stock)."""
        return self._one(cfg, "SELECT coalesce(sum(n), 0) FROM aggregator.rollups WHERE node = %s "
                              "AND metric = 'residents' AND period = 'year' AND dim = ''", (COMMUNITY,))

    def facts_in(self, cfg):
        return self._one(cfg, "SELECT count(*) FROM aggregator.facts_log")

    def exact(self):
        """The register, the street's roll-ups and the district's agree on the community."""
        n = self.registered()
        return n == self.residents_in(self.street) == self.residents_in(self.district)

    def positions(self, cfg):
        with psycopg.connect(cfg["DATABASE_URL"]) as conn:
            return conn.execute("SELECT source, service, stream, contiguous, highest, requested, answered "
                                "FROM aggregator.stream_positions ORDER BY 1, 2, 3").fetchall()

    def facts_unsent(self):
        return self._one(self.street, "SELECT count(*) FROM registry.outbox WHERE sent_at IS NULL "
                                      "AND exchange = 'facts'")


@pytest.fixture
def tree(base_config, tmp_path):
    base = {**base_config, "DB_POOL_MAX": 4, "LOG_LEVEL": "INFO",
            # Faster than production's 30 s, so a test waits seconds, not minutes, for a resend.
            "RESEND_AFTER_SECONDS": float(os.environ.get("LINLI_CHAOS_RESEND_AFTER", "3")),
            "RPC_TIMEOUT_SECONDS": 5}
    for instances in _tree(base, None, all_service_classes()):
        street = instances[STREET_A]
        add_child(instances[DISTRICT], street)
        source = envelope.source_from_config("registry", street)
        with transaction(street["DATABASE_URL"], "registry", source, Signer.from_config(street)) as tx:
            load_hierarchy(tx, STREET_A)
        token_id, token = auth.new_token()
        with psycopg.connect(street["DATABASE_URL"], autocommit=True) as conn:
            conn.execute("SET search_path TO gateway")
            token_store.add(conn, token_id, token, "混沌测试", "street_admin", STREET_A)
        t = Tree(instances, tmp_path, token)
        try:
            t.start()
            yield t
        finally:
            t.stop()


# -- machine-wide faults, and putting them right --

def sbin(name):
    """A system command, found where Debian puts it even when /usr/sbin is not on PATH."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin") or name


def rabbitmqctl(*args, timeout=90):
    return subprocess.run([sbin("rabbitmqctl"), *args], capture_output=True, timeout=timeout, check=True)


def broker_answers():
    """AMQP answers and the management API can create a vhost: seen wedged on these machines
    after a stop_app/start_app, with the TCP port open and nothing answering."""
    from kombu import Connection
    try:
        with Connection("amqp://guest:guest@127.0.0.1:5672//", connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
        name = f"chaos-probe-{os.getpid()}"
        for method in ("PUT", "DELETE"):
            r = requests.request(method, f"http://127.0.0.1:15672/api/vhosts/{name}", auth=("guest", "guest"),
                                 timeout=10)
            if r.status_code not in (201, 204):
                return False
        return True
    except Exception:
        return False


def restore_broker():
    """RabbitMQ running and answering again, whatever state a test left it in. `start_app` first;
    if the node does not answer within a minute, it is restarted as the machine starts it."""
    try:
        rabbitmqctl("start_app")
    except (subprocess.SubprocessError, OSError):
        pass
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if broker_answers():
            return "start_app"
        time.sleep(1)
    subprocess.run(["pkill", "-u", "rabbitmq", "beam.smp"], check=False)
    time.sleep(5)
    subprocess.run(["pkill", "-9", "-u", "rabbitmq", "beam.smp"], check=False)
    subprocess.run(["pkill", "-u", "rabbitmq", "epmd"], check=False)
    subprocess.run([sbin("rabbitmq-server"), "-detached"], check=True, timeout=60)
    wait_for(broker_answers, timeout=120, interval=1, message="RabbitMQ restarted and answering")
    return "restarted"


def postgres_cluster():
    version = sorted(os.listdir("/etc/postgresql"), key=float)[-1]
    return version, "main"


def restart_postgres():
    version, name = postgres_cluster()
    subprocess.run([sbin("pg_ctlcluster"), "--skip-systemctl-redirect", version, name, "restart", "-m", "fast"],
                   check=True, capture_output=True, timeout=120)


class Burst:
    """Threads registering residents until stopped; every answer kept with when it came."""

    def __init__(self, tree, threads=4):
        self.tree, self.answers, self.stop_event = tree, [], threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self):
        while not self.stop_event.is_set():
            with self.lock:
                self.tree.serial += 1
                n = self.tree.serial
            status, rid, retry_after = self.tree.register(serial=n, timeout=60)
            self.answers.append((time.monotonic(), n, status, rid, retry_after))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=120)

    def statuses(self):
        out = {}
        for _, n, status, _, _ in self.answers:
            out.setdefault(status, []).append(n)
        return out

    def first_201_after(self, t):
        return next((at for at, _, status, _, _ in sorted(self.answers) if at > t and status == 201), None)


def publish_backlog(cfg, batches, per_batch=100):
    """Fact batches written to the street registry's outbox as the registry writes them; its relay
    sends them. Returns how many facts."""
    from shared import facts
    source = envelope.source_from_config("registry", cfg)
    signer = facts.Signer.from_config(cfg)
    with transaction(cfg["DATABASE_URL"], "registry", source, signer) as tx:
        for b in range(batches):
            tx.publish_facts("resident_registered", [
                facts.fact("resident_registered", "310110012002", "2026-11-20", sex="FM"[i % 2],
                           cohort=1950 + i % 40, residence_type="registered", tags=[])
                for i in range(per_batch)])
    return batches * per_batch


def rollups_agree(tree):
    """The district holds the street's roll-ups exactly (every metric, node, period and dimension)."""
    from tests.e2e.test_federation import rollups
    own = rollups(tree.street, STREET_A)
    return bool(own) and rollups(tree.district, STREET_A) == own
