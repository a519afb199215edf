"""HTTP hygiene at the gateway's edge, without I/O: the web server's routing errors as problems, 405
with Allow, ASCII path ids, the headers every answer carries (services/gateway/http.py), the body's
type and size in the one generic handler (routes.py), the document saying so (openapi.py), and the
shared text field that names and free text are loaded with (shared/fields.py).

The routing tests use the gateway's own url rules (every entrypoint of GatewayService) behind the real
ApiWebServer, with stand-ins that answer instead of the workers."""
import base64
import json

import pytest
from marshmallow import Schema, ValidationError
from nameko.testing.services import worker_factory
from werkzeug.test import Client, EnvironBuilder
from werkzeug.wrappers import Request, Response

from services.gateway import auth, openapi
from services.gateway.declared import OPERATIONS
from services.gateway.http import MAX_BODY, ApiHandler, ApiWebServer, PayloadTooLarge, UnsupportedMediaType
from services.gateway.service import GatewayService
from shared.errors import Unauthorized
from shared.fields import Text

_, TOKEN = auth.new_token()


class Answering:
    """Stands in for one of the gateway's routes: its url rule, its cacheability, and an answer of the
    path's values (or a 401 where the path asks for one)."""

    def __init__(self, handler):
        self.handler = handler
        self.cacheable = handler.cacheable

    def get_url_rule(self):
        return self.handler.get_url_rule()

    def handle_request(self, request):
        if request.args.get("refuse"):
            return self.handler.response_from_exception(Unauthorized("an API token is required"))
        return Response(json.dumps({"route": self.handler.url, "values": request.path_values}),
                        mimetype="application/json")


@pytest.fixture(scope="module")
def client():
    server = ApiWebServer()
    for name in dir(GatewayService):
        for ext in getattr(getattr(GatewayService, name), "nameko_entrypoints", ()):
            if isinstance(ext, ApiHandler):
                server.register_provider(Answering(ext))
    return Client(server.get_wsgi_app())


def assert_problem(resp, status, routed=False):
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    body = json.loads(resp.get_data())
    assert body["status"] == status and body["detail"]
    if not routed:   # the stand-ins set no correlation id; the server does, for what no route answers
        assert body["correlation_id"] == resp.headers["X-Correlation-ID"]
    return body


# -- path ids ---------------------------------------------------------------------------------------------

def test_an_id_in_ascii_digits_reaches_its_route(client):
    resp = client.get("/api/v1/residents/69")
    assert resp.status_code == 200 and json.loads(resp.get_data())["values"] == {"resident_id": 69}


@pytest.mark.parametrize("path", ["/api/v1/residents/６９", "/api/v1/residents/𝟔𝟗", "/api/v1/residents/٦٩",
                                  "/api/v1/broadcasts/６９", "/api/v1/residents/0", "/api/v1/residents/069",
                                  "/api/v1/residents/92233720368547758070"])
def test_an_id_in_other_digits_or_out_of_range_is_no_route(client, path):
    assert_problem(client.get(path), 404)


def test_hand_written_routes_take_ascii_ids_too(client):
    # GET /broadcasts/<int:broadcast_id> is served by hand (services/gateway/notification.py).
    assert json.loads(client.get("/api/v1/broadcasts/7").get_data())["values"] == {"broadcast_id": 7}
    assert_problem(client.get("/api/v1/broadcasts/𝟕"), 404)


# -- routing errors ---------------------------------------------------------------------------------------

def test_an_unknown_path_is_a_404_problem(client):
    body = assert_problem(client.post("/api/v1/nowhere", headers={"X-Correlation-ID": "abc-123"}), 404)
    assert body["correlation_id"] == "abc-123"


@pytest.mark.parametrize("path", ["/api/v1/nodes%0A", "/api/v1/nodes%0a/310110012001", "/api/v1//nodes"])
def test_a_path_with_a_newline_or_a_doubled_slash_is_a_404_problem(client, path):
    assert_problem(client.get(path), 404)


@pytest.mark.parametrize("method", ["DELETE", "PUT", "OPTIONS", "TRACE", "PROPFIND"])
def test_a_method_the_path_does_not_take_is_a_405_problem_with_allow(client, method):
    resp = client.open("/api/v1/residents/69", method=method)
    assert_problem(resp, 405)
    assert set(resp.headers["Allow"].split(", ")) == {"GET", "HEAD", "PATCH"}


def test_a_method_on_an_unknown_path_is_a_404_problem(client):
    assert_problem(client.open("/api/v1/nowhere", method="OPTIONS"), 404)


# -- headers ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, store", [("/api/v1/residents/69", True), ("/api/v1/nowhere", True),
                                         ("/api/v1/residents/69?refuse=1", True),
                                         ("/api/v1/openapi.json", False), ("/api/v1/public/results", False),
                                         ("/healthz", False), ("/nowhere", False)])
def test_every_answer_is_nosniff_and_the_apis_are_no_store(client, path, store):
    resp = client.get(path)
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert (resp.headers.get("Cache-Control") == "no-store") is store


def test_only_public_readings_are_cacheable():
    # The session's GET is public too (it reads a cookie, not a token), but served by hand, uncached.
    cacheable = {op.path for op in OPERATIONS if op.permission is None and op.method == "GET" and not op.custom}
    assert cacheable == {"/api/v1/public/results"}


def test_a_401_says_it_wants_a_bearer_token(client):
    resp = client.get("/api/v1/residents/69?refuse=1")
    assert_problem(resp, 401, routed=True)
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    resp = client.get("/api/v1/residents/69?refuse=1", headers={"Authorization": "Bearer nonsense"})
    assert resp.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


# -- the body's type and size, in the generic handler -------------------------------------------------------

class FakeTokens:
    def finish(self, commit):
        pass

    def execute(self, sql, params):
        principal = auth.Principal("a1b2c3d4", "管理员", "street_admin", "310110012")
        return type("Row", (), {"fetchone": lambda self: principal.__dict__})()


@pytest.fixture
def gateway():
    return worker_factory(GatewayService, db=FakeTokens())


def raw_request(path, data, content_type, query=None):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if content_type:
        headers["Content-Type"] = content_type
    return Request(EnvironBuilder(method="POST", path=path, headers=headers, data=data,
                                  query_string=query).get_environ())


NODE = json.dumps({"code": "310110012006", "name": "政立路居委会"}).encode()


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None])
def test_a_json_route_refuses_a_body_of_another_type(gateway, content_type):
    with pytest.raises(UnsupportedMediaType) as err:
        gateway.create_node(raw_request("/api/v1/nodes", NODE, content_type))
    assert err.value.status == 415 and "Content-Type" in err.value.fields
    gateway.registry.create_node.assert_not_called()


def test_a_json_route_takes_json_with_a_charset(gateway):
    gateway.registry.create_node.side_effect = lambda body, caller: {**body, "level": "community"}
    resp = gateway.create_node(raw_request("/api/v1/nodes", NODE, "application/json; charset=utf-8"))
    assert resp.status_code == 201


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_a_body_over_the_limit_is_413(gateway, content_type):
    body = b'{"name": "' + b"x" * MAX_BODY + b'"}'
    with pytest.raises(PayloadTooLarge) as err:
        gateway.create_node(raw_request("/api/v1/nodes", body, content_type))
    assert err.value.status == 413
    gateway.registry.create_node.assert_not_called()


def test_an_import_refuses_a_body_that_is_not_csv(gateway):
    with pytest.raises(UnsupportedMediaType):
        gateway.import_residents(raw_request("/api/v1/imports/residents", "姓名\n".encode(), "application/json"))
    gateway.registry.import_residents.assert_not_called()
    gateway.registry.import_residents.return_value = {"mode": "all_or_nothing", "rows": 0, "accepted": 0,
                                                       "rejected": 0, "written": 0}
    resp = gateway.import_residents(raw_request("/api/v1/imports/residents", "姓名\n".encode(), "text/csv"))
    assert resp.status_code == 200
    assert base64.b64decode(gateway.registry.import_residents.call_args.args[0]) == "姓名\n".encode()


# -- the document -------------------------------------------------------------------------------------------

def test_every_operation_with_a_body_documents_413_and_415():
    spec = openapi.build("test")
    with_body = [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()
                 if "requestBody" in op]
    assert len(with_body) > 50
    for path, method, op in with_body:
        assert {"413", "415"} <= set(op["responses"]), f"{method} {path}"
        assert op["responses"]["415"]["content"] == {"application/problem+json": {
            "schema": {"$ref": "#/components/schemas/Problem"}}}
    resident = spec["paths"]["/api/v1/residents/{resident_id}"]["get"]["parameters"][0]
    assert resident["schema"] == {"type": "integer", "format": "int64", "minimum": 1, "maximum": 2 ** 63 - 1}
    assert "405" in spec["info"]["description"] and "no-store" in spec["info"]["description"]


# -- names and free text --------------------------------------------------------------------------------------

class Named(Schema):
    name = Text(required=True)


@pytest.mark.parametrize("value, message", [
    ("王\x07英", "control characters"), ("长海\x1b[31m一村", "control characters"), ("王\x7f英", "control characters"),
    ("王\u202e秀英", "bidi"), ("王\u202d秀英", "bidi"), ("王\u2067秀英", "bidi"),
    ("\u200b\u200b", "blank"), ("\ufeff", "blank"), ("\u200c\u200d\u2060", "blank"), ("\u3164", "blank"),
    (" \u3000 ", "blank"), ("王\x00英", "NUL"),
])
def test_a_name_refuses_control_bidi_and_invisible_only_text(value, message):
    with pytest.raises(ValidationError) as err:
        Named().load({"name": value})
    assert message in err.value.messages["name"][0]


@pytest.mark.parametrize("value, loaded", [("王秀英", "王秀英"), ("\ufeff王秀英\u200b ", "王秀英"),
                                           ("第一段\n第二段\t完", "第一段\n第二段\t完"),
                                           ("👨\u200d👩\u200d👧", "👨\u200d👩\u200d👧")])
def test_a_name_keeps_what_is_text(value, loaded):
    assert Named().load({"name": value}) == {"name": loaded}


def test_the_registers_names_are_text():
    from services.registry import schemas
    for schema in (schemas.ResidentCreateSchema, schemas.NodeCreateSchema):
        with pytest.raises(ValidationError) as err:
            schema().load({"name": "王\u202e秀英"}, partial=True)
        assert "name" in err.value.messages
