"""PostgreSQL restarted during a burst of registrations: 503s while it is away, then recovery
without anyone doing anything, and exact figures at the street and the district."""
import time

from tests.chaos.conftest import Burst, measured, restart_postgres
from tests.integration.conftest import wait_for


def test_a_restarted_database_answers_503_then_recovers_by_itself(tree, request):
    assert tree.register()[0] == 201
    with Burst(tree) as burst:
        time.sleep(3)
        restart_postgres()
        back = time.monotonic()
        try:
            wait_for(lambda: burst.first_201_after(back), timeout=120, interval=0.5,
                     message="registrations answered 201 again")
        except AssertionError:
            raise AssertionError(f"no 201 after the restart: {sorted(burst.answers)[-5:]}\n"
                                 f"{tree.processes['street-registry'].tail(15)}\n"
                                 f"{tree.processes['street-gateway'].tail(15)}") from None
        time.sleep(2)
    statuses = burst.statuses()
    measured(request, "answers", {k: len(v) for k, v in statuses.items()})
    measured(request, "from the database back to the first 201 (s)", round(burst.first_201_after(back) - back, 1))
    assert not tree.exited(), tree.exited()
    assert set(statuses) <= {201, 503}, {k: len(v) for k, v in statuses.items()}
    started = time.monotonic()
    wait_for(tree.exact, timeout=180, interval=1, message="the street and the district exact")
    measured(request, "to exact figures (s)", round(time.monotonic() - started, 1))
