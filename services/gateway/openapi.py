"""The OpenAPI 3 document, generated from the marshmallow schemas the services validate with."""
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from services.registry.schemas import (NodeChangeSchema, NodeCreateSchema, NodeListQuerySchema,
                                       NodeRenameSchema, NodeRetireSchema, NodeSchema, NodeSplitSchema)


class ProblemSchema(Schema):
    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"description": "field -> messages"})
    correlation_id = fields.String()


class NodeDetailSchema(NodeSchema):
    history = fields.List(fields.Nested(NodeChangeSchema))


class NodePageSchema(Schema):
    items = fields.List(fields.Nested(NodeSchema))
    next = fields.String(allow_none=True, metadata={"description": "pass as `after` for the next page"})


class SplitResultSchema(Schema):
    retired = fields.Nested(NodeSchema)
    created = fields.List(fields.Nested(NodeSchema))


ERRORS = {str(code): {"description": desc, "content": {"application/problem+json": {"schema": "Problem"}}}
          for code, desc in [(401, "no or bad token"), (403, "role or node scope refuses it"),
                             (404, "no such node"), (409, "conflicts with the current state"),
                             (422, "invalid fields; see `errors`")]}


def _op(summary, ok_schema, body=None, status="200", params=None):
    op = {"summary": summary, "security": [{"bearer": []}],
          "responses": {status: {"description": "ok", "content": {"application/json": {"schema": ok_schema}}}, **ERRORS}}
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


CODE_PARAM = {"in": "path", "name": "code", "required": True, "schema": {"type": "string", "pattern": r"^\d+$"}}


def build(version):
    spec = APISpec(title="Linli API", version=version, openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()],
                   info={"description": "邻里 community governance: registers, hierarchy and feeds of one instance."})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for name, schema in [("Problem", ProblemSchema), ("Node", NodeSchema), ("NodeDetail", NodeDetailSchema),
                         ("NodePage", NodePageSchema), ("NodeCreate", NodeCreateSchema),
                         ("NodeRename", NodeRenameSchema), ("NodeSplit", NodeSplitSchema),
                         ("NodeRetire", NodeRetireSchema), ("SplitResult", SplitResultSchema)]:
        spec.components.schema(name, schema=schema)
    spec.path("/api/v1/nodes", operations={
        "get": _op("List nodes under a code (default: the token's scope)", "NodePage",
                   params=[{"in": "query", "schema": NodeListQuerySchema}]),
        "post": _op("Create a community or grid", "Node", body="NodeCreate", status="201"),
    })
    spec.path("/api/v1/nodes/{code}", operations={
        "get": _op("A node and its history", "NodeDetail", params=[CODE_PARAM]),
        "patch": _op("Rename a node (history is kept)", "Node", body="NodeRename", params=[CODE_PARAM]),
    })
    spec.path("/api/v1/nodes/{code}/split", operations={
        "post": _op("Split a node into new ones; the old one is retired", "SplitResult", body="NodeSplit",
                    params=[CODE_PARAM]),
    })
    spec.path("/api/v1/nodes/{code}/retire", operations={
        "post": _op("Retire a node, optionally naming its successor (a merge)", "Node", body="NodeRetire",
                    params=[CODE_PARAM]),
    })
    for path, summary in [("/healthz", "Liveness"), ("/readyz", "Readiness: database and broker reachable"),
                          ("/metrics", "Prometheus metrics")]:
        spec.path(path, operations={"get": {"summary": summary, "responses": {"200": {"description": "ok"}}}})
    return spec.to_dict()
