"""A worker loop woken by PostgreSQL NOTIFY: work until idle, then wait for a NOTIFY or the poll interval.

The outbox relay and the notification sender each drain a table that committed transactions add
to. A NOTIFY sent in those transactions arrives at commit and wakes the loop at once; the poll
interval catches what only comes due later (retries after back-off, quiet hours). The loop outlives
any one failure: it logs, backs off (0.5 s doubling to 10 s) and goes on, and the rows it did not
finish stay where they were.

`stop()` ends the loop within one poll interval whatever it is doing: the LISTEN wait is bounded by
the interval, the back-off sleep ends at once, and work that waits longer (a relay waiting for
publisher confirms) asks `stopping` and gives up by raising `Stopped`. The loop closes its own
LISTEN connection as it ends: closing it from another greenthread while this one selects on it
leaks an eventlet listener for the fd (see shared.outbox.OutboxRelay.stop).
"""
import eventlet
import psycopg
from eventlet.event import Event


class Stopped(Exception):
    """Raised by work that gave up because the loop is stopping; not a failure, nothing is logged."""


class WakeLoop:
    def __init__(self, dsn, channel, poll=1.0):
        self.dsn, self.channel, self.poll = dsn, channel, poll
        self.listener = None
        # Set once by stop() and never cleared: a stop() that comes before run() starts must still win.
        self.stopping = False
        self._stop = Event()  # sent by stop(), so a back-off sleep ends at once
        self._done = None     # an Event while run() runs, sent as it returns
        self._thread = None

    @property
    def running(self):
        """Read-only on purpose: assigning `running = False` stops nothing (call stop())."""
        return self._done is not None and not self.stopping

    def run(self, work, on_error):
        """Call `work()` until stopped. `on_error(exc, backoff)` logs; if it returns True the LISTEN
        connection is opened afresh (it may be the connection that failed)."""
        if self._done is not None:
            raise RuntimeError(f"wake loop {self.channel} is already running")
        self._done, self._thread = Event(), eventlet.getcurrent()
        backoff = 0.5
        try:
            while not self.stopping:
                try:
                    if self.listener is None:
                        self.listener = psycopg.connect(self.dsn, autocommit=True)
                        self.listener.execute(f"LISTEN {self.channel}")
                    work()
                    backoff = 0.5
                    if self.stopping:
                        break
                    for _ in self.listener.notifies(timeout=self.poll, stop_after=1):
                        pass
                except Exception as exc:  # the loop outlives any one failure (see above)
                    if isinstance(exc, Stopped) or self.stopping:
                        break  # stop() interrupted the work; what it did not finish stays for next time
                    if on_error(exc, backoff):
                        self.close()
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 10)
        finally:
            self.close()
            done, self._done, self._thread = self._done, None, None
            done.send(True)

    def close(self):
        listener, self.listener = self.listener, None
        if listener is not None:
            try:
                listener.close()
            except psycopg.Error:
                pass

    def stop(self, timeout=None):
        """Ask the loop to end and wait for it: up to `timeout` seconds (default: the poll interval
        and 5 s for a statement or a confirm in flight). Returns True once it has ended (or if it was
        not running), False if it is still busy; the caller may then kill its greenthread."""
        self.stopping = True
        if not self._stop.ready():
            self._stop.send()
        done = self._done
        if done is None:
            self.close()
            return True
        if self._thread is eventlet.getcurrent():
            return False  # called from inside work(): the loop ends when work returns
        done.wait(self.poll + 5 if timeout is None else timeout)
        return done.ready()
