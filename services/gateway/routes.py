"""The gateway's routes, built from the services' declared operations (shared/api.py).

One generic handler serves every declared operation: it reads the JSON body or the query, checks
the token's permission and the scope of any node code the request names, validates the input with
the declared schema (a 422 with field errors before anything is asked), calls the owning service
with a deadline, and answers with the reply loaded and dumped through the declared reply schema,
so what is sent is exactly what the document says. Problems are mapped in one place (http.py).
"""
from marshmallow import ValidationError, fields
from werkzeug.wrappers import Response

from services.gateway.http import api, as_json, json_body
from shared.errors import load


def install(cls, operations):
    """Give `cls` one entrypoint method per declared operation; a custom one must be there already."""
    for op in operations:
        if op.custom:
            if not callable(getattr(cls, op.handler_name, None)):
                raise TypeError(f"{op.method} {op.path} is declared custom but the gateway has no "
                                f"{op.handler_name}()")
            continue
        if op.handler_name in cls.__dict__:
            raise TypeError(f"{op.handler_name}() is hand-written and declared generic: {op.method} {op.path}")
        setattr(cls, op.handler_name, _entrypoint(op))
    return cls


def _entrypoint(op):
    def handle(self, request, *args, **params):
        # nameko passes the path's parameters by name; a direct call (a unit test) may pass them in order.
        params.update(zip([name for name, _ in op.params], args))
        return serve(self, op, request, params)
    handle.__name__ = handle.__qualname__ = op.handler_name
    handle.__doc__ = op.summary
    # Only a public reading (no token) carries no personal data and may be cached.
    return api(op.method, op.path, cacheable=op.permission is None and op.method == "GET")(handle)


def serve(gateway, op, request, params):
    data = None
    if op.body is not None:
        data = json_body(request)
    elif op.query is not None:
        data = request.args.to_dict()
    codes, field = op.codes(params, data)
    # An operation without a permission is public: no token is looked at, and no caller is passed.
    principal = gateway._principal(request, op.permission, *codes, field=field) if op.permission else None
    if op.path_schema is not None:
        load(op.path_schema, params)
    if data is not None:
        load(op.body or op.query, data)   # refused here, field by field; the service loads it again
    args = [params[name] for name, _ in op.params]
    if data is not None:
        args.append(data)
    if op.caller:
        args.append(gateway._caller(principal))
    return reply(op, gateway._call(op.rpc, *args, service=op.service, timeout=op.timeout))


def reply(op, result):
    """The service's answer through the declared reply schema: loaded (so a reply that strays from
    the document fails loudly, in the tests) and dumped (so nothing undeclared is sent)."""
    replayed = op.replayed_ok and isinstance(result, dict) and result.get("replayed")
    status = 200 if replayed else op.status
    if op.reply is None:
        return Response(status=status)
    schema = _reply_schema(op)
    try:
        body = schema.dump(schema.load(_declared(schema, result), many=op.many), many=op.many)
    except ValidationError as exc:
        raise ReplyMismatch(f"{op.method} {op.path}: the reply does not match its schema: {exc.messages}")
    # A replayed request is told where the first one's result is, as a new one would be.
    headers = {"Location": op.location.format(**result)} if op.location and (status == 201 or replayed) else None
    return as_json(body, status, headers)


def _reply_schema(op):
    return op.reply() if isinstance(op.reply, type) else op.reply


def _declared(schema, data):
    """`data` with only the keys `schema` declares, at every depth (marshmallow's `unknown` does not
    reach nested schemas): a field a service adds to a nested object is not sent, and not a 500. It
    walks the data, so a schema that nests itself (a tree) ends where the data does."""
    if isinstance(data, list):
        return [_declared(schema, item) for item in data]
    if not isinstance(data, dict):
        return data
    out = {}
    for name, field in schema.fields.items():
        key = field.data_key or name
        if key in data:
            out[key] = _declared_field(field, data[key])
    return out


def _declared_field(field, value):
    if isinstance(field, fields.Nested):
        return _declared(field.schema, value)
    if isinstance(field, fields.List) and isinstance(value, list):
        return [_declared_field(field.inner, v) for v in value]
    if isinstance(field, fields.Dict) and field.value_field is not None and isinstance(value, dict):
        return {k: _declared_field(field.value_field, v) for k, v in value.items()}
    return value


class ReplyMismatch(Exception):
    """A service answered with something its declared reply schema refuses: a bug (a 500)."""
