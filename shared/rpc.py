"""RPC between services: a deadline on every call, and no call while a transaction holds a connection.

`RpcProxy` is nameko's, with two rules added to every method call:

- A deadline (RPC_TIMEOUT_SECONDS): a service that does not answer in time raises
  `ServiceTimeout`, a 503 problem for the HTTP caller, instead of holding the worker (and its
  caller's worker, and so on up to the gateway) for as long as the callee takes.
- Never inside the worker's transaction. A call asked for while the worker's `Tx` holds a
  connection is deferred (shared/db.py): the worker rolls back, makes the call with no connection
  held, and runs again with the answer. A worker that cannot run again (`defer=False`, for HTTP
  entrypoints whose request body is read once) raises `RpcInTransaction` instead: a bug, found by
  the tests.
"""
import json

import eventlet
from nameko import rpc as nameko_rpc
from nameko.exceptions import deserialize_to_instance

from shared.db import Database, RpcInTransaction
from shared.errors import DomainError

DEFAULT_TIMEOUT = 10.0


@deserialize_to_instance
class ServiceTimeout(DomainError):
    """503: the service asked did not answer within the deadline."""
    status = 503
    title = "Service unavailable"


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
        timer = eventlet.Timeout(p._timeout)
        try:
            return getattr(p._proxy, self.method)(*args, **kwargs)
        except eventlet.Timeout as exc:
            if exc is not timer:
                raise
            raise ServiceTimeout(f"{p._service} did not answer within {p._timeout:g}s") from None
        finally:
            timer.cancel()
