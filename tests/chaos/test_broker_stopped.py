"""RabbitMQ stopped and started during a burst of registrations on a street of a running tree.

The street's registry, gateway and aggregator and the district's aggregator are processes; the
broker of the whole machine goes away for OUTAGE seconds under four threads of registrations.
Afterwards: no process exited, no answer was 500 (only 201, 503 with Retry-After, or 504
"Outcome unknown"), every 201 is on the register once, nothing answered 503 is on it, and the
street's and the district's figures are exact.
"""
import time

import psycopg

from tests.chaos.conftest import COMMUNITY, Burst, measured, rabbitmqctl, restore_broker
from tests.integration.conftest import wait_for

OUTAGE = 15


def test_a_stopped_broker_loses_nothing_acknowledged_and_stops_no_process(tree, request):
    assert tree.register()[0] == 201
    with Burst(tree) as burst:
        time.sleep(3)
        try:
            rabbitmqctl("stop_app")
            time.sleep(OUTAGE)
        finally:
            how = restore_broker()
        returned = time.monotonic()
        wait_for(lambda: burst.first_201_after(returned), timeout=120, interval=0.5,
                 message="registrations answered 201 again")
        time.sleep(2)
    recovered = burst.first_201_after(returned) - returned
    statuses = burst.statuses()
    measured(request, "broker back by", how)
    measured(request, "from the broker back to the first 201 (s)", round(recovered, 1))
    measured(request, "answers", {k: len(v) for k, v in statuses.items()})
    assert not tree.exited(), tree.exited()
    assert set(statuses) <= {201, 503, 504}, {k: len(v) for k, v in statuses.items()}
    assert statuses.get(201)
    for _, n, status, _, retry_after in burst.answers:
        if status == 503:
            assert retry_after and int(retry_after) > 0
    with psycopg.connect(tree.street["DATABASE_URL"]) as conn:
        names = {}
        for (name,) in conn.execute("SELECT name FROM registry.residents WHERE community_code = %s", (COMMUNITY,)):
            names[name] = names.get(name, 0) + 1
    for n in statuses.get(201, []):
        assert names.get(f"测试居民{n}") == 1, f"registration {n} was answered 201 but is not on the register once"
    for n in statuses.get(503, []):
        assert f"测试居民{n}" not in names, f"registration {n} was answered 503 but was written"
    started = time.monotonic()
    wait_for(tree.exact, timeout=180, interval=1, message="the street and the district exact")
    measured(request, "from the broker back to exact figures at the district (s)",
             round(time.monotonic() - started + recovered, 1))
