"""Transactional outbox: events are rows written with the business change, then relayed.

The relay claims unsent rows with `FOR UPDATE SKIP LOCKED` (so replicas share
the work without publishing a row twice), publishes them on a confirm-mode
channel with `mandatory`, waits for the broker's confirms, and marks the
confirmed rows sent in the same transaction that locked them. Publishes are
pipelined: a whole batch goes out before waiting, which is what lets a backlog
drain far faster than one-confirm-per-message. A message the broker nacks, or
returns as unroutable, is left unsent with a back-off and tried again; nothing
is marked sent that the broker did not take.

An event no queue is bound for is not unroutable once `linli topology apply`
has run: each `<service>.events` exchange then has an alternate exchange that
keeps such events in the bounded `<service>.events.unrouted` queue
(shared.messaging), the broker confirms them and they are marked sent like any
other. Only a real failure is retried: a nack, a broker away, or a return from
an exchange without an alternate exchange (topology not applied).

`Relay.stop()` ends the relay within its poll interval whatever it is doing
(shared.wakeup): a batch whose confirms do not come in time is abandoned, and
its rows, left unsent, go out again later (consumers are idempotent).
"""
import json
import logging
import socket
import time

import amqp
import eventlet
from kombu import Connection
from nameko.extensions import DependencyProvider

from shared import metrics
from shared.db import make_pool
from shared.messaging import unrouted_name
from shared.wakeup import Stopped, WakeLoop

log = logging.getLogger(__name__)

INSERT = ("INSERT INTO outbox (event_id, exchange, routing_key, body, correlation_id, stream, seq) "
          "VALUES (%s, %s, %s, %s, %s, %s, %s)")
COPY = "COPY outbox (event_id, exchange, routing_key, body, correlation_id) FROM STDIN"
# The body as the text PostgreSQL stores: the relay sends it as it is. Decoding it to publish it encoded
# again was more than half of a relaying aggregator's time.
CLAIM = ("SELECT id, event_id, exchange, routing_key, body::text AS body, correlation_id, attempts FROM outbox "
         "WHERE sent_at IS NULL AND next_attempt_at <= now() ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED")
MARK_SENT = "UPDATE outbox SET sent_at = clock_timestamp(), attempts = attempts + 1 WHERE id = ANY(%s)"
MARK_RETRY = ("UPDATE outbox SET attempts = attempts + 1, last_error = %s, "
              "next_attempt_at = now() + make_interval(secs => least(60, 0.5 * power(2, attempts))) "
              "WHERE id = ANY(%s)")
STATUS = ("SELECT count(*) FILTER (WHERE sent_at IS NULL) AS backlog, "
          "coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE sent_at IS NULL)), 0) AS oldest_age, "
          "count(*) FILTER (WHERE sent_at IS NULL AND attempts > 0) AS retrying, "
          "count(*) FILTER (WHERE sent_at IS NOT NULL) AS sent FROM outbox")
PRUNE = "DELETE FROM outbox WHERE sent_at < now() - make_interval(days => %s)"


def channel_name(schema):
    return f"linli_outbox_{schema}"


def add(tx, exchange, routing_key, env):
    """Insert an event in the caller's transaction; the relay is woken when it commits."""
    add_message(tx, exchange, routing_key, env["event_id"], env, env.get("correlation_id"))


def add_message(tx, exchange, routing_key, message_id, body, correlation_id=None, stream=None, seq=None):
    """Insert any JSON message (an event envelope, a fact batch) to be relayed after commit; `stream`
    and `seq`: its number, if it crosses a level (shared/streams.py)."""
    tx.execute(INSERT, (message_id, exchange, routing_key, json.dumps(body, ensure_ascii=False), correlation_id,
                        stream, seq))
    # NOTIFY is transactional: delivered on commit, discarded on rollback.
    tx.execute(f"NOTIFY {channel_name(tx.source['service'])}")


def add_many(tx, exchange, routing_key, envs):
    """Insert many events of one type with one COPY (batch paths: thousands of rows in milliseconds)."""
    with tx.conn.cursor().copy(COPY) as copy:
        for env in envs:
            copy.write_row((env["event_id"], exchange, routing_key, json.dumps(env, ensure_ascii=False),
                            env.get("correlation_id")))
    tx.execute(f"NOTIFY {channel_name(tx.source['service'])}")


class Publisher:
    """A confirm-mode AMQP channel that publishes a batch and then waits for all confirms."""

    # While stopping, a batch is abandoned after this long without a confirm arriving: a healthy
    # broker confirms in milliseconds, so the wait is only ever this long when it is stuck.
    STOP_GRACE = 0.25
    CLOSE_TIMEOUT = 2  # s for the broker's Close-Ok (see close())

    def __init__(self, amqp_uri, confirm_timeout=30):
        self.amqp_uri = amqp_uri
        self.confirm_timeout = confirm_timeout
        self.conn = None
        self.channel = None

    def connect(self):
        self.close()
        self.conn = Connection(self.amqp_uri, heartbeat=0, connect_timeout=5)
        # No pause between the two tries: the relay's loop backs off itself, and that back-off
        # ends at once on stop(), which kombu's retry sleep would not.
        self.conn.ensure_connection(max_retries=1, interval_start=0)
        ch = self.conn.channel()
        ch.confirm_select()
        ch.events["basic_ack"].add(self._on_ack)
        ch.events["basic_nack"].add(self._on_nack)
        ch.events["basic_return"].add(self._on_return)
        self.channel = ch
        self.next_tag = 1

    def queue_depth(self, queue):
        """Messages ready in `queue` (None if it does not exist), on a channel of its own: a passive
        declare of a missing queue closes its channel, which must not be the publishing one.
        Bounded like close(): a stalled broker must not hold the relay (and its stop) here."""
        if self.channel is None:
            self.connect()
        try:
            with eventlet.Timeout(self.CLOSE_TIMEOUT):
                channel = self.conn.channel()
                try:
                    return channel.queue_declare(queue, passive=True).message_count
                except amqp.exceptions.NotFound:
                    return None
                finally:
                    try:
                        channel.close()
                    except Exception:  # the broker already closed it (NotFound)
                        pass
        except eventlet.Timeout:
            self.close(clean=False)  # a reply is still owed on it: start afresh next time
            raise TimeoutError(f"no answer about {queue} in {self.CLOSE_TIMEOUT}s") from None

    def close(self, clean=True):
        """Close the connection. A clean close waits for the broker's Close-Ok, which a stalled
        broker never sends, so it is bounded; `clean=False` (a connection in an unknown state, e.g.
        with confirms outstanding) drops the socket without a word to the broker."""
        conn, self.conn, self.channel = self.conn, None, None
        if conn is None:
            return
        if clean:
            try:
                with eventlet.Timeout(self.CLOSE_TIMEOUT):
                    conn.release()
                return
            except (Exception, eventlet.Timeout):  # broken or stalled: drop it below
                pass
        try:
            conn.collect()
        except Exception:  # already gone; we are replacing it anyway
            pass

    def _settle(self, tag, multiple, ok):
        tags = [t for t in self.pending if t <= tag] if multiple else [tag]
        for t in tags:
            row_id = self.pending.pop(t, None)
            if row_id is not None:
                self.outcome[row_id] = "ok" if ok else "nack"

    def _on_ack(self, tag, multiple):
        self._settle(tag, multiple, True)

    def _on_nack(self, tag, multiple, requeue=False):
        self._settle(tag, multiple, False)

    def _on_return(self, exc, exchange, routing_key, message):
        # A return precedes the ack of the same message; remember it so the ack does not count as delivered.
        self.returned.add(message.properties.get("message_id"))

    def publish_batch(self, rows, stopping=lambda: False):
        """Publish rows and wait; returns {row id: "ok" | "nack" | "unroutable"}.

        Raises `Stopped` if `stopping()` turns true and confirms stop coming meanwhile."""
        if self.channel is None:
            self.connect()
        self.pending, self.outcome, self.returned = {}, {}, set()
        by_event = {}
        for row in rows:
            event_id = str(row["event_id"])
            msg = amqp.Message(
                row["body"],
                content_type="application/json", content_encoding="utf-8",
                delivery_mode=2, message_id=event_id,
                correlation_id=row["correlation_id"] or "",
                application_headers={"nameko.correlation_id": row["correlation_id"] or "",
                                     "event_type": row["routing_key"]},
            )
            self.channel.basic_publish(msg, exchange=row["exchange"], routing_key=row["routing_key"], mandatory=True)
            self.pending[self.next_tag] = row["id"]
            by_event[event_id] = row["id"]
            self.next_tag += 1
        deadline = time.monotonic() + self.confirm_timeout
        while self.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(self.pending)} publisher confirms not received in {self.confirm_timeout}s")
            # Wait in short slices, so a stop is noticed while confirms are overdue, not after 30 s.
            try:
                self.conn.drain_events(timeout=min(remaining, self.STOP_GRACE))
            except socket.timeout:
                if stopping():
                    raise Stopped(f"stopping with {len(self.pending)} publisher confirms outstanding") from None
        for event_id in self.returned:
            if event_id in by_event:
                self.outcome[by_event[event_id]] = "unroutable"
        return self.outcome


class Relay:
    """Moves committed outbox rows of one schema to the broker. Usable inside or outside nameko."""

    def __init__(self, dsn, amqp_uri, schema, batch=500, poll=1.0, prune_days=7, announcer=None):
        self.dsn, self.schema, self.batch, self.poll, self.prune_days = dsn, schema, batch, poll, prune_days
        self.announcer = announcer  # shared.streams.Announcer: the heads of this schema's numbered streams
        # One connection: the relay claims and marks in one greenthread (shared/budget.py counts it).
        self.pool = make_pool(dsn, schema, max_size=1, name=f"relay-{schema}")
        self.publisher = Publisher(amqp_uri)
        self.loop = WakeLoop(dsn, channel_name(schema), poll)
        self.last_status = 0.0
        self.last_prune = 0.0

    @property
    def running(self):
        """Read-only on purpose: assigning `running = False` stops nothing (call stop())."""
        return self.loop.running

    def relay_once(self):
        """Publish one batch; returns how many rows it claimed."""
        with self.pool.connection() as conn:
            with conn.transaction():
                rows = conn.execute(CLAIM, (self.batch,)).fetchall()
                if not rows:
                    return 0
                try:
                    outcome = self.publisher.publish_batch(rows, stopping=lambda: self.loop.stopping)
                except Stopped:
                    # Confirms outstanding: the channel's state is unknown, and the rows roll back unsent.
                    self.publisher.close(clean=False)
                    raise
                except amqp.exceptions.ChannelError as exc:
                    # The broker refused the publish itself (e.g. the exchange does not exist):
                    # not an outage, so record why on the rows and back off like any retry.
                    self.publisher.close()
                    metrics.OUTBOX_FAILED.labels(self.schema, "refused").inc(len(rows))
                    log.error("outbox: broker refused a batch of %d: %s", len(rows), exc)
                    conn.execute(MARK_RETRY, (f"refused: {exc}"[:500], [r["id"] for r in rows]))
                    return len(rows)
                except Exception as exc:
                    self.publisher.close(clean=False)  # the broker is away or stuck: no goodbye
                    metrics.OUTBOX_FAILED.labels(self.schema, "broker").inc(len(rows))
                    raise BrokerUnavailable(exc) from exc
                sent = [i for i, o in outcome.items() if o == "ok"]
                for reason in ("unroutable", "nack"):
                    failed = [i for i, o in outcome.items() if o == reason]
                    if failed:
                        conn.execute(MARK_RETRY, (reason, failed))
                        metrics.OUTBOX_FAILED.labels(self.schema, reason).inc(len(failed))
                        log.warning("outbox: %d event(s) %s, will retry%s", len(failed), reason,
                                    " (no queue bound and no alternate exchange: has `linli topology apply` run?)"
                                    if reason == "unroutable" else "")
                if sent:
                    conn.execute(MARK_SENT, (sent,))
        metrics.OUTBOX_PUBLISHED.labels(self.schema).inc(len(sent))
        return len(rows)

    def drain(self):
        """Relay batches until one comes back short (or the relay is stopping); returns rows claimed."""
        total = 0
        while not self.loop.stopping:
            n = self.relay_once()
            total += n
            if n < self.batch:
                break
        return total

    def update_status(self, force=False):
        now = time.monotonic()
        if not force and now - self.last_status < 5:
            return
        self.last_status = now
        with self.pool.connection() as conn:
            row = conn.execute(STATUS).fetchone()
            if now - self.last_prune > 600:
                conn.execute(PRUNE, (self.prune_days,))
                self.last_prune = now
        if self.announcer is not None and self.announcer.is_due(now):   # no transaction until it is
            from shared.db import on_pool
            with on_pool(self.pool, {"service": self.schema}) as tx:
                self.announcer.announce(tx, now)
        metrics.OUTBOX_BACKLOG.labels(self.schema).set(row["backlog"])
        metrics.OUTBOX_AGE.labels(self.schema).set(float(row["oldest_age"]))
        try:
            unrouted = self.publisher.queue_depth(unrouted_name(self.schema))
        except Exception as exc:  # the broker is away: publishing will say so; the gauge keeps its value
            log.debug("outbox: unrouted depth not read: %s", exc)
        else:
            if unrouted is not None:
                metrics.OUTBOX_UNROUTED.labels(self.schema).set(unrouted)

    def run(self):
        """Relay until stopped: drain, then sleep until NOTIFY or the poll interval."""
        # Not wait=True: a database that is away at start would hold this greenthread (and a stop)
        # for the pool's timeout and then end it; the loop instead retries like any other failure.
        if self.loop.stopping:
            return  # stopped before it began: the pool may already be closed, and cannot reopen
        self.pool.open()
        self.loop.run(self._work, self._failed)

    def _work(self):
        self.drain()
        self.update_status()

    def _failed(self, exc, backoff):
        if isinstance(exc, BrokerUnavailable):
            log.warning("outbox relay: broker unavailable (%s); retrying in %.1fs", exc, backoff)
            return False
        log.exception("outbox relay: %s; retrying in %.1fs", exc, backoff)
        return True

    def stop(self, timeout=None):
        """End `run()` within the poll interval (see shared.wakeup) and close the connections.

        Returns False if the loop was still busy after `timeout` (default: the poll interval and
        5 s); its connections are then left open, because closing them under a greenthread that
        uses them leaks eventlet listeners: kill its greenthread, then call `close()`."""
        if not self.loop.stop(timeout):
            return False
        self.close()
        return True

    def close(self):
        self.publisher.close()
        self.pool.close()


class BrokerUnavailable(Exception):
    pass


class OutboxRelay(DependencyProvider):
    """Runs a `Relay` for the service's schema in a managed greenthread while the service runs."""

    def setup(self):
        from shared import envelope, facts, streams
        cfg = self.container.config
        name = self.container.service_name
        self.relay = Relay(cfg["DATABASE_URL"], cfg["AMQP_URI"], name,
                           batch=cfg.get("OUTBOX_BATCH", 500), poll=cfg.get("OUTBOX_POLL_SECONDS", 1.0),
                           announcer=streams.Announcer(facts.Signer.from_config(cfg),
                                                       envelope.source_from_config(name, cfg)))
        # Resend requests for this service's numbered messages (shared/streams.py): rare, so they
        # share the relay's one connection rather than hold one of their own.
        self.resends = streams.ResendListener(cfg, name, self.relay.pool)

    def start(self):
        self.gt = self.container.spawn_managed_thread(self.relay.run)
        self.resends_gt = self.container.spawn_managed_thread(self.resends.run)

    def stop(self):
        # Let the relay finish or abandon its batch and end by itself (within its poll interval),
        # so a batch the broker confirmed is marked sent rather than published again after restart.
        # Only if it is still busy after that, kill its greenthread. Either way the greenthread has
        # ended before its connections are closed: closing the LISTEN connection under a greenthread
        # that is about to select on it leaks an eventlet listener for the fd (epoll refuses the
        # closed fd after the hub has recorded it), and the next socket that reuses the number fails
        # with "Second simultaneous read" for the rest of the process.
        self._stop_resends()
        if not self.relay.stop():
            self.gt.kill()
            self.relay.close()

    def kill(self):
        self._stop_resends()
        self.relay.loop.stop(timeout=0)  # no waiting: the container is being killed
        self.gt.kill()
        self.relay.close()

    def _stop_resends(self):
        self.resends.running = False
        gt = getattr(self, "resends_gt", None)   # none if the container is killed before it started
        if gt is not None:
            gt.kill()

    def get_dependency(self, worker_ctx):
        return self.relay
