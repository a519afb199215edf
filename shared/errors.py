"""Domain errors that cross RPC intact and map to HTTP problem responses.

nameko serialises an exception as its class path plus `args`, and the caller
re-raises the same class only if that path is in nameko's registry of exception
classes; any other arrives as a `RemoteError`, which the gateway can only answer
with a 500. So every subclass of `DomainError`, wherever it is defined, is
registered as it is defined (`DomainError.__init_subclass__`), and the registry
finds a domain error whose module the receiving process has not imported yet.
A refusal defined in a service (`InsufficientPoints`) thus reaches the gateway
as itself and becomes its field-level 4xx; a new one needs no decorator.

Two of them say what became of a request when the broker failed it, and the HTTP
status is a promise to the caller:

- `BrokerUnavailable` (503, with Retry-After): the request never reached the
  service (the broker could not be reached, or refused it), so nothing was done;
- `OutcomeUnknown` (504): the request was handed to the broker, and no answer came
  back in time. It may have taken effect. The caller checks, or retries the same
  request: registrations are keyed by the person (a second one answers 409), and
  the operations that take a `request_id` answer a repeat with the first result.

`broker_failure` is the one place that tells which a low-level exception means.
"""
import errno
import importlib
import socket

import nameko.exceptions
from nameko.exceptions import deserialize_to_instance, get_module_path

# Where domain errors may be defined: a path outside these is never imported on a message's say-so.
_OWN_PACKAGES = ("services", "shared")


class _Registry(dict):
    """nameko's registry of the exception classes that cross RPC as themselves, keyed by class path.

    nameko's `deserialize` asks `path in registry`. A domain error raised in a module this process
    never imported (a service's own, e.g. `services.consultation.cases.Rejected` at the gateway) is
    found by importing that module, which registers its classes; a path that names anything but a
    domain error of our own packages stays unknown, and arrives as nameko's RemoteError.
    """

    def __contains__(self, key):
        return dict.__contains__(self, key) or self._find(key) is not None

    def __missing__(self, key):
        found = self._find(key)
        if found is None:
            raise KeyError(key)
        return found

    def _find(self, key):
        if not isinstance(key, str) or key.split(".", 1)[0] not in _OWN_PACKAGES:
            return None
        module, _, name = key.rpartition(".")
        try:
            found = getattr(importlib.import_module(module), name, None)
        except ImportError:
            return None
        if isinstance(found, type) and issubclass(found, DomainError) and get_module_path(found) == key:
            self[key] = found
            return found
        return None


# nameko looks the registry up by its module-level name at each call, so replacing it takes effect
# everywhere; the classes registered before this (nameko's own) are kept.
if not isinstance(nameko.exceptions.registry, _Registry):
    nameko.exceptions.registry = _Registry(nameko.exceptions.registry)


class DomainError(Exception):
    """A refusal the caller gets as a problem with `status`. Raised as `cls(message, fields)`: the two
    are the exception's `args`, which is all that crosses RPC, so a subclass adds no other state."""
    status = 400
    title = "Bad request"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        deserialize_to_instance(cls)

    def __init__(self, message, fields=None):
        super().__init__(message, fields or {})

    @property
    def message(self):
        return self.args[0]

    @property
    def fields(self):
        return self.args[1]

    def __str__(self):
        return self.message


deserialize_to_instance(DomainError)


class ValidationFailed(DomainError):
    status = 422
    title = "Validation failed"


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class BrokerUnavailable(DomainError):
    """503: the message broker could not be reached, so the request was never handed over; nothing was done."""
    status = 503
    title = "Service unavailable"
    retry_after = 5  # seconds; a broker restart takes about this long


class OutcomeUnknown(DomainError):
    """504: the request was handed over but no answer came in time; it may have taken effect."""
    status = 504
    title = "Outcome unknown"


RETRY_SAME = ("it may have taken effect: check, or send the same request again (a registration of the same person "
              "answers 409 if the first one was made; an operation with a request_id answers a repeat with the "
              "first result)")

# The broker could not be reached at all: a connection was never made, so nothing was sent on it.
_UNREACHABLE_ERRNOS = {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN}


def broker_failure(exc):
    """What a low-level exception says about the broker: None (not a broker failure), "unreachable" (no
    connection could be made, so nothing was sent) or "lost" (a connection failed while in use: what was
    being sent on it may or may not have arrived).

    Walks the chain of causes, because kombu wraps the socket's error in its OperationalError.
    """
    import amqp.exceptions
    import kombu.exceptions

    seen, found = set(), None
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, socket.gaierror) or (isinstance(exc, OSError) and exc.errno in _UNREACHABLE_ERRNOS):
            return "unreachable"
        if isinstance(exc, (amqp.exceptions.ConnectionError, kombu.exceptions.OperationalError,
                            kombu.exceptions.ConnectionError, ConnectionError,
                            socket.timeout, EOFError)) \
                or (isinstance(exc, OSError) and exc.errno in (errno.EPIPE, errno.ECONNRESET, errno.ECONNABORTED)):
            found = "lost"
        exc = exc.__cause__ or exc.__context__
    return found


def flatten(messages):
    """Nested field messages as the Problem schema has them, field -> list of strings: a nested field is
    named by its path, `{"options": {0: {"budget": [...]}}}` -> `{"options.0.budget": [...]}`."""
    flat = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        else:
            values = value if isinstance(value, (list, tuple)) else [value]
            flat.setdefault(prefix or "_schema", []).extend(values)

    walk("", messages)
    return flat


def from_marshmallow(exc, message="the request has invalid fields"):
    """Marshmallow's nested messages as `{"a.b": ["..."]}`."""
    return ValidationFailed(message, flatten(exc.normalized_messages()))


def load(schema, data):
    """Load `data` with a marshmallow schema (class or instance) or raise ValidationFailed."""
    from marshmallow import ValidationError
    if not isinstance(data, dict):
        raise ValidationFailed("the request body must be a JSON object", {"_schema": ["expected an object"]})
    try:
        loaded = (schema() if isinstance(schema, type) else schema).load(data)
    except ValidationError as exc:
        raise from_marshmallow(exc)
    problems = {}
    _storable(loaded, "", problems)
    if problems:
        raise ValidationFailed("the request has invalid fields", problems)
    return loaded


INT64 = 2 ** 63 - 1


def _storable(value, path, problems):
    """What PostgreSQL would refuse with an error (a 500) rather than a field-level message:
    NUL characters in text and integers beyond bigint. Checked once here for every schema."""
    if isinstance(value, dict):
        for key, sub in value.items():
            _storable(sub, f"{path}.{key}" if path else str(key), problems)
    elif isinstance(value, (list, tuple)):
        for i, sub in enumerate(value):
            _storable(sub, f"{path}.{i}", problems)
    elif isinstance(value, str) and "\x00" in value:
        problems[path or "_schema"] = ["must not contain NUL characters"]
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT64:
        problems[path or "_schema"] = [f"must be at most {INT64}"]
