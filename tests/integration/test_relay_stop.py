"""The NOTIFY-woken loops (outbox relay, notification sender) stop within their poll interval.

`make bench` once hung for good after asking a relay to stop: the flag it set was no longer read,
and a service would likewise have depended on killing the relay's greenthread mid-batch. These
tests stop a real relay (PostgreSQL, RabbitMQ) and a real notification dispatcher in each state a
loop waits in: on LISTEN/NOTIFY, for publisher confirms, and sleeping in back-off. `stop()` must
return True, meaning the loop has ended by itself, within `STOP_FACTOR` poll intervals. That bound
is a generous deadline for "did it stop", not a speed goal: before the fix, a loop in back-off
slept on for up to 10 s and the bench's stop never ended.
"""
import json
import time
from urllib.parse import urlsplit, urlunsplit

import eventlet
import psycopg
import pytest
from prometheus_client import REGISTRY

from services.notification.sender import Dispatcher, Sender
from shared import envelope, metrics
from shared.messaging import apply_topology
from shared.migrations import migrate
from shared.outbox import Relay, channel_name
from shared.wakeup import WakeLoop
from tests.integration.conftest import wait_for

POLL = 1.0        # long enough that a loop waiting on LISTEN is visibly bounded by it
STOP_FACTOR = 3   # stop() may take this many poll intervals (generous, for a loaded 2-core machine)


class Probe:
    name = "probe"


def listening(sql, channel):
    return sql("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query = %s",
               (f"LISTEN {channel}",))


@pytest.fixture
def probe_db(config):
    migrate(config["DATABASE_URL"], ["probe"])
    with psycopg.connect(config["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("TRUNCATE probe.outbox, probe.processed_events")
    return config


def spawn_relay(probe_db, amqp_uri=None):
    relay = Relay(probe_db["DATABASE_URL"], amqp_uri or probe_db["AMQP_URI"], "probe", poll=POLL)
    return relay, eventlet.spawn(relay.run)


def assert_stops(loop_owner, gt):
    """The loop's greenthread ends by itself within STOP_FACTOR poll intervals of stop(), and stop()
    says so (True: ended, not left for the caller to kill)."""
    bound = STOP_FACTOR * POLL
    started = time.monotonic()
    ended = loop_owner.stop(timeout=bound)
    with eventlet.Timeout(max(0.0, bound - (time.monotonic() - started)), False):
        gt.wait()  # re-raises if the loop ended with an error
    assert gt.dead, f"still running {time.monotonic() - started:.1f} s after stop()"
    assert ended is True


def test_assigning_running_is_refused_rather_than_ignored(probe_db):
    # The bench hung on `relay.running = False`, which set an attribute nothing read.
    relay = Relay(probe_db["DATABASE_URL"], probe_db["AMQP_URI"], "probe", poll=POLL)
    with pytest.raises(AttributeError):
        relay.running = False
    relay.close()


def test_a_relay_waiting_on_listen_stops_within_its_poll_interval(probe_db, sql):
    relay, gt = spawn_relay(probe_db)
    wait_for(lambda: listening(sql, channel_name("probe")), message="the relay to LISTEN")
    assert_stops(relay, gt)
    assert not listening(sql, channel_name("probe"))  # it closed its LISTEN connection as it ended


def test_a_relay_stops_after_a_notify_of_work_it_then_does(probe_db, sql, broker):
    # What the bench does: events arrive, the relay publishes them, then it is stopped.
    apply_topology(probe_db, [Probe])
    relay, gt = spawn_relay(probe_db)
    wait_for(lambda: listening(sql, channel_name("probe")), message="the relay to LISTEN")
    env = envelope.make("item_added", {"label": "x"}, envelope.source_from_config("probe", probe_db))
    with psycopg.connect(probe_db["DATABASE_URL"]) as conn:  # one transaction: INSERT, NOTIFY, commit
        conn.execute("INSERT INTO probe.outbox (event_id, exchange, routing_key, body) "
                     "VALUES (%s, 'probe.events', 'item_added', %s)", (env["event_id"], json.dumps(env)))
        conn.execute(f"NOTIFY {channel_name('probe')}")
    wait_for(lambda: sql("SELECT count(*) AS n FROM probe.outbox WHERE sent_at IS NOT NULL")[0]["n"] == 1,
             message="the event relayed")
    assert_stops(relay, gt)


class StallingProxy:
    """A TCP proxy to RabbitMQ that can hold back what the broker sends: publishes still reach it,
    its confirms do not come back, as when a broker is overloaded or a network path half-fails."""

    def __init__(self, host, port):
        self.target = (host, port)
        self.listener = eventlet.listen(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stalled = False
        self.threads = [eventlet.spawn(self._serve)]

    def _serve(self):
        while True:
            client, _ = self.listener.accept()
            upstream = eventlet.connect(self.target)
            self.threads += [eventlet.spawn(self._pipe, client, upstream, False),
                             eventlet.spawn(self._pipe, upstream, client, True)]

    def _pipe(self, src, dst, from_broker):
        try:
            while data := src.recv(65536):
                while from_broker and self.stalled:
                    eventlet.sleep(0.01)
                dst.sendall(data)
        except OSError:
            pass

    def close(self):
        for gt in self.threads:
            gt.kill()
        self.listener.close()


def test_a_relay_waiting_for_confirms_stops_within_its_poll_interval(probe_db, sql, broker):
    apply_topology(probe_db, [Probe])
    uri = urlsplit(probe_db["AMQP_URI"])
    proxy = StallingProxy(uri.hostname, uri.port or 5672)
    via_proxy = urlunsplit(uri._replace(netloc=f"{uri.username}:{uri.password}@127.0.0.1:{proxy.port}"))
    if ("probe",) in {tuple(labels) for labels in metrics.OUTBOX_UNROUTED._metrics}:
        metrics.OUTBOX_UNROUTED.remove("probe")
    relay, gt = spawn_relay(probe_db, via_proxy)
    try:
        # Its first pass has connected to the broker (the handshake needs the broker's replies) and
        # read the unrouted depth; the next status read comes after the batch it will be stuck on.
        wait_for(lambda: REGISTRY.get_sample_value("linli_outbox_unrouted", {"service": "probe"}) is not None,
                 message="the relay's first pass")
        proxy.stalled = True
        env = envelope.make("item_added", {"label": "确认未到"}, envelope.source_from_config("probe", probe_db))
        with psycopg.connect(probe_db["DATABASE_URL"]) as conn:
            conn.execute("INSERT INTO probe.outbox (event_id, exchange, routing_key, body) "
                         "VALUES (%s, 'probe.events', 'item_added', %s)", (env["event_id"], json.dumps(env)))
            conn.execute(f"NOTIFY {channel_name('probe')}")
        # The message reached the broker (kept unrouted: nobody consumes item_added here); its confirm did not.
        wait_for(lambda: broker.depth("probe.events.unrouted") == 1, message="the publish at the broker")
        time.sleep(POLL)  # the relay is now well into its wait for the confirm (30 s before it gives up)
        assert_stops(relay, gt)
    finally:
        proxy.close()
    # The batch was abandoned, not marked sent: its row goes out again after a restart.
    assert sql("SELECT sent_at, attempts FROM probe.outbox")[0] == {"sent_at": None, "attempts": 0}


def test_a_loop_sleeping_in_back_off_stops_within_its_poll_interval(probe_db):
    # Shared by the relay and the notification sender; the work fails every time, so the back-off
    # doubles (0.5, 1, 2, 4 s ...). Stop it at the start of a 4 s sleep, longer than STOP_FACTOR polls.
    loop = WakeLoop(probe_db["DATABASE_URL"], "linli_test_backoff", POLL)
    backoffs = []

    def work():
        raise RuntimeError("the work fails")

    def on_error(exc, backoff):
        backoffs.append(backoff)
        return False

    gt = eventlet.spawn(loop.run, work, on_error)
    wait_for(lambda: 4 in backoffs, timeout=30, message="a back-off of 4 s")
    assert 4 > STOP_FACTOR * POLL  # else this would not tell a waited-out sleep from an interrupted one
    assert_stops(loop, gt)
    assert backoffs == [0.5, 1, 2, 4]  # no further attempt after the stop


def test_the_notification_sender_stops_within_its_poll_interval(config, sql):
    dispatcher = Dispatcher(config["DATABASE_URL"], "notification", Sender.from_config(config), poll=POLL)
    gt = eventlet.spawn(dispatcher.run)
    wait_for(lambda: listening(sql, "notification_deliveries"), message="the sender to LISTEN")
    started = time.monotonic()
    dispatcher.stop()  # returns once its loop has ended or its wait ran out; then closes its pool
    assert gt.dead, f"the sender's loop was still running {time.monotonic() - started:.1f} s after stop()"
    assert time.monotonic() - started <= STOP_FACTOR * POLL
