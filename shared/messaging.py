"""Broker topology and the reliable event handler.

Every queue a Linli handler consumes is a durable quorum queue with a
dead-letter exchange and a delivery limit: a handler that raises has its
message requeued, the broker counts the redelivery, and after `MAX_DELIVERIES`
the message moves to `<queue>.dlq` instead of looping forever or vanishing
(nameko's default `requeue_on_error=False` would ack and lose it).

`linli topology apply` declares the same queues the handlers declare, so they
exist before any relay publishes; both use `handler_queue` so they never differ.

It also gives each `<service>.events` exchange an alternate exchange, so an
event no queue is bound for (nobody consumes it yet) is kept in the bounded
`<service>.events.unrouted` queue instead of coming back to the outbox as
unroutable and being retried for ever. nameko declares the events exchanges
without arguments, and existing vhosts already have them, so the alternate
exchange is set by a policy (one per service, `linli-unrouted-<service>`),
which applies to an existing exchange without redeclaring it. Only one policy
applies to an exchange, so these patterns name one events exchange each and
never match `facts`, `cases` or `directives`, whose federation policies
(shared.federation) must keep applying; their priority is below the
federation policies' so that even an overlap would not unfederate anything.
The unrouted queue keeps the newest `UNROUTED_MAX_LENGTH` events (drop-head).
"""
import inspect
import logging
import re
from urllib.parse import quote, unquote, urlsplit

import requests
from amqp.exceptions import NotFound as ChannelNotFound
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry
from kombu import Connection, Exchange, Queue
from nameko.events import EventHandler
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.messaging import Consumer

from shared import rpc as _rpc  # noqa: F401  every service imports this module: installs rpc's reply guard
from shared.errors import broker_failure

log = logging.getLogger(__name__)

DLX = Exchange("linli.dlx", type="direct", durable=True)
FACTS = Exchange("facts", type="topic", durable=True)
DIRECTIVES = Exchange("directives", type="topic", durable=True)


def events_exchange(service):
    # Same attributes as nameko's get_event_exchange, or re-declaring would fail.
    return Exchange(f"{service}.events", type="topic", durable=True, auto_delete=False)


# Events no queue takes: each service's are kept, newest first, up to this many (x-max-length, drop-head).
UNROUTED_MAX_LENGTH = 10_000
UNROUTED_POLICY_PRIORITY = 0  # below the federation policies' 10 (see the module doc)


def unrouted_name(service):
    """The alternate exchange of `<service>.events`, and the queue that keeps what it gets."""
    return f"{service}.events.unrouted"


def unrouted_policy(service):
    return f"linli-unrouted-{service}"


def unrouted_queue(service, max_length=UNROUTED_MAX_LENGTH):
    # Fanout: everything the events exchange could not route, whatever its routing key (event type).
    exchange = Exchange(unrouted_name(service), type="fanout", durable=True, auto_delete=False)
    return Queue(unrouted_name(service), exchange=exchange, routing_key="", durable=True, auto_delete=False,
                 queue_arguments={"x-max-length": max_length, "x-overflow": "drop-head"})


HANDOVERS = Exchange("handovers", type="topic", durable=True)
# The departments' feed: changed roll-ups under the small-cell rule (aggregator figures.feed_messages),
# never facts. Routed to each department's `feed-<name>` queue (federation.feed_user); while no
# department reads it, what nobody takes goes to a bounded queue instead of back to the outbox.
FEED_UNROUTED = Exchange("feed.unrouted", type="fanout", durable=True, auto_delete=False)
FEED = Exchange("feed", type="topic", durable=True, arguments={"alternate-exchange": FEED_UNROUTED.name})
FEED_UNROUTED_QUEUE = Queue(FEED_UNROUTED.name, exchange=FEED_UNROUTED, routing_key="", durable=True,
                            auto_delete=False, queue_arguments={"x-max-length": 10_000, "x-overflow": "drop-head"})
# Matters escalated from a street to its district: federated upward like `facts`, but apart from it.
CASES = Exchange("cases", type="topic", durable=True)


def handler_queue(source_service, event_type, service, method, max_deliveries):
    name = f"evt-{source_service}-{event_type}--{service}.{method}"
    return durable_queue(name, events_exchange(source_service), event_type, max_deliveries)


def durable_queue(name, exchange, routing_key, max_deliveries):
    return Queue(name, exchange=exchange, routing_key=routing_key,
                 durable=True, auto_delete=False,
                 queue_arguments={"x-queue-type": "quorum",
                                  "x-dead-letter-exchange": DLX.name,
                                  "x-dead-letter-routing-key": name,
                                  "x-delivery-limit": max_deliveries})


def dead_letter_queue(queue_name):
    return Queue(f"{queue_name}.dlq", exchange=DLX, routing_key=queue_name, durable=True)


class _AckWhileAway:
    """An ack or requeue on a connection the broker has just dropped is logged, not raised: raised in
    nameko's worker thread it would kill the container. The broker already holds the message
    unacknowledged and delivers it again on the new connection; the handler is idempotent."""

    def handle_message_processed(self, message, result=None, exc_info=None):
        try:
            super().handle_message_processed(message, result, exc_info)
        except Exception as exc:
            if broker_failure(exc) is None:
                raise
            log.warning("message not acknowledged, the broker connection is gone (%r): it will be delivered "
                        "again", exc)


class ReliableEventHandler(_AckWhileAway, EventHandler):
    """A SERVICE_POOL event handler on a quorum queue that requeues on error (see module doc)."""

    def __init__(self, source_service, event_type, **kwargs):
        kwargs.setdefault("requeue_on_error", True)
        super().__init__(source_service, event_type, **kwargs)

    def setup(self):
        cfg = self.container.config
        self.queue = handler_queue(self.source_service, self.event_type, self.container.service_name,
                                   self.method_name, cfg.get("MAX_DELIVERIES", 5))
        with Connection(cfg["AMQP_URI"]) as conn:
            declare_queue(conn, self.queue)
        Consumer.setup(self)


handle_event = ReliableEventHandler.decorator


class ReliableConsumer(_AckWhileAway, Consumer):
    """Like ReliableEventHandler, for a message exchange that is not a nameko event exchange."""

    def __init__(self, exchange, routing_key, **kwargs):
        self.exchange, self.routing_key = exchange, routing_key
        kwargs.setdefault("requeue_on_error", True)
        super().__init__(queue=None, **kwargs)

    def queue_for(self, service, method, max_deliveries):
        return durable_queue(f"msg-{self.exchange.name}-{self.routing_key}--{service}.{method}", self.exchange,
                             self.routing_key, max_deliveries)

    def setup(self):
        cfg = self.container.config
        self.queue = self.queue_for(self.container.service_name, self.method_name, cfg.get("MAX_DELIVERIES", 5))
        with Connection(cfg["AMQP_URI"]) as conn:
            declare_queue(conn, self.queue)
        super().setup()


consume = ReliableConsumer.decorator


def consume_until_stopped(consume, running, what):
    """Run `consume()` (one connection's worth of consuming) again and again while `running()`,
    backing off from 0.5 s to 10 s after a failure: a consumer of our own outlives a broker or
    database outage, and its unacknowledged messages return to the queue meanwhile."""
    import eventlet
    backoff = 0.5
    while running():
        try:
            consume()
            backoff = 0.5
        except Exception as exc:
            log.warning("%s: %s; reconnecting in %.1fs", what, exc, backoff)
            eventlet.sleep(backoff)
            backoff = min(backoff * 2, 10)


def declare_queue(conn, queue):
    channel = conn.default_channel
    DLX(channel).declare()
    dead_letter_queue(queue.name)(channel).declare()
    queue(channel).declare()


def handlers_of(service_cls):
    for name, method in inspect.getmembers(service_cls, inspect.isfunction):
        for ext in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(ext, (ReliableEventHandler, ReliableConsumer)):
                yield name, ext


# What an operator's change (topology apply, child add, parent set) gives the management API. A busy
# broker (just restarted, or still deleting a vhost's quorum queues) answers it late, or 5xx for a
# moment: `child add` once failed a CI run on a 10 s read timeout. Every such call is idempotent
# (PUTs and DELETEs of named objects, GETs, POSTs of a binding that exists at most once), so it is
# tried again with back-off. What a running service reads there (freshness, the operator's view)
# stays quick and asks once: it shows "unknown" rather than hold a worker.
PATIENT_TIMEOUT = (5, 30)  # seconds to connect, to read


def patient_session():
    """requests, trying a management call again on a timeout, a refused connection or a 5xx."""
    retry = Retry(total=3, backoff_factor=1, status_forcelist=(500, 502, 503, 504), allowed_methods=None,
                  raise_on_status=False)
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def ensure_vhost(management_url, amqp_uri):
    """Create the AMQP URI's vhost through the management API if it is missing."""
    vhost = unquote(urlsplit(amqp_uri).path[1:]) or "/"
    parts = urlsplit(management_url)
    auth = (unquote(parts.username or "guest"), unquote(parts.password or "guest"))
    base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}"
    user = unquote(urlsplit(amqp_uri).username or "guest")
    http = patient_session()
    r = http.put(f"{base}/api/vhosts/{quote(vhost, safe='')}", auth=auth, timeout=PATIENT_TIMEOUT)
    r.raise_for_status()
    r = http.put(f"{base}/api/permissions/{quote(vhost, safe='')}/{quote(user, safe='')}",
                 json={"configure": ".*", "write": ".*", "read": ".*"}, auth=auth, timeout=PATIENT_TIMEOUT)
    r.raise_for_status()
    return vhost


def _management(management_url, amqp_uri):
    """(API base URL, auth, quoted vhost) for a management URL and the vhost of an AMQP URI."""
    parts = urlsplit(management_url)
    auth = (unquote(parts.username or "guest"), unquote(parts.password or "guest"))
    vhost = quote(unquote(urlsplit(amqp_uri).path[1:]) or "/", safe="")
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}/api", auth, vhost


def set_unrouted_policy(management_url, amqp_uri, service):
    """Point `<service>.events` at its alternate exchange, by policy (see the module doc)."""
    base, auth, vhost = _management(management_url, amqp_uri)
    r = patient_session().put(
        f"{base}/policies/{vhost}/{quote(unrouted_policy(service), safe='')}", auth=auth, timeout=PATIENT_TIMEOUT,
        json={"pattern": f"^{re.escape(events_exchange(service).name)}$", "apply-to": "exchanges",
              "definition": {"alternate-exchange": unrouted_name(service)}, "priority": UNROUTED_POLICY_PRIORITY})
    r.raise_for_status()


def unrouted_depths(amqp_uri, services):
    """{service: events kept in its unrouted queue, or None where there is no such queue}."""
    depths = {}
    with Connection(amqp_uri, connect_timeout=5) as conn:
        for service in services:
            # A channel each: a passive declare of a missing queue closes the channel it was sent on.
            channel = conn.channel()
            try:
                depths[service] = channel.queue_declare(unrouted_name(service), passive=True).message_count
            except ChannelNotFound:
                depths[service] = None
            finally:
                try:
                    channel.close()
                except Exception:  # the broker already closed it
                    pass
    return depths


def apply_topology(config, service_classes):
    """Declare exchanges, handler queues and their dead-letter queues, and each events exchange's
    alternate exchange with its unrouted queue; returns what was declared."""
    declared = []
    max_length = config.get("UNROUTED_MAX_LENGTH", UNROUTED_MAX_LENGTH)
    with Connection(config["AMQP_URI"]) as conn:
        channel = conn.default_channel
        for exchange in (DLX, FACTS, DIRECTIVES, HANDOVERS, CASES, FEED_UNROUTED):
            exchange(channel).declare()
            declared.append(f"exchange {exchange.name}")
        FEED_UNROUTED_QUEUE(channel).declare()
        FEED(channel).declare()
        declared += [f"queue {FEED_UNROUTED.name} (at most 10000, oldest dropped)", f"exchange {FEED.name}"]
        # Every events exchange declared here: the services' own and those their handlers read.
        event_sources = {cls.name for cls in service_classes}
        event_sources |= {ext.source_service for cls in service_classes for _, ext in handlers_of(cls)
                          if isinstance(ext, ReliableEventHandler)}
        for source in sorted(event_sources):
            events_exchange(source)(channel).declare()
            declared.append(f"exchange {source}.events")
            # The alternate exchange and its queue exist before the policy names them: a policy
            # naming a missing alternate exchange makes the broker return what it cannot route.
            unrouted_queue(source, max_length)(channel).declare()
            declared.append(f"queue {unrouted_name(source)} (at most {max_length}, oldest dropped)")
        if config.get("RABBIT_MANAGEMENT_URL"):
            from shared import federation  # federation imports this module
            management = federation.Management(config["RABBIT_MANAGEMENT_URL"], config["AMQP_URI"], patient=True)
            declared += [f"queue {q} moved from facts to feed" for q in federation.move_feed_queues(management)]
            for source in sorted(event_sources):
                set_unrouted_policy(config["RABBIT_MANAGEMENT_URL"], config["AMQP_URI"], source)
                declared.append(f"policy {unrouted_policy(source)}: {source}.events -> {unrouted_name(source)}")
        else:
            log.warning("no RABBIT_MANAGEMENT_URL: events no queue takes stay in the outboxes and are retried")
        for service_cls in service_classes:
            for method, ext in handlers_of(service_cls):
                if isinstance(ext, ReliableConsumer):
                    queue = ext.queue_for(service_cls.name, method, config.get("MAX_DELIVERIES", 5))
                else:
                    queue = handler_queue(ext.source_service, ext.event_type, service_cls.name, method,
                                          config.get("MAX_DELIVERIES", 5))
                declare_queue(conn, queue)
                declared.append(f"queue {queue.name} (+ .dlq)")
            # Queues consumed outside nameko's entrypoints (e.g. the aggregator's batching consumer).
            for queue in getattr(service_cls, "topology_queues", lambda cfg: [])(config):
                declare_queue(conn, queue)
                declared.append(f"queue {queue.name} (+ .dlq)")
    return declared
