"""Domain errors that cross RPC intact and map to HTTP problem responses.

nameko serialises an exception as its class path plus `args`; registering the
classes with `deserialize_to_instance` makes the caller re-raise the same class,
so the gateway can turn a registry refusal into a field-level 4xx.

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
import socket

from nameko.exceptions import deserialize_to_instance


class DomainError(Exception):
    status = 400
    title = "Bad request"

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


@deserialize_to_instance
class ValidationFailed(DomainError):
    status = 422
    title = "Validation failed"


@deserialize_to_instance
class NotFound(DomainError):
    status = 404
    title = "Not found"


@deserialize_to_instance
class Conflict(DomainError):
    status = 409
    title = "Conflict"


@deserialize_to_instance
class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"


@deserialize_to_instance
class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


@deserialize_to_instance
class BrokerUnavailable(DomainError):
    """503: the message broker could not be reached, so the request was never handed over; nothing was done."""
    status = 503
    title = "Service unavailable"
    retry_after = 5  # seconds; a broker restart takes about this long


@deserialize_to_instance
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
