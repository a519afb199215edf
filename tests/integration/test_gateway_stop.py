"""A gateway told to stop: what runs finishes, what waits for a worker is turned away, nothing new comes in.

Real: the gateway's and the registry's nameko containers, RabbitMQ and PostgreSQL. The registry is
stuck: another session holds a lock on its nodes, so each request's RPC waits until its deadline
(504, outcome unknown). With two workers, two requests run and four wait for a worker when the
gateway's container is stopped, as the kubelet's SIGTERM stops it (tests/containers/
test_graceful_stop.py does that to the image, under load).
"""
import time

import eventlet
import psycopg
import pytest
import requests

from linli import all_service_classes
from services.gateway.service import GatewayService
from services.registry.service import RegistryService
from shared.messaging import apply_topology

DEADLINE = 2


@pytest.fixture
def gateway(container_factory, config, demo_tree):
    cfg = {**config, "max_workers": 2, "RPC_TIMEOUT_SECONDS": DEADLINE}
    apply_topology(cfg, all_service_classes())
    container_factory(RegistryService, config).start()
    container = container_factory(GatewayService, cfg)
    container.start()
    return container


@pytest.fixture
def stuck_registry(config):
    with psycopg.connect(config["DATABASE_URL"]) as conn:
        conn.execute("LOCK TABLE registry.nodes IN ACCESS EXCLUSIVE MODE")
        yield
        conn.rollback()


def test_a_stopping_gateway_finishes_what_runs_and_turns_away_what_waits(gateway, web_config_port, make_token,
                                                                         request):
    url = f"http://127.0.0.1:{web_config_port}"
    headers = {"Authorization": f"Bearer {make_token('street_admin')}"}
    assert requests.get(url + "/healthz", timeout=5).status_code == 200
    request.getfixturevalue("stuck_registry")
    calls = [eventlet.spawn(requests.get, url + "/api/v1/nodes", headers=headers, timeout=30) for _ in range(6)]
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
