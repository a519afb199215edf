"""A gateway whose workers are all held: what waits for one is turned away, when the gateway stops
and when no worker comes free in time; what runs finishes; nothing new comes in once it stops.

Real: the gateway's and the registry's nameko containers, RabbitMQ and PostgreSQL. The registry is
stuck: another session holds a lock on its nodes, so each request's RPC waits until its deadline
(504, outcome unknown). With three workers, one kept for the probes, two requests run and four wait
for a worker, while the gateway's container is stopped as the kubelet's SIGTERM stops it
(tests/containers/test_graceful_stop.py does that to the image, under load), or until
WORKER_WAIT_SECONDS. The probes are answered at once all the while.
"""
import time
from contextlib import contextmanager

import eventlet
import psycopg
import pytest
import requests
from prometheus_client import REGISTRY

from linli import all_service_classes
from services.gateway.service import GatewayService
from services.registry.service import RegistryService
from shared.messaging import apply_topology

DEADLINE = 2


def counted_busy():
    """The gateway's count of requests that got no worker in time (the alert rule LinliGatewayBusy reads it)."""
    return REGISTRY.get_sample_value("linli_gateway_busy_total") or 0


@pytest.fixture
def start_gateway(container_factory, config, demo_tree):
    def start(**overrides):
        cfg = {**config, "max_workers": 3, "RPC_TIMEOUT_SECONDS": DEADLINE, **overrides}
        apply_topology(cfg, all_service_classes())
        container_factory(RegistryService, config).start()
        container = container_factory(GatewayService, cfg)
        container.start()
        return container
    return start


@contextmanager
def registry_stuck(config):
    with psycopg.connect(config["DATABASE_URL"]) as conn:
        conn.execute("LOCK TABLE registry.nodes IN ACCESS EXCLUSIVE MODE")
        yield
        conn.rollback()


def test_a_stopping_gateway_finishes_what_runs_and_turns_away_what_waits(start_gateway, config, web_config_port,
                                                                         make_token):
    gateway = start_gateway()
    url = f"http://127.0.0.1:{web_config_port}"
    headers = {"Authorization": f"Bearer {make_token('street_admin')}"}
    assert requests.get(url + "/healthz", timeout=5).status_code == 200
    with registry_stuck(config):
        calls = [eventlet.spawn(requests.get, url + "/api/v1/nodes", headers=headers, timeout=30)
                 for _ in range(6)]
        eventlet.sleep(0.5)  # two run (each waiting on the registry), four wait for a worker
        began = time.monotonic()
        with eventlet.Timeout(DEADLINE * 5, AssertionError("the gateway did not stop")):
            gateway.stop()
        took = time.monotonic() - began
        answers = [call.wait() for call in calls]
    statuses = sorted(resp.status_code for resp in answers)
    assert statuses == [503] * 4 + [504] * 2, [(r.status_code, r.text[:200]) for r in answers]
    turned_away = [resp for resp in answers if resp.status_code == 503]
    for resp in turned_away:
        assert resp.headers["Retry-After"] and "stopping" in resp.json()["detail"]
        assert resp.headers["Connection"].lower() == "close"
    # The stop took what the running requests took, not theirs and then the waiting ones' in turn.
    assert took < DEADLINE + 1.5, took
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/healthz", timeout=2)


def test_a_request_that_finds_no_worker_free_in_time_is_turned_away(start_gateway, config, web_config_port,
                                                                     make_token):
    wait = 0.5
    start_gateway(WORKER_WAIT_SECONDS=wait)
    url = f"http://127.0.0.1:{web_config_port}"
    headers = {"Authorization": f"Bearer {make_token('street_admin')}"}

    def timed_get():
        began = time.monotonic()
        resp = requests.get(url + "/api/v1/nodes", headers=headers, timeout=30)
        return resp, time.monotonic() - began

    before = counted_busy()
    with registry_stuck(config):
        calls = [eventlet.spawn(timed_get) for _ in range(6)]
        eventlet.sleep(0.2)
        # Every worker for the API is held or waited for; the probes and /metrics have their own.
        for path in ("/healthz", "/readyz", "/metrics"):
            began = time.monotonic()
            assert requests.get(url + path, timeout=5).status_code == 200, path
            assert time.monotonic() - began < wait, path
        answers = [call.wait() for call in calls]
    statuses = sorted(resp.status_code for resp, _ in answers)
    assert statuses == [503] * 4 + [504] * 2, [(r.status_code, r.text[:200]) for r, _ in answers]
    for resp, took in answers:
        if resp.status_code == 503:
            # Turned away once it had waited, before any worker came free, and told to send again.
            assert wait <= took < DEADLINE, took
            assert resp.headers["Retry-After"] and "busy" in resp.json()["detail"]
        else:
            assert took >= DEADLINE - 0.1, took
    assert counted_busy() - before == 4
    # No slot was lost to the requests turned away: both workers serve again.
    again = [eventlet.spawn(requests.get, url + "/api/v1/nodes", headers=headers, timeout=30) for _ in range(4)]
    assert [call.wait().status_code for call in again] == [200] * 4
