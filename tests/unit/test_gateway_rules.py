"""Tokens, roles and scopes; error shapes that survive RPC; the OpenAPI document."""
import pytest
from nameko.exceptions import deserialize, serialize

from services.gateway import auth, openapi
from shared.errors import Forbidden, Unauthorized, ValidationFailed


def test_tokens_are_random_and_only_their_hash_is_kept():
    (id1, t1), (id2, t2) = auth.new_token(), auth.new_token()
    assert t1 != t2 and id1 != id2 and auth.TOKEN_RE.match(t1)
    assert t1.startswith(f"lnl_{id1}_")  # the id in the token is the one `token list/revoke` shows
    assert auth.token_hash(t1) != t1 and len(auth.token_hash(t1)) == 64
    assert auth.bearer(f"Bearer {t1}") == t1


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer lnl_short"])
def test_missing_or_malformed_bearer_is_401(header):
    with pytest.raises(Unauthorized):
        auth.bearer(header)


def test_scope_and_role():
    worker = auth.Principal("t1", "网格员", "community_worker", "310110012001")
    auth.authorize(worker, "nodes:read", "310110012001001")
    with pytest.raises(Forbidden, match="outside"):
        auth.authorize(worker, "nodes:read", "310110012002")
    with pytest.raises(Forbidden, match="may not"):
        auth.authorize(worker, "nodes:write", "310110012001")


def test_grants_must_lie_in_or_above_the_instance():
    auth.validate_grant("区分析员", "district_analyst", "310110", "310110012")
    with pytest.raises(ValidationFailed) as err:
        auth.validate_grant("", "king", "310110013", "310110012")
    assert set(err.value.fields) == {"name", "role", "node_prefix"}


def test_domain_errors_cross_rpc_with_their_fields():
    exc = ValidationFailed("bad", {"code": ["must be digits only"]})
    back = deserialize(serialize(exc))
    assert isinstance(back, ValidationFailed)
    assert back.fields == {"code": ["must be digits only"]} and back.status == 422


def test_openapi_document_is_built_from_the_schemas():
    spec = openapi.build("test")
    create = spec["components"]["schemas"]["NodeCreate"]
    assert create["required"] == ["code", "name"]
    assert create["properties"]["code"]["pattern"] == "^[0-9]+$"
    assert create["properties"]["name"]["maxLength"] == 64
    assert spec["paths"]["/api/v1/nodes"]["post"]["responses"]["422"]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_openapi_document_is_valid_openapi_3():
    """What schema-driven clients and tools (schemathesis, code generators) need first."""
    from openapi_spec_validator import OpenAPIV30SpecValidator
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}"
              for e in OpenAPIV30SpecValidator(openapi.build("test")).iter_errors()]
    assert errors == []


def test_every_declared_operation_is_served_and_documented_once():
    from services.gateway.declared import OPERATIONS
    from services.gateway.http import ApiHandler
    from services.gateway.service import GatewayService
    spec = openapi.build("test")
    served = {}
    for name in dir(GatewayService):
        for ext in getattr(getattr(GatewayService, name), "nameko_entrypoints", ()):
            if isinstance(ext, ApiHandler):
                served[(ext.method, ext.url)] = name
    for op in OPERATIONS:
        assert served.get((op.method, op.path)) == op.handler_name, op
        documented = spec["paths"][op.openapi_path][op.method.lower()]
        assert documented["operationId"] == op.handler_name and str(op.status) in documented["responses"]


def test_the_documents_patterns_are_ecma_and_its_bounds_numbers():
    spec = openapi.build("test")
    text = str(spec)
    assert "\\\\Z" not in text and "\\\\A" not in text
    budget = spec["components"]["schemas"]["DecisionCreate"]["properties"]["budget"]
    assert isinstance(budget["minimum"], float) and isinstance(budget["maximum"], float)


def test_a_reply_is_sent_as_declared_at_every_depth_and_a_wrong_one_is_refused():
    import json
    import pytest
    from services.gateway import routes
    from services.gateway.declared import BY_NAME
    op = BY_NAME["get_household"]
    sent = routes.reply(op, {"id": 1, "internal": "x", "members": [{"id": 3, "name": "王秀英", "surprise": 1}]})
    assert json.loads(sent.get_data()) == {"id": 1, "members": [{"id": 3, "name": "王秀英"}]}
    with pytest.raises(routes.ReplyMismatch):
        routes.reply(op, {"id": "not a number"})
