"""The services outlive their broker: RabbitMQ really stopped (`rabbitmqctl stop_app`) during a burst.

What must hold while the broker is away and after it returns (issue 17, part 1):
- no service container dies (an RPC reply that cannot be sent is logged and dropped);
- a registration answers only 201, 503 with Retry-After (nothing was done) or 504 "Outcome unknown"
  (the request reached the broker; it may have been done), never 500;
- every 201 is on the register exactly once, and nothing answered 503 is on it at all;
- /readyz says "broker unavailable" while it is away and "ok" after;
- the same running containers serve again once it is back, with no restart: RPC, the outbox
  relay and the aggregator's consumer all reconnect by themselves.

It stops the broker of the whole machine, so it is in the chaos suite, which runs last and alone.
The broker is started again in a `finally` (restarted if it does not answer: tests/chaos/conftest.py).
The same fault against a tree of real processes is test_broker_stopped.py; this one looks inside
the containers.
"""
import threading
import time
from datetime import date, timedelta

import pytest
import requests

from linli import all_service_classes
from services.registry.identity import check_character
from shared import health
from shared.messaging import apply_topology
from tests.chaos.conftest import rabbitmqctl, restore_broker
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.chaos

COMMUNITY = "310110012001"
OUTAGE_SECONDS = 12
DIGITS = "零一二三四五六七八九"


def registration(i):
    first17 = "310110" + (date(1940, 1, 1) + timedelta(days=i)).strftime("%Y%m%d") + "123"
    # The name is kept in clear: it finds the request's row, whatever the answer said.
    return {"name": "王" + "".join(DIGITS[int(d)] for d in str(i)), "id_number": first17 + check_character(first17),
            "community_code": COMMUNITY, "residence_type": "registered"}


@pytest.fixture
def instance(container_factory, config, demo_tree, make_token):
    """Every service of a street running in this test's vhost; the containers, the URL, a token."""
    services = all_service_classes()
    apply_topology(config, services)
    containers = []
    for cls in services:
        container = container_factory(cls, config)
        container.start()
        containers.append(container)
    host, port = config["WEB_SERVER_ADDRESS"].rsplit(":", 1)
    return containers, f"http://127.0.0.1:{port}", make_token("street_admin")


@pytest.fixture
def broker_restored(config):
    """Yields; afterwards the broker runs again, whatever happened, and answers."""
    try:
        yield
    finally:
        restore_broker()


def test_a_burst_of_registrations_outlives_a_stopped_broker(instance, broker_restored, sql, config):
    containers, base, token = instance
    headers = {"Authorization": f"Bearer {token}"}
    answers, stop, counter, lock = [], threading.Event(), iter(range(10 ** 6)), threading.Lock()

    def post(i):
        try:
            r = requests.post(f"{base}/api/v1/residents", json=registration(i), headers=headers, timeout=60)
            return r.status_code, r.headers, r.json()
        except requests.RequestException as exc:  # no answer at all is a failure too
            return None, {}, repr(exc)

    def burst():
        while not stop.is_set():
            with lock:
                i = next(counter)
            status, hdrs, body = post(i)
            answers.append((i, status, hdrs, body))

    def ready():
        r = requests.get(f"{base}/readyz", timeout=30)
        return r.status_code, r.json()

    assert post(next(counter))[0] == 201  # the street works before
    threads = [threading.Thread(target=burst) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)
        rabbitmqctl("stop_app")
        stopped = time.monotonic()
        status, body = wait_for(lambda: (lambda s, b: (s, b) if b["checks"]["broker"] == "unavailable" else None)(
            *ready()), timeout=OUTAGE_SECONDS, interval=0.5, message="/readyz to see the broker gone")
        assert status == 503 and body["detail"] == "broker unavailable", body
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))
        during = len(answers)
    finally:
        restore_broker()
    wait_for(lambda: health.check_broker(config["AMQP_URI"]) is None, timeout=60, interval=0.5,
             message="the broker to answer again")
    returned = time.monotonic()
    # The same containers serve again by themselves: a registration is answered 201 once more.
    wait_for(lambda: any(a[1] == 201 for a in answers[during:]) and answers[-1][1] == 201, timeout=90,
             interval=0.5, message="registrations to succeed again after the broker returned")
    recovered = time.monotonic() - returned
    stop.set()
    for t in threads:
        t.join(timeout=90)

    assert not any(c._died.ready() or c._being_killed for c in containers), "a service container died"
    status, body = ready()
    assert (status, body["status"], body["detail"]) == (200, "ok", "ok"), body

    by_status = {}
    for i, status, hdrs, body in answers:
        by_status.setdefault(status, []).append(i)
        assert status in (201, 503, 504), (i, status, body)
        if status == 503:
            assert int(hdrs["Retry-After"]) > 0 and body["title"] == "Service unavailable", body
        if status == 504:
            assert body["title"] == "Outcome unknown" and "same request" in body["detail"], body
    assert by_status.get(503), "the burst met the outage: some registrations must have been refused"
    names = {}
    for row in sql("SELECT name FROM registry.residents"):
        names[row["name"]] = names.get(row["name"], 0) + 1
    for i in by_status.get(201, []):
        assert names.get(registration(i)["name"]) == 1, f"registration {i} answered 201 is not on the register once"
    for i in by_status.get(503, []):
        assert registration(i)["name"] not in names, f"registration {i} answered 503 was written"

    # What was written reaches the aggregator: the outbox relay and the facts consumer reconnected.
    wait_for(lambda: sql("SELECT count(*) AS n FROM registry.outbox WHERE sent_at IS NULL "
                         "AND routing_key NOT LIKE 'node_%'")[0]["n"] == 0, timeout=60, interval=0.5,
             message="the registry's outbox to drain after the broker returned")
    print(f"\nbroker outage: {len(answers)} answers "
          + ", ".join(f"{s}: {len(v)}" for s, v in sorted(by_status.items(), key=lambda kv: str(kv[0])))
          + f"; {sum(1 for i in by_status.get(504, []) if registration(i)['name'] in names)} of the 504s were"
          f" written; serving again {recovered:.1f}s after the broker answered")
