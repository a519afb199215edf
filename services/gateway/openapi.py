"""The OpenAPI 3 document, generated from the marshmallow schemas the services validate with."""
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields


class ProblemSchema(Schema):
    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"description": "field -> messages"})
    correlation_id = fields.String()


ERRORS = {str(code): {"description": desc, "content": {"application/problem+json": {"schema": "Problem"}}}
          for code, desc in [(401, "no or bad token"), (403, "role or node scope refuses it"),
                             (404, "no such thing in the caller's scope"), (409, "conflicts with the current state"),
                             (422, "invalid fields; see `errors`"),
                             (503, "not done: the message broker, the database or a pool was unavailable. "
                                   "Nothing was changed; retry after the Retry-After header's seconds"),
                             (504, "outcome unknown: the request reached the service but no answer came within "
                                   "its deadline, so the change may have been made. Check, or send the same "
                                   "request again: a repeated registration answers 409 naming the record, and an "
                                   "operation with a request_id answers a repeat with its first result")]}


PROBLEMS = {401: "no or bad token", 403: "role or node scope refuses it", 404: "no such thing in the caller's scope",
            409: "conflicts with the current state", 413: "the request body is too large",
            415: "the request body is not of the type this operation takes (its Content-Type)",
            422: "invalid fields; see `errors`",
            429: "too many attempts: wait the Retry-After header's seconds"}

# A path's <int:...>, as services/gateway/http.py's converter takes it: an id, in ASCII digits.
ID = {"type": "integer", "format": "int64", "minimum": 1, "maximum": 2 ** 63 - 1}

# What every answer has in common, routes or not (services/gateway/http.py).
HTTP = ("Every error is `application/problem+json`. A path no operation has answers 404; a path asked with a "
        "method it does not take answers 405 with `Allow`. Path ids are ASCII digits. Every answer carries "
        "`X-Content-Type-Options: nosniff` and `X-Correlation-ID`; every answer under /api/v1/ carries "
        "`Cache-Control: no-store`, except this document and the public results; every 401 carries "
        "`WWW-Authenticate: Bearer`.")


def declared(op):
    """The OpenAPI operation of a declared Operation (shared/api.py)."""
    from shared.api import ALWAYS, AUTH_PROBLEMS
    out = {"summary": op.summary, "tags": [op.tag], "operationId": op.handler_name}
    if op.description:
        out["description"] = op.description
    # None without a permission, said explicitly, so no client or gateway in front asks for a token.
    out["security"] = op.extra.get("security", [{"bearer": []}, {"session": []}] if op.permission else [])
    if op.path_schema is not None:
        params = [{"in": "path", "schema": op.path_schema}]
    else:
        params = [{"in": "path", "name": name, "required": True,
                   "schema": ID if conv == "int" else {"type": "string"}} for name, conv in op.params]
    if op.query is not None:
        params.append({"in": "query", "schema": op.query})
    params += op.extra.get("parameters", [])
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": {op.content_type: {"schema": op.body}}}
    elif "requestBody" in op.extra:
        out["requestBody"] = op.extra["requestBody"]
    ok = {"description": "ok"}
    if op.reply is not None:
        ok["content"] = {op.reply_type: {"schema": {"type": "array", "items": op.reply} if op.many else op.reply}}
    responses = {str(op.status): ok}
    if op.replayed_ok:
        responses["200"] = {**ok, "description": "a repeat of a request already done: its first result"}
    codes = (AUTH_PROBLEMS if op.permission else ()) + tuple(op.problems) + ALWAYS
    if op.body is not None or "requestBody" in op.extra:
        codes += (413, 415)   # every body is read with a size limit and its declared type
    for code in sorted(set(codes)):
        responses[str(code)] = ERRORS.get(str(code)) or {
            "description": PROBLEMS[code], "content": {"application/problem+json": {"schema": "Problem"}}}
    responses.update(op.extra.get("responses", {}))
    out["responses"] = responses
    return out


def ecma_pattern(self, field, ret, **kwargs):
    """Our validators anchor with Python's \\A and \\Z (`$` would let a trailing newline through);
    the document's patterns are ECMA-262, where `^` and `$` already mean exactly that."""
    if "pattern" in ret:
        return {"pattern": ret["pattern"].replace("\\A", "^").replace("\\Z", "$")}
    return {}


def numeric_bounds(self, field, ret, **kwargs):
    """A decimal field's Range(Decimal("0.25"), ...) would be documented as the string "0.25"; the
    document's bounds are numbers."""
    from decimal import Decimal
    return {k: float(ret[k]) for k in ("minimum", "maximum") if isinstance(ret.get(k), (Decimal, str))}


def build(version):
    marshmallow = MarshmallowPlugin()
    spec = APISpec(title="Linli API", version=version, openapi_version="3.0.3", plugins=[marshmallow],
                   info={"description": "邻里 community governance: registers, hierarchy and feeds of one instance.\n\n" + HTTP})
    marshmallow.converter.add_attribute_function(ecma_pattern)
    marshmallow.converter.add_attribute_function(numeric_bounds)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("session", {
        "type": "apiKey", "in": "cookie", "name": "linli_session",
        "description": "a person signed in to the console (POST /api/v1/session); every POST, PUT, PATCH and "
                       "DELETE made with it must also send the session's csrf_token as X-CSRF-Token"})
    spec.components.schema("Problem", schema=ProblemSchema)
    for path, summary in [("/healthz", "Liveness"), ("/readyz", "Readiness: database and broker reachable"),
                          ("/metrics", "Prometheus metrics"), ("/api/v1/openapi.json", "This document")]:
        responses = {"200": {"description": "ok"}}
        if path == "/readyz":
            responses["200"] = {"description": "ready: `status` is `ok`, or `busy` when `checks.database` is "
                                               "`pool exhausted` (this process's connections all busy; its workers "
                                               "wait for one, so it still takes traffic)"}
            responses["503"] = {"description": "not ready: `checks.database` is `server full` (PostgreSQL refuses "
                                               "more) or `unavailable`; `checks.broker` is `unavailable`"}
        spec.path(path, operations={"get": {"summary": summary, "responses": responses}})
    from services.gateway.declared import OPERATIONS, TAGS
    tagged = {t["name"] for t in spec.to_dict().get("tags", [])}
    for op in OPERATIONS:
        if op.tag not in tagged:
            spec.tag({"name": op.tag, **({"description": TAGS[op.tag]} if op.tag in TAGS else {})})
            tagged.add(op.tag)
        spec.path(op.openapi_path, operations={op.method.lower(): declared(op)})
    return spec.to_dict()

