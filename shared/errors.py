"""Domain errors that cross RPC intact and map to HTTP problem responses.

nameko serialises an exception as its class path plus `args`; registering the
classes with `deserialize_to_instance` makes the caller re-raise the same class,
so the gateway can turn a registry refusal into a field-level 4xx.
"""
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


def from_marshmallow(exc, message="the request has invalid fields"):
    """Flatten marshmallow's nested messages into `{"a.b": ["..."]}`."""
    flat = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        else:
            flat[prefix or "_schema"] = value if isinstance(value, list) else [value]

    walk("", exc.normalized_messages())
    return ValidationFailed(message, flat)


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
