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
