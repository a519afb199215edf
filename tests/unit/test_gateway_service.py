"""The gateway's entrypoints with nameko's worker_factory: a fake token store and a fake registry."""
import base64
import json
from unittest import mock

import pytest
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.gateway import auth
from services.gateway.service import GatewayService
from shared.errors import Forbidden, Unauthorized, ValidationFailed

_, TOKEN = auth.new_token()


class FakeTokens:
    """Stands for the gateway's Tx: answers the token lookup only."""

    def __init__(self, principals):
        self.principals = principals

    def finish(self, commit):
        self.finished = commit

    def execute(self, sql, params):
        principal = self.principals.get(params[0])
        return mock.Mock(fetchone=lambda: principal and {
            "token_id": principal.token_id, "name": principal.name, "role": principal.role,
            "node_prefix": principal.node_prefix})


def request(method, path, body=None, token=TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    builder = EnvironBuilder(method=method, path=path, headers=headers,
                             data=json.dumps(body) if body is not None else None, content_type="application/json")
    return Request(builder.get_environ())


@pytest.fixture
def gateway():
    admin = auth.Principal("a1b2c3d4", "长海路街道管理员", "street_admin", "310110012")
    service = worker_factory(GatewayService, db=FakeTokens({auth.token_hash(TOKEN): admin}))
    service.registry.create_node.side_effect = lambda body, caller: {**body, "level": "community"}
    return service


def test_create_forwards_the_body_and_the_caller(gateway):
    resp = gateway.create_node(request("POST", "/api/v1/nodes", {"code": "310110012006", "name": "政立路居委会"}))
    assert resp.status_code == 201 and resp.headers["Location"] == "/api/v1/nodes/310110012006"
    gateway.registry.create_node.assert_called_once_with(
        {"code": "310110012006", "name": "政立路居委会"},
        {"actor": "token:a1b2c3d4:长海路街道管理员", "scope": "310110012", "role": "street_admin",
         "organization_id": None})
    # The reply is what the declared schema says: nothing more.
    assert json.loads(resp.get_data()) == {"code": "310110012006", "name": "政立路居委会", "level": "community"}


def test_scope_is_checked_before_the_registry_is_asked(gateway):
    with pytest.raises(Forbidden):
        gateway.create_node(request("POST", "/api/v1/nodes", {"code": "310110013006", "name": "别的街道"}))
    with pytest.raises(Unauthorized):
        gateway.get_node(request("GET", "/api/v1/nodes/310110012001", token=auth.new_token()[1]), "310110012001")
    with pytest.raises(Unauthorized):
        gateway.get_node(request("GET", "/api/v1/nodes/310110012001", token=None), "310110012001")
    gateway.registry.create_node.assert_not_called()
    gateway.registry.get_node.assert_not_called()


def test_a_body_that_is_not_an_object_never_reaches_the_registry(gateway):
    with pytest.raises(ValidationFailed) as err:
        gateway.create_node(request("POST", "/api/v1/nodes", ["310110012006"]))
    assert "_body" in err.value.fields
    gateway.registry.create_node.assert_not_called()


def test_a_registration_answers_201_with_its_location_and_only_declared_fields(gateway):
    gateway.registry.register_resident.side_effect = lambda body, caller: {
        "id": 7, "name": body["name"], "community_code": body["community_code"], "id_cipher": "sealed"}
    body = {"name": "王秀英", "id_number": "11010519491231002X", "residence_type": "registered",
            "community_code": "310110012001"}
    resp = gateway.register_resident(request("POST", "/api/v1/residents", body))
    assert resp.status_code == 201 and resp.headers["Location"] == "/api/v1/residents/7"
    assert json.loads(resp.get_data()) == {"id": 7, "name": "王秀英", "community_code": "310110012001"}


def test_a_named_community_outside_the_scope_is_refused_before_the_registry_is_asked(gateway):
    with pytest.raises(Forbidden) as err:
        gateway.appoint_worker(request("POST", "/api/v1/workers", {"community_code": "310110013001"}))
    assert "community_code" in err.value.fields
    gateway.registry.appoint_worker.assert_not_called()


@pytest.mark.parametrize("written, status", [(0, 422), (3, 200)])
def test_an_import_answers_422_with_its_report_when_nothing_was_written(gateway, written, status):
    report = {"mode": "valid_rows", "rows": 4, "accepted": written, "rejected": 1, "written": written}
    gateway.registry.import_residents.return_value = report
    builder = EnvironBuilder(method="POST", path="/api/v1/imports/residents", query_string={"mode": "valid_rows"},
                             headers={"Authorization": f"Bearer {TOKEN}"}, data="姓名\n".encode(),
                             content_type="text/csv")
    resp = gateway.import_residents(Request(builder.get_environ()))
    assert resp.status_code == status and json.loads(resp.get_data()) == report
    data, mode, caller = gateway.registry.import_residents.call_args.args
    assert (base64.b64decode(data), mode, caller["scope"]) == ("姓名\n".encode(), "valid_rows", "310110012")
