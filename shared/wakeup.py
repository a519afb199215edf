"""A worker loop woken by PostgreSQL NOTIFY: work until idle, then wait for a NOTIFY or the poll interval.

The outbox relay and the notification sender each drain a table that committed transactions add
to. A NOTIFY sent in those transactions arrives at commit and wakes the loop at once; the poll
interval catches what only comes due later (retries after back-off, quiet hours). The loop outlives
any one failure: it logs, backs off (0.5 s doubling to 10 s) and goes on, and the rows it did not
finish stay where they were.
"""
import eventlet
import psycopg


class WakeLoop:
    def __init__(self, dsn, channel, poll=1.0):
        self.dsn, self.channel, self.poll = dsn, channel, poll
        self.running = False
        self.listener = None

    def run(self, work, on_error):
        """Call `work()` until stopped. `on_error(exc, backoff)` logs; if it returns True the LISTEN
        connection is opened afresh (it may be the connection that failed)."""
        self.running = True
        backoff = 0.5
        while self.running:
            try:
                if self.listener is None:
                    self.listener = psycopg.connect(self.dsn, autocommit=True)
                    self.listener.execute(f"LISTEN {self.channel}")
                work()
                backoff = 0.5
                for _ in self.listener.notifies(timeout=self.poll, stop_after=1):
                    pass
            except Exception as exc:  # the loop outlives any one failure (see above)
                if on_error(exc, backoff):
                    self.close()
                eventlet.sleep(backoff)
                backoff = min(backoff * 2, 10)

    def close(self):
        listener, self.listener = self.listener, None
        if listener is not None:
            try:
                listener.close()
            except psycopg.Error:
                pass

    def stop(self):
        self.running = False
        self.close()
