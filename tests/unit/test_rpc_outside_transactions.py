"""The rules every RPC follows, without I/O: proxies with a deadline, and never a call inside a transaction.

A worker's `Tx` defers a remote call asked for while it holds a connection (shared/db.py); the
worker then rolls back, makes the call with nothing held, and runs again with the answer, errors
included. The integration tests (tests/integration/test_connections.py) show the same on real
PostgreSQL and RabbitMQ; these pin the mechanics, and that no service declares a proxy without it.
"""
import pytest
from nameko.rpc import RpcProxy as BareRpcProxy

from linli import SERVICES, service_class
from shared import rpc
from shared.db import Database, DatabaseUnavailable, Deferred, RpcInTransaction, TooManyRemoteCalls, Tx
from shared.errors import NotFound


class FakeConn:
    def __init__(self, log):
        self.log = log

    def execute(self, sql, params=None):
        self.log.append(sql)
        return self

    def fetchone(self):
        return {"n": 1}

    def commit(self):
        self.log.append("COMMIT")

    def rollback(self):
        self.log.append("ROLLBACK")


class FakePool:
    timeout = 1.0

    def __init__(self):
        self.log, self.out = [], 0

    def getconn(self):
        self.out += 1
        return FakeConn(self.log)

    def putconn(self, conn):
        self.out -= 1


def declared_proxies(cls):
    """Every RPC proxy the class declares or inherits (the gateway's routes come from mixins)."""
    return [(attr, getattr(cls, attr)) for attr in dir(cls) if isinstance(getattr(cls, attr, None), BareRpcProxy)]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_services_proxies_have_the_deadline_and_the_guard(name):
    proxies = declared_proxies(service_class(name))
    bare = [attr for attr, value in proxies if not isinstance(value, rpc.RpcProxy)]
    assert not bare, f"{name} calls {bare} through nameko's bare RpcProxy: no deadline, no transaction guard"


def test_the_gateways_proxies_refuse_rather_than_run_an_http_worker_twice():
    proxies = declared_proxies(service_class("gateway"))
    assert len(proxies) == 5 and all(not p.defer for _, p in proxies)


def test_a_call_with_no_connection_held_is_made_at_once_and_kept():
    tx, calls = Tx(FakePool()), []
    assert tx.outside("k", lambda: calls.append(1) or "answer") == "answer"
    assert tx.outside("k", lambda: calls.append(1) or "other") == "answer"
    assert calls == [1]


def test_a_call_asked_inside_the_transaction_is_deferred_not_made():
    pool = FakePool()
    tx, calls = Tx(pool), []
    tx.one("SELECT 1")
    with pytest.raises(Deferred) as need:
        tx.outside("k", lambda: calls.append(1) or "answer")
    assert calls == [] and pool.out == 1
    with pytest.raises(RpcInTransaction):
        tx.settle(need.value.key, need.value.call)  # the guard: not while the connection is out
    tx.finish(commit=False)
    assert tx.settle(need.value.key, need.value.call) == "answer" and calls == [1]
    tx.one("SELECT 2")
    assert tx.outside("k", lambda: "never asked") == "answer"  # the next pass finds it where it asks


def test_a_remote_error_is_kept_and_raised_where_the_next_pass_asks():
    tx = Tx(FakePool())
    tx.one("SELECT 1")

    def refuse():
        raise NotFound("no resident 9", {"resident_id": ["no resident 9"]})
    with pytest.raises(Deferred) as need:
        tx.outside("k", refuse)
    tx.finish(commit=False)
    with pytest.raises(NotFound):
        tx.settle(need.value.key, need.value.call)
    tx.one("SELECT 2")
    with pytest.raises(NotFound):
        tx.outside("k", refuse)


def test_code_that_catches_exception_does_not_swallow_a_deferral():
    """handover.receive keeps going when the registry fails; a deferral must still reach the worker."""
    assert not issubclass(Deferred, Exception)


class FakeContainer:
    service_name = "probe"
    config = {"DATABASE_URL": "postgresql://nowhere/x", "LEVEL": "street", "NODE_CODE": "310110012"}


class FakeEntrypoint:
    method_name = "work"


class FakeWorkerCtx:
    entrypoint = FakeEntrypoint()
    data = {}

    def __init__(self, service):
        self.service = service


def run_worker(method):
    """Database's worker wrapper around `method(tx)`, with a fake pool: (result, what the pool saw)."""
    db = Database(schema="probe")
    db.pool = FakePool()
    db.source, db.signer, db.txs = {"service": "probe"}, None, {}

    class Service:
        pass
    service = Service()
    ctx = FakeWorkerCtx(service)
    tx = db.get_dependency(ctx)
    service.work = lambda: method(tx)
    db.worker_setup(ctx)
    return service.work(), db.pool


def test_the_worker_rolls_back_calls_and_runs_again_committing_once():
    passes = []

    def work(tx):
        passes.append(1)
        tx.execute("INSERT before")
        answer = tx.outside("k", lambda: "remote")
        tx.execute(f"INSERT {answer}")
        return answer

    result, pool = run_worker(work)
    assert result == "remote" and len(passes) == 2 and pool.out == 0
    assert pool.log == ["INSERT before", "ROLLBACK", "INSERT before", "INSERT remote", "COMMIT"]


def test_a_worker_that_never_settles_fails_instead_of_looping():
    counter = iter(range(10 ** 6))

    def work(tx):
        tx.execute("SELECT 1")
        return tx.outside(next(counter), lambda: "new key every pass")

    with pytest.raises(TooManyRemoteCalls, match="more than 100 remote answers") as err:
        run_worker(work)
    assert err.value.status == 503  # a clear problem for the HTTP caller, not a bare 500


def test_a_late_service_is_a_504_outcome_unknown_for_the_http_caller():
    """Asked and not answered in time: it may have done it, so not a 503 (which says nothing was done)."""
    import json

    from nameko.exceptions import deserialize, serialize

    from services.gateway.http import ApiHandler, PROBLEM
    exc = rpc.ServiceTimeout("registry did not answer within 10s")
    again = deserialize(serialize(exc))
    assert type(again) is type(exc)
    resp = ApiHandler("GET", "/x").response_from_exception(again)
    body = json.loads(resp.get_data())
    assert resp.status_code == 504 and resp.mimetype == PROBLEM and "Retry-After" not in resp.headers
    assert body["title"] == "Outcome unknown" and body["detail"] == str(exc)


@pytest.mark.parametrize("exc", [DatabaseUnavailable("the database is busy: no connection was free within 10s"),
                                 TooManyRemoteCalls("points.match_handovers asked for more than 100 remote answers "
                                                    "with its transaction open; nothing was changed")])
def test_a_busy_database_is_a_503_problem_for_the_http_caller(exc):
    import json

    from nameko.exceptions import deserialize, serialize

    from services.gateway.http import ApiHandler, PROBLEM
    again = deserialize(serialize(exc))  # as it arrives at the gateway from the service that raised it
    assert type(again) is type(exc)
    resp = ApiHandler("GET", "/x").response_from_exception(again)
    body = json.loads(resp.get_data())
    assert resp.status_code == 503 and resp.mimetype == PROBLEM and resp.headers["Retry-After"] == "5"
    assert body["title"] == "Service unavailable" and body["detail"] == str(exc)
