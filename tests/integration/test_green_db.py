"""The eventlet guard: queries from concurrent workers overlap instead of serialising (DESIGN.md §6).

With psycopg's default C wait function the hub blocks on each query and the
intervals below would line up one after another; the assertion is on the
database's own clock, so it is about overlap, not about speed.
"""
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy

from shared.db import Database


class SleepyService:
    name = "sleepy"
    db = Database(schema="registry")

    @rpc
    def nap(self, seconds):
        row = self.db.one("SELECT clock_timestamp() AS started, pg_sleep(%s), clock_timestamp() AS ended", (seconds,))
        return row["started"], row["ended"]


def test_concurrent_queries_overlap(container_factory, config):
    container = container_factory(SleepyService, config)
    container.start()
    with ClusterRpcProxy(config) as cluster:
        calls = [cluster.sleepy.nap.call_async(0.5) for _ in range(4)]
        intervals = [call.result() for call in calls]
    latest_start = max(start for start, _ in intervals)
    earliest_end = min(end for _, end in intervals)
    # Every query began before any finished: they ran at the same time.
    assert latest_start < earliest_end, intervals
