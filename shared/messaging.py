"""Broker topology and the reliable event handler.

Every queue a Linli handler consumes is a durable quorum queue with a
dead-letter exchange and a delivery limit: a handler that raises has its
message requeued, the broker counts the redelivery, and after `MAX_DELIVERIES`
the message moves to `<queue>.dlq` instead of looping forever or vanishing
(nameko's default `requeue_on_error=False` would ack and lose it).

`linli topology apply` declares the same queues the handlers declare, so they
exist before any relay publishes; both use `handler_queue` so they never differ.
"""
import inspect
import logging
from urllib.parse import quote, unquote, urlsplit

import requests
from kombu import Connection, Exchange, Queue
from nameko.events import EventHandler
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.messaging import Consumer

log = logging.getLogger(__name__)

DLX = Exchange("linli.dlx", type="direct", durable=True)
FACTS = Exchange("facts", type="topic", durable=True)
DIRECTIVES = Exchange("directives", type="topic", durable=True)


def events_exchange(service):
    # Same attributes as nameko's get_event_exchange, or re-declaring would fail.
    return Exchange(f"{service}.events", type="topic", durable=True, auto_delete=False)


HANDOVERS = Exchange("handovers", type="topic", durable=True)
# Matters escalated from a street to its district: federated upward like `facts`, but apart from it,
# so a department's feed bound to `facts` never sees them.
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


class ReliableEventHandler(EventHandler):
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


class ReliableConsumer(Consumer):
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


def ensure_vhost(management_url, amqp_uri):
    """Create the AMQP URI's vhost through the management API if it is missing."""
    vhost = unquote(urlsplit(amqp_uri).path[1:]) or "/"
    parts = urlsplit(management_url)
    auth = (unquote(parts.username or "guest"), unquote(parts.password or "guest"))
    base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}"
    user = unquote(urlsplit(amqp_uri).username or "guest")
    r = requests.put(f"{base}/api/vhosts/{quote(vhost, safe='')}", auth=auth, timeout=10)
    r.raise_for_status()
    r = requests.put(f"{base}/api/permissions/{quote(vhost, safe='')}/{quote(user, safe='')}",
                     json={"configure": ".*", "write": ".*", "read": ".*"}, auth=auth, timeout=10)
    r.raise_for_status()
    return vhost


def apply_topology(config, service_classes):
    """Declare exchanges, handler queues and their dead-letter queues; returns what was declared."""
    declared = []
    with Connection(config["AMQP_URI"]) as conn:
        channel = conn.default_channel
        for exchange in (DLX, FACTS, DIRECTIVES, HANDOVERS, CASES):
            exchange(channel).declare()
            declared.append(f"exchange {exchange.name}")
        for service_cls in service_classes:
            events_exchange(service_cls.name)(channel).declare()
            declared.append(f"exchange {service_cls.name}.events")
        for service_cls in service_classes:
            for method, ext in handlers_of(service_cls):
                if isinstance(ext, ReliableConsumer):
                    queue = ext.queue_for(service_cls.name, method, config.get("MAX_DELIVERIES", 5))
                else:
                    events_exchange(ext.source_service)(channel).declare()
                    queue = handler_queue(ext.source_service, ext.event_type, service_cls.name, method,
                                          config.get("MAX_DELIVERIES", 5))
                declare_queue(conn, queue)
                declared.append(f"queue {queue.name} (+ .dlq)")
            # Queues consumed outside nameko's entrypoints (e.g. the aggregator's batching consumer).
            for queue in getattr(service_cls, "topology_queues", lambda cfg: [])(config):
                declare_queue(conn, queue)
                declared.append(f"queue {queue.name} (+ .dlq)")
    return declared
