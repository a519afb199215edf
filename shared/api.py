"""HTTP operations, declared once, next to the service that owns them.

Each service lists its operations in `services/<service>/api.py` as `Operation`s. From that one
list the gateway builds its routes (services/gateway/routes.py: validate the input with the
declared schema, check the token's permission and scope, call the service with a deadline, dump
the reply through the declared schema, map problems) and the OpenAPI document is a loop over the
same list (services/gateway/openapi.py). Modelled on flask-smorest's `arguments`/`response`: the
schema that documents an input or a reply is the very one that loads or dumps it.

The RPC is called as `rpc(*path parameters, input, caller)`: the path's parameters in order, then
the loaded body or query (if one is declared), then the caller ({"actor", "scope", "role", ...})
unless `caller=False`. An operation whose request or reply is not JSON (CSV, a signed receipt)
sets `custom=True`: it is documented from its declaration, and the gateway has a hand-written
method of the same `name` that serves it.
"""
import re
from dataclasses import dataclass, field
from typing import Optional

PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")

# The problems every operation with a token can answer with; an operation adds its own.
AUTH_PROBLEMS = (401, 403)
ALWAYS = (503, 504)


@dataclass(frozen=True)
class Operation:
    method: str                     # GET, POST, PUT, PATCH, DELETE
    path: str                       # a werkzeug rule: /api/v1/residents/<int:resident_id>
    service: str                    # the service the gateway asks
    rpc: str                        # the service's RPC method
    permission: Optional[str]       # auth.PERMISSIONS key; None: no token needed
    summary: str
    tag: str
    reply: object = None            # marshmallow Schema class (or instance) the reply is dumped with; None: no body
    status: int = 200
    body: object = None             # Schema the JSON body is loaded with
    query: object = None            # Schema the query string is loaded with
    # Schema the path's parameters are loaded with, once the token is checked (a string id's form);
    # it also documents them. None: the converters (<int:...>) are the whole check.
    path_schema: object = None
    # Where the node code(s) the token's scope must cover come from: "path:code", "query:under",
    # "body:community_code"; or a function (path params, input) -> [codes]. None: the service scopes.
    scope: object = None
    scope_field: Optional[str] = None   # the field named in a 403 (default: the scope's own name)
    problems: tuple = (422,)        # besides 401/403 (with a permission) and 503/504
    caller: bool = True             # pass the caller as the last RPC argument
    location: Optional[str] = None  # Location header of a 201, formatted with the reply: "/api/v1/x/{id}"
    replayed_ok: bool = False       # a reply with "replayed": true (a retried request) answers 200, not `status`
    timeout: Optional[float] = None  # the RPC's deadline, if not RPC_TIMEOUT_SECONDS
    many: bool = False              # the reply is a list of `reply`
    custom: bool = False            # served by a hand-written gateway method `name`
    name: str = ""                  # the gateway method; default: the RPC's name
    description: str = ""
    content_type: str = "application/json"   # of the request body, for custom operations (text/csv)
    reply_type: str = "application/json"     # of the reply, for custom operations
    extra: dict = field(default_factory=dict)   # more OpenAPI operation fields (parameters of custom routes)

    @property
    def handler_name(self):
        return self.name or self.rpc

    @property
    def params(self):
        """[(name, converter)] of the path's parameters, in order."""
        return [(name, conv or "string") for conv, name in PARAM.findall(self.path)]

    @property
    def openapi_path(self):
        return PARAM.sub(lambda m: "{" + m.group(2) + "}", self.path)

    def codes(self, params, data):
        """The node codes the caller's scope must cover, and the field to name in a refusal."""
        if self.scope is None:
            return [], self.scope_field or "code"
        if callable(self.scope):
            return [c for c in self.scope(params, data or {}) if isinstance(c, str)], self.scope_field or "code"
        where, _, key = self.scope.partition(":")
        source = params if where == "path" else (data or {})
        value = source.get(key) if isinstance(source, dict) else None
        # A code that is not a string cannot be scope-checked here; the schema refuses it with a 422.
        return ([value] if isinstance(value, str) and value else []), self.scope_field or key


def operations(*modules):
    """Every Operation listed in the given modules' OPERATIONS, in order; a name declared twice is refused."""
    out, seen = [], set()
    for module in modules:
        for op in module.OPERATIONS:
            key = (op.method, op.path)
            if key in seen or op.handler_name in {o.handler_name for o in out}:
                raise ValueError(f"declared twice: {op.method} {op.path} ({op.handler_name})")
            seen.add(key)
            out.append(op)
    return out


def page_schema(item, next_field=None, name=None):
    """The schema of a page of `item`s: `items`, and `next` to pass back as `after` (one helper for
    every paged reply)."""
    from marshmallow import Schema, fields
    attrs = {"items": fields.List(fields.Nested(item)),
             "next": next_field or fields.String(allow_none=True,
                                                 metadata={"description": "pass as `after` for the next page"})}
    return Schema.from_dict(attrs, name=name or f"{_schema_name(item)}Page")


def _schema_name(schema):
    name = schema.__name__ if isinstance(schema, type) else type(schema).__name__
    return name[:-6] if name.endswith("Schema") else name

