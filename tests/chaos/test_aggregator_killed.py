"""The district's aggregator killed with SIGKILL in the middle of taking a backlog, then started again.

Its transaction dies with it and its unacknowledged messages return to the queue: afterwards the
district holds the street's roll-ups exactly, nothing lost and nothing counted twice.
"""
import time

import psycopg

from tests.chaos.conftest import measured, publish_backlog, rollups_agree
from tests.integration.conftest import wait_for


def taken(cfg):
    with psycopg.connect(cfg["DATABASE_URL"]) as conn:
        return conn.execute("SELECT count(*) FROM aggregator.batches").fetchone()[0]


def test_the_districts_aggregator_killed_mid_group_counts_everything_once(tree, request):
    district = tree.processes["district-aggregator"]
    district.kill()                                  # a backlog builds up in its queue meanwhile
    publish_backlog(tree.street, 400)
    wait_for(lambda: tree.facts_unsent() == 0, timeout=120, message="the street's batches sent")
    district.start()
    wait_for(lambda: taken(tree.district) > 0, timeout=60, interval=0.02, message="the district taking batches")
    district.kill()                                  # in the middle of the backlog
    killed_at = taken(tree.district)
    assert killed_at < 400, "the backlog was taken before the kill: nothing was tested"
    district.start()
    started = time.monotonic()
    wait_for(lambda: rollups_agree(tree), timeout=180, interval=1, message="the district exact again")
    measured(request, "batches taken before the kill", killed_at)
    measured(request, "from the restart to exact figures (s)", round(time.monotonic() - started, 1))
    assert taken(tree.district) >= 400
