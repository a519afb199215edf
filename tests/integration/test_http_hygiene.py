"""HTTP hygiene through the real gateway: every error a problem (werkzeug's own too), 405 with Allow,
415 and 413 for a body of the wrong type or size, ASCII path ids, the headers every answer carries,
and names refused when they hold control characters, bidi overrides or nothing visible.

Real: every service of the instance in this test's vhost behind the HTTP gateway (the `api` fixture),
each answer also held to the OpenAPI document (conftest.web_session)."""
import json
import socket

import pytest

from tests.integration.conftest import assert_problem
from tests.integration.test_residents_api import COMMUNITY, resident


def _problem(resp, status):
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == status and body["detail"] and body["correlation_id"] == resp.headers["X-Correlation-ID"]
    return body


def _resident(api, name="王秀英"):
    return api.post("/api/v1/residents", json=resident(name=name))


def test_path_ids_are_ascii_digits_only(api):
    created = _resident(api)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    assert api.get(f"/api/v1/residents/{rid}").status_code == 200
    wide = "".join(chr(ord(c) - ord("0") + ord("０")) for c in str(rid))
    bold = "".join(chr(ord(c) - ord("0") + 0x1D7D4) for c in str(rid))
    for path in (f"/api/v1/residents/{wide}", f"/api/v1/residents/{bold}", f"/api/v1/broadcasts/{wide}"):
        _problem(api.get(path), 404)


@pytest.mark.parametrize("method", ["DELETE", "PUT", "OPTIONS", "TRACE"])
def test_a_method_a_known_path_does_not_take_is_405_with_allow(api, method):
    resp = getattr(api, method.lower())("/api/v1/nodes")
    _problem(resp, 405)
    assert set(resp.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST"}


@pytest.mark.parametrize("path", ["/api/v1/nodes%0A", "/api/v1/nodes/310110012001%0A", "/api/v1/nowhere",
                                  "/api/v1//nodes", "/nowhere"])
def test_routing_errors_are_problems(api, path):
    _problem(api.get(path), 404)


@pytest.mark.parametrize("content_type, data", [
    ("text/plain", '{"code": "310110012007", "name": "新居委会"}'),
    ("application/xml", "<node><code>310110012007</code></node>"),
    ("application/x-www-form-urlencoded", "code=310110012007&name=x"),
    ("multipart/form-data; boundary=b", '--b\r\nContent-Disposition: form-data; name="code"\r\n\r\n1\r\n--b--'),
])
def test_a_body_that_is_not_json_is_415_and_writes_nothing(api, sql, content_type, data):
    resp = api.post("/api/v1/nodes", data=data.encode(), headers={"Content-Type": content_type})
    assert_problem(resp, 415, "Content-Type")
    assert sql("SELECT count(*) AS n FROM registry.nodes WHERE code = '310110012007'")[0]["n"] == 0


def test_an_import_that_is_not_csv_is_415(api):
    resp = api.post("/api/v1/imports/residents", data=json.dumps({"rows": []}).encode(),
                    headers={"Content-Type": "application/json"})
    assert_problem(resp, 415, "Content-Type")


def test_a_body_over_the_limit_is_413(api):
    body = json.dumps({"code": "310110012007", "name": "x" * (5 * 1024 * 1024)}).encode()
    resp = api.post("/api/v1/nodes", data=body, headers={"Content-Type": "application/json"})
    _problem(resp, 413)


def test_every_answer_has_nosniff_and_personal_ones_no_store(api, make_token):
    created = _resident(api)
    assert created.status_code == 201, created.text
    record = api.get(f"/api/v1/residents/{created.json()['id']}")
    assert record.status_code == 200 and record.json()["id_number"]
    answers = [record, api.get("/api/v1/residents", params={"under": COMMUNITY}), api.get("/api/v1/nowhere"),
               api.get("/api/v1/residents/999999"), api.post("/api/v1/nodes", json={})]
    for resp in answers:
        assert resp.headers["X-Content-Type-Options"] == "nosniff", resp.request.path_url
        assert resp.headers["Cache-Control"] == "no-store", resp.request.path_url
    for resp in (api.get("/api/v1/openapi.json"), api.get("/healthz")):
        assert resp.status_code == 200
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert "no-store" not in resp.headers.get("Cache-Control", "")


def test_a_401_asks_for_a_bearer_token(api):
    anonymous = api.as_("x")
    anonymous.headers = {}
    resp = anonymous.get("/api/v1/residents", params={"under": COMMUNITY})
    _problem(resp, 401)
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    resp = api.as_("lnl_00000000_" + "a" * 43).get("/api/v1/residents", params={"under": COMMUNITY})
    _problem(resp, 401)
    assert resp.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


@pytest.mark.parametrize("name", ["\u200b\u200b", "\ufeff", "王\x07英", "王\u202e秀英", "长海\x1b一村"])
def test_names_refuse_control_bidi_and_invisible_only_text(api, sql, name):
    assert_problem(_resident(api, name=name), 422, "name")
    assert_problem(api.post("/api/v1/nodes", json={"code": "310110012007", "name": name}), 422, "name")
    assert sql("SELECT count(*) AS n FROM registry.nodes WHERE code = '310110012007'")[0]["n"] == 0


def test_the_gateway_sends_an_answer_without_waiting_for_the_clients_ack(container_factory, config):
    """The gateway's listener has TCP_NODELAY, which Linux passes to every connection it accepts: with
    Nagle's algorithm on, an answer of 17-130 KiB (a dashboard, a trend) waited for the client's delayed
    ACK, 40 ms and more each (bench/bench_dashboard.py)."""
    from services.gateway.http import ApiWebServer
    from services.gateway.service import GatewayService
    container = container_factory(GatewayService, config)
    container.start()
    (server,) = [e for e in container.subextensions if isinstance(e, ApiWebServer)]
    assert server._sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
