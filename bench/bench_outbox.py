"""Outbox relay throughput: committed outbox rows -> messages confirmed by the broker, per second.

Why: DESIGN.md §4 makes every Linli event go through the transactional outbox,
so the relay (`shared.outbox.Relay`) is the ceiling on how many events a
service can publish. The yardstick is the simplest correct publisher, measured
in the same run on the same machine: a raw py-amqp loop that publishes one
message and waits for its confirm before the next (`basic_publish_confirm`;
DESIGN.md §6 measured it at ≈ 1,000 msg/s). Its messages are the relay's:
same envelope body size and properties, persistent, `mandatory`, to a topic
exchange with a bound durable queue of the type Linli's handlers use.

Scenarios (every ratio = relay events/s ÷ raw loop msg/s):

1. trickle: a writer process commits events one per transaction, exactly as a
   service does (`Tx.emit` -> `outbox.add`: INSERT + NOTIFY, then COMMIT), at a
   steady rate equal to the raw loop's, while `Relay.run()` (woken by
   LISTEN/NOTIFY) publishes them. Throughput is events ÷ (first commit -> last
   `sent_at`): if the relay keeps up it tracks the offered rate, if it cannot it
   falls behind and the ratio shows it. Goal: ratio >= 0.8. By construction the
   ratio cannot go much above 1; `--trickle-rate 0` (writer unpaced) probes the
   headroom instead. Latency is per event, writer's commit -> `sent_at` (set
   after the broker confirmed it). The writer runs in its own process so its
   CPU is not charged to the relay.
2. backlog: 100,000 envelope-shaped rows are inserted with one INSERT ... SELECT
   (a broker outage's worth of events), then `Relay.drain()` is timed until every
   row is confirmed and marked sent. Goal: >= 5,000 events/s.

Each scenario ends by consuming its queue and comparing message ids with the
outbox rows: exactly N distinct messages must have arrived (a loss fails the
run; duplicates are reported). Everything runs in a throwaway database
(`linli_bench`) and vhost (`linli-bench`) that are dropped afterwards.

Every wait is bounded and fails loudly: the run once hung for good after the
raw loop, on a relay told to stop by a flag it no longer read (`Relay.stop()`
is the only way to stop one; it returns False if the relay did not end).
"""
import shared.green  # noqa: F401,I001  (first: monkey-patches eventlet before psycopg is imported)

import argparse
import cProfile
import io
import json
import pstats
import resource
import sys
import time
import uuid

import amqp
import eventlet
from eventlet.green import subprocess
from kombu import Connection, Queue

import common
from shared import envelope, outbox
from shared.db import Tx, connect, make_pool
from shared.messaging import events_exchange
from shared.migrations import migrate

SERVICE = "registry"          # the outbox lives in this schema, events go to registry.events, as in the service
EXCHANGE = f"{SERVICE}.events"
EVENT_TYPE = "bench_recorded"  # routing key of the relay's messages
RAW_TYPE = "bench_raw_loop"    # routing key of the raw loop's messages (same exchange, its own queue)
EVENTS_QUEUE = "bench-events"
RAW_QUEUE = "bench-raw"
DB_NAME = "linli_bench"
VHOST = "linli-bench"
CONFIRM_TIMEOUT = 30  # s: one confirm the raw loop waits for; the relay's own is Publisher.confirm_timeout


def payload(seq):
    """A node-shaped payload, like the registry's node_created events."""
    return {"code": "310110012001", "name": "长海路街道第一居民委员会", "level": "community",
            "parent_code": "310110012", "valid_from": "2024-01-01", "valid_to": None, "seq": seq}


def message(body, event_id, routing_key, correlation_id):
    """The message `outbox.Publisher` builds, so the raw loop sends the same bytes and properties."""
    return amqp.Message(body, content_type="application/json", content_encoding="utf-8",
                        delivery_mode=2, message_id=event_id, correlation_id=correlation_id,
                        application_headers={"nameko.correlation_id": correlation_id, "event_type": routing_key})


# --- broker ------------------------------------------------------------------------------------

def declare_topology(amqp_uri, queue_type):
    """The exchange the registry publishes to, and one bound durable queue per stream.

    Queues must exist before anyone publishes (DESIGN.md §4), or `mandatory` returns the messages.
    """
    with Connection(amqp_uri) as conn:
        channel = conn.default_channel
        exchange = events_exchange(SERVICE)
        exchange(channel).declare()
        for name, key in ((EVENTS_QUEUE, EVENT_TYPE), (RAW_QUEUE, RAW_TYPE)):
            Queue(name, exchange=exchange, routing_key=key, durable=True, auto_delete=False,
                  queue_arguments={"x-queue-type": queue_type})(channel).declare()


def consume_all(amqp_uri, queue, expected_ids):
    """Empty `queue` and compare what arrived with `expected_ids` (a set of message ids)."""
    with Connection(amqp_uri, heartbeat=0) as conn:
        conn.ensure_connection(max_retries=1)
        channel = conn.channel()
        # Nothing is publishing any more and every message was confirmed, so the count is final.
        count = channel.queue_declare(queue, passive=True).message_count
        seen, sizes = [], []

        def on_message(msg):
            seen.append(msg.properties.get("message_id"))
            sizes.append(len(msg.body))

        channel.basic_qos(0, 1000, False)
        channel.basic_consume(queue, no_ack=True, callback=on_message)
        deadline = time.monotonic() + 120
        while len(seen) < count and time.monotonic() < deadline:
            conn.drain_events(timeout=5)
        channel.close()
    distinct = set(seen)
    return {
        "received": len(seen),
        "expected": len(expected_ids),
        "missing": len(expected_ids - distinct),
        "duplicates": len(seen) - len(distinct),
        "unexpected": len(distinct - expected_ids),
        "body_bytes_mean": round(sum(sizes) / len(sizes), 1) if sizes else None,
    }


def raw_confirm_loop(amqp_uri, n, correlation_id, source, warmup=200):
    """One persistent mandatory message, wait for its confirm, next: the baseline publisher."""
    envs = [envelope.make(RAW_TYPE, payload(i), source, correlation_id) for i in range(n + warmup)]
    with Connection(amqp_uri, heartbeat=0) as conn:
        conn.ensure_connection(max_retries=1)
        channel = conn.channel()
        channel.confirm_select()
        # Without a basic_return handler py-amqp raises on a returned (unroutable) message: wanted here.
        latencies = []
        start = None
        for i, env in enumerate(envs):
            if i == warmup:
                start = time.perf_counter()
            t = time.perf_counter()
            # Serialise inside the loop: the relay pays for json.dumps of every row too.
            msg = message(json.dumps(env, ensure_ascii=False), env["event_id"], RAW_TYPE, correlation_id)
            channel.basic_publish_confirm(msg, exchange=EXCHANGE, routing_key=RAW_TYPE, mandatory=True,
                                          confirm_timeout=CONFIRM_TIMEOUT)
            if i >= warmup:
                latencies.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - start
    ids = {env["event_id"] for env in envs}
    return {"messages": n, "elapsed_s": round(elapsed, 3), "rate": n / elapsed,
            "confirm_latency_ms": {"p50": round(common.percentile(latencies, 50) * 1000, 3),
                                   "p95": round(common.percentile(latencies, 95) * 1000, 3)}}, ids


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- database ----------------------------------------------------------------------------------

def sql(dsn, statement, params=None, fetch=True):
    with connect(dsn, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{SERVICE}", public')
        cur = conn.execute(statement, params)
        return cur.fetchall() if fetch and cur.description else None


def outbox_summary(dsn):
    return sql(dsn, "SELECT count(*) AS rows, count(*) FILTER (WHERE sent_at IS NULL) AS unsent, "
                    "count(*) FILTER (WHERE attempts > 1) AS retried, max(attempts) AS max_attempts "
                    "FROM outbox")[0]


def reset(dsn):
    sql(dsn, "TRUNCATE outbox", fetch=False)


# --- scenario 1: steady trickle ----------------------------------------------------------------

def writer_main(spec):
    """Child process: commit `n` events one per transaction at `rate`/s, the way a service does.

    Prints [[event_id, commit wall-clock time], ...] as JSON on stdout.
    """
    cfg = common.config()
    source = envelope.source_from_config(SERVICE, cfg)
    pool = make_pool(spec["dsn"], SERVICE, max_size=spec["writers"], min_size=spec["writers"], name="bench-writer")
    pool.open(wait=True, timeout=30)
    n, rate, writers = spec["n"], spec["rate"], spec["writers"]
    committed = [None] * n
    start = time.monotonic() + 0.1

    def writer(w):
        # Open loop: event i is due at start + i/rate whatever happened before, like independent requests.
        # Several connections let a slow commit (WAL fsync) not hold back the next event's schedule.
        for i in range(w, n, writers):
            if rate:
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    eventlet.sleep(delay)
            tx = Tx(pool, source, {"correlation_id": spec["correlation_id"]})
            env = tx.emit(EVENT_TYPE, payload(i))
            tx.finish(commit=True)
            committed[i] = (env["event_id"], time.time())

    pile = eventlet.GreenPile(writers)
    for w in range(writers):
        pile.spawn(writer, w)
    list(pile)
    pool.close()
    json.dump(committed, sys.stdout)


def wait_listening(dsn, channel, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sql(dsn, "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query = %s",
               (f"LISTEN {channel}",)):
            return
        eventlet.sleep(0.05)
    raise TimeoutError("relay did not start listening")


def stop_relay(relay, gt, label):
    """Stop a running relay within its poll interval (and a margin), or fail the run saying so."""
    if not relay.stop(timeout=relay.poll + 10):
        gt.kill()
        relay.close()
        raise TimeoutError(f"{label}: the relay did not stop within {relay.poll + 10:.0f} s of Relay.stop()")
    gt.wait()  # it has returned; this re-raises if it ended with an error


def trickle(dsn, amqp_uri, args, rate, correlation_id):
    reset(dsn)
    relay = outbox.Relay(dsn, amqp_uri, SERVICE, batch=args.batch, poll=args.poll)
    gt = eventlet.spawn(relay.run)
    try:
        wait_listening(dsn, outbox.channel_name(SERVICE))
        cpu = cpu_seconds()
        spec = {"dsn": dsn, "n": args.trickle_events, "rate": rate, "writers": args.writers,
                "correlation_id": correlation_id}
        proc = subprocess.Popen([sys.executable, __file__, "--writer", json.dumps(spec)], stdout=subprocess.PIPE)
        # The writer's schedule takes n/rate seconds; three times that and a minute is a stuck writer.
        limit = 60 + 3 * args.trickle_events / rate if rate else 600
        try:
            with eventlet.Timeout(limit):
                out, _ = proc.communicate()  # green: the relay greenthread keeps running meanwhile
        except eventlet.Timeout:
            proc.kill()
            raise TimeoutError(f"trickle: the writer did not finish within {limit:.0f} s") from None
        if proc.returncode:
            raise RuntimeError(f"writer exited with {proc.returncode}")
        committed = {event_id: t for event_id, t in json.loads(out)}
        # Wait until the relay has marked everything sent (it may still be on the last batches).
        deadline = time.monotonic() + 60
        while sql(dsn, "SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL")[0]["n"]:
            if time.monotonic() > deadline:
                raise TimeoutError("trickle: relay did not catch up within 60 s")
            if gt.dead:
                gt.wait()  # re-raises what ended it
                raise RuntimeError("trickle: the relay ended before relaying every event")
            eventlet.sleep(0.01)
        stop_relay(relay, gt, "trickle")
        cpu = cpu_seconds() - cpu
    finally:
        # A step above failed: do not leave the relay running against a database about to be dropped.
        if not gt.dead and not relay.stop(timeout=relay.poll + 10):
            gt.kill()
        relay.close()

    rows = sql(dsn, "SELECT event_id::text AS event_id, extract(epoch FROM sent_at)::float8 AS sent FROM outbox")
    sent = {r["event_id"]: r["sent"] for r in rows}
    latencies = [sent[e] - t for e, t in committed.items()]
    first_commit, last_commit = min(committed.values()), max(committed.values())
    window = max(sent.values()) - first_commit
    n = len(committed)
    return {
        "events": n,
        "offered_rate": rate or None,
        "writer_rate": (n - 1) / (last_commit - first_commit),
        "elapsed_s": round(window, 3),
        "rate": n / window,
        "latency_ms": {"p50": round(common.percentile(latencies, 50) * 1000, 2),
                       "p95": round(common.percentile(latencies, 95) * 1000, 2),
                       "max": round(max(latencies) * 1000, 2)},
        # This process only relays (and waits for the writer): CPU per event shows the relay's cost.
        "relay_cpu_us_per_event": round(cpu / n * 1e6, 1),
        "outbox": outbox_summary(dsn),
    }, set(committed)


# --- scenario 2: backlog -----------------------------------------------------------------------

BULK_INSERT = """
INSERT INTO outbox (event_id, exchange, routing_key, body, correlation_id)
SELECT s.id, %(exchange)s, %(routing_key)s,
       jsonb_set(%(template)s::jsonb || jsonb_build_object('event_id', s.id), '{payload,seq}', to_jsonb(s.seq)),
       %(correlation_id)s
FROM (SELECT seq, gen_random_uuid() AS id FROM generate_series(0, %(n)s - 1) AS seq) AS s
"""


def backlog(dsn, amqp_uri, args, correlation_id, source):
    reset(dsn)
    template = envelope.make(EVENT_TYPE, payload(0), source, correlation_id)  # validated envelope shape
    t = time.perf_counter()
    sql(dsn, BULK_INSERT, {"exchange": EXCHANGE, "routing_key": EVENT_TYPE, "template": json.dumps(template),
                           "correlation_id": correlation_id, "n": args.backlog_events}, fetch=False)
    # A backlog builds up over minutes, long enough for autovacuum to have analysed the table;
    # without statistics the planner may sort the whole table for every claim.
    sql(dsn, "ANALYZE outbox", fetch=False)
    load_s = time.perf_counter() - t

    relays = [outbox.Relay(dsn, amqp_uri, SERVICE, batch=args.batch) for _ in range(args.relays)]
    for relay in relays:
        # Connect first: start-up is not throughput (the raw loop's connect is not timed either).
        relay.pool.open(wait=True, timeout=30)
        relay.publisher.connect()
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    t, cpu = time.perf_counter(), cpu_seconds()
    threads = [eventlet.spawn(relay.drain) for relay in relays]
    # Generous (the goal is 5,000/s): only a drain that is stuck, not one that is slow, hits it.
    limit = 120 + args.backlog_events / 100
    try:
        with eventlet.Timeout(limit):
            claimed = sum(gt.wait() for gt in threads)
    except eventlet.Timeout:
        for gt in threads:
            gt.kill()
        raise TimeoutError(f"backlog: the drain did not finish within {limit:.0f} s") from None
    elapsed, cpu = time.perf_counter() - t, cpu_seconds() - cpu
    if profiler:
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(35)
        print(out.getvalue(), file=sys.stderr)
    for relay in relays:
        relay.stop()
    summary = outbox_summary(dsn)
    ids = {r["event_id"] for r in sql(dsn, "SELECT event_id::text AS event_id FROM outbox")}
    return {"events": args.backlog_events, "claimed": claimed, "relays": args.relays,
            "load_s": round(load_s, 3), "elapsed_s": round(elapsed, 3),
            # ~1.0 means the relay is bound by its own Python CPU (one core), not by PostgreSQL or RabbitMQ.
            "relay_cpu_utilisation": round(cpu / elapsed, 2),
            "rate": summary["rows"] and (summary["rows"] - summary["unsent"]) / elapsed, "outbox": summary}, ids


# --- main --------------------------------------------------------------------------------------

def verify(amqp_uri, queue, ids, label, failures):
    check = consume_all(amqp_uri, queue, ids)
    if check["missing"] or check["received"] < check["expected"]:
        failures.append(f"{label}: {check['missing']} of {check['expected']} messages missing")
    if check["duplicates"] or check["unexpected"]:
        common.log(f"WARNING {label}: {check['duplicates']} duplicate(s), {check['unexpected']} unexpected")
    common.log(f"{label}: verified {check}")
    return check


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--raw-messages", type=int, default=3000)
    parser.add_argument("--trickle-events", type=int, default=3000)
    parser.add_argument("--trickle-rate", type=float, default=None,
                        help="events/s offered by the writer (default: the raw loop's measured rate; 0 = unpaced)")
    parser.add_argument("--writers", type=int, default=4, help="writer connections sharing the trickle schedule")
    parser.add_argument("--backlog-events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500, help="Relay(batch=...)")
    parser.add_argument("--poll", type=float, default=1.0, help="Relay(poll=...) for the trickle")
    parser.add_argument("--relays", type=int, default=1, help="relays draining the backlog in parallel greenthreads")
    parser.add_argument("--queue-type", default="quorum", choices=["quorum", "classic"],
                        help="quorum: what Linli's handler queues are (shared/messaging.py)")
    parser.add_argument("--skip", action="append", default=[], choices=["trickle", "backlog"])
    parser.add_argument("--profile", action="store_true", help="cProfile the backlog drain (to stderr)")
    parser.add_argument("--writer", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        return writer_main(json.loads(args.writer))

    cfg = common.config()
    source = envelope.source_from_config(SERVICE, cfg)
    correlation_id = str(uuid.uuid4())
    results = common.Results({k: v for k, v in vars(args).items() if k != "writer"})
    failures = []
    with common.throwaway_database(cfg["DATABASE_URL"], DB_NAME) as dsn, \
            common.throwaway_vhost(cfg["RABBIT_MANAGEMENT_URL"], cfg["AMQP_URI"], VHOST) as amqp_uri:
        migrate(dsn, [SERVICE])
        declare_topology(amqp_uri, args.queue_type)
        versions = {"postgresql": common.server_version(dsn),
                    "rabbitmq": common.Management(cfg["RABBIT_MANAGEMENT_URL"]).version(),
                    "amqp": amqp.__version__, "eventlet": eventlet.__version__}

        raw, raw_ids = raw_confirm_loop(amqp_uri, args.raw_messages, correlation_id, source)
        raw["verify"] = verify(amqp_uri, RAW_QUEUE, raw_ids, "raw", failures)
        common.log(f"raw confirm loop: {raw['rate']:.0f} msg/s, confirm p50 {raw['confirm_latency_ms']['p50']} ms")
        results.add("outbox_raw_confirm_loop", round(raw["rate"], 1), "msg/s", 1.0, **raw)

        if "trickle" not in args.skip:
            rate = raw["rate"] if args.trickle_rate is None else args.trickle_rate
            tr, ids = trickle(dsn, amqp_uri, args, rate, correlation_id)
            tr["verify"] = verify(amqp_uri, EVENTS_QUEUE, ids, "trickle", failures)
            tr["ratio_goal"] = 0.8
            common.log(f"trickle: {tr['rate']:.0f} events/s (writer {tr['writer_rate']:.0f}/s), "
                       f"latency p50 {tr['latency_ms']['p50']} ms p95 {tr['latency_ms']['p95']} ms, "
                       f"relay CPU {tr['relay_cpu_us_per_event']} µs/event")
            results.add("outbox_relay_trickle", round(tr["rate"], 1), "events/s", tr["rate"] / raw["rate"], **tr)

        if "backlog" not in args.skip:
            bl, ids = backlog(dsn, amqp_uri, args, correlation_id, source)
            bl["verify"] = verify(amqp_uri, EVENTS_QUEUE, ids, "backlog", failures)
            bl["rate_goal"] = 5000
            common.log(f"backlog: {bl['rate']:.0f} events/s ({bl['events']} in {bl['elapsed_s']} s), "
                       f"relay CPU {bl['relay_cpu_utilisation']:.0%} of a core")
            results.add("outbox_relay_backlog", round(bl["rate"], 1), "events/s", bl["rate"] / raw["rate"], **bl)

    results.finish(versions)
    if failures:
        print("FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
