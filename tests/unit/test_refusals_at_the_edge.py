"""Every exception class the services and shared/ define reaches an HTTP caller with the status it means.

The classes are found by walking the source files under services/ and shared/ (not the packages: a
service directory without an __init__.py is a namespace package, which pkgutil does not descend into),
so a class added tomorrow is held to this too. Each one is raised the way it reaches the gateway: one
defined outside services/gateway is raised in a service's worker, so it goes through nameko's
serialisation of an RPC reply (serialize, the JSON of the message, deserialize) first; then
`ApiHandler.response_from_exception` answers it.

A domain error (`DomainError`) must arrive as its own class and be answered with its own status, a
4xx or the broker's 503/504, with its message and fields. Anything else must be listed below with
the status it gives and why: a 500 is a fault of ours, never a refusal, so a new exception class that
would become a 500 fails here until someone decides that is what it is.
"""
import importlib
import json
import pathlib

import pytest
import nameko.exceptions
from nameko.exceptions import RemoteError, deserialize, get_module_path, serialize

from services.gateway.http import ApiHandler
from shared.errors import DomainError

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Exceptions that are not refusals, with the status an HTTP caller gets if one reaches the gateway.
NOT_REFUSALS = {
    "services.gateway.http.ServiceUnavailable": (503, "the gateway could not reach a service"),
    "shared.outbox.BrokerUnavailable": (503, "a worker's publish failed at the broker; its transaction rolled back"),
    "services.gateway.routes.ReplyMismatch": (500, "a service's reply is not what its declaration promises: our bug"),
    "shared.db.RpcInTransaction": (500, "a worker called out with its transaction open: our bug"),
    "services.notification.channels.ProviderDown": (500, "raised and handled inside the sender, which serves no "
                                                          "HTTP caller"),
    "shared.federation.FederationError": (500, "the management API of the broker failed; raised to the CLI and "
                                               "the aggregator's timer, never in answer to a request"),
    "shared.config.ConfigError": (500, "a process refuses to start; never raised while serving"),
    "shared.migrations.MigrationError": (500, "`linli migrate` refuses; never raised while serving"),
    "shared.wakeup.Stopped": (500, "a loop that is stopping; never raised while serving"),
}
# Constructor arguments for the classes that do not take a message.
ARGS = {"shared.config.ConfigError": ({"AMQP_URI": "missing"},)}


def _module_names():
    for path in sorted([*(ROOT / "services").rglob("*.py"), *(ROOT / "shared").rglob("*.py")]):
        parts = path.relative_to(ROOT).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exception_classes():
    found = {}
    for name in _module_names():
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Exception) and obj.__module__ == name:
                found[get_module_path(obj)] = obj
    return found


CLASSES = _exception_classes()


def over_rpc(exc):
    """What the caller of an RPC re-raises when the service's worker raised `exc`."""
    return deserialize(json.loads(json.dumps(serialize(exc))))


def at_the_edge(cls):
    """(the exception the gateway handles, its answer) when `cls` is raised where it is raised."""
    path = get_module_path(cls)
    if issubclass(cls, DomainError):
        exc = cls("这次请求被拒绝了", {"amount": ["only 10 points are available"]})
    else:
        exc = cls(*ARGS.get(path, ("something failed",)))
    arrived = exc if path.startswith("services.gateway.") else over_rpc(exc)
    return arrived, ApiHandler("GET", "/x").response_from_exception(arrived)


def test_the_walk_finds_the_exceptions_of_every_service_and_of_shared():
    # The classes whose refusals once became 500s are among them (services/points has no __init__.py).
    for path in ("services.points.rules.InsufficientPoints", "services.consultation.cases.Rejected",
                 "shared.errors.Conflict", "shared.rpc.ServiceTimeout"):
        assert path in CLASSES


@pytest.mark.parametrize("path", sorted(CLASSES))
def test_each_exception_gives_its_status_at_the_http_edge(path):
    cls = CLASSES[path]
    arrived, resp = at_the_edge(cls)
    body = json.loads(resp.get_data())
    assert resp.mimetype == "application/problem+json" and body["status"] == resp.status_code
    if issubclass(cls, DomainError):
        assert type(arrived) is cls, f"{path} crossed RPC as {arrived!r}"
        assert cls.status < 500 or cls.status in (503, 504), f"{path} declares {cls.status}: a refusal is a 4xx"
        assert resp.status_code == cls.status
        assert (body["title"], body["detail"], body["errors"]) == (cls.title, "这次请求被拒绝了",
                                                                   {"amount": ["only 10 points are available"]})
    else:
        assert path in NOT_REFUSALS, (f"{path} reaches an HTTP caller as {resp.status_code}: make it a "
                                      f"DomainError with its status, or list it in NOT_REFUSALS with why")
        assert resp.status_code == NOT_REFUSALS[path][0]


def test_every_class_listed_as_not_a_refusal_exists_and_is_not_a_domain_error():
    for path in NOT_REFUSALS:
        assert path in CLASSES and not issubclass(CLASSES[path], DomainError), path


def test_a_domain_error_crosses_rpc_to_a_process_that_never_imported_its_module():
    # As the gateway, which does not import services.consultation.cases: nameko's registry entry is gone,
    # and the class is found again from the path the reply names.
    cls = CLASSES["services.consultation.cases.Rejected"]
    del nameko.exceptions.registry[get_module_path(cls)]
    arrived = over_rpc(cls("the case is signed by another street", {"signature": ["not ours"]}))
    assert type(arrived) is cls and arrived.fields == {"signature": ["not ours"]}


def test_a_path_outside_our_packages_or_not_a_domain_error_stays_a_remote_error():
    for path in ("shared.db.RpcInTransaction", "shared.errors.no_such_class", "shared.no_such_module.Error",
                 "json.JSONDecodeError", None):
        arrived = deserialize({"exc_path": path, "exc_type": "Error", "exc_args": ["x"], "value": "x"})
        assert isinstance(arrived, RemoteError), path
    assert isinstance(over_rpc(ValueError("x")), RemoteError)
