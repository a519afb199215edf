"""RPC between services: a deadline on every call, no call while a transaction holds a connection,
and an honest answer when the broker fails a call.

`RpcProxy` is nameko's, with these rules added to every method call:

- A deadline (RPC_TIMEOUT_SECONDS): a service that does not answer in time raises
  `ServiceTimeout` instead of holding the worker (and its caller's worker, and so on up to the
  gateway) for as long as the callee takes. The request message carries the deadline as its
  TTL, so a request still queued when its caller has given up (the broker was away, or the
  service is stopped) is dropped by the broker, never run late.
- Never inside the worker's transaction. A call asked for while the worker's `Tx` holds a
  connection is deferred (shared/db.py): the worker rolls back, makes the call with no connection
  held, and runs again with the answer. A worker that cannot run again (`defer=False`, for HTTP
  entrypoints whose request body is read once) raises `RpcInTransaction` instead: a bug, found by
  the tests.
- What a failure means for the request (shared/errors.py). The request is published in two steps:
  first a connection is made ready (a pooled one the broker has closed meanwhile, say because it
  restarted, is found here, before anything is sent on it), then the message is sent once, with
  a publisher confirm and no blind retry. A failure in the first step, or the deadline passing
  during it, means nothing was sent: `BrokerUnavailable` (503). A failure while sending, or no
  answer by the deadline after sending, means the service may have done it: `OutcomeUnknown`
  (504; `ServiceTimeout` is one).

The other side: a service whose reply cannot be sent because the broker went away logs it and
drops it (`_guard_replies`, installed on import) instead of letting the error kill its container
and the process. The request stays unacknowledged; the broker redelivers it only within its TTL,
and the caller's deadline answers for the lost reply.
"""
import json
import logging
import socket

import eventlet
from kombu.exceptions import ChannelError
from nameko import rpc as nameko_rpc
from nameko.amqp.publish import Publisher, UndeliverableMessage, get_producer
from nameko.constants import DEFAULT_TRANSPORT_OPTIONS, PERSISTENT
from nameko.exceptions import UnknownService

from shared.db import Database, RpcInTransaction
from shared.errors import RETRY_SAME, BrokerUnavailable, OutcomeUnknown, broker_failure

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
CONNECT_RETRIES = 2  # a refused connection is tried again this often (nothing was sent; it is safe)


class ServiceTimeout(OutcomeUnknown):
    """504: the service was asked and did not answer within the deadline; the change may have been made."""


class RpcProxy(nameko_rpc.RpcProxy):
    """nameko's RpcProxy with a deadline, that never calls while the worker's transaction is open."""

    def __init__(self, target_service, defer=True, **options):
        super().__init__(target_service, **options)
        self.defer = defer

    def get_dependency(self, worker_ctx):
        proxy = super().get_dependency(worker_ctx)
        timeout = float(self.container.config.get("RPC_TIMEOUT_SECONDS", DEFAULT_TIMEOUT))
        databases = [d for d in self.container.dependencies if isinstance(d, Database)]
        return ServiceProxy(proxy, self.target_service, timeout, lambda: _txs(databases, worker_ctx), self.defer)


def _txs(databases, worker_ctx):
    """The worker's transactions, looked up at call time (dependencies are injected in no set order)."""
    return [tx for tx in (d.txs.get(worker_ctx) for d in databases) if tx is not None]


class ServiceProxy:
    def __init__(self, proxy, service, timeout, txs, defer):
        self._proxy, self._service, self._timeout, self._txs, self._defer = proxy, service, timeout, txs, defer

    def with_deadline(self, seconds):
        """The same proxy with another deadline, for calls known to take long (an import, a rebuild)."""
        return ServiceProxy(self._proxy, self._service, float(seconds), self._txs, self._defer)

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)
        return MethodProxy(self, method)


class MethodProxy:
    def __init__(self, parent, method):
        self.parent, self.method = parent, method

    def __call__(self, *args, **kwargs):
        p = self.parent
        call = lambda: self._call(args, kwargs)  # noqa: E731
        txs = sorted(p._txs(), key=lambda tx: not tx.open)  # an open one first
        if not txs or not p._defer:
            return call()  # the guard in _call refuses it if a transaction is open
        # Kept by the worker's Tx even when made at once: a later pass of the same worker (after a
        # deferral) finds the answer instead of asking again.
        key = (p._service, self.method, json.dumps([args, kwargs], sort_keys=True, default=str))
        return txs[0].outside(key, call)

    def _call(self, args, kwargs):
        p = self.parent
        if any(tx.open for tx in p._txs()):  # the guard: every path to the wire passes here
            raise RpcInTransaction(f"{p._service}.{self.method} called while a transaction holds a connection")
        nameko_proxy = p._proxy
        method = _Method(nameko_proxy.worker_ctx, nameko_proxy.service_name, self.method,
                         nameko_proxy.reply_listener, **nameko_proxy.options)
        publisher = method.publisher
        publisher.ttl = p._timeout
        what = f"{p._service}.{self.method}"
        timer = eventlet.Timeout(p._timeout)
        try:
            reply = method.call_async(*args, **kwargs)
            return reply.result()
        except eventlet.Timeout as exc:
            if exc is not timer:
                raise
            if not publisher.sending:
                raise BrokerUnavailable(f"{what} was not sent: the message broker could not be reached within "
                                        f"{p._timeout:g}s; nothing was done, try again") from None
            raise ServiceTimeout(f"{p._service} did not answer within {p._timeout:g}s; {RETRY_SAME}") from None
        except (BrokerUnavailable, OutcomeUnknown):
            raise
        except UnknownService:
            # The request was returned unroutable: no instance of the service is consuming, so it was not
            # asked. The same answer as a broker that cannot be reached: 503, nothing was done.
            raise BrokerUnavailable(f"{what} was not sent: no {p._service} service is running to answer it; "
                                    "nothing was done, try again") from None
        except Exception as exc:
            failure = broker_failure(exc)
            if failure is None:
                raise
            log.warning("RPC %s failed at the broker (%s): %r", what, "before sending" if not publisher.sending
                        else "while sending", exc)
            if not publisher.sending:
                raise BrokerUnavailable(f"{what} was not sent: the message broker is unavailable; nothing was "
                                        "done, try again") from exc
            raise OutcomeUnknown(f"{what}: the connection to the message broker failed while the request was "
                                 f"being sent; {RETRY_SAME}") from exc
        finally:
            timer.cancel()


class _RequestPublisher(Publisher):
    """Publishes one RPC request, remembering whether anything may have left (see the module doc)."""

    ttl = None
    sending = False

    def publish(self, payload, **kwargs):
        headers = dict(kwargs.pop("extra_headers", {}))
        options = {**DEFAULT_TRANSPORT_OPTIONS, "confirm_publish": True}
        with get_producer(self.amqp_uri, True, self.ssl, self.login_method, options) as producer:
            _ready(producer.connection)
            self.sending = True
            try:
                producer.publish(payload, headers=headers, delivery_mode=PERSISTENT, serializer=self.serializer,
                                 expiration=self.ttl, retry=False, **kwargs)
            except ChannelError as exc:
                if "NO_ROUTE" in str(exc):  # returned unrouted: no service takes it, nothing was queued
                    self.sending = False
                    raise UndeliverableMessage()
                raise


class _Method(nameko_rpc.MethodProxy):
    publisher_cls = _RequestPublisher


def _ready(conn):
    """Make `conn` ready to send on, or raise BrokerUnavailable: nothing has been sent on it yet.

    A pooled connection that the broker closed meanwhile still looks connected; what the broker said
    (connection.close, or the socket's end) is waiting on it, so read it without waiting.
    """
    if conn.connected:
        try:
            conn.drain_events(timeout=0)
        except socket.timeout:
            return  # open and quiet: ready
        except Exception as exc:
            if broker_failure(exc) is None:
                raise
            log.info("a pooled broker connection was closed by the broker (%r); connecting again", exc)
            conn.collect()
        else:
            return
    try:
        conn.ensure_connection(max_retries=CONNECT_RETRIES, interval_start=0.2, interval_step=0.4,
                               interval_max=1.0, timeout=2)
    except Exception as exc:
        if broker_failure(exc) is None:
            raise
        raise BrokerUnavailable("the message broker is unavailable; nothing was sent, try again") from exc


def _guard_replies():
    """A reply the broker cannot take is logged and dropped, not raised into nameko's worker thread:
    there an exception kills the container, and the process with it."""
    original = nameko_rpc.RpcConsumer.handle_result
    if getattr(original, "linli_guarded", False):
        return

    def handle_result(self, message, result, exc_info):
        try:
            return original(self, message, result, exc_info)
        except Exception as exc:
            if broker_failure(exc) is None:
                raise
            log.error("RPC reply not sent, the message broker is unavailable (%r): dropped; the caller's deadline "
                      "answers for it", exc, extra={"routing_key": message.delivery_info.get("routing_key"),
                                                    "service": self.container.service_name})
            return result, exc_info

    handle_result.linli_guarded = True
    nameko_rpc.RpcConsumer.handle_result = handle_result


def _guard_acks():
    """nameko's QueueConsumer gives up on an ack or requeue only for amqp's ConnectionError; a socket
    the broker reset raises the builtin one (ConnectionResetError) from a reply listener's or a
    consumer's ack, and that killed the container (seen in the chaos suite, in points, whose RPC
    reply arrived as the broker stopped). The broker returns an unacknowledged message to its queue
    by itself when the connection goes, so there is nothing left to do but say so."""
    from nameko.messaging import QueueConsumer
    for name in ("ack_message", "requeue_message"):
        original = getattr(QueueConsumer, name)
        if getattr(original, "linli_guarded", False):
            continue

        def guarded(self, message, _original=original, _name=name):
            try:
                return _original(self, message)
            except OSError as exc:
                log.warning("%s: the broker connection is gone (%r); the broker takes the message back",
                            _name, exc)
        guarded.linli_guarded = True
        setattr(QueueConsumer, name, guarded)


_guard_replies()
_guard_acks()
